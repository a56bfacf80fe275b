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

// applicationPatch is Svix's ApplicationPatch: the same fields, whose
// presence is read from the raw body.
type applicationPatch = applicationIn

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

func (a *API) listApplications(w http.ResponseWriter, r *http.Request) error {
	p, v := parsePage(r.URL.Query(), herald.Ascending, appCursor)
	if err := v.err(); err != nil {
		return err
	}
	apps, err := a.store.ListApplications(r.Context(), p.options())
	if err != nil {
		return fmt.Errorf("list applications: %w", err)
	}
	return writeJSON(w, http.StatusOK, paginate(p, apps,
		func(app *herald.Application) string { return app.ID }, toApplicationOut))
}

// createApplication is POST /api/v1/app. With ?get_if_exists=true (the
// SDK's GetOrCreate; get_or_create is accepted too) an application with the
// same uid is returned with 200 instead of a conflict.
func (a *API) createApplication(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v validation
	getIfExists := parseBool(q, "get_if_exists", false, &v) || parseBool(q, "get_or_create", false, &v)
	var in applicationIn
	if _, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) { in.validate(&v, "body") }); err != nil {
		return err
	}
	if getIfExists && in.UID != nil {
		if app, err := a.store.GetApplication(r.Context(), *in.UID); err == nil {
			return writeJSON(w, http.StatusOK, toApplicationOut(app))
		} else if herald.ErrorCode(err) != herald.ENOTFOUND {
			return fmt.Errorf("get application: %w", err)
		}
	}
	app := a.newApplication(&in, "")
	if err := a.store.CreateApplication(r.Context(), app); err != nil {
		if getIfExists && in.UID != nil && herald.ErrorCode(err) == herald.ECONFLICT {
			// Lost a race with another get-or-create of the same uid.
			if existing, gerr := a.store.GetApplication(r.Context(), *in.UID); gerr == nil {
				return writeJSON(w, http.StatusOK, toApplicationOut(existing))
			}
		}
		return fmt.Errorf("create application: %w", err)
	}
	return writeJSON(w, http.StatusCreated, toApplicationOut(app))
}

func (a *API) getApplication(w http.ResponseWriter, r *http.Request) error {
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toApplicationOut(app))
}

// putApplication replaces an application, or creates it (201) with the
// path's app_id as its uid when none exists.
func (a *API) putApplication(w http.ResponseWriter, r *http.Request) error {
	var in applicationIn
	var v validation
	if _, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) { in.validate(&v, "body") }); err != nil {
		return err
	}
	ref := r.PathValue("app_id")
	err := a.updateApplication(w, r, ref, func(app *herald.Application) {
		app.Name = *in.Name
		if in.UID != nil {
			app.UID = *in.UID
		}
		app.RateLimit = pickRate(in.RateLimit, in.ThrottleRate)
		app.Metadata = nonNilMap(in.Metadata)
	})
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return a.createApplicationAt(w, r, ref, &in)
	}
	return err
}

// createApplicationAt is PUT's create branch: the path's ref becomes the
// uid unless the body has one.
func (a *API) createApplicationAt(w http.ResponseWriter, r *http.Request, ref string, in *applicationIn) error {
	if in.UID == nil {
		if err := checkPathRef(ref, "app_id"); err != nil {
			return err
		}
	}
	app := a.newApplication(in, ref)
	if err := a.store.CreateApplication(r.Context(), app); err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	return writeJSON(w, http.StatusCreated, toApplicationOut(app))
}

// patchApplication changes only the fields present in the body; a null uid
// or rate clears it.
func (a *API) patchApplication(w http.ResponseWriter, r *http.Request) error {
	var in applicationPatch
	var v validation
	fields, err := decodeValid(r, &v, &in, false, func(fields map[string]json.RawMessage) {
		if present(fields, "name") && (in.Name == nil || *in.Name == "") {
			v.add("ensure this value has at least 1 characters", "body", "name")
		}
		v.checkOptionalName(in.UID, "body", "uid")
	})
	if err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	return a.updateApplication(w, r, app.ID, func(app *herald.Application) {
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
	})
}

// updateApplication applies change to the application ref names, as
// stored at the write (one store transaction, so concurrent changes of
// other fields are kept), and answers with the result.
func (a *API) updateApplication(w http.ResponseWriter, r *http.Request, ref string, change func(*herald.Application)) error {
	now := a.now().UTC()
	app, err := a.store.UpdateApplicationFunc(r.Context(), ref, func(app *herald.Application) error {
		change(app)
		app.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("update application: %w", err)
	}
	a.forgetApp(app)
	return writeJSON(w, http.StatusOK, toApplicationOut(app))
}

func (a *API) deleteApplication(w http.ResponseWriter, r *http.Request) error {
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteApplication(r.Context(), app.ID); err != nil {
		return fmt.Errorf("delete application: %w", err)
	}
	a.forgetApp(app)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// lookupApp resolves the path's app_id (an ID or uid).
func (a *API) lookupApp(r *http.Request) (*herald.Application, error) {
	if app, ok := authorizedApp(r); ok {
		return app, nil
	}
	app, err := a.store.GetApplication(r.Context(), r.PathValue("app_id"))
	if err != nil {
		return nil, fmt.Errorf("get application: %w", err)
	}
	return app, nil
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

// forgetApp empties the cache of message posts' applications (a changed
// uid leaves no stale entry under the old one): this node's next message
// reads the change; other nodes see it within appCacheTTL.
func (a *API) forgetApp(*herald.Application) { a.msgApps.Clear() }
