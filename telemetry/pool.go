package telemetry

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolMetric is one statistic of the PostgreSQL connection pool.
type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

// PoolCollector exports a pgx connection pool's statistics as
// herald_db_pool_* metrics, read from the pool at each scrape (Stat takes
// the pool's lock briefly; it queries nothing).
type PoolCollector struct {
	stat    func() *pgxpool.Stat
	metrics []poolMetric
}

// NewPoolCollector returns a collector of the statistics stat returns
// (postgres.Store's PoolStat).
func NewPoolCollector(stat func() *pgxpool.Stat) *PoolCollector {
	m := func(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) poolMetric {
		return poolMetric{prometheus.NewDesc(Namespace+"_db_pool_"+name, help, nil, nil), kind, value}
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return &PoolCollector{stat: stat, metrics: []poolMetric{
		m("max_conns", "Most connections the pool opens.", gauge, func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		m("total_conns", "Connections open, idle, in use or being opened.", gauge, func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		m("acquired_conns", "Connections in use.", gauge, func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		m("idle_conns", "Connections open and idle.", gauge, func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		m("constructing_conns", "Connections being opened.", gauge, func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }),
		m("acquires_total", "Connections taken from the pool.", counter, func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		m("acquire_duration_seconds_total", "Time spent taking connections from the pool.", counter, func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
		m("empty_acquires_total", "Acquires that had to wait: no idle connection was ready.", counter, func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		m("empty_acquire_wait_seconds_total", "Time spent waiting for a connection when none was idle.", counter, func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
		m("canceled_acquires_total", "Acquires given up because their context ended.", counter, func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
		m("new_conns_total", "Connections opened.", counter, func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
		m("max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime.", counter, func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
		m("max_idle_destroys_total", "Connections closed for idling too long.", counter, func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }),
	}}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
