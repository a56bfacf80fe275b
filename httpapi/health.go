package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/herald-webhooks/herald"
)

// health is Svix's GET /api/v1/health and /health/ping: 204, no body.
func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// healthz is the liveness probe: the process serves HTTP.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": a.version})
}

// readyBody is /readyz's answer: each check's name with "ok" or, failing,
// its public description; when not ready also the code and detail of
// Herald's error shape.
type readyBody struct {
	Status string            `json:"status,omitempty"`
	Code   string            `json:"code,omitempty"`
	Detail string            `json:"detail,omitempty"`
	Checks map[string]string `json:"checks"`
}

// readyz is the readiness probe: 200 while every check passes (by default
// the store answers; herald serve adds the schema and the dispatcher), 503
// naming the failing checks otherwise. A check's error is logged, never
// shown: the probe needs no token.
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
	if ready {
		return writeJSON(w, http.StatusOK, body)
	}
	body.Status = ""
	body.Code = herald.EUNAVAILABLE
	body.Detail = "Not ready: " + strings.Join(failed, ", ") + "."
	w.Header().Set("Retry-After", retryAfterSeconds)
	return writeJSON(w, http.StatusServiceUnavailable, body)
}
