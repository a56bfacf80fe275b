package dispatch_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/signature"
)

// TestBacklogDoesNotDelayAnotherApp: application A has 2,000 deliveries
// pending in the database, all older than application B's message, and
// every one of A's requests is held by its receiver. B's message is
// delivered while A's backlog is still there: the claimer leaves A, which
// has a round of its workers queued already, claims B's delivery past A's
// older ones, and does not count A's queued jobs against B's room. (Oldest
// due first, A's backlog filled the queue and B waited for all of it.)
func TestBacklogDoesNotDelayAnotherApp(t *testing.T) {
	store := openTestStore(t)
	now := time.Now()
	appA := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "A", CreatedAt: now, UpdatedAt: now}
	appB := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "B", CreatedAt: now, UpdatedAt: now}
	for _, app := range []*herald.Application{appA, appB} {
		if err := store.CreateApplication(t.Context(), app); err != nil {
			t.Fatal(err)
		}
	}
	gate := make(chan struct{})
	held := newReceiver(t, func(_ int, w http.ResponseWriter) {
		<-gate
		w.WriteHeader(http.StatusNoContent)
	})
	// Registered after the receiver's cleanup, so it runs before it.
	t.Cleanup(func() { close(gate) })
	endpoint := func(app *herald.Application, r *receiver) {
		t.Helper()
		key, err := signature.ParseSecret(r.secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateEndpoint(t.Context(), &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID,
			URL: r.srv.URL + "/hook", Version: 1, Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		endpoint(appA, held)
	}
	healthy := newReceiver(t, nil)
	endpoint(appB, healthy)

	backlog := make([]*herald.Message, 20) // to A's 100 endpoints each
	for i := range backlog {
		backlog[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: appA.ID, EventType: "e",
			Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := store.CreateMessages(t.Context(), backlog, herald.Lease{}); err != nil {
		t.Fatal(err)
	}

	d, err := dispatch.New(dispatch.Config{
		Store:  store,
		Sender: dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: 10 * time.Minute, UserAgent: "Herald/test"}),
		// 8 of the 16 workers for one application; the queue holds 32.
		Workers:        16,
		PerEndpoint:    1,
		RequestTimeout: 10 * time.Minute,
		// No poll while the test runs: B's delivery must come with the
		// claim its own commit wakes, not with a full claim at a poll.
		PollInterval:    time.Hour,
		ShutdownTimeout: 50 * time.Millisecond, // the held sends are cut when the test ends
	})
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	d.Notify()
	heldRequests := func() int {
		got, _ := held.received()
		n := 0
		for _, c := range got {
			n += c
		}
		return n
	}
	eventually(t, "application A to hold its share of the workers", func() bool { return heldRequests() >= 8 })

	// As ingest hands over a commit it stored pending (this node's
	// queue was full).
	msgs := []*herald.Message{{ID: herald.NewID(herald.PrefixMessage), AppID: appB.ID, EventType: "e",
		Payload: []byte(`{}`), CreatedAt: time.Now()}}
	res, err := store.CreateMessages(t.Context(), msgs, herald.Lease{})
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue(res)
	eventually(t, "application B's message", func() bool {
		got, _ := healthy.received()
		return got[msgs[0].ID] == 1
	})
	if n := heldRequests(); n != 8 {
		t.Fatalf("application A has %d requests held, want its share: 8", n)
	}
}
