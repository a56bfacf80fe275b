package storetest

import (
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var telemetryTests = []namedTest{
	{"QueueStats", testQueueStats},
	{"TraceParentRoundTrip", testTraceParentRoundTrip},
}

func testQueueStats(t *testing.T, s herald.Store) {
	stats := func(now time.Time) herald.QueueStats {
		t.Helper()
		st, err := s.QueueStats(t.Context(), now)
		mustOK(t, "QueueStats", err)
		return st
	}
	mustEqual(t, "empty store", herald.QueueStats{}, stats(at(1000)))

	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	off := newEndpoint(f.app.ID, 5)
	off.Disabled = true
	mustCreateEndpoint(t, s, off)
	// Due at(10), at(20), at(30); the disabled endpoint gets none.
	m10, m20, m30 := newMessage(f.app.ID, 10, "a"), newMessage(f.app.ID, 20, "a"), newMessage(f.app.ID, 30, "a")
	mustCreateMessages(t, s, m30, m10, m20)

	mustEqual(t, "three pending", herald.QueueStats{Pending: 3, OldestDue: at(10), DisabledEndpoints: 1}, stats(at(25)))
	// Nothing is due before the first due time.
	mustEqual(t, "none due yet", herald.QueueStats{Pending: 3, DisabledEndpoints: 1}, stats(at(5)))

	// A claimed delivery is sending; the oldest due is the next one.
	c := claim(t, s, nodeA, at(25), 1)
	mustEqual(t, "claimed", []string{pair(m10, ep)}, claimedIDs(c))
	mustEqual(t, "one sending", herald.QueueStats{Pending: 2, Sending: 1, OldestDue: at(20), DisabledEndpoints: 1}, stats(at(25)))

	// A retry scheduled later is pending but not due; a success is neither.
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA,
		Attempt: newAttempt(c[0], 26, herald.AttemptFailed, 500), Status: herald.DeliveryPending, NextAttemptAt: at(100)})
	mustEqual(t, "retry scheduled", herald.QueueStats{Pending: 3, OldestDue: at(20), DisabledEndpoints: 1}, stats(at(25)))
	c = claim(t, s, nodeA, at(40), 2)
	for i, cl := range c {
		mustRecord(t, s, herald.AttemptOutcome{DeliveryID: cl.Delivery.ID, LeaseOwner: nodeA,
			Attempt: newAttempt(cl, 41+i, herald.AttemptSucceeded, 200), Status: herald.DeliverySucceeded})
	}
	mustEqual(t, "two delivered", herald.QueueStats{Pending: 1, DisabledEndpoints: 1}, stats(at(40)))
	mustEqual(t, "the retry due", herald.QueueStats{Pending: 1, OldestDue: at(100), DisabledEndpoints: 1}, stats(at(200)))

	// Deliveries stored leased count as sending at once.
	leased := newMessage(f.app.ID, 50, "a")
	_, err := s.CreateMessages(t.Context(), []*herald.Message{leased}, herald.Lease{Owner: nodeB, Until: at(500)})
	mustOK(t, "CreateMessages leased", err)
	mustEqual(t, "leased at ingest", herald.QueueStats{Pending: 1, Sending: 1, OldestDue: at(100), DisabledEndpoints: 1}, stats(at(200)))
}

func testTraceParentRoundTrip(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced := newMessage(f.app.ID, 10, "a")
	traced.TraceParent = tp
	plain := newMessage(f.app.ID, 11, "a")
	mustCreateMessages(t, s, traced, plain)

	mustEqual(t, "traced message", traced, mustGetMessage(t, s, f.app.ID, traced.ID))
	mustEqual(t, "plain message", plain, mustGetMessage(t, s, f.app.ID, plain.ID))
	msgs, err := s.ListMessages(t.Context(), f.app.ID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "ListMessages", err)
	got := map[string]string{}
	for _, m := range msgs {
		got[m.ID] = m.TraceParent
	}
	mustEqual(t, "listed trace parents", map[string]string{traced.ID: tp, plain.ID: ""}, got)

	// The dispatcher gets it with each claim, to send it on.
	claims := claim(t, s, nodeA, at(20), 10)
	got = map[string]string{}
	for _, c := range claims {
		got[c.Message.ID] = c.Message.TraceParent
	}
	mustEqual(t, "claimed trace parents", map[string]string{traced.ID: tp, plain.ID: ""}, got)
}
