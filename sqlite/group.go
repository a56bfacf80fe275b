package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/herald-webhooks/herald"
)

// maxGroup is the most write transactions merged into one commit.
const maxGroup = 64

// Group commit. SQLite has one writer, and every commit of a durable
// database (synchronous=FULL) ends in an fsync of the WAL. Ingest batches,
// attempt outcomes, claims and releases come from different goroutines at
// the same time; run one after another, each pays its own commit. The
// writer goroutine instead runs every write that queued while it was busy
// in one transaction, each inside a SAVEPOINT so that one failing rolls
// back alone, and commits them once: the callers share one fsync, and none
// hears back before the commit that holds its changes is durable. Bulk
// writes (writeAlone: ingest batches, attempt outcomes) keep a transaction
// of their own.

// writeReq is one caller's transaction body waiting for the writer.
type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
	// alone asks for a transaction of its own: a bulk write (an ingest
	// batch or a batch of attempt outcomes, each already a group commit of
	// its own) inside a SAVEPOINT would copy every page the group had
	// already changed into the savepoint's journal, which costs more than
	// the commit it would share (1→50 fan-out ran 12–22 % slower).
	alone bool
}

// groupWriter owns the writer goroutine's queue. mu guards closed: writes
// are queued under its read lock, so once stopWriter has set closed, no
// request can be queued that the writer would not answer.
type groupWriter struct {
	reqs   chan *writeReq
	quit   chan struct{}
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

// groupHook, set by tests, sees the size of each group before it is
// written.
var groupHook func(n int)

// errWriterClosed answers writes that reach a closed store.
var errWriterClosed = herald.Errorf(herald.EUNAVAILABLE, "The database is closed.")

// startWriter starts the writer goroutine; stopWriter ends it.
func (s *Store) startWriter() {
	s.group = &groupWriter{reqs: make(chan *writeReq, maxGroup), quit: make(chan struct{})}
	s.group.wg.Go(s.writeLoop)
}

// stopWriter stops taking writes, waits for the group being written and
// answers the writes still queued with errWriterClosed.
func (s *Store) stopWriter() {
	g := s.group
	if g == nil {
		return
	}
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.quit)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// write runs fn in a write transaction (BEGIN IMMEDIATE), possibly shared
// with other callers' functions, and returns once that transaction has
// committed (fn's changes are durable) or fn's changes were rolled back.
// fn must not call write. ctx, cancelled before fn starts, makes write
// return ctx's error without running fn; fn's statements run with ctx's
// values but not its cancellation (the context fn is given), because
// SQLite ends the whole transaction when a statement is interrupted,
// which would undo the other callers' work too.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.enqueueWrite(&writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// writeAlone is write for a bulk write: fn runs in a transaction of its
// own, never grouped with others.
func (s *Store) writeAlone(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.enqueueWrite(&writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), alone: true})
}

// enqueueWrite hands req to the writer goroutine and waits for its result.
func (s *Store) enqueueWrite(req *writeReq) error {
	ctx := req.ctx
	g := s.group
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errWriterClosed
	}
	select {
	case g.reqs <- req:
		g.mu.RUnlock()
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	// fn may be running: it writes the caller's variables, so wait for it
	// even when ctx ends.
	return <-req.done
}

// writeLoop takes a first request, whatever else is queued up to maxGroup,
// and writes them as one group, until stopWriter.
func (s *Store) writeLoop() {
	batch := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case <-s.group.quit:
			for {
				select {
				case req := <-s.group.reqs:
					req.done <- errWriterClosed
				default:
					return
				}
			}
		case first := <-s.group.reqs:
			batch = append(batch[:0], first)
		}
	drain:
		for len(batch) < maxGroup {
			select {
			case req := <-s.group.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		if groupHook != nil {
			groupHook(len(batch))
		}
		s.writeBatch(batch)
		clear(batch)
	}
}

// writeBatch writes the small requests as one group, then those that
// asked to be alone one by one. Small first: claims are among them, and
// the dispatcher's workers wait for what a claim brings, while an ingest
// batch or a batch of outcomes behind it only waits a little longer.
func (s *Store) writeBatch(batch []*writeReq) {
	group := make([]*writeReq, 0, len(batch))
	for _, req := range batch {
		if !req.alone {
			group = append(group, req)
		}
	}
	if len(group) > 0 {
		s.writeGroup(group)
	}
	for _, req := range batch {
		if req.alone {
			s.writeGroup([]*writeReq{req})
		}
	}
}

// writeGroup runs batch in one transaction and answers each request. A
// lone request runs bare, as a transaction of its own; several each run in
// a SAVEPOINT. When SQLite itself ended the transaction (it does on a full
// disk or an I/O error), every request of the group fails: the changes of
// those that had succeeded are gone too.
func (s *Store) writeGroup(batch []*writeReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	answer := func() {
		for i, req := range batch {
			req.done <- errs[i]
		}
	}
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		answer()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		failAll(err)
		return
	}
	if len(batch) == 1 {
		req := batch[0]
		if errs[0] = req.ctx.Err(); errs[0] == nil {
			errs[0] = req.fn(context.WithoutCancel(req.ctx), tx)
		}
		if errs[0] != nil {
			_ = tx.Rollback()
		} else {
			errs[0] = tx.Commit()
		}
		answer()
		return
	}
	ran := 0
	for i, req := range batch {
		if errs[i] = req.ctx.Err(); errs[i] != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT write`); err != nil {
			_ = tx.Rollback()
			failAll(err)
			return
		}
		if errs[i] = req.fn(context.WithoutCancel(req.ctx), tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO write`); err != nil {
				_ = tx.Rollback()
				failAll(errors.Join(errs[i], err))
				return
			}
		} else {
			ran++
		}
		if _, err := tx.ExecContext(ctx, `RELEASE write`); err != nil {
			_ = tx.Rollback()
			failAll(err)
			return
		}
	}
	if ran == 0 {
		_ = tx.Rollback()
		answer()
		return
	}
	if err := tx.Commit(); err != nil {
		failAll(err)
		return
	}
	answer()
}
