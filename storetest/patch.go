package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/herald-webhooks/herald"
)

var patchTests = []namedTest{
	{"EndpointFields", testPatchEndpointFields},
	{"EndpointHeaders", testPatchEndpointHeaders},
	{"EndpointFunc", testPatchEndpointFunc},
	{"EndpointKeepsAutoDisable", testPatchEndpointKeepsAutoDisable},
	{"ApplicationFields", testPatchApplicationFields},
	{"EventTypeFields", testPatchEventTypeFields},
}

// patchRounds is how many times the concurrency tests race two changes.
const patchRounds = 40

// race runs a and b at once, round after round, and fails the test with
// the first error either returns; check runs after each round.
func race(t *testing.T, a, b func(round int) error, check func(round int)) {
	t.Helper()
	for round := range patchRounds {
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, fn := range []func(int) error{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = fn(round)
			})
		}
		close(start)
		wg.Wait()
		mustOK(t, fmt.Sprintf("round %d", round), errors.Join(errs...))
		check(round)
	}
}

// testPatchEndpointFields: two UpdateEndpointFunc calls changing different
// fields of one endpoint at the same time both take effect, every time.
func testPatchEndpointFields(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	race(t, func(round int) error {
		_, err := s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(ep *herald.Endpoint) error {
			ep.Description = fmt.Sprintf("description %d", round)
			return nil
		})
		return err
	}, func(round int) error {
		_, err := s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(ep *herald.Endpoint) error {
			ep.Metadata = map[string]string{"round": fmt.Sprint(round)}
			ep.RateLimit = u16(uint16(round + 1))
			return nil
		})
		return err
	}, func(round int) {
		got := mustGetEndpoint(t, s, app.ID, ep.ID)
		want := fmt.Sprintf("description %d", round)
		if got.Description != want || got.Metadata["round"] != fmt.Sprint(round) || got.RateLimit == nil || int(*got.RateLimit) != round+1 {
			t.Fatalf("round %d: description %q, metadata %v, rate %v; want %q, round %d, rate %d: a change was lost",
				round, got.Description, got.Metadata, got.RateLimit, want, round, round+1)
		}
	})
}

// testPatchEndpointHeaders: two merges of different headers of one
// endpoint at the same time both take effect, and the sealed secrets stay.
func testPatchEndpointHeaders(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	setHeader := func(name string) func(int) error {
		return func(round int) error {
			_, err := s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(ep *herald.Endpoint) error {
				if ep.Headers == nil {
					ep.Headers = map[string]string{}
				}
				ep.Headers[name] = fmt.Sprintf("%s-%d", name, round)
				return nil
			})
			return err
		}
	}
	race(t, setHeader("X-Alpha"), setHeader("X-Beta"), func(round int) {
		got := mustGetEndpoint(t, s, app.ID, ep.ID)
		want := map[string]string{"X-Alpha": fmt.Sprintf("X-Alpha-%d", round), "X-Beta": fmt.Sprintf("X-Beta-%d", round)}
		mustEqual(t, fmt.Sprintf("round %d headers", round), want, got.Headers)
		mustEqual(t, fmt.Sprintf("round %d secrets", round), ep.Secrets, got.Secrets)
	})
}

// testPatchEndpointFunc: UpdateEndpointFunc finds the endpoint by ID or
// uid within its application, keeps the fields it does not own, returns
// what it stored, and changes nothing when update fails.
func testPatchEndpointFunc(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	ep := newEndpoint(app.ID, 3)
	ep.UID = "ep-uid"
	ep.Headers = map[string]string{"X-Keep": "kept"}
	mustCreateEndpoint(t, s, ep)

	var given herald.Endpoint
	got, err := s.UpdateEndpointFunc(ctx, app.ID, "ep-uid", func(e *herald.Endpoint) error {
		given = *e
		e.URL, e.UpdatedAt = "https://example.com/changed", at(10)
		e.ID, e.AppID, e.CreatedAt, e.FailingSince = "ep_other", other.ID, at(99), at(98) // not the caller's to change
		return nil
	})
	mustOK(t, "UpdateEndpointFunc by uid", err)
	mustEqual(t, "endpoint given to update", ep, &given)
	want := *ep
	want.URL, want.UpdatedAt = "https://example.com/changed", at(10)
	mustEqual(t, "returned endpoint", &want, got)
	mustEqual(t, "stored endpoint", &want, mustGetEndpoint(t, s, app.ID, ep.ID))

	errNo := errors.New("rejected")
	_, err = s.UpdateEndpointFunc(ctx, app.ID, ep.ID, func(e *herald.Endpoint) error {
		e.Description, e.Headers = "never stored", nil
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Fatalf("UpdateEndpointFunc with a failing update: %v, want its error", err)
	}
	mustEqual(t, "endpoint after a failed update", &want, mustGetEndpoint(t, s, app.ID, ep.ID))

	called := false
	noop := func(*herald.Endpoint) error { called = true; return nil }
	_, err = s.UpdateEndpointFunc(ctx, other.ID, ep.ID, noop)
	mustCode(t, "UpdateEndpointFunc in another app", err, herald.ENOTFOUND)
	_, err = s.UpdateEndpointFunc(ctx, app.ID, id(herald.PrefixEndpoint, 50), noop)
	mustCode(t, "UpdateEndpointFunc unknown", err, herald.ENOTFOUND)
	if called {
		t.Fatal("UpdateEndpointFunc called update for an endpoint it did not find")
	}

	taken := newEndpoint(app.ID, 4)
	taken.UID = "taken"
	mustCreateEndpoint(t, s, taken)
	_, err = s.UpdateEndpointFunc(ctx, app.ID, ep.ID, func(e *herald.Endpoint) error { e.UID = "taken"; return nil })
	mustCode(t, "UpdateEndpointFunc to a taken uid", err, herald.ECONFLICT)
	mustEqual(t, "endpoint after a conflict", &want, mustGetEndpoint(t, s, app.ID, ep.ID))
}

// testPatchEndpointKeepsAutoDisable: a change through UpdateEndpointFunc
// that leaves Disabled alone keeps an automatic disable made after the
// caller last read the endpoint, and queues no event; one that sets
// Disabled false enables it, clears FailingSince and queues
// endpoint.enabled.
func testPatchEndpointKeepsAutoDisable(t *testing.T, s herald.Store) {
	mustOperationalEndpoint(t, s)
	f := mustEngineFixture(t, s, 1)
	app, ep := f.app, f.eps[0]
	messagesAt(t, s, app.ID, 10)
	c := onlyTo(claim(t, s, nodeA, at(20), 100), ep.ID)
	mustRecord(t, s, herald.AttemptOutcome{DeliveryID: c[0].Delivery.ID, LeaseOwner: nodeA,
		Status: herald.DeliveryFailed, DisableEndpoint: true, Attempt: newAttempt(c[0], 30, herald.AttemptFailed, 410)})
	events := len(operationalEvents(t, s))

	got, err := s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(e *herald.Endpoint) error {
		e.Description, e.UpdatedAt = "renamed", at(40)
		return nil
	})
	mustOK(t, "UpdateEndpointFunc", err)
	stored := mustGetEndpoint(t, s, app.ID, ep.ID)
	if !got.Disabled || !stored.Disabled || stored.Description != "renamed" || !stored.FailingSince.Equal(at(30)) {
		t.Fatalf("after a rename: returned disabled %v; stored disabled %v, description %q, failing since %v; want true, true, renamed, %v",
			got.Disabled, stored.Disabled, stored.Description, stored.FailingSince, at(30))
	}
	if n := len(operationalEvents(t, s)); n != events {
		t.Fatalf("a rename queued %d operational events, want none", n-events)
	}

	got, err = s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(e *herald.Endpoint) error {
		e.Disabled, e.UpdatedAt = false, at(41)
		return nil
	})
	mustOK(t, "UpdateEndpointFunc (enable)", err)
	stored = mustGetEndpoint(t, s, app.ID, ep.ID)
	if got.Disabled || !got.FailingSince.IsZero() || stored.Disabled || !stored.FailingSince.IsZero() {
		t.Fatalf("after enabling: returned %v/%v, stored %v/%v (disabled/failing since); want false/zero",
			got.Disabled, got.FailingSince, stored.Disabled, stored.FailingSince)
	}
	evs := operationalEvents(t, s)
	if len(evs) != events+1 || evs[len(evs)-1].Type != herald.EventEndpointEnabled {
		t.Fatalf("operational events after enabling: %v, want %s last", evs, herald.EventEndpointEnabled)
	}
}

// testPatchApplicationFields: two UpdateApplicationFunc calls changing
// different fields of one application at the same time both take effect;
// ref may be the uid, and a failing update changes nothing.
func testPatchApplicationFields(t *testing.T, s herald.Store) {
	app := newApp(1)
	app.UID = "app-uid"
	mustCreateApp(t, s, app)
	race(t, func(round int) error {
		_, err := s.UpdateApplicationFunc(t.Context(), "app-uid", func(a *herald.Application) error {
			a.Name = fmt.Sprintf("name %d", round)
			return nil
		})
		return err
	}, func(round int) error {
		_, err := s.UpdateApplicationFunc(t.Context(), app.ID, func(a *herald.Application) error {
			a.Metadata = map[string]string{"round": fmt.Sprint(round)}
			a.UpdatedAt = at(100 + round)
			return nil
		})
		return err
	}, func(round int) {
		got, err := s.GetApplication(t.Context(), app.ID)
		mustOK(t, "GetApplication", err)
		if got.Name != fmt.Sprintf("name %d", round) || got.Metadata["round"] != fmt.Sprint(round) {
			t.Fatalf("round %d: name %q, metadata %v: a change was lost", round, got.Name, got.Metadata)
		}
	})

	before, err := s.GetApplication(t.Context(), app.ID)
	mustOK(t, "GetApplication", err)
	errNo := errors.New("rejected")
	_, err = s.UpdateApplicationFunc(t.Context(), app.ID, func(a *herald.Application) error {
		a.Name = "never stored"
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Fatalf("UpdateApplicationFunc with a failing update: %v, want its error", err)
	}
	got, err := s.UpdateApplicationFunc(t.Context(), app.ID, func(a *herald.Application) error {
		a.ID, a.CreatedAt = "app_other", at(99)
		return nil
	})
	mustOK(t, "UpdateApplicationFunc", err)
	mustEqual(t, "application after a failed update", before, got)
	_, err = s.UpdateApplicationFunc(t.Context(), "missing", func(*herald.Application) error { return nil })
	mustCode(t, "UpdateApplicationFunc unknown", err, herald.ENOTFOUND)
}

// testPatchEventTypeFields: two UpdateEventTypeFunc calls changing
// different fields of one event type at the same time both take effect.
func testPatchEventTypeFields(t *testing.T, s herald.Store) {
	et := mustCreateEventType(t, s, newEventType(1, "user.created"))
	race(t, func(round int) error {
		_, err := s.UpdateEventTypeFunc(t.Context(), et.Name, func(e *herald.EventType) error {
			e.Description = fmt.Sprintf("description %d", round)
			return nil
		})
		return err
	}, func(round int) error {
		_, err := s.UpdateEventTypeFunc(t.Context(), et.Name, func(e *herald.EventType) error {
			e.FeatureFlag = fmt.Sprintf("flag-%d", round)
			e.Deprecated = round%2 == 1
			return nil
		})
		return err
	}, func(round int) {
		got, err := s.GetEventType(t.Context(), et.Name)
		mustOK(t, "GetEventType", err)
		if got.Description != fmt.Sprintf("description %d", round) || got.FeatureFlag != fmt.Sprintf("flag-%d", round) ||
			got.Deprecated != (round%2 == 1) {
			t.Fatalf("round %d: description %q, feature flag %q, deprecated %v: a change was lost",
				round, got.Description, got.FeatureFlag, got.Deprecated)
		}
	})
	got, err := s.UpdateEventTypeFunc(t.Context(), et.Name, func(e *herald.EventType) error {
		e.Name, e.CreatedAt, e.UpdatedAt = "user.renamed", at(99), at(200)
		return nil
	})
	mustOK(t, "UpdateEventTypeFunc", err)
	if got.Name != et.Name || !got.CreatedAt.Equal(et.CreatedAt) || !got.UpdatedAt.Equal(at(200)) {
		t.Fatalf("UpdateEventTypeFunc returned name %q, created %v, updated %v; want %q, %v, %v",
			got.Name, got.CreatedAt, got.UpdatedAt, et.Name, et.CreatedAt, at(200))
	}
	_, err = s.UpdateEventTypeFunc(t.Context(), "user.missing", func(*herald.EventType) error { return nil })
	mustCode(t, "UpdateEventTypeFunc unknown", err, herald.ENOTFOUND)
}
