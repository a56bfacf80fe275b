package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/task"
)

// ServeCmd runs the server.
type ServeCmd struct {
	Listen string `name:"listen" env:"HERALD_LISTEN" default:"127.0.0.1:8040" help:"Address the HTTP API listens on."`
	DBFlags
	AdminToken      string        `name:"admin-token" env:"HERALD_ADMIN_TOKEN" help:"Bearer token with full access to the API. On the command line it is visible in ps: prefer HERALD_ADMIN_TOKEN or --admin-token-file. Default: the file admin-token beside the database, generated on first start with mode 0600."`
	AdminTokenFile  string        `name:"admin-token-file" env:"HERALD_ADMIN_TOKEN_FILE" help:"File holding the admin token (a trailing newline is ignored), e.g. a mounted Secret; instead of --admin-token."`
	TLSCert         string        `name:"tls-cert" env:"HERALD_TLS_CERT" help:"PEM certificate (chain) to serve HTTPS with, TLS 1.2 or newer; with --tls-key. Reloaded on SIGHUP and when the files change."`
	TLSKey          string        `name:"tls-key" env:"HERALD_TLS_KEY" help:"PEM private key of --tls-cert."`
	MaxBodySize     int64         `name:"max-body-size" env:"HERALD_MAX_BODY_SIZE" default:"1048576" help:"Largest request body accepted, in bytes; larger ones get 413."`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" env:"HERALD_SHUTDOWN_TIMEOUT" default:"30s" help:"How long a graceful shutdown waits for API requests and for deliveries in flight."`

	Workers              int           `name:"workers" env:"HERALD_WORKERS" default:"256" help:"Most deliveries in flight at once."`
	EndpointConcurrency  int           `name:"endpoint-concurrency" env:"HERALD_ENDPOINT_CONCURRENCY" default:"8" help:"Most deliveries in flight to one endpoint, so a slow endpoint only holds its own share of the workers."`
	AppWorkerShare       float64       `name:"app-worker-share" env:"HERALD_APP_WORKER_SHARE" default:"0.5" help:"Share of --workers the endpoints of one application may hold at once (at least --endpoint-concurrency), so another application always finds free workers however one application's endpoints behave. 1 turns it off."`
	MaxEndpointsPerApp   int           `name:"max-endpoints-per-app" env:"HERALD_MAX_ENDPOINTS_PER_APP" default:"1000" help:"Most endpoints one application may have; creating one more gets 422. It bounds one message's fan-out, which every application's ingest waits for. 0 is no limit."`
	FanOutInlineMax      int           `name:"fanout-inline-max" env:"HERALD_FANOUT_INLINE_MAX" default:"64" help:"Most deliveries a message gets inside the shared ingest commit. A message routed to more endpoints is committed with a small fan-out marker instead, and its deliveries are created right after, 256 endpoints per short transaction, so other applications' messages do not wait for a large fan-out. 0 creates every fan-out inline."`
	RequestTimeout       time.Duration `name:"request-timeout" env:"HERALD_REQUEST_TIMEOUT" default:"15s" help:"Timeout of one delivery attempt (connect, send, response)."`
	RetrySchedule        string        `name:"retry-schedule" env:"HERALD_RETRY_SCHEDULE" default:"5s,5m,30m,2h,5h,10h,10h" help:"Delays between attempts after the first, comma-separated; each gets ±20% jitter. After the last the delivery fails for good."`
	DeliveryLease        time.Duration `name:"delivery-lease" env:"HERALD_DELIVERY_LEASE" help:"How long a node holds a claimed delivery without news before other nodes may take it (crash recovery). Default: 4 × --request-timeout + 30s."`
	NodeHeartbeat        time.Duration `name:"node-heartbeat" env:"HERALD_NODE_HEARTBEAT" default:"3s" help:"PostgreSQL: how often this node renews its heartbeat in the node table and looks for dead nodes to take over."`
	NodeTimeout          time.Duration `name:"node-timeout" env:"HERALD_NODE_TIMEOUT" default:"15s" help:"PostgreSQL: a node whose heartbeat is older than this is presumed dead; another node returns its deliveries to the queue at once (instead of after --delivery-lease), and the node itself, if only paused or cut off, stops and exits when it finds out. At least 3 × --node-heartbeat."`
	RetentionDays        int           `name:"retention-days" env:"HERALD_RETENTION_DAYS" default:"90" help:"Days messages, attempts and finished or failed background tasks are kept; older ones are deleted in small batches, except messages still being delivered and running tasks. 0 keeps everything."`
	AuditRetentionDays   int           `name:"audit-retention-days" env:"HERALD_AUDIT_RETENTION_DAYS" default:"365" help:"Days audit-log records are kept; older ones are deleted in small batches. 0 keeps them forever."`
	CleanerInterval      time.Duration `name:"cleaner-interval" env:"HERALD_CLEANER_INTERVAL" default:"1m" help:"Pause between two retention passes."`
	PublicURL            string        `name:"public-url" env:"HERALD_PUBLIC_URL" help:"Base URL your customers reach Herald at (e.g. https://hooks.example.com), used in app-portal links. Default: the host each request came to."`
	PortalFrameAncestors string        `name:"portal-frame-ancestors" env:"HERALD_PORTAL_FRAME_ANCESTORS" default:"'self'" help:"Sites that may show the app portal in an iframe: a Content-Security-Policy frame-ancestors list, e.g. \"https://app.example.com\". Embedding in another site needs HTTPS. The console is never framable."`
	TrustedProxies       string        `name:"trusted-proxies" env:"HERALD_TRUSTED_PROXIES" help:"Comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (client address for login rate limits, Secure cookies behind TLS). Default: none."`
	APIRateLimit         float64       `name:"api-rate-limit" env:"HERALD_API_RATE_LIMIT" default:"10000" help:"API requests per second allowed to each credential (API key, app-portal token, the admin token; console and portal sessions count against the token they were opened with); over it, 429 with Retry-After. Shared by every node on PostgreSQL. 0 turns it off."`
	APIRateBurst         int           `name:"api-rate-burst" env:"HERALD_API_RATE_BURST" help:"Requests a credential may send at once before --api-rate-limit applies. Default: two seconds' worth of --api-rate-limit."`
	APIAuthFailureBurst  int           `name:"api-auth-failure-burst" env:"HERALD_API_AUTH_FAILURE_BURST" default:"20" help:"Failed API authentications (unknown, malformed, expired or revoked tokens) a client address may make at once; after that one a second, others get 429 (tokens that worked lately still pass). 0 turns it off."`
	TaskSlice            int           `name:"task-slice" env:"HERALD_TASK_SLICE" default:"500" help:"Rows one slice of a background task (recover, replay-missing, bulk-replay, expunge-all-contents) reads: one short write transaction, which also saves the task's progress."`
	TaskPause            time.Duration `name:"task-pause" env:"HERALD_TASK_PAUSE" default:"5ms" help:"Pause between two slices of a background task, so that new messages and deliveries get the database in between."`
	AllowPrivateTargets  bool          `name:"allow-private-targets" env:"HERALD_ALLOW_PRIVATE_TARGETS" help:"Allow deliveries to loopback, private, link-local and CGNAT addresses, and endpoint URLs naming them (tests, on-premise). Cloud metadata addresses stay refused."`

	Log         LogFlags         `embed:""`
	Telemetry   TelemetryFlags   `embed:""`
	Operational OperationalFlags `embed:""`
	Breakers    BreakerFlags     `embed:""`

	schedule []time.Duration // parsed RetrySchedule
	proxies  *access.Proxies // parsed TrustedProxies
}

// Validate checks the flags that kong cannot.
func (c *ServeCmd) Validate() error {
	if c.MaxBodySize < 1024 {
		return errors.New("--max-body-size must be at least 1024 bytes")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("--admin-token must be at least 16 characters")
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		return errors.New("--admin-token and --admin-token-file: give one, not both")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errTLSPair
	}
	if c.Workers < 1 || c.EndpointConcurrency < 1 {
		return errors.New("--workers and --endpoint-concurrency must be at least 1")
	}
	if c.AppWorkerShare <= 0 || c.AppWorkerShare > 1 {
		return errors.New("--app-worker-share must be above 0 and at most 1")
	}
	if c.MaxEndpointsPerApp < 0 {
		return errors.New("--max-endpoints-per-app must be 0 (no limit) or more")
	}
	if c.FanOutInlineMax < 0 {
		return errors.New("--fanout-inline-max must be 0 (every fan-out inline) or more")
	}
	if c.RequestTimeout < time.Second || c.RequestTimeout > 5*time.Minute {
		return errors.New("--request-timeout must be between 1s and 5m")
	}
	if c.DeliveryLease != 0 && c.DeliveryLease < c.RequestTimeout+6*time.Second {
		return errors.New("--delivery-lease must exceed --request-timeout by at least 6s")
	}
	if c.TaskSlice < 1 || c.TaskSlice > 100000 {
		return errors.New("--task-slice must be between 1 and 100000")
	}
	if c.TaskPause < time.Millisecond || c.TaskPause > time.Minute {
		return errors.New("--task-pause must be between 1ms and 1m")
	}
	if c.NodeHeartbeat < 100*time.Millisecond || c.NodeHeartbeat > time.Minute {
		return errors.New("--node-heartbeat must be between 100ms and 1m")
	}
	if c.NodeTimeout < 3*c.NodeHeartbeat || c.NodeTimeout < 2*time.Second {
		return errors.New("--node-timeout must be at least 3 × --node-heartbeat and at least 2s")
	}
	if c.RetentionDays < 0 || c.RetentionDays > 36500 {
		return errors.New("--retention-days must be between 0 (keep forever) and 36500")
	}
	if c.AuditRetentionDays < 0 || c.AuditRetentionDays > 36500 {
		return errors.New("--audit-retention-days must be between 0 (keep forever) and 36500")
	}
	if c.CleanerInterval < time.Second {
		return errors.New("--cleaner-interval must be at least 1s")
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	if err := c.Operational.validate(); err != nil {
		return err
	}
	if err := c.Breakers.validate(); err != nil {
		return err
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			return errors.New("--public-url must be an absolute http(s) URL without path, query or fragment, e.g. https://hooks.example.com: Herald's pages are served from the root")
		}
	}
	if strings.ContainsAny(c.PortalFrameAncestors, ";,\r\n") || strings.TrimSpace(c.PortalFrameAncestors) == "" {
		return errors.New("--portal-frame-ancestors must be a space-separated list of CSP sources, e.g. \"'self' https://app.example.com\"")
	}
	if c.APIRateLimit < 0 || math.IsNaN(c.APIRateLimit) || math.IsInf(c.APIRateLimit, 0) {
		return errors.New("--api-rate-limit must be 0 (off) or a positive number of requests per second")
	}
	if c.APIRateBurst < 0 || c.APIAuthFailureBurst < 0 {
		return errors.New("--api-rate-burst and --api-auth-failure-burst must not be negative")
	}
	proxies, err := access.ParseProxies(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	c.proxies = proxies
	schedule, err := backoff.ParseSchedule(c.RetrySchedule)
	if err != nil {
		return fmt.Errorf("--retry-schedule: %w", err)
	}
	c.schedule = schedule
	return nil
}

// cleanerBatch is the retention batch size: on SQLite a batch holds the
// one writer that ingest also needs, so it is kept to about 20 ms
// (BenchmarkRetention in sqlite/: ~73 ms per 1,000 messages); PostgreSQL
// deletes beside ingest and takes the cleaner's default.
func (c *ServeCmd) cleanerBatch() int {
	if c.postgres() {
		return 0
	}
	return 250
}

// Run serves until the context ends, then shuts down gracefully: stop
// accepting, let requests in flight finish, commit what was accepted, close
// the database.
func (c *ServeCmd) Run(env *Env) error {
	logger, err := c.Log.logger(env.Stderr)
	if err != nil {
		return err
	}
	applyGCDefault(os.Getenv)
	ctx := env.Ctx
	tracing, err := startTracing(ctx, env, logger)
	if err != nil {
		return err
	}
	defer stopTracing(tracing, logger)
	c.fanOutInlineMax = c.FanOutInlineMax
	store, err := c.own(ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := releaseDeadLeases(ctx, store, logger); err != nil {
		return err
	}

	token, tokenFile, generated, err := c.adminToken(logger)
	if err != nil {
		return err
	}
	if generated {
		reportGeneratedToken(ctx, store, tokenFile, logger)
	}
	if err := c.Operational.configureOperational(ctx, store, c.dataDir(), logger); err != nil {
		return err
	}
	n, err := startNode(ctx, nodeConfig{
		Store:  store,
		Logger: logger,
		Sender: dispatch.SenderConfig{
			Timeout:      c.RequestTimeout,
			AllowPrivate: c.AllowPrivateTargets,
			UserAgent:    "Herald/" + Version(),
		},
		Dispatch: dispatch.Config{
			Policy:          backoff.Policy{Schedule: c.schedule, Jitter: backoff.DefaultJitter},
			Workers:         c.Workers,
			PerEndpoint:     c.EndpointConcurrency,
			AppWorkerShare:  c.AppWorkerShare,
			RequestTimeout:  c.RequestTimeout,
			Lease:           c.DeliveryLease,
			ShutdownTimeout: c.ShutdownTimeout,
			DisableAfter:    c.Operational.DisableAfter,
			Breaker:         c.Breakers.config(),
			NodeHeartbeat:   c.NodeHeartbeat,
			NodeTimeout:     c.NodeTimeout,
		},
		Cleaner: dispatch.CleanerConfig{
			Retention:      time.Duration(c.RetentionDays) * 24 * time.Hour,
			AuditRetention: time.Duration(c.AuditRetentionDays) * 24 * time.Hour,
			Interval:       c.CleanerInterval,
			BatchSize:      c.cleanerBatch(),
		},
		Tasks:                task.Config{Slice: c.TaskSlice, Pause: c.TaskPause},
		AdminTokenHash:       sha256.Sum256([]byte(token)),
		MaxBodyBytes:         c.MaxBodySize,
		PublicURL:            c.PublicURL,
		PortalFrameAncestors: c.PortalFrameAncestors,
		Proxies:              c.proxies,
		APIRateLimit:         c.APIRateLimit,
		APIRateBurst:         c.APIRateBurst,
		AuthFailureBurst:     c.APIAuthFailureBurst,
		MaxEndpointsPerApp:   c.MaxEndpointsPerApp,
		Tracing:              tracing,
		MetricsAppLabel:      c.Telemetry.MetricsAppLabel,
		ServeMetrics:         c.Telemetry.MetricsAddr == "",
		MetricsPublic:        c.Telemetry.MetricsPublic,
	})
	if err != nil {
		return err
	}
	defer n.stop() // on the error paths; the normal path stops it below
	stopSide, err := c.Telemetry.start(ctx, n, logger)
	if err != nil {
		return err
	}
	defer stopSide()
	var certs *certReloader
	if c.TLSCert != "" {
		if certs, err = newCertReloader(c.TLSCert, c.TLSKey, logger); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if certs != nil {
		srv.TLSConfig = certs.tlsConfig()
		scheme = "https"
		reloadCtx, stopReload := context.WithCancel(ctx)
		reloadDone := make(chan struct{})
		go func() {
			defer close(reloadDone)
			certs.run(reloadCtx, certPollInterval)
		}()
		defer func() {
			stopReload()
			<-reloadDone
		}()
	} else if warning := plainHTTPWarning(c.Listen); warning != "" {
		// With --trusted-proxies the operator has said a proxy terminates
		// TLS in front: worth a line, not a warning at every start.
		level := slog.LevelWarn
		if c.TrustedProxies != "" {
			level = slog.LevelInfo
		}
		logger.Log(ctx, level, warning)
	}
	serveErr := make(chan error, 1)
	go func() {
		if certs != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			return
		}
		serveErr <- srv.Serve(ln)
	}()

	url := scheme + "://" + ln.Addr().String()
	auth := "Authorization: Bearer <the --admin-token value>"
	if tokenFile != "" {
		auth = "Authorization: Bearer <the token in " + tokenFile + ">"
	} else if c.AdminToken == "" {
		auth = "Authorization: Bearer <the HERALD_ADMIN_TOKEN value>"
	}
	logger.Info("Herald is listening", "version", Version(), "url", url, "console", url+"/console/", "api", url+"/api/v1", "db", c.DB, "auth", auth)

	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("serve: %w", err)
	case err := <-n.Failed():
		// Taken over by the other nodes (or the node could not register):
		// stop serving; the dispatcher has stopped already.
		runErr = fmt.Errorf("dispatcher: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", c.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("requests still in flight at the shutdown deadline were cut", "err", err)
	}
	// The dispatcher stops last: it releases what it has not started and
	// waits up to --shutdown-timeout for deliveries in flight.
	n.stop()
	logger.Info("stopped")
	return runErr
}

// adminToken returns the admin token, when it came from a file the file's
// path, and whether it was generated just now. Without --admin-token the
// token lives in admin-token beside the database, generated on first start.
func (c *ServeCmd) adminToken(logger *slog.Logger) (token, file string, generated bool, err error) {
	if c.AdminToken != "" {
		return c.AdminToken, "", false, nil
	}
	if c.AdminTokenFile != "" {
		token, err := readTokenFile(c.AdminTokenFile, logger)
		if err != nil {
			return "", "", false, fmt.Errorf("--admin-token-file: %w", err)
		}
		return token, c.AdminTokenFile, false, nil
	}
	if c.postgres() {
		return "", "", false, errors.New("--admin-token-file or HERALD_ADMIN_TOKEN (or --admin-token) is required with PostgreSQL: every node must accept the same token")
	}
	file = filepath.Join(c.dataDir(), "admin-token")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", "", false, fmt.Errorf("generate admin token: %w", err)
		}
		token = "hk_" + base64.RawURLEncoding.EncodeToString(raw)
		if err := writeSecretFile(file, token); err != nil {
			return "", "", false, fmt.Errorf("save admin token: %w", err)
		}
		return token, file, true, nil
	} else if err != nil {
		return "", "", false, fmt.Errorf("read admin token: %w", err)
	}
	token = strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", "", false, fmt.Errorf("admin token file %s holds fewer than 16 characters", file)
	}
	return token, file, false, nil
}

// readTokenFile reads an admin token from path: its one line, without the
// trailing newline. A file that group or others may read is served with a
// warning, not refused: Kubernetes Secret volumes (0644 unless
// defaultMode says otherwise) and Docker secrets (0444) are made so, in
// a mount only the container sees.
func readTokenFile(path string, logger *slog.Logger) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	token := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(token, "\r\n") || strings.TrimSpace(token) != token {
		return "", fmt.Errorf("%s holds more than one line or spaces around the token", path)
	}
	if len(token) < 16 {
		return "", fmt.Errorf("%s holds fewer than 16 characters", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the admin token file is readable by other users; chmod 600 it (or set the Secret volume's defaultMode to 0400)",
			"file", path, "mode", fmt.Sprintf("%04o", perm))
	}
	return token, nil
}

// workListener is a store that can tell this node at once when other nodes
// make deliveries due (PostgreSQL LISTEN/NOTIFY); without one, the
// dispatcher finds such work at its next poll.
type workListener interface {
	Listen(ctx context.Context, wake func()) error
}

// listenForWork runs the store's listener, when it has one, calling wake
// for every notification, until the returned stop is called; stop waits
// for it to end and may be called more than once.
func listenForWork(ctx context.Context, s store, wake func(), logger *slog.Logger) (stop func()) {
	l, ok := s.(workListener)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Listen(ctx, wake); err != nil {
			logger.Warn("listen for work from other nodes; polling only", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
