package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// eventTypeIn is Svix's EventTypeIn, EventTypeUpdate and EventTypePatch
// (the name is only read on POST; PATCH reads presence from the raw body).
type eventTypeIn struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Archived    *bool           `json:"archived"`
	Deprecated  *bool           `json:"deprecated"`
	FeatureFlag *string         `json:"featureFlag"`
	Schemas     json.RawMessage `json:"schemas"`
}

// eventTypeOut is Svix's EventTypeOut.
type eventTypeOut struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Archived    bool            `json:"archived"`
	Deprecated  bool            `json:"deprecated"`
	FeatureFlag *string         `json:"featureFlag,omitempty"`
	Schemas     json.RawMessage `json:"schemas,omitempty"`
	CreatedAt   string          `json:"createdAt"`
	UpdatedAt   string          `json:"updatedAt"`
}

func toEventTypeOut(et *herald.EventType, withContent bool) eventTypeOut {
	out := eventTypeOut{
		Name:        et.Name,
		Description: et.Description,
		Archived:    et.Archived,
		Deprecated:  et.Deprecated,
		FeatureFlag: optString(et.FeatureFlag),
		CreatedAt:   formatTime(et.CreatedAt),
		UpdatedAt:   formatTime(et.UpdatedAt),
	}
	if withContent && len(et.Schemas) > 0 {
		out.Schemas = et.Schemas
	}
	return out
}

// validate checks the fields other than the name.
func (in *eventTypeIn) validate(v *validation) {
	v.checkOptionalName(in.FeatureFlag, "body", "featureFlag")
	if schemas := rawOrNil(in.Schemas); schemas != nil {
		var versions map[string]json.RawMessage
		if err := json.Unmarshal(schemas, &versions); err != nil {
			v.add("value is not a valid JSON object", "body", "schemas")
			return
		}
		for version, schema := range versions {
			if t := bytes.TrimSpace(schema); len(t) == 0 || t[0] != '{' {
				v.add("each schema must be a JSON object", "body", "schemas", version)
			}
		}
	}
}

// apply sets the fields of a full replacement (POST or PUT) on et.
func (in *eventTypeIn) apply(et *herald.EventType) {
	et.Description = derefString(in.Description)
	et.Archived = in.Archived != nil && *in.Archived
	et.Deprecated = in.Deprecated != nil && *in.Deprecated
	et.FeatureFlag = derefString(in.FeatureFlag)
	et.Schemas = rawOrNil(in.Schemas)
}

func (a *API) listEventTypes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Ascending)
	includeArchived := parseBool(q, "include_archived", false, v)
	withContent := parseBool(q, "with_content", true, v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	types, err := a.store.ListEventTypes(r.Context(), herald.EventTypeListOptions{
		ListOptions: p.options(), IncludeArchived: includeArchived,
	})
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list event types: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, paginate(p, types,
		func(et *herald.EventType) string { return et.Name },
		func(et *herald.EventType) eventTypeOut { return toEventTypeOut(et, withContent) }))
}

// createEventType is POST /api/v1/event-type; a taken name is a 409.
func (a *API) createEventType(w http.ResponseWriter, r *http.Request) {
	var in eventTypeIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	if in.Name == nil {
		v.add("field required", "body", "name")
	} else {
		v.checkName(*in.Name, "body", "name")
	}
	in.validate(&v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	now := a.now().UTC()
	et := &herald.EventType{Name: *in.Name, CreatedAt: now, UpdatedAt: now}
	in.apply(et)
	if err := a.store.CreateEventType(r.Context(), et); err != nil {
		a.writeError(w, r, fmt.Errorf("create event type: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, toEventTypeOut(et, true))
}

func (a *API) getEventType(w http.ResponseWriter, r *http.Request) {
	et, err := a.store.GetEventType(r.Context(), r.PathValue("event_type_name"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get event type: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toEventTypeOut(et, true))
}

// putEventType replaces an event type, or creates it (201) when the name
// is new.
func (a *API) putEventType(w http.ResponseWriter, r *http.Request) {
	var in eventTypeIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("event_type_name")
	var v validation
	in.validate(&v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	now := a.now().UTC()
	et, err := a.store.GetEventType(r.Context(), name)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		var pv validation
		pv.checkName(name, "path", "event_type_name")
		if err := pv.err(); err != nil {
			a.writeError(w, r, err)
			return
		}
		et = &herald.EventType{Name: name, CreatedAt: now, UpdatedAt: now}
		in.apply(et)
		if err := a.store.CreateEventType(r.Context(), et); err != nil {
			a.writeError(w, r, fmt.Errorf("create event type: %w", err))
			return
		}
		writeJSON(w, http.StatusCreated, toEventTypeOut(et, true))
		return
	case err != nil:
		a.writeError(w, r, fmt.Errorf("get event type: %w", err))
		return
	}
	in.apply(et)
	et.UpdatedAt = now
	if err := a.store.UpdateEventType(r.Context(), et); err != nil {
		a.writeError(w, r, fmt.Errorf("update event type: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toEventTypeOut(et, true))
}

// patchEventType changes only the fields present; null clears featureFlag
// and schemas.
func (a *API) patchEventType(w http.ResponseWriter, r *http.Request) {
	var in eventTypeIn
	fields, err := decodeJSON(r, &in, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	in.validate(&v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	et, err := a.store.GetEventType(r.Context(), r.PathValue("event_type_name"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get event type: %w", err))
		return
	}
	if in.Description != nil {
		et.Description = *in.Description
	}
	if in.Archived != nil {
		et.Archived = *in.Archived
	}
	if in.Deprecated != nil {
		et.Deprecated = *in.Deprecated
	}
	if present(fields, "featureFlag") {
		et.FeatureFlag = derefString(in.FeatureFlag)
	}
	if present(fields, "schemas") {
		et.Schemas = rawOrNil(in.Schemas)
	}
	et.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateEventType(r.Context(), et); err != nil {
		a.writeError(w, r, fmt.Errorf("update event type: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toEventTypeOut(et, true))
}

// deleteEventType archives the event type, or deletes it with
// ?expunge=true.
func (a *API) deleteEventType(w http.ResponseWriter, r *http.Request) {
	var v validation
	expunge := parseBool(r.URL.Query(), "expunge", false, &v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	et, err := a.store.GetEventType(r.Context(), r.PathValue("event_type_name"))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("get event type: %w", err))
		return
	}
	if expunge {
		err = a.store.DeleteEventType(r.Context(), et.Name)
	} else if !et.Archived {
		et.Archived = true
		et.UpdatedAt = a.now().UTC()
		err = a.store.UpdateEventType(r.Context(), et)
	}
	if err != nil {
		a.writeError(w, r, fmt.Errorf("delete event type: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
