package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// appListView is the data of the applications page.
type appListView struct {
	Apps []appRow
	// Filter is the name filter applied to this page only (the API has no
	// search by name); Hidden counts the rows it hid.
	Filter     string
	Hidden     int
	Iterator   string
	Prev, Next string
}

type appRow struct {
	appOut
	Href string
}

// appList lists applications 50 at a time with the API's iterators. "Go
// to" opens an application by ID or uid (the API resolves both); the name
// filter narrows the current page only.
func (s *Server) appList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	pg := &page{Title: "Applications", Nav: "apps"}
	if ref := strings.TrimSpace(q.Get("go")); ref != "" {
		var app appOut
		err := s.api(r.Context(), rc.p, "GET", appPath(ref), nil, nil, &app)
		if err == nil {
			http.Redirect(w, r, rc.appBase(app.ID), http.StatusSeeOther)
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			s.fail(w, r, rc, err)
			return
		}
		pg.Flash, pg.FlashError = "No application has the ID or UID "+ref+".", true
	}
	query := url.Values{"limit": {"50"}}
	if it := q.Get("iterator"); it != "" {
		query.Set("iterator", it)
	}
	var list listOut[appOut]
	if err := s.api(r.Context(), rc.p, "GET", "/app", query, nil, &list); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	v := &appListView{Filter: strings.TrimSpace(q.Get("q")), Iterator: q.Get("iterator")}
	needle := strings.ToLower(v.Filter)
	for _, app := range list.Data {
		if needle != "" && !strings.Contains(strings.ToLower(app.Name), needle) {
			v.Hidden++
			continue
		}
		v.Apps = append(v.Apps, appRow{appOut: app, Href: rc.appBase(app.ID)})
	}
	v.Prev, v.Next = pager(rc.site.base+"/apps", q, q.Get("iterator"), list.Iterator, list.PrevIterator, list.Done)
	pg.Data = v
	s.render(w, r, rc, http.StatusOK, "apps", pg)
}

// appFormView is the data of the application form.
type appFormView struct {
	Edit                           bool
	Action, Cancel                 string
	Name, UID, RateLimit, Metadata string
	ID                             string
}

func (s *Server) appNewForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	s.renderAppForm(w, r, rc, http.StatusOK, &appFormView{Action: rc.site.base + "/apps/new", Cancel: rc.site.base + "/apps"}, nil)
}

func (s *Server) renderAppForm(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v *appFormView, errs map[string]string) {
	pg := &page{Title: "New application", Nav: "apps", Data: v, Errors: errs,
		Crumbs: []crumb{{"Applications", rc.site.base + "/apps"}}}
	if v.Edit {
		pg.Title = "Edit application " + v.Name
		pg.Crumbs = append(pg.Crumbs, crumb{v.Name, rc.appBase(v.ID)})
	}
	s.render(w, r, rc, status, "app_form", pg)
}

// appBody reads the application form into an ApplicationIn (PATCH-shaped
// when edit: an empty uid or rate clears it).
func appBody(r *http.Request, edit bool) (*appFormView, map[string]any, error) {
	v := &appFormView{
		Name: r.PostFormValue("name"), UID: strings.TrimSpace(r.PostFormValue("uid")),
		RateLimit: r.PostFormValue("rateLimit"), Metadata: r.PostFormValue("metadata"),
	}
	body := map[string]any{"name": v.Name}
	if v.UID != "" {
		body["uid"] = v.UID
	} else if edit {
		body["uid"] = nil
	}
	rate, err := parseRate("rateLimit", v.RateLimit)
	if err != nil {
		return v, nil, err
	}
	if rate != nil || edit {
		body["rateLimit"] = rate
	}
	md, err := parseMetadata("metadata", v.Metadata)
	if err != nil {
		return v, nil, err
	}
	body["metadata"] = md
	return v, body, nil
}

func (s *Server) appCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	v, body, err := appBody(r, false)
	v.Action, v.Cancel = rc.site.base+"/apps/new", rc.site.base+"/apps"
	var app appOut
	if err == nil {
		err = s.api(r.Context(), rc.p, "POST", "/app", nil, body, &app)
	}
	if err != nil {
		s.formFailed(w, r, rc, err, func(status int, errs map[string]string) { s.renderAppForm(w, r, rc, status, v, errs) })
		return
	}
	redirect(w, r, rc.appBase(app.ID), "app-created")
}

func (s *Server) appEditForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	var app appOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(rc.app(r)), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	v := &appFormView{
		Edit: true, ID: app.ID, Action: rc.appBase(app.ID) + "/edit", Cancel: rc.appBase(app.ID),
		Name: app.Name, UID: deref(app.UID), RateLimit: formatRate16(app.RateLimit), Metadata: formatMetadata(app.Metadata),
	}
	s.renderAppForm(w, r, rc, http.StatusOK, v, nil)
}

func (s *Server) appUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	ref := rc.app(r)
	v, body, err := appBody(r, true)
	v.Edit, v.ID, v.Action, v.Cancel = true, ref, rc.appBase(ref)+"/edit", rc.appBase(ref)
	var app appOut
	if err == nil {
		err = s.api(r.Context(), rc.p, "PATCH", appPath(ref), nil, body, &app)
	}
	if err != nil {
		s.formFailed(w, r, rc, err, func(status int, errs map[string]string) { s.renderAppForm(w, r, rc, status, v, errs) })
		return
	}
	redirect(w, r, rc.appBase(app.ID), "app-saved")
}

// confirmView is the data of a confirmation page: the question and the
// form that does it. It works without JavaScript.
type confirmView struct {
	Question, Detail string
	Action, Cancel   string
	Button           string
}

func (s *Server) appDeleteForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	var app appOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(rc.app(r)), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	s.render(w, r, rc, http.StatusOK, "confirm", &page{
		Title: "Delete application " + app.Name, Nav: "apps",
		Crumbs: []crumb{{"Applications", rc.site.base + "/apps"}, {app.Name, rc.appBase(app.ID)}},
		Data: confirmView{
			Question: "Delete the application " + app.Name + " (" + app.ID + ")?",
			Detail:   "Its endpoints, messages and delivery history are deleted with it. This cannot be undone.",
			Action:   rc.appBase(app.ID) + "/delete", Cancel: rc.appBase(app.ID), Button: "Delete application",
		},
	})
}

func (s *Server) appDelete(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	if err := s.api(r.Context(), rc.p, "DELETE", appPath(rc.app(r)), nil, nil, nil); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	redirect(w, r, rc.site.base+"/apps", "app-deleted")
}

// requireWrite refuses a change to a read-only principal (the API would
// too; this answers before any form is shown).
func (s *Server) requireWrite(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	if rc.canWrite() {
		return true
	}
	s.renderError(w, r, rc, http.StatusForbidden, "This session may only read.")
	return false
}

// formFailed answers a form whose change failed: a 422 shows the fields'
// problems next to them; another API error is shown above the form (as
// "" in errs); anything else is a 500.
func (s *Server) formFailed(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error, show func(status int, errs map[string]string)) {
	if errs, ok := formErrors(err); ok {
		show(http.StatusUnprocessableEntity, errs)
		return
	}
	var ae *apiError
	if errors.As(err, &ae) {
		show(ae.Status, map[string]string{"": ae.Error()})
		return
	}
	s.fail(w, r, rc, err)
}
