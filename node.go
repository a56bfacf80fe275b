package herald

import (
	"context"
	"time"
)

// Node is one herald serve process on a shared (PostgreSQL) database, as
// it registered itself. Its Name is the owner its dispatcher leases
// deliveries under.
type Node struct {
	Name      string
	Version   string
	Host      string
	PID       int
	StartedAt time.Time
	// HeartbeatAt is the node's latest heartbeat, in the database's clock.
	HeartbeatAt time.Time
	// TakenOverAt is when another node found the heartbeat older than the
	// node timeout and took its deliveries over; zero while it is alive.
	TakenOverAt time.Time
	// TakenOverBy names the node that took it over.
	TakenOverBy string
}

// Node states, as listed.
const (
	NodeAlive        = "alive"         // heartbeat within the node timeout
	NodePresumedDead = "presumed_dead" // heartbeat older than the node timeout, not yet taken over
	NodeTakenOver    = "taken_over"    // its deliveries were returned to the queue
)

// State is the node's state at now, judged with the node timeout.
func (n *Node) State(now time.Time, timeout time.Duration) string {
	switch {
	case !n.TakenOverAt.IsZero():
		return NodeTakenOver
	case now.Sub(n.HeartbeatAt) > timeout:
		return NodePresumedDead
	default:
		return NodeAlive
	}
}

// NodeStore is node liveness on a database several nodes share
// (PostgreSQL). Heartbeat and takeover times are the database's own
// clock, so the nodes' clocks need not agree. SQLite has none: one
// process owns its file.
type NodeStore interface {
	// RegisterNode records n as alive, its heartbeat now. A node already
	// registered under the name gives ECONFLICT.
	RegisterNode(ctx context.Context, n *Node) error
	// HeartbeatNode renews the node's heartbeat and returns it. A node
	// that was taken over (or is unknown) gives ENOTFOUND: it must stop
	// delivering at once.
	HeartbeatNode(ctx context.Context, name string) (time.Time, error)
	// TakeOverDeadNodes marks every live node (but by) whose heartbeat is
	// older than timeout as taken over by by and returns the sending
	// deliveries leased to it to pending, due now, without counting an
	// attempt, in one transaction. It returns the nodes taken over and
	// how many deliveries came back. Nodes taken over more than
	// NodeKeep ago are forgotten.
	TakeOverDeadNodes(ctx context.Context, by string, timeout time.Duration) ([]*Node, int, error)
	// ListNodes returns the registered nodes, newest start first, and the
	// database's clock now (to judge their State).
	ListNodes(ctx context.Context) ([]*Node, time.Time, error)
	// DeregisterNode forgets a node that stopped cleanly (after releasing
	// its deliveries).
	DeregisterNode(ctx context.Context, name string) error
}

// NodeKeep is how long a node that was taken over stays listed.
const NodeKeep = 24 * time.Hour
