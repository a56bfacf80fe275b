package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/telemetry"
)

type loggerKey struct{}

// maxRequestIDLen bounds client-chosen request IDs.
const maxRequestIDLen = 128

// withRequestID takes the client's x-request-id when it is short and plain,
// generates one otherwise, sets it on the response and gives the request a
// logger that carries it.
func (a *API) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := RequestID(r)
		w.Header().Set("x-request-id", id)
		logger := a.logger.With(slog.String("request_id", id))
		ctx := context.WithValue(r.Context(), loggerKey{}, logger)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestID returns the request's x-request-id when it is short and
// plain, a new ID otherwise. The console and portal give every API request
// a page makes the page's own ID, so the access log and the audit log tie
// them to the browser's request.
func RequestID(r *http.Request) string {
	if id := r.Header.Get("x-request-id"); validRequestID(id) {
		return id
	}
	return newRequestID()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.written {
		s.status = code
		s.written = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.written {
		s.status = http.StatusOK
		s.written = true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withAccessLog writes one line per request: method, route pattern, status,
// duration and request ID. It never logs headers or bodies. It also counts
// the request in the metrics and names its span after the route.
func (a *API) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.now()
		a.metrics.HTTPRequestStarted()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if !sw.written {
			status = http.StatusOK
		}
		elapsed := a.now().Sub(start)
		// The mux sets the pattern on this request; "/" is the catch-all
		// that answers 404 and 405.
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		a.metrics.HTTPRequestFinished(route, status, elapsed)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(route)
			span.SetAttributes(attribute.String("http.route", route), attribute.String("herald.request_id", w.Header().Get("x-request-id")))
		}
		a.log(r.Context()).LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
		)
	})
}

// withRecover turns a panic in a handler into a logged 500 JSON answer.
func (a *API) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log(r.Context()).LogAttrs(r.Context(), slog.LevelError, "handler panicked",
				slog.String("panic", fmt.Sprint(v)))
			if !sw.written {
				writeErrorBody(sw, http.StatusInternalServerError, herald.EINTERNAL, "Internal error.")
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// withAuth finds the request's principal and checks it against what the
// route declares (see Access). The principal is the one an in-process
// caller put in the context (the console and portal, see
// access.WithPrincipal), or else the one of "Authorization: Bearer
// <token>". An unknown, expired or revoked token is 401; a principal
// without access to the route is 403. The rate limits come first: a
// client address past its failed authentications, or a credential past
// its rate, gets 429 and nothing is done (see ratelimit.go).
func (a *API) withAuth(rt route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, inProcess := access.FromContext(r.Context())
		if !inProcess {
			var ok bool
			if p, ok = a.authenticate(w, r); !ok {
				return
			}
		}
		if a.keys != nil {
			if d, ok := a.keys.allow(r.Context(), limitKey(p), a.now()); !ok {
				a.refuse(w, telemetry.APILimitKey, d)
				return
			}
		}
		r, err := a.authorize(r, rt, p)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		// The bootstrap admin token's principal is what an empty context
		// reads as (FromContext's zero Principal: admin, no token ID), so
		// the hot path of message posts with it allocates no new request.
		if !inProcess && p.TokenID != "" {
			r = r.WithContext(access.WithPrincipal(r.Context(), p))
		}
		if rt.audit {
			r = r.WithContext(herald.WithAuditActor(r.Context(), a.auditActor(w, r, p)))
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate reads the bearer token of r, answering 401 (or 429, for an
// address past its failed authentications) when it does not work.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (access.Principal, bool) {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	addr := ""
	if a.fails != nil && a.fails.active() {
		// Only once some address has failed: the client address is not
		// worked out on the hot path otherwise.
		addr = limitAddr(a.proxies.ClientAddr(r))
		if d, blocked := a.fails.blocked(addr, a.now()); blocked &&
			!a.auth.IsAdminToken(token) && !a.fails.trusted(tokenHash(token), a.now()) {
			a.refuse(w, telemetry.APILimitAuthFailures, d)
			return access.Principal{}, false
		}
	}
	var p access.Principal
	var err error
	if ok {
		p, err = a.auth.Bearer(r.Context(), token)
	} else {
		err = herald.Errorf(herald.EUNAUTHORIZED, "Invalid token.")
	}
	if err != nil {
		if a.fails != nil && herald.ErrorCode(err) == herald.EUNAUTHORIZED {
			if addr == "" {
				addr = limitAddr(a.proxies.ClientAddr(r))
			}
			a.fails.failed(addr, a.now())
		}
		a.writeError(w, r, err)
		return p, false
	}
	if addr != "" && p.TokenID != "" {
		a.fails.succeeded(addr, tokenHash(token), a.now())
	}
	return p, true
}

// authorize decides whether p may call rt: the one place where access is
// checked.
func (a *API) authorize(r *http.Request, rt route, p access.Principal) (*http.Request, error) {
	if rt.write && p.ReadOnly {
		return r, herald.Errorf(herald.EFORBIDDEN, "This token is read-only.")
	}
	if len(rt.caps) > 0 && !p.Can(rt.caps...) {
		return r, herald.Errorf(herald.EFORBIDDEN, "This token's capabilities do not include this operation.")
	}
	switch {
	case p.Admin() || rt.access == Any:
		return r, nil
	case rt.access == Admin:
		return r, herald.Errorf(herald.EFORBIDDEN, "This token is limited to one application.")
	}
	// An application route: the path's application must be the
	// principal's. One answer for another application and for none at
	// all, so a token cannot probe which applications exist.
	ref := r.PathValue("app_id")
	app, err := a.msgApps.Get(ref, func() (*herald.Application, error) { return a.store.GetApplication(r.Context(), ref) })
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		return r, fmt.Errorf("get application: %w", err)
	}
	if err != nil || app.ID != p.AppID {
		return r, herald.Errorf(herald.EFORBIDDEN, "This token cannot access that application.")
	}
	return r.WithContext(context.WithValue(r.Context(), authorizedAppKey{}, app)), nil
}

// authorizedAppKey carries the application authorize resolved, so that
// the handler works on the very application access was granted for.
type authorizedAppKey struct{}

// authorizedApp returns a copy of the application authorize resolved for
// r, if it resolved one (for application-scoped principals only).
func authorizedApp(r *http.Request) (*herald.Application, bool) {
	app, ok := r.Context().Value(authorizedAppKey{}).(*herald.Application)
	if !ok {
		return nil, false
	}
	cp := *app // the cache's own copy stays as it is
	return &cp, true
}

func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// withBodyLimit caps the request body at the configured size; reading past
// it fails with *http.MaxBytesError, which decoding answers with 413.
func (a *API) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// Idempotency parameters.
const (
	maxIdempotencyKeyLen = 256
	idempotencyTTL       = 24 * time.Hour
	// idempotencyTakeover is how old an in-progress record must be before a
	// retry may assume the first request died and take it over.
	idempotencyTakeover = time.Minute
)

// withIdempotency makes a POST with an idempotency-key header run once: a
// retry with the same body gets the stored answer, a different body or a
// retry while the first is still running gets 409.
func (a *API) withIdempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("idempotency-key")
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > maxIdempotencyKeyLen {
			a.writeError(w, r, invalid("ensure this value has at most 256 characters", "header", "idempotency-key"))
			return
		}
		if strings.ContainsFunc(key, isControl) {
			a.writeError(w, r, invalid("idempotency keys cannot contain control characters", "header", "idempotency-key"))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			a.writeError(w, r, bodyReadError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		rec := a.idempotencyRecord(r, key, body)
		existing, err := a.beginIdempotent(r.Context(), rec)
		if err != nil {
			a.writeError(w, r, fmt.Errorf("begin idempotent request: %w", err))
			return
		}
		if existing != nil {
			a.replayIdempotent(w, r, rec, existing)
			return
		}
		a.runIdempotent(w, r, rec, next)
	})
}

// idempotencyRecord scopes the key by credentials, method and path, and
// hashes the body so a different request under the same key is detected.
func (a *API) idempotencyRecord(r *http.Request, key string, body []byte) *herald.IdempotencyRecord {
	// Scoped by the principal: the same key under two tokens is two keys.
	p, _ := access.FromContext(r.Context())
	h := sha256.New()
	h.Write(a.token[:])
	h.Write([]byte{0})
	h.Write([]byte(p.TokenID))
	h.Write([]byte{0})
	h.Write([]byte(r.Method))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.Path))
	h.Write([]byte{0})
	h.Write([]byte(key))
	bodyHash := sha256.Sum256(body)
	now := a.now().UTC()
	return &herald.IdempotencyRecord{
		Key:         hex.EncodeToString(h.Sum(nil)),
		RequestHash: bodyHash[:],
		CreatedAt:   now,
		ExpiresAt:   now.Add(idempotencyTTL),
	}
}

// beginIdempotent records rec as in progress, taking over an in-progress
// record that is older than idempotencyTakeover. It returns the record that
// blocks rec, or nil when rec is now in progress.
func (a *API) beginIdempotent(ctx context.Context, rec *herald.IdempotencyRecord) (*herald.IdempotencyRecord, error) {
	existing, err := a.store.BeginIdempotent(ctx, rec)
	if err != nil || existing == nil || existing.Completed {
		return existing, err
	}
	if a.now().Sub(existing.CreatedAt) < idempotencyTakeover {
		return existing, nil
	}
	// Only the record we saw is abandoned: if another retry took the key
	// over first, this one finds its record below and answers 409.
	if err := a.store.AbandonIdempotent(ctx, existing.Key, existing.CreatedAt); err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		return nil, err
	}
	return a.store.BeginIdempotent(ctx, rec)
}

// replayIdempotent answers a request whose key was seen before.
func (a *API) replayIdempotent(w http.ResponseWriter, r *http.Request, rec, existing *herald.IdempotencyRecord) {
	switch {
	case subtle.ConstantTimeCompare(existing.RequestHash, rec.RequestHash) != 1:
		writeErrorBody(w, http.StatusConflict, herald.ECONFLICT, "idempotency key already used with a different request")
	case !existing.Completed:
		writeErrorBody(w, http.StatusConflict, herald.ECONFLICT, "a request with this idempotency key is still in progress")
	default:
		if len(existing.Body) > 0 {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(existing.StatusCode)
		_, _ = w.Write(existing.Body)
	}
}

// runIdempotent runs the handler, capturing its answer, and stores the
// answer (status < 500) or forgets the key (5xx or panic) so a retry can run.
func (a *API) runIdempotent(w http.ResponseWriter, r *http.Request, rec *herald.IdempotencyRecord, next http.Handler) {
	key := rec.Key
	ctx := context.WithoutCancel(r.Context())
	rw := &recordingWriter{header: w.Header(), status: http.StatusOK}
	completed := false
	defer func() {
		if !completed {
			if err := a.store.AbandonIdempotent(ctx, key, rec.CreatedAt); err != nil {
				a.log(ctx).LogAttrs(ctx, slog.LevelError, "abandon idempotency key", slog.String("error", err.Error()))
			}
		}
	}()
	next.ServeHTTP(rw, r)
	if rw.status < 500 {
		stored := rw.body.Bytes()
		if rw.replay != nil {
			stored = rw.replay
		}
		if err := a.store.CompleteIdempotent(ctx, key, rw.status, stored); err != nil {
			// The work is done; the client gets its answer, but a retry
			// may run it again. Log so operators see it.
			a.log(ctx).LogAttrs(ctx, slog.LevelError, "complete idempotency key", slog.String("error", err.Error()))
		} else {
			completed = true
		}
	}
	w.WriteHeader(rw.status)
	_, _ = w.Write(rw.body.Bytes())
}

// recordingWriter buffers a handler's answer so it can be stored before it
// is sent. Headers go straight to the real writer's header map.
type recordingWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
	// replay, when set, is the body kept for retries instead of body: an
	// answer that holds a secret keeps a copy without it (see
	// withholdFromReplay).
	replay []byte
}

func (rw *recordingWriter) Header() http.Header { return rw.header }

func (rw *recordingWriter) WriteHeader(code int) {
	if !rw.wroteHeader {
		rw.status = code
		rw.wroteHeader = true
	}
}

func (rw *recordingWriter) Write(b []byte) (int, error) {
	rw.wroteHeader = true
	return rw.body.Write(b)
}

// withholdFromReplay makes body, instead of the answer written to w, the
// one an idempotent retry gets, when w records an idempotent request: a
// secret in the answer is then shown once and never stored.
func withholdFromReplay(w http.ResponseWriter, body []byte) {
	for w != nil {
		if rw, ok := w.(*recordingWriter); ok {
			rw.replay = body
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// bodyReadError maps a failure to read the request body to a domain error.
func bodyReadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return herald.Errorf(herald.ETOOLARGE, "Request body is larger than %d bytes.", tooLarge.Limit)
	}
	return herald.Errorf(herald.EBADREQUEST, "Cannot read the request body.")
}

// isControl reports whether r is an ASCII control character (C0 or DEL).
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}

// auditActor is who calls an audited route, as the audit log names them:
// the principal's token (for a session, the session's token with the name
// of the key, portal token or admin token it was opened with), the route's
// pattern (the mux's, "POST /api/v1/app"), the request ID withRequestID set
// on the answer and the client's address as the trusted proxies say.
func (a *API) auditActor(w http.ResponseWriter, r *http.Request, p access.Principal) herald.AuditActor {
	actor := herald.AuditActor{
		TokenID:    p.TokenID,
		TokenKind:  p.Kind,
		TokenName:  p.Name,
		Method:     r.Method,
		Route:      r.Pattern,
		RequestID:  w.Header().Get("x-request-id"),
		ClientAddr: a.proxies.ClientAddr(r),
		At:         a.now(),
	}
	switch {
	case p.TokenID == "":
		actor.TokenName = access.Bootstrap.Name
	case p.Kind == herald.TokenSession:
		actor.TokenName = p.ParentName
		actor.ParentTokenID = p.Parent
	}
	return actor
}
