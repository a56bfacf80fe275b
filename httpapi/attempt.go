package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/destination"
)

// attemptOut is Svix's MessageAttemptOut. Msg, asked for with
// ?with_msg=true, is spliced in by encode so its payload stays verbatim.
type attemptOut struct {
	ID                 string      `json:"id"`
	MsgID              string      `json:"msgId"`
	EndpointID         string      `json:"endpointId"`
	URL                string      `json:"url"`
	Response           string      `json:"response"`
	ResponseStatusCode int         `json:"responseStatusCode"`
	ResponseDurationMs int64       `json:"responseDurationMs"`
	Status             int         `json:"status"`
	StatusText         string      `json:"statusText"`
	TriggerType        int         `json:"triggerType"`
	Timestamp          string      `json:"timestamp"`
	Msg                *messageOut `json:"-"`
}

// attemptStatusText names an AttemptStatus as Svix's MessageStatusText does.
var attemptStatusText = map[herald.AttemptStatus]string{
	herald.AttemptSucceeded: "success",
	herald.AttemptPending:   "pending",
	herald.AttemptFailed:    "fail",
	herald.AttemptSending:   "sending",
}

// toAttemptOut converts an attempt. Without content the response is left
// out; an attempt that got no response at all shows why (timeout, refused
// connection, blocked address) in its place, and one whose answer needs
// words (a redirect and where to, a body cut short) shows them on a line
// of its own before the body.
func toAttemptOut(at *herald.Attempt, withContent bool) attemptOut {
	out := attemptOut{
		ID:                 at.ID,
		MsgID:              at.MessageID,
		EndpointID:         at.EndpointID,
		URL:                destination.Redact(at.URL),
		ResponseStatusCode: at.ResponseStatus,
		ResponseDurationMs: at.Duration.Milliseconds(),
		Status:             int(at.Status),
		StatusText:         attemptStatusText[at.Status],
		TriggerType:        int(at.Trigger),
		Timestamp:          formatTime(at.CreatedAt),
	}
	if withContent {
		out.Response = string(at.Response)
		switch {
		case at.ResponseStatus == 0 && len(at.Response) == 0:
			out.Response = at.Error
		case at.Error != "" && len(at.Response) > 0:
			out.Response = at.Error + "\n\n" + out.Response
		case at.Error != "":
			out.Response = at.Error
		}
	}
	return out
}

// encode returns the JSON of the attempt, with its message when it has one.
func (o attemptOut) encode() ([]byte, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	if o.Msg == nil {
		return body, nil
	}
	msg, err := o.Msg.encode()
	if err != nil {
		return nil, err
	}
	return spliceField(body, "msg", msg), nil
}

// attemptQuery is the query of the two attempt lists.
type attemptQuery struct {
	page        page
	opts        herald.AttemptListOptions
	withContent bool
	withMsg     bool
}

// parseAttemptQuery reads the filters Svix's attempt lists take: status,
// status_code_class, the message filters, with_content and with_msg.
func parseAttemptQuery(q url.Values) (attemptQuery, error) {
	p, v := parsePage(q, herald.Descending, attemptCursor)
	f := parseMessageFilter(q, v)
	aq := attemptQuery{
		page:        p,
		withContent: parseBool(q, "with_content", true, v),
		withMsg:     parseBool(q, "with_msg", false, v),
		opts: herald.AttemptListOptions{
			EventTypes: f.EventTypes, Channel: f.Channel, Before: f.Before, After: f.After,
		},
	}
	if f.Tag != "" {
		// Refused rather than ignored: the attempts store no tags.
		v.add("filtering attempts by tag is not supported yet", "query", "tag")
	}
	if n, ok := parseStatusFilter(q, v); ok {
		st := herald.AttemptStatus(n)
		aq.opts.Status = &st
	}
	aq.opts.StatusCodeClass = parseStatusCodeClass(q, v)
	aq.opts.ListOptions = p.options()
	return aq, v.err()
}

// parseStatusFilter reads the optional ?status=, Svix's MessageStatus
// number (0 to 3); ok is false when it is absent or invalid.
func parseStatusFilter(q url.Values, v *validation) (n int, ok bool) {
	s := q.Get("status")
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 3 {
		v.add("status must be 0 (success), 1 (pending), 2 (fail) or 3 (sending)", "query", "status")
		return 0, false
	}
	return n, true
}

// parseStatusCodeClass reads Svix's StatusCodeClass: 0 (no response) or
// 100 to 500, as AttemptListOptions.StatusCodeClass (-1 for no response,
// 0 for no filter).
func parseStatusCodeClass(q url.Values, v *validation) int {
	s := q.Get("status_code_class")
	if s == "" {
		return 0
	}
	switch n, err := strconv.Atoi(s); {
	case err == nil && n == 0:
		return -1
	case err == nil && n%100 == 0 && n >= 100 && n <= 500:
		return n
	}
	v.add("status_code_class must be one of 0, 100, 200, 300, 400, 500", "query", "status_code_class")
	return 0
}

// listAttemptsByMessage is GET /api/v1/app/{app_id}/attempt/msg/{msg_id}:
// a message's attempts, newest first, optionally of one endpoint.
func (a *API) listAttemptsByMessage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	aq, err := parseAttemptQuery(q)
	if err != nil {
		return err
	}
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	aq.opts.MessageID = m.ID
	if ref := q.Get("endpoint_id"); ref != "" {
		ep, err := a.store.GetEndpoint(r.Context(), m.AppID, ref)
		if err != nil {
			return fmt.Errorf("get endpoint: %w", err)
		}
		aq.opts.EndpointID = ep.ID
	}
	return a.writeAttempts(w, r, m.AppID, aq, map[string]*herald.Message{m.ID: m})
}

// listAttemptsByEndpoint is GET /api/v1/app/{app_id}/attempt/endpoint/
// {endpoint_id}: an endpoint's attempts, newest first.
func (a *API) listAttemptsByEndpoint(w http.ResponseWriter, r *http.Request) error {
	aq, err := parseAttemptQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	aq.opts.EndpointID = ep.ID
	return a.writeAttempts(w, r, ep.AppID, aq, map[string]*herald.Message{})
}

// writeAttempts lists one page of attempts and answers with it; with_msg
// adds each attempt's message, read once per message (msgs caches them).
func (a *API) writeAttempts(w http.ResponseWriter, r *http.Request, appID string, aq attemptQuery, msgs map[string]*herald.Message) error {
	attempts, err := a.store.ListAttempts(r.Context(), appID, aq.opts)
	if err != nil {
		return fmt.Errorf("list attempts: %w", err)
	}
	resp := paginate(aq.page, attempts,
		func(at *herald.Attempt) string { return at.ID },
		func(at *herald.Attempt) attemptOut { return toAttemptOut(at, aq.withContent) })
	if aq.withMsg {
		for i := range resp.Data {
			item := &resp.Data[i]
			m, ok := msgs[item.MsgID]
			if !ok {
				if m, err = a.store.GetMessage(r.Context(), appID, item.MsgID); err != nil {
					return fmt.Errorf("get message of attempt %s: %w", item.ID, err)
				}
				msgs[m.ID] = m
			}
			out := toMessageOut(m, aq.withContent)
			item.Msg = &out
		}
	}
	return writeEncodedList(w, resp)
}

// lookupAttempt resolves the path's message and attempt_id.
func (a *API) lookupAttempt(r *http.Request) (*herald.Attempt, error) {
	m, err := a.lookupMessage(r)
	if err != nil {
		return nil, err
	}
	at, err := a.store.GetAttempt(r.Context(), m.AppID, m.ID, r.PathValue("attempt_id"))
	if err != nil {
		return nil, fmt.Errorf("get attempt: %w", err)
	}
	return at, nil
}

func (a *API) getAttempt(w http.ResponseWriter, r *http.Request) error {
	at, err := a.lookupAttempt(r)
	if err != nil {
		return err
	}
	return writeEncoded(w, http.StatusOK, toAttemptOut(at, true))
}

// expungeAttemptContent deletes the response body an attempt stored.
func (a *API) expungeAttemptContent(w http.ResponseWriter, r *http.Request) error {
	at, err := a.lookupAttempt(r)
	if err != nil {
		return err
	}
	if err := a.store.ExpungeAttemptContent(r.Context(), at.AppID, at.MessageID, at.ID); err != nil {
		return fmt.Errorf("expunge attempt content: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
