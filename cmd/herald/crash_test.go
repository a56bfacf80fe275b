package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
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
// messages continuously to an application with three endpoints (loopback
// receivers that take 50 ms to answer, so deliveries are in flight at any
// moment) and kills the server with SIGKILL five times, restarting it at
// once each time. Each restart owns the database alone, so it returns the
// deliveries the killed process had leased to the queue at once: every
// message that got a 202 reaches every endpoint within 10 s of the last
// restart, although the lease (4 × --request-timeout + 30 s = 34 s) is
// longer than the test waits (30 s). The duplicates are no more than the
// deliveries that were in flight (received but not yet recorded) at the
// kills.
func TestCrashSafetyWithRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	const (
		kills       = 5
		resumeBound = 10 * time.Second // from the last restart to every delivery
		waitAtMost  = 30 * time.Second // below the 34 s lease
	)
	verifier, err := standardwebhooks.NewWebhook(crashSecret)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		received = map[string]int{} // endpoint uid + "/" + message ID → receptions
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
		received[path.Base(r.URL.Path)+"/"+r.Header.Get("webhook-id")]++
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	args := []string{"--db", db, "--allow-private-targets", "--request-timeout", "1s"}
	p := startHerald(t, args...)
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	endpoints := map[string]string{} // uid → ID
	for _, uid := range []string{"e0", "e1", "e2"} {
		code, body := request(t, "POST", p.url+"/api/v1/app/a/endpoint", token, map[string]any{
			"url": recv.URL + "/hook/" + uid, "uid": uid, "secret": crashSecret,
		})
		var ep struct{ ID string }
		if code != http.StatusCreated || json.Unmarshal(body, &ep) != nil {
			t.Fatalf("create endpoint %s: %d %s", uid, code, body)
		}
		endpoints[uid] = ep.ID
	}

	var (
		accepted      sync.Map // message ID → true
		acceptedCount atomic.Int64
		inFlight      int                // receptions not recorded at the kills
		accounted     = map[string]int{} // receptions of a delivery already counted in inFlight
		released      int                // deliveries the restarts returned to the queue
		restarted     time.Time          // when the last restart began
	)
	post := func(url string, stop <-chan struct{}, wg *sync.WaitGroup) {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
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
	for round := range kills {
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
		n := receivedNotRecorded(t, dir, db, endpoints, &mu, received, accounted)
		inFlight += n
		t.Logf("kill %d: %d messages accepted so far, %d deliveries received but not yet recorded", round+1, acceptedCount.Load(), n)
		restarted = time.Now()
		p = startHerald(t, args...)
		r := releasedAtStart(t, p)
		released += r
		t.Logf("restart %d: listening after %v, returned %d leased deliveries to the queue", round+1, time.Since(restarted).Round(time.Millisecond), r)
	}

	// The last node delivers everything at once, including what the
	// killed nodes held leased.
	deadline := restarted.Add(waitAtMost)
	missing := -1
	for time.Now().Before(deadline) {
		missing = 0
		mu.Lock()
		accepted.Range(func(k, _ any) bool {
			for uid := range endpoints {
				if received[uid+"/"+k.(string)] == 0 {
					missing++
				}
			}
			return true
		})
		mu.Unlock()
		if missing == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(restarted)
	if missing != 0 {
		t.Fatalf("%d deliveries of accepted messages were not made %v after the last restart:\n%s", missing, waitAtMost, p.stderr)
	}
	t.Logf("every accepted message reached every endpoint %v after the last restart began", took.Round(time.Millisecond))
	if took > resumeBound {
		t.Errorf("delivery resumed %v after the last restart, want within %v", took.Round(time.Millisecond), resumeBound)
	}
	if released == 0 {
		t.Errorf("no restart returned a leased delivery to the queue: nothing was in flight at %d kills?", kills)
	}
	// Wait until nothing is pending or leased any more, so the deliveries
	// that were in flight at the kills have been sent again: only then are
	// all duplicates counted.
	for uid := range endpoints {
		var stats struct {
			Success, Pending, Sending, Fail int
			Circuit                         string
		}
		for time.Now().Before(deadline) {
			code, body := request(t, "GET", p.url+"/api/v1/app/a/endpoint/"+uid+"/stats", token, nil)
			if code != http.StatusOK || json.Unmarshal(body, &stats) != nil {
				t.Fatalf("stats: %d %s", code, body)
			}
			if stats.Pending == 0 && stats.Sending == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if stats.Pending != 0 || stats.Sending != 0 || stats.Fail != 0 {
			t.Fatalf("deliveries to %s not all done: %+v", uid, stats)
		}
		if stats.Circuit != "closed" {
			t.Errorf("the healthy endpoint %s's circuit is %q, want closed", uid, stats.Circuit)
		}
	}
	// The deliveries in flight at the last kill have been made again too.
	settled := time.Since(restarted)
	t.Logf("nothing pending or leased any more %v after the last restart began", settled.Round(time.Millisecond))
	if settled > resumeBound {
		t.Errorf("the deliveries leased at the last kill were made again %v after the restart, want within %v", settled.Round(time.Millisecond), resumeBound)
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
	t.Logf("accepted %d messages, made %d distinct deliveries, %d duplicates, %d in flight at the %d kills, %d returned to the queue by the restarts, %d invalid signatures",
		acceptedCount.Load(), len(received), duplicates, inFlight, kills, released, invalid.Load())
	if invalid.Load() != 0 {
		t.Errorf("%d deliveries had invalid signatures", invalid.Load())
	}
	if duplicates > inFlight {
		t.Errorf("%d duplicate deliveries, more than the %d in flight at the kills", duplicates, inFlight)
	}
}

// releasedAtStart returns how many leased deliveries the started herald
// p returned to the queue at its start, from its log.
func releasedAtStart(t *testing.T, p *process) int {
	t.Helper()
	for line := range strings.Lines(p.stderr.String()) {
		var rec struct {
			Msg        string `json:"msg"`
			Deliveries int    `json:"deliveries"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "returned the deliveries a previous process had leased") {
			return rec.Deliveries
		}
	}
	return 0
}

// receivedNotRecorded opens the database of a killed herald and counts the
// receptions, since the previous kill, of deliveries (an endpoint's uid and
// a message ID) not recorded as succeeded: they were in flight at the kill
// and are the only ones that may be made again.
func receivedNotRecorded(t *testing.T, dir, db string, endpoints map[string]string, mu *sync.Mutex, received, accounted map[string]int) int {
	t.Helper()
	store := openDataDir(t, dir, db)
	defer store.Close()
	app, err := store.GetApplication(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	counts := make(map[string]int, len(received))
	for key, c := range received {
		counts[key] = c
	}
	mu.Unlock()
	n := 0
	byMessage := map[string][]*herald.Delivery{}
	for key, c := range counts {
		uid, id, _ := strings.Cut(key, "/")
		ds, ok := byMessage[id]
		if !ok {
			ds, err = store.ListMessageDeliveries(context.Background(), app.ID, id)
			if err != nil || len(ds) != len(endpoints) {
				t.Fatal(fmt.Sprint("deliveries of ", id, ": ", err, len(ds)))
			}
			byMessage[id] = ds
		}
		for _, d := range ds {
			if d.EndpointID == endpoints[uid] && d.Status != herald.DeliverySucceeded {
				n += c - accounted[key]
				accounted[key] = c
			}
		}
	}
	return n
}
