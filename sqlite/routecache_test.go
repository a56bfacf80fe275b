package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestRouteCache: ingest batches reuse an application's routes while no
// endpoint or application changed, and route every message by what the
// database holds after any change, including changes another connection
// (another process, a restore) made behind the store's back.
func TestRouteCache(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	fx := newFixture(t, s, randomKey(t))
	raw := rawDB(t, path)
	n := 0
	// post creates one message and returns the endpoints it was routed to.
	post := func() ([]string, error) {
		t.Helper()
		n++
		res, err := s.CreateMessages(ctx, []*herald.Message{newMsg(fx.app.ID, n, "")}, herald.Lease{})
		if err != nil {
			t.Fatalf("CreateMessages: %v", err)
		}
		var eps []string
		for _, d := range res[0].Deliveries {
			eps = append(eps, d.EndpointID)
		}
		return eps, res[0].Err
	}
	loads := func() int {
		t.Helper()
		n, err := sqlite.RouteLoads(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	expect := func(step string, want ...string) {
		t.Helper()
		got, err := post()
		if err != nil {
			t.Fatalf("%s: message failed: %v", step, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: routed to %v, want %v", step, got, want)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	expect("first", fx.ep.ID)
	before := loads()
	expect("unchanged", fx.ep.ID)
	expect("unchanged", fx.ep.ID)
	if got := loads(); got != before {
		t.Fatalf("routes queried %d more times with nothing changed, want 0", got-before)
	}

	// A new endpoint through the store.
	ep2 := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, t0.Add(time.Second)), AppID: fx.app.ID,
		URL: "https://example.com/two", Version: 1, Secrets: []herald.SigningSecret{{Key: randomKey(t)}},
		CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateEndpoint(ctx, ep2); err != nil {
		t.Fatal(err)
	}
	expect("endpoint created", fx.ep.ID, ep2.ID)

	// Changes by another connection.
	exec(`UPDATE endpoint SET filter_types = '["invoice.paid"]' WHERE id = ?`, fx.ep.ID)
	expect("filter set elsewhere", ep2.ID)
	exec(`UPDATE endpoint SET disabled = 1 WHERE id = ?`, ep2.ID)
	expect("disabled elsewhere")
	exec(`UPDATE endpoint SET filter_types = NULL, disabled = 0 WHERE id IN (?, ?)`, fx.ep.ID, ep2.ID)
	expect("enabled elsewhere", fx.ep.ID, ep2.ID)
	exec(`UPDATE endpoint SET ordering = 'fifo' WHERE id = ?`, ep2.ID)
	res, err := s.CreateMessages(ctx, []*herald.Message{newMsg(fx.app.ID, 100, "")}, herald.Lease{Owner: "n1", Until: t0.Add(time.Hour)})
	if err != nil || len(res[0].Deliveries) != 2 {
		t.Fatalf("CreateMessages after ordering change: %v, %d deliveries", err, len(res[0].Deliveries))
	}
	for _, d := range res[0].Deliveries {
		if want := d.EndpointID == fx.ep.ID; (d.Status == herald.DeliverySending) != want {
			t.Fatalf("delivery to %s is %s after the endpoint became FIFO elsewhere", d.EndpointID, d.Status)
		}
	}
	exec(`DELETE FROM endpoint WHERE id = ?`, ep2.ID)
	expect("deleted elsewhere", fx.ep.ID)

	// A failure streak changes no route and keeps the cache.
	before = loads()
	exec(`UPDATE endpoint SET failing_since = 1 WHERE id = ?`, fx.ep.ID)
	expect("failing since set", fx.ep.ID)
	if got := loads(); got != before {
		t.Fatalf("routes queried %d more times after a failing_since update, want 0", got-before)
	}

	exec(`DELETE FROM application WHERE id = ?`, fx.app.ID)
	if _, err := post(); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("message to an application deleted elsewhere: err = %v, want ENOTFOUND", err)
	}
}

// TestRouteCacheBound: past its size the cache starts over, and messages
// to every application are still routed to its own endpoints.
func TestRouteCacheBound(t *testing.T) {
	sqlite.SetRouteCacheSize(t, 3) // one application and its endpoint fit, not two
	s, _ := newStore(t)
	ctx := t.Context()
	var apps []fixture
	for i := range 3 {
		app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, t0.Add(time.Duration(i)*time.Second)), Name: "App", CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateApplication(ctx, app); err != nil {
			t.Fatal(err)
		}
		ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, t0.Add(time.Duration(i)*time.Second)), AppID: app.ID,
			URL: "https://example.com/hook", Version: 1, Secrets: []herald.SigningSecret{{Key: randomKey(t)}}, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, fixture{app: app, ep: ep})
	}
	n := 0
	for round := range 3 {
		for _, fx := range apps {
			n++
			res, err := s.CreateMessages(ctx, []*herald.Message{newMsg(fx.app.ID, n, "")}, herald.Lease{})
			if err != nil || res[0].Err != nil {
				t.Fatalf("round %d: CreateMessages: %v %v", round, err, res[0].Err)
			}
			if len(res[0].Deliveries) != 1 || res[0].Deliveries[0].EndpointID != fx.ep.ID {
				t.Fatalf("round %d: message to %s routed to %+v, want its endpoint %s", round, fx.app.ID, res[0].Deliveries, fx.ep.ID)
			}
		}
	}
	// Each post found the cache holding another application: all 9 loaded.
	if loads, err := sqlite.RouteLoads(ctx, s); err != nil || loads != 9 {
		t.Fatalf("routes loaded %d times (%v), want 9", loads, err)
	}
}
