package dispatch_test

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/internal/sqlitetest"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// receiver is a real HTTP endpoint on loopback that verifies every delivery
// with the Standard Webhooks library and answers with respond.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	secret  string
	mu      sync.Mutex
	got     map[string]int                     // webhook-id → deliveries received
	bad     int                                // deliveries that failed verification
	respond func(n int, w http.ResponseWriter) // n counts requests, from 1
	calls   int
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, secret: signature.FormatSecret(key), got: map[string]int{}, respond: respond}
	verifier, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ok := verifier.Verify(body, req.Header) == nil
		r.mu.Lock()
		r.calls++
		n := r.calls
		if ok {
			r.got[req.Header.Get("webhook-id")]++
		} else {
			r.bad++
		}
		respond := r.respond
		r.mu.Unlock()
		if respond != nil {
			respond(n, w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out, r.bad
}

// openTestStore opens a SQLite store in a new temporary directory, closed
// when the test ends.
func openTestStore(t *testing.T) *sqlite.Store { return sqlitetest.Open(t) }

// env is a store, an application, a dispatcher and an ingest committer
// wired as herald serve wires them.
type env struct {
	store      *sqlite.Store
	app        *herald.Application
	dispatcher *dispatch.Dispatcher
	committer  *ingest.Committer
	clock      *testclock.Clock
	stop       func()
}

type envOptions struct {
	schedule     []time.Duration
	clock        *testclock.Clock // nil: real time
	lease        time.Duration
	timeout      time.Duration
	owner        string
	store        *sqlite.Store // nil: a new one
	perEndpoint  int           // 0: 8
	shutdown     time.Duration // 0: the dispatcher's default
	breaker      dispatch.BreakerConfig
	disableAfter time.Duration
	wrap         func(herald.Store) herald.Store // nil: the dispatcher uses the store as it is
	metrics      *telemetry.Metrics              // nil: discarded
	tracer       trace.Tracer                    // nil: no spans
	// publishers publish to broker endpoints; nil: a pool with a plain
	// dialer and the request timeout.
	publishers *destination.Publishers
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{clock: o.clock, store: o.store}
	if e.store == nil {
		e.store = openTestStore(t)
	}
	now := time.Now
	if o.clock != nil {
		now = o.clock.Now
	}
	if o.timeout == 0 {
		o.timeout = 2 * time.Second
	}
	e.app = &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "test", CreatedAt: now(), UpdatedAt: now()}
	if err := e.store.CreateApplication(t.Context(), e.app); err != nil {
		t.Fatal(err)
	}
	var store herald.Store = e.store
	if o.wrap != nil {
		store = o.wrap(store)
	}
	if o.publishers == nil {
		o.publishers = destination.NewPublishers(destination.Config{Timeout: o.timeout})
	}
	t.Cleanup(func() { o.publishers.Close() })
	d, err := dispatch.New(dispatch.Config{
		Store:           store,
		Publishers:      o.publishers,
		Sender:          dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: o.timeout, UserAgent: "Herald/test"}),
		Policy:          backoff.Policy{Schedule: o.schedule, Jitter: 0},
		Owner:           o.owner,
		Workers:         32,
		PerEndpoint:     cmp.Or(o.perEndpoint, 8),
		Breaker:         o.breaker,
		DisableAfter:    o.disableAfter,
		RequestTimeout:  o.timeout,
		Lease:           o.lease,
		PollInterval:    20 * time.Millisecond,
		ShutdownTimeout: o.shutdown,
		Now:             now,
		Metrics:         o.metrics,
		Tracer:          o.tracer,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.dispatcher = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	e.committer = ingest.New(e.store, ingest.Config{Lease: d.Lease, OnCommit: d.Enqueue})
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			e.committer.Close()
			cancel()
			<-done
		})
	}
	t.Cleanup(e.stop)
	return e
}

// runDispatcher runs d until the test ends; cleanups registered later
// (an ingest committer's Close) run before it stops.
func runDispatcher(t *testing.T, d *dispatch.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// storePending stores n messages of eventType straight into the store, in
// batches of 1,000, their deliveries pending and due now, as if a receiver
// had been down for a while.
func (e *env) storePending(t *testing.T, n int, eventType string) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		batch := make([]*herald.Message, min(1000, n-i))
		for j := range batch {
			batch[j] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: eventType,
				Payload: []byte(`{}`), CreatedAt: time.Now()}
		}
		if _, err := e.store.CreateMessages(t.Context(), batch, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
}

// endpoint creates an endpoint for r with the given routing.
func (e *env) endpoint(t *testing.T, r *receiver, filterTypes, channels []string) *herald.Endpoint {
	t.Helper()
	key, err := signature.ParseSecret(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ep := &herald.Endpoint{
		ID: herald.NewID(herald.PrefixEndpoint), AppID: e.app.ID, URL: r.srv.URL + "/hook", Version: 1,
		FilterTypes: filterTypes, Channels: channels, Secrets: []herald.SigningSecret{{Key: key}},
		CreatedAt: now, UpdatedAt: now,
	}
	if err := e.store.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// send commits one message through ingest, as the API does.
func (e *env) send(t *testing.T, eventType string, channels []string) *herald.Message {
	t.Helper()
	now := time.Now()
	if e.clock != nil {
		now = e.clock.Now()
	}
	m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: eventType,
		Payload: []byte(`{"n":1,"text":"héllo"}`), Channels: channels, CreatedAt: now}
	res, err := e.committer.CreateMessage(t.Context(), m)
	if err != nil || res.Err != nil {
		t.Fatalf("create message: %v %v", err, res.Err)
	}
	return res.Message
}

// eventually polls cond until it holds or the deadline passes. The deadline
// only bounds a hung test; nothing is asserted about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// delivery returns the delivery of msg to ep.
func (e *env) delivery(t *testing.T, msgID, endpointID string) *herald.Delivery {
	t.Helper()
	ds, err := e.store.ListMessageDeliveries(t.Context(), e.app.ID, msgID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.EndpointID == endpointID {
			return d
		}
	}
	t.Fatalf("no delivery of %s to %s", msgID, endpointID)
	return nil
}

func (e *env) attempts(t *testing.T, msgID string) []*herald.Attempt {
	t.Helper()
	as, err := e.store.ListAttempts(t.Context(), e.app.ID, herald.AttemptListOptions{
		ListOptions: herald.ListOptions{Limit: 1000}, MessageID: msgID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return as
}
