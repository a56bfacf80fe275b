package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/keyring"
)

// pgFreshSchema creates a schema no other test uses, dropped with its
// tables when the test ends, and returns the URL of the test database with
// that schema as its search_path, so herald processes given --db with it
// create and use their tables there. Register it before starting herald
// processes: cleanups run last-registered first, so the processes are
// killed before the schema is dropped.
func pgFreshSchema(t *testing.T) (dbURL, schema string) {
	t.Helper()
	base, schema := pgtest.FreshSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse HERALD_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// pgConnect opens a plain connection to dbURL, closed when the test ends,
// for checks that read Herald's tables behind its back.
func pgConnect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newEncryptionKey returns a fresh --encryption-key value.
func newEncryptionKey(t *testing.T) string {
	t.Helper()
	key, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// reception is one request a receiver got: which message and endpoint,
// when it arrived and when the receiver finished answering it.
type reception struct {
	msg, endpoint      string
	arrived, completed time.Time
}

// recorder is a loopback webhook receiver that keeps every reception. It
// holds each request a few milliseconds so that two nodes sending the same
// delivery at once would show as overlapping receptions.
type recorder struct {
	hold time.Duration
	mu   sync.Mutex
	log  []reception
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	time.Sleep(rc.hold)
	w.WriteHeader(http.StatusNoContent)
	rec := reception{msg: r.Header.Get("webhook-id"), endpoint: strings.TrimPrefix(r.URL.Path, "/hook/"), arrived: arrived, completed: time.Now()}
	rc.mu.Lock()
	rc.log = append(rc.log, rec)
	rc.mu.Unlock()
}

// receptions returns a copy of the log.
func (rc *recorder) receptions() []reception {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]reception(nil), rc.log...)
}

// endpointStats is the part of GET …/endpoint/{id}/stats the tests read.
type endpointStats struct{ Success, Pending, Sending, Fail int }

// waitDrained polls the stats of the endpoints with uids on base until none
// has a delivery pending or sending, and returns the last stats.
func waitDrained(t *testing.T, base, token string, uids []string, timeout time.Duration) map[string]endpointStats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := make(map[string]endpointStats, len(uids))
		busy := 0
		for _, uid := range uids {
			var st endpointStats
			code, body := request(t, "GET", base+"/api/v1/app/a/endpoint/"+uid+"/stats", token, nil)
			if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
				t.Fatalf("stats of %s: %d %s", uid, code, body)
			}
			all[uid] = st
			busy += st.Pending + st.Sending
		}
		if busy == 0 {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending or sending after %v: %+v", timeout, all)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// postMessage posts one message and returns its ID when the answer is 202.
func postMessage(client *http.Client, base, token, body string) (id string, status int, err error) {
	req, err := http.NewRequest("POST", base+"/api/v1/app/a/msg", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("authorization", "Bearer "+token)
	req.Header.Set("content-type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", resp.StatusCode, nil
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		return "", resp.StatusCode, fmt.Errorf("202 without a message ID: %s", b)
	}
	return out.ID, resp.StatusCode, nil
}

// TestMultiNodeKill runs three herald processes on one PostgreSQL schema,
// posts 5,000 messages for 20 endpoints to the nodes in turn and kills one
// node with SIGKILL halfway. The two survivors deliver everything,
// including what the dead node held leased once its leases expire; no
// delivery is sent by two live nodes at once, and the duplicates are no
// more than what the dead node had in flight (plus retries of attempts
// recorded as failed, which are legitimate).
func TestMultiNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	dbURL, _ := pgFreshSchema(t)
	const (
		nodes     = 3
		endpoints = 20
		messages  = 5000
		victim    = 1
	)
	rc := &recorder{hold: 3 * time.Millisecond}
	recv := httptest.NewServer(rc)
	defer recv.Close()

	token := "multinode-admin-token-0123456789"
	args := []string{"--db", dbURL, "--encryption-key", newEncryptionKey(t), "--admin-token", token,
		"--allow-private-targets", "--request-timeout", "1s", "--delivery-lease", "7s", "--pg-max-conns", "8"}
	procs := make([]*process, nodes)
	for i := range procs {
		procs[i] = startHerald(t, args...)
	}
	if code, body := request(t, "POST", procs[0].url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	uids := make([]string, endpoints)
	for i := range uids {
		uids[i] = "e" + strconv.Itoa(i)
		if code, body := request(t, "POST", procs[i%nodes].url+"/api/v1/app/a/endpoint", token, map[string]any{
			"url": recv.URL + "/hook/" + uids[i], "uid": uids[i],
		}); code != http.StatusCreated {
			t.Fatalf("create endpoint: %d %s", code, body)
		}
	}
	conn := pgConnect(t, dbURL)
	endpointIDs := map[string]string{} // endpoint ID → uid
	{
		rows, _ := conn.Query(context.Background(), `SELECT id, uid FROM endpoint`)
		var id, uid string
		if _, err := pgx.ForEachRow(rows, []any{&id, &uid}, func() error { endpointIDs[id] = uid; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(endpointIDs) != endpoints {
		t.Fatalf("%d endpoints in the database, want %d", len(endpointIDs), endpoints)
	}

	// Posters take message numbers in order and send message n to node
	// n mod 3; when that node is dead they move on to the next one, as a
	// client without a load balancer would.
	var (
		next     atomic.Int64
		dead     atomic.Bool
		accepted sync.Map // message ID → true
		nAccept  atomic.Int64
		refused  atomic.Int64
		killAt   = make(chan struct{})
		killOnce sync.Once
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				n := next.Add(1) - 1
				if n >= messages {
					return
				}
				if n == messages/2 {
					killOnce.Do(func() { close(killAt) })
				}
				body := fmt.Sprintf(`{"eventType":"order.created","payload":{"n":%d}}`, n)
				for try := range nodes * 3 {
					node := (int(n) + try) % nodes
					if node == victim && dead.Load() {
						continue
					}
					id, status, err := postMessage(client, procs[node].url, token, body)
					if err != nil || status != http.StatusAccepted {
						refused.Add(1)
						continue
					}
					accepted.Store(id, true)
					nAccept.Add(1)
					break
				}
			}
		})
	}

	<-killAt
	killStart := time.Now()
	if err := procs[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killEnd := time.Now()
	<-procs[victim].done
	dead.Store(true)
	// What the dead node held is now frozen until its leases expire: the
	// deliveries it leased and whose outcome it never recorded. Receptions
	// of those so far were in flight at the kill; they are the ones that
	// may be delivered again.
	pid := procs[victim].cmd.Process.Pid
	leased := map[[2]string]bool{}
	{
		rows, _ := conn.Query(context.Background(),
			`SELECT message_id, endpoint_id FROM delivery WHERE status = 'sending' AND lease_owner LIKE $1`,
			"%-"+strconv.Itoa(pid)+"-%")
		var msg, ep string
		if _, err := pgx.ForEachRow(rows, []any{&msg, &ep}, func() error {
			leased[[2]string{msg, endpointIDs[ep]}] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	inFlight := 0
	for _, r := range rc.receptions() {
		if leased[[2]string{r.msg, r.endpoint}] {
			inFlight++
		}
	}
	t.Logf("killed node %d at %d messages accepted: %d deliveries leased to it, %d of them received but not recorded", victim, nAccept.Load(), len(leased), inFlight)

	wg.Wait()
	live := procs[(victim+1)%nodes]
	stats := waitDrained(t, live.url, token, uids, 120*time.Second)
	for uid, st := range stats {
		if st.Fail != 0 {
			t.Errorf("endpoint %s: %d deliveries failed for good", uid, st.Fail)
		}
	}

	var retried int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM attempt WHERE status <> 0`).Scan(&retried); err != nil {
		t.Fatal(err)
	}

	// Every accepted message reached every endpoint.
	log := rc.receptions()
	byPair := map[[2]string][]reception{}
	for _, r := range log {
		k := [2]string{r.msg, r.endpoint}
		byPair[k] = append(byPair[k], r)
	}
	missing := 0
	accepted.Range(func(k, _ any) bool {
		for _, uid := range uids {
			if len(byPair[[2]string{k.(string), uid}]) == 0 {
				missing++
			}
		}
		return true
	})
	// No pair was being delivered twice at the same time, except a
	// reception of the dead node still being answered at the kill.
	duplicates, overlaps := 0, 0
	for _, rs := range byPair {
		duplicates += len(rs) - 1
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				a, b := rs[i], rs[j]
				if a.arrived.Before(b.completed) && b.arrived.Before(a.completed) && !spans(a, killStart, killEnd) && !spans(b, killStart, killEnd) {
					overlaps++
				}
			}
		}
	}
	t.Logf("%d messages accepted (%d posts refused or failed), %d receptions, %d distinct (message, endpoint), %d duplicates, %d in flight at the kill, %d failed attempts, %d overlapping",
		nAccept.Load(), refused.Load(), len(log), len(byPair), duplicates, inFlight, retried, overlaps)
	if n := nAccept.Load(); n != messages {
		t.Errorf("%d of %d messages accepted", n, messages)
	}
	if missing != 0 {
		t.Errorf("%d (accepted message, endpoint) pairs were never delivered", missing)
	}
	if overlaps != 0 {
		t.Errorf("%d pairs of receptions of one delivery overlapped: two live nodes sent it at once", overlaps)
	}
	if duplicates > inFlight+retried {
		t.Errorf("%d duplicate deliveries, more than the %d in flight at the kill plus %d failed attempts", duplicates, inFlight, retried)
	}
	if t.Failed() {
		for i, p := range procs {
			t.Logf("node %d log tail:\n%s", i, tail(p.stderr.String(), 4000))
		}
	}
}

// spans reports whether the reception was under way during the kill.
func spans(r reception, start, end time.Time) bool {
	return !r.arrived.After(end) && !r.completed.Before(start)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
