package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBackgroundTaskSurvivesKill runs herald serve as a process, makes 600
// deliveries fail for good (the receiver answers 500 to everything, one
// retry), starts a recovery of them in slices of 5 rows and kills the
// server with SIGKILL once about a third are queued again. The restarted
// server resumes the task where its last slice left it and finishes it:
// the task counts exactly 600 deliveries queued, and every message reached
// the receiver exactly once more (a recovered delivery has used up its
// retry schedule: one try), but for the deliveries in flight at the kill,
// which the restart returned to the queue, each one extra try at most. A recovery that started over,
// or lost a slice's progress, would queue again the deliveries it had
// recovered before the kill, which had failed again meanwhile.
func TestBackgroundTaskSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills herald processes")
	}
	const n = 600
	var (
		mu       sync.Mutex
		received = map[string]int{} // message ID → receptions
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer recv.Close()
	receptions := func() map[int]int { // receptions → messages with that many
		mu.Lock()
		defer mu.Unlock()
		out := map[int]int{}
		for _, k := range received {
			out[k]++
		}
		return out
	}

	dir := t.TempDir()
	args := []string{"--db", filepath.Join(dir, "herald.db"), "--allow-private-targets", "--retry-schedule", "10ms",
		"--no-breaker", "--task-slice", "5", "--task-pause", "25ms"}
	p := startHerald(t, args...)
	token := readToken(t, dir)
	call := func(method, path string, body any, out any) {
		t.Helper()
		code, b := request(t, method, p.url+path, token, body)
		if code < 200 || code > 299 {
			t.Fatalf("%s %s: %d %s", method, path, code, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %s: %v", method, path, b, err)
			}
		}
	}
	call("POST", "/api/v1/app", map[string]any{"name": "A", "uid": "a"}, nil)
	var ep struct {
		ID string `json:"id"`
	}
	call("POST", "/api/v1/app/a/endpoint", map[string]any{"url": recv.URL + "/hook"}, &ep)
	for i := range n {
		call("POST", "/api/v1/app/a/msg", map[string]any{"eventType": "order.created", "payload": map[string]any{"i": i}}, nil)
	}
	allFailed := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			var stats struct {
				Fail int `json:"fail"`
			}
			call("GET", "/api/v1/app/a/endpoint/"+ep.ID+"/stats", nil, &stats)
			return stats.Fail == n
		})
	}
	allFailed("every delivery failed for good")
	if got := receptions(); len(got) != 1 || got[2] != n {
		t.Fatalf("receptions before the recovery (count → messages): %v, want %d messages received twice", got, n)
	}

	var task struct {
		ID     string         `json:"id"`
		Status string         `json:"status"`
		Data   map[string]any `json:"data"`
	}
	call("POST", "/api/v1/app/a/endpoint/"+ep.ID+"/recover", map[string]any{"since": time.Now().Add(-time.Hour).Format(time.RFC3339)}, &task)
	queued := func() int {
		t.Helper()
		call("GET", "/api/v1/background-task/"+task.ID, nil, &task)
		q, _ := task.Data["deliveriesQueued"].(float64)
		return int(q)
	}
	waitFor(t, "a third of the recovery", func() bool { return queued() >= n/3 })
	if task.Status != "running" {
		t.Fatalf("the recovery finished before the kill: %+v", task)
	}
	before := queued()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	t.Logf("killed with %d of %d deliveries queued again", before, n)

	p = startHerald(t, args...)
	released := releasedAtStart(t, p)
	waitFor(t, "the recovery resumed and finished", func() bool { queued(); return task.Status != "running" })
	if task.Status != "finished" || queued() != n {
		t.Fatalf("the recovery after the restart: %+v, want finished with %d queued", task, n)
	}
	allFailed("every recovered delivery failed again")
	got := receptions()
	extra := 0
	for k, msgs := range got {
		switch {
		case k < 3:
			t.Errorf("%d messages received %d times, want 3 (2 before the recovery, 1 after)", msgs, k)
		case k > 3:
			extra += msgs * (k - 3)
		}
	}
	if extra > released {
		t.Errorf("%d receptions beyond 3 per message (%v), more than the %d deliveries in flight at the kill", extra, got, released)
	}
	t.Logf("receptions (count → messages): %v; %d deliveries were in flight at the kill", got, released)
}
