package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/herald-webhooks/herald"
)

// messageIn is Svix's MessageIn.
type messageIn struct {
	EventType              *string                    `json:"eventType"`
	EventID                *string                    `json:"eventId"`
	Payload                json.RawMessage            `json:"payload"`
	Channels               []string                   `json:"channels"`
	Tags                   []string                   `json:"tags"`
	Application            *applicationIn             `json:"application"`
	DeliverAt              *string                    `json:"deliverAt"`
	PayloadRetentionPeriod *int64                     `json:"payloadRetentionPeriod"`
	PayloadRetentionHours  *int64                     `json:"payloadRetentionHours"`
	TransformationsParams  map[string]json.RawMessage `json:"transformationsParams"`
}

// messageOut is Svix's MessageOut. Payload is written byte for byte by
// encode, never re-encoded (encoding/json would compact it).
type messageOut struct {
	ID        string          `json:"id"`
	EventType string          `json:"eventType"`
	EventID   *string         `json:"eventId,omitempty"`
	Payload   json.RawMessage `json:"-"`
	Channels  []string        `json:"channels,omitempty"`
	Tags      []string        `json:"tags,omitempty"`
	Timestamp string          `json:"timestamp"`
}

// emptyPayload stands in for a payload that was expunged or not asked for.
var emptyPayload = json.RawMessage(`{}`)

func toMessageOut(m *herald.Message, withContent bool) messageOut {
	out := messageOut{
		ID:        m.ID,
		EventType: m.EventType,
		EventID:   optString(m.EventID),
		Payload:   emptyPayload,
		Channels:  m.Channels,
		Tags:      m.Tags,
		Timestamp: formatTime(m.CreatedAt),
	}
	if withContent && len(m.Payload) > 0 && m.ContentType == "" {
		out.Payload = m.Payload
	}
	return out
}

// encode returns the JSON of m with the payload exactly as stored.
func (m messageOut) encode() ([]byte, error) {
	rest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	buf := make([]byte, 0, len(rest)+len(m.Payload)+16)
	buf = append(buf, `{"payload":`...)
	buf = append(buf, m.Payload...)
	buf = append(buf, ',')
	return append(buf, rest[1:]...), nil
}

// UnmarshalJSON reads a MessageOut, payload included (tests read answers).
func (m *messageOut) UnmarshalJSON(b []byte) error {
	type plain messageOut
	var aux struct {
		plain
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*m = messageOut(aux.plain)
	m.Payload = aux.Payload
	return nil
}

// writeMessage answers with one MessageOut.
func (a *API) writeMessage(w http.ResponseWriter, r *http.Request, status int, m messageOut) {
	body, err := m.encode()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeRaw(w, status, body)
}

// writeMessageList answers with a list of MessageOut, payloads verbatim.
func (a *API) writeMessageList(w http.ResponseWriter, r *http.Request, resp listResponse[messageOut]) {
	env, err := json.Marshal(listResponse[struct{}]{Iterator: resp.Iterator, PrevIterator: resp.PrevIterator, Done: resp.Done})
	if err != nil {
		a.writeError(w, r, fmt.Errorf("encode message list: %w", err))
		return
	}
	var buf bytes.Buffer
	buf.WriteString(`{"data":[`)
	for i, m := range resp.Data {
		item, err := m.encode()
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(item)
	}
	buf.WriteString(`],`)
	// env starts with {"data":null, or {"data":[], — skip its data field.
	_, tail, _ := bytes.Cut(env, []byte(","))
	buf.Write(tail)
	writeRaw(w, http.StatusOK, buf.Bytes())
}

// validate checks a MessageIn; nothing is stored when it fails.
func (in *messageIn) validate(v *validation) {
	if in.EventType == nil {
		v.add("field required", "body", "eventType")
	} else {
		v.checkName(*in.EventType, "body", "eventType")
	}
	v.checkOptionalName(in.EventID, "body", "eventId")
	v.checkPayload(rawOrNil(in.Payload), "body", "payload")
	v.checkChannels(in.Channels, "body", "channels")
	v.checkTags(in.Tags, "body", "tags")
	if in.Application != nil {
		in.Application.validate(v, "body", "application")
	}
	if in.DeliverAt != nil {
		// Refused rather than ignored: a sender who schedules a message
		// must not have it delivered at once.
		v.add("scheduled delivery (deliverAt) is not supported yet", "body", "deliverAt")
	}
	if in.PayloadRetentionPeriod != nil && *in.PayloadRetentionPeriod < 1 {
		v.add("ensure this value is greater than or equal to 1", "body", "payloadRetentionPeriod")
	}
	if in.PayloadRetentionHours != nil && *in.PayloadRetentionHours < 1 {
		v.add("ensure this value is greater than or equal to 1", "body", "payloadRetentionHours")
	}
	if _, raw := in.TransformationsParams["rawPayload"]; raw {
		v.add("raw payloads are not supported yet", "body", "transformationsParams", "rawPayload")
	}
}

// createMessage is POST /api/v1/app/{app_id}/msg. The message is committed
// through the group committer, so 202 means it is durable. When the app does
// not exist and the body has an application, that application is created
// with the path's app_id as its uid.
func (a *API) createMessage(w http.ResponseWriter, r *http.Request) {
	var v validation
	withContent := parseBool(r.URL.Query(), "with_content", true, &v)
	var in messageIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	in.validate(&v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.messageApp(r, in.Application)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	now := a.now().UTC()
	m := &herald.Message{
		ID:        herald.NewIDAt(herald.PrefixMessage, now),
		AppID:     app.ID,
		EventID:   derefString(in.EventID),
		EventType: *in.EventType,
		Payload:   []byte(in.Payload),
		Channels:  emptyToNil(in.Channels),
		Tags:      emptyToNil(in.Tags),
		CreatedAt: now,
	}
	res, err := a.messages.CreateMessage(r.Context(), m)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		a.writeError(w, r, fmt.Errorf("create message: %w", err))
		return
	}
	if res.Message != nil {
		m = res.Message
	}
	a.writeMessage(w, r, http.StatusAccepted, toMessageOut(m, withContent))
}

// messageApp resolves the path's application, creating it from the body's
// application when it does not exist yet.
func (a *API) messageApp(r *http.Request, in *applicationIn) (*herald.Application, error) {
	ref := r.PathValue("app_id")
	app, err := a.store.GetApplication(r.Context(), ref)
	if err == nil || in == nil || herald.ErrorCode(err) != herald.ENOTFOUND {
		if err != nil {
			return nil, fmt.Errorf("get application: %w", err)
		}
		return app, nil
	}
	var v validation
	v.checkName(ref, "path", "app_id")
	if err := v.err(); err != nil {
		return nil, err
	}
	app = a.newApplication(in, ref)
	app.UID = ref
	if err := a.store.CreateApplication(r.Context(), app); err != nil {
		if herald.ErrorCode(err) == herald.ECONFLICT {
			// Another request created it first; use that one.
			if existing, gerr := a.store.GetApplication(r.Context(), ref); gerr == nil {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("create application: %w", err)
	}
	return app, nil
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending)
	opts := herald.MessageListOptions{
		EventTypes: splitList(q["event_types"]),
		Channel:    q.Get("channel"),
		Before:     parseTime(q, "before", v),
		After:      parseTime(q, "after", v),
	}
	withContent := parseBool(q, "with_content", true, v)
	v.checkNames(opts.EventTypes, "query", "event_types")
	if opts.Channel != "" {
		v.checkChannels([]string{opts.Channel}, "query", "channel")
	}
	if q.Has("tag") {
		v.add("filtering messages by tag is not supported yet", "query", "tag")
	}
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.lookupApp(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	opts.ListOptions = p.options()
	msgs, err := a.store.ListMessages(r.Context(), app.ID, opts)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list messages: %w", err))
		return
	}
	a.writeMessageList(w, r, paginate(p, msgs,
		func(m *herald.Message) string { return m.ID },
		func(m *herald.Message) messageOut { return toMessageOut(m, withContent) }))
}

// splitList flattens repeated and comma-separated query values.
func splitList(values []string) []string {
	var out []string
	for _, value := range values {
		for _, item := range strings.Split(value, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// lookupMessage resolves the path's app_id and msg_id (an ID or eventId).
func (a *API) lookupMessage(r *http.Request) (*herald.Message, error) {
	app, err := a.lookupApp(r)
	if err != nil {
		return nil, err
	}
	m, err := a.store.GetMessage(r.Context(), app.ID, r.PathValue("msg_id"))
	if err != nil {
		return nil, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request) {
	var v validation
	withContent := parseBool(r.URL.Query(), "with_content", true, &v)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	m, err := a.lookupMessage(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeMessage(w, r, http.StatusOK, toMessageOut(m, withContent))
}

// expungeMessageContent deletes a message's payload, keeping the message.
func (a *API) expungeMessageContent(w http.ResponseWriter, r *http.Request) {
	m, err := a.lookupMessage(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.store.ExpungeMessageContent(r.Context(), m.AppID, m.ID); err != nil {
		a.writeError(w, r, fmt.Errorf("expunge message content: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
