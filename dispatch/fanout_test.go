package dispatch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// fanOutFixture opens a store that defers fan-outs over 2 endpoints, with
// an application of n endpoints, and returns a function that posts one
// message to it.
func fanOutFixture(t *testing.T, n int) (*sqlite.Store, func() herald.MessageResult) {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "h.db"), Keyring: testkeys.Ring(t), FanOutInlineMax: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "fan-out", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	for range n {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
			Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
	}
	post := func() herald.MessageResult {
		t.Helper()
		m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "user.created", Payload: []byte(`{"a":1}`), CreatedAt: time.Now()}
		res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{})
		if err != nil || res[0].Err != nil || !res[0].FanOut {
			t.Fatalf("CreateMessages: %v, %+v; want a deferred fan-out", err, res)
		}
		return res[0]
	}
	return s, post
}

// chunkLog collects what a worker hands over.
type chunkLog struct {
	mu     sync.Mutex
	chunks [][]*herald.Delivery
	got    chan struct{}
}

func (c *chunkLog) onChunk(results []herald.MessageResult) {
	c.mu.Lock()
	for _, r := range results {
		c.chunks = append(c.chunks, r.Deliveries)
	}
	c.mu.Unlock()
	c.got <- struct{}{}
}

// waitDeliveries waits until the worker has handed over n deliveries in
// all, and returns them.
func (c *chunkLog) waitDeliveries(t *testing.T, n int) []*herald.Delivery {
	t.Helper()
	for {
		c.mu.Lock()
		var all []*herald.Delivery
		for _, ch := range c.chunks {
			all = append(all, ch...)
		}
		c.mu.Unlock()
		if len(all) >= n {
			return all
		}
		select {
		case <-c.got:
		case <-t.Context().Done():
			t.Fatalf("the worker handed over %d deliveries, want %d", len(all), n)
		}
	}
}

// TestFanOutWorkerResumesAtStartAndWakes: a marker already there when the
// worker starts (left by a crash) is continued at once; one committed
// later is started by WakeFor, not by the poll (an hour here). Every
// chunk holds at most Chunk deliveries, leased under the worker's Lease,
// and goes to OnChunk.
func TestFanOutWorkerResumesAtStartAndWakes(t *testing.T) {
	s, post := fanOutFixture(t, 10)
	first := post()
	lease := herald.Lease{Owner: "node-a", Until: time.Now().Add(time.Hour).Truncate(time.Microsecond)}
	log := &chunkLog{got: make(chan struct{}, 100)}
	w, err := dispatch.NewFanOutWorker(dispatch.FanOutConfig{Store: s, Chunk: 4, Poll: time.Hour,
		Lease: func() herald.Lease { return lease }, OnChunk: log.onChunk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	log.waitDeliveries(t, 10)
	second := post()
	w.WakeFor([]herald.MessageResult{{Message: &herald.Message{}}, second}) // the first has no fan-out
	got := log.waitDeliveries(t, 20)
	seen := map[string]bool{}
	for _, d := range got {
		if d.Status != herald.DeliverySending || d.LeaseOwner != lease.Owner || !d.LeaseExpiresAt.Equal(lease.Until) {
			t.Fatalf("delivery %+v: want it leased to %s until %v", d, lease.Owner, lease.Until)
		}
		if seen[d.MessageID+d.EndpointID] {
			t.Fatalf("delivery of %s to %s handed over twice", d.MessageID, d.EndpointID)
		}
		seen[d.MessageID+d.EndpointID] = true
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for i, ch := range log.chunks {
		if len(ch) > 4 {
			t.Fatalf("chunk %d holds %d deliveries, want at most 4", i, len(ch))
		}
	}
	for _, m := range []*herald.Message{first.Message, second.Message} {
		stored, err := s.ListMessageDeliveries(t.Context(), m.AppID, m.ID)
		if err != nil || len(stored) != 10 {
			t.Fatalf("message %s: %d deliveries stored (%v), want 10", m.ID, len(stored), err)
		}
	}
}

// failingFanOut fails its first calls, then passes them to the store.
type failingFanOut struct {
	dispatch.FanOutStore
	failures atomic.Int32
}

func (f *failingFanOut) FanOut(ctx context.Context, limit int, lease herald.Lease) (herald.FanOutChunk, error) {
	if f.failures.Add(-1) >= 0 {
		return herald.FanOutChunk{}, errors.New("database unreachable")
	}
	return f.FanOutStore.FanOut(ctx, limit, lease)
}

// TestFanOutWorkerRetriesAfterFailure: a failing chunk is retried at the
// next poll; the failure is logged once, and the recovery once.
func TestFanOutWorkerRetriesAfterFailure(t *testing.T) {
	s, post := fanOutFixture(t, 5)
	post()
	store := &failingFanOut{FanOutStore: s}
	store.failures.Store(3)
	var buf bytes.Buffer
	var bufMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&bufMu, &buf}, nil))
	log := &chunkLog{got: make(chan struct{}, 100)}
	w, err := dispatch.NewFanOutWorker(dispatch.FanOutConfig{Store: store, Chunk: 2, Poll: time.Millisecond, OnChunk: log.onChunk, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	got := log.waitDeliveries(t, 5)
	// The recovery is logged once the pass that handed them over ends.
	for !strings.Contains(lockedString(&bufMu, &buf), "fan-out works again") && t.Context().Err() == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, d := range got {
		if d.Status != herald.DeliveryPending {
			t.Fatalf("delivery %s is %s without a lease, want pending", d.ID, d.Status)
		}
	}
	bufMu.Lock()
	defer bufMu.Unlock()
	out := buf.String()
	if n := strings.Count(out, "fan-out failed"); n != 1 || !strings.Contains(out, "database unreachable") {
		t.Errorf("failure logged %d times, want once with the error:\n%s", n, out)
	}
	if n := strings.Count(out, "fan-out works again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
}

func lockedString(mu *sync.Mutex, b *bytes.Buffer) string {
	mu.Lock()
	defer mu.Unlock()
	return b.String()
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNewFanOutWorkerNeedsStore(t *testing.T) {
	if _, err := dispatch.NewFanOutWorker(dispatch.FanOutConfig{}); err == nil {
		t.Fatal("NewFanOutWorker without a store succeeded")
	}
}
