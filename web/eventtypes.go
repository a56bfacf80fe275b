package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// eventTypeListView is the data of the event catalog.
type eventTypeListView struct {
	Types           []eventTypeRow
	IncludeArchived bool
	ToggleHref      string
	Prev, Next      string
	// Editable is set in the console for principals that may write.
	Editable bool
}

type eventTypeRow struct {
	eventTypeOut
	Schemas  []schemaView
	EditHref string
	Action   string // archive or restore form
}

// schemaView is one version of an event type's schema, pretty-printed,
// with its top-level properties as a table when it has them.
type schemaView struct {
	Version    string
	Pretty     string
	Properties []propertyRow
}

type propertyRow struct {
	Name, Type, Description string
	Required                bool
}

// eventTypeList shows the catalog 50 at a time; archived types on request.
// The portal shows it read-only.
func (s *Server) eventTypeList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	v := &eventTypeListView{IncludeArchived: q.Get("archived") == "1", Editable: !rc.site.portal && rc.canWrite()}
	query := url.Values{"limit": {"50"}}
	if v.IncludeArchived {
		query.Set("include_archived", "true")
	}
	if it := q.Get("iterator"); it != "" {
		query.Set("iterator", it)
	}
	var list listOut[eventTypeOut]
	if err := s.api(r.Context(), rc.p, "GET", "/event-type", query, nil, &list); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.site.base + "/event-types"
	for _, et := range list.Data {
		row := eventTypeRow{eventTypeOut: et, Schemas: schemaViews(et.Schemas)}
		if v.Editable {
			row.EditHref = base + "/" + pathEscape(et.Name) + "/edit"
			row.Action = base + "/" + pathEscape(et.Name) + "/archive"
		}
		v.Types = append(v.Types, row)
	}
	v.ToggleHref = base + "?archived=1"
	if v.IncludeArchived {
		v.ToggleHref = base
	}
	v.Prev, v.Next = pager(base, q, q.Get("iterator"), list.Iterator, list.PrevIterator, list.Done)
	s.render(w, r, rc, http.StatusOK, "event_types", &page{Title: "Event types", Nav: "event-types", Data: v})
}

// schemaViews reads an event type's schemas: a JSON object of version →
// JSON schema.
func schemaViews(raw json.RawMessage) []schemaView {
	var versions map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &versions) != nil {
		return nil
	}
	var out []schemaView
	for _, version := range slices.Sorted(maps.Keys(versions)) {
		sv := schemaView{Version: version, Pretty: indentJSON(versions[version])}
		var schema struct {
			Properties map[string]struct {
				Type        any    `json:"type"`
				Description string `json:"description"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		if json.Unmarshal(versions[version], &schema) == nil {
			for _, name := range slices.Sorted(maps.Keys(schema.Properties)) {
				p := schema.Properties[name]
				sv.Properties = append(sv.Properties, propertyRow{
					Name: name, Type: typeName(p.Type), Description: p.Description,
					Required: slices.Contains(schema.Required, name),
				})
			}
		}
		out = append(out, sv)
	}
	return out
}

// typeName writes a JSON schema "type": a name or a list of names.
func typeName(t any) string {
	switch t := t.(type) {
	case string:
		return t
	case []any:
		var names []string
		for _, n := range t {
			names = append(names, fmt.Sprint(n))
		}
		return strings.Join(names, " | ")
	}
	return ""
}

// indentJSON pretty-prints JSON, or returns it as it is when it does not
// parse.
func indentJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, bytes.TrimSpace(raw), "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// eventTypeFormView is the data of the event type form.
type eventTypeFormView struct {
	Edit                       bool
	Action, Cancel             string
	Name, Description, Schemas string
	Deprecated                 bool
}

func (s *Server) eventTypeNewForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	base := rc.site.base + "/event-types"
	s.renderEventTypeForm(w, r, rc, http.StatusOK, &eventTypeFormView{Action: base + "/new", Cancel: base}, nil)
}

func (s *Server) renderEventTypeForm(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v *eventTypeFormView, errs map[string]string) {
	pg := &page{Title: "New event type", Nav: "event-types", Data: v, Errors: errs,
		Crumbs: []crumb{{"Event types", rc.site.base + "/event-types"}}}
	if v.Edit {
		pg.Title = "Edit event type " + v.Name
	}
	s.render(w, r, rc, status, "event_type_form", pg)
}

// eventTypeBody reads the form into an EventTypeIn; schemas must be a JSON
// object (the API checks each version is one).
func eventTypeBody(v *eventTypeFormView, edit bool) (map[string]any, error) {
	body := map[string]any{"description": v.Description, "deprecated": v.Deprecated}
	if !edit {
		body["name"] = v.Name
	}
	if strings.TrimSpace(v.Schemas) == "" {
		if edit {
			body["schemas"] = nil
		}
		return body, nil
	}
	var schemas map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v.Schemas), &schemas); err != nil {
		return nil, invalidForm("schemas", "write a JSON object of version → JSON schema, e.g. {\"1\": {\"type\": \"object\"}}")
	}
	body["schemas"] = json.RawMessage(v.Schemas)
	return body, nil
}

func eventTypeForm(r *http.Request) *eventTypeFormView {
	return &eventTypeFormView{
		Name: strings.TrimSpace(r.PostFormValue("name")), Description: r.PostFormValue("description"),
		Schemas: r.PostFormValue("schemas"), Deprecated: r.PostFormValue("deprecated") != "",
	}
}

func (s *Server) eventTypeCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	base := rc.site.base + "/event-types"
	v := eventTypeForm(r)
	v.Action, v.Cancel = base+"/new", base
	show := func(status int, errs map[string]string) { s.renderEventTypeForm(w, r, rc, status, v, errs) }
	body, err := eventTypeBody(v, false)
	if err == nil {
		err = s.api(r.Context(), rc.p, "POST", "/event-type", nil, body, nil)
	}
	if err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	redirect(w, r, base, "et-created")
}

func (s *Server) eventTypeEditForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	var et eventTypeOut
	if err := s.api(r.Context(), rc.p, "GET", "/event-type/"+pathEscape(r.PathValue("name")), nil, nil, &et); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.site.base + "/event-types"
	v := &eventTypeFormView{
		Edit: true, Action: base + "/" + pathEscape(et.Name) + "/edit", Cancel: base,
		Name: et.Name, Description: et.Description, Deprecated: et.Deprecated,
	}
	if len(et.Schemas) > 0 {
		v.Schemas = indentJSON(et.Schemas)
	}
	s.renderEventTypeForm(w, r, rc, http.StatusOK, v, nil)
}

func (s *Server) eventTypeUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	name := r.PathValue("name")
	base := rc.site.base + "/event-types"
	v := eventTypeForm(r)
	v.Edit, v.Name, v.Action, v.Cancel = true, name, base+"/"+pathEscape(name)+"/edit", base
	show := func(status int, errs map[string]string) { s.renderEventTypeForm(w, r, rc, status, v, errs) }
	body, err := eventTypeBody(v, true)
	if err == nil {
		err = s.api(r.Context(), rc.p, "PATCH", "/event-type/"+pathEscape(name), nil, body, nil)
	}
	if err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	redirect(w, r, base, "et-saved")
}

// eventTypeArchive archives an event type (the API's DELETE archives), or
// restores one with archived=false.
func (s *Server) eventTypeArchive(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	path := "/event-type/" + pathEscape(r.PathValue("name"))
	var err error
	flash := "et-archived"
	if r.PostFormValue("archived") == "false" {
		err = s.api(r.Context(), rc.p, "PATCH", path, nil, map[string]any{"archived": false}, nil)
		flash = "et-unarchived"
	} else {
		err = s.api(r.Context(), rc.p, "DELETE", path, nil, nil, nil)
	}
	if err != nil {
		s.fail(w, r, rc, err)
		return
	}
	redirect(w, r, rc.site.base+"/event-types?archived=1", flash)
}
