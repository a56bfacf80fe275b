package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
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

// The bounds of deliverAt from the request's arrival, as Svix's contract
// states them ("at least one minute and no more than 24 hours in the
// future"). deliverAtSkew forgives a sender's clock and the request's
// transit that much below the minute: a sender asking for exactly a minute
// ahead by its own clock is not refused for milliseconds.
const (
	minDeliverAhead = time.Minute
	maxDeliverAhead = 24 * time.Hour
	deliverAtSkew   = 10 * time.Second
)

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
	// DeliverAt is a scheduled message's due time; omitted otherwise.
	DeliverAt *string `json:"deliverAt,omitempty"`
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
	if !m.DeliverAt.IsZero() {
		at := formatTime(m.DeliverAt)
		out.DeliverAt = &at
	}
	if withContent && len(m.Payload) > 0 {
		if m.ContentType == "" {
			out.Payload = m.Payload
		} else {
			out.Payload = shownPayload(m.Payload)
		}
	}
	return out
}

// encode returns the JSON of m with the payload exactly as stored.
func (m messageOut) encode() ([]byte, error) {
	rest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	return spliceField(rest, "payload", m.Payload), nil
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

// encoder is an answer whose JSON is assembled by hand, so that payloads
// are written byte for byte: encoding/json would compact them.
type encoder interface {
	encode() ([]byte, error)
}

// spliceField returns the JSON object obj with "name": raw as its first
// member; raw is copied verbatim.
func spliceField(obj []byte, name string, raw []byte) []byte {
	key, _ := json.Marshal(name) // a string always encodes
	buf := make([]byte, 0, len(obj)+len(key)+len(raw)+2)
	buf = append(buf, '{')
	buf = append(buf, key...)
	buf = append(buf, ':')
	buf = append(buf, raw...)
	if rest := bytes.TrimSpace(obj[1:]); len(rest) > 0 && rest[0] != '}' {
		buf = append(buf, ',')
	}
	return append(buf, obj[1:]...)
}

// writeEncoded answers with one hand-assembled item.
func writeEncoded(w http.ResponseWriter, status int, item encoder) error {
	body, err := item.encode()
	if err != nil {
		return err
	}
	writeRaw(w, status, body)
	return nil
}

// writeEncodedList answers with a list of hand-assembled items.
func writeEncodedList[T encoder](w http.ResponseWriter, resp listResponse[T]) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, item := range resp.Data {
		b, err := item.encode()
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString("]")
	env, err := json.Marshal(listResponse[struct{}]{Iterator: resp.Iterator, PrevIterator: resp.PrevIterator, Done: resp.Done})
	if err != nil {
		return fmt.Errorf("encode list: %w", err)
	}
	// env starts with {"data":null, — put the items in its place.
	_, tail, _ := bytes.Cut(env, []byte(","))
	writeRaw(w, http.StatusOK, spliceField(append([]byte("{"), tail...), "data", buf.Bytes()))
	return nil
}

// validate checks a MessageIn received at now and returns what its
// transformationsParams set; nothing is stored when it fails.
func (in *messageIn) validate(v *validation, now time.Time) rawParams {
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
		checkDeliverAt(*in.DeliverAt, now, v)
	}
	// The contract's bounds for days; hours as Svix's cloud API bounds them.
	if p := in.PayloadRetentionPeriod; p != nil && (*p < 5 || *p > 90) {
		v.add("ensure this value is between 5 and 90 (days)", "body", "payloadRetentionPeriod")
	}
	if h := in.PayloadRetentionHours; h != nil && (*h < 1 || *h > 2160) {
		v.add("ensure this value is between 1 and 2160 (hours)", "body", "payloadRetentionHours")
	}
	if in.TransformationsParams == nil {
		return rawParams{}
	}
	return v.checkTransformationsParams(in.TransformationsParams)
}

// decodeMessage reads and validates a MessageIn body; v may already hold
// the query's problems. Nothing here reads which fields were present, so
// the body is decoded once (decodeObject), not twice (decodeValid): this is
// the hottest body of the API.
func decodeMessage(r *http.Request, v *validation, now time.Time) (*messageIn, rawParams, error) {
	var in messageIn
	if err := decodeObject(r, &in, false); err != nil {
		return nil, rawParams{}, err
	}
	raw := in.validate(v, now)
	if err := v.err(); err != nil {
		return nil, rawParams{}, err
	}
	return &in, raw, nil
}

// createMessage is POST /api/v1/app/{app_id}/msg. The message is committed
// through the group committer, so 202 means it is durable. When the app does
// not exist and the body has an application, that application is created
// with the path's app_id as its uid.
func (a *API) createMessage(w http.ResponseWriter, r *http.Request) error {
	var v validation
	withContent := parseBool(r.URL.Query(), "with_content", true, &v)
	in, raw, err := decodeMessage(r, &v, a.now())
	if err != nil {
		return err
	}
	var m *herald.Message
	for try := 0; ; try++ {
		app, err := a.messageApp(w, r, in.Application)
		if err != nil {
			return err
		}
		m, err = a.commitMessage(r, &herald.Message{
			AppID:       app.ID,
			EventID:     derefString(in.EventID),
			EventType:   *in.EventType,
			Payload:     raw.body(in.Payload),
			ContentType: raw.contentType,
			Channels:    emptyToNil(in.Channels),
			Tags:        emptyToNil(in.Tags),
			DeliverAt:   in.scheduledAt(),
		}, in.payloadRetention())
		if herald.ErrorCode(err) == herald.ENOTFOUND && try == 0 {
			// The cached application was deleted (through another node):
			// read the reference again, once.
			a.msgApps.Forget(r.PathValue("app_id"))
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	return writeEncoded(w, http.StatusAccepted, toMessageOut(m, withContent))
}

// checkDeliverAt checks deliverAt: an RFC 3339 date-time between
// minDeliverAhead (less deliverAtSkew) and maxDeliverAhead after now.
func checkDeliverAt(s string, now time.Time, v *validation) {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v.add("value is not a valid RFC 3339 date-time", "body", "deliverAt")
		return
	}
	if ahead := at.Sub(now); ahead < minDeliverAhead-deliverAtSkew || ahead > maxDeliverAhead {
		v.add("deliverAt must be at least one minute and no more than 24 hours in the future", "body", "deliverAt")
	}
}

// scheduledAt is the validated deliverAt in UTC, zero when unset.
func (in *messageIn) scheduledAt() time.Time {
	if in.DeliverAt == nil {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, *in.DeliverAt) // checked by validate
	return at.UTC()
}

// payloadRetention is how long the message asks its payload to be kept:
// payloadRetentionHours, else payloadRetentionPeriod days, else zero (as
// long as the message itself, see --retention-days).
func (in *messageIn) payloadRetention() time.Duration {
	switch {
	case in.PayloadRetentionHours != nil:
		return time.Duration(*in.PayloadRetentionHours) * time.Hour
	case in.PayloadRetentionPeriod != nil:
		return time.Duration(*in.PayloadRetentionPeriod) * 24 * time.Hour
	}
	return 0
}

// commitMessage gives m an ID, a creation time and, when payloadRetention
// is set, the time its payload expires, and commits it with its deliveries
// through the group committer. It returns the stored message.
func (a *API) commitMessage(r *http.Request, m *herald.Message, payloadRetention time.Duration) (*herald.Message, error) {
	now := a.now().UTC()
	m.ID = herald.NewIDAt(herald.PrefixMessage, now)
	m.CreatedAt = now
	m.TraceParent = traceParentOf(r.Context())
	if payloadRetention > 0 {
		m.PayloadExpiresAt = now.Add(payloadRetention)
	}
	// Not r.Context(): a client that hangs up must not turn a message that
	// will still commit into a 5xx, or its idempotent retry would create a
	// second message. The committer bounds the wait.
	res, err := a.messages.CreateMessage(context.WithoutCancel(r.Context()), m)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create message: %w", err)
	}
	if res.Message != nil {
		return res.Message, nil
	}
	return m, nil
}

// messageApp resolves the path's application, creating it from the body's
// application when it does not exist yet.
func (a *API) messageApp(w http.ResponseWriter, r *http.Request, in *applicationIn) (*herald.Application, error) {
	if app, ok := authorizedApp(r); ok {
		return app, nil
	}
	ref := r.PathValue("app_id")
	app, err := a.msgApps.Get(ref, func() (*herald.Application, error) { return a.store.GetApplication(r.Context(), ref) })
	if err == nil || in == nil || herald.ErrorCode(err) != herald.ENOTFOUND {
		if err != nil {
			return nil, fmt.Errorf("get application: %w", err)
		}
		return app, nil
	}
	if err := checkPathRef(ref, "app_id"); err != nil {
		return nil, err
	}
	app = a.newApplication(in, ref)
	app.UID = ref
	// Messages are not audited (the message log is their record), the
	// application a message creates is.
	p, _ := access.FromContext(r.Context())
	audited := herald.WithAuditActor(r.Context(), a.auditActor(w, r, p))
	if err := a.store.CreateApplication(audited, app); err != nil {
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

// messageFilter is the query's message filters: event_types, channel,
// tag, before and after, shared by the lists of messages, endpoint
// messages and attempts.
type messageFilter struct {
	EventTypes    []string
	Channel       string
	Tag           string
	Before, After time.Time
}

// parseMessageFilter reads the message filters, adding problems to v.
func parseMessageFilter(q url.Values, v *validation) messageFilter {
	f := messageFilter{
		EventTypes: splitList(q["event_types"]),
		Channel:    q.Get("channel"),
		Before:     parseTime(q, "before", v),
		After:      parseTime(q, "after", v),
	}
	v.checkNames(f.EventTypes, "query", "event_types")
	if f.Channel != "" {
		v.checkChannels([]string{f.Channel}, "query", "channel")
	}
	if q.Has("tag") {
		f.Tag = q.Get("tag")
		v.checkTag(f.Tag, "query", "tag")
	}
	return f
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending, messageCursor)
	f := parseMessageFilter(q, v)
	withContent := parseBool(q, "with_content", true, v)
	if err := v.err(); err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	msgs, err := a.store.ListMessages(r.Context(), app.ID, herald.MessageListOptions{
		ListOptions: p.options(), EventTypes: f.EventTypes, Channel: f.Channel, Tag: f.Tag, Before: f.Before, After: f.After,
	})
	if err != nil {
		return fmt.Errorf("list messages: %w", err)
	}
	return writeEncodedList(w, paginate(p, msgs,
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

func (a *API) getMessage(w http.ResponseWriter, r *http.Request) error {
	var v validation
	withContent := parseBool(r.URL.Query(), "with_content", true, &v)
	if err := v.err(); err != nil {
		return err
	}
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	return writeEncoded(w, http.StatusOK, toMessageOut(m, withContent))
}

// messageRawOut is Svix's MessageRawPayloadOut.
type messageRawOut struct {
	Payload string `json:"payload"`
}

// getMessageRaw is GET /api/v1/app/{app_id}/msg/{msg_id}/raw (Svix's
// v1.message.get-raw-payload): the body every attempt of the message
// sends, as a string, for raw payloads that MessageOut cannot show; {}
// once the content is expunged, as an attempt would send it then.
func (a *API) getMessageRaw(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	out := messageRawOut{Payload: string(emptyPayload)}
	if m.Payload != nil {
		out.Payload = string(m.Payload)
	}
	return writeJSON(w, http.StatusOK, out)
}

// deleteMessage is DELETE /api/v1/app/{app_id}/msg/{msg_id}, a Herald
// extension (Svix's API has no such operation): the message goes with its
// deliveries and attempts, so a scheduled message is cancelled before its
// time. A delivery being sent at that moment still arrives; nothing of it
// is recorded.
func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteMessage(r.Context(), m.AppID, m.ID); err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// expungeMessageContent deletes a message's payload, keeping the message.
func (a *API) expungeMessageContent(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lookupMessage(r)
	if err != nil {
		return err
	}
	if err := a.store.ExpungeMessageContent(r.Context(), m.AppID, m.ID); err != nil {
		return fmt.Errorf("expunge message content: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
