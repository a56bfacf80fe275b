package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var deliveryTests = []namedTest{
	{"Resend", testDeliveryResend},
	{"Recover", testDeliveryRecover},
	{"ReplayMissing", testDeliveryReplayMissing},
	{"ReplayMissingMany", testDeliveryReplayMissingMany},
	{"Stats", testDeliveryStats},
	{"EndpointMessages", testDeliveryEndpointMessages},
	{"EndpointMessagesFilters", testDeliveryEndpointMessagesFilters},
}

// finish claims the deliveries of msgs to ep (and nothing else) at now and
// records status for each, with an attempt unless status is canceled. The
// other deliveries it had to claim go back due when they were due before.
func finish(t *testing.T, s herald.Store, ep *herald.Endpoint, now time.Time, status herald.DeliveryStatus, msgs ...*herald.Message) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.ID] = true
	}
	var skip []string
	eps, err := s.ListEndpoints(t.Context(), ep.AppID, herald.ListOptions{Limit: 1000})
	mustOK(t, "ListEndpoints", err)
	for _, e := range eps {
		if e.ID != ep.ID {
			skip = append(skip, e.ID)
		}
	}
	claims := claim(t, s, nodeA, now, 1000, skip...)
	var outcomes []herald.AttemptOutcome
	release := map[time.Time][]herald.LeaseRef{}
	for i, c := range claims {
		if !want[c.Delivery.MessageID] {
			due := c.Delivery.NextAttemptAt
			release[due] = append(release[due], herald.LeaseRef{DeliveryID: c.Delivery.ID, Until: c.Delivery.LeaseExpiresAt})
			continue
		}
		delete(want, c.Delivery.MessageID)
		o := herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: nodeA, Status: status}
		if status != herald.DeliveryCanceled {
			code := 500
			if status == herald.DeliverySucceeded {
				code = 200
			}
			o.Attempt = newAttempt(c, 1000+i, herald.AttemptFailed, code)
		}
		if status == herald.DeliveryPending {
			o.NextAttemptAt = now.Add(time.Hour)
		}
		outcomes = append(outcomes, o)
	}
	if len(want) > 0 {
		t.Fatalf("finish: %d messages had no due delivery to %s", len(want), ep.ID)
	}
	mustRecord(t, s, outcomes...)
	for due, refs := range release {
		mustOK(t, "ReleaseDeliveries", s.ReleaseDeliveries(t.Context(), nodeA, refs, due))
	}
}

func testDeliveryResend(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	routed := mustCreateEndpoint(t, s, newEndpoint(app.ID, 3))
	filtered := newEndpoint(app.ID, 4)
	filtered.FilterTypes = []string{"invoice.paid"}
	mustCreateEndpoint(t, s, filtered)
	otherEp := mustCreateEndpoint(t, s, newEndpoint(other.ID, 5))
	m := newMessage(app.ID, 10, "user.created")
	otherMsg := newMessage(other.ID, 11, "user.created")
	mustCreateMessages(t, s, m, otherMsg)
	if len(mustListDeliveries(t, s, app.ID, m.ID)) != 1 {
		t.Fatal("the filtered endpoint got the message")
	}

	// Never routed: a delivery is created, pending, due now, manual.
	mustOK(t, "resend to the filtered endpoint", s.ResendDelivery(t.Context(), app.ID, m.ID, filtered.ID, at(20)))
	created := deliveryOf(t, s, m, filtered.ID)
	want := &herald.Delivery{ID: created.ID, AppID: app.ID, MessageID: m.ID, EndpointID: filtered.ID,
		Status: herald.DeliveryPending, NextAttemptAt: at(20), Trigger: herald.TriggerManual}
	mustEqual(t, "created delivery", want, created, ignoreTimes)
	checkDeliveryIDs(t, []*herald.Delivery{created})
	// Resending a pending one moves it to the new time; no second row.
	mustOK(t, "resend again", s.ResendDelivery(t.Context(), app.ID, m.ID, filtered.ID, at(21)))
	want.NextAttemptAt = at(21)
	mustEqual(t, "re-resent delivery", want, deliveryOf(t, s, m, filtered.ID), ignoreTimes)
	if n := len(mustListDeliveries(t, s, app.ID, m.ID)); n != 2 {
		t.Fatalf("message has %d deliveries, want 2", n)
	}

	// A failed delivery goes back to pending, manual, keeping its count.
	finish(t, s, routed, at(30), herald.DeliveryFailed, m)
	failed := deliveryOf(t, s, m, routed.ID)
	mustOK(t, "resend failed", s.ResendDelivery(t.Context(), app.ID, m.ID, routed.ID, at(40)))
	wantRequeued := *failed
	wantRequeued.Status, wantRequeued.NextAttemptAt, wantRequeued.Trigger = herald.DeliveryPending, at(40), herald.TriggerManual
	mustEqual(t, "requeued delivery", &wantRequeued, deliveryOf(t, s, m, routed.ID), ignoreTimes)
	if wantRequeued.Attempts != 1 {
		t.Fatalf("failed delivery has %d attempts, want 1", wantRequeued.Attempts)
	}

	// Being sent right now: ECONFLICT, nothing changes.
	claims := claim(t, s, nodeA, at(40), 10, filtered.ID, otherEp.ID)
	mustEqual(t, "claim", []string{pair(m, routed)}, claimedIDs(claims))
	if claims[0].Delivery.Trigger != herald.TriggerManual {
		t.Fatalf("resent delivery claimed with trigger %v, want manual", claims[0].Delivery.Trigger)
	}
	err := s.ResendDelivery(t.Context(), app.ID, m.ID, routed.ID, at(41))
	mustCode(t, "resend while sending", err, herald.ECONFLICT)
	mustEqual(t, "delivery being sent", claims[0].Delivery, deliveryOf(t, s, m, routed.ID), ignoreTimes)

	for _, c := range []struct{ name, app, msg, ep string }{
		{"unknown message", app.ID, id(herald.PrefixMessage, 99), routed.ID},
		{"unknown endpoint", app.ID, m.ID, id(herald.PrefixEndpoint, 99)},
		{"message of another app", app.ID, otherMsg.ID, routed.ID},
		{"endpoint of another app", app.ID, m.ID, otherEp.ID},
	} {
		mustCode(t, "resend of "+c.name, s.ResendDelivery(t.Context(), c.app, c.msg, c.ep, at(50)), herald.ENOTFOUND)
	}
	if n := len(mustListDeliveries(t, s, app.ID, m.ID)); n != 2 {
		t.Fatalf("message has %d deliveries after refused resends, want 2", n)
	}
}

func testDeliveryRecover(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	ep, otherEp := f.eps[0], f.eps[1]
	msgs := newMessages(f.app.ID, 6)
	mustCreateMessages(t, s, msgs...)
	// ep: 0, 2, 3, 5 failed; 1 succeeded; 4 pending. otherEp: all failed.
	finish(t, s, ep, at(20), herald.DeliveryFailed, msgs[0], msgs[2], msgs[3], msgs[5])
	finish(t, s, ep, at(21), herald.DeliverySucceeded, msgs[1])
	finish(t, s, otherEp, at(22), herald.DeliveryFailed, msgs...)
	before := map[string]*herald.Delivery{}
	for _, m := range msgs {
		before[m.ID] = deliveryOf(t, s, m, ep.ID)
	}

	// [at(12), at(15)): messages 2 and 3; 5 is at the excluded end.
	n, err := s.RecoverEndpoint(t.Context(), f.app.ID, ep.ID, at(12), at(15), at(30))
	mustOK(t, "RecoverEndpoint", err)
	if n != 2 {
		t.Fatalf("recovered %d, want 2", n)
	}
	for i, m := range msgs {
		want := *before[m.ID]
		if i == 2 || i == 3 {
			want.Status, want.NextAttemptAt, want.Trigger = herald.DeliveryPending, at(30), herald.TriggerManual
		}
		mustEqual(t, fmt.Sprintf("delivery %d after recover", i), &want, deliveryOf(t, s, m, ep.ID), ignoreTimes)
	}
	for _, m := range msgs {
		if d := deliveryOf(t, s, m, otherEp.ID); d.Status != herald.DeliveryFailed {
			t.Fatalf("the other endpoint's delivery of %s is %s, want failed", m.ID, d.Status)
		}
	}
	// No upper bound: the rest of the failed ones from since on.
	n, err = s.RecoverEndpoint(t.Context(), f.app.ID, ep.ID, at(10), time.Time{}, at(31))
	mustOK(t, "RecoverEndpoint without until", err)
	if n != 2 {
		t.Fatalf("recovered %d without until, want 2 (messages 0 and 5)", n)
	}
	for _, i := range []int{0, 5} {
		if d := deliveryOf(t, s, msgs[i], ep.ID); d.Status != herald.DeliveryPending || d.Trigger != herald.TriggerManual {
			t.Fatalf("delivery %d is %s/%v, want pending/manual", i, d.Status, d.Trigger)
		}
	}
	_, err = s.RecoverEndpoint(t.Context(), f.app.ID, id(herald.PrefixEndpoint, 99), at(0), time.Time{}, at(31))
	mustCode(t, "recover unknown endpoint", err, herald.ENOTFOUND)
}

func testDeliveryReplayMissing(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	old := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	// Messages 10..17 exist before the endpoint does.
	types := []string{"user.created", "user.deleted"}
	var msgs []*herald.Message
	for i := range 8 {
		m := newMessage(app.ID, 10+i, types[i%2])
		if i == 4 {
			m.Channels = []string{"other"}
		}
		msgs = append(msgs, m)
	}
	mustCreateMessages(t, s, msgs...)
	ep := newEndpoint(app.ID, 30)
	ep.FilterTypes = []string{"user.created"}
	mustCreateEndpoint(t, s, ep)
	// Message 18 came after the endpoint: routed, and already delivered.
	routed := newMessage(app.ID, 18, "user.created")
	mustCreateMessages(t, s, routed)
	finish(t, s, ep, at(40), herald.DeliverySucceeded, routed)
	routedBefore := deliveryOf(t, s, routed, ep.ID)

	// [at(11), at(19)): user.created messages 12, 14, 16 (even i, i >= 2);
	// 10 is before since, odd ones the endpoint filters out, 18 is routed.
	n, err := s.ReplayMissing(t.Context(), app.ID, ep.ID, at(11), at(19), at(50))
	mustOK(t, "ReplayMissing", err)
	if n != 3 {
		t.Fatalf("replayed %d, want 3", n)
	}
	for i, m := range msgs {
		var got []string
		for _, d := range mustListDeliveries(t, s, app.ID, m.ID) {
			got = append(got, d.EndpointID)
			if d.EndpointID == ep.ID {
				want := &herald.Delivery{ID: d.ID, AppID: app.ID, MessageID: m.ID, EndpointID: ep.ID,
					Status: herald.DeliveryPending, NextAttemptAt: at(50), Trigger: herald.TriggerManual}
				mustEqual(t, "replayed delivery", want, d, ignoreTimes)
			}
		}
		want := []string{old.ID}
		if i >= 2 && i%2 == 0 {
			want = append(want, ep.ID)
		}
		mustEqual(t, fmt.Sprintf("endpoints of message %d", i), want, got)
	}
	mustEqual(t, "routed delivery", routedBefore, deliveryOf(t, s, routed, ep.ID))

	// Twice is the same as once.
	n, err = s.ReplayMissing(t.Context(), app.ID, ep.ID, at(0), time.Time{}, at(60))
	mustOK(t, "ReplayMissing again", err)
	if n != 1 {
		t.Fatalf("replay over everything made %d, want 1 (message 10)", n)
	}
	n, err = s.ReplayMissing(t.Context(), app.ID, ep.ID, at(0), time.Time{}, at(70))
	mustOK(t, "ReplayMissing a third time", err)
	if n != 0 {
		t.Fatalf("replay made %d on a complete endpoint, want 0", n)
	}
	// A disabled endpoint accepts nothing today.
	off := newEndpoint(app.ID, 31)
	off.Disabled = true
	mustCreateEndpoint(t, s, off)
	n, err = s.ReplayMissing(t.Context(), app.ID, off.ID, at(0), time.Time{}, at(70))
	mustOK(t, "ReplayMissing to a disabled endpoint", err)
	if n != 0 {
		t.Fatalf("replay to a disabled endpoint made %d", n)
	}
	_, err = s.ReplayMissing(t.Context(), app.ID, id(herald.PrefixEndpoint, 99), at(0), time.Time{}, at(70))
	mustCode(t, "replay to an unknown endpoint", err, herald.ENOTFOUND)
}

func testDeliveryReplayMissingMany(t *testing.T, s herald.Store) {
	// More messages than a store would sensibly read at once, most sharing
	// one creation time, so any chunking must page through ties.
	const n = 1100
	app := mustCreateApp(t, s, newApp(1))
	msgs := make([]*herald.Message, n)
	for i := range msgs {
		msgs[i] = newMessage(app.ID, 10, "user.created")
		msgs[i].ID = herald.NewIDAt(herald.PrefixMessage, at(10))
		if i%3 == 0 {
			msgs[i].CreatedAt = at(11 + i%5)
		}
	}
	mustCreateMessages(t, s, msgs...)
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 100))
	got, err := s.ReplayMissing(t.Context(), app.ID, ep.ID, at(10), time.Time{}, at(200))
	mustOK(t, "ReplayMissing", err)
	if got != n {
		t.Fatalf("replayed %d, want %d", got, n)
	}
	stats, err := s.GetEndpointStats(t.Context(), app.ID, ep.ID, time.Time{}, time.Time{})
	mustOK(t, "GetEndpointStats", err)
	mustEqual(t, "stats after replay", herald.EndpointStats{Pending: n}, stats)
	got, err = s.ReplayMissing(t.Context(), app.ID, ep.ID, at(10), time.Time{}, at(201))
	mustOK(t, "ReplayMissing again", err)
	if got != 0 {
		t.Fatalf("second replay made %d, want 0", got)
	}
}

func testDeliveryStats(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	ep, otherEp := f.eps[0], f.eps[1]
	msgs := newMessages(f.app.ID, 9)
	mustCreateMessages(t, s, msgs...)
	// ep: 0-2 succeeded, 3 failed, 4 canceled, 5 sending, 6-8 pending
	// (6 after a failed try).
	finish(t, s, ep, at(30), herald.DeliverySucceeded, msgs[0], msgs[1], msgs[2])
	finish(t, s, ep, at(30), herald.DeliveryFailed, msgs[3])
	finish(t, s, ep, at(30), herald.DeliveryCanceled, msgs[4])
	finish(t, s, ep, at(30), herald.DeliveryPending, msgs[6])
	c := claim(t, s, nodeB, at(30), 1, otherEp.ID)
	mustEqual(t, "claim", []string{pair(msgs[5], ep)}, claimedIDs(c))
	// The other endpoint's deliveries never count.
	finish(t, s, otherEp, at(31), herald.DeliverySucceeded, msgs...)

	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         herald.EndpointStats
	}{
		// Canceled deliveries count as failed: they will never arrive.
		{"All", time.Time{}, time.Time{}, herald.EndpointStats{Success: 3, Pending: 3, Sending: 1, Fail: 2}},
		// [since, until) on the message's creation time.
		{"Window", at(12), at(16), herald.EndpointStats{Success: 1, Fail: 2, Sending: 1}},
		{"Since", at(16), time.Time{}, herald.EndpointStats{Pending: 3}},
		{"Until", time.Time{}, at(11), herald.EndpointStats{Success: 1}},
		{"Empty", at(100), time.Time{}, herald.EndpointStats{}},
	} {
		got, err := s.GetEndpointStats(t.Context(), f.app.ID, ep.ID, tc.since, tc.until)
		mustOK(t, "GetEndpointStats "+tc.name, err)
		mustEqual(t, "stats "+tc.name, tc.want, got)
	}
	// Each status lists what the stats count (the other endpoint's
	// succeeded deliveries never show).
	for _, tc := range []struct {
		status herald.DeliveryStatus
		want   []*herald.Message
	}{
		{herald.DeliverySucceeded, msgs[0:3]},
		{herald.DeliveryFailed, msgs[3:4]},
		{herald.DeliveryCanceled, msgs[4:5]},
		{herald.DeliverySending, msgs[5:6]},
		{herald.DeliveryPending, msgs[6:9]},
	} {
		list, err := s.ListEndpointMessages(t.Context(), f.app.ID, ep.ID, herald.DeliveryListOptions{Status: tc.status, ListOptions: herald.ListOptions{Limit: 50}})
		mustOK(t, "ListEndpointMessages "+string(tc.status), err)
		var got, want []string
		for _, em := range list {
			got = append(got, em.Message.ID)
		}
		for _, m := range tc.want {
			want = append(want, m.ID)
		}
		mustEqual(t, "listed "+string(tc.status), want, got)
	}
	_, err := s.GetEndpointStats(t.Context(), f.app.ID, id(herald.PrefixEndpoint, 99), time.Time{}, time.Time{})
	mustCode(t, "stats of an unknown endpoint", err, herald.ENOTFOUND)
	_, err = s.GetEndpointStats(t.Context(), id(herald.PrefixApplication, 99), ep.ID, time.Time{}, time.Time{})
	mustCode(t, "stats in another app", err, herald.ENOTFOUND)
}

func testDeliveryEndpointMessages(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	ep := f.eps[0]
	const n = 2*pageSize + 1
	msgs := make([]*herald.Message, n)
	want := make([]string, n)
	for i := range n {
		msgs[i] = newMessage(f.app.ID, 10+i, "user.created")
		want[i] = msgs[i].ID
	}
	var batch []*herald.Message
	for _, i := range creationOrder {
		batch = append(batch, msgs[i])
	}
	mustCreateMessages(t, s, batch...)
	// A message of the same application the endpoint never got.
	ep.FilterTypes = []string{"user.created"}
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), ep))
	mustCreateMessages(t, s, newMessage(f.app.ID, 9, "only.this"))

	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			exp := want
			if o.order == herald.Descending {
				exp = reversed(want)
			}
			mustWalk(t, "message IDs", exp, func(cursor string) ([]herald.EndpointMessage, error) {
				return s.ListEndpointMessages(t.Context(), f.app.ID, ep.ID, herald.DeliveryListOptions{
					ListOptions: herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order},
				})
			}, func(em herald.EndpointMessage) string { return em.Message.ID })
		})
	}

	// Whole rows: the message and its delivery to this endpoint.
	finish(t, s, ep, at(30), herald.DeliveryFailed, msgs[0])
	page, err := s.ListEndpointMessages(t.Context(), f.app.ID, ep.ID, herald.DeliveryListOptions{ListOptions: herald.ListOptions{Limit: 2}})
	mustOK(t, "ListEndpointMessages", err)
	if len(page) != 2 {
		t.Fatalf("page has %d rows, want 2", len(page))
	}
	for i, em := range page {
		mustEqual(t, "listed message", msgs[i], em.Message)
		mustEqual(t, "listed delivery", deliveryOf(t, s, msgs[i], ep.ID), em.Delivery)
	}
	if page[0].Delivery.Status != herald.DeliveryFailed || page[0].Delivery.Attempts != 1 {
		t.Fatalf("listed delivery %+v, want failed after one attempt", page[0].Delivery)
	}

	_, err = s.ListEndpointMessages(t.Context(), f.app.ID, id(herald.PrefixEndpoint, 99), herald.DeliveryListOptions{})
	mustCode(t, "unknown endpoint", err, herald.ENOTFOUND)
	_, err = s.ListEndpointMessages(t.Context(), id(herald.PrefixApplication, 99), ep.ID, herald.DeliveryListOptions{})
	mustCode(t, "endpoint of another app", err, herald.ENOTFOUND)
}

func testDeliveryEndpointMessagesFilters(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	types := []string{"a.x", "b.y", "c.z"}
	const n = 14
	msgs := make([]*herald.Message, n)
	for i := range n {
		m := newMessage(f.app.ID, 10+i, types[i%3])
		if i%2 == 0 {
			m.Channels = []string{"even"}
		} else {
			m.Channels = []string{"uneven"}
		}
		m.Tags = tagsOf(i)
		msgs[i] = m
	}
	mustCreateMessages(t, s, msgs...)
	// A tagged message the endpoint never got.
	ep.FilterTypes = types
	mustOK(t, "UpdateEndpoint", s.UpdateEndpoint(t.Context(), ep))
	elsewhere := newMessage(f.app.ID, 30, "d.w")
	elsewhere.Tags = []string{"three", "five"}
	mustCreateMessages(t, s, elsewhere)
	// Every fourth failed, the rest pending.
	var failed []*herald.Message
	for i := 0; i < n; i += 4 {
		failed = append(failed, msgs[i])
	}
	finish(t, s, ep, at(40), herald.DeliveryFailed, failed...)

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
		opts herald.DeliveryListOptions
		want []string
	}{
		{"Status", herald.DeliveryListOptions{Status: herald.DeliveryFailed}, pick(func(i int) bool { return i%4 == 0 })},
		{"StatusPending", herald.DeliveryListOptions{Status: herald.DeliveryPending}, pick(func(i int) bool { return i%4 != 0 })},
		{"EventTypes", herald.DeliveryListOptions{EventTypes: []string{"a.x", "c.z"}}, pick(func(i int) bool { return i%3 != 1 })},
		{"Channel", herald.DeliveryListOptions{Channel: "even"}, pick(func(i int) bool { return i%2 == 0 })},
		{"ChannelPart", herald.DeliveryListOptions{Channel: "ven"}, nil},
		// Both bounds are exclusive, on the message's creation time.
		{"AfterBefore", herald.DeliveryListOptions{After: at(12), Before: at(20)}, pick(func(i int) bool { return i > 2 && i < 10 })},
		{"Combined", herald.DeliveryListOptions{Status: herald.DeliveryPending, EventTypes: []string{"a.x"}, Channel: "uneven"},
			pick(func(i int) bool { return i%4 != 0 && i%3 == 0 && i%2 == 1 })},
		{"Tag", herald.DeliveryListOptions{Tag: "three"}, pick(func(i int) bool { return i%3 == 0 })},
		{"TagPart", herald.DeliveryListOptions{Tag: "thre"}, nil},
		{"TagStatus", herald.DeliveryListOptions{Tag: "five", Status: herald.DeliveryFailed}, pick(func(i int) bool { return i%5 == 0 && i%4 == 0 })},
		{"TagCombined", herald.DeliveryListOptions{Tag: "three", Status: herald.DeliveryPending, EventTypes: []string{"a.x"}, Channel: "uneven", After: at(10)},
			pick(func(i int) bool { return i%3 == 0 && i%4 != 0 && i%2 == 1 && i > 0 })},
	}
	for _, c := range cases {
		for _, o := range orders {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				exp := c.want
				if o.order == herald.Descending {
					exp = reversed(c.want)
				}
				mustWalk(t, "message IDs", exp, func(cursor string) ([]herald.EndpointMessage, error) {
					opts := c.opts
					opts.ListOptions = herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order}
					return s.ListEndpointMessages(t.Context(), f.app.ID, ep.ID, opts)
				}, func(em herald.EndpointMessage) string { return em.Message.ID })
			})
		}
	}
}
