package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// What a deploy, a network partition and a database failover cost in
// delivery delay, measured with real herald processes under steady load.
// The tests log their figures (docs/operations.md quotes them) and assert
// what the design promises: nothing accepted is lost, duplicates only where
// at-least-once allows them, and the bounds the design states. They assert
// no tight wall-clock figure: the machine is shared.

// load posts messages from a few posters at a steady pace. Post n goes to
// targets[n mod len] first and, when that one does not accept it, to the
// others in turn, as a load balancer that skips a failing node would.
type load struct {
	token     string
	targets   []string
	eventType string
	every     time.Duration
	stop      chan struct{}
	wg        sync.WaitGroup
	next      atomic.Int64

	mu       sync.Mutex
	sent     map[string]time.Time // accepted message ID → when its POST was sent
	refusals []refusal
}

// refusal is a POST a target did not accept.
type refusal struct {
	at         time.Time // when the POST was sent
	took       time.Duration
	target     string
	status     int // 0: no HTTP answer (connection refused or reset)
	retryAfter string
	code       string // the error body's code
}

// startLoad starts posters that each post one message of eventType every
// interval until halt.
func startLoad(t *testing.T, token string, targets []string, eventType string, posters int, every time.Duration) *load {
	t.Helper()
	l := &load{token: token, targets: targets, eventType: eventType, every: every, stop: make(chan struct{}), sent: map[string]time.Time{}}
	for range posters {
		l.wg.Go(l.post)
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) post() {
	client := &http.Client{Timeout: 20 * time.Second}
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		n := l.next.Add(1) - 1
		body := fmt.Sprintf(`{"eventType":%q,"payload":{"n":%d}}`, l.eventType, n)
		for i := range l.targets {
			target := l.targets[(int(n)+i)%len(l.targets)]
			sent := time.Now()
			id, r := postTimed(client, target, l.token, body)
			l.mu.Lock()
			if id != "" {
				l.sent[id] = sent
			} else {
				r.at, r.took, r.target = sent, time.Since(sent), target
				l.refusals = append(l.refusals, r)
			}
			l.mu.Unlock()
			if id != "" {
				break
			}
		}
	}
}

// postTimed posts one message and returns its ID when the answer is 202,
// else what the refusal was.
func postTimed(client *http.Client, base, token, body string) (string, refusal) {
	req, err := http.NewRequest("POST", base+"/api/v1/app/a/msg", strings.NewReader(body))
	if err != nil {
		return "", refusal{}
	}
	req.Header.Set("authorization", "Bearer "+token)
	req.Header.Set("content-type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", refusal{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ ID, Code string }
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode == http.StatusAccepted && out.ID != "" {
		return out.ID, refusal{}
	}
	return "", refusal{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), code: out.Code}
}

// halt stops the posters and waits for their last posts; it may be called
// more than once.
func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// accepted returns a copy of the accepted messages and when each was sent.
func (l *load) accepted() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]time.Time, len(l.sent))
	for id, at := range l.sent {
		out[id] = at
	}
	return out
}

// refused returns the refusals by target, in the order they were sent.
func (l *load) refused(target string) []refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []refusal
	for _, r := range l.refusals {
		if r.target == target {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b refusal) int { return a.at.Compare(b.at) })
	return out
}

// arrivals returns, for each message the receiver got, its first arrival
// and how many times it arrived.
func arrivals(rc *recorder) (first map[string]time.Time, count map[string]int) {
	first, count = map[string]time.Time{}, map[string]int{}
	for _, r := range rc.receptions() {
		if at, ok := first[r.msg]; !ok || r.arrived.Before(at) {
			first[r.msg] = r.arrived
		}
		count[r.msg]++
	}
	return first, count
}

// notArrived counts the messages of sent without a first arrival.
func notArrived(sent, first map[string]time.Time) int {
	n := 0
	for id := range sent {
		if _, ok := first[id]; !ok {
			n++
		}
	}
	return n
}

// waitArrivals waits until every message of sent has arrived at rc at least
// once and returns the first arrivals and counts.
func waitArrivals(t *testing.T, rc *recorder, sent map[string]time.Time, timeout time.Duration) (first map[string]time.Time, count map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		first, count = arrivals(rc)
		missing := notArrived(sent, first)
		if missing == 0 {
			return first, count
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted messages not delivered %v after the wait began", missing, len(sent), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// delays summarizes the delivery delay (first arrival at the receiver less
// the time the POST was sent) of the messages sent in [from, to).
type delays struct {
	n        int
	p50, max time.Duration
}

func delaysOf(sent, first map[string]time.Time, from, to time.Time) delays {
	var ds []time.Duration
	for id, at := range sent {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		ds = append(ds, max(first[id].Sub(at), 0))
	}
	if len(ds) == 0 {
		return delays{}
	}
	slices.Sort(ds)
	return delays{n: len(ds), p50: ds[len(ds)/2], max: ds[len(ds)-1]}
}

func (d delays) String() string {
	return fmt.Sprintf("%d messages, delay p50 %v max %v", d.n, d.p50.Round(time.Millisecond), d.max.Round(time.Millisecond))
}

// duplicatesOf counts the extra arrivals of the messages of sent.
func duplicatesOf(sent map[string]time.Time, count map[string]int) int {
	n := 0
	for id := range sent {
		if count[id] > 1 {
			n += count[id] - 1
		}
	}
	return n
}

// window returns the first and last refusal times, or zero times.
func window(rs []refusal) (first, last time.Time) {
	if len(rs) == 0 {
		return
	}
	return rs[0].at, rs[len(rs)-1].at.Add(rs[len(rs)-1].took)
}

// startRecorder starts a loopback receiver that holds each request for
// hold, closed when the test ends, and returns it with its URL.
func startRecorder(t *testing.T, hold time.Duration) (*recorder, string) {
	t.Helper()
	rc := &recorder{hold: hold}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// createApp creates application a with one endpoint per uid → URL, each
// taking the event types given with its URL after a space (none: all).
func createApp(t *testing.T, base, token string, endpoints map[string]string) {
	t.Helper()
	if code, body := request(t, "POST", base+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	for uid, spec := range endpoints {
		ep := map[string]any{"uid": uid}
		u, filter, ok := strings.Cut(spec, " ")
		ep["url"] = u
		if ok {
			ep["filterTypes"] = []string{filter}
		}
		if code, body := request(t, "POST", base+"/api/v1/app/a/endpoint", token, ep); code != http.StatusCreated {
			t.Fatalf("create endpoint %s: %d %s", uid, code, body)
		}
	}
}

// TestDeployCostSQLite measures a deploy of a SQLite server: under steady
// load (about 150 messages/s to an endpoint that answers in 20 ms, and 5
// a second to one that takes 1 s) the server gets SIGTERM and, as soon as
// it has exited (it holds the database's lock until then), a new process
// starts on the same address. While neither listens, POSTs are refused
// (connection refused): for as long as the old process takes to finish
// its sends in flight, up to the slow endpoint's second. It returns the
// rest to the queue, so the new process has nothing leased to recover,
// and every accepted message is delivered exactly once.
func TestDeployCostSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts herald processes")
	}
	fast, fastURL := startRecorder(t, 20*time.Millisecond)
	slow, slowURL := startRecorder(t, time.Second)
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"--db", dir + "/herald.db", "--listen", addr, "--allow-private-targets",
		"--request-timeout", "2s", "--shutdown-timeout", "10s"}
	p := startHerald(t, args...)
	token := readToken(t, dir)
	createApp(t, base, token, map[string]string{"e": fastURL + "/hook/e steady", "slow": slowURL + "/hook/slow slow"})

	ld := startLoad(t, token, []string{base}, "steady", 4, 25*time.Millisecond)
	slowLoad := startLoad(t, token, []string{base}, "slow", 1, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	term := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("herald exited with %v after SIGTERM:\n%s", err, tail(p.stderr.String(), 4000))
	}
	exited := time.Now()
	p2 := startHerald(t, args...)
	listening := time.Now()
	if n := releasedAtStart(t, p2); n != 0 {
		t.Errorf("the new process returned %d leased deliveries to the queue: the graceful stop left them leased", n)
	}
	time.Sleep(2 * time.Second)
	ld.halt()
	slowLoad.halt()

	sent := ld.accepted()
	first, count := waitArrivals(t, fast, sent, 30*time.Second)
	slowSent := slowLoad.accepted()
	_, slowCount := waitArrivals(t, slow, slowSent, 30*time.Second)
	stats := waitDrained(t, base, token, []string{"e", "slow"}, 30*time.Second)
	refused := append(ld.refused(base), slowLoad.refused(base)...)
	slices.SortFunc(refused, func(a, b refusal) int { return a.at.Compare(b.at) })
	from, to := window(refused)
	for _, r := range refused {
		if r.status != 0 {
			t.Errorf("a POST sent %v after SIGTERM was answered %d %s: a deploy should only refuse connections",
				r.at.Sub(term).Round(time.Millisecond), r.status, r.code)
		}
	}
	before := delaysOf(sent, first, time.Time{}, term.Add(-time.Second))
	around := delaysOf(sent, first, term.Add(-time.Second), listening.Add(time.Second))
	after := delaysOf(sent, first, listening.Add(time.Second), time.Now())
	t.Logf("SIGTERM to exit %v (sends in flight to the 1 s endpoint finishing), exit to listening %v; %d POSTs refused from %v to %v after SIGTERM",
		exited.Sub(term).Round(time.Millisecond), listening.Sub(exited).Round(time.Millisecond), len(refused),
		from.Sub(term).Round(time.Millisecond), to.Sub(term).Round(time.Millisecond))
	t.Logf("20 ms endpoint: before %v; around the deploy %v; after %v; %d duplicates (1 s endpoint: %d)",
		before, around, after, duplicatesOf(sent, count), duplicatesOf(slowSent, slowCount))
	if len(refused) == 0 {
		t.Error("no POST was refused: the deploy was not under load, the test proves nothing")
	}
	for uid, st := range stats {
		if st.Fail != 0 {
			t.Errorf("endpoint %s: %d deliveries failed", uid, st.Fail)
		}
	}
	if d := duplicatesOf(sent, count) + duplicatesOf(slowSent, slowCount); d != 0 {
		t.Errorf("%d duplicate deliveries: a graceful stop records its sends in flight", d)
	}
	// The design: a new process sends what is queued as soon as it listens.
	if last := around.max - listening.Sub(term); last > 10*time.Second {
		t.Errorf("a message accepted around the deploy waited %v past the restart", last)
	}
}

// pgNodeArgs returns the herald serve flags of a node on dbURL with short
// liveness settings (heartbeat 1s, node timeout 3s).
func pgNodeArgs(dbURL, token, key, addr string, extra ...string) []string {
	return append([]string{"--db", dbURL, "--encryption-key", key, "--admin-token", token, "--listen", addr,
		"--allow-private-targets", "--request-timeout", "1s", "--shutdown-timeout", "10s",
		"--node-heartbeat", "1s", "--node-timeout", "3s", "--endpoint-concurrency", "2", "--pg-max-conns", "6"}, extra...)
}

// postBurst posts n messages of eventType to base one after the other and
// returns when each was sent.
func postBurst(t *testing.T, base, token, eventType string, n int) map[string]time.Time {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	sent := map[string]time.Time{}
	for i := range n {
		at := time.Now()
		id, r := postTimed(client, base, token, fmt.Sprintf(`{"eventType":%q,"payload":{"i":%d}}`, eventType, i))
		if id == "" {
			t.Fatalf("burst post %d to %s: %d %s", i, base, r.status, r.code)
		}
		sent[id] = at
	}
	return sent
}

// lastArrival returns the latest first arrival of the messages of sent.
func lastArrival(sent, first map[string]time.Time) time.Time {
	var last time.Time
	for id := range sent {
		if first[id].After(last) {
			last = first[id]
		}
	}
	return last
}

// leasedToPID counts the deliveries leased to the herald process pid.
func leasedToPID(t *testing.T, conn *pgx.Conn, pid int) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM delivery WHERE status = 'sending' AND lease_owner LIKE $1`,
		"%-"+strconv.Itoa(pid)+"-%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// earliest returns the earliest time of sent.
func earliest(sent map[string]time.Time) time.Time {
	var first time.Time
	for _, at := range sent {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// TestRollingRestartCostPostgres measures a rolling restart of one node of
// two on PostgreSQL. Steady load (about 80 messages/s to an endpoint that
// answers in 20 ms) goes to both nodes through a "load balancer" that
// skips a node refusing connections; a slow endpoint (100 ms, two at a
// time per node) gets bursts of 30 messages posted to node A, first as a
// control, then again right before A gets SIGTERM. A finishes its sends in
// flight and returns the rest to the queue, which node B sends at once: the
// burst ends about as late as the control did. B never refuses a POST,
// nothing is lost or sent twice, and A leaves nothing leased and no node
// row behind. A new node then starts on A's address.
func TestRollingRestartCostPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts herald processes")
	}
	dbURL, _ := pgFreshSchema(t)
	fast, fastURL := startRecorder(t, 20*time.Millisecond)
	slow, slowURL := startRecorder(t, 100*time.Millisecond)

	token := "rolling-admin-token-0123456789ab"
	key := newEncryptionKey(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	a := startHerald(t, pgNodeArgs(dbURL, token, key, addrA)...)
	b := startHerald(t, pgNodeArgs(dbURL, token, key, addrB)...)
	procs := []*process{a, b}
	defer func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("node %d log tail:\n%s", i, tail(p.stderr.String(), 3000))
			}
		}
	}()
	createApp(t, baseA, token, map[string]string{"s": fastURL + "/hook/s steady", "b": slowURL + "/hook/b burst"})
	conn := pgConnect(t, dbURL)

	ld := startLoad(t, token, []string{baseA, baseB}, "steady", 2, 25*time.Millisecond)
	time.Sleep(time.Second)
	control := postBurst(t, baseA, token, "burst", 30)
	first, _ := waitArrivals(t, slow, control, 20*time.Second)
	controlSpan := lastArrival(control, first).Sub(earliest(control))

	burst := postBurst(t, baseA, token, "burst", 30)
	term := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-a.done; err != nil {
		t.Fatalf("node A exited with %v after SIGTERM", err)
	}
	exited := time.Now()
	pid := a.cmd.Process.Pid
	if n := leasedToPID(t, conn, pid); n != 0 {
		t.Errorf("%d deliveries still leased to node A after its graceful stop", n)
	}
	var rows int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM node WHERE pid = $1`, pid).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("node A's row is still in the node table after its graceful stop")
	}
	first, _ = arrivals(slow)
	left := notArrived(burst, first)
	if left == 0 {
		t.Error("node A sent the whole burst before it stopped: the test proves nothing about its release")
	}
	a2 := startHerald(t, pgNodeArgs(dbURL, token, key, addrA)...)
	procs = append(procs, a2)
	listening := time.Now()
	time.Sleep(2 * time.Second)
	ld.halt()

	sent := ld.accepted()
	first, count := waitArrivals(t, fast, sent, 30*time.Second)
	bfirst, bcount := waitArrivals(t, slow, burst, 30*time.Second)
	burstSpan := lastArrival(burst, bfirst).Sub(earliest(burst))
	stats := waitDrained(t, baseB, token, []string{"s", "b"}, 30*time.Second)

	refusedA, refusedB := ld.refused(baseA), ld.refused(baseB)
	fromA, toA := window(refusedA)
	t.Logf("node A: SIGTERM to exit %v with %d of the burst's 30 deliveries not yet sent (returned to the queue); new node listening %v after the exit",
		exited.Sub(term).Round(time.Millisecond), left, listening.Sub(exited).Round(time.Millisecond))
	t.Logf("burst of 30 to the 100 ms endpoint: control (no restart) done %v after its first POST, with the restart %v: %v extra",
		controlSpan.Round(time.Millisecond), burstSpan.Round(time.Millisecond), (burstSpan - controlSpan).Round(time.Millisecond))
	t.Logf("steady load: before %v; around the restart %v; after %v; %d POSTs refused by node A (from %v to %v after SIGTERM, sent on to node B), %d by node B",
		delaysOf(sent, first, time.Time{}, term.Add(-time.Second)), delaysOf(sent, first, term.Add(-time.Second), listening.Add(time.Second)),
		delaysOf(sent, first, listening.Add(time.Second), time.Now()), len(refusedA),
		fromA.Sub(term).Round(time.Millisecond), toA.Sub(term).Round(time.Millisecond), len(refusedB))
	if len(refusedB) != 0 {
		t.Errorf("node B refused %d POSTs while node A restarted (first: %d %s)", len(refusedB), refusedB[0].status, refusedB[0].code)
	}
	for _, r := range refusedA {
		if r.status != 0 {
			t.Errorf("node A answered a POST sent %v after SIGTERM with %d %s: a stopping node should only refuse connections",
				r.at.Sub(term).Round(time.Millisecond), r.status, r.code)
		}
	}
	if d := duplicatesOf(sent, count) + duplicatesOf(burst, bcount); d != 0 {
		t.Errorf("%d duplicate deliveries: a graceful stop records its sends in flight", d)
	}
	for uid, st := range stats {
		if st.Fail != 0 {
			t.Errorf("endpoint %s: %d deliveries failed", uid, st.Fail)
		}
	}
}

// checkUnavailable posts to base while its database is unreachable and
// checks the answer: 503 service_unavailable with Retry-After, within
// the 2 s connect timeout and a little. It returns how long it took.
func checkUnavailable(t *testing.T, base, token string) time.Duration {
	t.Helper()
	start := time.Now()
	_, r := postTimed(&http.Client{Timeout: 20 * time.Second}, base, token, `{"eventType":"steady","payload":{}}`)
	took := time.Since(start)
	if r.status != http.StatusServiceUnavailable || r.retryAfter == "" || r.code != "service_unavailable" {
		t.Errorf("POST to a node cut off from its database = %d %q Retry-After %q; want 503 service_unavailable with Retry-After", r.status, r.code, r.retryAfter)
	}
	return took
}

// TestPartitionCostPostgres measures a network partition between one node
// of two and PostgreSQL: node A reaches the database through a TCP proxy
// that the test cuts (every connection reset, new ones closed at once)
// and restores; node B reaches it directly. Steady load goes to both
// nodes, skipping a node that does not accept; before each cut A gets a
// burst of 40 messages for a slow endpoint (200 ms, two at a time per
// node: 4 s of sending), which it holds under its lease.
//
// A short cut (2 s, under --node-timeout 3s): A answers 503 while cut
// off, sends what it holds until it can no longer read the endpoint (its
// cache lasts 2 s) or its last heartbeat is a node timeout less a second
// old, then waits for the link; when it returns, A records its outcomes
// and finishes the burst, and nothing arrives twice. A long cut (6 s): B
// takes A's deliveries over once A's heartbeat is a node timeout old and
// sends them (within the node timeout, a heartbeat and a few seconds of
// the cut, as the design promises, plus the 4 s of sending); A stops
// sending, and when it sees the database again it exits with status 1,
// saying it was presumed dead. Nothing is lost; a message arrives twice
// only when A sent it while cut off (or just before, its outcome not yet
// written) and B again after the takeover.
func TestPartitionCostPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes and cuts one off from its database")
	}
	dbURL, _ := pgFreshSchema(t)
	const (
		nodeTimeout = 3 * time.Second
		heartbeat   = time.Second
	)
	fast, fastURL := startRecorder(t, 20*time.Millisecond)
	const burstSize, burstSending = 40, 4 * time.Second // 40 × 200 ms, two at a time
	slow, slowURL := startRecorder(t, 200*time.Millisecond)

	token := "partition-admin-token-0123456789"
	key := newEncryptionKey(t)
	proxied, proxy := proxiedURL(t, dbURL, "")
	addrA, addrB := freeAddr(t), freeAddr(t)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	a := startHerald(t, pgNodeArgs(proxied, token, key, addrA, "--delivery-lease", "10s")...)
	b := startHerald(t, pgNodeArgs(dbURL, token, key, addrB, "--delivery-lease", "10s")...)
	defer func() {
		if t.Failed() {
			t.Logf("node A log tail:\n%s", tail(a.stderr.String(), 4000))
			t.Logf("node B log tail:\n%s", tail(b.stderr.String(), 3000))
		}
	}()
	createApp(t, baseB, token, map[string]string{"s": fastURL + "/hook/s steady", "b": slowURL + "/hook/b burst"})
	ld := startLoad(t, token, []string{baseA, baseB}, "steady", 2, 25*time.Millisecond)
	time.Sleep(time.Second)

	// cutOff posts a burst to A, cuts A off for d and restores the link.
	// It returns the burst and when the cut began and ended.
	cutOff := func(d time.Duration) (burst map[string]time.Time, cut, restored time.Time) {
		burst = postBurst(t, baseA, token, "burst", burstSize)
		proxy.cut()
		cut = time.Now()
		took := checkUnavailable(t, baseA, token)
		t.Logf("cut node A off for %v; a POST to it was answered 503 in %v", d, took.Round(time.Millisecond))
		time.Sleep(time.Until(cut.Add(d)))
		proxy.restore()
		return burst, cut, time.Now()
	}
	// arrivedTwiceOnlyIfSentDuringCut checks that a burst message arrived
	// at most twice, and twice only when A's first send of it ended while
	// A was cut off, or just before (its outcome not yet written): A could
	// not record it.
	arrivedTwiceOnlyIfSentDuringCut := func(burst map[string]time.Time, cut, restored time.Time) int {
		firstDone := map[string]time.Time{}
		for _, r := range slow.receptions() {
			if at, ok := firstDone[r.msg]; !ok || r.completed.Before(at) {
				firstDone[r.msg] = r.completed
			}
		}
		_, count := arrivals(slow)
		dup := 0
		for id := range burst {
			if count[id] > 1 {
				dup += count[id] - 1
				if done := firstDone[id]; count[id] > 2 || done.Before(cut.Add(-500*time.Millisecond)) || done.After(restored) {
					t.Errorf("message %s arrived %d times, its first send done %v after the cut", id, count[id], done.Sub(cut).Round(time.Millisecond))
				}
			}
		}
		return dup
	}

	// A short cut: A carries on.
	burst, cut, restored := cutOff(2 * time.Second)
	first, _ := waitArrivals(t, slow, burst, 20*time.Second)
	span := lastArrival(burst, first).Sub(cut)
	during := 0
	for id := range burst {
		if at := first[id]; at.After(cut) && at.Before(restored) {
			during++
		}
	}
	time.Sleep(3 * heartbeat)
	select {
	case err := <-a.done:
		t.Fatalf("node A exited (%v) after a cut shorter than the node timeout", err)
	default:
	}
	dup := arrivedTwiceOnlyIfSentDuringCut(burst, cut, restored)
	t.Logf("short cut: node A sent %d of its %d held deliveries while cut off; the last arrived %v after the cut began (%v after it ended); %d arrived twice",
		during, burstSize, span.Round(time.Millisecond), lastArrival(burst, first).Sub(restored).Round(time.Millisecond), dup)

	// A long cut: B takes A over; A exits when it sees the database again.
	burst, cut, restored = cutOff(6 * time.Second)
	first, count := waitArrivals(t, slow, burst, 30*time.Second)
	span = lastArrival(burst, first).Sub(cut)
	var exitedAfter time.Duration
	select {
	case err := <-a.done:
		exitedAfter = time.Since(restored)
		if err == nil {
			t.Error("node A, taken over, exited 0; want non-zero")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("node A, taken over, did not exit within 20 s of seeing the database again")
	}
	if !strings.Contains(a.stderr.String(), "presumed dead by the cluster") {
		t.Error("node A did not log that it was presumed dead")
	}
	during = 0
	for id := range burst {
		if at := first[id]; at.After(cut) && at.Before(restored) && count[id] > 0 {
			during++
		}
	}
	ld.halt()
	stats := waitDrained(t, baseB, token, []string{"s", "b"}, 30*time.Second)
	dup = arrivedTwiceOnlyIfSentDuringCut(burst, cut, restored)
	t.Logf("long cut: node A sent %d of its %d held deliveries while cut off; every one arrived within %v of the cut (node timeout %v, heartbeat %v, %v of sending); %d arrived twice (sent by A while cut off, then by B after the takeover); node A exited %v after the link returned",
		during, burstSize, span.Round(time.Millisecond), nodeTimeout, heartbeat, burstSending, dup, exitedAfter.Round(time.Millisecond))
	if span > nodeTimeout+heartbeat+burstSending+4*time.Second {
		t.Errorf("node A's deliveries arrived %v after the cut, want within the node timeout %v, a heartbeat, %v of sending and 4 s", span, nodeTimeout, burstSending)
	}

	sent := ld.accepted()
	sfirst, scount := waitArrivals(t, fast, sent, 30*time.Second)
	refusedB := ld.refused(baseB)
	t.Logf("steady load: %v overall, %d POSTs refused by node A and sent on to node B, %d refused by B, %d duplicates",
		delaysOf(sent, sfirst, time.Time{}, time.Now()), len(ld.refused(baseA)), len(refusedB), duplicatesOf(sent, scount))
	if len(refusedB) != 0 {
		t.Errorf("node B refused %d POSTs (first: %d %s)", len(refusedB), refusedB[0].status, refusedB[0].code)
	}
	for uid, st := range stats {
		if st.Fail != 0 {
			t.Errorf("endpoint %s: %d deliveries failed", uid, st.Fail)
		}
	}
}

// TestDatabaseFailoverCost measures a database failover: two nodes reach
// PostgreSQL through one proxy, which the test cuts for 5 s (longer than
// --node-timeout 3s) and restores, as a failover or a restart of the
// database does: every connection reset, none possible for a while.
// Steady load goes to both nodes, and just before the cut node A gets a
// burst of 60 messages for a slow endpoint (100 ms, two at a time: 3 s of
// sending), which it holds under its 20 s lease. While the database is away every POST is
// answered 503 with Retry-After; sends stop when a node can no longer read
// the endpoint (its cache lasts 2 s) or its heartbeat is a node timeout
// less a second old. Once the database is back both nodes accept and
// deliver again, neither is taken over, the held deliveries are sent at
// once (not when their lease expires), the outcomes of the sends made
// during the outage are recorded (none is sent twice), and every accepted
// message is delivered. Then every connection of both nodes is ended on
// the server (pg_terminate_backend, as a database restart that keeps its
// address would): the pools reconnect at once and nothing is lost.
func TestDatabaseFailoverCost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes and cuts them off from their database")
	}
	dbURL, _ := pgFreshSchema(t)
	const lease = 20 * time.Second
	rc, recvURL := startRecorder(t, 20*time.Millisecond)
	slow, slowURL := startRecorder(t, 100*time.Millisecond)

	token := "failover-admin-token-0123456789a"
	key := newEncryptionKey(t)
	app := "herald-failover-" + strconv.Itoa(time.Now().Nanosecond())
	proxied, proxy := proxiedURL(t, dbURL, app)
	addrA, addrB := freeAddr(t), freeAddr(t)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	extra := []string{"--delivery-lease", lease.String(), "--pg-statement-timeout", "5s"}
	a := startHerald(t, pgNodeArgs(proxied, token, key, addrA, extra...)...)
	b := startHerald(t, pgNodeArgs(proxied, token, key, addrB, extra...)...)
	defer func() {
		if t.Failed() {
			t.Logf("node A log tail:\n%s", tail(a.stderr.String(), 4000))
			t.Logf("node B log tail:\n%s", tail(b.stderr.String(), 3000))
		}
	}()
	createApp(t, baseA, token, map[string]string{"e": recvURL + "/hook/e steady", "b": slowURL + "/hook/b burst"})
	ld := startLoad(t, token, []string{baseA, baseB}, "steady", 2, 25*time.Millisecond)
	time.Sleep(2 * time.Second)

	burst := postBurst(t, baseA, token, "burst", 60)
	proxy.cut()
	cut := time.Now()
	time.Sleep(5 * time.Second)
	proxy.restore()
	restored := time.Now()
	time.Sleep(3 * time.Second)

	// The failover's refusals: every one a prompt 503 with Retry-After.
	var refused []refusal
	for _, base := range []string{baseA, baseB} {
		refused = append(refused, ld.refused(base)...)
	}
	var slowest time.Duration
	var lastRefused time.Time
	for _, r := range refused {
		if r.status != http.StatusServiceUnavailable || r.retryAfter == "" {
			t.Errorf("a POST sent %v after the cut was answered %d %s Retry-After %q; want 503 with Retry-After",
				r.at.Sub(cut).Round(time.Millisecond), r.status, r.code, r.retryAfter)
		}
		slowest = max(slowest, r.took)
		if end := r.at.Add(r.took); end.After(lastRefused) {
			lastRefused = end
		}
	}
	if len(refused) == 0 {
		t.Fatal("no POST was refused during the cut: the test proves nothing")
	}
	sent := ld.accepted()
	firstAccepted := time.Time{}
	for _, at := range sent {
		if at.After(restored) && (firstAccepted.IsZero() || at.Before(firstAccepted)) {
			firstAccepted = at
		}
	}
	bfirst, bcount := waitArrivals(t, slow, burst, 30*time.Second)
	sentDuring := 0
	for id := range burst {
		if at := bfirst[id]; at.After(cut) && at.Before(restored) {
			sentDuring++
		}
	}
	firstDelivery := time.Time{}
	for _, r := range append(rc.receptions(), slow.receptions()...) {
		if r.arrived.After(restored) && (firstDelivery.IsZero() || r.arrived.Before(firstDelivery)) {
			firstDelivery = r.arrived
		}
	}
	heldDone := lastArrival(burst, bfirst)
	t.Logf("database away %v: %d POSTs refused with 503 (slowest answer %v, last refusal ended %v after the restore); first 202 %v and first delivery %v after the restore",
		restored.Sub(cut).Round(time.Millisecond), len(refused), slowest.Round(time.Millisecond), lastRefused.Sub(restored).Round(time.Millisecond),
		firstAccepted.Sub(restored).Round(time.Millisecond), firstDelivery.Sub(restored).Round(time.Millisecond))
	t.Logf("60 deliveries held by node A at the cut: %d sent during the outage, the last %v after the restore (lease %v)",
		sentDuring, heldDone.Sub(restored).Round(time.Millisecond), lease)
	if expiry := earliest(burst).Add(lease); heldDone.After(expiry) {
		t.Errorf("the deliveries held at the cut were sent %v after their lease expired: they waited for the lease, not for the database", heldDone.Sub(expiry).Round(time.Millisecond))
	}
	for i, p := range []*process{a, b} {
		select {
		case err := <-p.done:
			t.Fatalf("node %d exited (%v) after the database came back", i, err)
		default:
		}
		if strings.Contains(p.stderr.String(), "presumed dead") || strings.Contains(p.stderr.String(), "took over a node") {
			t.Errorf("node %d took a node over or was taken over after the database came back", i)
		}
	}

	// A restart of the database server that keeps its address: every
	// connection of both nodes ended on the server.
	conn := pgConnect(t, dbURL)
	var ended int
	terminated := time.Now()
	if err := conn.QueryRow(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("no connection of the nodes found to end")
	}
	time.Sleep(2 * time.Second)
	ld.halt()
	sent = ld.accepted()
	first, count := waitArrivals(t, rc, sent, 30*time.Second)
	stats := waitDrained(t, baseA, token, []string{"e", "b"}, 30*time.Second)
	refusedAfter := 0
	for _, base := range []string{baseA, baseB} {
		for _, r := range ld.refused(base) {
			if r.at.After(terminated) {
				refusedAfter++
			}
		}
	}
	dup := duplicatesOf(sent, count) + duplicatesOf(burst, bcount)
	t.Logf("steady load: before the cut %v; sent from the cut to 2 s after the restore %v; %d duplicates",
		delaysOf(sent, first, time.Time{}, cut), delaysOf(sent, first, cut, restored.Add(2*time.Second)), dup)
	t.Logf("ended %d connections on the server: %d POSTs refused after it; messages sent within a second of it: %v",
		ended, refusedAfter, delaysOf(sent, first, terminated, terminated.Add(time.Second)))
	if dup != 0 {
		t.Errorf("%d duplicate deliveries: the outcomes of sends made during an outage shorter than the lease are recorded when it ends", dup)
	}
	for uid, st := range stats {
		if st.Fail != 0 {
			t.Errorf("endpoint %s: %d deliveries failed", uid, st.Fail)
		}
	}
}
