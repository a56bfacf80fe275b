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

var engineTests = []namedTest{
	{"CreateLeased", testEngineCreateLeased},
	{"CreateOnlyEndpoint", testEngineCreateOnlyEndpoint},
	{"ClaimOrderAndLimit", testEngineClaimOrderAndLimit},
	{"ClaimSkipEndpoints", testEngineClaimSkipEndpoints},
	{"ClaimWindow", testEngineClaimWindow},
	{"ClaimSharesMessage", testEngineClaimSharesMessage},
	{"ClaimAppsTakeTurns", testEngineClaimAppsTakeTurns},
	{"ClaimAppsWindow", testEngineClaimAppsWindow},
	{"ClaimAppsSkipFIFO", testEngineClaimAppsSkipFIFO},
	{"RecordOutcomes", testEngineRecordOutcomes},
	{"RecordDisablesEndpoint", testEngineRecordDisablesEndpoint},
	{"RecordStolenLease", testEngineRecordStolenLease},
	{"RecordLargeBatch", testEngineRecordLargeBatch},
	{"RecordOldClaim", testEngineRecordOldClaim},
	{"ReleaseOldClaim", testEngineReleaseOldClaim},
	{"RecordGoneFirstInBatch", testEngineRecordGoneInBatch(true)},
	{"RecordGoneLastInBatch", testEngineRecordGoneInBatch(false)},
	{"DeferKeepsTrigger", testEngineDeferKeepsTrigger},
	{"Release", testEngineRelease},
	{"Rescue", testEngineRescue},
}

// Owners of leases in these tests.
const (
	nodeA = "node-a"
	nodeB = "node-b"
)

// leaseFor is how long the tests' claims lease their deliveries.
const leaseFor = time.Minute

// engineFixture is an application with endpoints that accept everything.
type engineFixture struct {
	app *herald.Application
	eps []*herald.Endpoint
}

// mustEngineFixture creates an application (at(1)) with n accept-all
// endpoints (at(2), at(3), …, so their IDs sort in creation order).
func mustEngineFixture(t *testing.T, s herald.Store, n int) engineFixture {
	t.Helper()
	f := engineFixture{app: mustCreateApp(t, s, newApp(1))}
	for i := range n {
		f.eps = append(f.eps, mustCreateEndpoint(t, s, newEndpoint(f.app.ID, 2+i)))
	}
	return f
}

// claim leases due deliveries for owner at now and fails on error.
func claim(t *testing.T, s herald.Store, owner string, now time.Time, limit int, skip ...string) []herald.Claim {
	t.Helper()
	claims, err := s.ClaimDue(t.Context(), herald.ClaimOptions{
		Owner: owner, Now: now, LeaseUntil: now.Add(leaseFor), Limit: limit, SkipEndpoints: skip,
	})
	mustOK(t, "ClaimDue", err)
	return claims
}

// claimedIDs returns the (message, endpoint) pairs of claims, in order, as
// "msgID/epID".
func claimedIDs(claims []herald.Claim) []string {
	var out []string
	for _, c := range claims {
		out = append(out, c.Delivery.MessageID+"/"+c.Delivery.EndpointID)
	}
	return out
}

// sorted returns a sorted copy of ids, for claims whose order the contract
// leaves open (equal NextAttemptAt).
func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// pair names a delivery as claimedIDs does.
func pair(msg *herald.Message, ep *herald.Endpoint) string { return msg.ID + "/" + ep.ID }

// mustRecord records outcomes and fails on error.
func mustRecord(t *testing.T, s herald.Store, outcomes ...herald.AttemptOutcome) {
	t.Helper()
	mustOK(t, "RecordAttempts", s.RecordAttempts(t.Context(), outcomes))
}

// deliveryOf returns the delivery of msg to ep as the store lists it.
func deliveryOf(t *testing.T, s herald.Store, msg *herald.Message, epID string) *herald.Delivery {
	t.Helper()
	for _, d := range mustListDeliveries(t, s, msg.AppID, msg.ID) {
		if d.EndpointID == epID {
			return d
		}
	}
	t.Fatalf("message %s has no delivery to %s", msg.ID, epID)
	return nil
}

// newAttempt returns the attempt of claim c made at(n), with a fixed ID of
// that moment and every field set.
func newAttempt(c herald.Claim, n int, status herald.AttemptStatus, code int) *herald.Attempt {
	return &herald.Attempt{
		ID:             id(herald.PrefixAttempt, n),
		DeliveryID:     c.Delivery.ID,
		AppID:          c.Delivery.AppID,
		MessageID:      c.Delivery.MessageID,
		EndpointID:     c.Delivery.EndpointID,
		URL:            fmt.Sprintf("https://example.com/hooks/attempt-%d", n),
		ResponseStatus: code,
		Response:       fmt.Appendf(nil, `{"attempt":%d}`, n),
		Duration:       1234567 * time.Microsecond,
		Status:         status,
		Trigger:        c.Delivery.Trigger,
		CreatedAt:      at(n),
	}
}

// ignoreTimes leaves out the delivery fields a store sets from its own
// clock or from the creation: UpdatedAt and CreatedAt.
var ignoreTimes = cmpopts.IgnoreFields(herald.Delivery{}, "CreatedAt", "UpdatedAt")

func testEngineCreateLeased(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	until := at(500).Add(987654321 * time.Nanosecond)
	lease := herald.Lease{Owner: nodeA, Until: until}
	leased := newMessage(f.app.ID, 10, "user.created")
	res, err := s.CreateMessages(t.Context(), []*herald.Message{leased}, lease)
	mustOK(t, "CreateMessages with a lease", err)
	mustOK(t, "leased message", res[0].Err)

	var want []*herald.Delivery
	for _, ep := range f.eps {
		d := wantDelivery(leased, ep.ID)
		d.Status = herald.DeliverySending
		d.LeaseOwner = nodeA
		// Stores keep microseconds, truncated.
		d.LeaseExpiresAt = until.Truncate(time.Microsecond)
		want = append(want, d)
	}
	mustEqual(t, "returned leased deliveries", want, res[0].Deliveries, ignoreStoreChosen)
	mustEqual(t, "stored leased deliveries", want, mustListDeliveries(t, s, f.app.ID, leased.ID), ignoreStoreChosen)

	// A zero lease in the same store still makes pending deliveries.
	plain := newMessage(f.app.ID, 11, "user.created")
	mustCreateMessages(t, s, plain)
	mustEqual(t, "pending deliveries", []*herald.Delivery{wantDelivery(plain, f.eps[0].ID), wantDelivery(plain, f.eps[1].ID)},
		mustListDeliveries(t, s, f.app.ID, plain.ID), ignoreStoreChosen)

	// Leased deliveries are nobody else's to claim, even long after they
	// were due; only the pending ones are.
	mustEqual(t, "claimed while leased", []string{pair(plain, f.eps[0]), pair(plain, f.eps[1])},
		sorted(claimedIDs(claim(t, s, nodeB, at(480), 10))))
	// Once the lease expired, the rescuer hands them back to the queue.
	n, err := s.RescueExpired(t.Context(), until.Add(time.Second), 10)
	mustOK(t, "RescueExpired", err)
	if n != 2 {
		t.Fatalf("rescued %d deliveries, want 2", n)
	}
	mustEqual(t, "claimed after rescue", []string{pair(leased, f.eps[0]), pair(leased, f.eps[1])},
		sorted(claimedIDs(claim(t, s, nodeB, until.Add(time.Second), 10))))
}

func testEngineCreateOnlyEndpoint(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	all := mustCreateEndpoint(t, s, newEndpoint(app.ID, 3))
	filtered := newEndpoint(app.ID, 4)
	filtered.FilterTypes = []string{"invoice.paid"}
	filtered.Channels = []string{"ch-x"}
	mustCreateEndpoint(t, s, filtered)
	disabled := newEndpoint(app.ID, 5)
	disabled.Disabled = true
	mustCreateEndpoint(t, s, disabled)
	otherEp := mustCreateEndpoint(t, s, newEndpoint(other.ID, 6))

	// send-example: the one endpoint gets it whatever its filters, even
	// when disabled; no other endpoint does.
	toFiltered := newMessage(app.ID, 10, "user.created")
	toFiltered.OnlyEndpointID = filtered.ID
	toDisabled := newMessage(app.ID, 11, "user.created")
	toDisabled.OnlyEndpointID = disabled.ID
	unknown := newMessage(app.ID, 12, "user.created")
	unknown.OnlyEndpointID = id(herald.PrefixEndpoint, 7)
	foreign := newMessage(app.ID, 13, "user.created")
	foreign.OnlyEndpointID = otherEp.ID
	routed := newMessage(app.ID, 14, "user.created")
	batch := []*herald.Message{toFiltered, toDisabled, unknown, foreign, routed}
	res, err := s.CreateMessages(t.Context(), batch, herald.Lease{})
	mustOK(t, "CreateMessages", err)

	for i, want := range [][]string{{filtered.ID}, {disabled.ID}, nil, nil, {all.ID}} {
		m := batch[i]
		if want == nil {
			mustCode(t, fmt.Sprintf("message %d to endpoint %s", i, m.OnlyEndpointID), res[i].Err, herald.ENOTFOUND)
			_, err := s.GetMessage(t.Context(), app.ID, m.ID)
			mustCode(t, "message refused for its endpoint", err, herald.ENOTFOUND)
			continue
		}
		mustOK(t, fmt.Sprintf("message %d", i), res[i].Err)
		var got []string
		for _, d := range mustListDeliveries(t, s, app.ID, m.ID) {
			got = append(got, d.EndpointID)
		}
		mustEqual(t, fmt.Sprintf("message %d endpoints", i), want, got)
	}
	_, err = s.ListMessageDeliveries(t.Context(), other.ID, foreign.ID)
	mustCode(t, "foreign message in the other app", err, herald.ENOTFOUND)
}

func testEngineClaimOrderAndLimit(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	const n = 7
	msgs := newMessages(f.app.ID, n)
	// Stored out of due order: claims follow NextAttemptAt, not insertion.
	var batch []*herald.Message
	for _, i := range creationOrder {
		batch = append(batch, msgs[i])
	}
	notYet := newMessage(f.app.ID, 100, "user.created")
	mustCreateMessages(t, s, append(batch, notYet)...)

	now := at(50)
	first := claim(t, s, nodeA, now, 3)
	mustEqual(t, "first claim", []string{pair(msgs[0], ep), pair(msgs[1], ep), pair(msgs[2], ep)}, claimedIDs(first))
	for i, c := range first {
		want := wantDelivery(msgs[i], ep.ID)
		want.ID = c.Delivery.ID
		want.Status = herald.DeliverySending
		want.LeaseOwner = nodeA
		want.LeaseExpiresAt = now.Add(leaseFor)
		mustEqual(t, "claimed delivery", want, c.Delivery, ignoreTimes)
		mustEqual(t, "stored claimed delivery", want, deliveryOf(t, s, msgs[i], ep.ID), ignoreTimes)
		mustEqual(t, "claimed message", msgs[i], c.Message)
	}
	// A claimed delivery is not claimed again, by the same or another
	// node; a delivery not yet due is not claimed at all.
	second := claim(t, s, nodeB, now, 10)
	mustEqual(t, "second claim", []string{pair(msgs[3], ep), pair(msgs[4], ep), pair(msgs[5], ep), pair(msgs[6], ep)},
		claimedIDs(second))
	if c := claim(t, s, nodeA, now, 10); len(c) != 0 {
		t.Fatalf("third claim got %v, want nothing", claimedIDs(c))
	}
	// Due exactly at Now counts as due.
	mustEqual(t, "claim at the due time", []string{pair(notYet, ep)}, claimedIDs(claim(t, s, nodeA, at(100), 10)))
	if c := claim(t, s, nodeA, at(1000), 0); len(c) != 0 {
		t.Fatalf("claim with limit 0 got %v", claimedIDs(c))
	}
}

func testEngineClaimSkipEndpoints(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 3)
	m1 := newMessage(f.app.ID, 10, "user.created")
	m2 := newMessage(f.app.ID, 11, "user.created")
	mustCreateMessages(t, s, m1, m2)
	got := claim(t, s, nodeA, at(50), 10, f.eps[0].ID, f.eps[2].ID)
	mustEqual(t, "claim skipping two endpoints", []string{pair(m1, f.eps[1]), pair(m2, f.eps[1])}, claimedIDs(got))
	got = claim(t, s, nodeA, at(50), 3, f.eps[1].ID)
	if len(got) != 3 {
		t.Fatalf("claim skipping a drained endpoint got %d claims, want 3", len(got))
	}
	for _, c := range got {
		if c.Delivery.EndpointID == f.eps[1].ID {
			t.Fatalf("claimed a delivery of skipped endpoint %s", f.eps[1].ID)
		}
	}
	got = claim(t, s, nodeA, at(50), 10)
	if len(got) != 1 {
		t.Fatalf("last claim got %v, want the one left", claimedIDs(got))
	}
}

// testEngineClaimWindow: a claim with a Window looks at that many due
// deliveries only (so it may come back empty behind skipped endpoints'
// backlog) and takes at most PerEndpoint of each endpoint.
func testEngineClaimWindow(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 3)
	m1 := newMessage(f.app.ID, 10, "user.created")
	m2 := newMessage(f.app.ID, 11, "user.created")
	m3 := newMessage(f.app.ID, 12, "user.created")
	mustCreateMessages(t, s, m1, m2, m3)
	windowed := func(window, perEndpoint, limit int, skip ...string) []string {
		t.Helper()
		claims, err := s.ClaimDue(t.Context(), herald.ClaimOptions{
			Owner: nodeA, Now: at(50), LeaseUntil: at(50).Add(leaseFor), Limit: limit,
			SkipEndpoints: skip, Window: window, PerEndpoint: perEndpoint,
		})
		mustOK(t, "ClaimDue with a window", err)
		return sorted(claimedIDs(claims))
	}
	// The window holds m1's and m2's deliveries: one per endpoint, the
	// skipped endpoint's left alone.
	mustEqual(t, "claim in a window of 6, one per endpoint, skipping one",
		sorted([]string{pair(m1, f.eps[1]), pair(m1, f.eps[2])}), windowed(6, 1, 10, f.eps[0].ID))
	// The head of the queue is m1's delivery to the skipped endpoint: a
	// window of one sees nothing else.
	mustEqual(t, "claim in a window of 1 behind a skipped endpoint", []string(nil), windowed(1, 0, 10, f.eps[0].ID))
	// Without a per-endpoint limit the window's rows are taken in due order.
	mustEqual(t, "claim in a window of 4",
		sorted([]string{pair(m1, f.eps[0]), pair(m2, f.eps[0]), pair(m2, f.eps[1]), pair(m2, f.eps[2])}), windowed(4, 0, 10))
	// Without a window, everything due is considered.
	got := claim(t, s, nodeA, at(50), 10, f.eps[0].ID)
	mustEqual(t, "claim without a window", sorted([]string{pair(m3, f.eps[1]), pair(m3, f.eps[2])}), sorted(claimedIDs(got)))
}

// claimApps claims with PerApp for owner nodeA at now.
func claimApps(t *testing.T, s herald.Store, now time.Time, opts herald.ClaimOptions) []herald.Claim {
	t.Helper()
	opts.Owner, opts.Now, opts.LeaseUntil = nodeA, now, now.Add(leaseFor)
	claims, err := s.ClaimDue(t.Context(), opts)
	mustOK(t, "ClaimDue in applications' turns", err)
	return claims
}

// byApp counts claims by application.
func byApp(claims []herald.Claim) map[string]int {
	n := map[string]int{}
	for _, c := range claims {
		n[c.Delivery.AppID]++
	}
	return n
}

// testEngineClaimAppsTakeTurns: application A has a backlog of 3,000 due
// deliveries, all older than application B's three. A claim oldest due
// first takes only A's; a claim in applications' turns (PerApp) takes B's
// too, at most PerApp of each application, and leaves SkipApps alone.
func testEngineClaimAppsTakeTurns(t *testing.T, s herald.Store) {
	a := mustEngineFixture(t, s, 10)
	const backlog = 300 // messages, to 10 endpoints each
	var msgs []*herald.Message
	for i := range backlog {
		msgs = append(msgs, newMessage(a.app.ID, 10+i, "user.created"))
	}
	mustCreateMessages(t, s, msgs...)
	b := mustCreateApp(t, s, newApp(1000))
	bep := mustCreateEndpoint(t, s, newEndpoint(b.ID, 1001))
	bmsgs := []*herald.Message{newMessage(b.ID, 1010, "user.created"), newMessage(b.ID, 1011, "user.created"),
		newMessage(b.ID, 1012, "user.created")}
	mustCreateMessages(t, s, bmsgs...)
	now := at(2000)

	// Oldest due first: A's backlog fills the claim.
	if got := byApp(claim(t, s, nodeA, now, 10)); got[a.app.ID] != 10 {
		t.Fatalf("claim oldest due first took %v, want 10 of A's", got)
	}
	// In turns: B's three come with the claim, beside A's oldest.
	got := claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10})
	if n := byApp(got); n[a.app.ID] != 7 || n[b.ID] != 3 {
		t.Fatalf("claim in turns took %v, want 7 of A's and B's 3", n)
	}
	var bGot []string
	for _, c := range got {
		if c.Delivery.AppID == b.ID {
			bGot = append(bGot, pair(c.Message, bep))
		}
	}
	mustEqual(t, "B's claims", []string{pair(bmsgs[0], bep), pair(bmsgs[1], bep), pair(bmsgs[2], bep)}, bGot)
	// A's are its oldest: message 0's are claimed already, so message 1's.
	for _, c := range got {
		if c.Delivery.AppID == a.app.ID && c.Delivery.MessageID != msgs[1].ID {
			t.Fatalf("claimed A's delivery of %s, want those of its oldest unclaimed message %s", c.Delivery.MessageID, msgs[1].ID)
		}
	}
	// Returned in due order, as every claim.
	if !slices.IsSortedFunc(got, func(x, y herald.Claim) int { return x.Delivery.NextAttemptAt.Compare(y.Delivery.NextAttemptAt) }) {
		t.Fatal("claims in turns are not in due order")
	}

	mustCreateMessages(t, s, newMessage(b.ID, 1013, "user.created"), newMessage(b.ID, 1014, "user.created"),
		newMessage(b.ID, 1015, "user.created"))
	// At most PerApp of each application.
	if n := byApp(claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 2})); n[a.app.ID] != 2 || n[b.ID] != 2 {
		t.Fatalf("claim in turns of 2 took %v, want 2 of each", n)
	}
	// A skipped: only B's last one, though A's are older and the limit
	// leaves room.
	skipped := claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10, SkipApps: []string{a.app.ID}})
	if n := byApp(skipped); len(skipped) != 1 || n[b.ID] != 1 {
		t.Fatalf("claim skipping A took %v, want B's last one", n)
	}
	// Nothing of B's left: a claim in turns fills up with A's.
	if n := byApp(claimApps(t, s, now, herald.ClaimOptions{Limit: 50, PerApp: 50})); n[a.app.ID] != 50 {
		t.Fatalf("claim in turns with only A left took %v, want 50 of A's", n)
	}
	// Deliveries not yet due wait, in turns as without.
	if got := claimApps(t, s, at(5), herald.ClaimOptions{Limit: 10, PerApp: 10}); len(got) != 0 {
		t.Fatalf("claim in turns before anything was due took %v", claimedIDs(got))
	}
}

// testEngineClaimAppsWindow: in turns, the Window bounds what is read of
// each application, and SkipEndpoints and PerEndpoint apply within it.
func testEngineClaimAppsWindow(t *testing.T, s herald.Store) {
	a := mustEngineFixture(t, s, 3)
	m1 := newMessage(a.app.ID, 10, "user.created")
	m2 := newMessage(a.app.ID, 11, "user.created")
	b := mustCreateApp(t, s, newApp(100))
	bep := mustCreateEndpoint(t, s, newEndpoint(b.ID, 101))
	bm := newMessage(b.ID, 110, "user.created")
	mustCreateMessages(t, s, m1, m2, bm)
	now := at(200)
	windowed := func(window, perEndpoint int, skip ...string) []string {
		t.Helper()
		return sorted(claimedIDs(claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10, Window: window,
			PerEndpoint: perEndpoint, SkipEndpoints: skip})))
	}
	// A's window of one is m1's delivery to the skipped endpoint: nothing
	// of A's; B's window is its own.
	mustEqual(t, "claim in turns in a window of 1 behind a skipped endpoint", []string{pair(bm, bep)},
		windowed(1, 0, a.eps[0].ID))
	// A window of 6 holds all of A's: one per endpoint, the skipped one's
	// left alone.
	mustEqual(t, "claim in turns in a window of 6, one per endpoint, skipping one",
		sorted([]string{pair(m1, a.eps[1]), pair(m1, a.eps[2])}), windowed(6, 1, a.eps[0].ID))
	// Without a window, all of A's due deliveries are considered.
	got := claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10, SkipEndpoints: []string{a.eps[0].ID}})
	mustEqual(t, "claim in turns without a window", sorted([]string{pair(m2, a.eps[1]), pair(m2, a.eps[2])}),
		sorted(claimedIDs(got)))
}

// testEngineClaimAppsSkipFIFO: a skipped application's FIFO heads are left
// too; another application's are claimed.
func testEngineClaimAppsSkipFIFO(t *testing.T, s herald.Store) {
	app, fifo, _ := mustFIFOFixture(t, s)
	other := mustCreateApp(t, s, newApp(100))
	ofifo := newEndpoint(other.ID, 101)
	ofifo.Ordering = herald.OrderingFIFO
	mustCreateEndpoint(t, s, ofifo)
	m := newMessage(app.ID, 10, "user.created")
	om := newMessage(other.ID, 110, "user.created")
	mustCreateMessages(t, s, m, om)
	now := at(200)
	got := claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10, SkipApps: []string{app.ID}})
	mustEqual(t, "claim in turns skipping the first application", []string{pair(om, ofifo)}, claimedIDs(got))
	got = claimApps(t, s, now, herald.ClaimOptions{Limit: 10, PerApp: 10})
	for _, c := range got {
		if c.Delivery.AppID != app.ID {
			t.Fatalf("claimed %s of %s, want the first application's only", c.Delivery.ID, c.Delivery.AppID)
		}
	}
	if !slices.Contains(claimedIDs(got), pair(m, fifo)) {
		t.Fatalf("claim in turns took %v, want the FIFO head %s among them", claimedIDs(got), pair(m, fifo))
	}
}

func testEngineClaimSharesMessage(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 3)
	m := newMessage(f.app.ID, 10, "user.created")
	m.Channels = []string{"ch"}
	m.Tags = []string{"tag"}
	m.EventID = "evt"
	other := newMessage(f.app.ID, 11, "user.updated")
	mustCreateMessages(t, s, m, other)
	claims := claim(t, s, nodeA, at(50), 10)
	if len(claims) != 6 {
		t.Fatalf("got %d claims, want 6", len(claims))
	}
	byMsg := map[string]*herald.Message{}
	for _, c := range claims {
		if c.Message.ID != c.Delivery.MessageID {
			t.Fatalf("claim of delivery %s carries message %s", c.Delivery.MessageID, c.Message.ID)
		}
		if prev, ok := byMsg[c.Message.ID]; ok && prev != c.Message {
			t.Fatalf("claims of message %s carry different *Message values", c.Message.ID)
		}
		byMsg[c.Message.ID] = c.Message
	}
	mustEqual(t, "shared message", m, byMsg[m.ID])
	mustEqual(t, "other message", other, byMsg[other.ID])
}

func testEngineRecordOutcomes(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	names := []string{"succeeded", "retry", "failed", "canceled", "errored"}
	msgs := newMessages(f.app.ID, len(names))
	mustCreateMessages(t, s, msgs...)
	// One delivery was resent: its first attempt after the claim is manual.
	mustOK(t, "ResendDelivery", s.ResendDelivery(t.Context(), f.app.ID, msgs[1].ID, ep.ID, at(20)))
	claims := claim(t, s, nodeA, at(50), 10)
	mustEqual(t, "claims", []string{pair(msgs[0], ep), pair(msgs[2], ep), pair(msgs[3], ep), pair(msgs[4], ep), pair(msgs[1], ep)},
		claimedIDs(claims))
	byMsg := map[string]herald.Claim{}
	for _, c := range claims {
		byMsg[c.Delivery.MessageID] = c
	}
	c0, c1, c2, c3, c4 := byMsg[msgs[0].ID], byMsg[msgs[1].ID], byMsg[msgs[2].ID], byMsg[msgs[3].ID], byMsg[msgs[4].ID]
	if c1.Delivery.Trigger != herald.TriggerManual {
		t.Fatalf("resent delivery claimed with trigger %v, want manual", c1.Delivery.Trigger)
	}

	ok := newAttempt(c0, 60, herald.AttemptSucceeded, 204)
	// Sub-microsecond digits are truncated by the store, both in the time
	// and in the duration.
	ok.CreatedAt = ok.CreatedAt.Add(123456789 * time.Nanosecond)
	ok.Duration = 1234567891 * time.Nanosecond
	retry := newAttempt(c1, 61, herald.AttemptFailed, 503)
	// A body over the limit is cut at MaxResponseBody.
	retry.Response = []byte(strings.Repeat("x", herald.MaxResponseBody+100))
	failed := newAttempt(c2, 62, herald.AttemptFailed, 500)
	errored := newAttempt(c4, 63, herald.AttemptFailed, 0)
	errored.Response = nil
	errored.Error = "dial tcp: connection refused"
	next := at(300).Add(500 * time.Microsecond)
	mustRecord(t, s,
		herald.AttemptOutcome{DeliveryID: c0.Delivery.ID, Attempt: ok, LeaseOwner: nodeA, Status: herald.DeliverySucceeded},
		herald.AttemptOutcome{DeliveryID: c1.Delivery.ID, Attempt: retry, LeaseOwner: nodeA, Status: herald.DeliveryPending, NextAttemptAt: next},
		herald.AttemptOutcome{DeliveryID: c2.Delivery.ID, Attempt: failed, LeaseOwner: nodeA, Status: herald.DeliveryFailed},
		// A delivery canceled without a request: no attempt row, no count.
		herald.AttemptOutcome{DeliveryID: c3.Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliveryCanceled},
		herald.AttemptOutcome{DeliveryID: c4.Delivery.ID, Attempt: errored, LeaseOwner: nodeA, Status: herald.DeliveryFailed},
	)

	// The deliveries: new status, next attempt (kept when the outcome has
	// none), one more attempt when one was made, trigger back to
	// scheduled, lease cleared.
	wantDel := func(c herald.Claim, status herald.DeliveryStatus, nextAt time.Time, attempts int) *herald.Delivery {
		d := *c.Delivery
		d.Status, d.NextAttemptAt, d.Attempts = status, nextAt, attempts
		d.Trigger, d.LeaseOwner, d.LeaseExpiresAt = herald.TriggerScheduled, "", time.Time{}
		return &d
	}
	for i, want := range []*herald.Delivery{
		wantDel(c0, herald.DeliverySucceeded, c0.Delivery.NextAttemptAt, 1),
		wantDel(c1, herald.DeliveryPending, next, 1),
		wantDel(c2, herald.DeliveryFailed, c2.Delivery.NextAttemptAt, 1),
		wantDel(c3, herald.DeliveryCanceled, c3.Delivery.NextAttemptAt, 0),
		wantDel(c4, herald.DeliveryFailed, c4.Delivery.NextAttemptAt, 1),
	} {
		mustEqual(t, names[i]+" delivery", want, deliveryOf(t, s, msgs[i], ep.ID), ignoreTimes)
	}

	// The attempts round-trip every field: times and durations to the
	// microsecond, the body cut at MaxResponseBody.
	stored := func(a *herald.Attempt) *herald.Attempt {
		w := *a
		w.CreatedAt = w.CreatedAt.Truncate(time.Microsecond)
		w.Duration = w.Duration.Truncate(time.Microsecond)
		if len(w.Response) > herald.MaxResponseBody {
			w.Response = w.Response[:herald.MaxResponseBody]
		}
		return &w
	}
	for _, a := range []*herald.Attempt{ok, retry, failed, errored} {
		got, err := s.GetAttempt(t.Context(), f.app.ID, a.MessageID, a.ID)
		mustOK(t, "GetAttempt "+a.ID, err)
		mustEqual(t, "stored attempt", stored(a), got)
	}
	listed, err := s.ListAttempts(t.Context(), f.app.ID, herald.AttemptListOptions{
		ListOptions: herald.ListOptions{Limit: 10}, EndpointID: ep.ID})
	mustOK(t, "ListAttempts", err)
	mustEqual(t, "listed attempts", []*herald.Attempt{stored(ok), stored(retry), stored(failed), stored(errored)}, listed)

	// The retried delivery is due again at its next attempt, not before,
	// and scheduled now.
	if c := claim(t, s, nodeA, next.Add(-time.Microsecond), 10); len(c) != 0 {
		t.Fatalf("claimed %v before the retry was due", claimedIDs(c))
	}
	again := claim(t, s, nodeA, next, 10)
	mustEqual(t, "retry claim", []string{pair(msgs[1], ep)}, claimedIDs(again))
	if again[0].Delivery.Attempts != 1 || again[0].Delivery.Trigger != herald.TriggerScheduled {
		t.Fatalf("retry claimed with %d attempts and trigger %v, want 1 and scheduled", again[0].Delivery.Attempts, again[0].Delivery.Trigger)
	}

	// An outcome status that is not a delivery's next state is refused.
	err = s.RecordAttempts(t.Context(), []herald.AttemptOutcome{{DeliveryID: again[0].Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliverySending}})
	mustCode(t, "outcome setting sending", err, herald.EINVALID)
}

func testEngineRecordDisablesEndpoint(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	gone, kept := f.eps[0], f.eps[1]
	msgs := newMessages(f.app.ID, 4)
	mustCreateMessages(t, s, msgs...)
	// Claim msgs[0] and msgs[1] of the gone endpoint; msgs[2] and msgs[3]
	// stay pending for both endpoints.
	claims := claim(t, s, nodeA, at(11), 10, kept.ID)
	mustEqual(t, "claims", []string{pair(msgs[0], gone), pair(msgs[1], gone)}, claimedIDs(claims))

	a := newAttempt(claims[0], 60, herald.AttemptFailed, 410)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: claims[0].Delivery.ID, Attempt: a, LeaseOwner: nodeA,
		Status: herald.DeliveryFailed, DisableEndpoint: true})

	if ep := mustGetEndpoint(t, s, f.app.ID, gone.ID); !ep.Disabled {
		t.Fatal("endpoint that answered 410 is still enabled")
	}
	if ep := mustGetEndpoint(t, s, f.app.ID, kept.ID); ep.Disabled {
		t.Fatal("the other endpoint was disabled too")
	}
	wantStatus := map[string]herald.DeliveryStatus{
		pair(msgs[0], gone): herald.DeliveryFailed,
		// Still leased to the dispatcher, which will cancel it itself.
		pair(msgs[1], gone): herald.DeliverySending,
		pair(msgs[2], gone): herald.DeliveryCanceled,
		pair(msgs[3], gone): herald.DeliveryCanceled,
		pair(msgs[0], kept): herald.DeliveryPending,
		pair(msgs[1], kept): herald.DeliveryPending,
		pair(msgs[2], kept): herald.DeliveryPending,
		pair(msgs[3], kept): herald.DeliveryPending,
	}
	got := map[string]herald.DeliveryStatus{}
	for _, m := range msgs {
		for _, d := range mustListDeliveries(t, s, f.app.ID, m.ID) {
			got[d.MessageID+"/"+d.EndpointID] = d.Status
		}
	}
	mustEqual(t, "delivery statuses", wantStatus, got)
	stored, err := s.GetAttempt(t.Context(), f.app.ID, msgs[0].ID, a.ID)
	mustOK(t, "GetAttempt", err)
	if stored.ResponseStatus != 410 {
		t.Fatalf("attempt status code %d, want 410", stored.ResponseStatus)
	}
}

func testEngineRecordStolenLease(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	m1 := newMessage(f.app.ID, 10, "user.created")
	m2 := newMessage(f.app.ID, 11, "user.created")
	mustCreateMessages(t, s, m1, m2)
	claims := claim(t, s, nodeA, at(20), 10)
	mustEqual(t, "claims", []string{pair(m1, ep), pair(m2, ep)}, claimedIDs(claims))

	// An outcome from an owner that never held the lease is skipped whole,
	// while the rest of the batch is written.
	wrong := newAttempt(claims[0], 60, herald.AttemptSucceeded, 200)
	right := newAttempt(claims[1], 61, herald.AttemptSucceeded, 200)
	mustRecord(t, s,
		herald.AttemptOutcome{DeliveryID: claims[0].Delivery.ID, Attempt: wrong, LeaseOwner: nodeB, Status: herald.DeliverySucceeded},
		herald.AttemptOutcome{DeliveryID: claims[1].Delivery.ID, Attempt: right, LeaseOwner: nodeA, Status: herald.DeliverySucceeded},
	)
	mustEqual(t, "delivery of the skipped outcome", claims[0].Delivery, deliveryOf(t, s, m1, ep.ID), ignoreTimes)
	_, err := s.GetAttempt(t.Context(), f.app.ID, m1.ID, wrong.ID)
	mustCode(t, "attempt of the skipped outcome", err, herald.ENOTFOUND)
	if d := deliveryOf(t, s, m2, ep.ID); d.Status != herald.DeliverySucceeded {
		t.Fatalf("delivery of the good outcome is %s, want succeeded", d.Status)
	}

	// Node A's lease expires; the rescuer returns the delivery and node B
	// claims it. A's late outcome must not touch B's delivery.
	n, err := s.RescueExpired(t.Context(), at(20).Add(leaseFor+time.Second), 10)
	mustOK(t, "RescueExpired", err)
	if n != 1 {
		t.Fatalf("rescued %d, want 1", n)
	}
	reclaimed := claim(t, s, nodeB, at(100), 10)
	mustEqual(t, "reclaim", []string{pair(m1, ep)}, claimedIDs(reclaimed))
	late := newAttempt(claims[0], 62, herald.AttemptFailed, 500)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: claims[0].Delivery.ID, Attempt: late, LeaseOwner: nodeA,
		Status: herald.DeliveryFailed, DisableEndpoint: true})
	mustEqual(t, "B's delivery after A's late outcome", reclaimed[0].Delivery, deliveryOf(t, s, m1, ep.ID), ignoreTimes)
	_, err = s.GetAttempt(t.Context(), f.app.ID, m1.ID, late.ID)
	mustCode(t, "attempt of the late outcome", err, herald.ENOTFOUND)
	if mustGetEndpoint(t, s, f.app.ID, ep.ID).Disabled {
		t.Fatal("a skipped outcome disabled the endpoint")
	}
	// B's own outcome goes through.
	mine := newAttempt(reclaimed[0], 63, herald.AttemptSucceeded, 200)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: reclaimed[0].Delivery.ID, Attempt: mine, LeaseOwner: nodeB, Status: herald.DeliverySucceeded})
	if d := deliveryOf(t, s, m1, ep.ID); d.Status != herald.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("delivery after B's outcome: %s with %d attempts, want succeeded with 1", d.Status, d.Attempts)
	}
	// A second outcome for a delivery already finished is skipped too.
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: reclaimed[0].Delivery.ID, Attempt: newAttempt(reclaimed[0], 64, herald.AttemptFailed, 500),
		LeaseOwner: nodeB, Status: herald.DeliveryFailed})
	if d := deliveryOf(t, s, m1, ep.ID); d.Status != herald.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("delivery after a duplicate outcome: %s with %d attempts, want succeeded with 1", d.Status, d.Attempts)
	}

	// Two outcomes of one delivery in one batch: the first ends the lease,
	// so the second is skipped, as it would be in a batch of its own.
	m3 := newMessage(f.app.ID, 12, "user.created")
	mustCreateMessages(t, s, m3)
	c3 := claim(t, s, nodeA, at(200), 10)
	mustEqual(t, "claim of the third message", []string{pair(m3, ep)}, claimedIDs(c3))
	firstOut := newAttempt(c3[0], 201, herald.AttemptSucceeded, 200)
	again := newAttempt(c3[0], 202, herald.AttemptFailed, 500)
	mustRecord(t, s,
		herald.AttemptOutcome{DeliveryID: c3[0].Delivery.ID, Attempt: firstOut, LeaseOwner: nodeA, Status: herald.DeliverySucceeded},
		herald.AttemptOutcome{DeliveryID: c3[0].Delivery.ID, Attempt: again, LeaseOwner: nodeA, Status: herald.DeliveryFailed},
	)
	if d := deliveryOf(t, s, m3, ep.ID); d.Status != herald.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("delivery after two outcomes in one batch: %s with %d attempts, want succeeded with 1", d.Status, d.Attempts)
	}
	_, err = s.GetAttempt(t.Context(), f.app.ID, m3.ID, again.ID)
	mustCode(t, "attempt of the second outcome in the batch", err, herald.ENOTFOUND)
}

// reclaimed stores m, claims its one delivery (to ep) for node A at from,
// lets that lease expire and be rescued, and claims it for node A again:
// it returns both claims and the moment of the rescue.
func reclaimed(t *testing.T, s herald.Store, m *herald.Message, ep *herald.Endpoint, from time.Time) (first, second []herald.Claim, rescued time.Time) {
	t.Helper()
	mustCreateMessages(t, s, m)
	first = claim(t, s, nodeA, from, 10)
	mustEqual(t, "first claim", []string{pair(m, ep)}, claimedIDs(first))
	rescued = from.Add(leaseFor + time.Second)
	if n, err := s.RescueExpired(t.Context(), rescued, 10); err != nil || n != 1 {
		t.Fatalf("RescueExpired: %d, %v; want 1", n, err)
	}
	second = claim(t, s, nodeA, rescued.Add(time.Second), 10)
	mustEqual(t, "second claim", []string{pair(m, ep)}, claimedIDs(second))
	if second[0].Delivery.LeaseExpiresAt.Equal(first[0].Delivery.LeaseExpiresAt) {
		t.Fatal("the second claim has the first one's lease expiry")
	}
	return first, second, rescued
}

// testEngineRecordOldClaim: a delivery claimed by node A whose lease
// expires is rescued and claimed by node A again. A late outcome of the
// first claim names the first claim's lease expiry and is dropped; the
// outcome of the second claim is written.
func testEngineRecordOldClaim(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	m := newMessage(f.app.ID, 10, "user.created")
	first, second, rescued := reclaimed(t, s, m, ep, at(20))

	late := newAttempt(first[0], 60, herald.AttemptFailed, 500)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: first[0].Delivery.ID, Attempt: late, LeaseOwner: nodeA,
		LeaseUntil: first[0].Delivery.LeaseExpiresAt, Status: herald.DeliveryFailed})
	mustEqual(t, "delivery after the first claim's late outcome", second[0].Delivery, deliveryOf(t, s, m, ep.ID), ignoreTimes)
	_, err := s.GetAttempt(t.Context(), f.app.ID, m.ID, late.ID)
	mustCode(t, "attempt of the late outcome", err, herald.ENOTFOUND)

	mine := newAttempt(second[0], 61, herald.AttemptSucceeded, 200)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: second[0].Delivery.ID, Attempt: mine, LeaseOwner: nodeA,
		LeaseUntil: second[0].Delivery.LeaseExpiresAt, Status: herald.DeliverySucceeded})
	if d := deliveryOf(t, s, m, ep.ID); d.Status != herald.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("delivery after the second claim's outcome: %s with %d attempts, want succeeded with 1", d.Status, d.Attempts)
	}

	// The same in one batch: the old claim's outcome first, then the new
	// claim's. The first is dropped and the second written, as one by one.
	m2 := newMessage(f.app.ID, 11, "user.created")
	old, current, _ := reclaimed(t, s, m2, ep, rescued.Add(2*time.Second))
	stale := newAttempt(old[0], 70, herald.AttemptFailed, 500)
	fresh := newAttempt(current[0], 71, herald.AttemptSucceeded, 200)
	mustRecord(t, s,
		herald.AttemptOutcome{DeliveryID: old[0].Delivery.ID, Attempt: stale, LeaseOwner: nodeA,
			LeaseUntil: old[0].Delivery.LeaseExpiresAt, Status: herald.DeliveryFailed},
		herald.AttemptOutcome{DeliveryID: current[0].Delivery.ID, Attempt: fresh, LeaseOwner: nodeA,
			LeaseUntil: current[0].Delivery.LeaseExpiresAt, Status: herald.DeliverySucceeded},
	)
	if d := deliveryOf(t, s, m2, ep.ID); d.Status != herald.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("delivery after an old and a new claim's outcomes in one batch: %s with %d attempts, want succeeded with 1", d.Status, d.Attempts)
	}
	_, err = s.GetAttempt(t.Context(), f.app.ID, m2.ID, stale.ID)
	mustCode(t, "attempt of the old claim in the batch", err, herald.ENOTFOUND)
	_, err = s.GetAttempt(t.Context(), f.app.ID, m2.ID, fresh.ID)
	mustOK(t, "attempt of the new claim in the batch", err)
}

// testEngineRecordGoneInBatch: a 410 Gone disables the endpoint and
// cancels its pending deliveries, wherever the outcome stands in its
// batch: a retry of the same endpoint recorded in the same batch, before
// or after it, is canceled too, so a disabled endpoint keeps nothing
// pending.
func testEngineRecordGoneInBatch(goneFirst bool) func(t *testing.T, s herald.Store) {
	return func(t *testing.T, s herald.Store) {
		f := mustEngineFixture(t, s, 1)
		ep := f.eps[0]
		msgs := newMessages(f.app.ID, 3)
		mustCreateMessages(t, s, msgs...)
		c := claim(t, s, nodeA, at(200), 2)
		mustEqual(t, "claims", []string{pair(msgs[0], ep), pair(msgs[1], ep)}, claimedIDs(c))
		gone := herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliveryFailed,
			DisableEndpoint: true, Attempt: newAttempt(c[0], 201, herald.AttemptFailed, 410)}
		retry := herald.AttemptOutcome{DeliveryID: c[1].Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliveryPending,
			NextAttemptAt: at(900), Attempt: newAttempt(c[1], 202, herald.AttemptFailed, 500)}
		if goneFirst {
			mustRecord(t, s, gone, retry)
		} else {
			mustRecord(t, s, retry, gone)
		}
		if !mustGetEndpoint(t, s, f.app.ID, ep.ID).Disabled {
			t.Fatal("endpoint not disabled")
		}
		want := []herald.DeliveryStatus{herald.DeliveryFailed, herald.DeliveryCanceled, herald.DeliveryCanceled}
		for i, m := range msgs {
			if d := deliveryOf(t, s, m, ep.ID); d.Status != want[i] {
				t.Errorf("delivery of message %d is %s, want %s", i, d.Status, want[i])
			}
		}
	}
}

// testEngineReleaseOldClaim: a release names the claims it gives back. A
// delivery whose lease expired, was rescued and was claimed again by the
// same owner is not given back by a release of the first claim, only by
// one of the second.
func testEngineReleaseOldClaim(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	m := newMessage(f.app.ID, 10, "user.created")
	first, second, expired := reclaimed(t, s, m, ep, at(20))

	mustOK(t, "release of the first claim", s.ReleaseDeliveries(t.Context(), nodeA,
		[]herald.LeaseRef{{DeliveryID: first[0].Delivery.ID, Until: first[0].Delivery.LeaseExpiresAt}}, expired.Add(2*time.Second)))
	mustEqual(t, "delivery after a release of the first claim", second[0].Delivery, deliveryOf(t, s, m, ep.ID), ignoreTimes)

	mustOK(t, "release of the second claim", s.ReleaseDeliveries(t.Context(), nodeA,
		[]herald.LeaseRef{{DeliveryID: second[0].Delivery.ID, Until: second[0].Delivery.LeaseExpiresAt}}, expired.Add(3*time.Second)))
	if d := deliveryOf(t, s, m, ep.ID); d.Status != herald.DeliveryPending || d.LeaseOwner != "" || !d.NextAttemptAt.Equal(expired.Add(3*time.Second)) {
		t.Fatalf("delivery after a release of the second claim: %s, owner %q, due %v; want pending, no owner, due at the release",
			d.Status, d.LeaseOwner, d.NextAttemptAt)
	}
}

// testEngineRecordLargeBatch records one batch of outcomes larger than a
// store writes in one statement, with lost leases and attempt-less
// outcomes among them: every written outcome keeps its own values.
func testEngineRecordLargeBatch(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	const n = 75
	msgs := newMessages(f.app.ID, n)
	mustCreateMessages(t, s, msgs...)
	claims := claim(t, s, nodeA, at(200), n)
	if len(claims) != n {
		t.Fatalf("claimed %d, want %d", len(claims), n)
	}
	var outcomes []herald.AttemptOutcome
	for i, c := range claims {
		o := herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: nodeA, Status: herald.DeliverySucceeded,
			Attempt: newAttempt(c, 300+i, herald.AttemptSucceeded, 200+i%7)}
		switch i % 5 {
		case 1: // a retry
			o.Status, o.Attempt.Status, o.NextAttemptAt = herald.DeliveryPending, herald.AttemptFailed, at(1000+i)
		case 2: // a lost lease
			o.LeaseOwner = nodeB
		case 3: // a deferral: no attempt
			o.Status, o.Attempt, o.NextAttemptAt = herald.DeliveryPending, nil, at(2000+i)
		}
		outcomes = append(outcomes, o)
	}
	mustRecord(t, s, outcomes...)
	for i, o := range outcomes {
		d := deliveryOf(t, s, claims[i].Message, ep.ID)
		want := *claims[i].Delivery
		if o.LeaseOwner == nodeA {
			want.Status, want.LeaseOwner, want.LeaseExpiresAt = o.Status, "", time.Time{}
			if !o.NextAttemptAt.IsZero() {
				want.NextAttemptAt = o.NextAttemptAt
			}
			if o.Attempt != nil {
				want.Attempts++
				want.Trigger = herald.TriggerScheduled
			}
		}
		mustEqual(t, fmt.Sprintf("delivery %d", i), &want, d, ignoreTimes)
		if o.Attempt == nil {
			continue
		}
		got, err := s.GetAttempt(t.Context(), f.app.ID, claims[i].Message.ID, o.Attempt.ID)
		if o.LeaseOwner != nodeA {
			mustCode(t, fmt.Sprintf("attempt %d of a lost lease", i), err, herald.ENOTFOUND)
			continue
		}
		mustOK(t, fmt.Sprintf("attempt %d", i), err)
		if got.ResponseStatus != o.Attempt.ResponseStatus || string(got.Response) != string(o.Attempt.Response) || got.URL != o.Attempt.URL {
			t.Errorf("attempt %d: status %d, body %s, url %s; want %d, %s, %s", i, got.ResponseStatus, got.Response, got.URL,
				o.Attempt.ResponseStatus, o.Attempt.Response, o.Attempt.URL)
		}
	}
}

func testEngineRelease(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	m1 := newMessage(f.app.ID, 10, "user.created")
	m2 := newMessage(f.app.ID, 11, "user.created")
	m3 := newMessage(f.app.ID, 12, "user.created")
	mustCreateMessages(t, s, m1, m2, m3)
	// One attempt made first, so the count is something to keep; m1 is
	// due again between m2 and m3.
	first := claim(t, s, nodeA, at(20), 1)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: first[0].Delivery.ID, Attempt: newAttempt(first[0], 21, herald.AttemptFailed, 500),
		LeaseOwner: nodeA, Status: herald.DeliveryPending, NextAttemptAt: at(11).Add(time.Second / 2)})
	a := claim(t, s, nodeA, at(30), 2)
	b := claim(t, s, nodeB, at(30), 1)
	mustEqual(t, "claims", []string{pair(m2, ep), pair(m1, ep), pair(m3, ep)}, append(claimedIDs(a), claimedIDs(b)...))

	// Node A releases everything it was given and, by mistake, B's too:
	// only A's come back, due now, with no attempt counted.
	refs := []herald.LeaseRef{
		{DeliveryID: a[0].Delivery.ID, Until: a[0].Delivery.LeaseExpiresAt},
		{DeliveryID: a[1].Delivery.ID}, // zero Until: any lease of the owner
		{DeliveryID: b[0].Delivery.ID, Until: b[0].Delivery.LeaseExpiresAt},
	}
	mustOK(t, "ReleaseDeliveries", s.ReleaseDeliveries(t.Context(), nodeA, refs, at(40)))
	for _, c := range a {
		want := *c.Delivery
		want.Status, want.NextAttemptAt, want.LeaseOwner, want.LeaseExpiresAt = herald.DeliveryPending, at(40), "", time.Time{}
		mustEqual(t, "released delivery", &want, deliveryOf(t, s, c.Message, ep.ID), ignoreTimes)
	}
	mustEqual(t, "B's delivery", b[0].Delivery, deliveryOf(t, s, m3, ep.ID), ignoreTimes)
	if c := claim(t, s, nodeB, at(39), 10); len(c) != 0 {
		t.Fatalf("released deliveries claimed before now: %v", claimedIDs(c))
	}
	mustEqual(t, "claims after release", []string{pair(m1, ep), pair(m2, ep)}, sorted(claimedIDs(claim(t, s, nodeB, at(40), 10))))
	mustOK(t, "release nothing", s.ReleaseDeliveries(t.Context(), nodeA, nil, at(40)))
}

// testEngineDeferKeepsTrigger: an outcome without an attempt (a delivery
// deferred by a circuit breaker or a rate limit) keeps a manual resend
// manual; the attempt that follows resets it to scheduled.
func testEngineDeferKeepsTrigger(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	m := newMessage(f.app.ID, 10, "user.created")
	mustCreateMessages(t, s, m)
	mustOK(t, "ResendDelivery", s.ResendDelivery(t.Context(), f.app.ID, m.ID, ep.ID, at(11)))
	c := claim(t, s, nodeA, at(12), 1)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA,
		Status: herald.DeliveryPending, NextAttemptAt: at(20)})
	d := deliveryOf(t, s, m, ep.ID)
	if d.Trigger != herald.TriggerManual || d.Attempts != 0 || !d.NextAttemptAt.Equal(at(20)) {
		t.Fatalf("deferred delivery: trigger %d, %d attempts, due %v; want manual, 0, %v", d.Trigger, d.Attempts, d.NextAttemptAt, at(20))
	}
	c = claim(t, s, nodeA, at(20), 1)
	if len(c) != 1 || c[0].Delivery.Trigger != herald.TriggerManual {
		t.Fatalf("claimed after deferral: %+v", c)
	}
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, Attempt: newAttempt(c[0], 21, herald.AttemptSucceeded, 200),
		LeaseOwner: nodeA, Status: herald.DeliverySucceeded})
	if d := deliveryOf(t, s, m, ep.ID); d.Trigger != herald.TriggerScheduled || d.Attempts != 1 {
		t.Fatalf("after the attempt: trigger %d, %d attempts; want scheduled, 1", d.Trigger, d.Attempts)
	}
}

func testEngineRescue(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	msgs := newMessages(f.app.ID, 5)
	mustCreateMessages(t, s, msgs...)
	// Claim k takes message k (oldest due first) with a lease ending at
	// at(100+10*slot[k]): expiry order is messages 1, 3, 4, 0, 2, unlike
	// due order.
	slot := []int{3, 0, 4, 1, 2}
	for k := range msgs {
		c, err := s.ClaimDue(t.Context(), herald.ClaimOptions{Owner: nodeA, Now: at(50), LeaseUntil: at(100 + 10*slot[k]), Limit: 1})
		mustOK(t, "ClaimDue", err)
		mustEqual(t, fmt.Sprintf("claim %d", k), []string{pair(msgs[k], ep)}, claimedIDs(c))
	}
	// rescued lists the messages whose delivery is pending again, checking
	// that it lost its lease and counts no attempt.
	rescued := func() []string {
		var out []string
		for _, m := range msgs {
			d := deliveryOf(t, s, m, ep.ID)
			if d.Status != herald.DeliveryPending {
				continue
			}
			if d.LeaseOwner != "" || !d.LeaseExpiresAt.IsZero() || d.Attempts != 0 {
				t.Fatalf("rescued delivery %+v keeps its lease or counts an attempt", d)
			}
			out = append(out, d.MessageID)
		}
		return out
	}

	// A lease ending exactly now has not expired yet.
	n, err := s.RescueExpired(t.Context(), at(100), 10)
	mustOK(t, "RescueExpired at the first expiry", err)
	if n != 0 {
		t.Fatalf("rescued %d at the expiry instant, want 0", n)
	}
	// Three have expired before at(125); a limit of 2 takes the two
	// oldest expiries.
	n, err = s.RescueExpired(t.Context(), at(125), 2)
	mustOK(t, "RescueExpired", err)
	if n != 2 {
		t.Fatalf("rescued %d, want 2", n)
	}
	mustEqual(t, "rescued first", []string{msgs[1].ID, msgs[3].ID}, rescued())
	if d := deliveryOf(t, s, msgs[1], ep.ID); !d.NextAttemptAt.Equal(at(125)) {
		t.Fatalf("rescued delivery due at %v, want now %v", d.NextAttemptAt, at(125))
	}
	n, err = s.RescueExpired(t.Context(), at(125), 10)
	mustOK(t, "RescueExpired", err)
	if n != 1 {
		t.Fatalf("second rescue got %d, want 1", n)
	}
	mustEqual(t, "rescued second", []string{msgs[1].ID, msgs[3].ID, msgs[4].ID}, rescued())
	n, err = s.RescueExpired(t.Context(), at(1000), 0)
	mustOK(t, "RescueExpired with limit 0", err)
	if n != 0 {
		t.Fatalf("rescue with limit 0 got %d", n)
	}
	// The rescued deliveries are claimable again, due at the rescue time.
	mustEqual(t, "claims after rescue", []string{pair(msgs[1], ep), pair(msgs[3], ep), pair(msgs[4], ep)},
		sorted(claimedIDs(claim(t, s, nodeB, at(125), 10))))
}
