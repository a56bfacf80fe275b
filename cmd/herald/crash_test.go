package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
)

const crashSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestCrashSafetyWithRealBinary runs herald serve as a process, posts
// messages continuously and kills the server with SIGKILL three times,
// restarting it each time. At the end every message that got a 202 was
// delivered at least once, and the duplicates are no more than the
// deliveries that were in flight (received but not yet recorded) at the
// kills.
func TestCrashSafetyWithRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	verifier, err := standardwebhooks.NewWebhook(crashSecret)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		received = map[string]int{}
		invalid  atomic.Int64
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if verifier.Verify(body, r.Header) != nil {
			invalid.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		received[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	args := []string{"--db", db, "--allow-private-targets", "--request-timeout", "1s", "--delivery-lease", "7s"}
	p := startHerald(t, args...)
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/a/endpoint", token, map[string]any{
		"url": recv.URL + "/hook", "uid": "e", "secret": crashSecret,
	}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}

	var (
		accepted      sync.Map // message ID → true
		acceptedCount atomic.Int64
		inFlight      int                // receptions not recorded at the kills
		accounted     = map[string]int{} // receptions of a message already counted in inFlight
	)
	post := func(url string, stop <-chan struct{}, wg *sync.WaitGroup) {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("POST", url+"/api/v1/app/a/msg", strings.NewReader(`{"eventType":"a.b","payload":{"k":"v"}}`))
			req.Header.Set("authorization", "Bearer "+token)
			req.Header.Set("content-type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				id := strings.SplitN(strings.SplitN(string(body), `"id":"`, 2)[1], `"`, 2)[0]
				accepted.Store(id, true)
				acceptedCount.Add(1)
			}
		}
	}
	for round := range 3 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go post(p.url, stop, &wg)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		close(stop)
		wg.Wait()
		n := receivedNotRecorded(t, dir, db, &mu, received, accounted)
		inFlight += n
		t.Logf("kill %d: %d messages accepted so far, %d delivered but not yet recorded", round+1, acceptedCount.Load(), n)
		p = startHerald(t, args...)
	}

	// The last node delivers everything, including what the killed nodes
	// held leased (after their leases expire).
	deadline := time.Now().Add(90 * time.Second)
	missing := -1
	for time.Now().Before(deadline) {
		missing = 0
		mu.Lock()
		accepted.Range(func(k, _ any) bool {
			if received[k.(string)] == 0 {
				missing++
			}
			return true
		})
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if missing != 0 {
		t.Fatalf("%d accepted messages were never delivered:\n%s", missing, p.stderr)
	}
	// Wait until nothing is pending or leased any more, so the deliveries
	// that were in flight at the kills have been sent again: only then are
	// all duplicates counted.
	var stats struct {
		Success, Pending, Sending, Fail int
		Circuit                         string
	}
	for time.Now().Before(deadline) {
		code, body := request(t, "GET", p.url+"/api/v1/app/a/endpoint/e/stats", token, nil)
		if code != http.StatusOK || json.Unmarshal(body, &stats) != nil {
			t.Fatalf("stats: %d %s", code, body)
		}
		if stats.Pending == 0 && stats.Sending == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if stats.Pending != 0 || stats.Sending != 0 || stats.Fail != 0 {
		t.Fatalf("deliveries not all done: %+v", stats)
	}
	if stats.Circuit != "closed" {
		t.Errorf("the healthy endpoint's circuit is %q, want closed", stats.Circuit)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-p.done

	mu.Lock()
	defer mu.Unlock()
	duplicates := 0
	for _, n := range received {
		duplicates += n - 1
	}
	t.Logf("accepted %d, delivered %d distinct, %d duplicates, %d in flight at the 3 kills, %d invalid signatures",
		acceptedCount.Load(), len(received), duplicates, inFlight, invalid.Load())
	if invalid.Load() != 0 {
		t.Errorf("%d deliveries had invalid signatures", invalid.Load())
	}
	if duplicates > inFlight {
		t.Errorf("%d duplicate deliveries, more than the %d in flight at the kills", duplicates, inFlight)
	}
}

// receivedNotRecorded opens the database of a killed herald and counts the
// receptions, since the previous kill, of messages whose delivery is not
// recorded as succeeded: they were in flight at the kill and are the only
// ones that may be delivered again.
func receivedNotRecorded(t *testing.T, dir, db string, mu *sync.Mutex, received, accounted map[string]int) int {
	t.Helper()
	store := openDataDir(t, dir, db)
	defer store.Close()
	app, err := store.GetApplication(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	counts := make(map[string]int, len(received))
	for id, c := range received {
		counts[id] = c
	}
	mu.Unlock()
	n := 0
	for id, c := range counts {
		ds, err := store.ListMessageDeliveries(context.Background(), app.ID, id)
		if err != nil || len(ds) != 1 {
			t.Fatal(fmt.Sprint("deliveries of ", id, ": ", err, len(ds)))
		}
		if ds[0].Status != herald.DeliverySucceeded {
			n += c - accounted[id]
			accounted[id] = c
		}
	}
	return n
}
