package storetest

import (
	"testing"

	"github.com/herald-webhooks/herald"
)

var retentionTests = []namedTest{
	{"Messages", testRetentionMessages},
	{"Attempts", testRetentionAttempts},
	{"Payloads", testRetentionPayloads},
}

// mustGone fails unless the message is gone with its attempts.
func mustGone(t *testing.T, s herald.Store, msg *herald.Message) {
	t.Helper()
	_, err := s.GetMessage(t.Context(), msg.AppID, msg.ID)
	mustCode(t, "GetMessage of a deleted message", err, herald.ENOTFOUND)
	atts, err := s.ListAttempts(t.Context(), msg.AppID, herald.AttemptListOptions{ListOptions: herald.ListOptions{Limit: 100}, MessageID: msg.ID})
	mustOK(t, "ListAttempts", err)
	if len(atts) != 0 {
		t.Fatalf("deleted message %s still has %d attempts", msg.ID, len(atts))
	}
}

// mustCount fails unless a retention call deleted want rows.
func mustCount(t *testing.T, what string, want int, got int, err error) {
	t.Helper()
	mustOK(t, what, err)
	if got != want {
		t.Fatalf("%s = %d, want %d", what, got, want)
	}
}

func testRetentionMessages(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	bareApp := mustCreateApp(t, s, newApp(3)) // no endpoints: its messages have no deliveries
	done := newMessage(app.ID, 10, "a")
	failed := newMessage(app.ID, 20, "a")
	pending := newMessage(app.ID, 30, "a")
	bare := newMessage(bareApp.ID, 40, "a")
	recent := newMessage(app.ID, 100, "a")
	mustCreateMessages(t, s, done, failed, pending, bare, recent)
	finish(t, s, ep, at(200), herald.DeliverySucceeded, done, recent)
	finish(t, s, ep, at(200), herald.DeliveryFailed, failed)

	// Oldest first, a batch at a time; "before" is exclusive.
	n, err := s.DeleteExpiredMessages(ctx, at(40), 1)
	mustCount(t, "DeleteExpiredMessages(at 40, limit 1)", 1, n, err)
	mustGone(t, s, done)
	n, err = s.DeleteExpiredMessages(ctx, at(40), 10)
	mustCount(t, "DeleteExpiredMessages(at 40, limit 10)", 1, n, err)
	mustGone(t, s, failed)
	mustGetMessage(t, s, bareApp.ID, bare.ID)
	n, err = s.DeleteExpiredMessages(ctx, at(41), 10)
	mustCount(t, "DeleteExpiredMessages(at 41)", 1, n, err)
	mustGone(t, s, bare)

	// Undelivered work is never dropped: pending, then sending, is kept.
	n, err = s.DeleteExpiredMessages(ctx, at(99), 10)
	mustCount(t, "DeleteExpiredMessages with only a pending message left", 0, n, err)
	if got := deliveryOf(t, s, pending, ep.ID); got.Status != herald.DeliveryPending {
		t.Fatalf("kept message's delivery is %s, want pending", got.Status)
	}
	claims := claim(t, s, nodeA, at(300), 10)
	if len(claims) != 1 || claims[0].Delivery.MessageID != pending.ID {
		t.Fatalf("claimed %v, want the pending message's delivery", claimedIDs(claims))
	}
	n, err = s.DeleteExpiredMessages(ctx, at(99), 10)
	mustCount(t, "DeleteExpiredMessages while its delivery is sending", 0, n, err)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: claims[0].Delivery.ID, LeaseOwner: nodeA,
		Status: herald.DeliverySucceeded, Attempt: newAttempt(claims[0], 300, herald.AttemptSucceeded, 200)})
	n, err = s.DeleteExpiredMessages(ctx, at(99), 10)
	mustCount(t, "DeleteExpiredMessages once delivered", 1, n, err)
	mustGone(t, s, pending)
	mustGetMessage(t, s, app.ID, recent.ID)
	if _, err := s.GetEndpoint(ctx, app.ID, ep.ID); err != nil {
		t.Fatalf("the endpoint went with its messages: %v", err)
	}
}

func testRetentionAttempts(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	msg := newMessage(app.ID, 10, "a")
	mustCreateMessages(t, s, msg)
	var ids []string
	for _, n := range []int{20, 30, 40} {
		c := claim(t, s, nodeA, at(n), 10)
		if len(c) != 1 {
			t.Fatalf("claim at %d: %d claims, want 1", n, len(c))
		}
		a := newAttempt(c[0], n, herald.AttemptFailed, 500)
		ids = append(ids, a.ID)
		mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA,
			Status: herald.DeliveryPending, NextAttemptAt: at(n + 10), Attempt: a})
	}
	left := func() []string {
		atts, err := s.ListAttempts(ctx, app.ID, herald.AttemptListOptions{ListOptions: herald.ListOptions{Limit: 100, Order: herald.Ascending}})
		mustOK(t, "ListAttempts", err)
		var out []string
		for _, a := range atts {
			out = append(out, a.ID)
		}
		return out
	}
	n, err := s.DeleteExpiredAttempts(ctx, at(30), 10)
	mustCount(t, "DeleteExpiredAttempts(at 30)", 1, n, err)
	mustEqual(t, "attempts left", ids[1:], left())
	n, err = s.DeleteExpiredAttempts(ctx, at(41), 1)
	mustCount(t, "DeleteExpiredAttempts(at 41, limit 1)", 1, n, err)
	mustEqual(t, "attempts left", ids[2:], left())
	n, err = s.DeleteExpiredAttempts(ctx, at(41), 1)
	mustCount(t, "DeleteExpiredAttempts(at 41, limit 1) again", 1, n, err)
	n, err = s.DeleteExpiredAttempts(ctx, at(41), 1)
	mustCount(t, "DeleteExpiredAttempts with none left", 0, n, err)
	// The message and its delivery stay; only the log aged out.
	if d := deliveryOf(t, s, msg, mustListDeliveries(t, s, app.ID, msg.ID)[0].EndpointID); d.Attempts != 3 {
		t.Fatalf("delivery has %d attempts counted, want 3", d.Attempts)
	}
}

func testRetentionPayloads(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	expiring := newMessage(app.ID, 10, "a")
	expiring.PayloadExpiresAt = at(50)
	undelivered := newMessage(app.ID, 11, "a")
	undelivered.PayloadExpiresAt = at(50)
	later := newMessage(app.ID, 12, "a")
	later.PayloadExpiresAt = at(500)
	forever := newMessage(app.ID, 13, "a")
	mustCreateMessages(t, s, expiring, undelivered, later, forever)
	finish(t, s, ep, at(20), herald.DeliverySucceeded, expiring, later, forever)

	payload := func(m *herald.Message) []byte { return mustGetMessage(t, s, app.ID, m.ID).Payload }
	n, err := s.ExpirePayloads(ctx, at(49), 10)
	mustCount(t, "ExpirePayloads(at 49)", 0, n, err)
	n, err = s.ExpirePayloads(ctx, at(50), 10)
	mustCount(t, "ExpirePayloads(at 50)", 1, n, err)
	if p := payload(expiring); p != nil {
		t.Fatalf("expired payload is %q, want nil", p)
	}
	for _, m := range []*herald.Message{undelivered, later, forever} {
		if p := payload(m); string(p) != string(m.Payload) {
			t.Fatalf("message %s payload %q, want %q kept", m.ID, p, m.Payload)
		}
	}
	// The undelivered message keeps its payload until its delivery ends.
	finish(t, s, ep, at(60), herald.DeliveryFailed, undelivered)
	n, err = s.ExpirePayloads(ctx, at(60), 10)
	mustCount(t, "ExpirePayloads once delivered", 1, n, err)
	if p := payload(undelivered); p != nil {
		t.Fatalf("expired payload is %q, want nil", p)
	}
	n, err = s.ExpirePayloads(ctx, at(60), 10)
	mustCount(t, "ExpirePayloads again", 0, n, err)
	if got := mustGetMessage(t, s, app.ID, expiring.ID); got.EventType != expiring.EventType || !got.CreatedAt.Equal(expiring.CreatedAt) {
		t.Fatalf("expired message lost more than its payload: %+v", got)
	}
}
