package storetest

import (
	"testing"

	"github.com/herald-webhooks/herald"
)

var deleteTests = []namedTest{
	{"EndpointDropsDeliveries", testDeleteEndpointDropsDeliveries},
	{"ApplicationCascades", testDeleteApplicationCascades},
}

func testDeleteEndpointDropsDeliveries(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	gone := newEndpoint(app.ID, 10)
	gone.UID = "gone"
	mustCreateEndpoint(t, s, gone)
	kept := mustCreateEndpoint(t, s, newEndpoint(app.ID, 11))
	msg := newMessage(app.ID, 20, "user.created")
	mustCreateMessages(t, s, msg)
	mustEqual(t, "deliveries before", []*herald.Delivery{wantDelivery(msg, gone.ID), wantDelivery(msg, kept.ID)},
		mustListDeliveries(t, s, app.ID, msg.ID), ignoreStoreChosen)

	mustOK(t, "delete endpoint", s.DeleteEndpoint(t.Context(), app.ID, gone.ID))
	_, err := s.GetEndpoint(t.Context(), app.ID, gone.ID)
	mustCode(t, "get deleted by ID", err, herald.ENOTFOUND)
	_, err = s.GetEndpoint(t.Context(), app.ID, "gone")
	mustCode(t, "get deleted by uid", err, herald.ENOTFOUND)
	mustCode(t, "delete twice", s.DeleteEndpoint(t.Context(), app.ID, gone.ID), herald.ENOTFOUND)

	// The message stays; only the deleted endpoint's delivery goes.
	mustEqual(t, "message kept", msg, mustGetMessage(t, s, app.ID, msg.ID))
	mustEqual(t, "deliveries after", []*herald.Delivery{wantDelivery(msg, kept.ID)},
		mustListDeliveries(t, s, app.ID, msg.ID), ignoreStoreChosen)
	list, err := s.ListEndpoints(t.Context(), app.ID, herald.ListOptions{Limit: 10})
	mustOK(t, "list endpoints", err)
	mustEqual(t, "listed endpoints", []*herald.Endpoint{kept}, list)

	// Later messages are not routed to it, and its uid is free again.
	later := newMessage(app.ID, 21, "user.created")
	res := mustCreateMessages(t, s, later)
	mustEqual(t, "later deliveries", []*herald.Delivery{wantDelivery(later, kept.ID)}, res[0].Deliveries, ignoreStoreChosen)
	reuse := newEndpoint(app.ID, 12)
	reuse.UID = "gone"
	mustCreateEndpoint(t, s, reuse)
}

// appFixture is an application with two endpoints and two delivered
// messages, all with client-chosen identifiers.
type appFixture struct {
	app  *herald.Application
	eps  []*herald.Endpoint
	msgs []*herald.Message
}

// newFixture builds an appFixture with application uid appUID, whose rows
// are made at n and after.
func newFixture(n int, appUID string) appFixture {
	f := appFixture{app: newApp(n)}
	f.app.UID = appUID
	for i, uid := range []string{"one", "two"} {
		ep := newEndpoint(f.app.ID, n+1+i)
		ep.UID = "hook-" + uid
		f.eps = append(f.eps, ep)
		msg := newMessage(f.app.ID, n+3+i, "user.created")
		msg.EventID = "evt-" + uid
		f.msgs = append(f.msgs, msg)
	}
	return f
}

// mustCreateFixture stores every row of f and returns it.
func mustCreateFixture(t *testing.T, s herald.Store, f appFixture) appFixture {
	t.Helper()
	mustCreateApp(t, s, f.app)
	for _, ep := range f.eps {
		mustCreateEndpoint(t, s, ep)
	}
	mustCreateMessages(t, s, f.msgs...)
	return f
}

func testDeleteApplicationCascades(t *testing.T, s herald.Store) {
	ctx := t.Context()
	doomed := mustCreateFixture(t, s, newFixture(10, "customer"))
	// The survivor needs its own application uid; its endpoint uids and
	// eventIds are the same as the doomed one's, which is allowed.
	survivor := mustCreateFixture(t, s, newFixture(20, "survivor"))

	mustOK(t, "delete application", s.DeleteApplication(ctx, doomed.app.ID))
	checkAppGone(t, s, doomed)

	// The other application keeps everything.
	mustEqual(t, "survivor app", survivor.app, mustGetApp(t, s, "survivor"))
	for _, ep := range survivor.eps {
		mustEqual(t, "survivor endpoint", ep, mustGetEndpoint(t, s, survivor.app.ID, ep.UID))
	}
	for _, m := range survivor.msgs {
		mustEqual(t, "survivor message", m, mustGetMessage(t, s, survivor.app.ID, m.EventID))
		mustEqual(t, "survivor deliveries",
			[]*herald.Delivery{wantDelivery(m, survivor.eps[0].ID), wantDelivery(m, survivor.eps[1].ID)},
			mustListDeliveries(t, s, survivor.app.ID, m.ID), ignoreStoreChosen)
	}

	// Nothing of the deleted application lingers: the same application,
	// re-created with the same ID, uid, endpoint uids and eventIds, starts
	// empty and fresh.
	again := mustCreateFixture(t, s, doomed)
	for _, m := range again.msgs {
		mustEqual(t, "deliveries of the re-created app",
			[]*herald.Delivery{wantDelivery(m, again.eps[0].ID), wantDelivery(m, again.eps[1].ID)},
			mustListDeliveries(t, s, again.app.ID, m.ID), ignoreStoreChosen)
	}
	list, err := s.ListMessages(ctx, again.app.ID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustOK(t, "list messages", err)
	mustEqual(t, "messages of the re-created app", again.msgs, list)
}

// checkAppGone fails unless f's application and everything it owned are
// gone. Lists under a deleted application may answer ENOTFOUND or nothing.
func checkAppGone(t *testing.T, s herald.Store, f appFixture) {
	t.Helper()
	ctx := t.Context()
	appID := f.app.ID
	for _, ref := range []string{appID, f.app.UID} {
		_, err := s.GetApplication(ctx, ref)
		mustCode(t, "get deleted app "+ref, err, herald.ENOTFOUND)
	}
	for _, ep := range f.eps {
		for _, ref := range []string{ep.ID, ep.UID} {
			_, err := s.GetEndpoint(ctx, appID, ref)
			mustCode(t, "get endpoint of deleted app "+ref, err, herald.ENOTFOUND)
		}
	}
	for _, m := range f.msgs {
		for _, ref := range []string{m.ID, m.EventID} {
			_, err := s.GetMessage(ctx, appID, ref)
			mustCode(t, "get message of deleted app "+ref, err, herald.ENOTFOUND)
		}
		ds, err := s.ListMessageDeliveries(ctx, appID, m.ID)
		mustEmptyOrNotFound(t, "deliveries of deleted app", len(ds), err)
	}
	eps, err := s.ListEndpoints(ctx, appID, herald.ListOptions{Limit: 10})
	mustEmptyOrNotFound(t, "endpoints of deleted app", len(eps), err)
	msgs, err := s.ListMessages(ctx, appID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	mustEmptyOrNotFound(t, "messages of deleted app", len(msgs), err)
}

// mustEmptyOrNotFound fails unless a listing returned no rows or ENOTFOUND.
func mustEmptyOrNotFound(t *testing.T, what string, rows int, err error) {
	t.Helper()
	if err != nil {
		mustCode(t, what, err, herald.ENOTFOUND)
	} else if rows != 0 {
		t.Fatalf("%s: %d rows, want none", what, rows)
	}
}
