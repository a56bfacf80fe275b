package postgres_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// TestNodeLiveness: nodes register and heartbeat; a node whose heartbeat
// is older than the timeout is taken over by another in one step (marked,
// and its sending deliveries back to pending at once, no attempt
// counted), while live nodes and the taker keep theirs; the node taken
// over can no longer heartbeat, its late outcomes change nothing, and
// deliveries it leases after the takeover come back at the next one.
func TestNodeLiveness(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	a, b := openStore(t, schema, ring), openStore(t, schema, ring)
	ctx := t.Context()
	conn := connect(t)
	nodeTable := pgx.Identifier{schema, "node"}.Sanitize()
	age := func(name, col string, by time.Duration) {
		t.Helper()
		if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = %s - $2::interval WHERE name = $1`, nodeTable, col, col), name, by); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now().UTC().Truncate(time.Second)
	for i, name := range []string{"node-a", "node-b", "node-c"} {
		s := a
		if name == "node-b" {
			s = b
		}
		n := &herald.Node{Name: name, Version: "v1.2.3", Host: "host-" + name, PID: 100 + i, StartedAt: start.Add(time.Duration(i) * time.Second)}
		if err := s.RegisterNode(ctx, n); err != nil {
			t.Fatalf("RegisterNode %s: %v", name, err)
		}
		if n.HeartbeatAt.IsZero() {
			t.Fatalf("RegisterNode %s left HeartbeatAt zero", name)
		}
	}
	if err := b.RegisterNode(ctx, &herald.Node{Name: "node-a", StartedAt: start}); herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("RegisterNode of a taken name = %v, want ECONFLICT", err)
	}
	nodes, now, err := a.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := nodeNames(nodes); !slices.Equal(names, []string{"node-c", "node-b", "node-a"}) {
		t.Fatalf("ListNodes = %v, want newest start first", names)
	}
	if n := nodes[1]; n.Version != "v1.2.3" || n.Host != "host-node-b" || n.PID != 101 || !n.StartedAt.Equal(start.Add(time.Second)) ||
		n.State(now, 15*time.Second) != herald.NodeAlive {
		t.Fatalf("node-b listed as %+v, state %s", n, n.State(now, 15*time.Second))
	}
	before := nodes[2].HeartbeatAt
	hb, err := a.HeartbeatNode(ctx, "node-a")
	if err != nil || hb.Before(before) {
		t.Fatalf("HeartbeatNode = %v, %v; want a heartbeat not before %v", hb, err, before)
	}

	// Deliveries: two leased to node-b, one to node-a, one to node-c.
	f := newLivenessFixture(t, a, start)
	bMsgs := f.send(t, b, 2, herald.Lease{Owner: "node-b", Until: start.Add(time.Hour)})
	aMsgs := f.send(t, a, 1, herald.Lease{Owner: "node-a", Until: start.Add(time.Hour)})
	cMsgs := f.send(t, a, 1, herald.Lease{Owner: "node-c", Until: start.Add(time.Hour)})

	// node-b falls silent; node-a, also silent for longer than the
	// timeout, is the taker and is never taken over by itself.
	age("node-b", "heartbeat_at", time.Minute)
	age("node-a", "heartbeat_at", time.Minute)
	dead, moved, err := a.TakeOverDeadNodes(ctx, "node-a", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if names := nodeNames(dead); !slices.Equal(names, []string{"node-b"}) || moved != 2 {
		t.Fatalf("TakeOverDeadNodes = %v, %d deliveries; want [node-b], 2", names, moved)
	}
	for _, m := range bMsgs {
		d := f.delivery(t, a, m)
		if d.Status != herald.DeliveryPending || d.LeaseOwner != "" || d.Attempts != 0 {
			t.Fatalf("node-b's delivery after the takeover: %s owned by %q with %d attempts, want pending, unowned, 0", d.Status, d.LeaseOwner, d.Attempts)
		}
	}
	for _, m := range append(aMsgs, cMsgs...) {
		if d := f.delivery(t, a, m); d.Status != herald.DeliverySending {
			t.Fatalf("a live node's delivery after the takeover: %s, want sending", d.Status)
		}
	}
	if _, err := b.HeartbeatNode(ctx, "node-b"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("HeartbeatNode of a node taken over = %v, want ENOTFOUND", err)
	}
	if _, err := b.HeartbeatNode(ctx, "node-unknown"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("HeartbeatNode of an unknown node = %v, want ENOTFOUND", err)
	}
	// A late outcome of node-b changes nothing.
	late := f.delivery(t, a, bMsgs[0])
	if err := b.RecordAttempts(ctx, []herald.AttemptOutcome{{DeliveryID: late.ID, LeaseOwner: "node-b",
		LeaseUntil: start.Add(time.Hour), Status: herald.DeliverySucceeded,
		Attempt: &herald.Attempt{MessageID: bMsgs[0], EndpointID: f.ep.ID, AppID: f.app.ID, URL: f.ep.URL,
			ResponseStatus: 200, Status: herald.AttemptSucceeded, Trigger: herald.TriggerScheduled, CreatedAt: start}}}); err != nil {
		t.Fatal(err)
	}
	if d := f.delivery(t, a, bMsgs[0]); d.Status != herald.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("delivery after node-b's late outcome: %s with %d attempts, want pending with 0", d.Status, d.Attempts)
	}

	nodes, now, err = a.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		want := map[string]string{"node-a": herald.NodePresumedDead, "node-b": herald.NodeTakenOver, "node-c": herald.NodeAlive}[n.Name]
		if got := n.State(now, 30*time.Second); got != want {
			t.Errorf("%s is %s, want %s", n.Name, got, want)
		}
		if n.Name == "node-b" && (n.TakenOverBy != "node-a" || n.TakenOverAt.IsZero()) {
			t.Errorf("node-b taken over at %v by %q, want a time and node-a", n.TakenOverAt, n.TakenOverBy)
		}
	}

	// node-b, paused across the takeover, stores a delivery under its
	// lease before it notices: the next takeover returns it, with no new
	// node taken over.
	straggler := f.send(t, b, 1, herald.Lease{Owner: "node-b", Until: start.Add(time.Hour)})
	if _, err := a.HeartbeatNode(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	dead, moved, err = b.TakeOverDeadNodes(ctx, "node-c", 30*time.Second)
	if err != nil || len(dead) != 0 || moved != 1 {
		t.Fatalf("second TakeOverDeadNodes = %v, %d, %v; want none, 1 delivery", nodeNames(dead), moved, err)
	}
	if d := f.delivery(t, a, straggler[0]); d.Status != herald.DeliveryPending {
		t.Fatalf("straggler after the second takeover: %s, want pending", d.Status)
	}

	// A clean stop forgets the node; a node taken over a day ago is
	// forgotten at the next takeover.
	if err := a.DeregisterNode(ctx, "node-c"); err != nil {
		t.Fatal(err)
	}
	age("node-b", "taken_over_at", herald.NodeKeep+time.Minute)
	if _, _, err := a.TakeOverDeadNodes(ctx, "node-x", time.Hour); err != nil {
		t.Fatal(err)
	}
	if nodes, _, err = a.ListNodes(ctx); err != nil || !slices.Equal(nodeNames(nodes), []string{"node-a"}) {
		t.Fatalf("ListNodes after a deregistration and a day = %v, %v; want [node-a]", nodeNames(nodes), err)
	}
	if _, _, err := a.TakeOverDeadNodes(ctx, "node-a", 0); herald.ErrorCode(err) != herald.EINVALID {
		t.Fatalf("TakeOverDeadNodes with a zero timeout = %v, want EINVALID", err)
	}
}

// TestHeartbeatBeatsTakeover: a heartbeat that commits while a takeover
// waits for the node's row wins: the takeover re-checks the renewed
// heartbeat and leaves the node alone.
func TestHeartbeatBeatsTakeover(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	a, b := openStore(t, schema, ring), openStore(t, schema, ring)
	ctx := t.Context()
	if err := a.RegisterNode(ctx, &herald.Node{Name: "slow", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	conn := connect(t)
	nodeTable := pgx.Identifier{schema, "node"}.Sanitize()
	if _, err := conn.Exec(ctx, `UPDATE `+nodeTable+` SET heartbeat_at = now() - interval '1 hour' WHERE name = 'slow'`); err != nil {
		t.Fatal(err)
	}
	// The node's heartbeat, held open: stale until it commits.
	tx, err := connect(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE `+nodeTable+` SET heartbeat_at = clock_timestamp() WHERE name = 'slow'`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		dead []*herald.Node
		err  error
	}
	done := make(chan result, 1)
	go func() {
		dead, _, err := b.TakeOverDeadNodes(ctx, "taker", time.Minute)
		done <- result{dead, err}
	}()
	waitForLockWait(t, conn.Config().Database, schema)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.dead) != 0 {
		t.Fatalf("takeover racing a heartbeat = %v, %v; want none taken over", nodeNames(r.dead), r.err)
	}
	if _, err := a.HeartbeatNode(ctx, "slow"); err != nil {
		t.Fatalf("heartbeat after the race: %v", err)
	}
}

// waitForLockWait waits until some backend of the test database waits for
// a row lock (the takeover behind the open heartbeat).
func waitForLockWait(t *testing.T, database, schema string) {
	t.Helper()
	conn := connect(t)
	for range 500 {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%taken_over_at = now()%'`, database).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no takeover waited for the node's row in schema %s", schema)
}

func nodeNames(nodes []*herald.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// livenessFixture is an application with one endpoint.
type livenessFixture struct {
	app *herald.Application
	ep  *herald.Endpoint
	now time.Time
}

func newLivenessFixture(t *testing.T, s *postgres.Store, now time.Time) *livenessFixture {
	t.Helper()
	f := &livenessFixture{now: now}
	f.app = &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "liveness", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), f.app); err != nil {
		t.Fatal(err)
	}
	f.ep = &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/hook",
		Version: 1, Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(t.Context(), f.ep); err != nil {
		t.Fatal(err)
	}
	return f
}

// send stores n messages under lease and returns their IDs.
func (f *livenessFixture) send(t *testing.T, s *postgres.Store, n int, lease herald.Lease) []string {
	t.Helper()
	msgs := make([]*herald.Message, n)
	ids := make([]string, n)
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: f.app.ID, EventType: "e", Payload: []byte(`{}`), CreatedAt: f.now}
		ids[i] = msgs[i].ID
	}
	if _, err := s.CreateMessages(t.Context(), msgs, lease); err != nil {
		t.Fatal(err)
	}
	return ids
}

// delivery returns the message's one delivery.
func (f *livenessFixture) delivery(t *testing.T, s *postgres.Store, msgID string) *herald.Delivery {
	t.Helper()
	ds, err := s.ListMessageDeliveries(t.Context(), f.app.ID, msgID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("ListMessageDeliveries %s = %d, %v", msgID, len(ds), err)
	}
	return ds[0]
}
