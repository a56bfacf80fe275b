package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fanOutSink is a loopback receiver counting receptions per endpoint
// (the last path element) and message.
type fanOutSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int // endpoint/message ID → receptions
}

func newFanOutSink(t *testing.T) *fanOutSink {
	s := &fanOutSink{got: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got[path.Base(r.URL.Path)+"/"+r.Header.Get("webhook-id")]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// wait waits until every endpoint of uids received msgID, or fails after
// a minute; it returns the most receptions of one endpoint.
func (s *fanOutSink) wait(t *testing.T, uids []string, msgID string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s.mu.Lock()
		missing, most := 0, 0
		for _, uid := range uids {
			n := s.got[uid+"/"+msgID]
			if n == 0 {
				missing++
			}
			most = max(most, n)
		}
		s.mu.Unlock()
		if missing == 0 {
			return most
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %d of %d endpoints received nothing within a minute", msgID, missing, len(uids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustPostTo posts a message to application app and returns its ID.
func mustPostTo(t *testing.T, url, token, app string) string {
	t.Helper()
	code, body := request(t, "POST", url+"/api/v1/app/"+app+"/msg", token, map[string]any{"eventType": "order.paid", "payload": map[string]any{"k": "v"}})
	var msg struct{ ID string }
	if code != http.StatusAccepted || json.Unmarshal(body, &msg) != nil || msg.ID == "" {
		t.Fatalf("post to %s: %d %s", app, code, body)
	}
	return msg.ID
}

// TestLargeFanOutBesideAnotherApp: with the real binary and the default
// --fanout-inline-max, a message to an application of 1,000 endpoints
// (deferred: created by the fan-out worker in chunks) and a message to
// another application of one endpoint both reach every endpoint, once
// each. Then a second large message is posted and the server killed
// (kill -9) at once, between or before its chunks: every endpoint still
// receives it (more than once only for deliveries in flight at the kill),
// on SQLite after a restart, on PostgreSQL from the other node, which
// continues the marker and takes the dead node's deliveries over.
func TestLargeFanOutBesideAnotherApp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		args := []string{"--db", filepath.Join(dir, "herald.db"), "--allow-private-targets"}
		p := startHerald(t, args...)
		largeFanOut(t, p, readToken(t, dir), func() *process { return startHerald(t, args...) })
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL, _ := pgFreshSchema(t)
		token := "fanout-admin-token-0123456789"
		args := []string{"--db", dbURL, "--encryption-key", newEncryptionKey(t), "--admin-token", token,
			"--allow-private-targets", "--node-heartbeat", "1s", "--node-timeout", "3s", "--pg-max-conns", "6"}
		p := startHerald(t, args...)
		other := startHerald(t, args...)
		largeFanOut(t, p, token, func() *process { return other })
	})
}

// largeFanOut runs TestLargeFanOutBesideAnotherApp on the server p; after
// killing it, next returns the server that is to finish the work.
func largeFanOut(t *testing.T, p *process, token string, next func() *process) {
	sink := newFanOutSink(t)
	for _, app := range []string{"big", "small"} {
		if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": app, "uid": app}); code != http.StatusCreated {
			t.Fatalf("create app %s: %d %s", app, code, body)
		}
	}
	uids := make([]string, 1000)
	for i := range uids {
		uids[i] = fmt.Sprintf("e%04d", i)
		if code, body := request(t, "POST", p.url+"/api/v1/app/big/endpoint", token, map[string]any{"url": sink.srv.URL + "/hook/" + uids[i], "uid": uids[i]}); code != http.StatusCreated {
			t.Fatalf("create endpoint %d: %d %s", i, code, body)
		}
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/small/endpoint", token, map[string]any{"url": sink.srv.URL + "/hook/single"}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}

	big := mustPostTo(t, p.url, token, "big")
	small := mustPostTo(t, p.url, token, "small")
	if most := sink.wait(t, []string{"single"}, small); most != 1 {
		t.Errorf("the small application's endpoint received its message %d times, want once", most)
	}
	if most := sink.wait(t, uids, big); most != 1 {
		t.Errorf("an endpoint received the large message %d times, want once", most)
	}
	if strings.Contains(p.stderr.String(), "fan-out failed") {
		t.Errorf("the fan-out failed:\n%s", p.stderr)
	}

	again := mustPostTo(t, p.url, token, "big")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = next()
	sink.wait(t, uids, again)
	if strings.Contains(p.stderr.String(), "fan-out failed") {
		t.Errorf("the fan-out failed after the kill:\n%s", p.stderr)
	}
}
