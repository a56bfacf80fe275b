package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupUnderLoadAndRestore takes a backup of a serving Herald while
// clients keep posting messages, whose only endpoint is down. It restores
// the backup into a new data directory and starts Herald on it with the
// endpoint up: every message whose 202 arrived before the backup began is
// there, and its pending delivery resumes and arrives.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	var (
		up       atomic.Bool
		failed   atomic.Int64
		mu       sync.Mutex
		received = map[string]int{} // webhook-id → deliveries while up
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			failed.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		received[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	// Short retries that the first run cannot use up, and a short lease, so
	// deliveries that were pending or leased in the backup come due soon
	// after the restore.
	args := []string{"--allow-private-targets", "--request-timeout", "1s", "--delivery-lease", "8s",
		"--retry-schedule", strings.TrimSuffix(strings.Repeat("1s,", 60), ",")}
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, append([]string{"--db", db}, args...)...)
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token, map[string]any{"url": recv.URL + "/hook", "uid": "down"}); code != http.StatusCreated {
		t.Fatalf("create endpoint = %d %s", code, body)
	}

	var (
		amu      sync.Mutex
		accepted []string // message IDs in the order their 202 arrived
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"eventType":"order.paid","eventId":"w%d-%d","payload":{"n":%d}}`, w, i, i)
				req, _ := http.NewRequest("POST", p.url+"/api/v1/app/acme/msg", strings.NewReader(body))
				req.Header.Set("authorization", "Bearer "+token)
				req.Header.Set("content-type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				var out struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || err != nil {
					t.Errorf("post = %d, %v", resp.StatusCode, err)
					return
				}
				amu.Lock()
				accepted = append(accepted, out.ID)
				amu.Unlock()
			}
		})
	}
	acceptedSoFar := func() []string {
		amu.Lock()
		defer amu.Unlock()
		return append([]string(nil), accepted...)
	}
	for deadline := time.Now().Add(60 * time.Second); len(acceptedSoFar()) < 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || t.Failed() {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d messages accepted", len(acceptedSoFar()))
		}
	}

	before := acceptedSoFar() // every 202 that arrived before the backup began
	backup := filepath.Join(t.TempDir(), "herald-backup.db")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"backup", "--db", db, backup}, &out, &errOut)
	during := len(acceptedSoFar()) - len(before)
	// Keep the load on a little longer, then stop it.
	for n := len(acceptedSoFar()); len(acceptedSoFar()) < n+50 && !t.Failed(); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("herald backup = %d: %s", code, errOut.String())
	}
	t.Logf("backup under load: %d messages accepted before it began, %d while it ran; %s", len(before), during, strings.TrimSpace(out.String()))
	if !strings.Contains(out.String(), filepath.Join(dir, "encryption-key")) {
		t.Errorf("backup does not remind of the encryption key file:\n%s", out.String())
	}
	if failed.Load() == 0 {
		t.Error("the endpoint was never tried while down: the test proves nothing about resuming")
	}

	// Restoring over the database a Herald is serving is refused, even forced.
	errOut.Reset()
	if code := run(context.Background(), []string{"restore", "--db", db, "--force", backup}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "stop the Herald") {
		t.Fatalf("restore over a serving database = %d: %s", code, errOut.String())
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	mu.Lock()
	if len(received) != 0 {
		t.Fatalf("%d messages were delivered while the endpoint was down", len(received))
	}
	mu.Unlock()

	// Restore into a new data directory, with the key from the old one.
	dir2 := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"restore", "--data-dir", dir2, backup}, &out, &errOut); code != 0 {
		t.Fatalf("herald restore = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "integrity checked") || !strings.Contains(out.String(), filepath.Join(dir2, "encryption-key")) {
		t.Errorf("restore output does not report its checks and the key:\n%s", out.String())
	}
	key, err := os.ReadFile(filepath.Join(dir, "encryption-key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "encryption-key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"restore", "--data-dir", dir2, backup}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--force") {
		t.Errorf("restore over an existing database without --force = %d: %s", code, errOut.String())
	}

	up.Store(true)
	p2 := startHerald(t, append([]string{"--db", filepath.Join(dir2, "herald.db")}, args...)...)
	token2 := readToken(t, dir2)
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"healthcheck", "--url", p2.url + "/readyz"}, &out, &errOut); code != 0 {
		t.Errorf("healthcheck of the restored Herald = %d: %s", code, errOut.String())
	}
	for _, id := range before {
		if code, body := request(t, "GET", p2.url+"/api/v1/app/acme/msg/"+id, token2, nil); code != http.StatusOK {
			t.Fatalf("message %s, accepted before the backup began, after restore = %d %s", id, code, body)
		}
	}
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var ids []string
		for _, id := range before {
			if received[id] == 0 {
				ids = append(ids, id)
			}
		}
		return ids
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d messages accepted before the backup were not delivered after the restore, e.g. %s\n%s", len(m), len(before), m[0], p2.stderr)
	}
}
