package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestSoakCSVUnwritable: a samples file that cannot be created fails the
// command before the run.
func TestSoakCSVUnwritable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var out, errOut bytes.Buffer
	path := filepath.Join(t.TempDir(), "missing", "samples.csv")
	args := []string{"bench", "--dir", t.TempDir(), "--baseline", "0", "--rate", "10", "--duration", "1s", "--sample-every", "100ms", "--samples-csv", path}
	if code := run(context.Background(), args, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "samples csv") || strings.Contains(out.String(), "delivery rate") {
		t.Errorf("stderr %q, stdout %q: want the CSV named and no report", errOut.String(), out.String())
	}
}

// TestBenchSoakFlags: the soak flags that are refused.
func TestBenchSoakFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--sample-every", "1s"},                        // no --duration
		{"--sample-every", "-1s", "--duration", "10s"},  // negative
		{"--sample-every", "10ms", "--duration", "10s"}, // below 100 ms
		{"--sample-every", "2s", "--duration", "10s"},   // 5 samples
		{"--samples-csv", "x.csv", "--duration", "10s"}, // CSV without samples
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"bench"}, args...), &out, &errOut); code == 0 {
			t.Errorf("bench %v: exit 0, want a refusal", args)
		}
	}
}

// TestBenchSoak is a short soak of the in-process server: every sample
// taken while it posted, each with the server's figures, a verdict for
// every series, the CSV file, and the rest of the report as without it.
func TestBenchSoak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	csvPath := filepath.Join(t.TempDir(), "samples.csv")
	var out, errOut bytes.Buffer
	args := []string{"bench", "--json", "--dir", t.TempDir(), "--baseline", "0", "--rate", "100", "--duration", "2s",
		"--endpoints", "2", "--fanout", "1", "--concurrency", "4", "--sample-every", "250ms", "--samples-csv", csvPath}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var rep struct {
		Messages  int `json:"messages"`
		Delivered int `json:"delivered"`
		Soak      *struct {
			Samples    []map[string]any                   `json:"samples"`
			Verdicts   []struct{ Series, Verdict string } `json:"verdicts"`
			WholeBench bool                               `json:"processFiguresIncludeLoadGenerator"`
		} `json:"soak"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if rep.Messages != 200 || rep.Delivered != 200 {
		t.Errorf("messages %d, delivered %d; want 200 and 200", rep.Messages, rep.Delivered)
	}
	if rep.Soak == nil {
		t.Fatalf("no soak in the report:\n%s", out.String())
	}
	// Samples at 0, 250, …, 1750 ms: the run posts for 2 s.
	if len(rep.Soak.Samples) != 8 || !rep.Soak.WholeBench {
		t.Fatalf("%d samples (whole bench %v), want 8 (true)", len(rep.Soak.Samples), rep.Soak.WholeBench)
	}
	for i, smp := range rep.Soak.Samples {
		if smp["error"] != nil {
			t.Errorf("sample %d: %v", i, smp["error"])
		}
		for _, key := range []string{"rss_bytes", "heap_inuse_bytes", "goroutines", "open_fds", "db_bytes", "gc_count"} {
			if v, _ := smp[key].(float64); v <= 0 {
				t.Errorf("sample %d: %s = %v, want > 0", i, key, smp[key])
			}
		}
		for _, key := range []string{"wal_bytes", "pending", "sending", "in_flight"} {
			if v, ok := smp[key].(float64); !ok || v < 0 {
				t.Errorf("sample %d: %s = %v, want a value", i, key, smp[key])
			}
		}
		if i > 0 && smp["tSeconds"].(float64) <= rep.Soak.Samples[i-1]["tSeconds"].(float64) {
			t.Errorf("sample %d not after sample %d", i, i-1)
		}
	}
	// One verdict per sampled series but the GC counter.
	last := rep.Soak.Samples[len(rep.Soak.Samples)-1]
	judged := make(map[string]bool)
	for _, v := range rep.Soak.Verdicts {
		judged[v.Series] = true
	}
	for key := range last {
		if key != "tSeconds" && key != "gc_count" && !judged[key] {
			t.Errorf("series %s has no verdict", key)
		}
	}
	if len(rep.Soak.Verdicts) != len(last)-2 {
		t.Errorf("%d verdicts, want one per series but the GC counter (%d)", len(rep.Soak.Verdicts), len(last)-2)
	}
	for _, v := range rep.Soak.Verdicts {
		if v.Verdict != "flat" && v.Verdict != "grows" {
			t.Errorf("%s: verdict %q, want flat or grows", v.Series, v.Verdict)
		}
	}
	data, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 9 {
		t.Errorf("CSV has %d lines, want a header and 8 samples:\n%s", lines, data)
	}
}

// TestSoakCSVWriteFails: samples that cannot be written at the end (a full
// disk: /dev/full) fail the command, after the report has been printed.
func TestSoakCSVWriteFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var out, errOut bytes.Buffer
	args := []string{"bench", "--dir", t.TempDir(), "--baseline", "0", "--rate", "20", "--duration", "700ms",
		"--concurrency", "2", "--sample-every", "100ms", "--samples-csv", "/dev/full"}
	if code := run(context.Background(), args, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "samples csv") {
		t.Errorf("stderr %q does not name the samples file", errOut.String())
	}
	for _, want := range []string{"delivery rate", "soak verdict per series"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
