package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var pollTests = []namedTest{
	{"NoDeliveries", testPollNoDeliveries},
	{"CommitOrder", testPollCommitOrder},
	{"Filter", testPollFilter},
	{"Window", testPollWindow},
	{"Start", testPollStart},
	{"Consumer", testPollConsumer},
	{"ConcurrentWriters", testPollConcurrentWriters},
}

// newPoller returns a polling endpoint of appID created at(n).
func newPoller(appID string, n int) *herald.Endpoint {
	ep := newEndpoint(appID, n)
	ep.URL = herald.PollerURL
	return ep
}

// pollWalk polls application appID from from in pages of limit until it
// has read want messages (or, with want < 0, until a page says Done), and
// returns their IDs in order and the position after them. On PostgreSQL a
// message becomes readable once every transaction older than its own has
// ended, other tests' included: an empty, done page while messages are
// missing is polled again, a few milliseconds later.
func pollWalk(t *testing.T, s herald.Store, appID string, from herald.PollPosition, f herald.PollFilter, limit, want int) ([]string, herald.PollPosition) {
	t.Helper()
	var got []string
	for range 100_000 {
		page, err := s.PollMessages(t.Context(), appID, herald.PollOptions{From: from, Limit: limit, Filter: f})
		mustOK(t, "PollMessages", err)
		if len(page.Messages) > limit {
			t.Fatalf("page of %d messages, limit %d", len(page.Messages), limit)
		}
		for _, m := range page.Messages {
			if m.AppID != appID || len(m.Payload) == 0 {
				t.Fatalf("polled message %s of app %q with payload %q", m.ID, m.AppID, m.Payload)
			}
			got = append(got, m.ID)
		}
		from = page.Next
		if want < 0 && page.Done {
			return got, from
		}
		if want >= 0 && len(got) >= want {
			return got, from
		}
		if page.Done {
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatalf("polling did not end; got %v", got)
	return nil, from
}

// messageIDs returns the IDs of msgs.
func messageIDs(msgs ...*herald.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// testPollNoDeliveries: a polling endpoint gets no delivery, not from
// ingest, a fan-out, send-example's OnlyEndpointID nor replay-missing,
// while an HTTP endpoint beside it gets them all.
func testPollNoDeliveries(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	web := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	poller := mustCreateEndpoint(t, s, newPoller(app.ID, 3))
	if got := mustGetEndpoint(t, s, app.ID, poller.ID); !got.IsPoller() || got.URL != herald.PollerURL {
		t.Fatalf("stored poller: URL %q, IsPoller %v", got.URL, got.IsPoller())
	}
	m := newMessage(app.ID, 10, "user.created")
	example := newMessage(app.ID, 11, "user.created")
	example.OnlyEndpointID = poller.ID
	res := mustCreateMessages(t, s, m, example)
	mustEqual(t, "deliveries of the message", []string{web.ID}, endpointIDs(res[0].Deliveries))
	if res[1].Err != nil || len(res[1].Deliveries) != 0 {
		t.Fatalf("send-example to the poller: err %v, %d deliveries", res[1].Err, len(res[1].Deliveries))
	}
	n, err := s.ReplayMissing(t.Context(), app.ID, poller.ID, at(0), time.Time{}, at(20))
	mustOK(t, "ReplayMissing", err)
	if n != 0 {
		t.Fatalf("ReplayMissing to the poller queued %d deliveries", n)
	}
	claims := claim(t, s, nodeA, at(30), 10)
	for _, c := range claims {
		if c.Delivery.EndpointID == poller.ID {
			t.Fatalf("claimed a delivery to the poller: %+v", c.Delivery)
		}
	}
	if len(claims) != 1 {
		t.Fatalf("claimed %d deliveries, want the HTTP endpoint's one", len(claims))
	}
}

// endpointIDs returns the endpoint IDs of ds.
func endpointIDs(ds []*herald.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.EndpointID
	}
	return out
}

// testPollCommitOrder: messages come in the order their batches
// committed, not in ID or creation order; pages resume exactly; an empty
// page keeps the position; a message deleted at the end of the order does
// not make a later one land behind a position already handed out.
func testPollCommitOrder(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	batches := [][]*herald.Message{
		{newMessage(app.ID, 15, "a")},
		{newMessage(app.ID, 12, "a"), newMessage(app.ID, 13, "a")},
		{newMessage(other.ID, 9, "a"), newMessage(app.ID, 10, "a")},
		{newMessage(app.ID, 14, "a")},
	}
	var want []string
	for _, b := range batches {
		mustCreateMessages(t, s, b...)
		for _, m := range b {
			if m.AppID == app.ID {
				want = append(want, m.ID)
			}
		}
	}
	got, end := pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 2, len(want))
	mustEqual(t, "poll order", want, got)

	// Resuming from the middle gives the rest.
	first, mid := pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 2, 2)
	mustEqual(t, "first page", want[:2], first)
	rest, _ := pollWalk(t, s, app.ID, mid, herald.PollFilter{}, 2, len(want)-2)
	mustEqual(t, "resumed", want[2:], rest)

	// Nothing new: an empty page, done, at the same position.
	page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{From: end, Limit: 10})
	mustOK(t, "PollMessages at the end", err)
	if len(page.Messages) != 0 || page.Next != end || !page.Done {
		t.Fatalf("poll at the end: %d messages, next %v (from %v), done %v", len(page.Messages), page.Next, end, page.Done)
	}

	// The last message is deleted; the next ones still come after end.
	mustOK(t, "DeleteMessage", s.DeleteMessage(t.Context(), app.ID, batches[3][0].ID))
	later := []*herald.Message{newMessage(app.ID, 16, "a"), newMessage(app.ID, 11, "a")}
	mustCreateMessages(t, s, later[0])
	mustCreateMessages(t, s, later[1])
	got, _ = pollWalk(t, s, app.ID, end, herald.PollFilter{}, 10, 2)
	mustEqual(t, "after a deleted last message", messageIDs(later...), got)
}

// testPollFilter: the polling endpoint's filter types and channels, and
// the request's event type, channel and time, keep what Endpoint.Accepts
// would (and narrower); the position moves past what they drop.
func testPollFilter(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	var msgs []*herald.Message
	for i, spec := range []struct {
		typ      string
		channels []string
	}{
		{"a", nil}, {"b", nil}, {"a", []string{"x"}}, {"a", []string{"y"}}, {"b", []string{"x", "y"}}, {"a", []string{"x", "z"}},
	} {
		m := newMessage(app.ID, 10+i, spec.typ)
		m.Channels = spec.channels
		msgs = append(msgs, m)
	}
	mustCreateMessages(t, s, msgs...)
	ids := messageIDs(msgs...)
	// Wait until all are readable (PostgreSQL): a filtered walk ends at
	// its first done page.
	pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 10, len(msgs))
	for _, tc := range []struct {
		name   string
		filter herald.PollFilter
		want   []string
	}{
		{"none", herald.PollFilter{}, ids},
		{"filter types", herald.PollFilter{FilterTypes: []string{"a"}}, []string{ids[0], ids[2], ids[3], ids[5]}},
		{"channels", herald.PollFilter{Channels: []string{"x"}}, []string{ids[2], ids[4], ids[5]}},
		{"types and channels", herald.PollFilter{FilterTypes: []string{"b"}, Channels: []string{"y"}}, []string{ids[4]}},
		{"event type", herald.PollFilter{EventType: "b"}, []string{ids[1], ids[4]}},
		{"channel", herald.PollFilter{Channel: "z"}, []string{ids[5]}},
		{"channel within channels", herald.PollFilter{Channels: []string{"y"}, Channel: "x"}, []string{ids[4]}},
		{"after", herald.PollFilter{After: at(13)}, ids[4:]},
		{"nothing", herald.PollFilter{EventType: "c"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, end := pollWalk(t, s, app.ID, herald.PollPosition{}, tc.filter, 2, -1)
			mustEqual(t, "kept", tc.want, got)
			// The walk ends past every row, kept or not.
			page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{From: end, Limit: 10})
			mustOK(t, "PollMessages after the walk", err)
			if len(page.Messages) != 0 {
				t.Fatalf("after the walk, %d messages remain", len(page.Messages))
			}
		})
	}
}

// testPollWindow: a page reads at most Window rows, kept or not, and says
// it is not done when it stopped there.
func testPollWindow(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	msgs := []*herald.Message{newMessage(app.ID, 10, "b"), newMessage(app.ID, 11, "b"), newMessage(app.ID, 12, "a")}
	mustCreateMessages(t, s, msgs...)
	f := herald.PollFilter{FilterTypes: []string{"a"}}
	// Wait until all three are readable (PostgreSQL), then page by two rows.
	pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 10, 3)
	page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{Limit: 10, Window: 2, Filter: f})
	mustOK(t, "PollMessages window 2", err)
	if len(page.Messages) != 0 || page.Done || page.Next.MessageID != msgs[1].ID {
		t.Fatalf("first window: %d messages, done %v, next %v; want none, not done, after %s", len(page.Messages), page.Done, page.Next, msgs[1].ID)
	}
	page, err = s.PollMessages(t.Context(), app.ID, herald.PollOptions{From: page.Next, Limit: 10, Window: 2, Filter: f})
	mustOK(t, "PollMessages second window", err)
	mustEqual(t, "second window", []string{msgs[2].ID}, messageIDs(page.Messages...))
	if !page.Done {
		t.Fatal("second window read one row of two and is not done")
	}
	// A full page stops at its last message, not done.
	page, err = s.PollMessages(t.Context(), app.ID, herald.PollOptions{Limit: 1})
	mustOK(t, "PollMessages limit 1", err)
	if len(page.Messages) != 1 || page.Done || page.Next.MessageID != msgs[0].ID {
		t.Fatalf("limit 1: %d messages, done %v, next %v", len(page.Messages), page.Done, page.Next)
	}
}

// testPollStart: the position at a time comes before every message
// created then or later; the zero time's comes before every later message.
// Neither skips one; on PostgreSQL either may also let earlier ones
// through (never on SQLite here: its writer orders everything).
func testPollStart(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	early := []*herald.Message{newMessage(app.ID, 10, "a"), newMessage(app.ID, 11, "a")}
	mustCreateMessages(t, s, early[0])
	mustCreateMessages(t, s, early[1])
	pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 10, 2)
	head, err := s.PollStart(t.Context(), app.ID, time.Time{})
	mustOK(t, "PollStart now", err)
	fromT, err := s.PollStart(t.Context(), app.ID, at(11))
	mustOK(t, "PollStart at(11)", err)
	future, err := s.PollStart(t.Context(), app.ID, at(50))
	mustOK(t, "PollStart at(50)", err)
	late := []*herald.Message{newMessage(app.ID, 12, "a"), newMessage(app.ID, 13, "a")}
	mustCreateMessages(t, s, late[0])
	mustCreateMessages(t, s, late[1])

	check := func(name string, from herald.PollPosition, want, mayAlso []string) {
		t.Helper()
		var got []string
		for try := 0; ; try++ {
			got, _ = pollWalk(t, s, app.ID, from, herald.PollFilter{}, 10, -1)
			if len(got) >= len(want) && slices.Equal(got[len(got)-len(want):], want) {
				break
			}
			if try == 2000 {
				t.Fatalf("%s: polled %v, want %v at the end", name, got, want)
			}
			time.Sleep(5 * time.Millisecond) // PostgreSQL: an older transaction still open
		}
		for _, id := range got[:len(got)-len(want)] {
			if !slices.Contains(mayAlso, id) {
				t.Fatalf("%s: polled %v, want %v (earlier %v allowed before it)", name, got, want, mayAlso)
			}
		}
	}
	check("head", head, messageIDs(late...), messageIDs(early...))
	check("at(11)", fromT, messageIDs(early[1], late[0], late[1]), messageIDs(early[0]))
	check("at(50)", future, messageIDs(late...), messageIDs(early...))
}

// testPollConsumer: consumers' positions are stored per endpoint,
// replaced, refused for an endpoint not of the application, and deleted
// with their endpoint.
func testPollConsumer(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	ep := mustCreateEndpoint(t, s, newPoller(app.ID, 3))
	ep2 := mustCreateEndpoint(t, s, newPoller(app.ID, 4))
	_, err := s.GetPollConsumer(t.Context(), ep.ID, "c1")
	mustCode(t, "GetPollConsumer before any", err, herald.ENOTFOUND)

	c := &herald.PollConsumer{AppID: app.ID, EndpointID: ep.ID, ConsumerID: "c1", Position: herald.PollPosition{Seq: 7, MessageID: id(herald.PrefixMessage, 9)}, UpdatedAt: at(20)}
	mustOK(t, "SetPollConsumer", s.SetPollConsumer(t.Context(), c))
	got, err := s.GetPollConsumer(t.Context(), ep.ID, "c1")
	mustOK(t, "GetPollConsumer", err)
	mustEqual(t, "consumer", c, got)
	c.Position, c.UpdatedAt = herald.PollPosition{Seq: 3}, at(21)
	mustOK(t, "SetPollConsumer again", s.SetPollConsumer(t.Context(), c))
	got, err = s.GetPollConsumer(t.Context(), ep.ID, "c1")
	mustOK(t, "GetPollConsumer again", err)
	mustEqual(t, "consumer moved back", c, got)
	// Same consumer ID on another endpoint: another consumer.
	_, err = s.GetPollConsumer(t.Context(), ep2.ID, "c1")
	mustCode(t, "GetPollConsumer other endpoint", err, herald.ENOTFOUND)

	mustCode(t, "SetPollConsumer unknown endpoint", s.SetPollConsumer(t.Context(),
		&herald.PollConsumer{AppID: app.ID, EndpointID: id(herald.PrefixEndpoint, 5), ConsumerID: "c1", UpdatedAt: at(22)}), herald.ENOTFOUND)
	mustCode(t, "SetPollConsumer endpoint of another app", s.SetPollConsumer(t.Context(),
		&herald.PollConsumer{AppID: other.ID, EndpointID: ep.ID, ConsumerID: "c2", UpdatedAt: at(22)}), herald.ENOTFOUND)
	_, err = s.GetPollConsumer(t.Context(), ep.ID, "c2")
	mustCode(t, "GetPollConsumer after refused set", err, herald.ENOTFOUND)

	mustOK(t, "DeleteEndpoint", s.DeleteEndpoint(t.Context(), app.ID, ep.ID))
	_, err = s.GetPollConsumer(t.Context(), ep.ID, "c1")
	mustCode(t, "GetPollConsumer after the endpoint's delete", err, herald.ENOTFOUND)
}

// testPollConcurrentWriters: writers commit batches at once while a reader
// polls; the reader gets every message exactly once, and each writer's
// messages in the order that writer committed them. On PostgreSQL the
// writers' message IDs (times) and transaction IDs interleave with commit
// order: a reader paging by ID alone would skip some.
func testPollConcurrentWriters(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	const writers, batches = 6, 20
	var wg sync.WaitGroup
	written := make([][]string, writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var msgs []*herald.Message
				for k := range 1 + b%3 {
					m := newMessage(app.ID, 10+b, "a")
					m.ID = herald.NewID(herald.PrefixMessage)
					m.Payload = fmt.Appendf(nil, `{"w":%d,"b":%d,"k":%d}`, w, b, k)
					msgs = append(msgs, m)
				}
				res, err := s.CreateMessages(t.Context(), msgs, herald.Lease{})
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				written[w] = append(written[w], messageIDs(msgs...)...)
			}
		}()
	}
	total := 0
	for b := range batches {
		total += writers * (1 + b%3)
	}
	got, _ := pollWalk(t, s, app.ID, herald.PollPosition{}, herald.PollFilter{}, 7, total)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	seen := make(map[string]int, len(got))
	for i, id := range got {
		if j, dup := seen[id]; dup {
			t.Fatalf("message %s polled twice (at %d and %d)", id, j, i)
		}
		seen[id] = i
	}
	for w, ids := range written {
		for i, id := range ids {
			pos, ok := seen[id]
			if !ok {
				t.Fatalf("writer %d's message %s never polled", w, id)
			}
			// A batch's messages share a commit; batches of one writer
			// commit in turn, so a later batch comes later.
			if i > 0 && pos < seen[ids[i-1]] && !sameBatch(ids, i-1, i, batches) {
				t.Fatalf("writer %d's message %s polled before its earlier %s", w, id, ids[i-1])
			}
		}
	}
	if len(got) != total {
		t.Fatalf("polled %d messages, %d written", len(got), total)
	}
}

// sameBatch reports whether the messages at i and j of one writer's list
// were written in the same batch (batch b holds 1 + b%3 messages).
func sameBatch(ids []string, i, j, batches int) bool {
	start := 0
	for b := range batches {
		n := 1 + b%3
		if i >= start && i < start+n {
			return j >= start && j < start+n
		}
		start += n
	}
	return false
}
