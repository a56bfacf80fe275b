package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesBadFairnessFlags: --app-worker-share and
// --max-endpoints-per-app are checked before anything starts, each refusal
// naming its flag.
func TestServeRefusesBadFairnessFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--app-worker-share", "0"}, "--app-worker-share"},
		{[]string{"--app-worker-share", "1.5"}, "--app-worker-share"},
		{[]string{"--app-worker-share", "-0.5"}, "--app-worker-share"},
		{[]string{"--max-endpoints-per-app", "-1"}, "--max-endpoints-per-app"},
		{[]string{"--fanout-inline-max", "-1"}, "--fanout-inline-max"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}

// TestBenchHangingApplication: --hanging-endpoints gives a second
// application endpoints that never answer and more deliveries than the
// node has workers; it holds its share of them (8 workers, share 0.5: 4),
// and every delivery of the benchmark application still arrives while
// those requests hang (the request timeout outlasts the run).
func TestBenchHangingApplication(t *testing.T) {
	rep := runBench(t, 0, "--messages", "100", "--endpoints", "2", "--concurrency", "4", "--baseline", "0",
		"--workers", "8", "--endpoint-concurrency", "2", "--hanging-endpoints", "4", "--request-timeout", "10m")
	if rep.Delivered != 200 || rep.Missing != 0 || rep.Duplicates != 0 {
		t.Errorf("delivered %d, missing %d, duplicates %d; want 200, 0, 0", rep.Delivered, rep.Missing, rep.Duplicates)
	}
	h := rep.HangingApp
	if h == nil || h.Endpoints != 4 || h.Deliveries != 16 {
		t.Fatalf("hanging application %+v, want 4 endpoints and 16 deliveries", h)
	}
	if h.HeldAtStart != 4 || h.HeldAtEnd != 4 {
		t.Errorf("hanging requests %d at the start, %d by the end; want 4 (half of 8 workers) both times", h.HeldAtStart, h.HeldAtEnd)
	}
	if rep.Config.HangingEndpoints != 4 || rep.Config.AppWorkerShare != 0.5 {
		t.Errorf("config echoes hanging endpoints %d, share %v", rep.Config.HangingEndpoints, rep.Config.AppWorkerShare)
	}
}

func TestBenchRefusesBadFairnessFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--app-worker-share", "0"},
		{"--app-worker-share", "2"},
		{"--hanging-endpoints", "-1"},
		{"--hanging-endpoints", "1001"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"bench"}, args...), &out, &errOut); code == 0 || !strings.Contains(errOut.String(), args[0]) {
			t.Errorf("bench %v: exit %d, stderr %q; want a refusal naming %s", args, code, errOut.String(), args[0])
		}
	}
}

// TestServeMaxEndpointsPerApp: herald serve passes --max-endpoints-per-app
// to the API: the real binary refuses the third endpoint of an application
// with 422 at body.url naming the limit.
func TestServeMaxEndpointsPerApp(t *testing.T) {
	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"), "--max-endpoints-per-app", "2")
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusUnprocessableEntity} {
		code, body := request(t, "POST", p.url+"/api/v1/app/a/endpoint", token, map[string]any{"url": "https://example.com/" + string(rune('a'+i))})
		if code != want {
			t.Fatalf("endpoint %d: %d %s, want %d", i+1, code, body, want)
		}
		if want == http.StatusUnprocessableEntity && (!strings.Contains(string(body), `["body","url"]`) || !strings.Contains(string(body), "limit of 2 endpoints")) {
			t.Fatalf("refusal %s: want body.url and the limit of 2", body)
		}
	}
}
