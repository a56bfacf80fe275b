// Package task runs Herald's durable background tasks (herald.Task:
// recover, replay-missing, bulk replay, expunge-all-contents, and the
// statistics tasks) in the
// serving process. A runner claims one running task at a time and has the
// store do it in short slices, each one write transaction that also saves
// the task's progress, pausing between slices so that ingest and dispatch
// get the database in between. A task whose runner died is claimed again
// when its lease expires (on PostgreSQL by any node), and resumes where
// its last slice left it.
package task

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/herald-webhooks/herald"
)

// Store is what a runner needs of a store (herald.Store has it).
type Store interface {
	ClaimTask(ctx context.Context, owner string, now, leaseUntil time.Time) (*herald.Task, error)
	RunTaskSlice(ctx context.Context, id, owner string, limit int, now, leaseUntil time.Time) (*herald.Task, error)
}

// Config configures a Runner. Zero fields take the defaults.
type Config struct {
	Store Store
	// Owner names this runner in task leases. On PostgreSQL every node
	// needs its own (the dispatcher's owner); on SQLite one process owns
	// the database, and a fixed name lets it resume its own tasks at once
	// after a restart.
	Owner string
	// Slice is the most rows one slice reads (default 500): one write
	// transaction of a few milliseconds.
	Slice int
	// Pause is the wait between two slices (default 5 ms): the writer and
	// the claim are free in between, so fresh messages are not held up.
	Pause time.Duration
	// Lease is how long a claim on a task lasts without a slice (default
	// 30 s): a task of a runner that died is resumed after it.
	Lease time.Duration
	// Poll is how often an idle runner looks for tasks it was not woken
	// for: tasks of other nodes, or of a runner that died (default 2 s).
	Poll time.Duration
	// OnQueued is called after a slice that queued deliveries, to wake
	// the dispatcher; optional.
	OnQueued func()
	Now      func() time.Time
	Logger   *slog.Logger
}

// Runner runs background tasks; Run is its loop.
type Runner struct {
	cfg  Config
	wake chan struct{}
}

// New returns a runner; cfg.Store and cfg.Owner are required.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil || cfg.Owner == "" {
		return nil, errors.New("task: a runner needs a store and an owner")
	}
	if cfg.Slice <= 0 {
		cfg.Slice = 500
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 5 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnQueued == nil {
		cfg.OnQueued = func() {}
	}
	cfg.Logger = cfg.Logger.With("component", "task", "owner", cfg.Owner)
	return &Runner{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake tells the runner that a task was created, so it need not wait for
// its next poll. It never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs tasks until ctx ends. A store error is logged and
// retried at the next poll: the task's lease keeps it this runner's
// meanwhile, and its saved progress loses nothing.
func (r *Runner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		now := r.cfg.Now()
		t, err := r.cfg.Store.ClaimTask(ctx, r.cfg.Owner, now, now.Add(r.cfg.Lease))
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("claim a background task; trying again", "err", err, "retry_in", r.cfg.Poll)
			}
		case t != nil:
			if r.run(ctx, t) {
				continue // look for the next task at once
			}
		}
		r.idle(ctx)
	}
}

// idle waits for a wake, a poll or the end of ctx.
func (r *Runner) idle(ctx context.Context) {
	timer := time.NewTimer(r.cfg.Poll)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-timer.C:
	}
}

// run does t's slices until it is no longer running and reports whether
// it ended normally (false: a store error or a lost lease).
func (r *Runner) run(ctx context.Context, t *herald.Task) bool {
	log := r.cfg.Logger.With("task_id", t.ID, "task", string(t.Kind), "app_id", t.AppID)
	if t.Done > 0 {
		log.Info("resuming a background task", "done", t.Done)
	}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		now := r.cfg.Now()
		next, err := r.cfg.Store.RunTaskSlice(ctx, t.ID, r.cfg.Owner, r.cfg.Slice, now, now.Add(r.cfg.Lease))
		switch {
		case herald.ErrorCode(err) == herald.ECONFLICT:
			log.Info("a background task was claimed by another runner", "err", err)
			return false
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("run a slice of a background task; trying again", "err", err, "retry_in", r.cfg.Poll)
			}
			return false
		}
		if next.Done > t.Done && next.Kind.Queues() {
			r.cfg.OnQueued()
		}
		t = next
		switch t.Status {
		case herald.TaskFinished:
			log.Info("background task finished", "done", t.Done)
			return true
		case herald.TaskFailed:
			log.Warn("background task failed", "done", t.Done, "err", t.Error)
			return true
		}
		pause.Reset(r.cfg.Pause)
		select {
		case <-ctx.Done():
			return false
		case <-pause.C:
		}
	}
}
