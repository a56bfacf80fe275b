// Package httpapi is Herald's HTTP gateway and its Svix-compatible API v1:
// routing, authentication, request IDs, access logs, body limits,
// idempotency keys, JSON encoding and the one table that maps domain errors
// to HTTP statuses.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/internal/ttlcache"
	"github.com/herald-webhooks/herald/telemetry"
)

// MessageCreator commits one message with group commit (package ingest's
// *Committer satisfies it). A nil error and a nil result Err mean the
// message and its deliveries are durable.
type MessageCreator interface {
	CreateMessage(ctx context.Context, m *herald.Message) (herald.MessageResult, error)
}

// Config holds what the API needs; New fills in defaults.
type Config struct {
	Store    herald.Store
	Messages MessageCreator
	// AdminTokenHash is the SHA-256 of the admin token; requests present the
	// token itself and it is compared in constant time.
	AdminTokenHash [32]byte
	// MaxBodyBytes caps request bodies; the default is 1 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock; the default is time.Now.
	Now     func() time.Time
	Version string
	// OnQueued, when set, is called after a request queued deliveries
	// outside message ingest (resend, recover, replay-missing,
	// send-example), so the dispatcher can claim them at once instead of at
	// its next poll.
	OnQueued func()
	// OnTask, when set, is called after a request started a background
	// task (herald.Task), to wake the task runner.
	OnTask func()
	// CircuitState, when set, returns the circuit breaker state of an
	// endpoint as this node sees it ("closed", "open", "half-open"); the
	// endpoint stats show it as Herald's extra field "circuit".
	CircuitState func(endpointID string) string
	// Metrics receive the API's request metrics; discarded when nil.
	Metrics *telemetry.Metrics
	// TracerProvider, when set, gives every request a server span (a child
	// of the caller's traceparent). When nil no span is made, but the
	// caller's traceparent is still read and stored with the messages it
	// creates.
	TracerProvider trace.TracerProvider
	// Readiness runs the checks of /readyz; only the store's Ping when nil.
	Readiness *telemetry.Readiness
	// MetricsHandler, when set, serves GET /metrics to admin-scope
	// principals (read-only ones too): Prometheus scrapes with a bearer
	// token.
	MetricsHandler http.Handler
	// MetricsPublic serves MetricsHandler without a token
	// (--metrics-public).
	MetricsPublic bool
	// Nodes lists the nodes serving the database, with the database's
	// clock now, for GET /api/v1/node; NodeTimeout judges their state.
	// The route answers 404 when Nodes is nil.
	Nodes       func(ctx context.Context) ([]*herald.Node, time.Time, error)
	NodeTimeout time.Duration
	// Auth checks bearer tokens; by default an Authenticator over Store
	// and AdminTokenHash.
	Auth *access.Authenticator
	// PublicURL is the base URL customers reach Herald at (scheme, host
	// and any path prefix), used in app-portal links; by default the
	// request's own host, over https when it came over TLS (to Herald or,
	// as Proxies says, to a trusted proxy).
	PublicURL string
	// Proxies are the reverse proxies whose X-Forwarded-Proto is believed;
	// none when nil.
	Proxies *access.Proxies
	// AllowPrivateTargets accepts endpoint URLs whose literal host the
	// dispatcher's guard refuses (loopback, private, link-local addresses,
	// localhost: see netguard.CheckHost); it is the serve flag
	// --allow-private-targets. Cloud metadata addresses stay refused.
	AllowPrivateTargets bool
	// MaxEndpointsPerApp is the most endpoints one application may have:
	// creating one more is refused with 422 (body.url). It bounds what one
	// message fans out to, so one application's message cannot hold the
	// ingest group commit that every application shares for long. 0 is no
	// limit; herald serve's --max-endpoints-per-app defaults to 1,000.
	MaxEndpointsPerApp int
	// APIRateLimit is each credential's rate limit, in requests per second:
	// a token bucket per API key or app-portal token (a console or portal
	// session counts against the token it was opened with; the bootstrap
	// admin token is one more credential). 0 is no limit.
	APIRateLimit float64
	// APIRateBurst is the bucket's size; DefaultAPIRateBurstSeconds of
	// APIRateLimit when 0.
	APIRateBurst int
	// SharedRateLimits, when set, makes APIRateLimit hold across every
	// node on the database (PostgreSQL); this node's buckets only when nil.
	SharedRateLimits TokenTaker
	// IdleBuckets, with SharedRateLimits, deletes the shared buckets of
	// credentials idle for an hour or more, once an hour; kept forever
	// when nil.
	IdleBuckets BucketSweeper
	// AuthFailureBurst is how many failed authentications a client address
	// (as Proxies read it) may make at once before it gets 429; one more a
	// second is allowed after. 0 is no limit.
	AuthFailureBurst int
}

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// appCacheTTL is how long a message post reuses the application it read:
// an application changed or deleted through another node is seen within it.
const appCacheTTL = time.Second

// Access is what a route asks of its caller, declared once in the route
// table; no handler checks access by itself.
type Access int

const (
	// Public routes need no token.
	Public Access = iota
	// Admin routes need an admin-scope principal.
	Admin
	// App routes need admin scope or the application named by the path's
	// {app_id} (its ID or uid).
	App
	// Any routes need any valid token (the event-type catalog, logout).
	Any
	// Probe routes answer anyone, as Public ones do, but say more to a
	// caller that is trusted (see trustedCaller): one with a valid token
	// of any kind, or one on the loopback interface. An invalid token is
	// no error there, only no trust: a probe always gets its status.
	Probe
)

func (x Access) String() string {
	return [...]string{"public", "admin", "app", "any", "probe"}[x]
}

// Route is one entry of the route table. Write routes change something: a
// read-only principal may not call them.
type Route struct {
	Method, Pattern string
	Access          Access
	Write           bool
	// Capabilities are those of which a principal with a limited set (an
	// app-portal token) needs one; none when empty.
	Capabilities []string
	// Public is whether anyone may call the route: Access is Public or
	// Probe.
	Public bool
	// Audited routes record each change they make in the audit log (in the
	// store, in the change's transaction): every route that is not a GET,
	// except those the table marks noAudit.
	Audited bool
	// NotAudited is why a route that is not a GET is not audited.
	NotAudited string
}

// API serves the gateway and the API v1 handlers.
type API struct {
	store    herald.Store
	messages MessageCreator
	token    [32]byte
	auth     *access.Authenticator
	baseURL  string
	proxies  *access.Proxies
	maxBody  int64
	logger   *slog.Logger
	now      func() time.Time
	version  string
	onQueued func()
	onTask   func()
	circuit  func(endpointID string) string
	metrics  *telemetry.Metrics
	ready    *telemetry.Readiness
	scrape   http.Handler
	// scrapePublic serves scrape without a token.
	scrapePublic bool
	// msgApps caches the application of message posts by path reference
	// (ID or uid) for appCacheTTL: one read fewer per message.
	msgApps *ttlcache.Cache[*herald.Application]
	// keys are the credentials' rate limits (nil: none); fails the
	// failed-authentication limits of client addresses (nil: none).
	keys  *keyLimits
	fails *failLimits

	// allowPrivate is Config.AllowPrivateTargets.
	allowPrivate bool
	// maxEndpoints is Config.MaxEndpointsPerApp.
	maxEndpoints int
	// nodes and nodeTimeout are Config.Nodes and Config.NodeTimeout.
	nodes       func(ctx context.Context) ([]*herald.Node, time.Time, error)
	nodeTimeout time.Duration

	routes []Route
	// openapiJSON is the encoded OpenAPI document, built once (openapiDoc).
	openapiOnce sync.Once
	openapiJSON []byte
	openapiErr  error
	// public holds the patterns ("GET /healthz") of the public routes.
	public  map[string]bool
	mux     *http.ServeMux
	handler http.Handler
}

// New checks cfg, fills in defaults and builds the route table.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: Config.Store is required")
	}
	if cfg.Messages == nil {
		return nil, errors.New("httpapi: Config.Messages is required")
	}
	if cfg.AdminTokenHash == ([32]byte{}) {
		return nil, errors.New("httpapi: Config.AdminTokenHash is required")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, errors.New("httpapi: Config.MaxBodyBytes must not be negative")
	}
	if cfg.APIRateLimit < 0 || cfg.APIRateBurst < 0 || cfg.AuthFailureBurst < 0 {
		return nil, errors.New("httpapi: Config.APIRateLimit, APIRateBurst and AuthFailureBurst must not be negative")
	}
	a := &API{
		store:    hideOperational(cfg.Store),
		messages: cfg.Messages,
		token:    cfg.AdminTokenHash,
		auth:     cfg.Auth,
		baseURL:  strings.TrimSuffix(cfg.PublicURL, "/"),
		proxies:  cfg.Proxies,
		maxBody:  cfg.MaxBodyBytes,
		logger:   cfg.Logger,
		now:      cfg.Now,
		version:  cfg.Version,
		onQueued: cfg.OnQueued,
		onTask:   cfg.OnTask,
		circuit:  cfg.CircuitState,
		metrics:  cfg.Metrics,
		ready:    cfg.Readiness,
		scrape:   cfg.MetricsHandler,
		msgApps:  &ttlcache.Cache[*herald.Application]{TTL: appCacheTTL},
		mux:      http.NewServeMux(),
		public:   map[string]bool{},
	}
	a.allowPrivate = cfg.AllowPrivateTargets
	a.maxEndpoints = cfg.MaxEndpointsPerApp
	a.scrapePublic = cfg.MetricsPublic
	a.nodes, a.nodeTimeout = cfg.Nodes, cfg.NodeTimeout
	if a.maxBody == 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.auth == nil {
		a.auth = access.NewAuthenticator(cfg.Store, cfg.AdminTokenHash, a.now)
	}
	if a.onQueued == nil {
		a.onQueued = func() {}
	}
	if a.onTask == nil {
		a.onTask = func() {}
	}
	if a.metrics == nil {
		a.metrics = telemetry.Discard()
	}
	if cfg.APIRateLimit > 0 {
		burst := cfg.APIRateBurst
		if burst == 0 {
			burst = max(1, int(cfg.APIRateLimit*DefaultAPIRateBurstSeconds))
		}
		a.keys = newKeyLimits(cfg.APIRateLimit, burst, cfg.SharedRateLimits, func(err error) {
			a.logger.LogAttrs(context.Background(), slog.LevelWarn, "shared API rate limit unreadable; this node's bucket decides for a second",
				slog.String("error", err.Error()))
		})
		if cfg.SharedRateLimits != nil {
			a.keys.sweeper = cfg.IdleBuckets
		}
	}
	if cfg.AuthFailureBurst > 0 {
		a.fails = newFailLimits(cfg.AuthFailureBurst)
	}
	if a.ready == nil {
		a.ready = telemetry.NewReadiness(telemetry.Check{Name: "store", Run: a.store.Ping, Failure: "The database is not reachable."})
	}
	for _, rt := range a.table() {
		a.routes = append(a.routes, Route{Method: rt.method, Pattern: rt.pattern, Access: rt.access, Write: rt.write, Capabilities: rt.caps, Public: rt.access == Public || rt.access == Probe, Audited: rt.audit, NotAudited: rt.noAudit})
		a.mux.Handle(rt.method+" "+rt.pattern, a.wrapRoute(rt))
		a.public[rt.method+" "+rt.pattern] = rt.access == Public || rt.access == Probe
	}
	a.mux.Handle("/", a.unrouted())
	a.handler = a.withTracing(cfg.TracerProvider, a.withRequestID(a.withAccessLog(a.withRecover(a.mux))))
	return a, nil
}

// ServeHTTP serves one request through the gateway middleware.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}

// Routes returns a copy of the full route table.
func (a *API) Routes() []Route {
	return append([]Route(nil), a.routes...)
}

// handlerFunc is an API handler: it writes its answer and returns nil, or
// returns the error to answer with (written by the route's adapter in one
// place, see errorHandler).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// errorHandler adapts a handlerFunc to net/http, answering its error.
func (a *API) errorHandler(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	}
}

// route is one row of the table: a Route plus its handler.
type route struct {
	method  string
	pattern string
	access  Access
	write   bool
	caps    []string // one of these is needed, unless the principal has no limit
	// audit puts the caller into the request's context as the audit
	// actor of the changes the handler makes (see withAuth).
	audit   bool
	noAudit string // why a route that is not a GET is not audited
	handle  handlerFunc
}

// table is the route table: exactly the Svix API v1 paths Herald serves
// today, plus the liveness and readiness probes and, when configured, the
// Prometheus scrape. Each row declares who may call it: pub (anyone),
// probe (anyone; details to a trusted caller), admin, app (the application
// in the path), any (any valid token). A GET
// reads; every other method writes, except where a row says otherwise.
func (a *API) table() []route {
	row := func(x Access) func(m, p string, h handlerFunc) route {
		return func(m, p string, h handlerFunc) route {
			return route{method: m, pattern: p, access: x, write: m != http.MethodGet, audit: m != http.MethodGet, handle: h}
		}
	}
	pub, admin, auth, anyone, probe := row(Public), row(Admin), row(App), row(Any), row(Probe)
	const (
		app      = "/api/v1/app/{app_id}"
		endpoint = app + "/endpoint/{endpoint_id}"
		msg      = app + "/msg/{msg_id}"
		poller   = app + "/poller/{sink_id}"
		eventTyp = "/api/v1/event-type/{event_type_name}"

		opEndpoints = "/api/v1/operational-webhook/endpoint"
		opEndpoint  = opEndpoints + "/{endpoint_id}"
	)
	routes := []route{
		pub("GET", "/api/v1/health", a.health),
		pub("GET", "/api/v1/health/ping", a.health),
		probe("GET", "/healthz", a.healthz),
		probe("GET", "/readyz", a.readyz),

		admin("GET", "/api/v1/app", a.listApplications),
		admin("POST", "/api/v1/app", a.createApplication),
		auth("GET", app, a.getApplication),
		// The application itself (its name, its rate limit) is the
		// operator's: a token of the application may read it, not change it.
		admin("PUT", app, a.putApplication),
		admin("PATCH", app, a.patchApplication),
		admin("DELETE", app, a.deleteApplication),

		anyone("GET", "/api/v1/event-type", a.listEventTypes),
		admin("POST", "/api/v1/event-type", a.createEventType),
		admin("POST", "/api/v1/event-type/import/openapi", a.importEventTypes),
		anyone("GET", eventTyp, a.getEventType),
		admin("PUT", eventTyp, a.putEventType),
		admin("PATCH", eventTyp, a.patchEventType),
		admin("DELETE", eventTyp, a.deleteEventType),

		admin("POST", "/api/v1/auth/app-portal-access/{app_id}", a.appPortalAccess),
		admin("POST", "/api/v1/auth/app/{app_id}/expire-all", a.expireAllTokens),
		readOnlyOK(anyone("POST", "/api/v1/auth/logout", a.logout)),
		// Herald's own: who changed what, newest first. A read-only admin
		// key may read it.
		admin("GET", "/api/v1/audit-log", a.listAuditLog),
		// Herald's own: the nodes serving this database and their
		// liveness (see nodes.go).
		admin("GET", "/api/v1/node", a.listNodes),
		// Background tasks of every application: the operator's, as the
		// audit log is.
		admin("GET", "/api/v1/background-task", a.listBackgroundTasks),
		admin("GET", "/api/v1/background-task/{task_id}", a.getBackgroundTask),
		// Statistics: background tasks over every application (stats.go).
		admin("POST", "/api/v1/stats/usage/app", a.appUsageStats),
		admin("PUT", "/api/v1/stats/usage/event-types", a.aggregateEventTypes),

		// Herald's OpenAPI document of this server's routes: for any valid
		// token, as the route table is (see unrouted), not for anyone.
		anyone("GET", "/api/v1/openapi.json", a.openapiDoc),

		// API keys: Herald's own extension, the operator's alone.
		admin("GET", "/api/v1/auth/api-key", a.listAPIKeys),
		admin("POST", "/api/v1/auth/api-key", a.createAPIKey),
		admin("GET", "/api/v1/auth/api-key/{key_id}", a.getAPIKey),
		admin("DELETE", "/api/v1/auth/api-key/{key_id}", a.revokeAPIKey),

		// Operational-webhook endpoints: Herald's events about the
		// endpoints it delivers to, the operator's alone.
		admin("GET", opEndpoints, a.listOpEndpoints),
		admin("POST", opEndpoints, a.createOpEndpoint),
		admin("GET", opEndpoint, a.getOpEndpoint),
		admin("PUT", opEndpoint, a.putOpEndpoint),
		admin("DELETE", opEndpoint, a.deleteOpEndpoint),
		admin("GET", opEndpoint+"/headers", a.getOpEndpointHeaders),
		admin("PUT", opEndpoint+"/headers", a.putOpEndpointHeaders),
		admin("GET", opEndpoint+"/secret", a.getOpEndpointSecret),
		admin("POST", opEndpoint+"/secret/rotate", a.rotateOpEndpointSecret),

		auth("GET", app+"/endpoint", a.listEndpoints),
		needs(auth("POST", app+"/endpoint", a.createEndpoint), capManageEndpoint),
		auth("GET", endpoint, a.getEndpoint),
		needs(auth("PUT", endpoint, a.putEndpoint), capManageEndpoint),
		needs(auth("PATCH", endpoint, a.patchEndpoint), capManageEndpoint),
		needs(auth("DELETE", endpoint, a.deleteEndpoint), capManageEndpoint),
		needs(auth("GET", endpoint+"/secret", a.getEndpointSecret), capViewSecret, capManageSecret, capManageEndpoint),
		needs(auth("POST", endpoint+"/secret/rotate", a.rotateEndpointSecret), capManageSecret, capManageEndpoint),
		auth("GET", endpoint+"/headers", a.getEndpointHeaders),
		needs(auth("PUT", endpoint+"/headers", a.putEndpointHeaders), capManageEndpoint),
		needs(auth("PATCH", endpoint+"/headers", a.patchEndpointHeaders), capManageEndpoint),
		auth("GET", endpoint+"/msg", a.listEndpointMessages),
		needs(auth("POST", endpoint+"/recover", a.recoverEndpoint), capCreateAttempts),
		needs(auth("POST", endpoint+"/replay-missing", a.replayMissing), capCreateAttempts),
		needs(auth("POST", endpoint+"/bulk-replay", a.bulkReplay), capCreateAttempts),
		auth("GET", endpoint+"/stats", a.getEndpointStats),
		needs(auth("POST", endpoint+"/send-example", a.sendExample), capCreateAttempts),

		// Sending messages and erasing what was sent are the sender's, not
		// its customer's: no app-portal capability allows them.
		noAudit(needs(auth("POST", app+"/msg", a.createMessage), capUnlimited),
			"the data plane: the message log is its record"),
		auth("GET", app+"/msg", a.listMessages),
		auth("GET", msg, a.getMessage),
		auth("GET", msg+"/raw", a.getMessageRaw),
		needs(auth("DELETE", msg, a.deleteMessage), capUnlimited),
		needs(auth("DELETE", msg+"/content", a.expungeMessageContent), capUnlimited),
		needs(auth("POST", app+"/msg/expunge-all-contents", a.expungeAllContents), capUnlimited),
		// A POST that reads: whether a message would reach any endpoint.
		readOnlyOK(noAudit(auth("POST", app+"/msg/precheck/active", a.precheckActive), "reads only")),
		auth("GET", msg+"/endpoint", a.listMessageEndpoints),
		needs(auth("POST", msg+"/endpoint/{endpoint_id}/resend", a.resendMessage), capCreateAttempts),

		// Polling endpoints (poller.go). Polling reads (ViewBase); a
		// consumer's poll stores its position as the seek does, so both
		// are writes, refused to read-only keys; the seek is audited, the
		// consumer's poll (its data plane, like posting messages) not.
		needs(auth("GET", poller, a.poll), capViewBase),
		writes(needs(auth("GET", poller+"/consumer/{consumer_id}", a.pollConsumer), capViewBase)),
		needs(auth("POST", poller+"/consumer/{consumer_id}/seek", a.seekConsumer), capViewBase),

		auth("GET", app+"/attempt/msg/{msg_id}", a.listAttemptsByMessage),
		auth("GET", app+"/attempt/endpoint/{endpoint_id}", a.listAttemptsByEndpoint),
		auth("GET", msg+"/attempt/{attempt_id}", a.getAttempt),
		needs(auth("DELETE", msg+"/attempt/{attempt_id}/content", a.expungeAttemptContent), capUnlimited),
	}
	// The scrape shows application IDs, queue depths and versions: an
	// admin's (a read-only admin API key suits Prometheus), unless the
	// operator opts out (--metrics-public).
	switch {
	case a.scrape != nil && a.scrapePublic:
		routes = append(routes, pub("GET", "/metrics", a.serveMetrics))
	case a.scrape != nil:
		routes = append(routes, admin("GET", "/metrics", a.serveMetrics))
	}
	return routes
}

// needs marks a route that a principal limited to some capabilities (an
// app-portal token) may call only when it holds one of caps.
func needs(rt route, caps ...string) route {
	rt.caps = caps
	return rt
}

// noAudit marks a route whose changes are not recorded in the audit log;
// why is the row's to say.
func noAudit(rt route, why string) route {
	rt.audit, rt.noAudit = false, why
	return rt
}

// writes marks a GET that changes something (a poll consumer's stored
// position): a read-only principal may not call it.
func writes(rt route) route {
	rt.write = true
	return rt
}

// readOnlyOK marks a POST that a read-only principal may call (logout
// ends the caller's own token: it changes nothing of the application).
func readOnlyOK(rt route) route {
	rt.write = false
	return rt
}

// wrapRoute applies the per-route middleware: authentication and
// authorization for non-public routes, the body limit, and idempotency
// keys on POST.
func (a *API) wrapRoute(rt route) http.Handler {
	var h http.Handler = a.errorHandler(rt.handle)
	if rt.method == http.MethodPost {
		h = a.withIdempotency(h)
	}
	h = a.withBodyLimit(h)
	switch rt.access {
	case Public:
	case Probe:
		h = a.withProbeTrust(h)
	default:
		h = a.withAuth(rt, h)
	}
	return h
}

// unrouted answers requests no route matched: 405 when the path is served
// under other methods, 404 "No such route" otherwise (distinct from the
// "… not found." of a missing entity on a known route). Only to a caller
// with a valid token of any kind: anyone else gets the 401 every
// authenticated route gives, so the route table cannot be mapped
// anonymously. A public path (the health routes) answers its 405 to
// anyone, as its GET does.
func (a *API) unrouted() http.Handler {
	authed := a.withAuth(route{method: "", pattern: "/", access: Any}, http.HandlerFunc(a.noRoute))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, public := a.methodsOf(r); public {
			a.noRoute(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// noRoute writes the 405 or 404 of unrouted.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	if allowed, _ := a.methodsOf(r); len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeErrorBody(w, http.StatusMethodNotAllowed, "method_not_allowed",
			"Method not allowed: "+r.Method+" "+r.URL.Path+" accepts "+strings.Join(allowed, ", ")+".")
		return
	}
	writeErrorBody(w, http.StatusNotFound, herald.ENOTFOUND, "No such route: "+r.Method+" "+r.URL.Path+".")
}

// methodsOf returns the methods the table serves r's path with, and
// whether any of those routes is public.
func (a *API) methodsOf(r *http.Request) (allowed []string, public bool) {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
			public = public || a.public[pattern]
		}
	}
	return allowed, public
}
