package telemetry

import (
	"database/sql"

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
// herald_db_pool_* metrics labelled pool="postgres", read from the pool at
// each scrape (Stat takes the pool's lock briefly; it queries nothing).
type PoolCollector struct {
	stat    func() *pgxpool.Stat
	metrics []poolMetric
}

// NewPoolCollector returns a collector of the statistics stat returns
// (postgres.Store's PoolStat).
func NewPoolCollector(stat func() *pgxpool.Stat) *PoolCollector {
	m := func(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) poolMetric {
		return poolMetric{prometheus.NewDesc(Namespace+"_db_pool_"+name, help, nil, prometheus.Labels{"pool": "postgres"}), kind, value}
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

// SQLPool is a database/sql connection pool to export: SQLite's writer
// connection or its reader pool.
type SQLPool struct {
	// Name is the pool label's value.
	Name string
	// Stats reads the pool's statistics (sql.DB's Stats).
	Stats func() sql.DBStats
}

// sqlPoolMetric is one statistic of a database/sql pool.
type sqlPoolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*sql.DBStats) float64
}

// SQLPoolCollector exports database/sql pools' statistics under the
// herald_db_pool_* names PostgreSQL's pool uses where they mean the same,
// labelled with the pool's name. Stats reads counters the pool keeps; it
// queries nothing.
type SQLPoolCollector struct {
	pools   []SQLPool
	metrics []sqlPoolMetric
}

// NewSQLPoolCollector returns a collector of pools.
func NewSQLPoolCollector(pools ...SQLPool) *SQLPoolCollector {
	m := func(name, help string, kind prometheus.ValueType, value func(*sql.DBStats) float64) sqlPoolMetric {
		return sqlPoolMetric{prometheus.NewDesc(Namespace+"_db_pool_"+name, help, []string{"pool"}, nil), kind, value}
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return &SQLPoolCollector{pools: pools, metrics: []sqlPoolMetric{
		m("max_conns", "Most connections the pool opens (0: no limit).", gauge, func(s *sql.DBStats) float64 { return float64(s.MaxOpenConnections) }),
		m("total_conns", "Connections open, idle or in use.", gauge, func(s *sql.DBStats) float64 { return float64(s.OpenConnections) }),
		m("acquired_conns", "Connections in use.", gauge, func(s *sql.DBStats) float64 { return float64(s.InUse) }),
		m("idle_conns", "Connections open and idle.", gauge, func(s *sql.DBStats) float64 { return float64(s.Idle) }),
		m("empty_acquires_total", "Acquires that had to wait: no idle connection was ready.", counter, func(s *sql.DBStats) float64 { return float64(s.WaitCount) }),
		m("empty_acquire_wait_seconds_total", "Time spent waiting for a connection when none was idle.", counter, func(s *sql.DBStats) float64 { return s.WaitDuration.Seconds() }),
		m("max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime.", counter, func(s *sql.DBStats) float64 { return float64(s.MaxLifetimeClosed) }),
		m("max_idle_destroys_total", "Connections closed for idling too long.", counter, func(s *sql.DBStats) float64 { return float64(s.MaxIdleTimeClosed) }),
	}}
}

// Describe implements prometheus.Collector.
func (c *SQLPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *SQLPoolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.pools {
		s := p.Stats()
		for _, m := range c.metrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s), p.Name)
		}
	}
}

// WALStats is what WALCollector exports of SQLite's write-ahead log (see
// sqlite.WALStats).
type WALStats struct {
	Bytes, DatabaseBytes           int64
	Checkpoints, WriterCheckpoints uint64
	Failures                       uint64
	UncopiedFrames                 int64
}

// WALCollector exports SQLite's write-ahead log and checkpoint statistics
// as herald_sqlite_* metrics, read at each scrape.
type WALCollector struct {
	stats                                                 func() (WALStats, error)
	bytes, dbBytes, checkpoints, failures, uncopiedFrames *prometheus.Desc
}

// NewWALCollector returns a collector of the statistics stats returns. A
// scrape at which stats fails exports the counters and no file sizes.
func NewWALCollector(stats func() (WALStats, error)) *WALCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_sqlite_"+name, help, labels, nil)
	}
	return &WALCollector{
		stats:       stats,
		bytes:       d("wal_bytes", "Size of the write-ahead log file. It grows when checkpoints fail or a reader holds them back."),
		dbBytes:     d("database_bytes", "Size of the database file, without the write-ahead log. It grows with the messages kept for the retention period."),
		checkpoints: d("checkpoints_total", "WAL checkpoints run: by the checkpointer's own connection, or on the writer's so that the WAL can start over.", "connection"),
		failures:    d("checkpoint_failures_total", "Checkpoint rounds that failed; the WAL grows until one succeeds."),
		uncopiedFrames: d("wal_uncopied_frames",
			"WAL frames the last checkpoint could not copy into the database because a reader's snapshot (a backup, Litestream, a long query) still needed them."),
	}
}

// Describe implements prometheus.Collector.
func (c *WALCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.dbBytes, c.checkpoints, c.failures, c.uncopiedFrames} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *WALCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.stats()
	if err == nil {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
		ch <- prometheus.MustNewConstMetric(c.dbBytes, prometheus.GaugeValue, float64(s.DatabaseBytes))
	}
	ch <- prometheus.MustNewConstMetric(c.checkpoints, prometheus.CounterValue, float64(s.Checkpoints), "checkpointer")
	ch <- prometheus.MustNewConstMetric(c.checkpoints, prometheus.CounterValue, float64(s.WriterCheckpoints), "writer")
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.Failures))
	ch <- prometheus.MustNewConstMetric(c.uncopiedFrames, prometheus.GaugeValue, float64(s.UncopiedFrames))
}
