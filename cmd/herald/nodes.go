package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
)

// NodesCmd lists the nodes serving a PostgreSQL database, from the node
// table directly (GET /api/v1/node answers the same through the API).
type NodesCmd struct {
	DBFlags
	Log         LogFlags      `embed:""`
	NodeTimeout time.Duration `name:"node-timeout" env:"HERALD_NODE_TIMEOUT" default:"15s" help:"The nodes' --node-timeout: a node whose heartbeat is older is shown presumed dead."`
}

// Run prints one line per node: name, version, host, PID, start, last
// heartbeat (with its age), state.
func (c *NodesCmd) Run(env *Env) error {
	if !c.postgres() {
		fmt.Fprintln(env.Stdout, "SQLite: one process owns the database file, so there is one node: the herald serve holding it (GET /api/v1/node names it).")
		return nil
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = dispatch.DefaultNodeTimeout
	}
	s, err := keysDB(env.Ctx, &c.DBFlags, c.Log, env.Stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	ns, ok := s.(herald.NodeStore)
	if !ok {
		return fmt.Errorf("this database keeps no node table")
	}
	nodes, now, err := ns.ListNodes(env.Ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tHOST\tPID\tSTARTED\tLAST HEARTBEAT\tSTATE")
	for _, n := range nodes {
		state := n.State(now, c.NodeTimeout)
		if state == herald.NodeTakenOver {
			state += fmt.Sprintf(" (at %s by %s)", n.TakenOverAt.UTC().Format(time.RFC3339), n.TakenOverBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s (%s ago)\t%s\n", n.Name, n.Version, n.Host, n.PID,
			n.StartedAt.UTC().Format(time.RFC3339), n.HeartbeatAt.UTC().Format(time.RFC3339),
			now.Sub(n.HeartbeatAt).Round(100*time.Millisecond), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(nodes) == 0 {
		fmt.Fprintln(env.Stderr, "No node is registered: no herald serve runs on this database.")
	}
	return nil
}
