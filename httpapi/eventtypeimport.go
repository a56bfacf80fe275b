package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/webhookspec"
)

// eventTypeImportIn is Svix's EventTypeImportOpenApiIn.
type eventTypeImportIn struct {
	DryRun     *bool           `json:"dryRun"`
	ReplaceAll *bool           `json:"replaceAll"`
	Spec       json.RawMessage `json:"spec"`
	SpecRaw    *string         `json:"specRaw"`
}

// eventTypeFromOpenAPI is Svix's EventTypeFromOpenApi.
type eventTypeFromOpenAPI struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Deprecated  bool            `json:"deprecated"`
	FeatureFlag *string         `json:"featureFlag,omitempty"`
	Schemas     json.RawMessage `json:"schemas,omitempty"`
}

// eventTypeImportOut is Svix's EventTypeImportOpenApiOut.
type eventTypeImportOut struct {
	Data struct {
		Modified []string               `json:"modified"`
		ToModify []eventTypeFromOpenAPI `json:"to_modify,omitempty"`
	} `json:"data"`
}

// importEventTypes is POST /api/v1/event-type/import/openapi: the webhooks
// of an OpenAPI document (spec, a JSON object, or specRaw, JSON or YAML
// text) become event types, each with its request body's schema as version
// "1", in one transaction. An existing event type is replaced and
// unarchived; with replaceAll the others are archived. With dryRun nothing
// is written and to_modify lists what the document defines.
func (a *API) importEventTypes(w http.ResponseWriter, r *http.Request) error {
	var in eventTypeImportIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		spec := rawOrNil(in.Spec)
		switch {
		case spec == nil && in.SpecRaw == nil:
			v.add("either spec or specRaw is required", "body", "spec")
		case spec != nil && in.SpecRaw != nil:
			v.add("only one of spec and specRaw may be given", "body", "specRaw")
		}
	})
	if err != nil {
		return err
	}
	types, err := readSpec(&in)
	if err != nil {
		return err
	}
	dryRun := in.DryRun != nil && *in.DryRun
	replaceAll := in.ReplaceAll != nil && *in.ReplaceAll
	var out eventTypeImportOut
	out.Data.Modified = []string{}
	if dryRun {
		out.Data.ToModify = make([]eventTypeFromOpenAPI, len(types))
		for i, et := range types {
			out.Data.ToModify[i] = eventTypeFromOpenAPI{
				Name: et.Name, Description: et.Description, Deprecated: et.Deprecated,
				FeatureFlag: optString(et.FeatureFlag), Schemas: rawOrNil(et.Schemas),
			}
		}
		return writeJSON(w, http.StatusOK, out)
	}
	now := a.now().UTC()
	for _, et := range types {
		et.CreatedAt, et.UpdatedAt = now, now
	}
	archived, err := a.store.ImportEventTypes(r.Context(), types, replaceAll, now)
	if err != nil {
		return fmt.Errorf("import event types: %w", err)
	}
	for _, et := range types {
		out.Data.Modified = append(out.Data.Modified, et.Name)
	}
	out.Data.Modified = append(out.Data.Modified, archived...)
	slices.Sort(out.Data.Modified)
	return writeJSON(w, http.StatusOK, out)
}

// readSpec reads the document of in into event types, in name order; a
// problem of the document is a 422 at its place in the document.
func readSpec(in *eventTypeImportIn) ([]*herald.EventType, error) {
	field := "spec"
	var doc map[string]any
	var err error
	if in.SpecRaw != nil {
		field = "specRaw"
		doc, err = webhookspec.Decode([]byte(*in.SpecRaw))
	} else {
		doc, err = webhookspec.DecodeJSON(in.Spec)
	}
	var found []webhookspec.EventType
	if err == nil {
		found, err = webhookspec.EventTypes(doc)
	}
	if e, ok := webhookspec.AsError(err); ok {
		return nil, invalid(e.Msg, append([]string{"body", field}, e.Path...)...)
	} else if err != nil {
		return nil, err
	}
	var v validation
	types := make([]*herald.EventType, len(found))
	for i, f := range found {
		hook := append([]string{"body", field}, f.Path...)
		v.checkName(f.Name, hook...)
		if f.FeatureFlag != "" {
			// Where the operation is, when it is not behind a $ref.
			v.checkName(f.FeatureFlag, append(hook, "post", "x-svix-feature-flag")...)
		}
		et := &herald.EventType{Name: f.Name, Description: f.Description, Deprecated: f.Deprecated, FeatureFlag: f.FeatureFlag}
		if f.Schema != nil {
			if et.Schemas, err = json.Marshal(map[string]any{"1": f.Schema}); err != nil {
				return nil, fmt.Errorf("write schema of %s: %w", f.Name, err)
			}
		}
		types[i] = et
	}
	return types, v.err()
}
