package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// views holds one template set per page: the shared layout and partials
// plus the page's own file, parsed once at start-up.
type views struct {
	pages map[string]*template.Template
}

// funcs are the few helpers templates use; views hold no other logic.
var funcs = template.FuncMap{
	"time":     displayTime,
	"datetime": machineTime,
	"fe":       func(id, msg string) fieldErrView { return fieldErrView{ID: id, Msg: msg} },
}

// fieldErrView is a field's problem for the "fielderr" template.
type fieldErrView struct{ ID, Msg string }

func parseViews() (*views, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var shared []string
	for _, f := range files {
		if base := path.Base(f); base == "layout.html" || strings.HasPrefix(base, "_") {
			shared = append(shared, f)
		}
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, f := range files {
		base := path.Base(f)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, append(shared, f)...)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", f, err)
		}
		v.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return v, nil
}

// page is what the layout shows around a view, plus the view's data.
type page struct {
	// Title is the page's <title> and <h1>.
	Title string
	// Crumbs lead from the site's start to this page.
	Crumbs []crumb
	// Nav names the navigation entry to mark as current.
	Nav string
	// Flash is a one-line message above the page; FlashError marks it as
	// an error.
	Flash      string
	FlashError bool
	// Errors are a form's problems by field name ("" for the form as a
	// whole), shown next to the fields.
	Errors map[string]string
	// Data is the view's own data.
	Data any
	// Bare pages (sign in) have no navigation.
	Bare bool

	// Set by render.
	Site      string
	Base      string
	AppBase   string
	Portal    bool
	CSRF      string
	Version   string
	ReadOnly  bool
	SignedIn  bool
	CSS, JS   string
	Theme     theme
	ThemeCSS  string
	ThemeMode string
}

// crumb is one link of the breadcrumb trail.
type crumb struct {
	Label, Href string
}

// Err returns the error of a field, for the templates.
func (p *page) Err(field string) string { return p.Errors[field] }

// render executes a page into a buffer and sends it: a template error is a
// clean 500, never half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, name string, pg *page) {
	t := s.views.pages[name]
	if t == nil {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "no such view", slog.String("view", name))
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	st := rc.site
	pg.Site, pg.Base, pg.Portal = st.name, st.base, st.portal
	pg.CSRF = rc.csrf
	pg.Version = s.cfg.Version
	pg.ReadOnly = !rc.canWrite()
	pg.SignedIn = rc.csrf != ""
	pg.CSS = s.assets.url(st.base, "app.css")
	pg.JS = s.assets.url(st.base, "app.js")
	if rc.csrf != "" {
		pg.AppBase = rc.appBase(rc.p.AppID)
	}
	pg.Theme = rc.theme
	if rc.theme.Accent != "" {
		pg.ThemeCSS = st.base + "/theme.css?accent=" + strings.ReplaceAll(rc.theme.Accent, "#", "%23")
	}
	if pg.Flash == "" {
		if msg, ok := flashes[r.URL.Query().Get("flash")]; ok {
			pg.Flash = msg
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, pg); err != nil {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "render page", slog.String("view", name), slog.String("error", err.Error()))
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderFragment executes one named template of a page alone (the live
// message log fetches its table this way).
func (s *Server) renderFragment(w http.ResponseWriter, r *http.Request, name, fragment string, pg *page) {
	var buf bytes.Buffer
	if err := s.views.pages[name].ExecuteTemplate(&buf, fragment, pg); err != nil {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "render fragment", slog.String("view", name), slog.String("error", err.Error()))
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// flashes are the messages a redirect after a change may ask for, by
// code: fixed texts, so a link cannot make a page say anything else.
var flashes = map[string]string{
	"app-created":     "Application created.",
	"app-saved":       "Application saved.",
	"app-deleted":     "Application deleted.",
	"ep-created":      "Endpoint created. Its signing secret is on its page.",
	"ep-saved":        "Endpoint saved.",
	"ep-deleted":      "Endpoint deleted.",
	"ep-enabled":      "Endpoint enabled.",
	"ep-disabled":     "Endpoint disabled.",
	"secret-rotated":  "Secret rotated. The new secret signs deliveries within a few seconds; the old one keeps signing beside it for 24 hours.",
	"recovered":       "Failed deliveries since that time are being queued again, in the background.",
	"example-sent":    "Example message sent to this endpoint.",
	"resent":          "The message is queued for that endpoint again.",
	"et-created":      "Event type created.",
	"et-saved":        "Event type saved.",
	"et-archived":     "Event type archived.",
	"et-unarchived":   "Event type restored.",
	"no-such-message": "No message with that ID or event ID.",
}

// errorView is the data of the error page.
type errorView struct {
	Status  int
	Message string
}

// renderError answers with an error page, or a small JSON body for the
// pages' own scripts.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, msg string) {
	if isFetch(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	title := http.StatusText(status)
	if title == "" {
		title = "Error"
	}
	s.render(w, r, rc, status, "error", &page{Title: title, Data: errorView{Status: status, Message: msg}, Bare: rc.csrf == ""})
}

// fail answers with the error of an API call (its status and detail) or,
// for any other error, a logged 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		s.renderError(w, r, rc, ae.Status, ae.Error())
		return
	}
	s.logger.LogAttrs(r.Context(), slog.LevelError, "page failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	s.renderError(w, r, rc, http.StatusInternalServerError, "Internal error.")
}

// formErrors turns an error into problems by field, when it is a 422 (or a
// form's own parse errors); ok is false for any other error.
func formErrors(err error) (map[string]string, bool) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		return nil, false
	}
	out := map[string]string{}
	for _, f := range ae.Fields {
		name := f.Field()
		msg := name + ": " + f.Msg
		if prev, ok := out[name]; ok {
			msg = prev + "; " + f.Msg
		}
		out[name] = msg
	}
	if len(out) == 0 {
		out[""] = ae.Error()
	}
	return out, true
}

// invalidForm is a 422 of the form's own making (a line that does not
// parse), shown the same way as the API's.
func invalidForm(field, msg string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Fields: []fieldError{{Loc: []string{"body", field}, Msg: msg}}}
}

// redirect sends the browser to target with a flash code after a change.
func redirect(w http.ResponseWriter, r *http.Request, target, flash string) {
	if flash != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + "flash=" + flash
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// displayTime shows an API time in UTC to the second.
func displayTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// machineTime is an API time for a <time datetime> attribute.
func machineTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// assets are the embedded CSS and JavaScript files, served under a name
// that holds a hash of their content so they can be cached for a year.
type assets struct {
	byName   map[string]string // "app.css" → "app.3f2a9c1b.css"
	byHashed map[string]asset
}

type asset struct {
	body        []byte
	contentType string
}

func loadAssets() (*assets, error) {
	files, err := fs.Glob(staticFS, "static/*")
	if err != nil {
		return nil, err
	}
	as := &assets{byName: map[string]string{}, byHashed: map[string]asset{}}
	for _, f := range files {
		body, err := staticFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := path.Base(f)
		ext := path.Ext(name)
		var ct string
		switch ext {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		default:
			continue // only CSS and JavaScript are served
		}
		sum := sha256.Sum256(body)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		as.byName[name] = hashed
		as.byHashed[hashed] = asset{body: body, contentType: ct}
	}
	return as, nil
}

// url is the path of an asset under a site's base.
func (as *assets) url(base, name string) string {
	return base + "/static/" + as.byName[name]
}

// serveAsset serves an embedded asset by its hashed name, cached for a
// year: a new build changes the name.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets.byHashed[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(a.body)
}

// writeJSONTo writes v as JSON (the reveal-secret answer to the script).
func writeJSONTo(w http.ResponseWriter, v any) error {
	return json.NewEncoder(w).Encode(v)
}
