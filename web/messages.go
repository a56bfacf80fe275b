package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// filterWindow is how far back an event-type or channel filter searches
// when no time range is given.
const filterWindow = 24 * time.Hour

// messageListView is the data of the message log.
type messageListView struct {
	Action string
	// The filters, as typed.
	EventType, Channel, After, Before, Endpoint, Status string
	EventTypes                                          []string
	Endpoints                                           []option
	Statuses                                            []option
	Rows                                                []messageRow
	// WithStatus is set when an endpoint is chosen: rows then carry that
	// endpoint's delivery status.
	WithStatus bool
	// Filtered is set when an event type or channel narrows the log: the
	// page then says that these search the time range given.
	Filtered   bool
	Prev, Next string
	// LiveURL is the first page's table alone, for the live refresh; ""
	// on later pages.
	LiveURL string
}

type option struct {
	Value, Label string
	Selected     bool
}

type messageRow struct {
	messageOut
	Href        string
	StatusClass string
}

// statusNames are Svix's MessageStatus numbers.
var statusNames = []string{"success", "pending", "fail", "sending"}

func statusClass(n int) string {
	if n >= 0 && n < len(statusNames) {
		return statusNames[n]
	}
	return "unknown"
}

// messageList is the message log, newest first, 50 at a time with the
// API's iterators (never an offset or a count). With an endpoint chosen
// it lists that endpoint's messages (GET …/endpoint/{id}/msg), which can
// also filter by delivery status.
func (s *Server) messageList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx, q := r.Context(), r.URL.Query()
	var app appOut
	if err := s.api(ctx, rc.p, "GET", appPath(rc.app(r)), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.appBase(app.ID)
	pg := &page{Title: "Messages", Nav: "messages", Crumbs: s.appCrumbs(rc, app)}
	if !rc.site.portal {
		pg.Title, pg.Nav = "Messages of "+app.Name, "apps"
	}
	if ref := strings.TrimSpace(q.Get("ref")); ref != "" {
		var m messageOut
		err := s.api(ctx, rc.p, "GET", appPath(app.ID, "msg", ref), url.Values{"with_content": {"false"}}, nil, &m)
		if err == nil {
			http.Redirect(w, r, base+"/messages/"+pathEscape(m.ID), http.StatusSeeOther)
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			s.fail(w, r, rc, err)
			return
		}
		pg.Flash, pg.FlashError = flashes["no-such-message"], true
	}
	v := &messageListView{
		Action: base + "/messages", EventType: q.Get("event_type"), Channel: q.Get("channel"),
		After: q.Get("after"), Before: q.Get("before"), Endpoint: q.Get("endpoint"), Status: q.Get("status"),
	}
	// An event type or a channel is a filter over the messages read, not an
	// index: without a time range it would read the whole log to fill a
	// page of a rare type. So it searches the last day unless asked
	// otherwise; the window is a range of message IDs, which costs what the
	// day holds and no more.
	if (v.EventType != "" || v.Channel != "") && v.After == "" && v.Before == "" {
		wq := url.Values{}
		for k, vs := range q {
			if k != "flash" {
				wq[k] = vs
			}
		}
		wq.Set("after", s.now().UTC().Add(-filterWindow).Format(localInputLayout))
		http.Redirect(w, r, v.Action+"?"+wq.Encode(), http.StatusSeeOther)
		return
	}
	v.Filtered = v.EventType != "" || v.Channel != ""
	fragment := q.Get("fragment") == "1"
	if !fragment { // the live refresh needs only the table
		v.EventTypes = s.eventTypeNames(r, rc)
		var eps listOut[endpointOut]
		if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "endpoint"), url.Values{"limit": {"250"}}, nil, &eps); err == nil {
			for _, ep := range eps.Data {
				v.Endpoints = append(v.Endpoints, option{ep.ID, ep.URL, ep.ID == v.Endpoint})
			}
		}
		for i, name := range statusNames {
			n := strconv.Itoa(i)
			v.Statuses = append(v.Statuses, option{n, name, n == v.Status})
		}
	}
	pg.Data = v

	query := url.Values{"limit": {"50"}, "with_content": {"false"}}
	if it := q.Get("iterator"); it != "" {
		query.Set("iterator", it)
	}
	if v.EventType != "" {
		query.Set("event_types", v.EventType)
	}
	if v.Channel != "" {
		query.Set("channel", v.Channel)
	}
	err := setTime(query, "after", v.After)
	if err == nil {
		err = setTime(query, "before", v.Before)
	}
	var list listOut[messageOut]
	if err == nil {
		if v.Endpoint != "" {
			v.WithStatus = true
			if v.Status != "" {
				query.Set("status", v.Status)
			}
			err = s.api(ctx, rc.p, "GET", appPath(app.ID, "endpoint", v.Endpoint, "msg"), query, nil, &list)
		} else {
			err = s.api(ctx, rc.p, "GET", appPath(app.ID, "msg"), query, nil, &list)
		}
	}
	status := http.StatusOK
	if err != nil {
		errs, ok := formErrors(err)
		var ae *apiError
		switch {
		case ok:
			pg.Errors, status = errs, http.StatusUnprocessableEntity
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound && v.Endpoint != "":
			pg.Errors, status = map[string]string{"endpoint": "endpoint: no such endpoint"}, http.StatusNotFound
		default:
			s.fail(w, r, rc, err)
			return
		}
	}
	for _, m := range list.Data {
		row := messageRow{messageOut: m, Href: base + "/messages/" + pathEscape(m.ID)}
		if m.Status != nil {
			row.StatusClass = statusClass(*m.Status)
		}
		v.Rows = append(v.Rows, row)
	}
	v.Prev, v.Next = pager(v.Action, q, q.Get("iterator"), list.Iterator, list.PrevIterator, list.Done)
	if q.Get("iterator") == "" && err == nil {
		lq := url.Values{}
		for k, vs := range q {
			if k != "flash" && k != "ref" && k != "fragment" {
				lq[k] = vs
			}
		}
		lq.Set("fragment", "1")
		v.LiveURL = v.Action + "?" + lq.Encode()
	}
	if fragment {
		s.renderFragment(w, r, "messages", "msgtable", pg)
		return
	}
	s.render(w, r, rc, status, "messages", pg)
}

// setTime copies a datetime-local filter into the API query as RFC 3339.
func setTime(q url.Values, name, value string) error {
	t, err := parseLocalTime(name, value)
	if err != nil {
		return err
	}
	if t != "" {
		q.Set(name, t)
	}
	return nil
}

// messageView is the data of a message's page.
type messageView struct {
	Msg          messageOut
	Payload      string
	PayloadEmpty bool
	Deliveries   []deliveryRow
	Attempts     attemptTable
	Prev, Next   string
	ResendAction string
}

type deliveryRow struct {
	messageEndpointOut
	Href        string
	StatusClass string
}

// messagePage shows a message: its payload, where it was routed with each
// delivery's state and a resend button, and every attempt (50 a page).
func (s *Server) messagePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx, q := r.Context(), r.URL.Query()
	var app appOut
	if err := s.api(ctx, rc.p, "GET", appPath(rc.app(r)), nil, nil, &app); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	var m messageOut
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "msg", r.PathValue("msg")), nil, nil, &m); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	base := rc.appBase(app.ID)
	href := base + "/messages/" + pathEscape(m.ID)
	v := &messageView{Msg: m, ResendAction: href + "/resend"}
	// The body as endpoints get it, JSON or not (a raw payload shows as {}
	// in the message itself); indented when it is JSON.
	var raw struct {
		Payload string `json:"payload"`
	}
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "msg", m.ID, "raw"), nil, nil, &raw); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	trimmed := bytes.TrimSpace([]byte(raw.Payload))
	// The API answers {} for a payload that was expunged; an empty object
	// sent as such looks the same.
	v.PayloadEmpty = len(trimmed) == 0 || string(trimmed) == "{}"
	var pretty bytes.Buffer
	if json.Indent(&pretty, trimmed, "", "  ") == nil {
		v.Payload = pretty.String()
	} else {
		v.Payload = raw.Payload
	}
	var dels listOut[messageEndpointOut]
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "msg", m.ID, "endpoint"), url.Values{"limit": {"250"}}, nil, &dels); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	for _, d := range dels.Data {
		v.Deliveries = append(v.Deliveries, deliveryRow{
			messageEndpointOut: d, Href: base + "/endpoints/" + pathEscape(d.ID), StatusClass: statusClass(d.Status),
		})
	}
	aq := url.Values{"limit": {"50"}}
	if it := q.Get("iterator"); it != "" {
		aq.Set("iterator", it)
	}
	var attempts listOut[attemptOut]
	if err := s.api(ctx, rc.p, "GET", appPath(app.ID, "attempt", "msg", m.ID), aq, nil, &attempts); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	v.Attempts.Of = "Endpoint"
	for _, at := range attempts.Data {
		v.Attempts.Rows = append(v.Attempts.Rows, s.toAttemptRow(rc, app.ID, at))
	}
	v.Prev, v.Next = pager(href, q, q.Get("iterator"), attempts.Iterator, attempts.PrevIterator, attempts.Done)
	crumbs := append(s.appCrumbs(rc, app), crumb{"Messages", base + "/messages"})
	pg := &page{Title: "Message " + m.ID, Nav: "apps", Crumbs: crumbs, Data: v}
	if rc.site.portal {
		pg.Nav = "messages"
	}
	s.render(w, r, rc, http.StatusOK, "message", pg)
}

// messageResend queues the message for one endpoint again.
func (s *Server) messageResend(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.requireWrite(w, r, rc) {
		return
	}
	appRef, msgRef := rc.app(r), r.PathValue("msg")
	ep := r.PostFormValue("endpoint")
	if ep == "" {
		s.renderError(w, r, rc, http.StatusUnprocessableEntity, "endpoint: choose the endpoint to resend to")
		return
	}
	if err := s.api(r.Context(), rc.p, "POST", appPath(appRef, "msg", msgRef, "endpoint", ep, "resend"), nil, map[string]any{}, nil); err != nil {
		s.fail(w, r, rc, err)
		return
	}
	redirect(w, r, rc.appBase(appRef)+"/messages/"+pathEscape(msgRef), "resent")
}
