package httpapi

import (
	"log/slog"
	"net/http"

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

// readyz is the readiness probe: 200 while the store answers, 503 otherwise
// (whatever the store's error, which is logged, not shown).
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.store.Ping(r.Context()); err != nil {
		a.log(r.Context()).LogAttrs(r.Context(), slog.LevelWarn, "readiness check failed",
			slog.String("error", err.Error()))
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeErrorBody(w, http.StatusServiceUnavailable, herald.EUNAVAILABLE, "The database is not reachable.")
		return nil
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
