package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// applicationIn is Svix's ApplicationIn (POST and PUT bodies, and the
// optional application of a MessageIn).
type applicationIn struct {
	Name         *string           `json:"name"`
	UID          *string           `json:"uid"`
	RateLimit    *uint16           `json:"rateLimit"`
	ThrottleRate *uint16           `json:"throttleRate"`
	Metadata     map[string]string `json:"metadata"`
}

// applicationPatch is Svix's ApplicationPatch; presence of each field is
// read from the raw body.
type applicationPatch struct {
	Name         *string           `json:"name"`
	UID          *string           `json:"uid"`
	RateLimit    *uint16           `json:"rateLimit"`
	ThrottleRate *uint16           `json:"throttleRate"`
	Metadata     map[string]string `json:"metadata"`
}

// applicationOut is Svix's ApplicationOut, with both names of the rate.
type applicationOut struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	UID          *string           `json:"uid,omitempty"`
	RateLimit    *uint16           `json:"rateLimit,omitempty"`
	ThrottleRate *uint16           `json:"throttleRate,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"createdAt"`
	UpdatedAt    string            `json:"updatedAt"`
}

func toApplicationOut(app *herald.Application) applicationOut {
	out := applicationOut{
		ID:           app.ID,
		Name:         app.Name,
		UID:          optString(app.UID),
		RateLimit:    app.RateLimit,
		ThrottleRate: app.RateLimit,
		Metadata:     nonNilMap(app.Metadata),
		CreatedAt:    formatTime(app.CreatedAt),
		UpdatedAt:    formatTime(app.UpdatedAt),
	}
	return out
}

// validate checks an ApplicationIn; loc is where it sits in the body.
func (in *applicationIn) validate(v *validation, loc ...string) {
	if in.Name == nil {
		v.add("field required", at(loc, "name")...)
	} else if *in.Name == "" {
		v.add("ensure this value has at least 1 characters", at(loc, "name")...)
	}
	v.checkOptionalName(in.UID, at(loc, "uid")...)
	checkRate(v, in.RateLimit, 1, at(loc, "rateLimit"))
	checkRate(v, in.ThrottleRate, 1, at(loc, "throttleRate"))
}

// checkRate enforces a rate's minimum (the maximum is uint16's).
func checkRate(v *validation, rate *uint16, minimum uint16, loc []string) {
	if rate != nil && *rate < minimum {
		v.add(fmt.Sprintf("ensure this value is greater than or equal to %d", minimum), loc...)
	}
}

// pickRate returns throttleRate when given, rateLimit otherwise.
func pickRate(rateLimit, throttleRate *uint16) *uint16 {
	if throttleRate != nil {
		return throttleRate
	}
	return rateLimit
}

// newApplication builds a new application from a validated ApplicationIn.
func (a *API) newApplication(in *applicationIn, uid string) *herald.Application {
	now := a.now().UTC()
	if in.UID != nil {
		uid = *in.UID
	}
	return &herald.Application{
		ID:        herald.NewIDAt(herald.PrefixApplication, now),
		UID:       uid,
		Name:      *in.Name,
		RateLimit: pickRate(in.RateLimit, in.ThrottleRate),
		Metadata:  nonNilMap(in.Metadata),
		CreatedAt: now,
		UpdatedAt: now,
	}
}

func (a *API) listApplications(w http.ResponseWriter, r *http.Request) {
	p, v := parsePage(r.URL.Query(), herald.Ascending)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	apps, err := a.store.ListApplications(r.Context(), p.options())
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list applications: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, paginate(p, apps,
		func(app *herald.Application) string { return app.ID }, toApplicationOut))
}

// createApplication is POST /api/v1/app. With ?get_if_exists=true (the
// SDK's GetOrCreate; get_or_create is accepted too) an application with the
// same uid is returned with 200 instead of a conflict.
func (a *API) createApplication(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v validation
	getIfExists := parseBool(q, "get_if_exists", false, &v) || parseBool(q, "get_or_create", false, &v)
	var in applicationIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	in.validate(&v, "body")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	if getIfExists && in.UID != nil {
		if app, err := a.store.GetApplication(r.Context(), *in.UID); err == nil {
			writeJSON(w, http.StatusOK, toApplicationOut(app))
			return
		} else if herald.ErrorCode(err) != herald.ENOTFOUND {
			a.writeError(w, r, fmt.Errorf("get application: %w", err))
			return
		}
	}
	app := a.newApplication(&in, "")
	if err := a.store.CreateApplication(r.Context(), app); err != nil {
		if getIfExists && in.UID != nil && herald.ErrorCode(err) == herald.ECONFLICT {
			// Lost a race with another get-or-create of the same uid.
			if existing, gerr := a.store.GetApplication(r.Context(), *in.UID); gerr == nil {
				writeJSON(w, http.StatusOK, toApplicationOut(existing))
				return
			}
		}
		a.writeError(w, r, fmt.Errorf("create application: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, toApplicationOut(app))
}

func (a *API) getApplication(w http.ResponseWriter, r *http.Request) {
	app, err := a.store.GetApplication(r.Context(), r.PathValue("app_id"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get application: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toApplicationOut(app))
}

// putApplication replaces an application, or creates it (201) with the
// path's app_id as its uid when none exists.
func (a *API) putApplication(w http.ResponseWriter, r *http.Request) {
	var in applicationIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	in.validate(&v, "body")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	ref := r.PathValue("app_id")
	app, err := a.store.GetApplication(r.Context(), ref)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		if in.UID == nil {
			var pv validation
			pv.checkName(ref, "path", "app_id")
			if err := pv.err(); err != nil {
				a.writeError(w, r, err)
				return
			}
		}
		app = a.newApplication(&in, ref)
		if err := a.store.CreateApplication(r.Context(), app); err != nil {
			a.writeError(w, r, fmt.Errorf("create application: %w", err))
			return
		}
		writeJSON(w, http.StatusCreated, toApplicationOut(app))
		return
	case err != nil:
		a.writeError(w, r, fmt.Errorf("get application: %w", err))
		return
	}
	app.Name = *in.Name
	if in.UID != nil {
		app.UID = *in.UID
	}
	app.RateLimit = pickRate(in.RateLimit, in.ThrottleRate)
	app.Metadata = nonNilMap(in.Metadata)
	app.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateApplication(r.Context(), app); err != nil {
		a.writeError(w, r, fmt.Errorf("update application: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toApplicationOut(app))
}

// patchApplication changes only the fields present in the body; a null uid
// or rate clears it.
func (a *API) patchApplication(w http.ResponseWriter, r *http.Request) {
	var in applicationPatch
	fields, err := decodeJSON(r, &in, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	if present(fields, "name") && (in.Name == nil || *in.Name == "") {
		v.add("ensure this value has at least 1 characters", "body", "name")
	}
	v.checkOptionalName(in.UID, "body", "uid")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.store.GetApplication(r.Context(), r.PathValue("app_id"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get application: %w", err))
		return
	}
	if in.Name != nil {
		app.Name = *in.Name
	}
	if present(fields, "uid") {
		app.UID = derefString(in.UID)
	}
	if present(fields, "throttleRate") {
		app.RateLimit = in.ThrottleRate
	} else if present(fields, "rateLimit") {
		app.RateLimit = in.RateLimit
	}
	if present(fields, "metadata") && !isNull(fields["metadata"]) {
		app.Metadata = nonNilMap(in.Metadata)
	}
	app.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateApplication(r.Context(), app); err != nil {
		a.writeError(w, r, fmt.Errorf("update application: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toApplicationOut(app))
}

func (a *API) deleteApplication(w http.ResponseWriter, r *http.Request) {
	app, err := a.store.GetApplication(r.Context(), r.PathValue("app_id"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get application: %w", err))
		return
	}
	if err := a.store.DeleteApplication(r.Context(), app.ID); err != nil {
		a.writeError(w, r, fmt.Errorf("delete application: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// optString returns nil for "" so optional strings are omitted.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// rawOrNil returns raw unless it is absent or JSON null.
func rawOrNil(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	return raw
}
