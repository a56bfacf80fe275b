package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-webhooks/herald/access"
)

// apiPrefix is where the API's routes live.
const apiPrefix = "/api/v1"

// maxAPIBody bounds what one in-process answer may hold in memory. Lists
// are read without content where the page does not show payloads, so only
// a message page (one payload of at most the API's body limit, and 50
// attempt bodies of at most 4 KiB) comes near it.
const maxAPIBody = 8 << 20

// recorder is the in-memory ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	over   bool
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.body.Len()+len(b) > maxAPIBody {
		rec.over = true
		return 0, io.ErrShortWrite
	}
	return rec.body.Write(b)
}

// apiError is an API answer that is not a 2xx: the status (a 4xx or 5xx;
// any other answer is a 404), Svix's code and detail, and for a 422 the
// fields at fault.
type apiError struct {
	Status int
	Code   string
	Detail string
	Fields []fieldError
}

// fieldError is one item of a 422 answer.
type fieldError struct {
	Loc []string `json:"loc"`
	Msg string   `json:"msg"`
}

// Field names the form field a 422 item is about: the first part of its
// location after "body" or "query" ("url", "headers", "since").
func (f fieldError) Field() string {
	if len(f.Loc) >= 2 {
		return f.Loc[1]
	}
	if len(f.Loc) == 1 {
		return f.Loc[0]
	}
	return ""
}

func (e *apiError) Error() string {
	if len(e.Fields) > 0 {
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Field()+": "+f.Msg)
		}
		return strings.Join(parts, "; ")
	}
	if e.Detail != "" {
		return e.Detail
	}
	return http.StatusText(e.Status)
}

// api calls the API in-process as principal p and decodes a 2xx JSON
// answer into out (when out is not nil). in, when not nil, is sent as the
// JSON body. A 4xx or 5xx is returned as an *apiError; any other answer
// (1xx, 3xx) as a 404 one.
func (s *Server) api(ctx context.Context, p access.Principal, method, path string, query url.Values, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := apiPrefix + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(access.WithPrincipal(ctx, p), method, target, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	forward(ctx, req)
	rec := &recorder{header: http.Header{}}
	s.handler.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.over {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxAPIBody)
	}
	switch {
	case rec.status >= 400 && rec.status <= 599:
		return decodeAPIError(rec.status, rec.body.Bytes())
	case rec.status < 200 || rec.status > 299:
		// A redirect (the API's router cleaning a path with a "." or ".."
		// segment) or anything stranger: the page's status is never the
		// API's here, and what the path names is not found.
		return &apiError{Status: http.StatusNotFound, Detail: "Not found."}
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// decodeAPIError reads Svix's error shapes: {"code","detail"} or, for a
// 422, {"detail":[{"loc","msg","type"}]}.
func decodeAPIError(status int, body []byte) *apiError {
	e := &apiError{Status: status}
	var raw struct {
		Code   string          `json:"code"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return e
	}
	e.Code = raw.Code
	if len(raw.Detail) > 0 && raw.Detail[0] == '[' {
		_ = json.Unmarshal(raw.Detail, &e.Fields)
	} else {
		_ = json.Unmarshal(raw.Detail, &e.Detail)
	}
	return e
}

// appPath is the API path of an application (or of something under it).
func appPath(app string, rest ...string) string {
	p := "/app/" + url.PathEscape(app)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// listOut is Svix's ListResponse* shape.
type listOut[T any] struct {
	Data         []T     `json:"data"`
	Iterator     *string `json:"iterator"`
	PrevIterator *string `json:"prevIterator"`
	Done         bool    `json:"done"`
}

// The API's answers, as far as the pages use them (see httpapi's …Out
// types).

type appOut struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	UID       *string           `json:"uid"`
	RateLimit *uint16           `json:"rateLimit"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt string            `json:"createdAt"`
	UpdatedAt string            `json:"updatedAt"`
}

type endpointOut struct {
	ID          string            `json:"id"`
	URL         string            `json:"url"`
	Description string            `json:"description"`
	UID         *string           `json:"uid"`
	Version     int               `json:"version"`
	Disabled    bool              `json:"disabled"`
	FilterTypes []string          `json:"filterTypes"`
	Channels    []string          `json:"channels"`
	RateLimit   *uint16           `json:"rateLimit"`
	Metadata    map[string]string `json:"metadata"`
	Ordering    string            `json:"ordering"`
	CreatedAt   string            `json:"createdAt"`
	UpdatedAt   string            `json:"updatedAt"`
}

type statsOut struct {
	Success int    `json:"success"`
	Pending int    `json:"pending"`
	Sending int    `json:"sending"`
	Fail    int    `json:"fail"`
	Circuit string `json:"circuit"`
}

type headersOut struct {
	Headers   map[string]string `json:"headers"`
	Sensitive []string          `json:"sensitive"`
}

type secretOut struct {
	Key string `json:"key"`
}

// messageOut is a MessageOut; the delivery state fields are set when it
// comes from an endpoint's message list (EndpointMessageOut).
type messageOut struct {
	ID          string          `json:"id"`
	EventType   string          `json:"eventType"`
	EventID     *string         `json:"eventId"`
	Payload     json.RawMessage `json:"payload"`
	Channels    []string        `json:"channels"`
	Timestamp   string          `json:"timestamp"`
	Status      *int            `json:"status"`
	StatusText  string          `json:"statusText"`
	NextAttempt *string         `json:"nextAttempt"`
}

// messageEndpointOut is a MessageEndpointOut: an endpoint a message was
// routed to, with that delivery's state.
type messageEndpointOut struct {
	endpointOut
	Status      int     `json:"status"`
	StatusText  string  `json:"statusText"`
	NextAttempt *string `json:"nextAttempt"`
}

type attemptOut struct {
	ID                 string `json:"id"`
	MsgID              string `json:"msgId"`
	EndpointID         string `json:"endpointId"`
	URL                string `json:"url"`
	Response           string `json:"response"`
	ResponseStatusCode int    `json:"responseStatusCode"`
	ResponseDurationMs int64  `json:"responseDurationMs"`
	Status             int    `json:"status"`
	StatusText         string `json:"statusText"`
	TriggerType        int    `json:"triggerType"`
	Timestamp          string `json:"timestamp"`
	// Msg is the attempt's message, when asked for with with_msg=true.
	Msg *struct {
		EventType string `json:"eventType"`
	} `json:"msg"`
}

type eventTypeOut struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Archived    bool            `json:"archived"`
	Deprecated  bool            `json:"deprecated"`
	Schemas     json.RawMessage `json:"schemas"`
	CreatedAt   string          `json:"createdAt"`
	UpdatedAt   string          `json:"updatedAt"`
}
