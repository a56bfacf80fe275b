package web

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// appPageView is the data of an application's page: its endpoints with
// their health.
type appPageView struct {
	App          appOut
	Endpoints    []endpointRow
	Prev, Next   string
	Base         string
	MessagesHref string
}

// endpointRow is one endpoint with its health: its recent attempts (and
// the share of them that succeeded), the last attempt and, on the
// endpoint's own page, its delivery counts and the circuit breaker as this
// node sees it.
type endpointRow struct {
	endpointOut
	Href string
	// Recent is "n of m" of the last attempts that succeeded; "" when
	// there was none.
	Recent string
	Last   *attemptOut
	Stats  *statsOut
	Ratio  string
	Health string // "ok", "failing", "disabled", "idle" (no attempt yet), "unknown"
}

// recentAttempts is how many of an endpoint's last attempts its health is
// read from.
const recentAttempts = 20

// statsWindow is how far back an endpoint's page counts its deliveries.
const statsWindow = 24 * time.Hour

// healthParallel bounds the API calls one page makes at once for its
// endpoints' health.
const healthParallel = 4

// appPage shows an application and its endpoints, 50 at a time, each with
// its recent attempts (one API call per endpoint, served from the attempt
// index whatever the store's size). The delivery counts and the circuit
// (the stats route) are on each endpoint's own page: on a store of a
// million messages they cost a few hundred milliseconds per busy endpoint.
func (s *Server) appPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx, ref := r.Context(), rc.app(r)
	var app appOut
	if err := s.api(ctx, rc.p, "GET", appPath(ref), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	q := r.URL.Query()
	query := url.Values{"limit": {"50"}}
	if it := q.Get("iterator"); it != "" {
		query.Set("iterator", it)
	}
	var list listOut[endpointOut]
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "endpoint"), query, nil, &list); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.appBase(app.ID)
	v := &appPageView{App: app, Base: base, MessagesHref: base + "/messages"}
	v.Endpoints = make([]endpointRow, len(list.Data))
	var wg sync.WaitGroup
	sem := make(chan struct{}, healthParallel)
	for i, ep := range list.Data {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v.Endpoints[i] = s.endpointHealth(r, rc, app.ID, ep, base, false)
		}()
	}
	wg.Wait()
	v.Prev, v.Next = pager(base, q, q.Get("iterator"), list.Iterator, list.PrevIterator, list.Done)
	pg := &page{Title: app.Name, Nav: "apps", Data: v}
	if rc.site.portal {
		pg.Title, pg.Nav = "Endpoints of "+app.Name, "endpoints"
	} else {
		pg.Crumbs = []crumb{{"Applications", rc.site.base + "/apps"}}
	}
	s.render(w, r, rc, http.StatusOK, "app", pg)
}

// endpointHealth reads an endpoint's recent attempts and, withStats, its
// stats. Failures leave the health unknown rather than failing the page.
func (s *Server) endpointHealth(r *http.Request, rc *reqCtx, appID string, ep endpointOut, base string, withStats bool) endpointRow {
	row := endpointRow{endpointOut: ep, Href: base + "/endpoints/" + pathEscape(ep.ID), Health: "unknown"}
	var recent listOut[attemptOut]
	q := url.Values{"limit": {strconv.Itoa(recentAttempts)}, "with_content": {"false"}}
	if err := s.api(r.Context(), rc.p, "GET", appPath(appID, "attempt", "endpoint", ep.ID), q, nil, &recent); err == nil {
		row.Health = "idle"
		if n := len(recent.Data); n > 0 {
			row.Last = &recent.Data[0]
			ok := 0
			for _, at := range recent.Data {
				if at.Status == 0 {
					ok++
				}
			}
			row.Recent = strconv.Itoa(ok) + " of " + strconv.Itoa(n)
			row.Health = "ok"
			if row.Last.Status == 2 {
				row.Health = "failing"
			}
		}
	}
	if withStats {
		// Over the last day, in whole seconds: the store counts that as a
		// range of message IDs, while counting an endpoint's whole history
		// grows with it (BENCHMARKS.md, "Console pages on a million
		// messages").
		var st statsOut
		since := s.now().UTC().Add(-statsWindow).Truncate(time.Second)
		q := url.Values{"since": {since.Format(time.RFC3339)}}
		if err := s.api(r.Context(), rc.p, "GET", appPath(appID, "endpoint", ep.ID, "stats"), q, nil, &st); err == nil {
			row.Stats = &st
			row.Ratio = successRatio(st)
			if st.Circuit == "open" || st.Circuit == "half-open" {
				row.Health = "failing"
			}
		}
	}
	if ep.Disabled {
		row.Health = "disabled"
	}
	return row
}

// successRatio is the share of finished deliveries that succeeded.
func successRatio(st statsOut) string {
	done := st.Success + st.Fail
	if done == 0 {
		return "–"
	}
	return strconv.Itoa(st.Success*100/done) + " %"
}

// endpointView is the data of an endpoint's page.
type endpointView struct {
	App        appOut
	Ep         endpointOut
	Health     endpointRow
	Headers    []headerKV
	Sensitive  []string
	Attempts   attemptTable
	EventTypes []string
	Href       string
	// RecoverSince is the recover form's default: a day ago.
	RecoverSince string
	// Secret is shown only after the reveal form was posted (without
	// JavaScript; with it, the script fetches it into the page).
	Secret string
	// Message log links of this endpoint.
	MessagesHref, FailedHref string
}

type headerKV struct{ Name, Value string }

// attemptTable is the attempts of one message or of one endpoint. Of names
// what each row shows besides the attempt's outcome, the side the page is
// not about: "Endpoint" (its URL) on a message's page, "Message" (its
// event type and ID) on an endpoint's.
type attemptTable struct {
	Of   string
	Rows []attemptRow
}

// attemptRow is an attempt as the pages show it.
type attemptRow struct {
	attemptOut
	MessageHref  string
	EndpointHref string
	// EventType is the message's, on an endpoint's page; "" when unknown.
	EventType string
	Trigger   string
	Error     bool // Response holds the error text: no HTTP answer came
	Truncated bool
}

func (s *Server) toAttemptRow(rc *reqCtx, appID string, at attemptOut) attemptRow {
	base := rc.appBase(appID)
	row := attemptRow{
		attemptOut:   at,
		MessageHref:  base + "/messages/" + pathEscape(at.MsgID),
		EndpointHref: base + "/endpoints/" + pathEscape(at.EndpointID),
		Trigger:      "scheduled",
		Error:        at.ResponseStatusCode == 0 && at.Response != "",
	}
	if at.TriggerType == 1 {
		row.Trigger = "manual"
	}
	const maxShown = 4096
	if len(row.Response) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(row.Response[cut]) {
			cut-- // never split a character
		}
		row.Response, row.Truncated = row.Response[:cut], true
	}
	return row
}

// endpointPage shows an endpoint: its settings, health, recent attempts
// and the actions on it.
func (s *Server) endpointPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.showEndpoint(w, r, rc, http.StatusOK, nil, nil)
}

// showEndpoint renders an endpoint's page; errs are a failed action's
// problems by field, edit may change the view (the revealed secret).
func (s *Server) showEndpoint(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, errs map[string]string, edit func(*endpointView)) {
	ctx, ref := r.Context(), rc.app(r)
	var app appOut
	if err := s.api(ctx, rc.p, "GET", appPath(ref), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	var ep endpointOut
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "endpoint", r.PathValue("ep")), nil, nil, &ep); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.appBase(app.ID)
	v := &endpointView{
		App: app, Ep: ep, Href: base + "/endpoints/" + pathEscape(ep.ID),
		Health:       s.endpointHealth(r, rc, app.ID, ep, base, true),
		RecoverSince: s.now().UTC().Add(-24 * time.Hour).Format(localInputLayout),
		MessagesHref: base + "/messages?" + url.Values{"endpoint": {ep.ID}}.Encode(),
		FailedHref:   base + "/messages?" + url.Values{"endpoint": {ep.ID}, "status": {"2"}}.Encode(),
	}
	var hs headersOut
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "endpoint", ep.ID, "headers"), nil, nil, &hs); err == nil {
		for _, k := range slices.Sorted(maps.Keys(hs.Headers)) {
			v.Headers = append(v.Headers, headerKV{k, hs.Headers[k]})
		}
		v.Sensitive = hs.Sensitive
	}
	var attempts listOut[attemptOut]
	attemptsPath := appPath(app.ID, "attempt", "endpoint", ep.ID)
	q := url.Values{"limit": {"20"}}
	if err := s.api(ctx, rc.p, "GET", attemptsPath, q, nil, &attempts); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	// The same page again with each attempt's message (its event type),
	// without contents: one request instead of one per message, and no
	// payloads carried.
	var named listOut[attemptOut]
	eventTypes := map[string]string{}
	q.Set("with_msg", "true")
	q.Set("with_content", "false")
	if err := s.api(ctx, rc.p, "GET", attemptsPath, q, nil, &named); err == nil {
		for _, at := range named.Data {
			if at.Msg != nil {
				eventTypes[at.MsgID] = at.Msg.EventType
			}
		}
	}
	v.Attempts.Of = "Message"
	for _, at := range attempts.Data {
		row := s.toAttemptRow(rc, app.ID, at)
		row.EventType = eventTypes[at.MsgID]
		v.Attempts.Rows = append(v.Attempts.Rows, row)
	}
	if rc.canWrite() {
		v.EventTypes = s.eventTypeNames(r, rc)
	}
	if edit != nil {
		edit(v)
	}
	pg := &page{Title: "Endpoint " + ep.URL, Nav: "apps", Data: v, Errors: errs}
	pg.Crumbs = s.appCrumbs(rc, app)
	if rc.site.portal {
		pg.Nav = "endpoints"
	}
	if errs != nil {
		pg.Flash, pg.FlashError = "The action failed; see below.", true
		if msg, ok := errs[""]; ok {
			pg.Flash = msg
		}
	}
	s.render(w, r, rc, status, "endpoint", pg)
}

// appCrumbs lead to an application's page.
func (s *Server) appCrumbs(rc *reqCtx, app appOut) []crumb {
	if rc.site.portal {
		return []crumb{{"Endpoints", rc.site.base + "/"}}
	}
	return []crumb{{"Applications", rc.site.base + "/apps"}, {app.Name, rc.appBase(app.ID)}}
}

// eventTypeNames lists the catalog's event types (the first 250, not
// archived), for the filter checkboxes and the example select.
func (s *Server) eventTypeNames(r *http.Request, rc *reqCtx) []string {
	var list listOut[eventTypeOut]
	q := url.Values{"limit": {"250"}, "with_content": {"false"}}
	if err := s.api(r.Context(), rc.p, "GET", "/event-type", q, nil, &list); err != nil {
		return nil
	}
	names := make([]string, 0, len(list.Data))
	for _, et := range list.Data {
		names = append(names, et.Name)
	}
	return names
}

// endpointFormView is the data of the endpoint form.
type endpointFormView struct {
	Edit           bool
	Action, Cancel string
	URL, Description, UID, Channels, RateLimit, Ordering,
	Headers, Metadata, Secret string
	Types     []typeOption
	Sensitive []string
}

type typeOption struct {
	Name    string
	Checked bool
}

// typeOptions are the catalog's event types as checkboxes, with any
// selected type the catalog no longer lists kept (checked).
func typeOptions(catalog, selected []string) []typeOption {
	var out []typeOption
	for _, name := range catalog {
		out = append(out, typeOption{name, slices.Contains(selected, name)})
	}
	for _, name := range selected {
		if !slices.Contains(catalog, name) {
			out = append(out, typeOption{name, true})
		}
	}
	return out
}

func (s *Server) endpointNewForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	base := rc.appBase(rc.app(r))
	v := &endpointFormView{Action: base + "/endpoints/new", Cancel: base, Ordering: "none",
		Types: typeOptions(s.eventTypeNames(r, rc), nil)}
	s.renderEndpointForm(w, r, rc, http.StatusOK, v, nil)
}

func (s *Server) renderEndpointForm(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v *endpointFormView, errs map[string]string) {
	var app appOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(rc.app(r)), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	pg := &page{Title: "New endpoint", Nav: "apps", Data: v, Errors: errs, Crumbs: s.appCrumbs(rc, app)}
	if v.Edit {
		pg.Title = "Edit endpoint " + v.URL
	}
	if rc.site.portal {
		pg.Nav = "endpoints"
	}
	s.render(w, r, rc, status, "endpoint_form", pg)
}

// endpointForm reads the endpoint form.
func endpointForm(r *http.Request) *endpointFormView {
	_ = r.ParseForm()
	return &endpointFormView{
		URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"),
		UID: strings.TrimSpace(r.PostFormValue("uid")), Channels: r.PostFormValue("channels"),
		RateLimit: r.PostFormValue("rateLimit"), Ordering: r.PostFormValue("ordering"),
		Headers: r.PostFormValue("headers"), Metadata: r.PostFormValue("metadata"),
		Secret: strings.TrimSpace(r.PostFormValue("secret")),
	}
}

// body returns the endpoint's fields as an EndpointIn (for a create) or an
// EndpointPatch (edit: empty uid and rate clear them).
func (v *endpointFormView) body(filterTypes []string, edit bool) (map[string]any, error) {
	body := map[string]any{
		"url": v.URL, "description": v.Description, "filterTypes": filterTypes,
		"channels": splitWords(v.Channels),
	}
	if v.Ordering != "" {
		body["ordering"] = v.Ordering
	}
	if v.UID != "" {
		body["uid"] = v.UID
	} else if edit {
		body["uid"] = nil
	}
	rate, err := parseRate("rateLimit", v.RateLimit)
	if err != nil {
		return nil, err
	}
	if rate != nil || edit {
		body["rateLimit"] = rate
	}
	md, err := parseMetadata("metadata", v.Metadata)
	if err != nil {
		return nil, err
	}
	body["metadata"] = md
	return body, nil
}

// parse reads the form: the API body of the endpoint (for a PATCH when
// edit) and its header lines.
func (v *endpointFormView) parse(filterTypes []string, edit bool) (map[string]any, []headerLine, error) {
	body, err := v.body(nonNil(filterTypes), edit)
	if err != nil {
		return nil, nil, err
	}
	lines, err := parseHeaders("headers", v.Headers)
	if err != nil {
		return nil, nil, err
	}
	return body, lines, nil
}

func (s *Server) endpointCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	appRef := rc.app(r)
	base := rc.appBase(appRef)
	v := endpointForm(r)
	v.Action, v.Cancel = base+"/endpoints/new", base
	selected := r.PostForm["filterTypes"]
	show := func(status int, errs map[string]string) {
		v.Types = typeOptions(s.eventTypeNames(r, rc), selected)
		s.renderEndpointForm(w, r, rc, status, v, errs)
	}
	body, lines, err := v.parse(selected, false)
	if err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	headers := map[string]string{}
	for _, h := range lines {
		if h.Value != nil {
			headers[h.Name] = *h.Value
		}
	}
	body["headers"] = headers
	if v.Secret != "" {
		body["secret"] = v.Secret
	}
	var ep endpointOut
	if err := s.api(r.Context(), rc.p, "POST", appPath(appRef, "endpoint"), nil, body, &ep); err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	redirect(w, r, rc.appBase(appRef)+"/endpoints/"+pathEscape(ep.ID), "ep-created")
}

func (s *Server) endpointEditForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	appRef := rc.app(r)
	var ep endpointOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(appRef, "endpoint", r.PathValue("ep")), nil, nil, &ep); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	var hs headersOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(appRef, "endpoint", ep.ID, "headers"), nil, nil, &hs); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	href := rc.appBase(appRef) + "/endpoints/" + pathEscape(ep.ID)
	v := &endpointFormView{
		Edit: true, Action: href + "/edit", Cancel: href,
		URL: ep.URL, Description: ep.Description, UID: deref(ep.UID), Channels: strings.Join(ep.Channels, ", "),
		RateLimit: formatRate16(ep.RateLimit), Ordering: ep.Ordering, Headers: formatHeaders(hs.Headers),
		Metadata: formatMetadata(ep.Metadata), Sensitive: hs.Sensitive,
		Types: typeOptions(s.eventTypeNames(r, rc), ep.FilterTypes),
	}
	s.renderEndpointForm(w, r, rc, http.StatusOK, v, nil)
}

// endpointUpdate saves the endpoint (PATCH) and then its headers (PATCH of
// the headers route): headers no longer listed are removed, except the
// sensitive ones, whose values the API never shows back and which are kept
// unless given again ("Name:" with no value removes one).
func (s *Server) endpointUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	ctx, appRef, epRef := r.Context(), rc.app(r), r.PathValue("ep")
	href := rc.appBase(appRef) + "/endpoints/" + pathEscape(epRef)
	v := endpointForm(r)
	v.Edit, v.Action, v.Cancel = true, href+"/edit", href
	selected := r.PostForm["filterTypes"]
	var hs headersOut
	show := func(status int, errs map[string]string) {
		v.Types = typeOptions(s.eventTypeNames(r, rc), selected)
		v.Sensitive = hs.Sensitive
		s.renderEndpointForm(w, r, rc, status, v, errs)
	}
	if err := s.api(ctx, rc.p, "GET", appPath(appRef, "endpoint", epRef, "headers"), nil, nil, &hs); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	body, lines, err := v.parse(selected, true)
	if err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	var ep endpointOut
	if err := s.api(ctx, rc.p, "PATCH", appPath(appRef, "endpoint", epRef), nil, body, &ep); err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	set := map[string]*string{}
	for _, h := range lines {
		set[h.Name] = h.Value
	}
	remove := []string{}
	for name := range hs.Headers {
		if !slices.ContainsFunc(lines, func(h headerLine) bool { return strings.EqualFold(h.Name, name) }) {
			remove = append(remove, name)
		}
	}
	hb := map[string]any{"headers": set, "deleteHeaders": remove}
	if err := s.api(ctx, rc.p, "PATCH", appPath(appRef, "endpoint", ep.ID, "headers"), nil, hb, nil); err != nil {
		s.formFailed(w, r, rc, err, show)
		return
	}
	redirect(w, r, rc.appBase(appRef)+"/endpoints/"+pathEscape(ep.ID), "ep-saved")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) endpointDeleteForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	appRef := rc.app(r)
	var app appOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(appRef), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	var ep endpointOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(app.ID, "endpoint", r.PathValue("ep")), nil, nil, &ep); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	href := rc.appBase(app.ID) + "/endpoints/" + pathEscape(ep.ID)
	pg := &page{Title: "Delete endpoint " + ep.URL, Nav: "apps", Crumbs: s.appCrumbs(rc, app),
		Data: confirmView{
			Question: "Delete the endpoint " + ep.URL + " (" + ep.ID + ")?",
			Detail:   "It receives no more messages, and its delivery history is deleted. This cannot be undone.",
			Action:   href + "/delete", Cancel: href, Button: "Delete endpoint",
		}}
	if rc.site.portal {
		pg.Nav = "endpoints"
	}
	s.render(w, r, rc, http.StatusOK, "confirm", pg)
}

func (s *Server) endpointDelete(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	appRef := rc.app(r)
	if err := s.api(r.Context(), rc.p, "DELETE", appPath(appRef, "endpoint", r.PathValue("ep")), nil, nil, nil); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	redirect(w, r, rc.appBase(appRef), "ep-deleted")
}

// endpointSecret reveals the signing secret: as JSON to the page's script
// (which shows it in place), or in the endpoint's page without JavaScript.
// It is a POST with the CSRF token, so the secret is never in a page
// until asked for, and no other site can make a browser ask.
func (s *Server) endpointSecret(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	appRef, epRef := rc.app(r), r.PathValue("ep")
	var sec secretOut
	if err := s.api(r.Context(), rc.p, "GET", appPath(appRef, "endpoint", epRef, "secret"), nil, nil, &sec); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	if isFetch(r) {
		w.Header().Set("Content-Type", "application/json")
		_ = writeJSONTo(w, sec)
		return
	}
	s.showEndpoint(w, r, rc, http.StatusOK, nil, func(v *endpointView) { v.Secret = sec.Key })
}

// endpointAction runs one of the endpoint's buttons: enable, disable,
// rotate (the secret), send-example and recover.
func (s *Server) endpointAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	ctx, appRef, epRef := r.Context(), rc.app(r), r.PathValue("ep")
	href := rc.appBase(appRef) + "/endpoints/" + pathEscape(epRef)
	var err error
	var flash string
	switch r.PathValue("action") {
	case "enable", "disable":
		disable := r.PathValue("action") == "disable"
		err = s.api(ctx, rc.p, "PATCH", appPath(appRef, "endpoint", epRef), nil, map[string]any{"disabled": disable}, nil)
		flash = map[bool]string{true: "ep-disabled", false: "ep-enabled"}[disable]
	case "rotate":
		err = s.api(ctx, rc.p, "POST", appPath(appRef, "endpoint", epRef, "secret", "rotate"), nil, map[string]any{}, nil)
		flash = "secret-rotated"
	case "send-example":
		var m messageOut
		err = s.api(ctx, rc.p, "POST", appPath(appRef, "endpoint", epRef, "send-example"), nil,
			map[string]any{"eventType": r.PostFormValue("eventType")}, &m)
		if err == nil {
			redirect(w, r, rc.appBase(appRef)+"/messages/"+pathEscape(m.ID), "example-sent")
			return
		}
	case "recover":
		var since, until string
		since, err = parseLocalTime("since", r.PostFormValue("since"))
		if err == nil && since == "" {
			err = invalidForm("since", "enter the time to recover from")
		}
		if err == nil {
			until, err = parseLocalTime("until", r.PostFormValue("until"))
		}
		if err == nil {
			body := map[string]any{"since": since}
			if until != "" {
				body["until"] = until
			}
			err = s.api(ctx, rc.p, "POST", appPath(appRef, "endpoint", epRef, "recover"), nil, body, nil)
		}
		flash = "recovered"
	default:
		s.renderError(w, r, rc, http.StatusNotFound, "There is no such action.")
		return
	}
	if err != nil {
		var ae *apiError
		if errs, ok := formErrors(err); ok {
			s.showEndpoint(w, r, rc, http.StatusUnprocessableEntity, errs, nil)
		} else if errors.As(err, &ae) && ae.Status != http.StatusNotFound && ae.Status != http.StatusForbidden {
			s.showEndpoint(w, r, rc, ae.Status, map[string]string{"": ae.Error()}, nil)
		} else {
			s.fail(w, r, rc, err)
		}
		return
	}
	redirect(w, r, href, flash)
}
