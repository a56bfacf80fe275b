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

func (a *API) listEventTypes(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Ascending, eventTypeCursor)
	includeArchived := parseBool(q, "include_archived", false, v)
	withContent := parseBool(q, "with_content", true, v)
	if err := v.err(); err != nil {
		return err
	}
	types, err := a.store.ListEventTypes(r.Context(), herald.EventTypeListOptions{
		ListOptions: p.options(), IncludeArchived: includeArchived,
	})
	if err != nil {
		return fmt.Errorf("list event types: %w", err)
	}
	return writeJSON(w, http.StatusOK, paginate(p, types,
		func(et *herald.EventType) string { return et.Name },
		func(et *herald.EventType) eventTypeOut { return toEventTypeOut(et, withContent) }))
}

// createEventType is POST /api/v1/event-type; a taken name is a 409.
func (a *API) createEventType(w http.ResponseWriter, r *http.Request) error {
	var in eventTypeIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		if in.Name == nil {
			v.add("field required", "body", "name")
		} else {
			v.checkName(*in.Name, "body", "name")
		}
		in.validate(&v)
	})
	if err != nil {
		return err
	}
	return a.createEventTypeNamed(w, r, *in.Name, &in)
}

// createEventTypeNamed stores a new event type and answers 201.
func (a *API) createEventTypeNamed(w http.ResponseWriter, r *http.Request, name string, in *eventTypeIn) error {
	now := a.now().UTC()
	et := &herald.EventType{Name: name, CreatedAt: now, UpdatedAt: now}
	in.apply(et)
	if err := a.store.CreateEventType(r.Context(), et); err != nil {
		return fmt.Errorf("create event type: %w", err)
	}
	return writeJSON(w, http.StatusCreated, toEventTypeOut(et, true))
}

// lookupEventType resolves the path's event_type_name.
func (a *API) lookupEventType(r *http.Request) (*herald.EventType, error) {
	et, err := a.store.GetEventType(r.Context(), r.PathValue("event_type_name"))
	if err != nil {
		return nil, fmt.Errorf("get event type: %w", err)
	}
	return et, nil
}

func (a *API) getEventType(w http.ResponseWriter, r *http.Request) error {
	et, err := a.lookupEventType(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toEventTypeOut(et, true))
}

// decodeEventType reads and validates the body of a PUT or PATCH.
func decodeEventType(r *http.Request, in *eventTypeIn) (map[string]json.RawMessage, error) {
	var v validation
	return decodeValid(r, &v, in, false, func(map[string]json.RawMessage) { in.validate(&v) })
}

// putEventType replaces an event type, or creates it (201) when the name
// is new.
func (a *API) putEventType(w http.ResponseWriter, r *http.Request) error {
	var in eventTypeIn
	if _, err := decodeEventType(r, &in); err != nil {
		return err
	}
	name := r.PathValue("event_type_name")
	err := a.updateEventType(w, r, name, in.apply)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		if err := checkPathRef(name, "event_type_name"); err != nil {
			return err
		}
		return a.createEventTypeNamed(w, r, name, &in)
	}
	return err
}

// patchEventType changes only the fields present; null clears featureFlag
// and schemas.
func (a *API) patchEventType(w http.ResponseWriter, r *http.Request) error {
	var in eventTypeIn
	fields, err := decodeEventType(r, &in)
	if err != nil {
		return err
	}
	return a.updateEventType(w, r, r.PathValue("event_type_name"), func(et *herald.EventType) {
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
	})
}

// updateEventType applies change to the event type called name, as stored
// at the write (one store transaction, so concurrent changes of other
// fields are kept), and answers with the result.
func (a *API) updateEventType(w http.ResponseWriter, r *http.Request, name string, change func(*herald.EventType)) error {
	now := a.now().UTC()
	et, err := a.store.UpdateEventTypeFunc(r.Context(), name, func(et *herald.EventType) error {
		change(et)
		et.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("update event type: %w", err)
	}
	return writeJSON(w, http.StatusOK, toEventTypeOut(et, true))
}

// deleteEventType archives the event type, or deletes it with
// ?expunge=true.
func (a *API) deleteEventType(w http.ResponseWriter, r *http.Request) error {
	var v validation
	expunge := parseBool(r.URL.Query(), "expunge", false, &v)
	if err := v.err(); err != nil {
		return err
	}
	et, err := a.lookupEventType(r)
	if err != nil {
		return err
	}
	if expunge {
		err = a.store.DeleteEventType(r.Context(), et.Name)
	} else if !et.Archived {
		// Archive what is stored at the write, keeping a concurrent
		// change of the other fields.
		now := a.now().UTC()
		_, err = a.store.UpdateEventTypeFunc(r.Context(), et.Name, func(et *herald.EventType) error {
			et.Archived, et.UpdatedAt = true, now
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("delete event type: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
