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
	"time"

	"github.com/herald-webhooks/herald"
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
}

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Route is one entry of the route table. Public routes need no token.
type Route struct {
	Method, Pattern string
	Public          bool
}

// API serves the gateway and the API v1 handlers.
type API struct {
	store    herald.Store
	messages MessageCreator
	token    [32]byte
	maxBody  int64
	logger   *slog.Logger
	now      func() time.Time
	version  string

	routes  []Route
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
	a := &API{
		store:    cfg.Store,
		messages: cfg.Messages,
		token:    cfg.AdminTokenHash,
		maxBody:  cfg.MaxBodyBytes,
		logger:   cfg.Logger,
		now:      cfg.Now,
		version:  cfg.Version,
		mux:      http.NewServeMux(),
	}
	if a.maxBody == 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, rt := range a.table() {
		a.routes = append(a.routes, Route{Method: rt.method, Pattern: rt.pattern, Public: rt.public})
		a.mux.Handle(rt.method+" "+rt.pattern, a.wrapRoute(rt))
	}
	a.mux.HandleFunc("/", a.notFound)
	a.handler = a.withRequestID(a.withAccessLog(a.withRecover(a.mux)))
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

// route is one row of the table: a Route plus its handler.
type route struct {
	method  string
	pattern string
	public  bool
	handle  http.HandlerFunc
}

// table is the route table: exactly the Svix API v1 paths Herald serves
// today, plus the liveness and readiness probes.
func (a *API) table() []route {
	pub := func(m, p string, h http.HandlerFunc) route { return route{m, p, true, h} }
	auth := func(m, p string, h http.HandlerFunc) route { return route{m, p, false, h} }
	const (
		app      = "/api/v1/app/{app_id}"
		endpoint = app + "/endpoint/{endpoint_id}"
		eventTyp = "/api/v1/event-type/{event_type_name}"
	)
	return []route{
		pub("GET", "/api/v1/health", a.health),
		pub("GET", "/api/v1/health/ping", a.health),
		pub("GET", "/healthz", a.healthz),
		pub("GET", "/readyz", a.readyz),

		auth("GET", "/api/v1/app", a.listApplications),
		auth("POST", "/api/v1/app", a.createApplication),
		auth("GET", app, a.getApplication),
		auth("PUT", app, a.putApplication),
		auth("PATCH", app, a.patchApplication),
		auth("DELETE", app, a.deleteApplication),

		auth("GET", "/api/v1/event-type", a.listEventTypes),
		auth("POST", "/api/v1/event-type", a.createEventType),
		auth("GET", eventTyp, a.getEventType),
		auth("PUT", eventTyp, a.putEventType),
		auth("PATCH", eventTyp, a.patchEventType),
		auth("DELETE", eventTyp, a.deleteEventType),

		auth("GET", app+"/endpoint", a.listEndpoints),
		auth("POST", app+"/endpoint", a.createEndpoint),
		auth("GET", endpoint, a.getEndpoint),
		auth("PUT", endpoint, a.putEndpoint),
		auth("PATCH", endpoint, a.patchEndpoint),
		auth("DELETE", endpoint, a.deleteEndpoint),
		auth("GET", endpoint+"/secret", a.getEndpointSecret),
		auth("POST", endpoint+"/secret/rotate", a.rotateEndpointSecret),
		auth("GET", endpoint+"/headers", a.getEndpointHeaders),
		auth("PUT", endpoint+"/headers", a.putEndpointHeaders),
		auth("PATCH", endpoint+"/headers", a.patchEndpointHeaders),

		auth("POST", app+"/msg", a.createMessage),
		auth("GET", app+"/msg", a.listMessages),
		auth("GET", app+"/msg/{msg_id}", a.getMessage),
		auth("DELETE", app+"/msg/{msg_id}/content", a.expungeMessageContent),
	}
}

// wrapRoute applies the per-route middleware: authentication for non-public
// routes, the body limit, and idempotency keys on POST.
func (a *API) wrapRoute(rt route) http.Handler {
	var h http.Handler = rt.handle
	if rt.method == http.MethodPost {
		h = a.withIdempotency(h)
	}
	h = a.withBodyLimit(h)
	if !rt.public {
		h = a.withAuth(h)
	}
	return h
}

// notFound answers requests no route matched: 405 when the path exists
// under another method, 404 otherwise, both as JSON.
func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed", Detail: "Method not allowed."})
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody{Code: herald.ENOTFOUND, Detail: "Entity not found."})
}
