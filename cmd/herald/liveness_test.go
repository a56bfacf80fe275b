package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gatedReceiver counts the arrivals of each message (webhook-id). While
// its gate is shut it holds every request, so the sender keeps it in
// flight, until the gate opens or the sender goes away.
type gatedReceiver struct {
	mu        sync.Mutex
	gate      chan struct{} // closed: answer at once
	arrivals  map[string]int
	completed map[string]time.Time // when a 204 was first written
}

func newGatedReceiver() *gatedReceiver {
	g := &gatedReceiver{gate: make(chan struct{}), arrivals: map[string]int{}, completed: map[string]time.Time{}}
	close(g.gate)
	return g
}

func (g *gatedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("webhook-id")
	g.mu.Lock()
	g.arrivals[id]++
	gate := g.gate
	g.mu.Unlock()
	select {
	case <-gate:
	case <-r.Context().Done():
		return // the sender went away
	}
	w.WriteHeader(http.StatusNoContent)
	g.mu.Lock()
	if g.completed[id].IsZero() {
		g.completed[id] = time.Now()
	}
	g.mu.Unlock()
}

func (g *gatedReceiver) shut() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedReceiver) open() {
	g.mu.Lock()
	close(g.gate)
	g.mu.Unlock()
}

// counts returns the arrivals of ids, and how many of them arrived at all.
func (g *gatedReceiver) counts(ids []string) (arrivals map[string]int, arrived int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	arrivals = map[string]int{}
	for _, id := range ids {
		arrivals[id] = g.arrivals[id]
		if g.arrivals[id] > 0 {
			arrived++
		}
	}
	return arrivals, arrived
}

// settledCounts returns the arrivals of ids once they have not changed for
// quiet, or after most.
func (g *gatedReceiver) settledCounts(ids []string, quiet, most time.Duration) map[string]int {
	deadline := time.Now().Add(most)
	last, _ := g.counts(ids)
	since := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		now, _ := g.counts(ids)
		if !maps.Equal(now, last) {
			last, since = now, time.Now()
		} else if time.Since(since) >= quiet {
			break
		}
	}
	return last
}

// waitCompleted waits until every id was answered 204 and returns when the
// last one was.
func (g *gatedReceiver) waitCompleted(t *testing.T, ids []string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		var last time.Time
		done := 0
		for _, id := range ids {
			if at := g.completed[id]; !at.IsZero() {
				done++
				if at.After(last) {
					last = at
				}
			}
		}
		g.mu.Unlock()
		if done == len(ids) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered after %v", done, len(ids), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitArrived waits until n of ids arrived at least once.
func (g *gatedReceiver) waitArrived(t *testing.T, ids []string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, got := g.counts(ids); got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d messages arrived", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNodeTakeover runs three herald processes on one PostgreSQL schema
// with --node-timeout 3s and a 60 s lease. One node holding deliveries
// (some in flight, some queued) is killed with SIGKILL and not restarted:
// the others send its deliveries within the node timeout plus a few
// seconds, long before its leases expire. Then another node holding
// deliveries is paused (SIGSTOP) past the timeout and resumed: the last
// node delivers what it held, and the resumed node sends none of what was
// taken over (only its sends in flight at the pause arrive twice), logs
// that it was presumed dead, and exits non-zero.
func TestNodeTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts, kills and pauses herald processes")
	}
	dbURL, _ := pgFreshSchema(t)
	rc := newGatedReceiver()
	recv := httptest.NewServer(rc)
	defer recv.Close()

	const (
		nodeTimeout = 3 * time.Second
		perPhase    = 10
	)
	token := "takeover-admin-token-0123456789"
	key := newEncryptionKey(t)
	args := []string{"--db", dbURL, "--encryption-key", key, "--admin-token", token,
		"--allow-private-targets", "--request-timeout", "5s", "--delivery-lease", "60s", "--retry-schedule", "1s,1s,1s",
		"--endpoint-concurrency", "2", "--node-heartbeat", "1s", "--node-timeout", nodeTimeout.String(), "--pg-max-conns", "6"}
	procs := make([]*process, 3)
	for i := range procs {
		procs[i] = startHerald(t, args...)
	}
	dumpLogs := func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("node %d log tail:\n%s", i, tail(p.stderr.String(), 4000))
			}
		}
	}
	defer dumpLogs()
	if code, body := request(t, "POST", procs[0].url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := request(t, "POST", procs[0].url+"/api/v1/app/a/endpoint", token, map[string]any{
		"url": recv.URL + "/hook", "uid": "e",
	}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}
	conn := pgConnect(t, dbURL)
	leasedTo := func(p *process) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM delivery WHERE status = 'sending' AND lease_owner LIKE $1`,
			"%-"+strconv.Itoa(p.cmd.Process.Pid)+"-%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	post := func(p *process) []string {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second}
		ids := make([]string, perPhase)
		for i := range ids {
			id, status, err := postMessage(client, p.url, token, `{"eventType":"order.created","payload":{"n":`+strconv.Itoa(i)+`}}`)
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("post message: %d %v", status, err)
			}
			ids[i] = id
		}
		return ids
	}

	// Phase 1: node 1 holds deliveries (two in flight at the shut gate,
	// the rest queued under its lease) and is killed.
	victim := procs[1]
	rc.shut()
	ids := post(victim)
	rc.waitArrived(t, ids, 2)
	held := leasedTo(victim)
	if held == 0 {
		t.Fatal("the node to kill holds no delivery: the test would prove nothing")
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killed := time.Now()
	time.Sleep(100 * time.Millisecond) // the receiver sees the dead node's connections close
	rc.open()
	last := rc.waitCompleted(t, ids, 30*time.Second)
	took := last.Sub(killed)
	t.Logf("killed a node holding %d deliveries; all delivered %v after the kill (node timeout %v, lease 60s)", held, took.Round(time.Millisecond), nodeTimeout)
	if took > nodeTimeout+4*time.Second {
		t.Errorf("the dead node's deliveries were delivered %v after the kill, want within the node timeout %v plus 4s", took, nodeTimeout)
	}
	arrivals, _ := rc.counts(ids)
	dup := 0
	for _, n := range arrivals {
		dup += n - 1
	}
	if dup > 2 {
		t.Errorf("%d duplicate arrivals after the kill, more than the 2 in flight", dup)
	}

	// The takeover shows in GET /api/v1/node and herald nodes.
	code, body := request(t, "GET", procs[0].url+"/api/v1/node", token, nil)
	var listed struct {
		Data []struct {
			Name, State, Version string
			PID                  int
			TakenOverBy          *string
		}
	}
	if code != http.StatusOK || json.Unmarshal(body, &listed) != nil || len(listed.Data) != 3 {
		t.Fatalf("GET /api/v1/node: %d %s", code, body)
	}
	for _, n := range listed.Data {
		want := "alive"
		if n.PID == victim.cmd.Process.Pid {
			want = "taken_over"
		}
		if n.State != want || n.Version != Version() {
			t.Errorf("node %s (pid %d) listed %s version %s, want %s version %s", n.Name, n.PID, n.State, n.Version, want, Version())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"nodes", "--db", dbURL, "--encryption-key", key, "--node-timeout", "3s"}, &out, &errOut); code != 0 {
		t.Fatalf("herald nodes exited %d: %s", code, errOut.String())
	}
	if got := out.String(); strings.Count(got, "alive") != 2 || strings.Count(got, "taken_over") != 1 ||
		!strings.Contains(got, strconv.Itoa(victim.cmd.Process.Pid)) {
		t.Errorf("herald nodes printed:\n%s", got)
	}

	// Phase 2: node 2 holds deliveries and is paused past the timeout.
	paused := procs[2]
	rc.shut()
	ids = post(paused)
	rc.waitArrived(t, ids, 2)
	pausedHeld := leasedTo(paused)
	if pausedHeld <= 2 {
		t.Fatalf("the node to pause holds %d deliveries, want more than its 2 in flight: the test would prove nothing", pausedHeld)
	}
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Sends in flight at the pause: what has arrived once the arrivals
	// stop changing. A request the node wrote just before SIGSTOP may
	// reach the receiver's handler later on a loaded machine, and some of
	// these messages may be another node's (an endpoint's overflow goes
	// back to the queue for any node): that node's held sends arrive too.
	// Nothing else can arrive meanwhile: the paused node is stopped, the
	// other holds its concurrency in held requests, and no takeover comes
	// before the node timeout.
	inFlight := rc.settledCounts(ids, 500*time.Millisecond, nodeTimeout)
	t.Logf("paused a node holding %d deliveries", pausedHeld)
	rc.open()
	rc.waitCompleted(t, ids, nodeTimeout+10*time.Second)
	time.Sleep(time.Second) // well past the timeout: taken over
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-paused.done:
		if err == nil {
			t.Error("the node taken over exited 0, want non-zero")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the node taken over did not exit within 20 s of SIGCONT")
	}
	if log := paused.stderr.String(); !strings.Contains(log, "presumed dead by the cluster") {
		t.Errorf("the node taken over did not say so in its log")
	}
	time.Sleep(500 * time.Millisecond) // anything it sent has arrived
	arrivals, _ = rc.counts(ids)
	for _, id := range ids {
		if allowed := 1 + inFlight[id]; arrivals[id] > allowed || arrivals[id] == 0 {
			t.Errorf("message %s arrived %d times (%d in flight at the pause): the node taken over delivered what it no longer owned", id, arrivals[id], inFlight[id])
		}
	}
}

// TestNodesOnSQLite: on SQLite, GET /api/v1/node lists the one process
// serving the file, alive; herald nodes says there is nothing to list.
func TestNodesOnSQLite(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, "--db", db)
	token := readToken(t, dir)
	code, body := request(t, "GET", p.url+"/api/v1/node", token, nil)
	var listed struct {
		Data []struct {
			Name, State, Version, StartedAt, LastHeartbeat string
			PID                                            int
		}
		Done bool
	}
	if code != http.StatusOK || json.Unmarshal(body, &listed) != nil || len(listed.Data) != 1 || !listed.Done {
		t.Fatalf("GET /api/v1/node: %d %s", code, body)
	}
	if n := listed.Data[0]; n.PID != p.cmd.Process.Pid || n.State != "alive" || n.Version != Version() || n.Name == "" || n.StartedAt == "" {
		t.Fatalf("listed %+v, want this process (pid %d), alive", n, p.cmd.Process.Pid)
	}
	if code, _ := request(t, "GET", p.url+"/api/v1/node", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/node without a token: %d, want 401", code)
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"nodes", "--db", db}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "one process owns the database file") {
		t.Fatalf("herald nodes on SQLite: %d %q %q", code, out.String(), errOut.String())
	}
}

// TestServeRefusesBadNodeFlags: --node-heartbeat and --node-timeout are
// checked before anything starts; a timeout under three heartbeats would
// let a healthy node be taken over between two of its heartbeats.
func TestServeRefusesBadNodeFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--node-heartbeat", "10ms"}, "--node-heartbeat"},
		{[]string{"--node-heartbeat", "2m", "--node-timeout", "10m"}, "--node-heartbeat"},
		{[]string{"--node-heartbeat", "3s", "--node-timeout", "8s"}, "--node-timeout"},
		{[]string{"--node-heartbeat", "100ms", "--node-timeout", "1s"}, "--node-timeout"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}
