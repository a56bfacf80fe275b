package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var auditTests = []namedTest{
	{"EveryVerb", testAuditEveryVerb},
	{"FailedChangeLeavesNone", testAuditFailedChange},
	{"NoActorNoRecord", testAuditNoActor},
	{"ListFilters", testAuditListFilters},
	{"DeleteExpired", testAuditDeleteExpired},
}

// auditActor returns the actor of key n (token ID auditTokenID(n)),
// acting at(atN).
func auditActor(n, atN int) herald.AuditActor {
	return herald.AuditActor{
		TokenID:    auditTokenID(n),
		TokenKind:  herald.TokenKey,
		TokenName:  fmt.Sprintf("key %d", n),
		Method:     "PATCH",
		Route:      "PATCH /api/v1/app/{app_id}",
		RequestID:  fmt.Sprintf("req-%d", atN),
		ClientAddr: "192.0.2.7",
		At:         at(atN),
	}
}

// auditTokenID is the ID of key n of the audit tests.
func auditTokenID(n int) string { return fmt.Sprintf("%skey%d", herald.PrefixToken, n) }

// allAudit lists every audit record, oldest first.
func allAudit(t *testing.T, s herald.Store) []*herald.AuditRecord {
	t.Helper()
	recs, err := s.ListAuditRecords(t.Context(), herald.AuditListOptions{ListOptions: herald.ListOptions{Limit: 1000}})
	mustOK(t, "ListAuditRecords", err)
	return recs
}

// testAuditEveryVerb calls every mutating verb the API reaches with an
// actor in the context: each writes exactly one record, naming the actor,
// the action and the resource it changed, at the actor's time.
func testAuditEveryVerb(t *testing.T, s herald.Store) {
	f := mustAttemptFixture(t, s, 1)
	actor := auditActor(1, 500)
	ctx := herald.WithAuditActor(t.Context(), actor)
	ep := f.eps[0]
	msg := f.msgs[0]
	portal := newToken(herald.TokenPortal, 501, f.app.ID)
	key := newToken(herald.TokenKey, 502, "")
	newApp := newApp(503)
	example := newMessage(f.app.ID, 504, "a.x")
	example.OnlyEndpointID = ep.ID
	example.Audit = &actor
	newEp := newEndpoint(f.app.ID, 505)

	type want [4]string // action, resource type, resource ID, application
	steps := []struct {
		name string
		run  func(ctx context.Context) error
		want want
	}{
		{"CreateApplication", func(ctx context.Context) error { return s.CreateApplication(ctx, newApp) },
			want{"application.create", herald.AuditApplication, newApp.ID, newApp.ID}},
		{"UpdateApplication", func(ctx context.Context) error { return s.UpdateApplication(ctx, newApp) },
			want{"application.update", herald.AuditApplication, newApp.ID, newApp.ID}},
		{"SetPollConsumer", func(ctx context.Context) error {
			return s.SetPollConsumer(ctx, &herald.PollConsumer{AppID: f.app.ID, EndpointID: ep.ID, ConsumerID: "c", UpdatedAt: at(500)})
		}, want{"endpoint.poller.seek", herald.AuditEndpoint, ep.ID, f.app.ID}},
		{"UpdateApplicationFunc", func(ctx context.Context) error {
			_, err := s.UpdateApplicationFunc(ctx, newApp.ID, func(a *herald.Application) error { a.Name = "renamed"; return nil })
			return err
		}, want{"application.update", herald.AuditApplication, newApp.ID, newApp.ID}},
		{"CreateEventType", func(ctx context.Context) error { return s.CreateEventType(ctx, newEventType(506, "audit.x")) },
			want{"event_type.create", herald.AuditEventType, "audit.x", ""}},
		{"UpdateEventType", func(ctx context.Context) error { return s.UpdateEventType(ctx, newEventType(506, "audit.x")) },
			want{"event_type.update", herald.AuditEventType, "audit.x", ""}},
		{"UpdateEventTypeFunc", func(ctx context.Context) error {
			_, err := s.UpdateEventTypeFunc(ctx, "audit.x", func(et *herald.EventType) error { et.Deprecated = true; return nil })
			return err
		}, want{"event_type.update", herald.AuditEventType, "audit.x", ""}},
		{"DeleteEventType", func(ctx context.Context) error { return s.DeleteEventType(ctx, "audit.x") },
			want{"event_type.delete", herald.AuditEventType, "audit.x", ""}},
		{"ImportEventTypes", func(ctx context.Context) error {
			_, err := s.ImportEventTypes(ctx, []*herald.EventType{newEventType(506, "audit.y")}, false, at(506))
			return err
		}, want{"event_type.import", herald.AuditEventType, "audit.y", ""}},
		{"CreateEndpoint", func(ctx context.Context) error { return s.CreateEndpoint(ctx, newEp) },
			want{"endpoint.create", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"UpdateEndpoint", func(ctx context.Context) error { newEp.Disabled = true; return s.UpdateEndpoint(ctx, newEp) },
			want{"endpoint.update", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"UpdateEndpointKeepDisabled", func(ctx context.Context) error { return s.UpdateEndpointKeepDisabled(ctx, newEp) },
			want{"endpoint.update", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"UpdateEndpointFunc", func(ctx context.Context) error {
			_, err := s.UpdateEndpointFunc(ctx, f.app.ID, newEp.ID, func(ep *herald.Endpoint) error {
				ep.Disabled, ep.Headers = false, map[string]string{"X-Audit": "1"} // an enable: one record, with its event
				return nil
			})
			return err
		}, want{"endpoint.update", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"RotateEndpointSecret", func(ctx context.Context) error {
			return s.RotateEndpointSecret(ctx, f.app.ID, newEp.ID, herald.SigningSecret{Key: secretKey(9, 24)}, at(600), at(507))
		}, want{"endpoint.secret.rotate", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"CreateMessages", func(ctx context.Context) error {
			res, err := s.CreateMessages(ctx, []*herald.Message{example}, herald.Lease{})
			if err == nil {
				err = res[0].Err
			}
			return err
		}, want{"message.create", herald.AuditMessage, example.ID, f.app.ID}},
		{"DeleteMessage", func(ctx context.Context) error { return s.DeleteMessage(ctx, f.app.ID, example.ID) },
			want{"message.delete", herald.AuditMessage, example.ID, f.app.ID}},
		{"ExpungeMessageContent", func(ctx context.Context) error { return s.ExpungeMessageContent(ctx, f.app.ID, msg.ID) },
			want{"message.content.expunge", herald.AuditMessage, msg.ID, f.app.ID}},
		{"ExpungeAttemptContent", func(ctx context.Context) error {
			a := f.attempts[0]
			return s.ExpungeAttemptContent(ctx, f.app.ID, a.MessageID, a.ID)
		}, want{"attempt.content.expunge", herald.AuditAttempt, f.attempts[0].ID, f.app.ID}},
		{"ResendDelivery", func(ctx context.Context) error { return s.ResendDelivery(ctx, f.app.ID, msg.ID, ep.ID, at(508)) },
			want{"message.resend", herald.AuditMessage, msg.ID, f.app.ID}},
		{"RecoverEndpoint", func(ctx context.Context) error {
			_, err := s.RecoverEndpoint(ctx, f.app.ID, ep.ID, at(0), time.Time{}, at(509))
			return err
		}, want{"endpoint.recover", herald.AuditEndpoint, ep.ID, f.app.ID}},
		{"ReplayMissing", func(ctx context.Context) error {
			_, err := s.ReplayMissing(ctx, f.app.ID, newEp.ID, at(0), time.Time{}, at(510))
			return err
		}, want{"endpoint.replay_missing", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"CreateToken portal", func(ctx context.Context) error { return s.CreateToken(ctx, portal) },
			want{"token.create", herald.AuditToken, portal.ID, f.app.ID}},
		{"CreateToken key", func(ctx context.Context) error { return s.CreateToken(ctx, key) },
			want{"token.create", herald.AuditToken, key.ID, ""}},
		{"RevokeToken portal", func(ctx context.Context) error { return s.RevokeToken(ctx, portal.ID, at(511)) },
			want{"token.revoke", herald.AuditToken, portal.ID, f.app.ID}},
		{"RevokeToken key", func(ctx context.Context) error { return s.RevokeToken(ctx, key.ID, at(511)) },
			want{"token.revoke", herald.AuditToken, key.ID, ""}},
		{"ExpireAppTokens", func(ctx context.Context) error {
			_, err := s.ExpireAppTokens(ctx, f.app.ID, nil, at(512))
			return err
		}, want{"application.tokens.expire", herald.AuditApplication, f.app.ID, f.app.ID}},
		{"DeleteEndpoint", func(ctx context.Context) error { return s.DeleteEndpoint(ctx, f.app.ID, newEp.ID) },
			want{"endpoint.delete", herald.AuditEndpoint, newEp.ID, f.app.ID}},
		{"DeleteApplication", func(ctx context.Context) error { return s.DeleteApplication(ctx, newApp.ID) },
			want{"application.delete", herald.AuditApplication, newApp.ID, newApp.ID}},
	}
	for _, step := range steps {
		before := len(allAudit(t, s))
		mustOK(t, step.name, step.run(ctx))
		recs := allAudit(t, s)
		if len(recs) != before+1 {
			t.Fatalf("%s: %d audit records after it, want %d", step.name, len(recs), before+1)
		}
		got := recs[len(recs)-1]
		mustEqual(t, step.name+" record", step.want, want{got.Action, got.ResourceType, got.ResourceID, got.AppID})
		mustEqual(t, step.name+" actor", actor, got.Actor)
		if !got.CreatedAt.Equal(actor.At) {
			t.Fatalf("%s: record at %v, want the actor's %v", step.name, got.CreatedAt, actor.At)
		}
	}
}

// testAuditFailedChange: a change that fails (not found, conflict) leaves
// no record, whatever the verb.
func testAuditFailedChange(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	mustCreateEventType(t, s, newEventType(3, "taken"))
	takenEp := newEndpoint(app.ID, 13)
	takenEp.UID = "taken-ep"
	mustCreateEndpoint(t, s, takenEp)
	ctx := herald.WithAuditActor(t.Context(), auditActor(1, 50))
	missing := newApp(4)
	fails := []struct {
		name string
		code string
		err  error
	}{
		{"CreateApplication taken ID", herald.ECONFLICT, s.CreateApplication(ctx, app)},
		{"UpdateApplication unknown", herald.ENOTFOUND, s.UpdateApplication(ctx, missing)},
		{"DeleteApplication unknown", herald.ENOTFOUND, s.DeleteApplication(ctx, missing.ID)},
		{"CreateEventType taken", herald.ECONFLICT, s.CreateEventType(ctx, newEventType(5, "taken"))},
		{"DeleteEventType unknown", herald.ENOTFOUND, s.DeleteEventType(ctx, "nope")},
		{"CreateEndpoint unknown app", herald.ENOTFOUND, s.CreateEndpoint(ctx, newEndpoint(missing.ID, 6))},
		{"UpdateEndpoint unknown", herald.ENOTFOUND, s.UpdateEndpoint(ctx, newEndpoint(app.ID, 7))},
		{"DeleteEndpoint unknown", herald.ENOTFOUND, s.DeleteEndpoint(ctx, app.ID, id(herald.PrefixEndpoint, 8))},
		{"RotateEndpointSecret unknown", herald.ENOTFOUND, s.RotateEndpointSecret(ctx, app.ID, id(herald.PrefixEndpoint, 8), herald.SigningSecret{Key: secretKey(1, 24)}, at(60), at(50))},
		{"DeleteMessage unknown", herald.ENOTFOUND, s.DeleteMessage(ctx, app.ID, id(herald.PrefixMessage, 9))},
		{"ExpungeMessageContent unknown", herald.ENOTFOUND, s.ExpungeMessageContent(ctx, app.ID, id(herald.PrefixMessage, 9))},
		{"ResendDelivery unknown message", herald.ENOTFOUND, s.ResendDelivery(ctx, app.ID, id(herald.PrefixMessage, 9), ep.ID, at(50))},
		{"CreateToken unknown app", herald.ENOTFOUND, s.CreateToken(ctx, newToken(herald.TokenPortal, 10, missing.ID))},
		{"RevokeToken unknown", herald.ENOTFOUND, s.RevokeToken(ctx, id(herald.PrefixToken, 11), at(50))},
	}
	failFunc := func(name, code string, err error) {
		fails = append(fails, struct {
			name string
			code string
			err  error
		}{name, code, err})
	}
	_, err := s.UpdateApplicationFunc(ctx, missing.ID, func(*herald.Application) error { return nil })
	failFunc("UpdateApplicationFunc unknown", herald.ENOTFOUND, err)
	_, err = s.UpdateEventTypeFunc(ctx, "nope", func(*herald.EventType) error { return nil })
	failFunc("UpdateEventTypeFunc unknown", herald.ENOTFOUND, err)
	_, err = s.UpdateEndpointFunc(ctx, app.ID, id(herald.PrefixEndpoint, 8), func(*herald.Endpoint) error { return nil })
	failFunc("UpdateEndpointFunc unknown", herald.ENOTFOUND, err)
	// An update that refuses rolls its change back, record included.
	_, err = s.UpdateEndpointFunc(ctx, app.ID, ep.ID, func(ep *herald.Endpoint) error {
		ep.Description = "refused"
		return herald.Errorf(herald.EINVALID, "refused")
	})
	failFunc("UpdateEndpointFunc refused", herald.EINVALID, err)
	_, err = s.UpdateEndpointFunc(ctx, app.ID, ep.ID, func(ep *herald.Endpoint) error { ep.UID = "taken-ep"; return nil })
	failFunc("UpdateEndpointFunc taken uid", herald.ECONFLICT, err)
	_, err = s.RecoverEndpoint(ctx, app.ID, id(herald.PrefixEndpoint, 8), at(0), time.Time{}, at(50))
	fails = append(fails, struct {
		name string
		code string
		err  error
	}{"RecoverEndpoint unknown", herald.ENOTFOUND, err})
	_, err = s.ReplayMissing(ctx, app.ID, id(herald.PrefixEndpoint, 8), at(0), time.Time{}, at(50))
	fails = append(fails, struct {
		name string
		code string
		err  error
	}{"ReplayMissing unknown", herald.ENOTFOUND, err})
	for _, f := range fails {
		mustCode(t, f.name, f.err, f.code)
	}
	// A message of a batch that fails alone leaves no record either.
	m := newMessage(missing.ID, 12, "a.x")
	m.Audit = &herald.AuditActor{TokenName: "admin-token"}
	res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{})
	mustOK(t, "CreateMessages", err)
	mustCode(t, "CreateMessages unknown app", res[0].Err, herald.ENOTFOUND)
	if recs := allAudit(t, s); len(recs) != 0 {
		t.Fatalf("failed changes left %d audit records: %+v", len(recs), recs[0])
	}
}

// testAuditNoActor: without an actor (the dispatcher, the cleaner) the
// same verbs write no record.
func testAuditNoActor(t *testing.T, s herald.Store) {
	f := mustAttemptFixture(t, s, 1)
	ctx := t.Context()
	mustOK(t, "UpdateApplication", s.UpdateApplication(ctx, f.app))
	mustOK(t, "RotateEndpointSecret", s.RotateEndpointSecret(ctx, f.app.ID, f.eps[0].ID, herald.SigningSecret{Key: secretKey(3, 24)}, at(600), at(500)))
	mustOK(t, "ResendDelivery", s.ResendDelivery(ctx, f.app.ID, f.msgs[0].ID, f.eps[0].ID, at(500)))
	mustOK(t, "CreateToken", s.CreateToken(ctx, newToken(herald.TokenKey, 501, "")))
	mustOK(t, "DeleteEndpoint", s.DeleteEndpoint(ctx, f.app.ID, f.eps[1].ID))
	if recs := allAudit(t, s); len(recs) != 0 {
		t.Fatalf("changes without an actor left %d audit records", len(recs))
	}
}

// auditListFixture records 2*pageSize+1 changes: application i changed by
// key i%2 at(100+i), made out of time order.
func auditListFixture(t *testing.T, s herald.Store) (apps []*herald.Application, ids []string) {
	t.Helper()
	n := 2*pageSize + 1
	apps = []*herald.Application{mustCreateApp(t, s, newApp(1)), mustCreateApp(t, s, newApp(2))}
	byTime := make([]string, n)
	for _, i := range creationOrder {
		ctx := herald.WithAuditActor(t.Context(), auditActor(i%2, 100+i))
		mustOK(t, "UpdateApplication", s.UpdateApplication(ctx, apps[i%2]))
		recs, err := s.ListAuditRecords(t.Context(), herald.AuditListOptions{
			ListOptions: herald.ListOptions{Limit: 1}, Since: at(100 + i), Until: at(101 + i)})
		mustOK(t, "ListAuditRecords", err)
		if len(recs) != 1 {
			t.Fatalf("record of change %d at %v: %d found", i, at(100+i), len(recs))
		}
		byTime[i] = recs[0].ID
	}
	return apps, byTime
}

func testAuditListFilters(t *testing.T, s herald.Store) {
	apps, ids := auditListFixture(t, s)
	pick := func(keep func(i int) bool) []string {
		var out []string
		for i, id := range ids {
			if keep(i) {
				out = append(out, id)
			}
		}
		return out
	}
	cases := []struct {
		name string
		opts herald.AuditListOptions
		want []string
	}{
		{"All", herald.AuditListOptions{}, ids},
		{"App", herald.AuditListOptions{AppID: apps[1].ID}, pick(func(i int) bool { return i%2 == 1 })},
		{"Token", herald.AuditListOptions{TokenID: auditTokenID(0)}, pick(func(i int) bool { return i%2 == 0 })},
		{"Since", herald.AuditListOptions{Since: at(102)}, pick(func(i int) bool { return i >= 2 })},
		{"Until", herald.AuditListOptions{Until: at(105)}, pick(func(i int) bool { return i < 5 })},
		{"SinceUntilSubSecond", herald.AuditListOptions{Since: at(101).Add(-time.Millisecond), Until: at(104).Add(time.Millisecond)},
			pick(func(i int) bool { return i >= 1 && i <= 4 })},
		{"AppAndWindow", herald.AuditListOptions{AppID: apps[0].ID, Since: at(101), Until: at(106)},
			pick(func(i int) bool { return i%2 == 0 && i >= 1 && i < 6 })},
		{"NoSuchToken", herald.AuditListOptions{TokenID: "tok_none"}, nil},
	}
	for _, tc := range cases {
		for _, o := range orders {
			t.Run(tc.name+"/"+o.name, func(t *testing.T) {
				want := tc.want
				if o.order == herald.Descending {
					want = reversed(want)
				}
				mustWalk(t, "audit records", want, func(cursor string) ([]*herald.AuditRecord, error) {
					opts := tc.opts
					opts.ListOptions = herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order}
					return s.ListAuditRecords(t.Context(), opts)
				}, func(r *herald.AuditRecord) string { return r.ID })
			})
		}
	}
}

func testAuditDeleteExpired(t *testing.T, s herald.Store) {
	_, ids := auditListFixture(t, s)
	n, err := s.DeleteExpiredAuditRecords(t.Context(), at(200), 0)
	mustCount(t, "DeleteExpiredAuditRecords(limit 0)", 0, n, err)
	// Records before at(105): 0..4, deleted two at a time, oldest first.
	for _, step := range []struct{ limit, want int }{{2, 2}, {2, 2}, {2, 1}, {2, 0}} {
		n, err := s.DeleteExpiredAuditRecords(t.Context(), at(105), step.limit)
		mustCount(t, fmt.Sprintf("DeleteExpiredAuditRecords(limit %d)", step.limit), step.want, n, err)
	}
	var left []string
	for _, r := range allAudit(t, s) {
		left = append(left, r.ID)
	}
	mustEqual(t, "records kept", ids[5:], left)
}
