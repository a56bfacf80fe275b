package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// health is Svix's GET /api/v1/health and /health/ping: 204, no body.
func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// healthBody is /healthz's answer; the version only to a trusted caller.
type healthBody struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// healthz is the liveness probe: the process serves HTTP.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	body := healthBody{Status: "ok"}
	if probeTrusted(r) {
		body.Version = a.version
	}
	return writeJSON(w, http.StatusOK, body)
}

// readyBody is /readyz's answer: each check's name with "ok" or, failing,
// its public description; when not ready also the code and detail of
// Herald's error shape. Checks, and the failing checks' names in Detail,
// are shown to trusted callers only.
type readyBody struct {
	Status string            `json:"status,omitempty"`
	Code   string            `json:"code,omitempty"`
	Detail string            `json:"detail,omitempty"`
	Checks map[string]string `json:"checks,omitempty"`
}

// readyz is the readiness probe: 200 while every check passes (by default
// the store answers; herald serve adds the schema and the dispatcher), 503
// otherwise. A check's error is logged, never shown; the checks' names and
// descriptions only to a trusted caller (see withProbeTrust), so that the
// probe, which needs no token, tells strangers nothing but the status.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	ready, results := a.ready.Check(r.Context())
	body := readyBody{Status: "ok", Checks: make(map[string]string, len(results))}
	var failed []string
	for _, res := range results {
		if res.Err == nil {
			body.Checks[res.Name] = "ok"
			continue
		}
		body.Checks[res.Name] = res.Failure
		failed = append(failed, res.Name)
		a.log(r.Context()).LogAttrs(r.Context(), slog.LevelWarn, "readiness check failed",
			slog.String("check", res.Name), slog.String("error", res.Err.Error()))
	}
	detail := "Not ready: " + strings.Join(failed, ", ") + "."
	if !probeTrusted(r) {
		body.Checks = nil
		detail = "Not ready."
	}
	if ready {
		return writeJSON(w, http.StatusOK, body)
	}
	body.Status = ""
	body.Code = herald.EUNAVAILABLE
	body.Detail = detail
	w.Header().Set("Retry-After", retryAfterSeconds)
	return writeJSON(w, http.StatusServiceUnavailable, body)
}

// probeTrustKey marks a request of a Probe route whose caller is trusted.
type probeTrustKey struct{}

// probeTrusted reports whether withProbeTrust trusted r's caller.
func probeTrusted(r *http.Request) bool {
	trusted, _ := r.Context().Value(probeTrustKey{}).(bool)
	return trusted
}

// withProbeTrust is the access check of Probe routes: every caller is
// served, and the request is marked trusted (the handler may then show
// details) when the caller is an in-process principal, presents a valid
// bearer token of any kind, or is on the loopback interface (see
// loopbackCaller). An invalid token is not refused, only not trusted.
func (a *API) withProbeTrust(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, trusted := access.FromContext(r.Context())
		if !trusted {
			trusted = a.loopbackCaller(r)
		}
		if !trusted {
			if token, ok := bearerToken(r.Header.Get("Authorization")); ok {
				_, err := a.auth.Bearer(r.Context(), token)
				trusted = err == nil
			}
		}
		if trusted {
			r = r.WithContext(context.WithValue(r.Context(), probeTrustKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackCaller reports whether r's client is on the loopback interface:
// the container's own HEALTHCHECK, or an operator on the host. The client
// is the one the trusted proxies name (--trusted-proxies); a request from
// an untrusted peer that carries forwarding headers came through a proxy
// Herald was not told about, on this host or not, so it is not taken for
// a local one.
func (a *API) loopbackCaller(r *http.Request) bool {
	addr, err := netip.ParseAddr(a.proxies.ClientAddr(r))
	if err != nil || !addr.Unmap().IsLoopback() {
		return false
	}
	if a.proxies.Trusts(r) {
		return true
	}
	return r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == "" && r.Header.Get("X-Real-Ip") == ""
}
