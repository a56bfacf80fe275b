package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/bench"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// runBench runs `herald bench` with args and --json in-process and decodes
// its report; it fails the test unless the exit code is want.
func runBench(t *testing.T, want int, args ...string) bench.Report {
	t.Helper()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var out, errOut bytes.Buffer
	args = append([]string{"bench", "--json", "--dir", t.TempDir()}, args...)
	if code := run(context.Background(), args, &out, &errOut); code != want {
		t.Fatalf("herald %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out.String(), errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	return rep
}

func TestBenchSmoke(t *testing.T) {
	rep := runBench(t, 0, "--messages", "300", "--endpoints", "2", "--concurrency", "8", "--baseline", "300ms", "--verify-ratio", "1")

	if rep.Messages != 300 || rep.Errors != 0 {
		t.Errorf("messages %d accepted with %d errors, want 300 and 0 (first error: %s)", rep.Messages, rep.Errors, rep.FirstError)
	}
	if rep.ExpectedDeliveries != 600 || rep.Delivered != 600 || rep.Missing != 0 {
		t.Errorf("deliveries: %d of %d arrived, %d missing; want 600 of 600", rep.Delivered, rep.ExpectedDeliveries, rep.Missing)
	}
	if rep.Duplicates != 0 || rep.BadSignatures != 0 || rep.TimedOut {
		t.Errorf("duplicates %d, bad signatures %d (%s), timed out %v; want none", rep.Duplicates, rep.BadSignatures, rep.FirstSignatureError, rep.TimedOut)
	}
	// --verify-ratio 1: every delivery's signature was checked.
	if rep.VerifiedSignatures != 600 {
		t.Errorf("verified %d signatures, want 600", rep.VerifiedSignatures)
	}
	if rep.IngestRate <= 0 || rep.DeliveryRate <= 0 || rep.DeliveryVsBaseline <= 0 {
		t.Errorf("rates: ingest %v, delivery %v, vs baseline %v; want all > 0", rep.IngestRate, rep.DeliveryRate, rep.DeliveryVsBaseline)
	}
	if rep.Baseline == nil || rep.Baseline.Requests == 0 || rep.Baseline.Rate <= 0 {
		t.Errorf("baseline %+v, want requests and a rate", rep.Baseline)
	}
	for name, l := range map[string]bench.Latencies{"end-to-end": rep.EndToEndLatency, "ingest": rep.IngestLatency} {
		if l.P50 < 0 || l.P95 < l.P50 || l.P99 < l.P95 || l.Max < l.P99 {
			t.Errorf("%s latency %+v is not ordered 0 ≤ p50 ≤ p95 ≤ p99 ≤ max", name, l)
		}
	}
	if rep.IngestLatency.Max <= 0 {
		t.Errorf("ingest latency %+v, want a positive max", rep.IngestLatency)
	}
	if rep.CPUSeconds <= 0 || rep.PeakRSSMiB <= 0 || rep.ElapsedSeconds <= 0 {
		t.Errorf("cpu %v s, peak RSS %v MiB, elapsed %v s; want all > 0", rep.CPUSeconds, rep.PeakRSSMiB, rep.ElapsedSeconds)
	}
	if rep.Machine.CPUs < 1 || rep.Config.Fanout != 2 {
		t.Errorf("machine %+v, config %+v", rep.Machine, rep.Config)
	}
	// Herald's own histograms saw every accepted post and one first
	// attempt per delivery.
	if l := rep.ServerIngest; l == nil || l.Requests != 300 || l.P50 < 0 || l.P99 < l.P50 || l.Within10msPc < 0 || l.Within10msPc > 100 {
		t.Errorf("server ingest latency %+v (error %q), want 300 posts and ordered percentiles", l, rep.DispatchLagError)
	}
	if l := rep.DispatchLag; l == nil || l.Attempts != 600 || l.P50 < 0 || l.P99 < l.P50 || l.Within50msPc < 0 || l.Within50msPc > 100 {
		t.Errorf("dispatch lag %+v (error %q), want 600 attempts and ordered percentiles", l, rep.DispatchLagError)
	}
}

// TestBenchRate posts at a fixed rate for a fixed time: the schedule
// decides how many messages there are, and they cannot be accepted faster
// than they were due.
func TestBenchRate(t *testing.T) {
	rep := runBench(t, 0, "--rate", "200", "--duration", "1s", "--endpoints", "1", "--concurrency", "8", "--baseline", "0")
	// Message j is due at j/200 s; those due within the first second are
	// posted: j = 0…199.
	if rep.Messages != 200 || rep.Errors != 0 || rep.Delivered != 200 {
		t.Errorf("messages %d (errors %d), delivered %d; want 200, 0, 200", rep.Messages, rep.Errors, rep.Delivered)
	}
	// The last is due at 995 ms, so the ingest rate is at most 200/0.995.
	if rep.IngestRate > 201.1 {
		t.Errorf("ingest rate %.1f msgs/s, above the 200/s schedule", rep.IngestRate)
	}
	if rep.Config.Rate != 200 {
		t.Errorf("config rate %v, want 200", rep.Config.Rate)
	}
}

// TestBenchUnhealthyEndpoints routes each message to 2 of 4 endpoints, one
// of which answers 500 and one of which hangs: the run still ends once every
// delivery to a healthy endpoint arrived, and only those are counted.
func TestBenchUnhealthyEndpoints(t *testing.T) {
	rep := runBench(t, 0, "--messages", "200", "--endpoints", "4", "--fanout", "2",
		"--fail-ratio", "0.25", "--hang-ratio", "0.25", "--request-timeout", "1s",
		"--concurrency", "4", "--baseline", "0", "--verify-ratio", "1")

	// Endpoints 0, 1 healthy, 2 failing, 3 hanging; message types 0…3
	// reach {0,1}, {1,2}, {2,3}, {3,0}: 2+1+0+1 healthy deliveries per four
	// messages.
	if rep.ExpectedDeliveries != 200 || rep.Delivered != 200 || rep.Missing != 0 {
		t.Errorf("deliveries: %d of %d arrived, %d missing; want 200 of 200", rep.Delivered, rep.ExpectedDeliveries, rep.Missing)
	}
	if rep.FailingAnswers == 0 || rep.HangingRequests == 0 {
		t.Errorf("failing answers %d, hanging requests %d; want both > 0", rep.FailingAnswers, rep.HangingRequests)
	}
	if rep.Duplicates != 0 || rep.Errors != 0 || rep.Baseline != nil {
		t.Errorf("duplicates %d, errors %d, baseline %+v; want none", rep.Duplicates, rep.Errors, rep.Baseline)
	}
}

// TestBenchBacklog stores a backlog due at once: the dispatcher drains it
// during the run beside the measured deliveries, which all still arrive
// exactly once.
func TestBenchBacklog(t *testing.T) {
	rep := runBench(t, 0, "--messages", "100", "--endpoints", "1", "--backlog", "2000",
		"--backlog-delay", "0", "--baseline", "0", "--concurrency", "4")
	if rep.Delivered != 100 || rep.Duplicates != 0 || rep.Config.Backlog != 2000 {
		t.Errorf("delivered %d, duplicates %d, backlog %d; want 100, 0, 2000", rep.Delivered, rep.Duplicates, rep.Config.Backlog)
	}
}

// TestBenchBrokerDestinations: `herald bench --destination nats|redis`
// delivers every message, once, to the local broker, every signature
// verified from the message's headers, and says which destination it
// measured.
func TestBenchBrokerDestinations(t *testing.T) {
	// kafka has no address: the bench starts an in-process kfake cluster.
	for dest, addr := range map[string]string{"nats": "127.0.0.1:4222", "redis": "127.0.0.1:6379", "amqp": "127.0.0.1:5672", "kafka": ""} {
		t.Run(dest, func(t *testing.T) {
			if addr != "" {
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					t.Skipf("%s is not running at %s (%v): start it to run this test", dest, addr, err)
				}
				c.Close()
			}
			rep := runBench(t, 0, "--destination", dest, "--messages", "200", "--endpoints", "2", "--concurrency", "8", "--baseline", "0", "--verify-ratio", "1")
			if rep.Delivered != 400 || rep.Missing != 0 || rep.Duplicates != 0 || rep.VerifiedSignatures != 400 || rep.BadSignatures != 0 {
				t.Errorf("delivered %d, missing %d, duplicates %d, verified %d, bad %d (%s); want 400, 0, 0, 400, 0",
					rep.Delivered, rep.Missing, rep.Duplicates, rep.VerifiedSignatures, rep.BadSignatures, rep.FirstSignatureError)
			}
			if rep.Config.Destination != dest {
				t.Errorf("report destination %q, want %q", rep.Config.Destination, dest)
			}
		})
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--endpoints", "2", "--fanout", "3"},
		{"--endpoints", "2", "--fail-ratio", "0.5", "--hang-ratio", "0.5"},
		{"--url", "http://127.0.0.1:1", "--token", "0123456789abcdef", "--backlog", "10"},
		{"--url", "http://127.0.0.1:1"},
		{"--payload-size", "3"},
		{"--rate", "-1"},
		{"--rate", "0.001"},
		{"--rate", "10", "--messages", "20000"}, // 2,000 s: beyond the 5 min timeout
		{"--destination", "gopher"},
		{"--destination", "nats", "--fail-ratio", "0.5"},
		{"--destination", "redis", "--hanging-endpoints", "2"},
		{"--broker-addr", "127.0.0.1:4222"}, // needs a broker destination
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"bench"}, args...), &out, &errOut); code == 0 {
			t.Errorf("bench %v: exit 0, want a refusal", args)
		}
	}
}

// TestBenchProfilePathUnwritable: a profile or trace file that cannot be
// created fails the command with exit 1 and the file named, prints no
// report, and leaves no goroutine behind.
func TestBenchProfilePathUnwritable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct{ flag, named string }{{"--memprofile", "allocs profile"}, {"--trace", "trace"}} {
		missing := filepath.Join(t.TempDir(), "no-such-dir", "out")
		var out, errOut bytes.Buffer
		args := []string{"bench", "--dir", t.TempDir(), "--messages", "50", "--baseline", "0", tc.flag, missing}
		if code := run(context.Background(), args, &out, &errOut); code != 1 {
			t.Fatalf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", tc.flag, code, out.String(), errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.named+": open "+missing) {
			t.Errorf("%s: stderr does not name the %s and its path:\n%s", tc.flag, tc.named, errOut.String())
		}
		if strings.Contains(out.String(), "delivery rate") {
			t.Errorf("%s: a report was printed although the run could not start:\n%s", tc.flag, out.String())
		}
	}
}

// TestBenchProfiles: each profile flag writes a gzipped pprof profile of
// the load phase, and --trace an execution trace of it. The allocation
// profile of a process is cumulative, and the other tests here run the
// dispatcher too, so the run happens in a fresh child process (this test
// binary run again): there the profile holds the dispatcher's sends only
// if sampling was on during the load.
func TestBenchProfiles(t *testing.T) {
	const childEnv = "HERALD_TEST_BENCH_PROFILES_DIR"
	if dir := os.Getenv(childEnv); dir != "" {
		args := []string{"--messages", "2000", "--endpoints", "2", "--concurrency", "8", "--baseline", "500ms"}
		for _, name := range []string{"cpuprofile", "memprofile", "blockprofile", "mutexprofile"} {
			args = append(args, "--"+name, filepath.Join(dir, name+".pb.gz"))
		}
		args = append(args, "--trace", filepath.Join(dir, "trace.out"))
		if rep := runBench(t, 0, args...); rep.Delivered != 4000 {
			t.Fatalf("delivered %d of 4000", rep.Delivered)
		}
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchProfiles$", "-test.count", "1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child run: %v\n%s", err, out)
	}
	read := func(name string) []byte {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(dir, name+".pb.gz"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s is not gzipped: %v", name, err)
		}
		pb, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return pb
	}
	// Function names are in a profile's string table. The CPU and
	// allocation profiles of a run this size always sample the sends
	// (a quarter of the allocated bytes; about 200 allocation samples).
	send := []byte("dispatch.(*Sender).Send")
	if cpu := read("cpuprofile"); !bytes.Contains(cpu, send) {
		t.Errorf("CPU profile (%d bytes) has no sample in Send", len(cpu))
	}
	allocs := read("memprofile")
	if !bytes.Contains(allocs, send) {
		t.Errorf("allocation profile (%d bytes) has no sample in Send", len(allocs))
	}
	// An execution trace starts with its format's header and, written
	// during the load, holds the dispatcher's goroutines.
	raw, err := os.ReadFile(filepath.Join(dir, "trace.out"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("go 1.")) || !bytes.Contains(raw, []byte("dispatch.(*Dispatcher).work")) {
		t.Errorf("trace.out (%d bytes) is not an execution trace of the load", len(raw))
	}
	// The wait profiles may be nearly empty on a quiet run; they must be
	// profiles of their kind.
	for _, name := range []string{"blockprofile", "mutexprofile"} {
		if pb := read(name); !bytes.Contains(pb, []byte("contentions")) {
			t.Errorf("%s (%d bytes) is not a contention profile", name, len(pb))
		}
	}
}

// TestBenchNode: the node the binary starts for bench serves the API and
// /metrics (to the admin token only, as serve does without
// --metrics-public) and delivers with Herald's User-Agent; a node that
// cannot start is an error and leaves nothing running.
func TestBenchNode(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	agents := make(chan string, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case agents <- r.UserAgent():
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "h.db"), Keyring: testkeys.Ring(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const token = "hk_bench-node-test"
	cfg := bench.NodeConfig{
		Store:  store,
		Logger: slog.New(slog.DiscardHandler),
		Sender: dispatch.SenderConfig{Timeout: 5 * time.Second, AllowPrivate: true},
		Dispatch: dispatch.Config{
			Policy:          backoff.Policy{Schedule: backoff.DefaultSchedule},
			Workers:         4,
			PerEndpoint:     2,
			AppWorkerShare:  1,
			RequestTimeout:  5 * time.Second,
			ShutdownTimeout: 5 * time.Second,
		},
		AdminTokenHash: sha256.Sum256([]byte(token)),
	}

	bad := cfg
	bad.Dispatch.RequestTimeout, bad.Dispatch.Lease = time.Minute, time.Second
	if n, err := startBenchNode(t.Context(), bad); err == nil || n != nil {
		t.Fatalf("lease shorter than the request timeout: node %v, error %v; want an error and no node", n, err)
	}

	n, err := startBenchNode(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	api := httptest.NewServer(n.Handler)
	defer api.Close()
	for _, c := range []struct {
		path string
		body any
	}{
		{"/api/v1/app", map[string]any{"name": "A", "uid": "a"}},
		{"/api/v1/app/a/endpoint", map[string]any{"url": recv.URL + "/hook"}},
		{"/api/v1/app/a/msg", map[string]any{"eventType": "bench.event", "payload": map[string]any{"k": 1}}},
	} {
		if code, b := request(t, http.MethodPost, api.URL+c.path, token, c.body); code/100 != 2 {
			t.Fatalf("POST %s: %d %s", c.path, code, b)
		}
	}
	select {
	case ua := <-agents:
		if want := "Herald/" + Version(); ua != want {
			t.Errorf("User-Agent %q, want %q", ua, want)
		}
	case <-time.After(time.Minute): // a guard against hanging, not a measure
		t.Fatal("no delivery arrived")
	}
	if code, b := request(t, http.MethodGet, api.URL+"/metrics", token, nil); code != http.StatusOK || !bytes.Contains(b, []byte("herald_deliveries_total")) {
		t.Errorf("GET /metrics with the token: %d, want 200 with Herald's metrics", code)
	}
	if code, _ := request(t, http.MethodGet, api.URL+"/metrics", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d, want 401", code)
	}
}
