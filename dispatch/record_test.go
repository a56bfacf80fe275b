package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/sqlitetest"
)

// batchStore is a real store that remembers the size of every batch of
// outcomes written through it.
type batchStore struct {
	herald.Store
	mu      sync.Mutex
	batches [][]string // delivery IDs of each RecordAttempts call
}

func (b *batchStore) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	ids := make([]string, len(outcomes))
	for i := range outcomes {
		ids[i] = outcomes[i].DeliveryID
	}
	b.mu.Lock()
	b.batches = append(b.batches, ids)
	b.mu.Unlock()
	return b.Store.RecordAttempts(ctx, outcomes)
}

func (b *batchStore) written() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]string(nil), b.batches...)
}

// newRecorder returns a dispatcher on a real SQLite store whose recorder
// (not started) waits linger for more outcomes.
func newRecorder(t *testing.T, linger time.Duration) (*Dispatcher, *batchStore) {
	t.Helper()
	bs := &batchStore{Store: sqlitetest.Open(t)}
	d, err := New(Config{Store: bs, Sender: NewSender(SenderConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	d.linger = linger
	return d, bs
}

// taken waits until the recorder has taken every queued outcome.
func taken(t *testing.T, d *Dispatcher) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(d.outcomes) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recorder does not take outcomes")
		}
	}
}

func outcomeOf(id string) herald.AttemptOutcome {
	return herald.AttemptOutcome{DeliveryID: id, LeaseOwner: "node", Status: herald.DeliverySucceeded}
}

// TestRecorderCollectsOutcomes: outcomes that arrive one by one while the
// recorder lingers are written as one batch, not one transaction each.
func TestRecorderCollectsOutcomes(t *testing.T) {
	d, bs := newRecorder(t, time.Hour)
	done := make(chan struct{})
	go func() { d.record(); close(done) }()
	d.outcomes <- outcomeOf("dlv_1")
	taken(t, d)
	d.outcomes <- outcomeOf("dlv_2")
	taken(t, d)
	d.outcomes <- outcomeOf("dlv_3")
	taken(t, d)
	if got := bs.written(); len(got) != 0 {
		t.Fatalf("written before the linger ended: %v", got)
	}
	close(d.outcomes) // as at shutdown: the batch is written at once
	<-done
	got := bs.written()
	if len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("batches %v, want one of the three outcomes", got)
	}
}

// TestRecorderDoesNotLingerForFIFO: an outcome a FIFO endpoint waits for
// (its next delivery is claimable only once it is written) is written
// without waiting for more.
func TestRecorderDoesNotLingerForFIFO(t *testing.T) {
	d, bs := newRecorder(t, time.Hour)
	done := make(chan struct{})
	go func() { d.record(); close(done) }()
	t.Cleanup(func() { close(d.outcomes); <-done })
	d.fifo.add("dlv_fifo")
	d.outcomes <- outcomeOf("dlv_fifo")
	for deadline := time.Now().Add(10 * time.Second); len(bs.written()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a FIFO endpoint's outcome waited for more outcomes")
		}
	}
	if got := bs.written(); len(got[0]) != 1 || got[0][0] != "dlv_fifo" {
		t.Fatalf("batches %v", got)
	}
	// The recorder forgets it once the write returned.
	for deadline := time.Now().Add(10 * time.Second); d.fifo.n.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the FIFO outcome is still counted as waiting")
		}
	}
}
