package bench

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The soak mode of herald bench: while a --duration run posts, it reads
// the server's own numbers from its /metrics every --sample-every (memory,
// goroutines, file descriptors, the WAL, the queue) and says, per series,
// whether it still grows once warmed up.

// soakMinSamples is the fewest samples a soak takes: the verdict compares
// the middle and last thirds after a warm-up third, at least two samples
// each, and the collections per second need one sample more.
const soakMinSamples = 7

// Growth rule: a series grows when the mean of the last third of the
// samples exceeds the mean of the middle third by more than soakRelGrowth
// of the middle third's mean and by more than the series' floor. The first
// third is the warm-up (caches, pools and the database's pages filling),
// judged by neither.
const soakRelGrowth = 0.10

// soakSeries is one quantity the soak samples.
type soakSeries struct {
	key    string // CSV column and JSON key (raw units)
	title  string // table column
	metric string // name on /metrics; "" for the collections per second, computed
	scale  float64
	unit   string // of the table and verdict, after scale
	floor  float64
	// judged series count in the overall verdict; the database file grows
	// by design (messages are kept for the retention period).
	judged bool
}

// Series indexes of soakSample.values.
const (
	soakRSS = iota
	soakHeap
	soakGoroutines
	soakFDs
	soakWAL
	soakDB
	soakPending
	soakSending
	soakInFlight
	soakGC     // collections so far (a counter): not judged itself
	soakGCRate // collections per second since the previous sample
	numSoakSeries
)

const mib = 1 << 20

// soakSeriesList describes the series; the pending floor is set per run.
var soakSeriesList = [numSoakSeries]soakSeries{
	soakRSS:        {key: "rss_bytes", title: "RSS MiB", metric: "process_resident_memory_bytes", scale: mib, unit: "MiB", floor: 16 * mib, judged: true},
	soakHeap:       {key: "heap_inuse_bytes", title: "heap MiB", metric: "go_memstats_heap_inuse_bytes", scale: mib, unit: "MiB", floor: 16 * mib, judged: true},
	soakGoroutines: {key: "goroutines", title: "goroutines", metric: "go_goroutines", scale: 1, floor: 50, judged: true},
	soakFDs:        {key: "open_fds", title: "fds", metric: "process_open_fds", scale: 1, floor: 20, judged: true},
	soakWAL:        {key: "wal_bytes", title: "WAL MiB", metric: "herald_sqlite_wal_bytes", scale: mib, unit: "MiB", floor: 8 * mib, judged: true},
	soakDB:         {key: "db_bytes", title: "db MiB", metric: "herald_sqlite_database_bytes", scale: mib, unit: "MiB", floor: 8 * mib},
	soakPending:    {key: "pending", title: "pending", metric: "herald_deliveries_pending", scale: 1, floor: 100, judged: true},
	soakSending:    {key: "sending", title: "sending", metric: "herald_deliveries_sending", scale: 1, floor: 100, judged: true},
	soakInFlight:   {key: "in_flight", title: "in flight", metric: "herald_deliveries_in_flight", scale: 1, floor: 50, judged: true},
	soakGC:         {key: "gc_count", title: "GCs", metric: "go_gc_duration_seconds", scale: 1},
	soakGCRate:     {key: "gc_per_second", title: "GC/s", scale: 1, unit: "/s", floor: 1, judged: true},
}

// soakSample is one reading; a value /metrics did not have is NaN.
type soakSample struct {
	at     time.Duration // from the start of posting
	values [numSoakSeries]float64
	err    string
}

// MarshalJSON writes the sample with its values by key, raw units, the
// missing ones left out (JSON has no NaN).
func (s soakSample) MarshalJSON() ([]byte, error) {
	m := map[string]any{"tSeconds": s.at.Seconds()}
	for i, v := range s.values {
		if !math.IsNaN(v) {
			m[soakSeriesList[i].key] = v
		}
	}
	if s.err != "" {
		m["error"] = s.err
	}
	return json.Marshal(m)
}

// soakVerdict is what the rule says of one series.
type soakVerdict struct {
	Series string `json:"series"`
	// Means of the warm-up, middle and last thirds, raw units; NaN (left
	// out of the JSON) when the third had no value.
	Warmup float64 `json:"-"`
	Middle float64 `json:"-"`
	Last   float64 `json:"-"`
	Floor  float64 `json:"floor"`
	Judged bool    `json:"judged"`
	// Verdict is "flat", "grows", or "n/a: why".
	Verdict string `json:"verdict"`
}

// MarshalJSON adds the means that exist.
func (v soakVerdict) MarshalJSON() ([]byte, error) {
	type plain soakVerdict
	out := struct {
		plain
		Warmup *float64 `json:"warmupMean,omitempty"`
		Middle *float64 `json:"middleMean,omitempty"`
		Last   *float64 `json:"lastMean,omitempty"`
	}{plain: plain(v)}
	ptr := func(f float64) *float64 {
		if math.IsNaN(f) {
			return nil
		}
		return &f
	}
	out.Warmup, out.Middle, out.Last = ptr(v.Warmup), ptr(v.Middle), ptr(v.Last)
	return json.Marshal(out)
}

// judgeSeries applies the growth rule to values in sample order (NaN for
// a missing reading).
func judgeSeries(values []float64, floor float64) soakVerdict {
	n := len(values)
	v := soakVerdict{Warmup: math.NaN(), Middle: math.NaN(), Last: math.NaN(), Floor: floor}
	if n < soakMinSamples-1 { // two samples in each third at the least
		v.Verdict = fmt.Sprintf("n/a: %d samples, the rule needs %d", n, soakMinSamples-1)
		return v
	}
	a, b := n/3, 2*n/3
	v.Warmup, v.Middle, v.Last = meanOf(values[:a]), meanOf(values[a:b]), meanOf(values[b:])
	switch {
	case math.IsNaN(v.Middle) || math.IsNaN(v.Last):
		v.Verdict = "n/a: not on this server's /metrics"
	case v.Last-v.Middle > soakRelGrowth*math.Abs(v.Middle) && v.Last-v.Middle > floor:
		v.Verdict = "grows"
	default:
		v.Verdict = "flat"
	}
	return v
}

// meanOf is the mean of the values that are not NaN; NaN when none is.
func meanOf(values []float64) float64 {
	sum, n := 0.0, 0
	for _, v := range values {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// soakReport is the soak part of the bench report.
type soakReport struct {
	Source      string        `json:"source"`
	EverySecs   float64       `json:"sampleEverySeconds"`
	Samples     []soakSample  `json:"samples"`
	Verdicts    []soakVerdict `json:"verdicts"`
	Growing     []string      `json:"growing"`
	WholeBench  bool          `json:"processFiguresIncludeLoadGenerator"`
	ScrapeFails int           `json:"scrapeFailures"`
}

// soakSampler takes the samples of one run.
type soakSampler struct {
	client   *http.Client
	node     string // the first node: its /metrics
	token    string
	every    time.Duration
	duration time.Duration
	inProc   bool
	floors   [numSoakSeries]float64
	csv      *os.File // --samples-csv, created before the run
}

// validateSoak checks the soak flags; Validate calls it.
func (c *Command) validateSoak() error {
	switch {
	case c.SampleEvery < 0:
		return errors.New("--sample-every must not be negative")
	case c.SampleEvery == 0 && c.SamplesCSV != "":
		return errors.New("--samples-csv needs --sample-every")
	case c.SampleEvery == 0:
		return nil
	case c.SampleEvery < 100*time.Millisecond:
		return errors.New("--sample-every must be at least 100ms")
	case c.Duration == 0:
		return errors.New("--sample-every needs --duration: the samples are taken while the run posts")
	case c.Duration/c.SampleEvery < soakMinSamples:
		return fmt.Errorf("--sample-every %v takes fewer than %d samples in --duration %v: the verdict compares the middle and last thirds of the run after a warm-up third", c.SampleEvery, soakMinSamples, c.Duration)
	}
	return nil
}

// newSoakSampler returns the sampler of a run, nil when --sample-every is
// off. It creates the CSV file now, so that a path that cannot be written
// fails before the run.
func (c *Command) newSoakSampler(t serverTarget) (*soakSampler, error) {
	if c.SampleEvery == 0 {
		return nil, nil
	}
	s := &soakSampler{
		client: &http.Client{Timeout: min(c.SampleEvery, 10*time.Second)},
		node:   t.url, token: t.token,
		every: c.SampleEvery, duration: c.Duration, inProc: c.URL == "",
	}
	for i, ser := range soakSeriesList {
		s.floors[i] = ser.floor
	}
	// A queue that grows by less than a second of the run's deliveries is
	// not falling behind.
	if c.Rate > 0 {
		s.floors[soakPending] = max(s.floors[soakPending], c.Rate*float64(c.Fanout))
	}
	if c.SamplesCSV != "" {
		f, err := os.Create(c.SamplesCSV)
		if err != nil {
			return nil, fmt.Errorf("samples csv: %w", err)
		}
		s.csv = f
	}
	return s, nil
}

// run samples at start, then every s.every while the run posts (the last
// before s.duration has passed), or until ctx ends. A run that did not
// time out lasts at least its duration, so it gets every sample.
func (s *soakSampler) run(ctx context.Context, start time.Time) []soakSample {
	var out []soakSample
	for k := 0; time.Duration(k)*s.every < s.duration; k++ {
		if wait := time.Until(start.Add(time.Duration(k) * s.every)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return out
			case <-t.C:
			}
		}
		smp := s.sample(ctx, time.Since(start))
		if ctx.Err() != nil { // the run ended during the scrape
			return out
		}
		out = append(out, smp)
	}
	return out
}

// sample reads the node's /metrics.
func (s *soakSampler) sample(ctx context.Context, at time.Duration) soakSample {
	smp := soakSample{at: at}
	for i := range smp.values {
		smp.values[i] = math.NaN()
	}
	families, err := scrapeMetrics(ctx, s.client, s.node, s.token)
	if err != nil {
		smp.err = err.Error()
		return smp
	}
	for i, ser := range soakSeriesList {
		if mf, ok := families[ser.metric]; ok && ser.metric != "" {
			smp.values[i] = metricValue(mf)
		}
	}
	return smp
}

// metricValue is the sum of a family's series: a gauge's or counter's
// value, a summary's or histogram's sample count (go_gc_duration_seconds
// counts the collections).
func metricValue(mf *dto.MetricFamily) float64 {
	sum, seen := 0.0, false
	for _, m := range mf.GetMetric() {
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		default:
			continue
		}
		seen = true
	}
	if !seen {
		return math.NaN()
	}
	return sum
}

// gcRates fills each sample's collections per second since the one before.
func gcRates(samples []soakSample) {
	for i := range samples {
		samples[i].values[soakGCRate] = math.NaN()
		if i == 0 {
			continue
		}
		prev, cur := samples[i-1], samples[i]
		if secs := (cur.at - prev.at).Seconds(); secs > 0 && cur.values[soakGC] >= prev.values[soakGC] {
			samples[i].values[soakGCRate] = (cur.values[soakGC] - prev.values[soakGC]) / secs
		}
	}
}

// report judges the samples and writes the CSV file.
func (s *soakSampler) report(samples []soakSample) (*soakReport, error) {
	gcRates(samples)
	r := &soakReport{Source: s.node + "/metrics", EverySecs: s.every.Seconds(), Samples: samples, WholeBench: s.inProc, Growing: []string{}}
	for _, smp := range samples {
		if smp.err != "" {
			r.ScrapeFails++
		}
	}
	for i, ser := range soakSeriesList {
		if i == soakGC {
			continue
		}
		values := make([]float64, len(samples))
		for j, smp := range samples {
			values[j] = smp.values[i]
		}
		if i == soakGCRate && len(values) > 0 {
			values = values[1:] // the first sample has no rate
		}
		v := judgeSeries(values, s.floors[i])
		v.Series, v.Judged = ser.key, ser.judged
		if v.Judged && v.Verdict == "grows" {
			r.Growing = append(r.Growing, ser.key)
		}
		r.Verdicts = append(r.Verdicts, v)
	}
	if s.csv == nil {
		return r, nil
	}
	err := writeSoakCSV(s.csv, samples)
	cerr := s.csv.Close()
	s.csv = nil
	if err == nil {
		err = cerr
	}
	if err != nil {
		return r, fmt.Errorf("samples csv: %w", err)
	}
	return r, nil
}

// close closes the CSV file of a run that ended before its report.
func (s *soakSampler) close() {
	if s != nil && s.csv != nil {
		s.csv.Close()
	}
}

// writeSoakCSV writes one row per sample, raw units, empty where a value
// is missing.
func writeSoakCSV(w io.Writer, samples []soakSample) error {
	cw := csv.NewWriter(w)
	header := []string{"t_seconds"}
	for _, ser := range soakSeriesList {
		header = append(header, ser.key)
	}
	if err := cw.Write(append(header, "error")); err != nil {
		return err
	}
	for _, smp := range samples {
		row := []string{strconv.FormatFloat(smp.at.Seconds(), 'f', 3, 64)}
		for _, v := range smp.values {
			cell := ""
			if !math.IsNaN(v) {
				cell = strconv.FormatFloat(v, 'f', -1, 64)
			}
			row = append(row, cell)
		}
		if err := cw.Write(append(row, smp.err)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// print writes the samples as a table over time, then the verdicts.
func (r *soakReport) print(w io.Writer) error {
	fmt.Fprintf(w, "\nsoak: %d samples every %gs while posting, from %s", len(r.Samples), r.EverySecs, r.Source)
	if r.ScrapeFails > 0 {
		fmt.Fprintf(w, " (%d could not be read)", r.ScrapeFails)
	}
	fmt.Fprintln(w)
	if r.WholeBench {
		fmt.Fprintln(w, "  in process: RSS, heap, goroutines, fds and GCs are the whole bench process (Herald, the load generator and the receivers,")
		fmt.Fprintln(w, "  whose records of every message grow with the run); --url against a herald serve samples the server alone")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "t\t")
	for i, ser := range soakSeriesList {
		if i != soakGC {
			fmt.Fprintf(tw, "%s\t", ser.title)
		}
	}
	fmt.Fprintln(tw)
	for _, smp := range r.Samples {
		fmt.Fprintf(tw, "%.0fs\t", smp.at.Seconds())
		for i, v := range smp.values {
			if i != soakGC {
				fmt.Fprintf(tw, "%s\t", formatSoak(v, soakSeriesList[i]))
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsoak verdict per series: the first third of the samples is the warm-up; a series grows when the mean of the\n"+
		"last third exceeds the mean of the middle third by more than %.0f %% and by more than its floor\n", 100*soakRelGrowth)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "series\twarm-up\tmiddle third\tlast third\tchange\tfloor\tverdict")
	for _, v := range r.Verdicts {
		ser := soakSeriesByKey(v.Series)
		change := "-"
		if !math.IsNaN(v.Middle) && !math.IsNaN(v.Last) && v.Middle != 0 {
			change = fmt.Sprintf("%+.1f %%", 100*(v.Last-v.Middle)/math.Abs(v.Middle))
		}
		verdict := v.Verdict
		if !v.Judged {
			verdict += " (not judged: the database keeps every message for the retention period)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.TrimSpace(ser.title), formatSoakUnit(v.Warmup, ser), formatSoakUnit(v.Middle, ser),
			formatSoakUnit(v.Last, ser), change, formatSoakUnit(v.Floor, ser), verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Growing) == 0 {
		fmt.Fprintln(w, "soak: every judged series is flat after the warm-up")
	} else {
		fmt.Fprintf(w, "soak: GROWING after the warm-up: %s\n", strings.Join(r.Growing, ", "))
	}
	return nil
}

func soakSeriesByKey(key string) soakSeries {
	for _, s := range soakSeriesList {
		if s.key == key {
			return s
		}
	}
	return soakSeries{key: key, title: key, scale: 1}
}

// formatSoak is a table cell: the value after scale, "-" when missing.
func formatSoak(v float64, s soakSeries) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case s.scale != 1 || s.unit == "/s":
		return strconv.FormatFloat(v/s.scale, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// formatSoakUnit is formatSoak with the unit.
func formatSoakUnit(v float64, s soakSeries) string {
	out := formatSoak(v, s)
	if out != "-" && s.unit != "" {
		if s.unit == "/s" {
			return out + s.unit
		}
		return out + " " + s.unit
	}
	return out
}
