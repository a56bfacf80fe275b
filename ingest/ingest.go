// Package ingest stores messages with group commit: concurrent callers share
// one store transaction, and so one fsync, instead of paying one each.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/telemetry"
)

// DefaultMaxBatch is the most messages one commit holds by default.
const DefaultMaxBatch = 512

// Config configures a Committer.
type Config struct {
	// MaxBatch is the most messages one commit holds; DefaultMaxBatch when
	// below 1.
	MaxBatch int
	// Logger receives batch failures; slog.Default() when nil.
	Logger *slog.Logger
	// OnCommit, when set, is called from the commit loop after each
	// committed batch with the results of the messages that were stored,
	// so the dispatcher can start on them at once. It must not block long:
	// the next commit waits for it. The slice is the callee's to keep.
	OnCommit func([]herald.MessageResult)
	// Lease, when set, is called once per batch before its commit. The
	// dispatcher provides it: a batch's deliveries are then stored already
	// leased to that dispatcher, which starts on them from OnCommit without
	// claiming them from the database, while another node cannot take them
	// and, should this one die, they return to the queue when the lease
	// expires. A nil Lease or a zero result stores pending deliveries.
	Lease func() herald.Lease
	// Metrics count committed messages and batch sizes; discarded when nil.
	Metrics *telemetry.Metrics
	// Tracer starts one span per commit, linked to the span of every
	// request in the batch; a no-op tracer when nil.
	Tracer trace.Tracer
}

// request is one CreateMessage call waiting for its batch.
type request struct {
	msg  *herald.Message
	span trace.SpanContext // the caller's span, linked from the commit's
	done chan outcome      // buffered: the loop never waits for a caller
}

// outcome is what a caller receives when its batch ends.
type outcome struct {
	res herald.MessageResult
	err error
}

// Committer batches CreateMessage calls into store.CreateMessages calls. One
// goroutine owns the loop: it takes every request already waiting (up to
// MaxBatch) and commits them together; requests that arrive during a commit
// form the next batch. There is no artificial delay, so a lone request is
// committed at once.
type Committer struct {
	store    herald.Store
	maxBatch int
	log      *slog.Logger
	onCommit func([]herald.MessageResult)
	lease    func() herald.Lease
	metrics  *telemetry.Metrics
	tracer   trace.Tracer

	reqs chan request
	// mu guards closed and, held for reading, every send on reqs, so Close
	// cannot close the channel under a sender.
	mu     sync.RWMutex
	closed bool
	loop   chan struct{} // closed when the loop has returned
}

// New starts a Committer over store. Call Close to stop it.
func New(store herald.Store, cfg Config) *Committer {
	if cfg.MaxBatch < 1 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.Discard()
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	c := &Committer{
		store:    store,
		maxBatch: cfg.MaxBatch,
		log:      cfg.Logger,
		onCommit: cfg.OnCommit,
		lease:    cfg.Lease,
		metrics:  cfg.Metrics,
		tracer:   cfg.Tracer,
		reqs:     make(chan request, cfg.MaxBatch),
		loop:     make(chan struct{}),
	}
	go c.run()
	return c
}

// errClosed is returned by calls after Close.
var errClosed = herald.Errorf(herald.EUNAVAILABLE, "The ingest queue is shut down.")

// CreateMessage stores m, with its deliveries, in the next batch and returns
// once that batch committed or failed. The caller sets m.ID and m.CreatedAt.
// A failure of the message alone (unknown application, taken eventId) is in
// the result's Err; the error is for the batch as a whole (nothing of it was
// committed) or the caller's context.
//
// When ctx ends first, CreateMessage returns ctx.Err() at once, but the
// message stays queued and may still be committed: the caller cannot know,
// as with any request whose answer was lost.
func (c *Committer) CreateMessage(ctx context.Context, m *herald.Message) (herald.MessageResult, error) {
	req := request{msg: m, span: trace.SpanContextFromContext(ctx), done: make(chan outcome, 1)}
	if err := c.enqueue(ctx, req); err != nil {
		return herald.MessageResult{}, err
	}
	select {
	case out := <-req.done:
		return out.res, out.err
	case <-ctx.Done():
		return herald.MessageResult{}, ctx.Err()
	}
}

// enqueue hands req to the loop unless the committer is closed.
func (c *Committer) enqueue(ctx context.Context, req request) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed
	}
	select {
	case c.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting messages, waits until every queued one has been
// committed (or failed), and stops the loop. Later CreateMessage calls
// return an EUNAVAILABLE error. Close does not close the store.
func (c *Committer) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.loop
	return nil
}

// run is the commit loop: it blocks for a first request, drains whatever
// else is waiting up to maxBatch, and commits the lot.
func (c *Committer) run() {
	defer close(c.loop)
	batch := make([]request, 0, c.maxBatch)
	msgs := make([]*herald.Message, 0, c.maxBatch)
	for {
		first, ok := <-c.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < c.maxBatch {
			select {
			case req, ok := <-c.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, req)
			default:
				break drain
			}
		}
		msgs = msgs[:0]
		for _, req := range batch {
			msgs = append(msgs, req.msg)
		}
		c.commit(batch, msgs)
		clear(batch) // drop references to finished requests
		clear(msgs)
	}
}

// commit stores one batch and answers each of its callers. The store call
// uses a context of its own: the batch belongs to all its callers, so no
// single caller's cancellation may abort it.
func (c *Committer) commit(batch []request, msgs []*herald.Message) {
	var lease herald.Lease
	if c.lease != nil {
		lease = c.lease()
	}
	ctx, span := c.startCommit(batch)
	results, err := c.store.CreateMessages(ctx, msgs, lease)
	if err == nil && len(results) != len(msgs) {
		err = errors.New("ingest: store returned a result count unlike the batch")
	}
	// Metrics and the span are finished before any caller hears back, so
	// whoever sees a 202 also sees it counted.
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		c.metrics.MessagesCommitted(len(msgs), 0)
		c.log.Error("commit message batch", "messages", len(msgs), "err", err)
		for _, req := range batch {
			req.done <- outcome{err: err}
		}
		return
	}
	span.End()
	var committed []herald.MessageResult
	if c.onCommit != nil {
		committed = make([]herald.MessageResult, 0, len(results))
	}
	stored := 0
	for _, res := range results {
		if res.Err == nil {
			stored++
			if c.onCommit != nil {
				committed = append(committed, res)
			}
		}
	}
	c.metrics.MessagesCommitted(len(msgs), stored)
	for i, req := range batch {
		req.done <- outcome{res: results[i]}
	}
	if len(committed) > 0 {
		c.onCommit(committed)
	}
}

// startCommit starts the span of one group commit: a root of its own (the
// batch belongs to all its callers), linked to the span of each request
// whose message it holds.
func (c *Committer) startCommit(batch []request) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(context.Background(), "herald.ingest.commit")
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("herald.batch_size", len(batch)))
		for _, req := range batch {
			if req.span.IsValid() {
				span.AddLink(trace.Link{SpanContext: req.span})
			}
		}
	}
	return ctx, span
}
