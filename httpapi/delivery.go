package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/herald-webhooks/herald"
)

// deliveryState is the part of Svix's MessageEndpointOut and
// EndpointMessageOut that describes one delivery.
type deliveryState struct {
	Status      int     `json:"status"`
	StatusText  string  `json:"statusText"`
	NextAttempt *string `json:"nextAttempt,omitempty"`
}

// Svix's MessageStatus numbers and texts.
const (
	statusSuccess = 0
	statusPending = 1
	statusFail    = 2
	statusSending = 3
)

var statusText = []string{"success", "pending", "fail", "sending"}

// deliveryStatusNumber maps a delivery's status to Svix's MessageStatus.
// The contract's MessageStatus has no "canceled": a delivery canceled
// because its endpoint was disabled or went away did not arrive, so it
// shows as fail.
var deliveryStatusNumber = map[herald.DeliveryStatus]int{
	herald.DeliverySucceeded: statusSuccess,
	herald.DeliveryPending:   statusPending,
	herald.DeliveryFailed:    statusFail,
	herald.DeliverySending:   statusSending,
	herald.DeliveryCanceled:  statusFail,
}

// deliveryStatusByNumber is the status query filter of endpoint messages.
var deliveryStatusByNumber = map[int]herald.DeliveryStatus{
	statusSuccess: herald.DeliverySucceeded,
	statusPending: herald.DeliveryPending,
	statusFail:    herald.DeliveryFailed,
	statusSending: herald.DeliverySending,
}

// toDeliveryState describes d; nextAttempt is set while it waits to be sent.
func toDeliveryState(d *herald.Delivery) deliveryState {
	n := deliveryStatusNumber[d.Status]
	out := deliveryState{Status: n, StatusText: statusText[n]}
	if d.Status == herald.DeliveryPending && !d.NextAttemptAt.IsZero() {
		next := formatTime(d.NextAttemptAt)
		out.NextAttempt = &next
	}
	return out
}

// messageEndpointOut is Svix's MessageEndpointOut: an endpoint a message was
// routed to, with the state of that delivery.
type messageEndpointOut struct {
	endpointOut
	deliveryState
}

// listMessageEndpoints is GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint:
// the endpoints a message was routed to, by endpoint ID.
func (a *API) listMessageEndpoints(w http.ResponseWriter, r *http.Request) error {
	p, v := parsePage(r.URL.Query(), herald.Ascending, endpointCursor)
	if err := v.err(); err != nil {
		return err
	}
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	deliveries, err := a.store.ListMessageDeliveries(r.Context(), m.AppID, m.ID)
	if err != nil {
		return fmt.Errorf("list message deliveries: %w", err)
	}
	rows := make([]messageEndpointOut, 0, p.limit+1)
	for _, d := range pageInMemory(p, deliveries, func(d *herald.Delivery) string { return d.EndpointID }) {
		ep, err := a.store.GetEndpoint(r.Context(), m.AppID, d.EndpointID)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			continue // deleted since the listing; its deliveries go with it
		} else if err != nil {
			return fmt.Errorf("get endpoint %s: %w", d.EndpointID, err)
		}
		rows = append(rows, messageEndpointOut{toEndpointOut(ep), toDeliveryState(d)})
	}
	return writeJSON(w, http.StatusOK, paginate(p, rows,
		func(o messageEndpointOut) string { return o.ID },
		func(o messageEndpointOut) messageEndpointOut { return o }))
}

// pageInMemory picks from rows, a whole listing in ascending key order, the
// rows a store would return for p.options(): those past the cursor in the
// page's direction, at most one more than the limit.
func pageInMemory[R any](p page, rows []R, key func(R) string) []R {
	opts := p.options()
	ordered := rows
	if opts.Order == herald.Descending {
		ordered = slices.Clone(rows)
		slices.Reverse(ordered)
	}
	out := make([]R, 0, min(opts.Limit, len(rows)))
	for _, row := range ordered {
		k := key(row)
		if opts.Cursor != "" && (opts.Order == herald.Ascending && k <= opts.Cursor ||
			opts.Order == herald.Descending && k >= opts.Cursor) {
			continue
		}
		if out = append(out, row); len(out) == opts.Limit {
			break
		}
	}
	return out
}

// endpointMessageOut is Svix's EndpointMessageOut: a message routed to one
// endpoint, with the state of that delivery.
type endpointMessageOut struct {
	msg   messageOut
	state deliveryState
}

// encode returns the message's JSON (payload verbatim) with the delivery
// state's fields added.
func (o endpointMessageOut) encode() ([]byte, error) {
	msg, err := o.msg.encode()
	if err != nil {
		return nil, err
	}
	state, err := json.Marshal(o.state)
	if err != nil {
		return nil, fmt.Errorf("encode delivery state: %w", err)
	}
	// Both are non-empty objects: join them into one.
	msg = bytes.TrimSuffix(bytes.TrimSpace(msg), []byte("}"))
	return append(append(msg, ','), state[1:]...), nil
}

// listEndpointMessages is GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/
// msg: the messages routed to an endpoint, newest first, with their
// delivery state.
func (a *API) listEndpointMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending, messageCursor)
	f := parseMessageFilter(q, v)
	withContent := parseBool(q, "with_content", true, v)
	opts := herald.DeliveryListOptions{
		ListOptions: p.options(), EventTypes: f.EventTypes, Channel: f.Channel, Tag: f.Tag, Before: f.Before, After: f.After,
	}
	if n, ok := parseStatusFilter(q, v); ok {
		opts.Status = deliveryStatusByNumber[n]
	}
	if err := v.err(); err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	rows, err := a.store.ListEndpointMessages(r.Context(), ep.AppID, ep.ID, opts)
	if err != nil {
		return fmt.Errorf("list endpoint messages: %w", err)
	}
	return writeEncodedList(w, paginate(p, rows,
		func(em herald.EndpointMessage) string { return em.Message.ID },
		func(em herald.EndpointMessage) endpointMessageOut {
			return endpointMessageOut{toMessageOut(em.Message, withContent), toDeliveryState(em.Delivery)}
		}))
}

// resendMessage is POST …/msg/{msg_id}/endpoint/{endpoint_id}/resend: the
// message is queued for the endpoint again, now, as a manual attempt; 409
// while it is being sent.
func (a *API) resendMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	ep, err := a.store.GetEndpoint(r.Context(), m.AppID, r.PathValue("endpoint_id"))
	if err != nil {
		return fmt.Errorf("get endpoint: %w", err)
	}
	if ep.IsPoller() {
		return errPollerNoDeliveries(ep)
	}
	if err := a.store.ResendDelivery(r.Context(), m.AppID, m.ID, ep.ID, a.now().UTC()); err != nil {
		return fmt.Errorf("resend message: %w", err)
	}
	a.onQueued()
	return writeJSON(w, http.StatusAccepted, struct{}{}) // Svix's EmptyResponse
}

// timeRangeIn is Svix's RecoverIn and ReplayIn. The times are read as
// strings so a malformed one is a 422 naming it, not a 400.
type timeRangeIn struct {
	Since *string `json:"since"`
	Until *string `json:"until"`
}

// parse validates the range: since is required, until optional and after
// since.
func (in *timeRangeIn) parse(v *validation) (since, until time.Time) {
	if in.Since == nil {
		v.add("field required", "body", "since")
	} else {
		since = parseBodyTime(*in.Since, v, "since")
	}
	if in.Until != nil {
		until = parseBodyTime(*in.Until, v, "until")
		if !since.IsZero() && !until.IsZero() && !until.After(since) {
			v.add("until must be after since", "body", "until")
		}
	}
	return since, until
}

// parseBodyTime reads an RFC 3339 body field.
func parseBodyTime(s string, v *validation, field string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v.add("value is not a valid RFC 3339 date-time", "body", field)
	}
	return t
}

// recoverEndpoint is POST …/endpoint/{endpoint_id}/recover: a background
// task queues every failed delivery of messages created in [since, until)
// again.
func (a *API) recoverEndpoint(w http.ResponseWriter, r *http.Request) error {
	return a.startEndpointTask(w, r, herald.TaskRecover)
}

// replayMissing is POST …/endpoint/{endpoint_id}/replay-missing: a
// background task queues for the endpoint the messages created in [since,
// until) that it accepts but never got.
func (a *API) replayMissing(w http.ResponseWriter, r *http.Request) error {
	return a.startEndpointTask(w, r, herald.TaskReplay)
}

// startEndpointTask is recover and replay-missing: it reads the time range
// and starts the task for the path's endpoint.
func (a *API) startEndpointTask(w http.ResponseWriter, r *http.Request, kind herald.TaskKind) error {
	var in timeRangeIn
	var v validation
	var since, until time.Time
	if _, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) { since, until = in.parse(&v) }); err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	return a.startTask(w, r, &herald.Task{Kind: kind, AppID: ep.AppID, EndpointID: ep.ID,
		Filter: herald.TaskFilter{Since: since.UTC(), Until: until.UTC()}})
}

// endpointStatsOut is Svix's EndpointStats. Herald shows canceled
// deliveries as fail (see deliveryStatusNumber), so canceled is always 0.
type endpointStatsOut struct {
	Success  int `json:"success"`
	Pending  int `json:"pending"`
	Sending  int `json:"sending"`
	Fail     int `json:"fail"`
	Canceled int `json:"canceled"`
	// Circuit is Herald's addition: the endpoint's circuit breaker state on
	// the node that answered; absent when the API has no dispatcher.
	Circuit string `json:"circuit,omitempty" openapi:"extension"`
}

// getEndpointStats is GET …/endpoint/{endpoint_id}/stats?since=&until=.
func (a *API) getEndpointStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v validation
	since, until := parseTime(q, "since", &v), parseTime(q, "until", &v)
	if err := v.err(); err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	stats, err := a.store.GetEndpointStats(r.Context(), ep.AppID, ep.ID, since.UTC(), until.UTC())
	if err != nil {
		return fmt.Errorf("get endpoint stats: %w", err)
	}
	out := endpointStatsOut{Success: stats.Success, Pending: stats.Pending, Sending: stats.Sending, Fail: stats.Fail}
	if a.circuit != nil {
		out.Circuit = a.circuit(ep.ID)
	}
	return writeJSON(w, http.StatusOK, out)
}

// eventExampleIn is Svix's EventExampleIn.
type eventExampleIn struct {
	EventType    *string `json:"eventType"`
	ExampleIndex *int    `json:"exampleIndex"`
}

// pingEventType is Svix's built-in test event; its example is fixed.
const pingEventType = "svix.ping"

// sendExample is POST …/endpoint/{endpoint_id}/send-example: a real message
// of the event type, with its schema's example as payload, sent to this one
// endpoint whatever its filters.
func (a *API) sendExample(w http.ResponseWriter, r *http.Request) error {
	var in eventExampleIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		v.checkRequiredName(in.EventType, "body", "eventType")
		if in.ExampleIndex != nil && *in.ExampleIndex < 0 {
			v.add("ensure this value is greater than or equal to 0", "body", "exampleIndex")
		}
	})
	if err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	if ep.IsPoller() {
		return errPollerNoDeliveries(ep)
	}
	index := 0
	if in.ExampleIndex != nil {
		index = *in.ExampleIndex
	}
	payload, err := a.examplePayload(r, *in.EventType, index)
	if err != nil {
		return err
	}
	m, err := a.commitMessage(r, &herald.Message{
		AppID: ep.AppID, EventType: *in.EventType, Payload: payload, OnlyEndpointID: ep.ID,
		// Recorded in the audit log in the ingest batch's transaction.
		Audit: herald.AuditActorFrom(r.Context()),
	}, 0)
	if err != nil {
		return err
	}
	a.onQueued()
	return writeEncoded(w, http.StatusOK, toMessageOut(m, true))
}

// examplePayload returns the payload send-example sends for an event type:
// a fixed one for svix.ping, else the index-th example of its schemas.
func (a *API) examplePayload(r *http.Request, eventType string, index int) ([]byte, error) {
	if eventType == pingEventType {
		return []byte(`{"success": true}`), nil
	}
	et, err := a.store.GetEventType(r.Context(), eventType)
	if err != nil {
		return nil, fmt.Errorf("get event type: %w", err)
	}
	examples := schemaExamples(et.Schemas)
	switch {
	case len(examples) == 0:
		return nil, invalid(fmt.Sprintf("event type %s has no schema example", eventType), "body", "eventType")
	case index >= len(examples):
		return nil, invalid(fmt.Sprintf("event type %s has %d schema examples", eventType, len(examples)), "body", "exampleIndex")
	}
	example := bytes.TrimSpace(examples[index])
	if len(example) == 0 || example[0] != '{' {
		return nil, invalid(fmt.Sprintf("example %d of event type %s is not a JSON object", index, eventType), "body", "eventType")
	}
	return example, nil
}

// schemaExamples returns the examples of an event type's schemas (a JSON
// object of version → JSON schema): those of version "1" when it has any,
// else those of the first version (in key order) that has "examples" or an
// "example".
func schemaExamples(schemas []byte) []json.RawMessage {
	var versions map[string]json.RawMessage
	if len(schemas) == 0 || json.Unmarshal(schemas, &versions) != nil {
		return nil
	}
	keys := slices.Sorted(maps.Keys(versions))
	if i := slices.Index(keys, "1"); i > 0 {
		keys = append([]string{"1"}, slices.Delete(keys, i, i+1)...)
	}
	for _, k := range keys {
		var schema struct {
			Examples []json.RawMessage `json:"examples"`
			Example  json.RawMessage   `json:"example"`
		}
		if json.Unmarshal(versions[k], &schema) != nil {
			continue
		}
		if len(schema.Examples) > 0 {
			return schema.Examples
		}
		if len(schema.Example) > 0 && !isNull(schema.Example) {
			return []json.RawMessage{schema.Example}
		}
	}
	return nil
}
