package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// FanOutOpener returns a fresh store whose CreateMessages defers a
// message routed to more than inlineMax endpoints (0: never).
type FanOutOpener func(t *testing.T, inlineMax int) herald.Store

// RunFanOut runs the conformance cases of deferred fan-outs
// (CreateMessages over the threshold, FanOut) against the stores open
// returns.
func RunFanOut(t *testing.T, open FanOutOpener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open FanOutOpener)
	}{
		{"Chunks", testFanOutChunks},
		{"RoutingEquivalence", testFanOutRoutingEquivalence},
		{"ChangesMeanwhile", testFanOutChangesMeanwhile},
		{"ExistingDeliveryKept", testFanOutExistingDeliveryKept},
		{"ConcurrentChunksCreateEachOnce", testFanOutConcurrent},
		{"RetentionWaits", testFanOutRetentionWaits},
		{"MessageDeleted", testFanOutMessageDeleted},
		{"InvalidLimit", testFanOutInvalidLimit},
		{"Scheduled", testFanOutScheduled},
		{"UsageCounted", testFanOutUsageCounted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// fanOutApp creates application n with plain endpoints created at(n+1)
// to at(n+count), and returns it with them in ID order.
func fanOutApp(t *testing.T, s herald.Store, n, count int) (*herald.Application, []*herald.Endpoint) {
	t.Helper()
	app := mustCreateApp(t, s, newApp(n))
	eps := make([]*herald.Endpoint, count)
	for i := range eps {
		eps[i] = mustCreateEndpoint(t, s, newEndpoint(app.ID, n+1+i))
	}
	return app, eps
}

// mustFanOut runs one FanOut call.
func mustFanOut(t *testing.T, s herald.Store, limit int, lease herald.Lease) herald.FanOutChunk {
	t.Helper()
	chunk, err := s.FanOut(t.Context(), limit, lease)
	mustOK(t, "FanOut", err)
	return chunk
}

// drainFanOut runs FanOut until no fan-out waits and returns how many
// deliveries it created.
func drainFanOut(t *testing.T, s herald.Store, limit int, lease herald.Lease) int {
	t.Helper()
	n := 0
	for range 10000 {
		chunk := mustFanOut(t, s, limit, lease)
		if chunk.Message == nil {
			return n
		}
		n += len(chunk.Deliveries)
	}
	t.Fatal("FanOut never ran out of work")
	return n
}

// endpointIDsOf returns the endpoint ID of each delivery, in order.
func endpointIDsOf(ds []*herald.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.EndpointID
	}
	return ids
}

func idsOf(eps []*herald.Endpoint) []string {
	ids := make([]string, len(eps))
	for i, ep := range eps {
		ids[i] = ep.ID
	}
	return ids
}

// testFanOutChunks: a message over the threshold is committed with no
// deliveries and its result says so; one at the threshold is inline; FanOut
// then creates the deferred deliveries limit endpoints at a time, in
// endpoint-ID order, pending and due at the message's creation, and
// finishes with a chunk that says Done.
func testFanOutChunks(t *testing.T, open FanOutOpener) {
	s := open(t, 2)
	app, eps := fanOutApp(t, s, 1, 5)
	small, smallEps := fanOutApp(t, s, 20, 2)
	big := newMessage(app.ID, 100, "user.created")
	inline := newMessage(small.ID, 101, "user.created")
	res := mustCreateMessages(t, s, big, inline)
	if !res[0].FanOut || len(res[0].Deliveries) != 0 {
		t.Fatalf("5 endpoints over a threshold of 2: FanOut %v with %d deliveries, want deferred with none", res[0].FanOut, len(res[0].Deliveries))
	}
	if res[0].Message == nil || res[0].Message.ID != big.ID {
		t.Fatalf("a deferred message's result holds message %v, want %s", res[0].Message, big.ID)
	}
	if res[1].FanOut || len(res[1].Deliveries) != 2 {
		t.Fatalf("2 endpoints at a threshold of 2: FanOut %v with %d deliveries, want 2 inline", res[1].FanOut, len(res[1].Deliveries))
	}
	mustEqual(t, "inline deliveries", idsOf(smallEps), endpointIDsOf(mustListDeliveries(t, s, small.ID, inline.ID)))
	if got := mustListDeliveries(t, s, app.ID, big.ID); len(got) != 0 {
		t.Fatalf("deferred message has %d deliveries before FanOut, want none", len(got))
	}

	var created []*herald.Delivery
	for i, want := range []struct {
		n    int
		done bool
	}{{2, false}, {2, false}, {1, true}} {
		chunk := mustFanOut(t, s, 2, herald.Lease{})
		if chunk.Message == nil || chunk.Message.ID != big.ID {
			t.Fatalf("chunk %d: message %v, want %s", i, chunk.Message, big.ID)
		}
		mustEqual(t, fmt.Sprintf("chunk %d payload", i), string(big.Payload), string(chunk.Message.Payload))
		if len(chunk.Deliveries) != want.n || chunk.Done != want.done {
			t.Fatalf("chunk %d: %d deliveries, done %v; want %d, %v", i, len(chunk.Deliveries), chunk.Done, want.n, want.done)
		}
		created = append(created, chunk.Deliveries...)
		if got := mustListDeliveries(t, s, app.ID, big.ID); len(got) != len(created) {
			t.Fatalf("after chunk %d the message has %d deliveries, want %d", i, len(got), len(created))
		}
	}
	if chunk := mustFanOut(t, s, 2, herald.Lease{}); chunk.Message != nil {
		t.Fatalf("FanOut after the last chunk returned message %s with %d deliveries, want nothing", chunk.Message.ID, len(chunk.Deliveries))
	}
	mustEqual(t, "chunks in endpoint order", idsOf(eps), endpointIDsOf(created))
	stored := mustListDeliveries(t, s, app.ID, big.ID)
	checkDeliveryIDs(t, stored)
	want := make([]*herald.Delivery, len(eps))
	for i, ep := range eps {
		want[i] = wantDelivery(big, ep.ID)
	}
	mustEqual(t, "stored deliveries", want, stored, ignoreStoreChosen)
	mustEqual(t, "returned deliveries are the stored ones", deliveryIDs(stored), deliveryIDs(created))
}

// routingFixture creates, in each of stores, the same application (same
// IDs) whose endpoints cover what routing looks at, and returns its ID.
func routingFixture(t *testing.T, stores ...herald.Store) string {
	t.Helper()
	appID := id(herald.PrefixApplication, 1)
	changes := []func(ep *herald.Endpoint){
		func(*herald.Endpoint) {},
		func(ep *herald.Endpoint) { ep.FilterTypes = []string{"user.created"} },
		func(ep *herald.Endpoint) { ep.FilterTypes = []string{"invoice.paid"} },
		func(ep *herald.Endpoint) { ep.Channels = []string{"eu"} },
		func(ep *herald.Endpoint) { ep.Channels = []string{"asia"} },
		func(ep *herald.Endpoint) { ep.Disabled = true },
		func(ep *herald.Endpoint) { ep.Ordering = herald.OrderingFIFO },
		func(ep *herald.Endpoint) {
			ep.FilterTypes, ep.Channels = []string{"user.created", "user.deleted"}, []string{"us"}
		},
		func(ep *herald.Endpoint) { ep.FilterTypes, ep.Channels = []string{"user.created"}, []string{"asia"} },
		func(*herald.Endpoint) {},
		func(ep *herald.Endpoint) { ep.Disabled, ep.Ordering = true, herald.OrderingFIFO },
		func(ep *herald.Endpoint) { ep.Channels = []string{"us", "eu"} },
	}
	epIDs := make([]string, len(changes))
	for i := range epIDs {
		epIDs[i] = id(herald.PrefixEndpoint, 2+i)
	}
	for _, s := range stores {
		app := newApp(1)
		app.ID = appID
		mustCreateApp(t, s, app)
		for i, change := range changes {
			ep := newEndpoint(appID, 2+i)
			ep.ID = epIDs[i]
			change(ep)
			mustCreateEndpoint(t, s, ep)
		}
	}
	return appID
}

// routingMessages are the messages of the routing cases: event types and
// channels that each endpoint of routingFixture takes or refuses.
func routingMessages(appID string) []*herald.Message {
	a := newMessage(appID, 100, "user.created")
	a.Channels = []string{"eu", "us"}
	b := newMessage(appID, 101, "invoice.paid")
	c := newMessage(appID, 102, "user.deleted")
	c.Channels = []string{"us"}
	d := newMessage(appID, 103, "user.created")
	d.Channels = []string{"asia"}
	return []*herald.Message{a, b, c, d}
}

// testFanOutRoutingEquivalence: a deferred fan-out creates exactly the
// deliveries the inline routing creates (filter types, channels, disabled
// and FIFO endpoints; leased or pending), whatever the chunk boundaries.
func testFanOutRoutingEquivalence(t *testing.T, open FanOutOpener) {
	for _, lease := range []herald.Lease{{}, {Owner: "node-a", Until: at(500).Add(123 * time.Microsecond)}} {
		t.Run(fmt.Sprintf("lease=%q", lease.Owner), func(t *testing.T) {
			inline, deferred := open(t, 0), open(t, 1)
			appID := routingFixture(t, inline, deferred)
			msgs := routingMessages(appID)
			res, err := inline.CreateMessages(t.Context(), msgs, lease)
			mustOK(t, "CreateMessages inline", err)
			for i, r := range res {
				if r.FanOut || r.Err != nil {
					t.Fatalf("inline store: message %d deferred %v, err %v", i, r.FanOut, r.Err)
				}
			}
			// The same messages (IDs, times) again, for the other store.
			again := make([]*herald.Message, len(msgs))
			for i, m := range msgs {
				c := *m
				again[i] = &c
			}
			res, err = deferred.CreateMessages(t.Context(), again, lease)
			mustOK(t, "CreateMessages deferred", err)
			for i, r := range res {
				// Every message reaches at least two endpoints: over 1.
				if !r.FanOut || r.Err != nil || len(r.Deliveries) != 0 {
					t.Fatalf("deferred store: message %d deferred %v with %d deliveries, err %v", i, r.FanOut, len(r.Deliveries), r.Err)
				}
			}
			drainFanOut(t, deferred, 3, lease)
			total := 0
			for _, m := range msgs {
				want := mustListDeliveries(t, inline, appID, m.ID)
				got := mustListDeliveries(t, deferred, appID, m.ID)
				total += len(want)
				mustEqual(t, "deliveries of "+m.EventType+fmt.Sprint(m.Channels), want, got, ignoreStoreChosen)
			}
			if total != 7+4+5+6 {
				t.Fatalf("the fixture routes %d deliveries, want 22: it no longer covers what it should", total)
			}
		})
	}
}

// testFanOutChangesMeanwhile: the deliveries follow the endpoints as the
// chunk finds them, as ingest would route at that moment, except that an
// endpoint created after the message gets nothing: a disabled one is
// skipped, a deleted one is gone, a changed filter applies.
func testFanOutChangesMeanwhile(t *testing.T, open FanOutOpener) {
	s := open(t, 2)
	app, eps := fanOutApp(t, s, 1, 6)
	m := newMessage(app.ID, 100, "user.created")
	mustCreateMessages(t, s, m)
	// The first chunk routes eps[0] and eps[1]; the changes come after it.
	mustFanOut(t, s, 2, herald.Lease{})
	disabled := mustGetEndpoint(t, s, app.ID, eps[2].ID)
	disabled.Disabled, disabled.UpdatedAt = true, at(101)
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), disabled))
	mustOK(t, "DeleteEndpoint", s.DeleteEndpoint(t.Context(), app.ID, eps[3].ID))
	filtered := mustGetEndpoint(t, s, app.ID, eps[4].ID)
	filtered.FilterTypes, filtered.UpdatedAt = []string{"invoice.paid"}, at(101)
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), filtered))
	later := mustCreateEndpoint(t, s, newEndpoint(app.ID, 200))
	drainFanOut(t, s, 2, herald.Lease{})
	got := endpointIDsOf(mustListDeliveries(t, s, app.ID, m.ID))
	mustEqual(t, "endpoints reached", []string{eps[0].ID, eps[1].ID, eps[5].ID}, got)
	for _, id := range got {
		if id == later.ID {
			t.Fatalf("endpoint %s created after the message got a delivery", later.ID)
		}
	}
}

// testFanOutExistingDeliveryKept: a delivery created for the message before
// its chunk (a resend) is kept as it is and not created again, and the
// chunk does not fail on it.
func testFanOutExistingDeliveryKept(t *testing.T, open FanOutOpener) {
	s := open(t, 2)
	app, eps := fanOutApp(t, s, 1, 4)
	m := newMessage(app.ID, 100, "user.created")
	mustCreateMessages(t, s, m)
	mustOK(t, "ResendDelivery", s.ResendDelivery(t.Context(), app.ID, m.ID, eps[1].ID, at(150)))
	if n := drainFanOut(t, s, 3, herald.Lease{}); n != 3 {
		t.Fatalf("FanOut created %d deliveries, want 3 (the resent one exists)", n)
	}
	got := mustListDeliveries(t, s, app.ID, m.ID)
	mustEqual(t, "endpoints reached", idsOf(eps), endpointIDsOf(got))
	if got[1].Trigger != herald.TriggerManual || !got[1].NextAttemptAt.Equal(at(150)) {
		t.Fatalf("the resent delivery became %+v, want it kept (manual, due at the resend)", got[1])
	}
}

// testFanOutConcurrent: callers running FanOut at once (nodes on
// PostgreSQL) create every delivery of every deferred message once.
func testFanOutConcurrent(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, eps := fanOutApp(t, s, 1, 20)
	msgs := []*herald.Message{newMessage(app.ID, 100, "a"), newMessage(app.ID, 101, "b"), newMessage(app.ID, 102, "c")}
	mustCreateMessages(t, s, msgs...)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = make(map[string]int)
		errs    []error
	)
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				chunk, err := s.FanOut(t.Context(), 3, herald.Lease{})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, d := range chunk.Deliveries {
					created[d.MessageID+"/"+d.EndpointID]++
				}
				mu.Unlock()
				if err != nil || chunk.Message == nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent FanOut: %v", errs)
	}
	for _, m := range msgs {
		for _, ep := range eps {
			if n := created[m.ID+"/"+ep.ID]; n != 1 {
				t.Errorf("%s/%s created %d times, want once", m.ID, ep.ID, n)
			}
		}
		if got := mustListDeliveries(t, s, app.ID, m.ID); len(got) != len(eps) {
			t.Errorf("message %s has %d deliveries, want %d", m.ID, len(got), len(eps))
		}
	}
}

// testFanOutRetentionWaits: retention keeps a message, and its payload,
// while its fan-out has deliveries to create.
func testFanOutRetentionWaits(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, _ := fanOutApp(t, s, 1, 3)
	m := newMessage(app.ID, 100, "user.created")
	m.PayloadExpiresAt = at(101)
	mustCreateMessages(t, s, m)
	n, err := s.ExpirePayloads(t.Context(), at(1000), 100)
	mustOK(t, "ExpirePayloads", err)
	deleted, err := s.DeleteExpiredMessages(t.Context(), at(1000), 100)
	mustOK(t, "DeleteExpiredMessages", err)
	if n != 0 || deleted != 0 {
		t.Fatalf("retention dropped %d payloads and %d messages of a fan-out still to create deliveries", n, deleted)
	}
	mustEqual(t, "payload", string(m.Payload), string(mustGetMessage(t, s, app.ID, m.ID).Payload))
	if n := drainFanOut(t, s, 10, herald.Lease{}); n != 3 {
		t.Fatalf("FanOut created %d deliveries, want 3", n)
	}
}

// testFanOutMessageDeleted: the marker goes with its message (here with
// its application), and FanOut finds nothing to do.
func testFanOutMessageDeleted(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, _ := fanOutApp(t, s, 1, 3)
	mustCreateMessages(t, s, newMessage(app.ID, 100, "user.created"))
	mustOK(t, "DeleteApplication", s.DeleteApplication(t.Context(), app.ID))
	if chunk := mustFanOut(t, s, 10, herald.Lease{}); chunk.Message != nil {
		t.Fatalf("FanOut after the application was deleted returned message %s", chunk.Message.ID)
	}
}

// testFanOutScheduled: a deferred fan-out of a scheduled message creates
// its deliveries pending and due at the message's DeliverAt, never leased,
// even when the chunk is written under a lease; and deleting the message
// before its fan-out is done cancels the rest (the marker goes with it).
func testFanOutScheduled(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, eps := fanOutApp(t, s, 1, 3)
	m := newMessage(app.ID, 100, "user.created")
	m.DeliverAt = at(100).Add(time.Hour)
	res := mustCreateMessages(t, s, m)
	if !res[0].FanOut {
		t.Fatal("3 endpoints over a threshold of 1: not deferred")
	}
	lease := herald.Lease{Owner: "node-a", Until: at(100).Add(time.Minute)}
	chunk := mustFanOut(t, s, 2, lease)
	for _, d := range chunk.Deliveries {
		if d.Status != herald.DeliveryPending || d.LeaseOwner != "" {
			t.Fatalf("a scheduled message's delivery came out %s leased to %q, want pending and not leased", d.Status, d.LeaseOwner)
		}
	}
	mustEqual(t, "first chunk", idsOf(eps[:2]), endpointIDsOf(chunk.Deliveries))
	stored := mustListDeliveries(t, s, app.ID, m.ID)
	want := []*herald.Delivery{wantDelivery(m, eps[0].ID), wantDelivery(m, eps[1].ID)}
	for _, d := range want {
		d.NextAttemptAt = m.DeliverAt.Truncate(time.Microsecond)
	}
	mustEqual(t, "stored deliveries of the scheduled message", want, stored, ignoreStoreChosen)

	mustOK(t, "DeleteMessage", s.DeleteMessage(t.Context(), app.ID, m.ID))
	if chunk := mustFanOut(t, s, 2, lease); chunk.Message != nil {
		t.Fatalf("FanOut after the message was deleted returned message %s with %d deliveries", chunk.Message.ID, len(chunk.Deliveries))
	}
}

func testFanOutInvalidLimit(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, _ := fanOutApp(t, s, 1, 3)
	mustCreateMessages(t, s, newMessage(app.ID, 100, "user.created"))
	_, err := s.FanOut(t.Context(), 0, herald.Lease{})
	mustCode(t, "FanOut with limit 0", err, herald.EINVALID)
	if n := drainFanOut(t, s, 10, herald.Lease{}); n != 3 {
		t.Fatalf("FanOut after the refused call created %d deliveries, want 3", n)
	}
}

// RunFanOutRestart checks that a fan-out left between two chunks by a
// store that was closed (what a crash leaves: the committed chunks and
// the marker with its cursor) is continued by the store second opens on
// the same database (the restarted process on SQLite, any other node on
// PostgreSQL), and that every endpoint gets one delivery. first's store
// defers fan-outs over 2 endpoints; second's may keep them inline.
func RunFanOutRestart(t *testing.T, first, second func(t *testing.T) herald.Store) {
	s := first(t)
	app, eps := fanOutApp(t, s, 1, 7)
	m := newMessage(app.ID, 100, "user.created")
	if res := mustCreateMessages(t, s, m); !res[0].FanOut {
		t.Fatal("the first store did not defer a fan-out to 7 endpoints")
	}
	if chunk := mustFanOut(t, s, 3, herald.Lease{}); len(chunk.Deliveries) != 3 || chunk.Done {
		t.Fatalf("first chunk: %d deliveries, done %v; want 3, not done", len(chunk.Deliveries), chunk.Done)
	}
	mustOK(t, "Close", s.Close())

	s = second(t)
	if n := drainFanOut(t, s, 3, herald.Lease{}); n != 4 {
		t.Fatalf("after the restart FanOut created %d deliveries, want the 4 left", n)
	}
	got := mustListDeliveries(t, s, app.ID, m.ID)
	checkDeliveryIDs(t, got)
	mustEqual(t, "endpoints reached once each", idsOf(eps), endpointIDsOf(got))
}

// testFanOutUsageCounted: a deferred fan-out's message counts in the usage
// counters when it is stored, and its deliveries as each chunk creates
// them, in the hour of the message's creation.
func testFanOutUsageCounted(t *testing.T, open FanOutOpener) {
	s := open(t, 1)
	app, eps := fanOutApp(t, s, 1, 5)
	// After the endpoints' creation (at(2)…), so that they route.
	msgs := []*herald.Message{stamped(app.ID, hourAt(1, 100), "a.b"), stamped(app.ID, hourAt(2, 100), "a.b")}
	for i, r := range mustCreateMessages(t, s, msgs...) {
		if !r.FanOut {
			t.Fatalf("message %d was not deferred", i)
		}
	}
	f := herald.TaskFilter{Since: hourAt(1, 0), Until: hourAt(3, 0)}
	mustEqual(t, "usage before the fan-out", []herald.AppUsage{usageOf(app, 2, 0)}, runStats(t, s, f, 10))
	mustFanOut(t, s, 2, herald.Lease{})
	mustEqual(t, "usage after one chunk", []herald.AppUsage{usageOf(app, 2, 2)}, runStats(t, s, f, 10))
	if n := drainFanOut(t, s, 2, herald.Lease{}); n != 2*len(eps)-2 {
		t.Fatalf("fan-out created %d deliveries, want %d", n, 2*len(eps)-2)
	}
	mustEqual(t, "usage after the fan-out", []herald.AppUsage{usageOf(app, 2, int64(2*len(eps)))}, runStats(t, s, f, 10))
	f.Until = hourAt(2, 0)
	mustEqual(t, "usage of the first hour", []herald.AppUsage{usageOf(app, 1, int64(len(eps)))}, runStats(t, s, f, 10))
}
