package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-webhooks/herald"
)

// Node liveness on a database several nodes share (PostgreSQL): the
// dispatcher registers its node under its Owner name, renews a heartbeat
// every NodeHeartbeat, and takes over the nodes whose heartbeat is older
// than NodeTimeout: their sending deliveries return to the queue at once
// instead of when each lease expires (the lease stays as a second safety
// net). A node that finds itself taken over stops at once and Run returns
// ErrTakenOver: it must not deliver what other nodes now own.

// Liveness defaults.
const (
	DefaultNodeHeartbeat = 3 * time.Second
	DefaultNodeTimeout   = 15 * time.Second
)

// ErrTakenOver is what Run returns when another node presumed this one
// dead and took its deliveries over.
var ErrTakenOver = errors.New("this node was taken over by the cluster")

// livenessMargin is how long before the earliest moment other nodes may
// take this one over that its workers stop starting sends until the next
// heartbeat succeeds: room for the takeover's clock (the database's) and
// this node's monotonic clock to run at slightly different rates.
const livenessMargin = time.Second

// liveness is what the workers ask before each send: is this node known
// alive to the other nodes for a while yet?
type liveness struct {
	mu    sync.Mutex
	until time.Time     // monotonic: sends may start before it
	wake  chan struct{} // closed and replaced at each renewal or at the end
	gone  bool          // taken over: never send again
	// off: no node store (one process owns the database); always alive.
	off bool
}

func newLiveness(off bool) *liveness {
	return &liveness{wake: make(chan struct{}), off: off}
}

// renew records a heartbeat sent at sentAt (local monotonic clock): no
// node can take this one over before sentAt + timeout.
func (l *liveness) renew(sentAt time.Time, timeout time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return // taken over: for good
	}
	if u := sentAt.Add(timeout - livenessMargin); u.After(l.until) {
		l.until = u
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

// end marks the node taken over and wakes every waiter.
func (l *liveness) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.gone {
		l.gone = true
		close(l.wake)
	}
}

// isGone reports whether the node was taken over.
func (l *liveness) isGone() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone
}

// alive reports whether a send may start now.
func (l *liveness) alive() bool {
	if l.off {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.gone && time.Now().Before(l.until)
}

// await waits until a send may start (true), or the node was taken over or
// ctx ended (false).
func (l *liveness) await(ctx context.Context) bool {
	if l.off {
		return true
	}
	for {
		l.mu.Lock()
		gone, ok, wake := l.gone, time.Now().Before(l.until), l.wake
		l.mu.Unlock()
		switch {
		case gone:
			return false
		case ok:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-wake:
		}
	}
}

// register records this node in the node store and starts its liveness.
func (d *Dispatcher) register(ctx context.Context) error {
	info := d.cfg.Node
	info.Name = d.cfg.Owner
	if info.StartedAt.IsZero() {
		info.StartedAt = d.cfg.Now()
	}
	sent := time.Now()
	if err := d.cfg.Nodes.RegisterNode(ctx, &info); err != nil {
		return fmt.Errorf("register node %s: %w", info.Name, err)
	}
	d.live.renew(sent, d.cfg.NodeTimeout)
	d.log.Info("node registered", "heartbeat", d.cfg.NodeHeartbeat, "node_timeout", d.cfg.NodeTimeout)
	return nil
}

// heartbeatLoop renews this node's heartbeat and takes over dead nodes
// every NodeHeartbeat until ctx ends; when it finds this node taken over
// it calls stop and returns.
func (d *Dispatcher) heartbeatLoop(ctx context.Context, stop func()) {
	ticker := time.NewTicker(d.cfg.NodeHeartbeat)
	defer ticker.Stop()
	last := time.Now()
	// upSince starts this node's current run of heartbeats with no gap
	// as long as the node timeout. A node takes others over only after a
	// whole node timeout of such a run: after a database outage every
	// node's heartbeat is old, and the first node back must give the
	// others that long to heartbeat again before it presumes them dead
	// (else one outage would end every node but one).
	upSince := last
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, d.cfg.NodeHeartbeat)
		_, err := d.cfg.Nodes.HeartbeatNode(hctx, d.cfg.Owner)
		cancel()
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			d.log.Error(fmt.Sprintf("this node was presumed dead by the cluster after %s without a heartbeat; exiting so it does not deliver what other nodes took over; restart it",
				sent.Sub(last).Round(time.Second)), "node", d.cfg.Owner, "node_timeout", d.cfg.NodeTimeout)
			d.live.end()
			stop()
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("node heartbeat; sends pause if it keeps failing", "err", err,
					"since_last", sent.Sub(last).Round(time.Millisecond))
			}
			continue
		}
		if sent.Sub(last) >= d.cfg.NodeTimeout {
			upSince = sent
		}
		last = sent
		d.live.renew(sent, d.cfg.NodeTimeout)
		if sent.Sub(upSince) >= d.cfg.NodeTimeout {
			d.takeOver(ctx)
		}
	}
}

// takeOver returns the deliveries of nodes silent for NodeTimeout to the
// queue.
func (d *Dispatcher) takeOver(ctx context.Context) {
	tctx, cancel := context.WithTimeout(ctx, d.cfg.NodeHeartbeat)
	defer cancel()
	dead, n, err := d.cfg.Nodes.TakeOverDeadNodes(tctx, d.cfg.Owner, d.cfg.NodeTimeout)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("take over dead nodes", "err", err)
		}
		return
	}
	for _, node := range dead {
		d.log.Warn("took over a node whose heartbeat stopped; its deliveries are back in the queue",
			"dead_node", node.Name, "host", node.Host, "last_heartbeat", node.HeartbeatAt, "node_timeout", d.cfg.NodeTimeout)
	}
	if n > 0 {
		d.log.Info("returned deliveries of nodes taken over to the queue", "count", n)
		d.NotifyQueued()
	}
}

// deregister forgets this node after a clean stop (its deliveries were
// released or recorded).
func (d *Dispatcher) deregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.cfg.Nodes.DeregisterNode(ctx, d.cfg.Owner); err != nil {
		d.log.Warn("deregister node; it shows as presumed dead until taken over", "err", err)
	}
}
