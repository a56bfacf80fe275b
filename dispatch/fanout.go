package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/herald-webhooks/herald"
)

// FanOutStore is what the fan-out worker needs of a store (herald.Store
// has it).
type FanOutStore interface {
	FanOut(ctx context.Context, limit int, lease herald.Lease) (herald.FanOutChunk, error)
}

// DefaultFanOutChunk is the most endpoints one fan-out transaction routes
// by default: short enough that an ingest batch queued behind it waits
// little (on SQLite the writer is shared), long enough that a
// 1,000-endpoint fan-out takes four commits. On SQLite with
// synchronous=FULL the commit's fsync, not the rows, is most of a chunk's
// time (BenchmarkLargeFanOut: 128 and 256 rows held the writer alike,
// and 128 cost more commits).
const DefaultFanOutChunk = 256

// FanOutConfig configures a FanOutWorker. Zero fields take the defaults.
type FanOutConfig struct {
	Store FanOutStore
	// Chunk is the most endpoints one transaction routes (default
	// DefaultFanOutChunk).
	Chunk int
	// Lease, when set, is called before each chunk: its deliveries are
	// then stored leased to that dispatcher and handed to it by OnChunk,
	// as ingest hands over an inline fan-out (Dispatcher.Lease).
	Lease func() herald.Lease
	// OnChunk, when set, receives each chunk's message and deliveries
	// after its commit (Dispatcher.Enqueue, which also wakes the claimer
	// for the pending ones). It must not block long.
	OnChunk func([]herald.MessageResult)
	// Poll is the pause between looks for fan-outs when nothing wakes the
	// worker (default one second): markers another node left (PostgreSQL)
	// and the retry after a failed chunk.
	Poll   time.Duration
	Logger *slog.Logger
}

// FanOutWorker creates the deliveries of deferred fan-outs (messages that
// CreateMessages stored with a fan-out marker), one chunk per short
// transaction, so other writers run between chunks. It starts with a pass
// at once, so markers a crash left are continued at start.
type FanOutWorker struct {
	cfg  FanOutConfig
	wake chan struct{}
}

// NewFanOutWorker returns a worker; cfg.Store is required.
func NewFanOutWorker(cfg FanOutConfig) (*FanOutWorker, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: fan-out worker needs a store")
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultFanOutChunk
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &FanOutWorker{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake tells the worker that a fan-out was committed, so it starts on it
// now instead of at the next poll. It never blocks.
func (w *FanOutWorker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// WakeFor is an ingest OnCommit hook: it wakes the worker when one of the
// committed messages was deferred.
func (w *FanOutWorker) WakeFor(results []herald.MessageResult) {
	for _, r := range results {
		if r.FanOut {
			w.Wake()
			return
		}
	}
}

// Run continues fan-outs until ctx ends: whenever woken, every Poll, and
// once at the start. A failed chunk is logged (once until chunks succeed
// again) and retried at the next poll; the chunks before it stay.
func (w *FanOutWorker) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-t.C:
		}
		err := w.Drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && !failing:
			w.cfg.Logger.Warn("fan-out failed; retrying every poll", "err", err, "poll", w.cfg.Poll)
		case err == nil && failing:
			w.cfg.Logger.Info("fan-out works again")
		}
		failing = err != nil
		t.Reset(w.cfg.Poll)
	}
}

// Drain works chunk after chunk until no fan-out waits, ctx ends or a
// chunk fails.
func (w *FanOutWorker) Drain(ctx context.Context) error {
	for ctx.Err() == nil {
		var lease herald.Lease
		if w.cfg.Lease != nil {
			lease = w.cfg.Lease()
		}
		chunk, err := w.cfg.Store.FanOut(ctx, w.cfg.Chunk, lease)
		if err != nil {
			return err
		}
		if chunk.Message == nil {
			return nil
		}
		if w.cfg.OnChunk != nil && len(chunk.Deliveries) > 0 {
			w.cfg.OnChunk([]herald.MessageResult{{Message: chunk.Message, Deliveries: chunk.Deliveries}})
		}
	}
	return ctx.Err()
}
