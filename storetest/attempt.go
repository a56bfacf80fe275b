package storetest

import (
	"testing"

	"github.com/herald-webhooks/herald"
)

var attemptTests = []namedTest{
	{"ListFiltersAndPages", testAttemptListFiltersAndPages},
	{"GetNotFound", testAttemptGetNotFound},
	{"ExpungeContent", testAttemptExpungeContent},
}

// attemptFixture is an application whose deliveries went through rounds of
// attempts, plus what the store should hold.
type attemptFixture struct {
	app      *herald.Application
	eps      []*herald.Endpoint
	msgs     []*herald.Message
	attempts []*herald.Attempt // as stored, in ID order
}

// attemptCodes cycles through the response classes, 0 for no response.
var attemptCodes = []int{200, 500, 0, 404, 302, 201, 503}

// mustAttemptFixture makes 3 messages (types a.x, b.y, a.x; channels
// "red", "blue", none) to 2 endpoints and records rounds of attempts: each
// round claims every delivery and records one attempt per claim, the i-th
// attempt overall at(100+i) with response code attemptCodes[i%7]. Another
// application gets attempts of its own, which must never show.
func mustAttemptFixture(t *testing.T, s herald.Store, rounds int) attemptFixture {
	t.Helper()
	f := attemptFixture{app: mustCreateApp(t, s, newApp(1))}
	other := mustCreateApp(t, s, newApp(2))
	for i := range 2 {
		f.eps = append(f.eps, mustCreateEndpoint(t, s, newEndpoint(f.app.ID, 3+i)))
	}
	mustCreateEndpoint(t, s, newEndpoint(other.ID, 5))
	for i, spec := range []struct {
		eventType string
		channels  []string
	}{{"a.x", []string{"red", "green"}}, {"b.y", []string{"blue"}}, {"a.x", nil}} {
		m := newMessage(f.app.ID, 10+i, spec.eventType)
		m.Channels = spec.channels
		f.msgs = append(f.msgs, m)
	}
	mustCreateMessages(t, s, append(f.msgs, newMessage(other.ID, 13, "a.x"))...)

	n := 0
	for r := range rounds {
		now := at(100 + 20*r)
		claims := claim(t, s, nodeA, now, 100)
		var outcomes []herald.AttemptOutcome
		for _, c := range claims {
			code := attemptCodes[n%len(attemptCodes)]
			status := herald.AttemptFailed
			if code >= 200 && code < 300 {
				status = herald.AttemptSucceeded
			}
			a := newAttempt(c, 100+n, status, code)
			if code == 0 {
				a.Response, a.Error = nil, "timeout"
			}
			n++
			outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, Attempt: a, LeaseOwner: nodeA,
				Status: herald.DeliveryPending, NextAttemptAt: at(100 + 20*(r+1))})
			if c.Delivery.AppID == f.app.ID {
				f.attempts = append(f.attempts, a)
			}
		}
		mustRecord(t, s, outcomes...)
	}
	// IDs were made at increasing moments, so this is ID order.
	return f
}

// pickAttempts returns the IDs of the fixture's attempts keep accepts, in
// ID order.
func (f attemptFixture) pickAttempts(keep func(a *herald.Attempt) bool) []string {
	var ids []string
	for _, a := range f.attempts {
		if keep(a) {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

func testAttemptListFiltersAndPages(t *testing.T, s herald.Store) {
	f := mustAttemptFixture(t, s, 3)
	if len(f.attempts) != 18 {
		t.Fatalf("fixture made %d attempts, want 18", len(f.attempts))
	}
	m0, m1, m2 := f.msgs[0].ID, f.msgs[1].ID, f.msgs[2].ID
	ep0, ep1 := f.eps[0].ID, f.eps[1].ID
	failed := herald.AttemptFailed
	succeeded := herald.AttemptSucceeded
	class := func(c int) func(a *herald.Attempt) bool {
		return func(a *herald.Attempt) bool {
			if c == -1 {
				return a.ResponseStatus == 0
			}
			return a.ResponseStatus >= c && a.ResponseStatus < c+100
		}
	}
	cases := []struct {
		name string
		opts herald.AttemptListOptions
		keep func(a *herald.Attempt) bool
	}{
		{"Message", herald.AttemptListOptions{MessageID: m0}, func(a *herald.Attempt) bool { return a.MessageID == m0 }},
		{"Endpoint", herald.AttemptListOptions{EndpointID: ep1}, func(a *herald.Attempt) bool { return a.EndpointID == ep1 }},
		{"MessageAndEndpoint", herald.AttemptListOptions{MessageID: m1, EndpointID: ep0},
			func(a *herald.Attempt) bool { return a.MessageID == m1 && a.EndpointID == ep0 }},
		{"StatusFailed", herald.AttemptListOptions{EndpointID: ep0, Status: &failed},
			func(a *herald.Attempt) bool { return a.EndpointID == ep0 && a.Status == failed }},
		{"StatusSucceeded", herald.AttemptListOptions{MessageID: m2, Status: &succeeded},
			func(a *herald.Attempt) bool { return a.MessageID == m2 && a.Status == succeeded }},
		{"Class2xx", herald.AttemptListOptions{EndpointID: ep0, StatusCodeClass: 200},
			func(a *herald.Attempt) bool { return a.EndpointID == ep0 && class(200)(a) }},
		{"Class5xx", herald.AttemptListOptions{EndpointID: ep1, StatusCodeClass: 500},
			func(a *herald.Attempt) bool { return a.EndpointID == ep1 && class(500)(a) }},
		{"Class4xx", herald.AttemptListOptions{EndpointID: ep1, StatusCodeClass: 400},
			func(a *herald.Attempt) bool { return a.EndpointID == ep1 && class(400)(a) }},
		{"Class3xx", herald.AttemptListOptions{EndpointID: ep0, StatusCodeClass: 300},
			func(a *herald.Attempt) bool { return a.EndpointID == ep0 && class(300)(a) }},
		{"NoResponse", herald.AttemptListOptions{EndpointID: ep0, StatusCodeClass: -1},
			func(a *herald.Attempt) bool { return a.EndpointID == ep0 && class(-1)(a) }},
		{"EventTypes", herald.AttemptListOptions{EndpointID: ep0, EventTypes: []string{"a.x"}},
			func(a *herald.Attempt) bool { return a.EndpointID == ep0 && a.MessageID != m1 }},
		{"Channel", herald.AttemptListOptions{EndpointID: ep1, Channel: "green"},
			func(a *herald.Attempt) bool { return a.EndpointID == ep1 && a.MessageID == m0 }},
		{"ChannelPart", herald.AttemptListOptions{EndpointID: ep1, Channel: "gree"}, func(*herald.Attempt) bool { return false }},
		// Both bounds are exclusive.
		{"AfterBefore", herald.AttemptListOptions{EndpointID: ep0, After: at(102), Before: at(114)},
			func(a *herald.Attempt) bool {
				return a.EndpointID == ep0 && a.CreatedAt.After(at(102)) && a.CreatedAt.Before(at(114))
			}},
		{"Combined", herald.AttemptListOptions{MessageID: m0, EventTypes: []string{"a.x", "b.y"}, Channel: "red", Status: &failed, After: at(100)},
			func(a *herald.Attempt) bool {
				return a.MessageID == m0 && a.Status == failed && a.CreatedAt.After(at(100))
			}},
		{"OtherAppsMessage", herald.AttemptListOptions{MessageID: id(herald.PrefixMessage, 13)}, func(*herald.Attempt) bool { return false }},
	}
	for _, c := range cases {
		want := f.pickAttempts(c.keep)
		for _, o := range orders {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				exp := want
				if o.order == herald.Descending {
					exp = reversed(want)
				}
				mustWalk(t, "attempt IDs", exp, func(cursor string) ([]*herald.Attempt, error) {
					opts := c.opts
					opts.ListOptions = herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order}
					return s.ListAttempts(t.Context(), f.app.ID, opts)
				}, func(a *herald.Attempt) string { return a.ID })
			})
		}
	}
	// The filters must leave something to page through, or the walks above
	// prove little.
	if n := len(f.pickAttempts(cases[0].keep)); n < 2*pageSize {
		t.Fatalf("message filter keeps %d attempts, want at least %d", n, 2*pageSize)
	}

	// Whole rows, in order.
	got, err := s.ListAttempts(t.Context(), f.app.ID, herald.AttemptListOptions{ListOptions: herald.ListOptions{Limit: 100}, MessageID: m1})
	mustOK(t, "ListAttempts", err)
	var want []*herald.Attempt
	for _, a := range f.attempts {
		if a.MessageID == m1 {
			want = append(want, a)
		}
	}
	mustEqual(t, "listed attempts", want, got)
	// An application sees none of another's attempts.
	got, err = s.ListAttempts(t.Context(), id(herald.PrefixApplication, 2), herald.AttemptListOptions{
		ListOptions: herald.ListOptions{Limit: 100}, MessageID: m1})
	mustOK(t, "ListAttempts in another app", err)
	if len(got) != 0 {
		t.Fatalf("another application lists %d of this one's attempts", len(got))
	}
}

func testAttemptGetNotFound(t *testing.T, s herald.Store) {
	f := mustAttemptFixture(t, s, 1)
	a := f.attempts[0]
	got, err := s.GetAttempt(t.Context(), f.app.ID, a.MessageID, a.ID)
	mustOK(t, "GetAttempt", err)
	mustEqual(t, "attempt", a, got)
	for _, c := range []struct{ name, app, msg, attempt string }{
		{"unknown attempt", f.app.ID, a.MessageID, id(herald.PrefixAttempt, 999)},
		{"another message", f.app.ID, f.msgs[1].ID, a.ID},
		{"another application", id(herald.PrefixApplication, 2), a.MessageID, a.ID},
	} {
		_, err := s.GetAttempt(t.Context(), c.app, c.msg, c.attempt)
		mustCode(t, "GetAttempt of "+c.name, err, herald.ENOTFOUND)
		mustCode(t, "ExpungeAttemptContent of "+c.name, s.ExpungeAttemptContent(t.Context(), c.app, c.msg, c.attempt), herald.ENOTFOUND)
	}
	// The refused expunges touched nothing.
	got, err = s.GetAttempt(t.Context(), f.app.ID, a.MessageID, a.ID)
	mustOK(t, "GetAttempt", err)
	mustEqual(t, "attempt after refused expunges", a, got)
}

func testAttemptExpungeContent(t *testing.T, s herald.Store) {
	f := mustAttemptFixture(t, s, 1)
	var target, kept *herald.Attempt
	for _, a := range f.attempts {
		if len(a.Response) > 0 {
			if target == nil {
				target = a
			} else if kept == nil {
				kept = a
			}
		}
	}
	if target == nil || kept == nil {
		t.Fatal("fixture has fewer than two attempts with a response body")
	}
	mustOK(t, "ExpungeAttemptContent", s.ExpungeAttemptContent(t.Context(), f.app.ID, target.MessageID, target.ID))
	got, err := s.GetAttempt(t.Context(), f.app.ID, target.MessageID, target.ID)
	mustOK(t, "GetAttempt", err)
	want := *target
	want.Response = nil
	mustEqual(t, "expunged attempt", &want, got)
	if len(got.Response) != 0 {
		t.Fatalf("expunged response is %q", got.Response)
	}
	got, err = s.GetAttempt(t.Context(), f.app.ID, kept.MessageID, kept.ID)
	mustOK(t, "GetAttempt", err)
	mustEqual(t, "other attempt", kept, got)
	// Expunging twice is fine.
	mustOK(t, "ExpungeAttemptContent again", s.ExpungeAttemptContent(t.Context(), f.app.ID, target.MessageID, target.ID))
}
