package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
)

// nodeConfig is what a Herald node is built from; serve and bench fill it
// from their flags.
type nodeConfig struct {
	Store          store
	Logger         *slog.Logger
	Sender         dispatch.SenderConfig
	Dispatch       dispatch.Config        // Store, Sender and Logger are set by startNode
	Cleaner        dispatch.CleanerConfig // Store and Logger are set by startNode
	AdminTokenHash [32]byte
	MaxBodyBytes   int64

	// Registry receives the node's metrics; a fresh one when nil.
	Registry *prometheus.Registry
	// Tracing makes the node's spans; off when nil.
	Tracing *telemetry.Tracing
	// MetricsAppLabel adds app_id to herald_deliveries_total.
	MetricsAppLabel bool
	// ServeMetrics serves /metrics on the API (not when a separate
	// listener does).
	ServeMetrics bool
	// MonitorInterval is how often the queue and readiness gauges are
	// refreshed (default 5 s).
	MonitorInterval time.Duration
}

// node is a running Herald over one store: the dispatcher (and, on
// PostgreSQL, its LISTEN connection), the group committer and the API.
type node struct {
	api          *httpapi.API
	dispatcher   *dispatch.Dispatcher
	sender       *dispatch.Sender
	committer    *ingest.Committer
	logger       *slog.Logger
	stopListen   func()
	stopDispatch context.CancelFunc
	dispatchDone chan error
	stopClean    context.CancelFunc
	cleanDone    chan struct{}
	stopOnce     sync.Once

	registry    *prometheus.Registry
	monitor     *telemetry.Monitor
	stopMonitor context.CancelFunc
	monitorDone chan struct{}
}

// startNode wires and starts a node. Its HTTP server is the caller's: serve
// it with node.api, then call node.stop once no request is in flight.
func startNode(ctx context.Context, cfg nodeConfig) (*node, error) {
	reg := cfg.Registry
	if reg == nil {
		reg = telemetry.NewRegistry(Version())
	}
	tracing := cfg.Tracing
	if tracing == nil {
		tracing = telemetry.Off()
	}
	metrics := telemetry.NewMetrics(reg, telemetry.MetricsOptions{AppLabel: cfg.MetricsAppLabel})
	switch p := cfg.Store.(type) {
	case poolStater:
		reg.MustRegister(telemetry.NewPoolCollector(p.PoolStat))
	case sqlPoolStater:
		reg.MustRegister(telemetry.NewSQLPoolCollector(
			telemetry.SQLPool{Name: "writer", Stats: p.WriterStats},
			telemetry.SQLPool{Name: "readers", Stats: p.ReaderStats},
		))
		reg.MustRegister(telemetry.NewWALCollector(func() (telemetry.WALStats, error) {
			s, err := p.WALStats()
			return telemetry.WALStats(s), err
		}))
	}
	// Every component but the LISTEN connection uses the measured store.
	measured := telemetry.InstrumentStore(cfg.Store, metrics)

	dcfg := cfg.Dispatch
	dcfg.Store = measured
	if ts, ok := cfg.Store.(dispatch.TokenStore); ok && dcfg.SharedRateLimits == nil {
		// PostgreSQL: rate limits hold across every node on the database.
		dcfg.SharedRateLimits = telemetry.InstrumentTokens(ts, metrics)
	}
	sender := dispatch.NewSender(cfg.Sender)
	dcfg.Sender = sender
	dcfg.Logger = cfg.Logger
	dcfg.Metrics = metrics
	dcfg.Tracer = tracing.Tracer()
	dispatcher, err := dispatch.New(dcfg)
	if err != nil {
		return nil, err
	}
	ccfg := cfg.Cleaner
	ccfg.Store, ccfg.Logger = measured, cfg.Logger
	cleaner, err := dispatch.NewCleaner(ccfg)
	if err != nil {
		return nil, err
	}
	n := &node{dispatcher: dispatcher, sender: sender, logger: cfg.Logger, dispatchDone: make(chan error, 1), cleanDone: make(chan struct{})}
	n.registry = reg
	committer := ingest.New(measured, ingest.Config{Logger: cfg.Logger, Lease: dispatcher.Lease, OnCommit: dispatcher.Enqueue,
		Metrics: metrics, Tracer: tracing.Tracer()})
	readiness := telemetry.NewReadiness(
		telemetry.Check{Name: "store", Run: measured.Ping, Failure: "The database is not reachable."},
		telemetry.Check{Name: "migrations", Run: cfg.Store.CheckSchema, Failure: "The database schema is behind this version: its migrations have not run."},
		telemetry.Check{Name: "dispatcher", Run: func(context.Context) error {
			if !dispatcher.Running() {
				return errDispatcherStopped
			}
			return nil
		}, Failure: "The dispatcher is not running."},
	)
	var tp trace.TracerProvider
	if tracing.Enabled {
		tp = tracing.Provider
	}
	var scrape http.Handler
	if cfg.ServeMetrics {
		scrape = n.metricsHandler(cfg.Logger)
	}
	api, err := httpapi.New(httpapi.Config{
		Store:          measured,
		Messages:       committer,
		AdminTokenHash: cfg.AdminTokenHash,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Logger:         cfg.Logger,
		Version:        Version(),
		OnQueued:       dispatcher.Notify,
		CircuitState:   dispatcher.EndpointState,
		Metrics:        metrics,
		TracerProvider: tp,
		Readiness:      readiness,
		MetricsHandler: scrape,
	})
	if err != nil {
		committer.Close()
		return nil, err
	}
	n.api, n.committer = api, committer
	var dispatchCtx context.Context
	dispatchCtx, n.stopDispatch = context.WithCancel(context.WithoutCancel(ctx))
	go func() { n.dispatchDone <- dispatcher.Run(dispatchCtx) }()
	var cleanCtx context.Context
	cleanCtx, n.stopClean = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(n.cleanDone)
		_ = cleaner.Run(cleanCtx) // it logs its own failures and returns nil
	}()
	n.stopListen = listenForWork(ctx, cfg.Store, dispatcher.Notify, cfg.Logger)
	n.monitor = telemetry.NewMonitor(telemetry.MonitorConfig{
		Store: measured, Metrics: metrics, Readiness: readiness, Interval: cfg.MonitorInterval, Logger: cfg.Logger,
	})
	var monitorCtx context.Context
	monitorCtx, n.stopMonitor = context.WithCancel(context.WithoutCancel(ctx))
	n.monitorDone = make(chan struct{})
	go func() {
		defer close(n.monitorDone)
		n.monitor.Run(monitorCtx)
	}()
	return n, nil
}

// poolStater is a store with a connection pool to export (PostgreSQL).
type poolStater interface{ PoolStat() *pgxpool.Stat }

// sqlPoolStater is a store with database/sql pools to export (SQLite: the
// writer connection and the readers), and a write-ahead log.
type sqlPoolStater interface {
	WriterStats() sql.DBStats
	ReaderStats() sql.DBStats
	WALStats() (sqlite.WALStats, error)
}

var (
	_ poolStater    = (*postgres.Store)(nil)
	_ sqlPoolStater = (*sqlite.Store)(nil)
)

// errDispatcherStopped is the readiness check's error once the dispatcher
// has stopped.
var errDispatcherStopped = errors.New("the dispatcher is not running")

// metricsHandler serves the node's registry in the Prometheus text format.
func (n *node) metricsHandler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// stop commits what ingest has queued, then stops the dispatcher, which
// releases what it has not started and waits (up to its ShutdownTimeout)
// for deliveries in flight. The store stays open: it is the caller's.
// Calls after the first do nothing.
func (n *node) stop() { n.stopOnce.Do(n.shutdown) }

func (n *node) shutdown() {
	// The monitor first: the dispatcher stopping is no news to log.
	n.stopMonitor()
	<-n.monitorDone
	n.stopClean()
	<-n.cleanDone
	if err := n.committer.Close(); err != nil {
		n.logger.Warn("close ingest", "err", err)
	}
	n.stopListen()
	n.stopDispatch()
	if err := <-n.dispatchDone; err != nil {
		n.logger.Warn("stop dispatcher", "err", err)
	}
	n.sender.Close()
}
