package task_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/task"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a real SQLite store with an application of seven messages
// and an endpoint created after them (so it has no deliveries).
type fixture struct {
	store *sqlite.Store
	clock *testclock.Clock
	app   *herald.Application
	ep    *herald.Endpoint
	msgs  []*herald.Message
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testkeys.Ring(t), Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f := &fixture{store: s, clock: testclock.New(start)}
	f.app = &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, start), Name: "A", CreatedAt: start, UpdatedAt: start}
	if err := s.CreateApplication(t.Context(), f.app); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		at := start.Add(time.Duration(i+1) * time.Second)
		f.msgs = append(f.msgs, &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: f.app.ID,
			EventType: "user.created", Payload: fmt.Appendf(nil, `{"i":%d}`, i), CreatedAt: at})
	}
	if _, err := s.CreateMessages(t.Context(), f.msgs, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	at := start.Add(time.Minute)
	f.ep = &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, at), AppID: f.app.ID, URL: "https://example.com/hook", Version: 1,
		Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef0123456789abcdef")}}, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateEndpoint(t.Context(), f.ep); err != nil {
		t.Fatal(err)
	}
	return f
}

// run starts r and returns a function that stops it and waits for it.
func run(r *task.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// wait polls the task until it is no longer running (the test's own
// deadline bounds the wait).
func wait(t *testing.T, s herald.Store, id string) *herald.Task {
	t.Helper()
	for {
		got, err := s.GetTask(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != herald.TaskRunning {
			return got
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("task %s still running at the test's deadline: %+v", id, got)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// TestRunnerRunsTasks: woken, a runner does a replay (which queues
// deliveries: the dispatcher is woken) and then a purge (which queues
// none), each in slices of two rows, to the end.
func TestRunnerRunsTasks(t *testing.T) {
	f := newFixture(t)
	var queued atomic.Int64
	r, err := task.New(task.Config{Store: f.store, Owner: "node-a", Slice: 2, Pause: time.Millisecond, Poll: time.Hour,
		Now: f.clock.Now, OnQueued: func() { queued.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(r)
	defer stop()

	replay := &herald.Task{Kind: herald.TaskReplay, AppID: f.app.ID, EndpointID: f.ep.ID}
	if err := f.store.CreateTask(t.Context(), replay, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	if got := wait(t, f.store, replay.ID); got.Status != herald.TaskFinished || got.Done != 7 {
		t.Fatalf("replay %+v, want finished with 7", got)
	}
	// Seven messages in slices of two: four slices queued deliveries.
	for queued.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	for _, m := range f.msgs {
		ds, err := f.store.ListMessageDeliveries(t.Context(), f.app.ID, m.ID)
		if err != nil || len(ds) != 1 || ds[0].NextAttemptAt != start {
			t.Fatalf("deliveries of %s: %+v, %v; want one due at the runner's clock", m.ID, ds, err)
		}
	}

	purge := &herald.Task{Kind: herald.TaskPurgeContent, AppID: f.app.ID}
	if err := f.store.CreateTask(t.Context(), purge, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.Wake()
	if got := wait(t, f.store, purge.ID); got.Status != herald.TaskFinished || got.Done != 7 {
		t.Fatalf("purge %+v, want finished with 7", got)
	}
	stop()
	if n := queued.Load(); n != 4 {
		t.Errorf("OnQueued called %d times, want 4 (the purge queues nothing)", n)
	}
}

// TestRunnerTakesOverExpiredLease: a task claimed by a runner that died
// (its lease ran out) is resumed by another at its next poll, from where
// the dead one's last slice left it.
func TestRunnerTakesOverExpiredLease(t *testing.T) {
	f := newFixture(t)
	purge := &herald.Task{Kind: herald.TaskPurgeContent, AppID: f.app.ID}
	if err := f.store.CreateTask(t.Context(), purge, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	if _, err := f.store.ClaimTask(t.Context(), "dead", now, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RunTaskSlice(t.Context(), purge.ID, "dead", 3, now, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(31 * time.Second)
	r, err := task.New(task.Config{Store: f.store, Owner: "node-b", Slice: 2, Pause: time.Millisecond, Poll: time.Millisecond, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(r)
	defer stop()
	if got := wait(t, f.store, purge.ID); got.Status != herald.TaskFinished || got.Done != 7 {
		t.Fatalf("purge %+v, want finished with 7 (3 by the dead runner)", got)
	}
}

func TestNewRefusesMissingStoreOrOwner(t *testing.T) {
	if _, err := task.New(task.Config{Owner: "x"}); err == nil {
		t.Error("a runner without a store")
	}
	f := newFixture(t)
	if _, err := task.New(task.Config{Store: f.store}); err == nil {
		t.Error("a runner without an owner")
	}
}
