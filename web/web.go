// Package web serves Herald's operator console (/console) and the
// customer app portal (/portal): server-rendered pages (html/template,
// embedded), our own CSS and a little plain JavaScript.
//
// The pages are one more client of the API: every read and every change
// is an in-process request to the API handler, made as the principal of
// the browser session (see apiclient.go). The API's validation,
// authorization and errors therefore apply to the pages unchanged, and no
// page reads application data from the store.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/httpapi"
)

// Config holds what the console and the portal need; New fills in
// defaults.
type Config struct {
	// API is the API handler (the real *httpapi.API), called in-process.
	API http.Handler
	// Auth checks login tokens and session cookies and opens sessions.
	Auth *access.Authenticator
	// Store is read only for QueueStats, for the overview.
	Store herald.Store
	// Gatherer is the node's metrics registry, for the overview charts;
	// nil leaves the charts empty.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Now is the clock; the default is time.Now.
	Now func() time.Time
	// Proxies are the reverse proxies whose X-Forwarded-Proto (for Secure
	// cookies) and X-Forwarded-For (the login rate limit's client address)
	// are believed; nil trusts none.
	Proxies *access.Proxies
	// PortalFrameAncestors is the CSP frame-ancestors source list of portal
	// pages; the default "'self'" forbids embedding by other sites.
	PortalFrameAncestors string
	Version              string
}

// Server serves the console and the portal.
type Server struct {
	cfg     Config
	handler http.Handler
	auth    *access.Authenticator
	logger  *slog.Logger
	now     func() time.Time
	console *site
	portal  *site
	views   *views
	assets  *assets
	logins  *limiter
	sampler *sampler
	mux     *http.ServeMux

	runOnce sync.Once
}

// New checks cfg, parses the templates (a broken template fails here, not
// in a request) and builds the routes.
func New(cfg Config) (*Server, error) {
	if cfg.API == nil {
		return nil, errors.New("web: Config.API is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("web: Config.Auth is required")
	}
	if cfg.PortalFrameAncestors == "" {
		cfg.PortalFrameAncestors = "'self'"
	}
	if strings.ContainsAny(cfg.PortalFrameAncestors, ";,\r\n") {
		return nil, errors.New("web: Config.PortalFrameAncestors must be a space-separated CSP source list")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	vs, err := parseViews()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		handler: cfg.API,
		auth:    cfg.Auth,
		logger:  cfg.Logger,
		now:     cfg.Now,
		views:   vs,
		assets:  as,
		logins:  newLimiter(loginRate, loginBurst, maxLimiters),
		sampler: newSampler(cfg.Store, cfg.Gatherer, cfg.Now, cfg.Logger),
		mux:     http.NewServeMux(),
	}
	s.console = &site{
		name: "console", base: "/console", cookie: "herald_console",
		csp:      cspBase + "img-src 'self' data:; " + cspTail + "frame-ancestors 'none'",
		sameSite: http.SameSiteStrictMode,
	}
	// A portal embedded in another site's iframe is a third-party context:
	// browsers never send SameSite=Strict or Lax cookies there, so its
	// session would never arrive. SameSite=None (which requires Secure)
	// lets it through; Partitioned (CHIPS) keys the cookie to the embedding
	// site, so it is not a cross-site tracking cookie and works where
	// third-party cookies are blocked. CSRF tokens and the Origin check
	// still guard every change.
	portalSameSite, partitioned := http.SameSiteStrictMode, false
	if framedByOthers(cfg.PortalFrameAncestors) {
		portalSameSite, partitioned = http.SameSiteNoneMode, true
	}
	s.portal = &site{
		name: "portal", base: "/portal", cookie: "herald_portal", portal: true,
		csp:      cspBase + "img-src 'self' data: https:; " + cspTail + "frame-ancestors " + cfg.PortalFrameAncestors,
		sameSite: portalSameSite, partitioned: partitioned,
		sameOriginFrames: !framedByOthers(cfg.PortalFrameAncestors),
	}
	s.routes()
	return s, nil
}

// Content-Security-Policy parts shared by both sites: no inline script or
// style anywhere, no request to another origin.
const (
	cspBase = "default-src 'none'; script-src 'self'; style-src 'self'; "
	cspTail = "connect-src 'self'; form-action 'self'; base-uri 'none'; "
)

// framedByOthers reports whether a frame-ancestors source list lets a
// site other than Herald's own frame the portal: anything but 'self' and
// 'none'.
func framedByOthers(sources string) bool {
	for _, src := range strings.Fields(sources) {
		if src != "'self'" && src != "'none'" {
			return true
		}
	}
	return false
}

// ServeHTTP serves /console, /console/…, /portal, /portal/… and GET /
// (a redirect to the console). Every answer carries the security headers
// of its site, errors and redirects included.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.console
	if r.URL.Path == "/portal" || strings.HasPrefix(r.URL.Path, "/portal/") {
		st = s.portal
	}
	st.secure(w.Header())
	id := httpapi.RequestID(r)
	w.Header().Set("x-request-id", id)
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), originKey{}, origin{r: r, requestID: id})))
}

// origin is the browser's request a page answers: the API requests the
// page makes carry its connection's address, the forwarding headers a
// trusted proxy set and its request ID, so that the API's access log, rate
// limits and audit log name the browser's client and one request ID per
// page, not the in-process call.
type origin struct {
	r         *http.Request
	requestID string
}

type originKey struct{}

// forward gives req, an in-process API request made for the page whose
// context is ctx, the page's client address, forwarding headers and
// request ID. Whether the forwarding headers are believed is still decided
// by --trusted-proxies on the original connection's address.
func forward(ctx context.Context, req *http.Request) {
	o, ok := ctx.Value(originKey{}).(origin)
	if !ok {
		return
	}
	req.RemoteAddr = o.r.RemoteAddr
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
		if v := o.r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	req.Header.Set("x-request-id", o.requestID)
}

// Run samples this node's metrics and queue for the overview every
// sampleEvery until ctx ends. Only the first call samples; later calls
// return when ctx ends.
func (s *Server) Run(ctx context.Context) {
	ran := false
	s.runOnce.Do(func() {
		ran = true
		s.sampler.run(ctx)
	})
	if !ran {
		<-ctx.Done()
	}
}

// site is what differs between the console and the portal: the page
// handlers are shared and read it to build links, pick the application and
// decide what to offer.
type site struct {
	name   string // "console" or "portal": also the session's name
	base   string // path prefix, no trailing slash
	cookie string // session cookie name
	// portal sites serve the one application of the session's principal.
	portal           bool
	csp              string
	sameSite         http.SameSite
	partitioned      bool
	sameOriginFrames bool
}

// secure sets the headers every answer of the site carries. Pages keep
// Cache-Control: no-store; assets replace it.
func (st *site) secure(h http.Header) {
	h.Set("Content-Security-Policy", st.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	switch {
	case !st.portal:
		h.Set("X-Frame-Options", "DENY")
	case st.sameOriginFrames:
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
}

// loginCSRFCookie is the double-submit cookie of the login forms.
func (st *site) loginCSRFCookie() string { return "herald_login_csrf" }

// themeCookie remembers the portal's theme options.
const themeCookie = "herald_portal_theme"

// routes registers every page. App-scoped pages are registered twice: under
// /console/apps/{app} and, for the portal, under /portal, where the
// application always comes from the session.
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	for _, st := range []*site{s.console, s.portal} {
		m.HandleFunc("GET "+st.base+"/static/{file}", s.serveAsset)
		m.HandleFunc(st.base, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, st.base+"/", http.StatusSeeOther)
		})
		m.Handle("POST "+st.base+"/logout", s.session(st, s.logout))
		m.HandleFunc(st.base+"/", func(w http.ResponseWriter, r *http.Request) {
			s.renderError(w, r, &reqCtx{site: st}, http.StatusNotFound, "There is no page here.")
		})
	}
	m.HandleFunc("GET /console/login", s.consoleLoginForm)
	m.HandleFunc("POST /console/login", s.consoleLogin)
	m.HandleFunc("GET /portal/login", s.portalLoginForm)
	m.HandleFunc("POST /portal/login", s.portalLogin)
	m.HandleFunc("GET /portal/theme.css", s.themeCSS)

	c := s.console
	m.Handle("GET /console/{$}", s.session(c, s.overview))
	m.Handle("GET /console/apps", s.session(c, s.appList))
	m.Handle("GET /console/apps/new", s.session(c, s.appNewForm))
	m.Handle("POST /console/apps/new", s.session(c, s.appCreate))
	m.Handle("GET /console/apps/{app}/edit", s.session(c, s.appEditForm))
	m.Handle("POST /console/apps/{app}/edit", s.session(c, s.appUpdate))
	m.Handle("GET /console/apps/{app}/delete", s.session(c, s.appDeleteForm))
	m.Handle("POST /console/apps/{app}/delete", s.session(c, s.appDelete))
	m.Handle("GET /console/event-types/new", s.session(c, s.eventTypeNewForm))
	m.Handle("POST /console/event-types/new", s.session(c, s.eventTypeCreate))
	m.Handle("GET /console/event-types/{name}/edit", s.session(c, s.eventTypeEditForm))
	m.Handle("POST /console/event-types/{name}/edit", s.session(c, s.eventTypeUpdate))
	m.Handle("POST /console/event-types/{name}/archive", s.session(c, s.eventTypeArchive))

	for _, st := range []*site{s.console, s.portal} {
		m.Handle("GET "+st.base+"/event-types", s.session(st, s.eventTypeList))
	}
	appRoutes := []struct {
		pattern string // method and path below the application's base
		h       handler
	}{
		{"GET ", s.appPage},
		{"GET /endpoints/new", s.endpointNewForm},
		{"POST /endpoints/new", s.endpointCreate},
		{"GET /endpoints/{ep}", s.endpointPage},
		{"GET /endpoints/{ep}/edit", s.endpointEditForm},
		{"POST /endpoints/{ep}/edit", s.endpointUpdate},
		{"GET /endpoints/{ep}/delete", s.endpointDeleteForm},
		{"POST /endpoints/{ep}/delete", s.endpointDelete},
		{"POST /endpoints/{ep}/secret", s.endpointSecret},
		{"POST /endpoints/{ep}/{action}", s.endpointAction},
		{"GET /messages", s.messageList},
		{"GET /messages/{msg}", s.messagePage},
		{"POST /messages/{msg}/resend", s.messageResend},
	}
	for _, rt := range appRoutes {
		method, rest, _ := strings.Cut(rt.pattern, " ")
		m.Handle(method+" /console/apps/{app}"+rest, s.session(c, rt.h))
		if rest == "" {
			rest = "/{$}"
		}
		m.Handle(method+" /portal"+rest, s.session(s.portal, rt.h))
	}
}
