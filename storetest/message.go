package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-webhooks/herald"
)

var messageTests = []namedTest{
	{"CreateAndGet", testMessageCreateAndGet},
	{"UniqueEventID", testMessageUniqueEventID},
	{"BatchErrors", testMessageBatchErrors},
	{"NotFound", testMessageNotFound},
	{"FanOut", testMessageFanOut},
	{"LargeBatch", testMessageLargeBatch},
	{"List", testMessageList},
	{"ListFilters", testMessageListFilters},
	{"ExpungeContent", testMessageExpungeContent},
	{"RawPayloadToDispatcher", testMessageRawPayloadToDispatcher},
	{"Tags", testMessageTags},
	{"Scheduled", testMessageScheduled},
	{"Delete", testMessageDelete},
}

// newMessage returns a JSON message of appID created at(n).
// newMessages returns count messages for appID of type user.created,
// created at(10), at(11), and so on.
func newMessages(appID string, count int) []*herald.Message {
	msgs := make([]*herald.Message, count)
	for i := range msgs {
		msgs[i] = newMessage(appID, 10+i, "user.created")
	}
	return msgs
}

func newMessage(appID string, n int, eventType string) *herald.Message {
	return &herald.Message{
		ID:        id(herald.PrefixMessage, n),
		AppID:     appID,
		EventType: eventType,
		Payload:   fmt.Appendf(nil, `{"n":%d}`, n),
		CreatedAt: at(n),
	}
}

// mustCreateMessages stores msgs in one batch, fails on any error and
// returns the results.
func mustCreateMessages(t *testing.T, s herald.Store, msgs ...*herald.Message) []herald.MessageResult {
	t.Helper()
	res, err := s.CreateMessages(t.Context(), msgs, herald.Lease{})
	mustOK(t, "CreateMessages", err)
	if len(res) != len(msgs) {
		t.Fatalf("CreateMessages returned %d results for %d messages", len(res), len(msgs))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("CreateMessages: message %d (%s): %v", i, msgs[i].ID, r.Err)
		}
	}
	return res
}

// mustGetMessage returns the message ref names in application appID.
func mustGetMessage(t *testing.T, s herald.Store, appID, ref string) *herald.Message {
	t.Helper()
	got, err := s.GetMessage(t.Context(), appID, ref)
	mustOK(t, "GetMessage "+ref, err)
	return got
}

// mustListDeliveries returns a message's deliveries.
func mustListDeliveries(t *testing.T, s herald.Store, appID, msgID string) []*herald.Delivery {
	t.Helper()
	got, err := s.ListMessageDeliveries(t.Context(), appID, msgID)
	mustOK(t, "ListMessageDeliveries "+msgID, err)
	return got
}

// wantDelivery is the fresh delivery of msg to endpoint epID, without the
// fields the store chooses (ID, CreatedAt, UpdatedAt).
func wantDelivery(msg *herald.Message, epID string) *herald.Delivery {
	return &herald.Delivery{
		AppID:      msg.AppID,
		MessageID:  msg.ID,
		EndpointID: epID,
		Status:     herald.DeliveryPending,
		// Stores keep microseconds, truncated.
		NextAttemptAt: msg.CreatedAt.Truncate(time.Microsecond),
	}
}

// ignoreStoreChosen leaves out the delivery fields the store chooses.
var ignoreStoreChosen = cmpopts.IgnoreFields(herald.Delivery{}, "ID", "CreatedAt", "UpdatedAt")

// checkDeliveryIDs fails unless every delivery has its own dlv_ ID and a
// creation time.
func checkDeliveryIDs(t *testing.T, ds []*herald.Delivery) {
	t.Helper()
	seen := make(map[string]bool)
	for _, d := range ds {
		if !strings.HasPrefix(d.ID, herald.PrefixDelivery) || seen[d.ID] {
			t.Fatalf("delivery ID %q: want a unique %s ID", d.ID, herald.PrefixDelivery)
		}
		seen[d.ID] = true
		if d.CreatedAt.IsZero() {
			t.Fatalf("delivery %s has no CreatedAt", d.ID)
		}
	}
}

// deliveryIDs returns the IDs of ds, sorted.
func deliveryIDs(ds []*herald.Delivery) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return ids
}

func testMessageCreateAndGet(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))

	// Key order, spacing and escapes are the sender's: the bytes come back
	// exactly, never re-encoded.
	unicode := newMessage(app.ID, 10, "user.created")
	unicode.EventID = "evt-1"
	unicode.Payload = []byte("{\"name\": \"Zoë 🚀 日本\",  \"esc\":\"\\u00e9\\n\", \"a\":[1,2.50,{}]}")
	unicode.Channels = []string{"project-1", "eu"}
	unicode.Tags = []string{"tag-a"}
	raw := newMessage(app.ID, 11, "invoice.paid")
	raw.Payload = []byte("<?xml version=\"1.0\"?>\n<invoice id=\"42\">Straße &amp; Co</invoice>\r\n")
	raw.ContentType = "application/xml; charset=utf-8"
	plain := newMessage(app.ID, 12, "ping")
	plain.Payload = []byte("not json at all: {")
	plain.ContentType = "text/plain"

	msgs := []*herald.Message{unicode, raw, plain}
	res := mustCreateMessages(t, s, msgs...)
	for i, m := range msgs {
		mustEqual(t, "result message "+m.ID, m, res[i].Message)
		mustEqual(t, "get by ID "+m.ID, m, mustGetMessage(t, s, app.ID, m.ID))
	}
	mustEqual(t, "get by eventId", unicode, mustGetMessage(t, s, app.ID, "evt-1"))

	// A message is only visible within its own application.
	_, err := s.GetMessage(t.Context(), other.ID, unicode.ID)
	mustCode(t, "get by ID in another app", err, herald.ENOTFOUND)
	_, err = s.GetMessage(t.Context(), other.ID, "evt-1")
	mustCode(t, "get by eventId in another app", err, herald.ENOTFOUND)
	_, err = s.GetMessage(t.Context(), app.ID, "")
	mustCode(t, `get by ""`, err, herald.ENOTFOUND)
}

func testMessageUniqueEventID(t *testing.T, s herald.Store) {
	a := mustCreateApp(t, s, newApp(1))
	b := mustCreateApp(t, s, newApp(2))
	first := newMessage(a.ID, 10, "user.created")
	first.EventID = "evt"
	mustCreateMessages(t, s, first)

	dup := newMessage(a.ID, 11, "user.updated")
	dup.EventID = "evt"
	res, err := s.CreateMessages(t.Context(), []*herald.Message{dup}, herald.Lease{})
	mustOK(t, "CreateMessages", err)
	mustCode(t, "same eventId in same app", res[0].Err, herald.ECONFLICT)
	mustEqual(t, "first message kept", first, mustGetMessage(t, s, a.ID, "evt"))

	// eventIds are unique per application only, and may be left unset by
	// any number of messages.
	inB := newMessage(b.ID, 12, "user.created")
	inB.EventID = "evt"
	mustCreateMessages(t, s, inB, newMessage(a.ID, 13, "x"), newMessage(a.ID, 14, "x"))
	mustEqual(t, "eventId in app B", inB, mustGetMessage(t, s, b.ID, "evt"))
	mustEqual(t, "eventId in app A", first, mustGetMessage(t, s, a.ID, "evt"))
}

func testMessageBatchErrors(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	existing := newMessage(app.ID, 10, "user.created")
	existing.EventID = "taken"
	mustCreateMessages(t, s, existing)

	ok1 := newMessage(app.ID, 11, "user.created")
	ok1.EventID = "fresh"
	noApp := newMessage(id(herald.PrefixApplication, 3), 12, "user.created")
	dupOld := newMessage(app.ID, 13, "user.created")
	dupOld.EventID = "taken"
	ok2 := newMessage(app.ID, 14, "user.created")
	// The second message of a batch with an eventId taken earlier in the
	// same batch conflicts like one taken by an older batch.
	dupSame := newMessage(app.ID, 15, "user.created")
	dupSame.EventID = "fresh"
	batch := []*herald.Message{ok1, noApp, dupOld, ok2, dupSame}

	res, err := s.CreateMessages(t.Context(), batch, herald.Lease{})
	mustOK(t, "CreateMessages", err)
	if len(res) != len(batch) {
		t.Fatalf("got %d results for %d messages", len(res), len(batch))
	}
	wantCodes := []string{"", herald.ENOTFOUND, herald.ECONFLICT, "", herald.ECONFLICT}
	for i, code := range wantCodes {
		mustCode(t, fmt.Sprintf("result %d (%s)", i, batch[i].ID), res[i].Err, code)
		if code == "" {
			mustEqual(t, "stored message", batch[i], res[i].Message)
			mustEqual(t, "its deliveries", []*herald.Delivery{wantDelivery(batch[i], ep.ID)}, res[i].Deliveries, ignoreStoreChosen)
			mustEqual(t, "get "+batch[i].ID, batch[i], mustGetMessage(t, s, batch[i].AppID, batch[i].ID))
			continue
		}
		if res[i].Message != nil || len(res[i].Deliveries) != 0 {
			t.Errorf("failed result %d has message %v and %d deliveries, want none", i, res[i].Message, len(res[i].Deliveries))
		}
		_, err := s.GetMessage(t.Context(), app.ID, batch[i].ID)
		mustCode(t, "get refused message", err, herald.ENOTFOUND)
	}
	mustEqual(t, "older message kept", existing, mustGetMessage(t, s, app.ID, "taken"))
	mustEqual(t, "eventId of the batch's first", ok1, mustGetMessage(t, s, app.ID, "fresh"))
}

func testMessageNotFound(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	msg := newMessage(app.ID, 10, "user.created")
	mustCreateMessages(t, s, msg)

	_, err := s.GetMessage(ctx, app.ID, id(herald.PrefixMessage, 11))
	mustCode(t, "get unknown ID", err, herald.ENOTFOUND)
	_, err = s.GetMessage(ctx, app.ID, "no-such-event")
	mustCode(t, "get unknown eventId", err, herald.ENOTFOUND)
	mustCode(t, "expunge unknown", s.ExpungeMessageContent(ctx, app.ID, id(herald.PrefixMessage, 11)), herald.ENOTFOUND)
	mustCode(t, "expunge in other app", s.ExpungeMessageContent(ctx, other.ID, msg.ID), herald.ENOTFOUND)
	mustEqual(t, "message untouched", msg, mustGetMessage(t, s, app.ID, msg.ID))
}

func testMessageFanOut(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	// An accept-all endpoint of another application never gets this
	// application's messages.
	otherEp := mustCreateEndpoint(t, s, newEndpoint(other.ID, 9))

	type epSpec struct {
		filterTypes, channels []string
		disabled              bool
	}
	specs := []epSpec{
		{},                                      // 0: accepts everything
		{filterTypes: []string{"user.created"}}, // 1
		{filterTypes: []string{"invoice.paid", "invoice.failed"}},           // 2
		{channels: []string{"ch-a"}},                                        // 3
		{channels: []string{"ch-b", "ch-c"}},                                // 4
		{disabled: true},                                                    // 5: gets nothing
		{filterTypes: []string{"user.created"}, channels: []string{"ch-a"}}, // 6
	}
	eps := make([]*herald.Endpoint, len(specs))
	for i, sp := range specs {
		ep := newEndpoint(app.ID, 10+i)
		ep.FilterTypes, ep.Channels, ep.Disabled = sp.filterTypes, sp.channels, sp.disabled
		eps[i] = ep
	}
	// Created out of ID order: deliveries are listed by endpoint ID, not in
	// the order endpoints or deliveries were made.
	for _, i := range creationOrder {
		mustCreateEndpoint(t, s, eps[i])
	}

	cases := []struct {
		eventType string
		channels  []string
		want      []int // indexes into eps, in endpoint ID order
	}{
		// No channels: endpoints with channels never get it.
		{"user.created", nil, []int{0, 1}},
		{"user.created", []string{"ch-a"}, []int{0, 1, 3, 6}},
		// Shares ch-c with endpoint 4, nothing with endpoint 3.
		{"invoice.paid", []string{"ch-z", "ch-c"}, []int{0, 2, 4}},
		{"other.type", []string{"ch-z"}, []int{0}},
		{"invoice.failed", []string{"ch-b", "ch-a"}, []int{0, 2, 3, 4}},
	}
	msgs := make([]*herald.Message, len(cases))
	for i, c := range cases {
		msgs[i] = newMessage(app.ID, 100+i, c.eventType)
		msgs[i].Channels = c.channels
		// Sub-microsecond digits are truncated by the store.
		msgs[i].CreatedAt = msgs[i].CreatedAt.Add(123456789 * time.Nanosecond)
	}
	// The same batch holds a message of the other application, routed to
	// that application's endpoint only.
	otherMsg := newMessage(other.ID, 99, "user.created")
	res := mustCreateMessages(t, s, append(slices.Clone(msgs), otherMsg)...)
	mustEqual(t, "other application's deliveries", []*herald.Delivery{wantDelivery(otherMsg, otherEp.ID)},
		mustListDeliveries(t, s, other.ID, otherMsg.ID), ignoreStoreChosen)

	for i, c := range cases {
		var want []*herald.Delivery
		for _, e := range c.want {
			want = append(want, wantDelivery(msgs[i], eps[e].ID))
		}
		listed := mustListDeliveries(t, s, app.ID, msgs[i].ID)
		what := fmt.Sprintf("message %d (%s %v)", i, c.eventType, c.channels)
		mustEqual(t, what+": listed deliveries", want, listed, ignoreStoreChosen)
		checkDeliveryIDs(t, listed)

		got := slices.Clone(res[i].Deliveries)
		slices.SortFunc(got, func(a, b *herald.Delivery) int { return strings.Compare(a.EndpointID, b.EndpointID) })
		mustEqual(t, what+": returned deliveries", want, got, ignoreStoreChosen)
		mustEqual(t, what+": returned and listed IDs", deliveryIDs(listed), deliveryIDs(got))

		stored := mustGetMessage(t, s, app.ID, msgs[i].ID)
		if wantAt := msgs[i].CreatedAt.Truncate(time.Microsecond); !stored.CreatedAt.Equal(wantAt) {
			t.Errorf("%s: CreatedAt %v, want %v", what, stored.CreatedAt, wantAt)
		}
	}
}

func testMessageLargeBatch(t *testing.T, s herald.Store) {
	// Larger than the ingest committer's default batch (512), with enough
	// endpoints that a store inserting every delivery row in one statement
	// would pass SQLite's limit of 32766 bound parameters.
	const msgCount, epCount = 600, 10
	app := mustCreateApp(t, s, newApp(1))
	var epIDs []string
	for i := range epCount {
		epIDs = append(epIDs, mustCreateEndpoint(t, s, newEndpoint(app.ID, 10+i)).ID)
	}
	msgs := make([]*herald.Message, msgCount)
	for i := range msgs {
		msgs[i] = newMessage(app.ID, 100+i, "user.created")
		msgs[i].EventID = fmt.Sprintf("evt-%d", i)
	}
	res := mustCreateMessages(t, s, msgs...)

	seen := make(map[string]bool)
	for i, r := range res {
		mustEqual(t, "result message", msgs[i], r.Message)
		var got []string
		for _, d := range r.Deliveries {
			if d.MessageID != msgs[i].ID || seen[d.ID] {
				t.Fatalf("result %d: delivery %+v belongs elsewhere or repeats", i, d)
			}
			seen[d.ID] = true
			got = append(got, d.EndpointID)
		}
		slices.Sort(got)
		mustEqual(t, fmt.Sprintf("result %d endpoints", i), epIDs, got)
	}
	// Spot checks that the rows were stored, not only returned.
	for _, i := range []int{0, msgCount / 2, msgCount - 1} {
		mustEqual(t, "stored message", msgs[i], mustGetMessage(t, s, app.ID, msgs[i].EventID))
		want := make([]*herald.Delivery, epCount)
		for j, epID := range epIDs {
			want[j] = wantDelivery(msgs[i], epID)
		}
		mustEqual(t, "stored deliveries", want, mustListDeliveries(t, s, app.ID, msgs[i].ID), ignoreStoreChosen)
	}
}

func testMessageList(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	const n = 2*pageSize + 1
	msgs := make([]*herald.Message, n)
	want := make([]string, n)
	for i := range n {
		msgs[i] = newMessage(app.ID, 10+i, "user.created")
		want[i] = msgs[i].ID
	}
	var batch []*herald.Message
	for _, i := range creationOrder {
		batch = append(batch, msgs[i], newMessage(other.ID, 10+i, "user.created"))
	}
	mustCreateMessages(t, s, batch...)

	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			exp := want
			if o.order == herald.Descending {
				exp = reversed(want)
			}
			mustWalk(t, "message IDs", exp, func(cursor string) ([]*herald.Message, error) {
				return s.ListMessages(t.Context(), app.ID, herald.MessageListOptions{
					ListOptions: herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order},
				})
			}, func(m *herald.Message) string { return m.ID })
		})
	}

	page, err := s.ListMessages(t.Context(), app.ID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 2}})
	mustOK(t, "list first two", err)
	mustEqual(t, "listed rows", msgs[:2], page)
}

func testMessageListFilters(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	types := []string{"a.x", "b.y", "c.z"}
	const n = 14
	msgs := make([]*herald.Message, n)
	for i := range n {
		m := newMessage(app.ID, 10+i, types[i%3])
		switch {
		case i%4 == 0:
			m.Channels = []string{"even", "four"}
		case i%2 == 0:
			m.Channels = []string{"even"}
		default:
			// A channel that contains "even" and "four" as substrings.
			m.Channels = []string{"uneven-four"}
		}
		m.Tags = tagsOf(i)
		msgs[i] = m
	}
	// Message i is created at(10+i). Another application's messages carry
	// the same tags: a tag's list is its application's only.
	mustCreateMessages(t, s, msgs...)
	theirs := newMessage(other.ID, 15, "a.x")
	theirs.Tags = []string{"five", "three"}
	mustCreateMessages(t, s, theirs)

	// pick returns the IDs of the messages i for which keep is true.
	pick := func(keep func(i int) bool) []string {
		var ids []string
		for i, m := range msgs {
			if keep(i) {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	cases := []struct {
		name string
		opts herald.MessageListOptions
		want []string
	}{
		{"EventTypes", herald.MessageListOptions{EventTypes: []string{"a.x", "b.y"}},
			pick(func(i int) bool { return i%3 != 2 })},
		{"OneEventType", herald.MessageListOptions{EventTypes: []string{"c.z"}},
			pick(func(i int) bool { return i%3 == 2 })},
		{"UnknownEventType", herald.MessageListOptions{EventTypes: []string{"a"}}, nil},
		{"Channel", herald.MessageListOptions{Channel: "even"},
			pick(func(i int) bool { return i%2 == 0 })},
		{"SecondChannel", herald.MessageListOptions{Channel: "four"},
			pick(func(i int) bool { return i%4 == 0 })},
		// A channel matches whole, never as part of another channel's name.
		{"ChannelSubstring", herald.MessageListOptions{Channel: "ven"}, nil},
		// Both bounds are exclusive.
		{"AfterBefore", herald.MessageListOptions{After: at(12), Before: at(19)},
			pick(func(i int) bool { return i > 2 && i < 9 })},
		{"After", herald.MessageListOptions{After: at(20)},
			pick(func(i int) bool { return i > 10 })},
		{"Before", herald.MessageListOptions{Before: at(13)},
			pick(func(i int) bool { return i < 3 })},
		{"Combined", herald.MessageListOptions{EventTypes: []string{"a.x"}, Channel: "even", After: at(10)},
			pick(func(i int) bool { return i%3 == 0 && i%2 == 0 && i > 0 })},
		{"Tag", herald.MessageListOptions{Tag: "three"}, pick(func(i int) bool { return i%3 == 0 })},
		{"SecondTag", herald.MessageListOptions{Tag: "five"}, pick(func(i int) bool { return i%5 == 0 })},
		// A tag matches whole, never as part of another tag.
		{"TagPart", herald.MessageListOptions{Tag: "fiv"}, nil},
		{"UnknownTag", herald.MessageListOptions{Tag: "nope"}, nil},
		{"TagAndTime", herald.MessageListOptions{Tag: "three", After: at(12), Before: at(22)},
			pick(func(i int) bool { return i%3 == 0 && i > 2 && i < 12 })},
		{"TagCombined", herald.MessageListOptions{Tag: "five", EventTypes: []string{"a.x", "b.y"}, Channel: "even"},
			pick(func(i int) bool { return i%5 == 0 && i%3 != 2 && i%2 == 0 })},
	}
	for _, c := range cases {
		for _, o := range orders {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				exp := c.want
				if o.order == herald.Descending {
					exp = reversed(c.want)
				}
				mustWalk(t, "message IDs", exp, func(cursor string) ([]*herald.Message, error) {
					opts := c.opts
					opts.ListOptions = herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order}
					return s.ListMessages(t.Context(), app.ID, opts)
				}, func(m *herald.Message) string { return m.ID })
			})
		}
	}
}

func testMessageExpungeContent(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	msg := newMessage(app.ID, 10, "user.created")
	msg.EventID = "evt"
	msg.Channels = []string{"ch"}
	msg.Tags = []string{"t"}
	raw := newMessage(app.ID, 11, "raw")
	raw.ContentType = "text/plain"
	raw.Payload = []byte("hello")
	kept := newMessage(app.ID, 12, "user.created")
	mustCreateMessages(t, s, msg, raw, kept)

	for _, m := range []*herald.Message{msg, raw} {
		mustOK(t, "expunge "+m.ID, s.ExpungeMessageContent(t.Context(), app.ID, m.ID))
		want := *m
		want.Payload = nil
		got := mustGetMessage(t, s, app.ID, m.ID)
		mustEqual(t, "expunged message", &want, got)
		if got.Payload != nil {
			t.Errorf("expunged payload is %q, want nil", got.Payload)
		}
	}
	mustEqual(t, "other message keeps its payload", kept, mustGetMessage(t, s, app.ID, kept.ID))

	// The deliveries stay: the attempt log remains readable.
	mustEqual(t, "deliveries after expunge", []*herald.Delivery{wantDelivery(msg, ep.ID)},
		mustListDeliveries(t, s, app.ID, msg.ID), ignoreStoreChosen)
	list, err := s.ListMessages(t.Context(), app.ID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 1}})
	mustOK(t, "list", err)
	if len(list) != 1 || list[0].Payload != nil {
		t.Errorf("listed expunged message %+v, want one with a nil payload", list)
	}
}

// testMessageRawPayloadToDispatcher: a raw payload reaches every reader
// the way it was written, whatever its bytes (not JSON, not UTF-8, a NUL,
// CRLF, trailing spaces), with its content type: the dispatcher's claim,
// the message list and the endpoint's message list, beside a JSON message
// whose content type stays "".
func testMessageRawPayloadToDispatcher(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	text := newMessage(f.app.ID, 10, "raw.text")
	text.Payload = []byte("line one\r\n\x00\xff\xfe not UTF-8, not JSON: {  ")
	text.ContentType = "text/plain; charset=iso-8859-1"
	spaced := newMessage(f.app.ID, 11, "raw.json")
	spaced.Payload = []byte("{ \"z\" : 1,\n\t\"a\":[1.50e3, \"\\u00e9\"] }  ")
	spaced.ContentType = "application/json"
	plain := newMessage(f.app.ID, 12, "json")
	mustCreateMessages(t, s, text, spaced, plain)

	check := func(what string, got *herald.Message) {
		t.Helper()
		var want *herald.Message
		for _, m := range []*herald.Message{text, spaced, plain} {
			if m.ID == got.ID {
				want = m
			}
		}
		if want == nil {
			t.Fatalf("%s: unknown message %s", what, got.ID)
		}
		if string(got.Payload) != string(want.Payload) || got.ContentType != want.ContentType {
			t.Errorf("%s %s: payload %q as %q, want %q as %q", what, got.ID, got.Payload, got.ContentType, want.Payload, want.ContentType)
		}
	}
	claims := claim(t, s, nodeA, at(20), 10)
	if len(claims) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(claims))
	}
	for _, c := range claims {
		check("claim", c.Message)
	}
	list, err := s.ListMessages(t.Context(), f.app.ID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "ListMessages", err)
	for _, m := range list {
		check("message list", m)
	}
	sent, err := s.ListEndpointMessages(t.Context(), f.app.ID, ep.ID, herald.DeliveryListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "ListEndpointMessages", err)
	if len(list) != 3 || len(sent) != 3 {
		t.Fatalf("listed %d messages and %d endpoint messages, want 3 each", len(list), len(sent))
	}
	for _, em := range sent {
		check("endpoint message list", em.Message)
	}
}

// tagsOf is the tags of message i of the filter tests: "three" on every
// third, "five" on every fifth, and a tag with each character Svix allows
// besides on the ones with both.
func tagsOf(i int) []string {
	var tags []string
	if i%3 == 0 {
		tags = append(tags, "three")
	}
	if i%5 == 0 {
		tags = append(tags, "five")
	}
	if i%15 == 0 {
		tags = append(tags, `a-z_0.9/\\#`)
	}
	return tags
}

func testMessageTags(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	m := newMessage(app.ID, 10, "user.created")
	m.Tags = []string{"b", "a/b#c"}
	m.EventID = "evt-1"
	plain := newMessage(app.ID, 11, "user.created")
	mustCreateMessages(t, s, m, plain)
	// Stored and returned in the sender's order.
	mustEqual(t, "tagged message", m, mustGetMessage(t, s, app.ID, m.ID))
	mustEqual(t, "untagged message", plain, mustGetMessage(t, s, app.ID, plain.ID))
	listTag := func(tag string) []string {
		t.Helper()
		got, err := s.ListMessages(t.Context(), app.ID, herald.MessageListOptions{Tag: tag, ListOptions: herald.ListOptions{Limit: 10}})
		mustOK(t, "ListMessages tag "+tag, err)
		var ids []string
		for _, g := range got {
			ids = append(ids, g.ID)
			mustEqual(t, "listed by tag", m, g)
		}
		return ids
	}
	mustEqual(t, "tag b", []string{m.ID}, listTag("b"))
	mustEqual(t, "tag a/b#c", []string{m.ID}, listTag("a/b#c"))

	// A message refused for its taken eventId leaves no tag behind.
	dup := newMessage(app.ID, 12, "user.created")
	dup.EventID, dup.Tags = "evt-1", []string{"dup"}
	res, err := s.CreateMessages(t.Context(), []*herald.Message{dup}, herald.Lease{})
	mustOK(t, "CreateMessages", err)
	mustCode(t, "taken eventId", res[0].Err, herald.ECONFLICT)
	mustEqual(t, "tag of the refused message", []string(nil), listTag("dup"))

	// The tags go with their message.
	mustOK(t, "DeleteMessage", s.DeleteMessage(t.Context(), app.ID, m.ID))
	mustEqual(t, "tag b after the delete", []string(nil), listTag("b"))
}

func testMessageScheduled(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	lease := herald.Lease{Owner: nodeA, Until: at(70)}
	later := newMessage(f.app.ID, 10, "user.created")
	later.DeliverAt = at(100).Add(123456789 * time.Nanosecond)
	now := newMessage(f.app.ID, 11, "user.created")
	res, err := s.CreateMessages(t.Context(), []*herald.Message{later, now}, lease)
	mustOK(t, "CreateMessages", err)
	// Stored to the microsecond, like every time.
	due := at(100).Add(123456 * time.Microsecond)
	if !res[0].Message.DeliverAt.Equal(due) {
		t.Fatalf("returned DeliverAt %v, want %v", res[0].Message.DeliverAt, due)
	}
	// Never leased at ingest: the dispatcher gets nothing to start on, the
	// deliveries wait pending and due at DeliverAt.
	for _, d := range res[0].Deliveries {
		if d.Status != herald.DeliveryPending || d.LeaseOwner != "" || !d.NextAttemptAt.Equal(due) {
			t.Fatalf("returned delivery of the scheduled message %+v, want pending due at %v", d, due)
		}
	}
	for _, d := range res[1].Deliveries {
		if d.Status != herald.DeliverySending || d.LeaseOwner != nodeA {
			t.Fatalf("returned delivery of the unscheduled message %+v, want sending under the batch's lease", d)
		}
	}
	got := mustGetMessage(t, s, f.app.ID, later.ID)
	if !got.DeliverAt.Equal(due) {
		t.Fatalf("stored DeliverAt %v, want %v", got.DeliverAt, due)
	}
	if g := mustGetMessage(t, s, f.app.ID, now.ID); !g.DeliverAt.IsZero() {
		t.Fatalf("unscheduled message has DeliverAt %v", g.DeliverAt)
	}
	for _, d := range mustListDeliveries(t, s, f.app.ID, later.ID) {
		if d.Status != herald.DeliveryPending || !d.NextAttemptAt.Equal(due) {
			t.Fatalf("stored delivery %+v, want pending due at %v", d, due)
		}
	}
	em, err := s.ListEndpointMessages(t.Context(), f.app.ID, f.eps[0].ID, herald.DeliveryListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "ListEndpointMessages", err)
	if len(em) != 2 || !em[0].Message.DeliverAt.Equal(due) || !em[0].Delivery.NextAttemptAt.Equal(due) {
		t.Fatalf("endpoint messages %+v, want the scheduled one first, due at %v", em, due)
	}

	// The claim takes only due rows: nothing a microsecond early, both
	// deliveries at the due time.
	if c := claim(t, s, nodeB, due.Add(-time.Microsecond), 10); len(c) != 0 {
		t.Fatalf("claimed %v before the message's DeliverAt", claimedIDs(c))
	}
	// (A claim's message need not carry DeliverAt: sending ignores it.)
	c := claim(t, s, nodeB, due, 10)
	mustEqual(t, "claimed at DeliverAt", []string{later.ID + "/" + f.eps[0].ID, later.ID + "/" + f.eps[1].ID}, claimedIDs(c))

	// Replayed to an endpoint created since, the scheduled message still
	// waits for its time; the other is due at the replay.
	added := mustCreateEndpoint(t, s, newEndpoint(f.app.ID, 50))
	n, err := s.ReplayMissing(t.Context(), f.app.ID, added.ID, at(0), time.Time{}, at(20))
	mustOK(t, "ReplayMissing", err)
	if n != 2 {
		t.Fatalf("replayed %d deliveries, want 2", n)
	}
	for msg, want := range map[*herald.Message]time.Time{later: due, now: at(20)} {
		for _, d := range mustListDeliveries(t, s, f.app.ID, msg.ID) {
			if d.EndpointID == added.ID && !d.NextAttemptAt.Equal(want) {
				t.Fatalf("replayed delivery of %s due at %v, want %v", msg.ID, d.NextAttemptAt, want)
			}
		}
	}
}

func testMessageDelete(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	other := mustCreateApp(t, s, newApp(2))
	m := newMessage(f.app.ID, 10, "user.created")
	m.DeliverAt = at(100)
	m.Tags = []string{"t"}
	kept := newMessage(f.app.ID, 11, "user.created")
	mustCreateMessages(t, s, m, kept)

	mustCode(t, "delete in another app", s.DeleteMessage(t.Context(), other.ID, m.ID), herald.ENOTFOUND)
	mustCode(t, "delete unknown", s.DeleteMessage(t.Context(), f.app.ID, id(herald.PrefixMessage, 12)), herald.ENOTFOUND)
	mustOK(t, "DeleteMessage", s.DeleteMessage(t.Context(), f.app.ID, m.ID))
	_, err := s.GetMessage(t.Context(), f.app.ID, m.ID)
	mustCode(t, "get deleted", err, herald.ENOTFOUND)
	_, err = s.ListMessageDeliveries(t.Context(), f.app.ID, m.ID)
	mustCode(t, "deliveries of deleted", err, herald.ENOTFOUND)
	mustCode(t, "delete twice", s.DeleteMessage(t.Context(), f.app.ID, m.ID), herald.ENOTFOUND)
	// Cancelled: its due time comes and nothing of it is claimed; the other
	// message is untouched.
	mustEqual(t, "claimed after the delete", []string{kept.ID + "/" + f.eps[0].ID}, claimedIDs(claim(t, s, nodeA, at(200), 10)))
	mustEqual(t, "kept message", kept, mustGetMessage(t, s, f.app.ID, kept.ID))
}

// SeedTagged stores an application with five messages, the even ones
// tagged "even", for tests of tags outside the store's verbs (a migration
// that indexes existing tags). It returns the application's ID and the
// tagged messages' IDs, oldest first.
func SeedTagged(t *testing.T, s herald.Store) (appID string, tagged []string) {
	t.Helper()
	app := mustCreateApp(t, s, newApp(1))
	var msgs []*herald.Message
	for i := range 5 {
		m := newMessage(app.ID, 10+i, "a")
		if i%2 == 0 {
			m.Tags = []string{"even", "x"}
			tagged = append(tagged, m.ID)
		}
		msgs = append(msgs, m)
	}
	mustCreateMessages(t, s, msgs...)
	return app.ID, tagged
}

// CheckTagged fails unless the messages of application appID tagged
// "even" are want, oldest first.
func CheckTagged(t *testing.T, s herald.Store, appID string, want []string) {
	t.Helper()
	got, err := s.ListMessages(t.Context(), appID, herald.MessageListOptions{Tag: "even", ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "ListMessages tag even", err)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	mustEqual(t, "messages tagged even", want, ids)
}
