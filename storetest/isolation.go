package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// Endpoint isolation: FIFO ordering, failure tracking, auto-disable and the
// operational events that report them.
var isolationTests = []namedTest{
	{"OrderingRoundTrip", testIsolationOrderingRoundTrip},
	{"FIFOCreateStaysPending", testIsolationFIFOCreateStaysPending},
	{"FIFOClaimsHeadOnly", testIsolationFIFOClaimsHeadOnly},
	{"FIFOHeadBlocksWhileRetrying", testIsolationFIFOHeadBlocks},
	{"FIFONothingWhileSending", testIsolationFIFONothingWhileSending},
	{"FIFOSkipEndpoints", testIsolationFIFOSkipEndpoints},
	{"FIFOOldestHeadsFirst", testIsolationFIFOOldestHeadsFirst},
	{"FailingSince", testIsolationFailingSince},
	{"AutoDisable", testIsolationAutoDisable},
	{"GoneAfterFailureInOneBatch", testIsolationGoneAfterFailureInOneBatch},
	{"EnableClearsFailingSince", testIsolationEnableClearsFailingSince},
	{"UpdateKeepsAutoDisable", testIsolationUpdateKeepsAutoDisable},
	{"OperationalEvents", testIsolationOperationalEvents},
	{"OperationalEventsOff", testIsolationOperationalEventsOff},
	{"OperationalRouting", testIsolationOperationalRouting},
}

// mustFIFOFixture creates an application (at(1)) with a FIFO endpoint
// (at(2)) and an ordinary one (at(3)).
func mustFIFOFixture(t *testing.T, s herald.Store) (app *herald.Application, fifo, plain *herald.Endpoint) {
	t.Helper()
	app = mustCreateApp(t, s, newApp(1))
	fifo = newEndpoint(app.ID, 2)
	fifo.Ordering = herald.OrderingFIFO
	mustCreateEndpoint(t, s, fifo)
	plain = mustCreateEndpoint(t, s, newEndpoint(app.ID, 3))
	return app, fifo, plain
}

// messagesAt creates one message per n in ns (created at(n)) in one batch.
func messagesAt(t *testing.T, s herald.Store, appID string, ns ...int) []*herald.Message {
	t.Helper()
	msgs := make([]*herald.Message, len(ns))
	for i, n := range ns {
		msgs[i] = newMessage(appID, n, "user.created")
	}
	mustCreateMessages(t, s, msgs...)
	return msgs
}

// succeed records a successful attempt at(n) of each claim.
func succeed(t *testing.T, s herald.Store, n int, claims ...herald.Claim) {
	t.Helper()
	for i, c := range claims {
		mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: c.Delivery.LeaseOwner,
			Status: herald.DeliverySucceeded, Attempt: newAttempt(c, n+i, herald.AttemptSucceeded, 200)})
	}
}

// fail records a failed attempt at(n) of c with the given next state.
func fail(t *testing.T, s herald.Store, n int, c herald.Claim, status herald.DeliveryStatus, next time.Time, disableAfter time.Duration) {
	t.Helper()
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: c.Delivery.LeaseOwner,
		Status: status, NextAttemptAt: next, DisableAfter: disableAfter,
		Attempt: newAttempt(c, n, herald.AttemptFailed, 503)})
}

// onlyTo keeps the claims of endpoint epID.
func onlyTo(claims []herald.Claim, epID string) []herald.Claim {
	return slices.DeleteFunc(slices.Clone(claims), func(c herald.Claim) bool { return c.Delivery.EndpointID != epID })
}

func testIsolationOrderingRoundTrip(t *testing.T, s herald.Store) {
	app, fifo, plain := mustFIFOFixture(t, s)
	if got := mustGetEndpoint(t, s, app.ID, fifo.ID); got.Ordering != herald.OrderingFIFO {
		t.Fatalf("created FIFO endpoint reads back with ordering %q", got.Ordering)
	}
	if got := mustGetEndpoint(t, s, app.ID, plain.ID); got.Ordering != herald.OrderingNone {
		t.Fatalf("created ordinary endpoint reads back with ordering %q", got.Ordering)
	}
	plain.Ordering, plain.UpdatedAt = herald.OrderingFIFO, at(20)
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), plain))
	fifo.Ordering, fifo.UpdatedAt = herald.OrderingNone, at(20)
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), fifo))
	mustEqual(t, "updated endpoint", plain, mustGetEndpoint(t, s, app.ID, plain.ID))
	mustEqual(t, "updated endpoint", fifo, mustGetEndpoint(t, s, app.ID, fifo.ID))
}

func testIsolationFIFOCreateStaysPending(t *testing.T, s herald.Store) {
	app, fifo, plain := mustFIFOFixture(t, s)
	m := newMessage(app.ID, 10, "user.created")
	res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{Owner: nodeA, Until: at(100)})
	mustOK(t, "CreateMessages", err)
	got := map[string]herald.DeliveryStatus{}
	for _, d := range res[0].Deliveries {
		got[d.EndpointID] = d.Status
	}
	// A FIFO delivery handed to a dispatcher at ingest would skip the
	// ordering: it waits for ClaimDue like any other.
	want := map[string]herald.DeliveryStatus{fifo.ID: herald.DeliveryPending, plain.ID: herald.DeliverySending}
	mustEqual(t, "returned delivery states", want, got)
	for _, d := range mustListDeliveries(t, s, app.ID, m.ID) {
		got[d.EndpointID] = d.Status
	}
	mustEqual(t, "stored delivery states", want, got)
}

func testIsolationFIFOClaimsHeadOnly(t *testing.T, s herald.Store) {
	app, fifo, plain := mustFIFOFixture(t, s)
	msgs := messagesAt(t, s, app.ID, 12, 10, 11) // created out of ID order in one batch
	claims := claim(t, s, nodeA, at(20), 100)
	mustEqual(t, "ordinary endpoint's claims", []string{pair(msgs[1], plain), pair(msgs[2], plain), pair(msgs[0], plain)},
		claimedIDs(onlyTo(claims, plain.ID)))
	heads := onlyTo(claims, fifo.ID)
	mustEqual(t, "FIFO claims", []string{pair(msgs[1], fifo)}, claimedIDs(heads))
	// Nothing more while the head is out, even for another owner.
	if c := claim(t, s, nodeB, at(20), 100); len(c) != 0 {
		t.Fatalf("claimed %v while the FIFO head was being sent", claimedIDs(c))
	}
	// Each success lets exactly the next one go, in message ID order.
	for i, next := range []*herald.Message{msgs[2], msgs[0]} {
		succeed(t, s, 30+i, heads...)
		heads = claim(t, s, nodeB, at(40), 100)
		mustEqual(t, "next FIFO claim", []string{pair(next, fifo)}, claimedIDs(heads))
	}
	succeed(t, s, 50, heads...)
	if c := claim(t, s, nodeA, at(60), 100); len(c) != 0 {
		t.Fatalf("claimed %v after every delivery finished", claimedIDs(c))
	}
}

func testIsolationFIFOHeadBlocks(t *testing.T, s herald.Store) {
	app, fifo, _ := mustFIFOFixture(t, s)
	msgs := messagesAt(t, s, app.ID, 10, 11)
	head := onlyTo(claim(t, s, nodeA, at(20), 100), fifo.ID)
	mustEqual(t, "head", []string{pair(msgs[0], fifo)}, claimedIDs(head))
	fail(t, s, 21, head[0], herald.DeliveryPending, at(100), 0)
	// The head waits for its retry; the next message waits behind it.
	if c := onlyTo(claim(t, s, nodeA, at(99), 100), fifo.ID); len(c) != 0 {
		t.Fatalf("claimed %v while the FIFO head waited for its retry", claimedIDs(c))
	}
	retry := onlyTo(claim(t, s, nodeA, at(100), 100), fifo.ID)
	mustEqual(t, "retried head", []string{pair(msgs[0], fifo)}, claimedIDs(retry))
	// Failed for good: the next one may go.
	fail(t, s, 101, retry[0], herald.DeliveryFailed, time.Time{}, 0)
	next := onlyTo(claim(t, s, nodeA, at(102), 100), fifo.ID)
	mustEqual(t, "after the head failed for good", []string{pair(msgs[1], fifo)}, claimedIDs(next))
}

func testIsolationFIFONothingWhileSending(t *testing.T, s herald.Store) {
	app, fifo, _ := mustFIFOFixture(t, s)
	msgs := messagesAt(t, s, app.ID, 10, 11)
	first := onlyTo(claim(t, s, nodeA, at(20), 100), fifo.ID)
	succeed(t, s, 21, first...)
	second := onlyTo(claim(t, s, nodeA, at(22), 100), fifo.ID)
	mustEqual(t, "second", []string{pair(msgs[1], fifo)}, claimedIDs(second))
	// A resend of the earlier message while the later one is out becomes
	// the head, but is not claimed until nothing is being sent: one
	// delivery of a FIFO endpoint in flight at most.
	mustOK(t, "ResendDelivery", s.ResendDelivery(t.Context(), app.ID, msgs[0].ID, fifo.ID, at(23)))
	if c := onlyTo(claim(t, s, nodeB, at(24), 100), fifo.ID); len(c) != 0 {
		t.Fatalf("claimed %v while another delivery of the FIFO endpoint was being sent", claimedIDs(c))
	}
	succeed(t, s, 25, second...)
	resent := onlyTo(claim(t, s, nodeB, at(26), 100), fifo.ID)
	mustEqual(t, "resent head", []string{pair(msgs[0], fifo)}, claimedIDs(resent))
}

func testIsolationFIFOSkipEndpoints(t *testing.T, s herald.Store) {
	app, fifo, plain := mustFIFOFixture(t, s)
	messagesAt(t, s, app.ID, 10)
	got := claim(t, s, nodeA, at(20), 100, fifo.ID)
	mustEqual(t, "claims skipping the FIFO endpoint", []string{plain.ID}, endpointsOf(got))
	got = claim(t, s, nodeA, at(20), 100)
	mustEqual(t, "claims", []string{fifo.ID}, endpointsOf(got))
}

// With more FIFO endpoints due than the claim's limit, the oldest heads go
// first, whatever the endpoints' IDs, and repeated claims reach every one.
func testIsolationFIFOOldestHeadsFirst(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	const n = 5
	eps := make([]*herald.Endpoint, n)
	for i := range eps {
		eps[i] = newEndpoint(app.ID, 2+i)
		eps[i].Ordering = herald.OrderingFIFO
		mustCreateEndpoint(t, s, eps[i])
	}
	m := messagesAt(t, s, app.ID, 10)[0]
	heads := claim(t, s, nodeA, at(20), 100)
	if len(heads) != n {
		t.Fatalf("claimed %d heads, want %d", len(heads), n)
	}
	// Each head fails and retries, the later endpoints (by ID) sooner.
	for _, c := range heads {
		i := slices.IndexFunc(eps, func(ep *herald.Endpoint) bool { return ep.ID == c.Delivery.EndpointID })
		fail(t, s, 30+i, c, herald.DeliveryPending, at(100-i), 0)
	}
	var got []string
	for range 3 {
		got = append(got, claimedIDs(claim(t, s, nodeB, at(200), 2))...)
	}
	var want []string
	for i := n - 1; i >= 0; i-- {
		want = append(want, pair(m, eps[i]))
	}
	mustEqual(t, "FIFO heads claimed two at a time", want, got)
}

// endpointsOf returns the endpoint of each claim, sorted.
func endpointsOf(claims []herald.Claim) []string {
	var out []string
	for _, c := range claims {
		out = append(out, c.Delivery.EndpointID)
	}
	slices.Sort(out)
	return out
}

func testIsolationFailingSince(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10, 11, 12, 13)
	claims := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	failingSince := func() time.Time { return mustGetEndpoint(t, s, app.ID, ep.ID).FailingSince }
	if !failingSince().IsZero() {
		t.Fatalf("new endpoint failing since %v", failingSince())
	}
	fail(t, s, 30, claims[0], herald.DeliveryPending, at(90), 0)
	if got := failingSince(); !got.Equal(at(30)) {
		t.Fatalf("after its first failure: failing since %v, want %v", got, at(30))
	}
	fail(t, s, 31, claims[1], herald.DeliveryPending, at(90), 0)
	if got := failingSince(); !got.Equal(at(30)) {
		t.Fatalf("after a second failure: failing since %v, want %v (the first)", got, at(30))
	}
	// A deferral (no attempt) is not a failure or a success.
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: claims[2].Delivery.ID, LeaseOwner: nodeA,
		Status: herald.DeliveryPending, NextAttemptAt: at(90)})
	if got := failingSince(); !got.Equal(at(30)) {
		t.Fatalf("after a deferral: failing since %v, want %v", got, at(30))
	}
	succeed(t, s, 40, claims[3])
	if got := failingSince(); !got.IsZero() {
		t.Fatalf("after a success: failing since %v, want zero", got)
	}
}

func testIsolationAutoDisable(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	app, ep, other := f.app, f.eps[0], f.eps[1]
	msgs := messagesAt(t, s, app.ID, 10, 11, 12, 13)
	const after = time.Hour
	t0 := at(30)
	claims := claim(t, s, nodeA, at(20), 3, other.ID) // msgs 0, 1, 2; msgs 3 stays pending
	record := func(c herald.Claim, n int, when time.Time) {
		t.Helper()
		a := newAttempt(c, n, herald.AttemptFailed, 500)
		a.CreatedAt = when
		mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: nodeA,
			Status: herald.DeliveryPending, NextAttemptAt: when.Add(24 * time.Hour), DisableAfter: after, Attempt: a})
	}
	record(claims[0], 31, t0)
	// One microsecond short of failing for DisableAfter: still enabled.
	record(claims[1], 32, t0.Add(after-time.Microsecond))
	if mustGetEndpoint(t, s, app.ID, ep.ID).Disabled {
		t.Fatal("disabled before failing for DisableAfter")
	}
	// A failure DisableAfter after the first one disables it.
	record(claims[2], 33, t0.Add(after))
	got := mustGetEndpoint(t, s, app.ID, ep.ID)
	if !got.Disabled || !got.FailingSince.Equal(t0) {
		t.Fatalf("after failing for DisableAfter: disabled %v, failing since %v; want disabled, since %v", got.Disabled, got.FailingSince, t0)
	}
	if mustGetEndpoint(t, s, app.ID, other.ID).Disabled {
		t.Fatal("another endpoint of the application was disabled too")
	}
	// Its pending deliveries (the three retries included) failed, not
	// canceled, so that recover queues them again; the other endpoint's
	// are untouched.
	for _, m := range msgs {
		if st := deliveryOf(t, s, m, ep.ID).Status; st != herald.DeliveryFailed {
			t.Fatalf("delivery of %s to the disabled endpoint: %s, want failed", m.ID, st)
		}
		if st := deliveryOf(t, s, m, other.ID).Status; st != herald.DeliveryPending {
			t.Fatalf("delivery of %s to the other endpoint: %s, want pending", m.ID, st)
		}
	}
	n, err := s.RecoverEndpoint(t.Context(), app.ID, ep.ID, at(0), time.Time{}, at(9000))
	mustOK(t, "RecoverEndpoint", err)
	if n != len(msgs) {
		t.Fatalf("recovered %d deliveries, want %d", n, len(msgs))
	}
}

// A 410 Gone disables its endpoint even when an earlier outcome of the
// same RecordAttempts call failed there too and was checked for
// auto-disable (too soon to disable).
func testIsolationGoneAfterFailureInOneBatch(t *testing.T, s herald.Store) {
	mustOperationalEndpoint(t, s)
	f := mustEngineFixture(t, s, 2)
	app, ep, other := f.app, f.eps[0], f.eps[1]
	msgs := messagesAt(t, s, app.ID, 10, 11, 12)
	claims := claim(t, s, nodeA, at(20), 2, other.ID)
	mustEqual(t, "claims", []string{pair(msgs[0], ep), pair(msgs[1], ep)}, claimedIDs(claims))
	mustRecord(t, s,
		herald.AttemptOutcome{DeliveryID: claims[0].Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliveryPending,
			NextAttemptAt: at(90), DisableAfter: time.Hour, Attempt: newAttempt(claims[0], 30, herald.AttemptFailed, 503)},
		herald.AttemptOutcome{DeliveryID: claims[1].Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliveryFailed,
			DisableEndpoint: true, DisableAfter: time.Hour, Attempt: newAttempt(claims[1], 31, herald.AttemptFailed, 410)})
	if !mustGetEndpoint(t, s, app.ID, ep.ID).Disabled {
		t.Fatal("endpoint that answered 410 after another failure in the same batch is still enabled")
	}
	if mustGetEndpoint(t, s, app.ID, other.ID).Disabled {
		t.Fatal("the other endpoint was disabled too")
	}
	want := map[string]herald.DeliveryStatus{
		pair(msgs[0], ep): herald.DeliveryCanceled, // its retry was pending
		pair(msgs[1], ep): herald.DeliveryFailed,
		pair(msgs[2], ep): herald.DeliveryCanceled,
	}
	got := map[string]herald.DeliveryStatus{}
	for _, m := range msgs {
		got[pair(m, ep)] = deliveryOf(t, s, m, ep.ID).Status
	}
	mustEqual(t, "delivery statuses", want, got)
	var types []string
	for _, ev := range operationalEvents(t, s) {
		types = append(types, ev.Type)
		if ev.Type == herald.EventEndpointDisabled && ev.Data["trigger"] != herald.TriggerAutomaticDisable {
			t.Fatalf("endpoint.disabled with trigger %v, want %q", ev.Data["trigger"], herald.TriggerAutomaticDisable)
		}
	}
	mustEqual(t, "operational events", []string{herald.EventMessageAttemptFailing, herald.EventEndpointDisabled}, types)
}

func testIsolationEnableClearsFailingSince(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10)
	c := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	fail(t, s, 30, c[0], herald.DeliveryPending, at(90), 0)
	stored := mustGetEndpoint(t, s, app.ID, ep.ID)
	// An update that leaves Disabled alone keeps FailingSince, whatever
	// the endpoint it is given says.
	stored.Description, stored.FailingSince, stored.UpdatedAt = "still failing", time.Time{}, at(40)
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), stored))
	if got := mustGetEndpoint(t, s, app.ID, ep.ID).FailingSince; !got.Equal(at(30)) {
		t.Fatalf("after an update: failing since %v, want %v", got, at(30))
	}
	stored.Disabled, stored.UpdatedAt = true, at(41)
	mustOK(t, "UpdateEndpoint (disable)", s.UpdateEndpoint(t.Context(), stored))
	if got := mustGetEndpoint(t, s, app.ID, ep.ID).FailingSince; !got.Equal(at(30)) {
		t.Fatalf("after disabling: failing since %v, want %v", got, at(30))
	}
	stored.Disabled, stored.UpdatedAt = false, at(42)
	mustOK(t, "UpdateEndpoint (enable)", s.UpdateEndpoint(t.Context(), stored))
	if got := mustGetEndpoint(t, s, app.ID, ep.ID).FailingSince; !got.IsZero() {
		t.Fatalf("after enabling: failing since %v, want zero", got)
	}
}

// testIsolationUpdateKeepsAutoDisable: an endpoint read before the
// dispatcher disabled it and written back with UpdateEndpointKeepDisabled
// stays disabled, without an event; UpdateEndpoint with Disabled false
// still enables it, clears FailingSince and queues endpoint.enabled.
func testIsolationUpdateKeepsAutoDisable(t *testing.T, s herald.Store) {
	mustOperationalEndpoint(t, s)
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10)
	c := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	stale := mustGetEndpoint(t, s, app.ID, ep.ID)
	// 410 Gone disables the endpoint after the read.
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA,
		Status: herald.DeliveryFailed, DisableEndpoint: true, Attempt: newAttempt(c[0], 30, herald.AttemptFailed, 410)})
	if !mustGetEndpoint(t, s, app.ID, ep.ID).Disabled {
		t.Fatal("410 Gone did not disable the endpoint")
	}
	events := len(operationalEvents(t, s))

	stale.Description, stale.UpdatedAt = "renamed", at(40)
	mustOK(t, "UpdateEndpointKeepDisabled", s.UpdateEndpointKeepDisabled(t.Context(), stale))
	if !stale.Disabled {
		t.Fatal("UpdateEndpointKeepDisabled left ep.Disabled false, want the stored true")
	}
	got := mustGetEndpoint(t, s, app.ID, ep.ID)
	if !got.Disabled || got.Description != "renamed" || !got.UpdatedAt.Equal(at(40)) || !got.FailingSince.Equal(at(30)) {
		t.Fatalf("after UpdateEndpointKeepDisabled: disabled %v, description %q, updated %v, failing since %v; "+
			"want true, renamed, %v, %v", got.Disabled, got.Description, got.UpdatedAt, got.FailingSince, at(40), at(30))
	}
	if n := len(operationalEvents(t, s)); n != events {
		t.Fatalf("UpdateEndpointKeepDisabled queued %d operational events, want none", n-events)
	}

	got.Disabled, got.UpdatedAt = false, at(41)
	mustOK(t, "UpdateEndpoint (enable)", s.UpdateEndpoint(t.Context(), got))
	got = mustGetEndpoint(t, s, app.ID, ep.ID)
	if got.Disabled || !got.FailingSince.IsZero() {
		t.Fatalf("after enabling: disabled %v, failing since %v; want false, zero", got.Disabled, got.FailingSince)
	}
	evs := operationalEvents(t, s)
	if len(evs) != events+1 || evs[len(evs)-1].Type != herald.EventEndpointEnabled {
		t.Fatalf("operational events after enabling: %v, want %s last", evs, herald.EventEndpointEnabled)
	}

	// An enabled endpoint stays enabled, whatever ep.Disabled says.
	got.Disabled, got.UpdatedAt = true, at(42)
	mustOK(t, "UpdateEndpointKeepDisabled (enabled)", s.UpdateEndpointKeepDisabled(t.Context(), got))
	if got.Disabled || mustGetEndpoint(t, s, app.ID, ep.ID).Disabled {
		t.Fatal("UpdateEndpointKeepDisabled disabled an enabled endpoint")
	}
	if n := len(operationalEvents(t, s)); n != events+1 {
		t.Fatalf("UpdateEndpointKeepDisabled queued %d operational events, want none", n-events-1)
	}
	missing := newEndpoint(app.ID, 50)
	mustCode(t, "UpdateEndpointKeepDisabled unknown", s.UpdateEndpointKeepDisabled(t.Context(), missing), herald.ENOTFOUND)
}

// mustOperationalEndpoint creates the operational application and endpoint
// as Herald configures them at start.
func mustOperationalEndpoint(t *testing.T, s herald.Store) *herald.Endpoint {
	t.Helper()
	mustCreateApp(t, s, &herald.Application{ID: herald.OperationalAppID, Name: "Herald operational webhooks",
		CreatedAt: at(0), UpdatedAt: at(0)})
	ep := newEndpoint(herald.OperationalAppID, 0)
	ep.ID = herald.OperationalEndpointID
	return mustCreateEndpoint(t, s, ep)
}

// operationalEvent is an operational message as the tests read it.
type operationalEvent struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// operationalEvents returns the operational messages in creation order,
// decoded, after checking that each has one pending delivery, due at its
// creation, to the operational endpoint.
func operationalEvents(t *testing.T, s herald.Store) []operationalEvent {
	t.Helper()
	msgs, err := s.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	mustOK(t, "ListMessages of the operational application", err)
	var out []operationalEvent
	for _, m := range msgs {
		var ev operationalEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("operational message %s: %v: %s", m.ID, err, m.Payload)
		}
		if ev.Type != m.EventType {
			t.Fatalf("operational message %s of event type %q carries %q", m.ID, m.EventType, ev.Type)
		}
		ds := mustListDeliveries(t, s, herald.OperationalAppID, m.ID)
		if len(ds) != 1 || ds[0].EndpointID != herald.OperationalEndpointID || ds[0].Status != herald.DeliveryPending ||
			!ds[0].NextAttemptAt.Equal(m.CreatedAt) {
			t.Fatalf("operational message %s has deliveries %+v, want one pending to the operational endpoint due at %v", m.ID, ds, m.CreatedAt)
		}
		out = append(out, ev)
	}
	return out
}

func testIsolationOperationalEvents(t *testing.T, s herald.Store) {
	ops := mustOperationalEndpoint(t, s)
	app := newApp(1)
	app.UID = "acme"
	mustCreateApp(t, s, app)
	ep := newEndpoint(app.ID, 2)
	ep.UID = "primary"
	mustCreateEndpoint(t, s, ep)
	gone := mustCreateEndpoint(t, s, newEndpoint(app.ID, 3))
	m1 := newMessage(app.ID, 10, "user.created")
	m1.EventID = "evt-1"
	m2 := newMessage(app.ID, 11, "user.created")
	mustCreateMessages(t, s, m1, m2)
	claims := claim(t, s, nodeA, at(20), 100)
	byPair := map[string]herald.Claim{}
	for _, c := range claims {
		byPair[c.Delivery.MessageID+"/"+c.Delivery.EndpointID] = c
	}
	// The first failure after a success: message.attempt.failing. The
	// second: nothing. The last try: message.attempt.exhausted.
	attempts := map[int]*herald.Attempt{}
	record := func(c herald.Claim, n, code int, o herald.AttemptOutcome) {
		t.Helper()
		attempts[n] = newAttempt(c, n, herald.AttemptFailed, code)
		o.DeliveryID, o.LeaseOwner, o.Attempt = c.Delivery.ID, nodeA, attempts[n]
		mustRecord(t, s, o)
	}
	record(byPair[pair(m1, ep)], 30, 503, herald.AttemptOutcome{Status: herald.DeliveryPending, NextAttemptAt: at(90)})
	record(byPair[pair(m2, ep)], 31, 503, herald.AttemptOutcome{Status: herald.DeliveryFailed})
	// 410 Gone: endpoint.disabled, automatic (and failing first).
	record(byPair[pair(m1, gone)], 32, 410, herald.AttemptOutcome{Status: herald.DeliveryFailed, DisableEndpoint: true})
	// A manual disable, then enable, through UpdateEndpoint.
	stored := mustGetEndpoint(t, s, app.ID, ep.ID)
	stored.Disabled, stored.UpdatedAt = true, at(40)
	mustOK(t, "UpdateEndpoint (disable)", s.UpdateEndpoint(t.Context(), stored))
	stored.Description, stored.UpdatedAt = "no change of state", at(41)
	mustOK(t, "UpdateEndpoint (other field)", s.UpdateEndpoint(t.Context(), stored))
	stored.Disabled, stored.UpdatedAt = false, at(42)
	mustOK(t, "UpdateEndpoint (enable)", s.UpdateEndpoint(t.Context(), stored))
	attempt := func(m *herald.Message, epID string, n, code int) map[string]any {
		d := map[string]any{"appId": app.ID, "appUid": "acme", "endpointId": epID, "msgId": m.ID,
			"lastAttempt": map[string]any{"id": attempts[n].ID, "responseStatusCode": float64(code),
				"timestamp": at(n).Format("2006-01-02T15:04:05.000000Z")}}
		if m.EventID != "" {
			d["msgEventId"] = m.EventID
		}
		return d
	}
	endpoint := func(epID, uid string) map[string]any {
		d := map[string]any{"appId": app.ID, "appUid": "acme", "endpointId": epID}
		if uid != "" {
			d["endpointUid"] = uid
		}
		return d
	}
	with := func(d map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			d[kv[i].(string)] = kv[i+1]
		}
		return d
	}
	want := []operationalEvent{
		{herald.EventMessageAttemptFailing, attempt(m1, ep.ID, 30, 503)},
		{herald.EventMessageAttemptExhausted, attempt(m2, ep.ID, 31, 503)},
		{herald.EventMessageAttemptFailing, attempt(m1, gone.ID, 32, 410)},
		{herald.EventEndpointDisabled, with(endpoint(gone.ID, ""), "trigger", "automatic", "failSince", at(32).Format("2006-01-02T15:04:05.000000Z"))},
		{herald.EventEndpointDisabled, with(endpoint(ep.ID, "primary"), "trigger", "manual", "failSince", at(30).Format("2006-01-02T15:04:05.000000Z"))},
		{herald.EventEndpointEnabled, endpoint(ep.ID, "primary")},
	}
	mustEqual(t, "operational events", want, operationalEvents(t, s))

	// Attempts to the operational endpoint itself move nothing and report
	// nothing, even with DisableAfter.
	var outcomes []herald.AttemptOutcome
	for i, c := range claim(t, s, nodeA, at(60), 100, ep.ID, gone.ID) {
		if c.Delivery.EndpointID != ops.ID {
			t.Fatalf("claimed a delivery to %s", c.Delivery.EndpointID)
		}
		outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: nodeA,
			Status: herald.DeliveryFailed, DisableAfter: time.Nanosecond, Attempt: newAttempt(c, 61+i, herald.AttemptFailed, 500)})
	}
	if len(outcomes) != len(want) {
		t.Fatalf("claimed %d operational deliveries, want %d", len(outcomes), len(want))
	}
	mustRecord(t, s, outcomes...)
	got := mustGetEndpoint(t, s, herald.OperationalAppID, ops.ID)
	if got.Disabled || !got.FailingSince.IsZero() {
		t.Fatalf("the operational endpoint's own failures moved it: disabled %v, failing since %v", got.Disabled, got.FailingSince)
	}
	msgs, err := s.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	mustOK(t, "ListMessages", err)
	if len(msgs) != len(want) {
		t.Fatalf("%d operational messages after the operational endpoint failed, want %d", len(msgs), len(want))
	}
	// Nor does turning the operational endpoint off and on.
	got.Disabled, got.UpdatedAt = true, at(70)
	mustOK(t, "UpdateEndpoint (operational off)", s.UpdateEndpoint(t.Context(), got))
	got.Disabled, got.UpdatedAt = false, at(71)
	mustOK(t, "UpdateEndpoint (operational on)", s.UpdateEndpoint(t.Context(), got))
	msgs, err = s.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	mustOK(t, "ListMessages", err)
	if len(msgs) != len(want) {
		t.Fatalf("%d operational messages after the operational endpoint was turned off and on, want %d", len(msgs), len(want))
	}
}

func testIsolationOperationalEventsOff(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10)
	c := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	// No operational endpoint: the state still moves, no event is queued.
	fail(t, s, 30, c[0], herald.DeliveryFailed, time.Time{}, 0)
	if got := mustGetEndpoint(t, s, app.ID, ep.ID).FailingSince; !got.Equal(at(30)) {
		t.Fatalf("failing since %v, want %v", got, at(30))
	}
	msgs, err := s.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	if err == nil && len(msgs) > 0 {
		t.Fatalf("queued %d operational messages without an operational endpoint", len(msgs))
	}
	// A disabled operational endpoint (the URL was removed) queues nothing
	// either.
	ops := mustOperationalEndpoint(t, s)
	ops.Disabled, ops.UpdatedAt = true, at(40)
	mustOK(t, "UpdateEndpoint (operational)", s.UpdateEndpoint(t.Context(), ops))
	stored := mustGetEndpoint(t, s, app.ID, ep.ID)
	stored.Disabled, stored.UpdatedAt = true, at(41)
	mustOK(t, "UpdateEndpoint (disable)", s.UpdateEndpoint(t.Context(), stored))
	if got := operationalEvents(t, s); len(got) != 0 {
		t.Fatalf("queued %v with the operational endpoint disabled", got)
	}
}

// routedEvent is an operational message as the routing test reads it: its
// type and the operational endpoints it has a delivery to, sorted.
type routedEvent struct {
	Type string
	To   []string
}

// routedEvents returns the operational messages in creation order with
// the endpoints of their deliveries.
func routedEvents(t *testing.T, s herald.Store) []routedEvent {
	t.Helper()
	msgs, err := s.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	mustOK(t, "ListMessages of the operational application", err)
	var out []routedEvent
	for _, m := range msgs {
		ev := routedEvent{Type: m.EventType}
		for _, d := range mustListDeliveries(t, s, herald.OperationalAppID, m.ID) {
			if d.Status != herald.DeliveryPending && d.Status != herald.DeliveryFailed {
				t.Fatalf("operational delivery %s is %s", d.ID, d.Status)
			}
			ev.To = append(ev.To, d.EndpointID)
		}
		slices.Sort(ev.To)
		out = append(out, ev)
	}
	return out
}

// testIsolationOperationalRouting: each operational event goes to every
// enabled operational endpoint whose filter types accept it (the flag's
// endpoint, without filter types, gets all), never to a disabled one; an
// event no operational endpoint accepts is not stored; no operational
// endpoint's failures or toggles are reported, to any of them.
func testIsolationOperationalRouting(t *testing.T, s herald.Store) {
	flag := mustOperationalEndpoint(t, s)
	opEndpoint := func(n int, disabled bool, types ...string) *herald.Endpoint {
		ep := newEndpoint(herald.OperationalAppID, n)
		ep.FilterTypes, ep.Disabled = types, disabled
		return mustCreateEndpoint(t, s, ep)
	}
	disabledOnly := opEndpoint(90, false, herald.EventEndpointDisabled)
	attemptsOnly := opEndpoint(91, false, herald.EventMessageAttemptFailing, herald.EventMessageAttemptExhausted)
	off := opEndpoint(92, true)
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10)
	c := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	fail(t, s, 30, c[0], herald.DeliveryFailed, time.Time{}, 0)
	toggle := func(e *herald.Endpoint, disabled bool, n int) {
		t.Helper()
		stored := mustGetEndpoint(t, s, e.AppID, e.ID)
		stored.Disabled, stored.UpdatedAt = disabled, at(n)
		mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), stored))
	}
	toggle(ep, true, 40)
	toggle(ep, false, 41)
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	want := []routedEvent{
		{herald.EventMessageAttemptFailing, sorted(flag.ID, attemptsOnly.ID)},
		{herald.EventMessageAttemptExhausted, sorted(flag.ID, attemptsOnly.ID)},
		{herald.EventEndpointDisabled, sorted(flag.ID, disabledOnly.ID)},
		{herald.EventEndpointEnabled, []string{flag.ID}},
	}
	mustEqual(t, "operational routes", want, routedEvents(t, s))

	// Without the flag's endpoint, endpoint.enabled has no receiver: it is
	// not stored at all.
	toggle(flag, true, 42)
	toggle(ep, true, 43)
	toggle(ep, false, 44)
	want = append(want, routedEvent{herald.EventEndpointDisabled, []string{disabledOnly.ID}})
	mustEqual(t, "operational routes without the flag's endpoint", want, routedEvents(t, s))

	// Operational endpoints failing (even with DisableAfter) or turned off
	// and on report nothing, to any operational endpoint.
	var outcomes []herald.AttemptOutcome
	for i, c := range claim(t, s, nodeA, at(60), 100, ep.ID) {
		if c.Delivery.AppID != herald.OperationalAppID {
			t.Fatalf("claimed a delivery of %s", c.Delivery.AppID)
		}
		outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: nodeA,
			Status: herald.DeliveryFailed, DisableAfter: time.Nanosecond, Attempt: newAttempt(c, 61+i, herald.AttemptFailed, 500)})
	}
	if len(outcomes) == 0 {
		t.Fatal("claimed no operational deliveries")
	}
	mustRecord(t, s, outcomes...)
	for _, e := range []*herald.Endpoint{disabledOnly, attemptsOnly} {
		got := mustGetEndpoint(t, s, herald.OperationalAppID, e.ID)
		if got.Disabled || !got.FailingSince.IsZero() {
			t.Fatalf("operational endpoint %s moved by its own failures: disabled %v, failing since %v", e.ID, got.Disabled, got.FailingSince)
		}
	}
	toggle(attemptsOnly, true, 70)
	toggle(attemptsOnly, false, 71)
	toggle(off, false, 72)
	toggle(flag, false, 73)
	mustEqual(t, "operational routes after operational endpoints failed and toggled", want, routedEvents(t, s))
}
