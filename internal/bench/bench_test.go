package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestDispatchLagFromBuckets(t *testing.T) {
	inf := math.Inf(1)
	before := lagBuckets{0.01: 5, 0.05: 5, 0.1: 5, inf: 5}
	// 100 more: 50 within 10 ms, 48 more within 50 ms, 1 within 100 ms,
	// 1 above.
	after := lagBuckets{0.01: 55, 0.05: 103, 0.1: 104, inf: 105}
	got, err := dispatchLag(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := &lagReport{Attempts: 100, P50: 10, P99: 100, Within50msPc: 98}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("dispatchLag (-want +got):\n%s", diff)
	}
	bounds := []float64{0.01, 0.05, 0.1, inf}
	for _, c := range []struct {
		cum  []float64
		q    float64
		want float64
	}{
		{[]float64{50, 98, 99, 100}, 0.25, 0.005}, // half way through the first bucket, from 0
		// Rank 50 is the 40th of the 80 in (0.01, 0.05]: half way from
		// that bucket's lower bound.
		{[]float64{10, 90, 99, 100}, 0.5, 0.03},
		{[]float64{10, 90, 99, 100}, 0.95, 0.05 + 0.05*5/9.0},
		{[]float64{50, 98, 99, 100}, 0.999, 0.1}, // in +Inf: the highest finite bound
	} {
		if got := bucketQuantile(c.q, bounds, c.cum); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile %v of %v = %v, want %v", c.q, c.cum, got, c.want)
		}
	}
	if r, err := dispatchLag(after, after); r != nil || err != nil {
		t.Errorf("no attempts between the scrapes: got %+v, %v; want no report and no error", r, err)
	}
	if _, err := dispatchLag(after, before); err == nil {
		t.Error("counts that went down (a restarted node): want an error")
	}
}

// TestScrapeServerHistograms reads the dispatch-lag histogram and the
// accepted message posts' durations from two nodes' /metrics and sums each
// by bucket; the +Inf count is the sample count. A node listed twice is
// read once.
func TestScrapeServerHistograms(t *testing.T) {
	page := func(fast, slow int) string {
		return fmt.Sprintf(`# HELP herald_dispatch_lag_seconds Lag.
# TYPE herald_dispatch_lag_seconds histogram
herald_dispatch_lag_seconds_bucket{pool="a",le="0.05"} %d
herald_dispatch_lag_seconds_bucket{pool="a",le="+Inf"} %d
herald_dispatch_lag_seconds_sum{pool="a"} 1
herald_dispatch_lag_seconds_count{pool="a"} %d
herald_dispatch_lag_seconds_bucket{pool="b",le="0.05"} 1
herald_dispatch_lag_seconds_bucket{pool="b",le="+Inf"} 1
herald_dispatch_lag_seconds_sum{pool="b"} 1
herald_dispatch_lag_seconds_count{pool="b"} 1
# HELP herald_http_request_duration_seconds Duration.
# TYPE herald_http_request_duration_seconds histogram
herald_http_request_duration_seconds_bucket{code="202",route="POST /api/v1/app/{app_id}/msg",le="0.01"} %d
herald_http_request_duration_seconds_bucket{code="202",route="POST /api/v1/app/{app_id}/msg",le="+Inf"} %d
herald_http_request_duration_seconds_sum{code="202",route="POST /api/v1/app/{app_id}/msg"} 1
herald_http_request_duration_seconds_count{code="202",route="POST /api/v1/app/{app_id}/msg"} %d
herald_http_request_duration_seconds_bucket{code="422",route="POST /api/v1/app/{app_id}/msg",le="0.01"} 100
herald_http_request_duration_seconds_bucket{code="422",route="POST /api/v1/app/{app_id}/msg",le="+Inf"} 100
herald_http_request_duration_seconds_sum{code="422",route="POST /api/v1/app/{app_id}/msg"} 1
herald_http_request_duration_seconds_count{code="422",route="POST /api/v1/app/{app_id}/msg"} 100
herald_http_request_duration_seconds_bucket{code="202",route="GET /api/v1/app/{app_id}/msg",le="0.01"} 100
herald_http_request_duration_seconds_bucket{code="202",route="GET /api/v1/app/{app_id}/msg",le="+Inf"} 100
herald_http_request_duration_seconds_sum{code="202",route="GET /api/v1/app/{app_id}/msg"} 1
herald_http_request_duration_seconds_count{code="202",route="GET /api/v1/app/{app_id}/msg"} 100
`, fast, fast+slow, fast+slow, 2*fast, 2*fast+slow, 2*fast+slow)
	}
	// The API serves /metrics to admin tokens: the bench sends its own.
	one := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, page(3, 2))
	}))
	defer one.Close()
	two := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, page(10, 0)) }))
	defer two.Close()
	got, err := scrapeServerHistograms(t.Context(), http.DefaultClient, newServerTarget(one.URL+","+two.URL+","+one.URL, "token"))
	if err != nil {
		t.Fatal(err)
	}
	wantLag := lagBuckets{0.05: 3 + 1 + 10 + 1, math.Inf(1): 5 + 1 + 10 + 1}
	if diff := cmp.Diff(wantLag, got.dispatchLag); diff != "" {
		t.Errorf("dispatch lag buckets (-want +got):\n%s", diff)
	}
	// Only accepted posts count: not the 422s, not the list route.
	wantIngest := lagBuckets{0.01: 6 + 20, math.Inf(1): 8 + 20}
	if diff := cmp.Diff(wantIngest, got.ingest); diff != "" {
		t.Errorf("ingest buckets (-want +got):\n%s", diff)
	}
	r, err := serverIngest(lagBuckets{0.01: 6, math.Inf(1): 6}, got.ingest)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 22 || r.Within10msPc != 100*20.0/22 {
		t.Errorf("server ingest %+v, want 22 posts, %.2f%% within 10 ms", r, 100*20.0/22)
	}

	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	if _, err := scrapeServerHistograms(t.Context(), http.DefaultClient, newServerTarget(missing.URL, "token")); err == nil {
		t.Error("a node without /metrics: want an error")
	}
}

func TestRoutePlan(t *testing.T) {
	c := &Command{Endpoints: 4, Fanout: 2, FailRatio: 0.25, HangRatio: 0.25}
	p := newRoutePlan(c)
	want := &routePlan{
		roles:   []role{roleHealthy, roleHealthy, roleFailing, roleHanging},
		types:   []string{"bench.t0", "bench.t1", "bench.t2", "bench.t3"},
		filters: [][]string{{"bench.t0", "bench.t3"}, {"bench.t0", "bench.t1"}, {"bench.t1", "bench.t2"}, {"bench.t2", "bench.t3"}},
		healthy: []int{2, 1, 0, 1},
		fanout:  2,
	}
	if diff := cmp.Diff(want, p, cmp.AllowUnexported(routePlan{})); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}

	all := newRoutePlan(&Command{Endpoints: 3, Fanout: 3, FailRatio: 0.34})
	if diff := cmp.Diff([]int{2}, all.healthy); diff != "" || len(all.types) != 1 || all.filters[0] != nil {
		t.Errorf("full fan-out: types %v, filters %v, healthy diff %s", all.types, all.filters, diff)
	}
}

func TestBenchPayloadSize(t *testing.T) {
	for _, size := range []int{minPayloadSize, 23, 24, 512, 10000} {
		p := benchPayload(size)
		if len(p) != size || !json.Valid(p) {
			t.Errorf("benchPayload(%d) = %d bytes, valid JSON %v: %s", size, len(p), json.Valid(p), p)
		}
	}
}

// TestRunNodeFails: a node that cannot start fails the run with its error,
// prints no report and leaves neither the temporary database nor a
// goroutine behind. The hook is handed an open, migrated store.
func TestRunNodeFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	c := &Command{
		Messages: 10, Endpoints: 1, PayloadSize: 512, Concurrency: 1, Timeout: time.Minute,
		Dir: dir, SQLiteSynchronous: "FULL", Workers: 1, EndpointConcurrency: 1,
		RequestTimeout: time.Second, AppWorkerShare: 1,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("node refused to start")
	var schema int
	var out bytes.Buffer
	err := c.Run(Env{Ctx: t.Context(), Stdout: &out, Stderr: io.Discard,
		StartNode: func(ctx context.Context, cfg NodeConfig) (*Node, error) {
			var err error
			schema, err = cfg.Store.SchemaVersion(ctx)
			return nil, errors.Join(err, refused)
		}})
	if !errors.Is(err, refused) {
		t.Fatalf("run: %v, want the node's error", err)
	}
	if schema < 1 {
		t.Errorf("the hook saw schema version %d, want a migrated store", schema)
	}
	if out.Len() != 0 {
		t.Errorf("a report was printed:\n%s", out.String())
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("left in --dir: %v (%v), want nothing", left, err)
	}
}
