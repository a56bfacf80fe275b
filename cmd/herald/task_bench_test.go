package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// envRecoveryDeliveries sets how many failed deliveries
// BenchmarkDispatchLagDuringRecovery recovers (default 100,000), and
// envRecoverySlice the --task-slice of its servers (default serve's).
const (
	envRecoveryDeliveries = "HERALD_BENCH_RECOVERY_DELIVERIES"
	envRecoverySlice      = "HERALD_BENCH_RECOVERY_SLICE"
)

// BenchmarkDispatchLagDuringRecovery measures what a large recovery costs
// fresh messages: herald serve runs on a copy of a database where one
// application's endpoint has 100,000 failed deliveries; another
// application gets 40 messages a second for 8 seconds, and the lag of each
// (from its POST to its arrival at a loopback receiver) is measured with
// no task running ("idle") and right after POST …/recover of the 100,000
// ("recovering"), in alternating pairs, b.N pairs. The recovered
// deliveries are sent too, to a receiver that answers at once, as they
// would be. It reports the lags' median and 99th percentile of both, and
// the ratio of the medians.
func BenchmarkDispatchLagDuringRecovery(b *testing.B) {
	n := 100_000
	if s := os.Getenv(envRecoveryDeliveries); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	template := buildRecoveryFixture(b, n)
	var idle, recovering []time.Duration
	var recoveryTook []time.Duration
	for b.Loop() {
		idle = append(idle, freshLag(b, template, false, nil)...)
		recovering = append(recovering, freshLag(b, template, true, &recoveryTook)...)
	}
	p := func(lags []time.Duration, q float64) float64 {
		slices.Sort(lags)
		return float64(lags[int(q*float64(len(lags)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(idle, 0.5), "idle-p50-ms")
	b.ReportMetric(p(idle, 0.99), "idle-p99-ms")
	b.ReportMetric(p(recovering, 0.5), "recovering-p50-ms")
	b.ReportMetric(p(recovering, 0.99), "recovering-p99-ms")
	b.ReportMetric(p(recovering, 0.5)/p(idle, 0.5), "p50-ratio")
	var total time.Duration
	for _, d := range recoveryTook {
		total += d
	}
	b.ReportMetric(total.Seconds()/float64(len(recoveryTook)), "recovery-s")
}

// recoveryFixture is a data directory to copy: application "big" with an
// endpoint (bigEp) whose n deliveries all failed, and application "fresh"
// with an endpoint; their URLs are set per run, to its receivers.
type recoveryFixture struct {
	dir, bigEp string
}

// buildRecoveryFixture makes the fixture: herald serve creates the
// database, applications and endpoints; the store's own CreateMessages
// writes the messages (with their deliveries), which one UPDATE then marks
// failed.
func buildRecoveryFixture(b *testing.B, n int) recoveryFixture {
	b.Helper()
	dir := b.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(b, "--db", db, "--allow-private-targets")
	token := readToken(b, dir)
	f := recoveryFixture{dir: dir}
	for _, app := range []string{"big", "fresh"} {
		if code, body := request(b, "POST", p.url+"/api/v1/app", token, map[string]any{"name": app, "uid": app}); code != http.StatusCreated {
			b.Fatalf("create app: %d %s", code, body)
		}
		// The URLs are set per run, to that run's receivers.
		code, body := request(b, "POST", p.url+"/api/v1/app/"+app+"/endpoint", token, map[string]any{"url": "http://127.0.0.1:9/" + app, "uid": app + "-ep"})
		if code != http.StatusCreated {
			b.Fatalf("create endpoint: %d %s", code, body)
		}
		var ep struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &ep)
		if app == "big" {
			f.bigEp = ep.ID
		}
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		b.Fatal(err)
	}
	<-p.done

	store := openDataDir(b, dir, db)
	app, err := store.GetApplication(context.Background(), "big")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	const batch = 1000
	for i := 0; i < n; i += batch {
		msgs := make([]*herald.Message, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			at := start.Add(time.Duration(j) * time.Millisecond)
			msgs = append(msgs, &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: app.ID, EventType: "order.created",
				Payload: fmt.Appendf(nil, `{"i":%d}`, j), CreatedAt: at})
		}
		if _, err := store.CreateMessages(context.Background(), msgs, herald.Lease{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	res, err := raw.Exec(`UPDATE delivery SET status = 'failed', attempts = 8 WHERE endpoint_id = ?`, f.bigEp)
	if err != nil {
		b.Fatal(err)
	}
	if got, _ := res.RowsAffected(); got != int64(n) {
		b.Fatalf("%d deliveries failed, want %d", got, n)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	return f
}

// freshLag runs herald serve on a copy of the fixture, with the recovery
// of every failed delivery started first when recover is set, posts the
// fresh messages and returns their lags. It adds how long the recovery
// took (to its finish) to took.
func freshLag(b *testing.B, f recoveryFixture, recover bool, took *[]time.Duration) []time.Duration {
	b.Helper()
	const (
		rate   = 40
		window = 8 * time.Second
	)
	var (
		mu      sync.Mutex
		arrived = map[string]time.Time{}
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fresh" {
			mu.Lock()
			if _, ok := arrived[r.Header.Get("webhook-id")]; !ok {
				arrived[r.Header.Get("webhook-id")] = time.Now()
			}
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dir := b.TempDir()
	for _, name := range []string{"herald.db", "admin-token", "encryption-key"} {
		data, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	args := []string{"--db", filepath.Join(dir, "herald.db"), "--allow-private-targets"}
	if slice := os.Getenv(envRecoverySlice); slice != "" {
		args = append(args, "--task-slice", slice)
	}
	p := startHerald(b, args...)
	defer func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		<-p.done
	}()
	token := readToken(b, dir)
	for _, app := range []string{"big", "fresh"} {
		if code, body := request(b, "PATCH", p.url+"/api/v1/app/"+app+"/endpoint/"+app+"-ep", token, map[string]any{"url": recv.URL + "/" + app}); code != http.StatusOK {
			b.Fatalf("set endpoint URL: %d %s", code, body)
		}
	}
	var taskID string
	began := time.Now()
	if recover {
		code, body := request(b, "POST", p.url+"/api/v1/app/big/endpoint/"+f.bigEp+"/recover", token, map[string]any{"since": began.Add(-2 * time.Hour).Format(time.RFC3339)})
		if code != http.StatusAccepted {
			b.Fatalf("recover: %d %s", code, body)
		}
		var out struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &out)
		taskID = out.ID
	}
	sent := map[string]time.Time{}
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range int(window.Seconds() * rate) {
		<-tick.C
		at := time.Now()
		code, body := request(b, "POST", p.url+"/api/v1/app/fresh/msg", token, map[string]any{"eventType": "order.created", "payload": map[string]any{"i": i}})
		if code != http.StatusAccepted {
			b.Fatalf("post: %d %s", code, body)
		}
		var m struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &m)
		sent[m.ID] = at
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(5 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("every fresh message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) == len(sent)
	})
	if recover {
		var out struct {
			Status    string    `json:"status"`
			UpdatedAt time.Time `json:"updatedAt"`
		}
		waitFor("the recovery", func() bool {
			code, body := request(b, "GET", p.url+"/api/v1/background-task/"+taskID, token, nil)
			_ = json.Unmarshal(body, &out)
			return code == http.StatusOK && out.Status != "running"
		})
		// The task's last slice is its finish.
		*took = append(*took, out.UpdatedAt.Sub(began))
	}
	lags := make([]time.Duration, 0, len(sent))
	mu.Lock()
	defer mu.Unlock()
	for id, at := range sent {
		lags = append(lags, arrived[id].Sub(at))
	}
	return lags
}
