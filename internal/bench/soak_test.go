package bench

import (
	"bytes"
	"encoding/csv"
	"io"
	"math"
	randv2 "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSoakJudgeSeries: the growth rule on series of known shape.
func TestSoakJudgeSeries(t *testing.T) {
	const n = 30
	series := func(f func(i int) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	noise := randv2.New(randv2.NewPCG(1, 2)) // fixed: the same series every run
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		values []float64
		floor  float64
		want   string
	}{
		// 2 MiB more per sample: the last third's mean is 20 MiB (15 %)
		// above the middle's.
		{"leak", series(func(i int) float64 { return 100*mib + float64(i)*2*mib }), 16 * mib, "grows"},
		// ±20 MiB around 100 MiB, no trend.
		{"flat and noisy", series(func(int) float64 { return 100*mib + (noise.Float64()*40-20)*mib }), 16 * mib, "flat"},
		// Everything happens in the warm-up third, then nothing.
		{"warm-up only", series(func(i int) float64 { return 50*mib + float64(min(i, n/3))*10*mib }), 16 * mib, "flat"},
		// 30 → 60 goroutines doubles the count but stays under the floor
		// of 50.
		{"under the floor", series(func(i int) float64 { return float64(30 + 30*(i*3/n)/2) }), 50, "flat"},
		// Thirds of 1,000, 1,025 and 1,050 MiB: 25 MiB more, above the
		// floor, but 2.4 %.
		{"under the ratio", series(func(i int) float64 { return float64(1000+25*(i*3/n)) * mib }), 16 * mib, "flat"},
		// A queue that builds up in the last third.
		{"queue falling behind", series(func(i int) float64 { return float64(max(0, i-2*n/3) * 5000) }), 1000, "grows"},
		// Missing readings are left out of the means.
		{"gaps", series(func(i int) float64 {
			if i%4 == 0 {
				return nan
			}
			return 100 * mib
		}), 16 * mib, "flat"},
		{"not served", series(func(int) float64 { return nan }), 1, "n/a: not on this server's /metrics"},
		{"too few samples", []float64{1, 2, 3, 4, 5}, 0, "n/a: 5 samples, the rule needs 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judgeSeries(tc.values, tc.floor)
			if v.Verdict != tc.want {
				t.Errorf("verdict %q, want %q (warm-up %g, middle %g, last %g, floor %g)", v.Verdict, tc.want, v.Warmup, v.Middle, v.Last, tc.floor)
			}
		})
	}
}

// TestSoakThirds: the means are of the thirds by sample order, the first
// left to the warm-up.
func TestSoakThirds(t *testing.T) {
	v := judgeSeries([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 0)
	if v.Warmup != 2 || v.Middle != 5 || v.Last != 8 || v.Verdict != "grows" {
		t.Errorf("thirds of 1…9: warm-up %g, middle %g, last %g, %s; want 2, 5, 8, grows", v.Warmup, v.Middle, v.Last, v.Verdict)
	}
}

// soakMetricsPage is a /metrics page with every series the soak reads,
// each value scaled by k (go_gc_duration_seconds counts 10·k collections).
func soakMetricsPage(k float64, withWAL bool) string {
	var b strings.Builder
	gauge := func(name string, v float64) {
		b.WriteString("# TYPE " + name + " gauge\n" + name + " " + formatFloat(v) + "\n")
	}
	gauge("process_resident_memory_bytes", k*100*mib)
	gauge("go_memstats_heap_inuse_bytes", k*20*mib)
	gauge("go_goroutines", k*100)
	gauge("process_open_fds", k*30)
	if withWAL {
		gauge("herald_sqlite_wal_bytes", k*4*mib)
		gauge("herald_sqlite_database_bytes", k*50*mib)
	}
	gauge("herald_deliveries_pending", k*10)
	gauge("herald_deliveries_sending", k*2)
	gauge("herald_deliveries_in_flight", k*3)
	b.WriteString("# TYPE go_gc_duration_seconds summary\n")
	b.WriteString("go_gc_duration_seconds{quantile=\"0.5\"} 0.0001\n")
	b.WriteString("go_gc_duration_seconds_sum 0.01\n")
	b.WriteString("go_gc_duration_seconds_count " + formatFloat(10*k) + "\n")
	return b.String()
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestSoakSample reads a node's /metrics with the bench's token; a series
// the page lacks (the WAL on PostgreSQL) is missing, not 0, and a page
// that cannot be read is a sample with an error.
func TestSoakSample(t *testing.T) {
	withWAL := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.Header.Get("Authorization") != "Bearer token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, soakMetricsPage(1, withWAL))
	}))
	defer srv.Close()
	c := &Command{SampleEvery: time.Second, Duration: 10 * time.Second, Rate: 50, Fanout: 4, URL: srv.URL}
	s, err := c.newSoakSampler(newServerTarget(srv.URL, "token"))
	if err != nil {
		t.Fatal(err)
	}
	smp := s.sample(t.Context(), time.Second)
	want := map[int]float64{
		soakRSS: 100 * mib, soakHeap: 20 * mib, soakGoroutines: 100, soakFDs: 30, soakWAL: 4 * mib, soakDB: 50 * mib,
		soakPending: 10, soakSending: 2, soakInFlight: 3, soakGC: 10,
	}
	for i, v := range want {
		if smp.values[i] != v {
			t.Errorf("%s = %g, want %g", soakSeriesList[i].key, smp.values[i], v)
		}
	}
	if smp.err != "" || !math.IsNaN(smp.values[soakGCRate]) {
		t.Errorf("sample error %q, GC rate %g; want none and not yet computed", smp.err, smp.values[soakGCRate])
	}
	// The pending floor is a second of the run's deliveries: 50 × 4.
	if s.floors[soakPending] != 200 {
		t.Errorf("pending floor %g, want 200", s.floors[soakPending])
	}

	withWAL = false
	if smp := s.sample(t.Context(), 2*time.Second); !math.IsNaN(smp.values[soakWAL]) || !math.IsNaN(smp.values[soakDB]) || smp.values[soakRSS] != 100*mib {
		t.Errorf("a page without the SQLite series: WAL %g, db %g, RSS %g; want NaN, NaN, 100 MiB", smp.values[soakWAL], smp.values[soakDB], smp.values[soakRSS])
	}
	s.token = "wrong"
	if smp := s.sample(t.Context(), 3*time.Second); smp.err == "" || !math.IsNaN(smp.values[soakRSS]) {
		t.Errorf("a refused scrape: error %q, RSS %g; want an error and no value", smp.err, smp.values[soakRSS])
	}
}

// TestSoakReport: collections per second from the counter, verdicts per
// series with only the judged ones in the growing list, the CSV with one
// row per sample and empty cells for missing values, and the table.
func TestSoakReport(t *testing.T) {
	csvPath := filepath.Join(t.TempDir(), "samples.csv")
	c := &Command{SampleEvery: 10 * time.Second, Duration: 90 * time.Second, SamplesCSV: csvPath}
	s, err := c.newSoakSampler(newServerTarget("http://127.0.0.1:1", "token"))
	if err != nil {
		t.Fatal(err)
	}
	var samples []soakSample
	for k := range 9 {
		smp := soakSample{at: time.Duration(k) * 10 * time.Second}
		for i := range smp.values {
			smp.values[i] = math.NaN()
		}
		smp.values[soakRSS] = 100 * mib                   // flat
		smp.values[soakGoroutines] = float64(100 + 100*k) // a goroutine leak
		smp.values[soakDB] = float64(k+1) * 100 * mib     // grows, not judged
		smp.values[soakGC] = float64(5 * k * 10)          // 5 per second
		smp.values[soakPending] = float64(k % 2 * 50)     // noisy, under the floor
		if k == 4 {
			smp = soakSample{at: smp.at, err: "GET /metrics: refused"}
			for i := range smp.values {
				smp.values[i] = math.NaN()
			}
		}
		samples = append(samples, smp)
	}
	r, err := s.report(samples)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Growing, []string{"goroutines"}) || r.ScrapeFails != 1 {
		t.Errorf("growing %v, scrape failures %d; want [goroutines] and 1", r.Growing, r.ScrapeFails)
	}
	verdicts := map[string]string{}
	for _, v := range r.Verdicts {
		verdicts[v.Series] = v.Verdict
	}
	for key, want := range map[string]string{
		"rss_bytes": "flat", "goroutines": "grows", "db_bytes": "grows", "pending": "flat", "gc_per_second": "flat",
		"wal_bytes": "n/a: not on this server's /metrics",
	} {
		if verdicts[key] != want {
			t.Errorf("%s: %q, want %q", key, verdicts[key], want)
		}
	}
	if _, ok := verdicts["gc_count"]; ok {
		t.Error("the collection counter itself was judged; its rate is")
	}
	if got := samples[1].values[soakGCRate]; got != 5 {
		t.Errorf("GC rate of the second sample %g, want 5/s", got)
	}
	if got := samples[5].values[soakGCRate]; !math.IsNaN(got) {
		t.Errorf("GC rate after a failed scrape %g, want none", got)
	}

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10 || rows[0][0] != "t_seconds" || rows[0][len(rows[0])-1] != "error" {
		t.Fatalf("CSV: %d rows, header %v; want 10 and t_seconds … error", len(rows), rows[0])
	}
	col := slices.Index(rows[0], "goroutines")
	if rows[3][0] != "20.000" || rows[3][col] != "300" || rows[5][col] != "" || rows[5][len(rows[5])-1] != "GET /metrics: refused" {
		t.Errorf("CSV rows 3 and 5: %v, %v", rows[3], rows[5])
	}

	var out bytes.Buffer
	if err := r.print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"9 samples every 10s", "(1 could not be read)", "GROWING after the warm-up: goroutines", "not judged", "more than 10 %"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
