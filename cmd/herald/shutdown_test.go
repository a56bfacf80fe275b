package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// TestSIGTERMWithDeliveriesInFlight: SIGTERM while deliveries are in flight
// lets them finish and records them, returns unstarted ones to the queue,
// leaves nothing leased, and exits well within --shutdown-timeout.
func TestSIGTERMWithDeliveriesInFlight(t *testing.T) {
	var (
		mu       sync.Mutex
		started  = map[string]bool{}
		answered = map[string]bool{}
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		mu.Lock()
		started[id] = true
		mu.Unlock()
		time.Sleep(500 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
		mu.Lock()
		answered[id] = true
		mu.Unlock()
	}))
	defer recv.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, "--db", db, "--allow-private-targets", "--shutdown-timeout", "20s", "--endpoint-concurrency", "4")
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/a/endpoint", token, map[string]any{"url": recv.URL, "uid": "e"}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}
	var ids []string
	for range 20 {
		code, body := request(t, "POST", p.url+"/api/v1/app/a/msg", token, map[string]any{"eventType": "a", "payload": map[string]any{}})
		if code != http.StatusAccepted {
			t.Fatalf("create message: %d %s", code, body)
		}
		ids = append(ids, strings.SplitN(strings.SplitN(string(body), `"id":"`, 2)[1], `"`, 2)[0])
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(started)
		mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deliveries in flight:\n%s", p.stderr)
		}
	}
	mu.Lock()
	inFlight := len(started) - len(answered)
	mu.Unlock()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("herald exited with %v after SIGTERM:\n%s", err, p.stderr)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("herald did not exit within its 20s shutdown timeout")
	}
	took := time.Since(start)

	store := openDataDir(t, dir, db)
	defer store.Close()
	app, err := store.GetApplication(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	succeeded, pending := 0, 0
	for _, id := range ids {
		ds, err := store.ListMessageDeliveries(context.Background(), app.ID, id)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of %s: %v %d", id, err, len(ds))
		}
		switch d := ds[0]; {
		case answered[id] && d.Status == herald.DeliverySucceeded:
			succeeded++
		case !started[id] && d.Status == herald.DeliveryPending:
			pending++
		default:
			t.Errorf("message %s: started %v, answered %v, delivery %s", id, started[id], answered[id], d.Status)
		}
	}
	t.Logf("SIGTERM with %d in flight: exited after %v; %d delivered and recorded, %d returned to the queue", inFlight, took.Round(time.Millisecond), succeeded, pending)
}
