package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/task"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/web"
)

// routeWeb sends the console's and the portal's paths, and GET of the bare
// root, to the web server and everything else to the API (whose own 404
// and 405 answer unknown paths in JSON). A prefix test rather than a
// ServeMux: a mux would set the request's Pattern, which the API's tracing
// then takes for the route's name.
func routeWeb(console, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		root := p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
		if root || p == "/console" || strings.HasPrefix(p, "/console/") || p == "/portal" || strings.HasPrefix(p, "/portal/") {
			console.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// nodeConfig is what a Herald node is built from; serve and bench fill it
// from their flags.
type nodeConfig struct {
	Store    store
	Logger   *slog.Logger
	Sender   dispatch.SenderConfig
	Dispatch dispatch.Config        // Store, Sender and Logger are set by startNode
	Cleaner  dispatch.CleanerConfig // Store and Logger are set by startNode
	// Tasks configures the background-task runner; Store, Owner, Lease,
	// OnQueued and Logger are set by startNode.
	Tasks          task.Config
	AdminTokenHash [32]byte
	MaxBodyBytes   int64
	// PublicURL is the base of links Herald hands out (app-portal links);
	// each request's own host when empty.
	PublicURL string
	// PortalFrameAncestors is the CSP frame-ancestors list of portal
	// pages ("'self'" when empty).
	PortalFrameAncestors string
	// Proxies are the reverse proxies whose forwarding headers are
	// believed; none when nil.
	Proxies *access.Proxies
	// APIRateLimit, APIRateBurst and AuthFailureBurst are the API's rate
	// limits (httpapi.Config's); 0 is off. On PostgreSQL APIRateLimit is
	// shared by every node.
	APIRateLimit     float64
	APIRateBurst     int
	AuthFailureBurst int
	// MaxEndpointsPerApp is httpapi.Config's: the most endpoints of one
	// application; 0 is no limit.
	MaxEndpointsPerApp int

	// Registry receives the node's metrics; a fresh one when nil.
	Registry *prometheus.Registry
	// Tracing makes the node's spans; off when nil.
	Tracing *telemetry.Tracing
	// MetricsAppLabel adds app_id to herald_deliveries_total.
	MetricsAppLabel bool
	// ServeMetrics serves /metrics on the API (not when a separate
	// listener does).
	ServeMetrics bool
	// MetricsPublic serves the API's /metrics without a token.
	MetricsPublic bool
	// MonitorInterval is how often the queue and readiness gauges are
	// refreshed (default 5 s).
	MonitorInterval time.Duration
}

// node is a running Herald over one store: the dispatcher (and, on
// PostgreSQL, its LISTEN connection), the group committer and the API.
type node struct {
	api *httpapi.API
	// handler serves everything: the console and portal (web) and the API.
	handler      http.Handler
	stopWeb      context.CancelFunc
	webDone      chan struct{}
	dispatcher   *dispatch.Dispatcher
	sender       *dispatch.Sender
	publishers   *destination.Publishers
	committer    *ingest.Committer
	logger       *slog.Logger
	stopListen   func()
	stopDispatch context.CancelFunc
	dispatchDone chan error
	// failed receives the dispatcher's error when it stops by itself (it
	// could not register, or other nodes took this one over).
	failed    chan error
	stopClean context.CancelFunc
	cleanDone chan struct{}
	stopTasks context.CancelFunc
	tasksDone chan struct{}
	// stopFanOut and fanOutDone stop the fan-out worker, before the
	// dispatcher it hands deliveries to.
	stopFanOut context.CancelFunc
	fanOutDone chan struct{}
	stopOnce   sync.Once

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
	var sharedLimits httpapi.TokenTaker
	if ts, ok := cfg.Store.(dispatch.TokenStore); ok && dcfg.SharedRateLimits == nil {
		// PostgreSQL: rate limits hold across every node on the database.
		dcfg.SharedRateLimits = telemetry.InstrumentTokens(ts, metrics)
		sharedLimits = dcfg.SharedRateLimits
	}
	sender := dispatch.NewSender(cfg.Sender)
	dcfg.Sender = sender
	publishers := destination.NewPublishers(dispatch.BrokerConfig(cfg.Sender))
	dcfg.Publishers = publishers
	dcfg.Logger = cfg.Logger
	dcfg.Metrics = metrics
	dcfg.Tracer = tracing.Tracer()
	if ns, ok := cfg.Store.(herald.NodeStore); ok && dcfg.Nodes == nil {
		// PostgreSQL: register, heartbeat, take over dead nodes.
		dcfg.Nodes = ns
		host, _ := os.Hostname()
		dcfg.Node = herald.Node{Version: Version(), Host: host, PID: os.Getpid(), StartedAt: time.Now()}
	}
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
	fanOut, err := dispatch.NewFanOutWorker(dispatch.FanOutConfig{Store: measured, Lease: dispatcher.Lease, OnChunk: dispatcher.Enqueue, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	n := &node{dispatcher: dispatcher, sender: sender, publishers: publishers, logger: cfg.Logger, dispatchDone: make(chan error, 1), failed: make(chan error, 1), cleanDone: make(chan struct{}), tasksDone: make(chan struct{}), fanOutDone: make(chan struct{})}
	tcfg := cfg.Tasks
	tcfg.Store, tcfg.OnQueued, tcfg.Logger = measured, dispatcher.NotifyQueued, cfg.Logger
	tcfg.Owner, tcfg.Lease = taskOwner(cfg.Store, dispatcher), cmp.Or(dcfg.NodeTimeout, dispatch.DefaultNodeTimeout)
	runner, err := task.New(tcfg)
	if err != nil {
		return nil, err
	}
	n.registry = reg
	committer := ingest.New(measured, ingest.Config{Logger: cfg.Logger, Lease: dispatcher.Lease, OnCommit: func(results []herald.MessageResult) {
		dispatcher.Enqueue(results)
		fanOut.WakeFor(results)
	}, Metrics: metrics, Tracer: tracing.Tracer()})
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
	auth := access.NewAuthenticator(measured, cfg.AdminTokenHash, nil)
	apiCfg := httpapi.Config{
		Auth:           auth,
		PublicURL:      cfg.PublicURL,
		Proxies:        cfg.Proxies,
		Store:          measured,
		Messages:       committer,
		AdminTokenHash: cfg.AdminTokenHash,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Logger:         cfg.Logger,
		Version:        Version(),
		OnQueued:       dispatcher.NotifyQueued,
		OnTask:         runner.Wake,
		CircuitState:   dispatcher.EndpointState,
		Metrics:        metrics,
		TracerProvider: tp,
		Readiness:      readiness,
		MetricsHandler: scrape,
		// The guard's setting also judges endpoint URLs as they are written.
		AllowPrivateTargets: cfg.Sender.AllowPrivate,
		MetricsPublic:       cfg.MetricsPublic,
	}
	apiCfg.Nodes, apiCfg.NodeTimeout = nodeLister(cfg.Store, dispatcher), cmp.Or(dcfg.NodeTimeout, dispatch.DefaultNodeTimeout)
	apiCfg.APIRateLimit, apiCfg.APIRateBurst, apiCfg.AuthFailureBurst = cfg.APIRateLimit, cfg.APIRateBurst, cfg.AuthFailureBurst
	apiCfg.SharedRateLimits = sharedLimits
	apiCfg.MaxEndpointsPerApp = cfg.MaxEndpointsPerApp
	if sw, ok := cfg.Store.(httpapi.BucketSweeper); ok && sharedLimits != nil {
		apiCfg.IdleBuckets = sw
	}
	api, err := httpapi.New(apiCfg)
	if err != nil {
		committer.Close()
		return nil, err
	}
	n.api, n.committer = api, committer
	console, err := web.New(web.Config{
		API:                  api,
		Auth:                 auth,
		Store:                measured,
		Gatherer:             reg,
		Logger:               cfg.Logger,
		Proxies:              cfg.Proxies,
		PortalFrameAncestors: cfg.PortalFrameAncestors,
		Version:              Version(),
	})
	if err != nil {
		committer.Close()
		return nil, err
	}
	n.handler = routeWeb(console, api)
	var webCtx context.Context
	webCtx, n.stopWeb = context.WithCancel(context.WithoutCancel(ctx))
	n.webDone = make(chan struct{})
	go func() {
		defer close(n.webDone)
		console.Run(webCtx)
	}()
	var dispatchCtx context.Context
	dispatchCtx, n.stopDispatch = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		err := dispatcher.Run(dispatchCtx)
		if err != nil {
			n.failed <- err
		}
		n.dispatchDone <- err
	}()
	var cleanCtx context.Context
	cleanCtx, n.stopClean = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(n.cleanDone)
		_ = cleaner.Run(cleanCtx) // it logs its own failures and returns nil
	}()
	var tasksCtx context.Context
	tasksCtx, n.stopTasks = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(n.tasksDone)
		runner.Run(tasksCtx)
	}()
	var fanOutCtx context.Context
	fanOutCtx, n.stopFanOut = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(n.fanOutDone)
		_ = fanOut.Run(fanOutCtx) // it logs its own failures and returns nil
	}()
	n.stopListen = listenForWork(ctx, cfg.Store, dispatcher.NotifyQueued, cfg.Logger)
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

// Failed delivers the dispatcher's error if it stops by itself: it could
// not register the node, or other nodes took this node over. The node
// must then stop (serve exits with the error).
func (n *node) Failed() <-chan error { return n.failed }

// taskOwner names the node's task runner in task leases: the dispatcher's
// owner on PostgreSQL, where each node needs its own name and a dead
// node's tasks pass to another after --node-timeout; a fixed name on
// SQLite, whose file one process owns, so that a restarted Herald takes
// its tasks back at once.
func taskOwner(s store, d *dispatch.Dispatcher) string {
	if _, ok := s.(herald.NodeStore); ok {
		return d.Owner()
	}
	return "herald"
}

// nodeLister lists the nodes serving the database for GET /api/v1/node:
// the node table on PostgreSQL; this node alone on SQLite, whose file one
// process owns.
func nodeLister(s store, d *dispatch.Dispatcher) func(context.Context) ([]*herald.Node, time.Time, error) {
	if ns, ok := s.(herald.NodeStore); ok {
		return ns.ListNodes
	}
	host, _ := os.Hostname()
	self := herald.Node{Name: d.Owner(), Version: Version(), Host: host, PID: os.Getpid(), StartedAt: time.Now()}
	return func(context.Context) ([]*herald.Node, time.Time, error) {
		n, now := self, time.Now()
		n.HeartbeatAt = now
		return []*herald.Node{&n}, now, nil
	}
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
	n.stopWeb()
	<-n.webDone
	n.stopClean()
	<-n.cleanDone
	// A task stops between two slices: its progress is saved with each.
	n.stopTasks()
	<-n.tasksDone
	if err := n.committer.Close(); err != nil {
		n.logger.Warn("close ingest", "err", err)
	}
	n.stopFanOut()
	<-n.fanOutDone
	n.stopListen()
	n.stopDispatch()
	if err := <-n.dispatchDone; err != nil && !errors.Is(err, dispatch.ErrTakenOver) { // that one was logged as it happened
		n.logger.Warn("stop dispatcher", "err", err)
	}
	n.sender.Close()
	if err := n.publishers.Close(); err != nil {
		n.logger.Warn("close the broker connections", slog.Any("err", err))
	}
}
