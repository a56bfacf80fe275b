package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quiet drops the committer's logs, so expected batch failures stay out of
// the test output.
var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// env is a real SQLite store holding one application with one endpoint.
type env struct {
	store *sqlite.Store
	app   *herald.Application
	ep    *herald.Endpoint
}

func newEnv(t testing.TB, sync string) env {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{
		Path: filepath.Join(t.TempDir(), "herald.db"), Synchronous: sync, Keyring: testkeys.Ring(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, t0), Name: "App", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateApplication(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, t0), AppID: app.ID, URL: "https://example.com/",
		Version: 1, Secrets: []herald.SigningSecret{{Key: make([]byte, 32)}}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return env{store: s, app: app, ep: ep}
}

func (e env) msg(eventID string) *herald.Message {
	return &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventID: eventID,
		EventType: "user.created", Payload: []byte(`{"a":1}`), CreatedAt: time.Now()}
}

// gate blocks the commit loop inside the OnCommit of its first batch until
// released, so a test can queue requests behind a commit in progress.
type gate struct {
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	batches []int // sizes of committed batches (successful messages)
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) onCommit(res []herald.MessageResult) {
	g.mu.Lock()
	g.batches = append(g.batches, len(res))
	g.mu.Unlock()
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
}

func (g *gate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.batches...)
}

// waitQueued waits until n requests wait in c's queue.
func waitQueued(t *testing.T, c *Committer, n int) {
	t.Helper()
	for len(c.reqs) < n {
		if t.Context().Err() != nil {
			t.Fatalf("%d requests queued, want %d", len(c.reqs), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// call is one CreateMessage call running in its own goroutine.
type call struct {
	msg  *herald.Message
	res  herald.MessageResult
	err  error
	done chan struct{}
}

func start(c *Committer, m *herald.Message) *call {
	cl := &call{msg: m, done: make(chan struct{})}
	go func() {
		defer close(cl.done)
		cl.res, cl.err = c.CreateMessage(context.Background(), m)
	}()
	return cl
}

// blockLoop commits one message and leaves the loop held in OnCommit.
func blockLoop(t *testing.T, e env, c *Committer, g *gate) *call {
	t.Helper()
	first := start(c, e.msg(""))
	<-g.entered
	return first
}

func TestConcurrentCallersShareBatches(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{OnCommit: g.onCommit, Logger: quiet})
	defer c.Close()

	first := blockLoop(t, e, c, g)
	const n = 64
	calls := make([]*call, n)
	for i := range calls {
		calls[i] = start(c, e.msg(fmt.Sprintf("evt-%d", i)))
	}
	waitQueued(t, c, n)
	close(g.release)

	for _, cl := range append(calls, first) {
		<-cl.done
		if cl.err != nil || cl.res.Err != nil {
			t.Fatalf("message %s: %v / %v", cl.msg.ID, cl.err, cl.res.Err)
		}
		if cl.res.Message == nil || cl.res.Message.ID != cl.msg.ID {
			t.Fatalf("caller of %s got the result of %v", cl.msg.ID, cl.res.Message)
		}
		if len(cl.res.Deliveries) != 1 || cl.res.Deliveries[0].MessageID != cl.msg.ID || cl.res.Deliveries[0].EndpointID != e.ep.ID {
			t.Fatalf("deliveries of %s = %+v", cl.msg.ID, cl.res.Deliveries)
		}
		got, err := e.store.GetMessage(t.Context(), e.app.ID, cl.msg.ID)
		if err != nil || got.EventID != cl.msg.EventID {
			t.Fatalf("stored message %s: %v, %v", cl.msg.ID, got, err)
		}
	}
	c.Close() // OnCommit runs after the callers are answered; let it finish
	sizes := g.sizes()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != n {
		t.Fatalf("batch sizes %v, want [1 %d]: requests queued during a commit form the next batch", sizes, n)
	}
}

func TestMaxBatch(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{MaxBatch: 4, OnCommit: g.onCommit, Logger: quiet})
	defer c.Close()

	first := blockLoop(t, e, c, g)
	calls := make([]*call, 10)
	for i := range calls {
		calls[i] = start(c, e.msg(""))
	}
	waitQueued(t, c, 4) // the queue holds MaxBatch; the rest wait to enqueue
	close(g.release)
	for _, cl := range append(calls, first) {
		<-cl.done
		if cl.err != nil || cl.res.Err != nil {
			t.Fatalf("message: %v / %v", cl.err, cl.res.Err)
		}
	}
	c.Close() // OnCommit runs after the callers are answered; let it finish
	total := 0
	for _, size := range g.sizes() {
		if size > 4 {
			t.Fatalf("batch of %d over MaxBatch 4 (sizes %v)", size, g.sizes())
		}
		total += size
	}
	if total != 11 {
		t.Fatalf("committed %d messages, want 11", total)
	}
}

func TestPerMessageErrorsIsolated(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{OnCommit: g.onCommit, Logger: quiet})
	defer c.Close()

	if res, err := e.store.CreateMessages(t.Context(), []*herald.Message{e.msg("taken")}, herald.Lease{}); err != nil || res[0].Err != nil {
		t.Fatalf("first message: %v / %v", err, res[0].Err)
	}
	first := blockLoop(t, e, c, g)

	noApp := e.msg("")
	noApp.AppID = herald.NewID(herald.PrefixApplication)
	calls := []*call{start(c, e.msg("")), start(c, noApp), start(c, e.msg("taken")), start(c, e.msg("fresh"))}
	want := []string{"", herald.ENOTFOUND, herald.ECONFLICT, ""}
	waitQueued(t, c, len(calls))
	close(g.release)
	<-first.done
	for i, cl := range calls {
		<-cl.done
		if cl.err != nil {
			t.Fatalf("call %d: batch error %v", i, cl.err)
		}
		if got := herald.ErrorCode(cl.res.Err); got != want[i] {
			t.Errorf("call %d: code %q (%v), want %q", i, got, cl.res.Err, want[i])
		}
	}
	// The two failures were left out of what the dispatcher hears about.
	c.Close()
	if sizes := g.sizes(); len(sizes) != 2 || sizes[1] != 2 {
		t.Errorf("OnCommit batch sizes %v, want the last to hold the 2 stored messages", sizes)
	}
}

func TestBatchErrorReachesEveryCaller(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{OnCommit: g.onCommit, Logger: quiet})
	defer c.Close()

	first := blockLoop(t, e, c, g)
	calls := []*call{start(c, e.msg("")), start(c, e.msg("")), start(c, e.msg(""))}
	waitQueued(t, c, len(calls))
	if err := e.store.Close(); err != nil { // the next batch fails as a whole
		t.Fatal(err)
	}
	close(g.release)
	<-first.done
	for i, cl := range calls {
		<-cl.done
		if code := herald.ErrorCode(cl.err); code != herald.EUNAVAILABLE {
			t.Errorf("call %d: error %v (code %q), want %q", i, cl.err, code, herald.EUNAVAILABLE)
		}
	}
}

func TestCloseDrainsThenRefuses(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{OnCommit: g.onCommit, Logger: quiet})

	first := blockLoop(t, e, c, g)
	calls := []*call{start(c, e.msg("")), start(c, e.msg("")), start(c, e.msg(""))}
	waitQueued(t, c, len(calls))
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close returned: every queued message is already in the store.
	for i, cl := range append(calls, first) {
		if _, err := e.store.GetMessage(t.Context(), e.app.ID, cl.msg.ID); err != nil {
			t.Errorf("queued message %d not committed when Close returned: %v", i, err)
		}
	}
	for i, cl := range append(calls, first) {
		<-cl.done
		if cl.err != nil || cl.res.Err != nil {
			t.Errorf("queued call %d: %v / %v", i, cl.err, cl.res.Err)
		}
	}
	_, err := c.CreateMessage(t.Context(), e.msg(""))
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Fatalf("after Close: %v (code %q), want %q", err, code, herald.EUNAVAILABLE)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCallerContextEnds(t *testing.T) {
	e := newEnv(t, "NORMAL")
	g := newGate()
	c := New(e.store, Config{OnCommit: g.onCommit, Logger: quiet})
	defer c.Close()

	first := blockLoop(t, e, c, g)
	ctx, cancel := context.WithCancel(t.Context())
	m := e.msg("")
	errc := make(chan error, 1)
	go func() {
		_, err := c.CreateMessage(ctx, m)
		errc <- err
	}()
	waitQueued(t, c, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller got %v, want context.Canceled", err)
	}
	close(g.release)
	<-first.done
	// The abandoned message was still committed, as documented.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetMessage(t.Context(), e.app.ID, m.ID); err != nil {
		t.Fatalf("abandoned message: %v", err)
	}
}

// TestLeasePerBatch: with a Lease function, each batch's deliveries are
// stored leased to what it returns for that batch; a zero result or no
// function at all stores them pending.
func TestLeasePerBatch(t *testing.T) {
	e := newEnv(t, "NORMAL")
	until := t0.Add(time.Hour)
	var mu sync.Mutex
	calls := 0
	leases := []herald.Lease{{Owner: "node-1", Until: until}, {}}
	c := New(e.store, Config{Logger: quiet, Lease: func() herald.Lease {
		mu.Lock()
		defer mu.Unlock()
		l := leases[calls%len(leases)]
		calls++
		return l
	}})
	leased, err := c.CreateMessage(t.Context(), e.msg(""))
	if err != nil || leased.Err != nil {
		t.Fatalf("first message: %v / %v", err, leased.Err)
	}
	pending, err := c.CreateMessage(t.Context(), e.msg(""))
	if err != nil || pending.Err != nil {
		t.Fatalf("second message: %v / %v", err, pending.Err)
	}
	c.Close()
	if calls != 2 {
		t.Fatalf("Lease called %d times for two batches, want 2", calls)
	}

	plain := New(e.store, Config{Logger: quiet})
	unleased, err := plain.CreateMessage(t.Context(), e.msg(""))
	plain.Close()
	if err != nil || unleased.Err != nil {
		t.Fatalf("message without Lease: %v / %v", err, unleased.Err)
	}

	for _, tc := range []struct {
		name   string
		res    herald.MessageResult
		status herald.DeliveryStatus
		owner  string
		until  time.Time
	}{
		{"leased batch", leased, herald.DeliverySending, "node-1", until},
		{"zero lease", pending, herald.DeliveryPending, "", time.Time{}},
		{"no Lease function", unleased, herald.DeliveryPending, "", time.Time{}},
	} {
		dels, err := e.store.ListMessageDeliveries(t.Context(), e.app.ID, tc.res.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(dels) != 1 {
			t.Fatalf("%s: %d deliveries, want 1", tc.name, len(dels))
		}
		d := dels[0]
		if d.Status != tc.status || d.LeaseOwner != tc.owner || !d.LeaseExpiresAt.Equal(tc.until) {
			t.Errorf("%s: delivery %s owned by %q until %v, want %s owned by %q until %v",
				tc.name, d.Status, d.LeaseOwner, d.LeaseExpiresAt, tc.status, tc.owner, tc.until)
		}
	}
}
