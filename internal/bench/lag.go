package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// dispatchLagMetric is Herald's histogram of the time from a message's
// commit to the first attempt of each of its deliveries.
const dispatchLagMetric = "herald_dispatch_lag_seconds"

// lagBuckets are a histogram's cumulative counts by upper bound (seconds),
// summed over every node scraped; +Inf included.
type lagBuckets map[float64]float64

// ingestDurationMetric is Herald's histogram of API request durations;
// ingestRoute and ingestCode select the accepted message posts.
const (
	ingestDurationMetric = "herald_http_request_duration_seconds"
	ingestRoute          = "POST /api/v1/app/{app_id}/msg"
	ingestCode           = "202"
)

// serverHistograms are the histograms the bench reads from every node's
// /metrics before and after the run, summed over the nodes.
type serverHistograms struct {
	dispatchLag lagBuckets // every series of dispatchLagMetric
	ingest      lagBuckets // the accepted message posts of ingestDurationMetric
}

// scrapeServerHistograms reads Herald's dispatch-lag histogram and its
// duration histogram of accepted message posts from the /metrics of every
// node and sums each. A node without the dispatch-lag histogram is an
// error; one that has answered no message post yet adds nothing to ingest.
func scrapeServerHistograms(ctx context.Context, client *http.Client, t serverTarget) (serverHistograms, error) {
	sum := serverHistograms{dispatchLag: lagBuckets{}, ingest: lagBuckets{}}
	seen := make(map[string]bool, len(t.nodes))
	for _, node := range t.nodes {
		if seen[node] { // a node listed twice is one server
			continue
		}
		seen[node] = true
		families, err := scrapeMetrics(ctx, client, node, t.token)
		if err != nil {
			return serverHistograms{}, err
		}
		mf, ok := families[dispatchLagMetric]
		if !ok {
			return serverHistograms{}, fmt.Errorf("%s/metrics has no %s", node, dispatchLagMetric)
		}
		if err := addHistograms(sum.dispatchLag, mf, nil); err != nil {
			return serverHistograms{}, err
		}
		if mf, ok := families[ingestDurationMetric]; ok {
			posts := func(m *dto.Metric) bool {
				return labelValue(m, "route") == ingestRoute && labelValue(m, "code") == ingestCode
			}
			if err := addHistograms(sum.ingest, mf, posts); err != nil {
				return serverHistograms{}, err
			}
		}
	}
	return sum, nil
}

// scrapeMetrics reads and parses one node's /metrics, with the bench's
// token (the API serves /metrics to admin-scope tokens).
func scrapeMetrics(ctx context.Context, client *http.Client, node, token string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s/metrics: %s (is it served on a separate --metrics-addr?)", node, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// addHistograms adds the cumulative bucket counts of mf's series that keep
// selects (nil: all) to sum.
func addHistograms(sum lagBuckets, mf *dto.MetricFamily, keep func(*dto.Metric) bool) error {
	for _, m := range mf.GetMetric() {
		if keep != nil && !keep(m) {
			continue
		}
		h := m.GetHistogram()
		if h == nil {
			return errors.New(mf.GetName() + " is not a histogram")
		}
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) { // +Inf is the sample count
				sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
		sum[math.Inf(1)] += float64(h.GetSampleCount())
	}
	return nil
}

// labelValue is the value of m's label name, "" when it has none.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// lagReport is the dispatch lag of the deliveries attempted during the
// run, from Herald's own histogram: percentiles interpolated within a
// bucket as Prometheus's histogram_quantile does, and the exact share
// within the 50 ms target (a bucket bound).
type lagReport struct {
	Attempts     int64   `json:"attempts"`
	P50          float64 `json:"p50Ms"`
	P99          float64 `json:"p99Ms"`
	Within50msPc float64 `json:"within50msPercent"`
}

// bucketDelta is the histogram of what happened between the scrapes
// before and after: ascending bounds and cumulative counts. A count that
// went down (a node restarted between the scrapes) makes the difference
// meaningless.
func bucketDelta(metric string, before, after lagBuckets) (bounds, cum []float64, err error) {
	bounds = make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	cum = make([]float64, len(bounds))
	for i, b := range bounds {
		if cum[i] = after[b] - before[b]; cum[i] < 0 {
			return nil, nil, errors.New(metric + " went down during the run: a node restarted")
		}
	}
	return bounds, cum, nil
}

// histogramSummary is what the report shows of a histogram's change
// during the run: the count, p50 and p99 in milliseconds (interpolated
// within a bucket as Prometheus's histogram_quantile does) and the exact
// percentage at or below target, a bucket bound.
type histogramSummary struct {
	count, p50, p99, withinPc float64
}

// summarize is the summary of what happened between the scrapes before
// and after; ok is false when nothing did.
func summarize(metric string, before, after lagBuckets, target float64) (sum histogramSummary, ok bool, err error) {
	bounds, cum, err := bucketDelta(metric, before, after)
	if err != nil || len(cum) == 0 || cum[len(cum)-1] <= 0 {
		return histogramSummary{}, false, err
	}
	total := cum[len(cum)-1]
	sum = histogramSummary{
		count: total,
		p50:   1000 * bucketQuantile(0.5, bounds, cum),
		p99:   1000 * bucketQuantile(0.99, bounds, cum),
	}
	if i := slices.Index(bounds, target); i >= 0 {
		sum.withinPc = 100 * cum[i] / total
	}
	return sum, true, nil
}

// dispatchLag is the lag of the first attempts made between the scrapes
// before and after; nil when there was none.
func dispatchLag(before, after lagBuckets) (*lagReport, error) {
	h, ok, err := summarize(dispatchLagMetric, before, after, 0.05)
	if !ok {
		return nil, err
	}
	return &lagReport{Attempts: int64(h.count), P50: h.p50, P99: h.p99, Within50msPc: h.withinPc}, nil
}

// serverIngestReport is the ingest latency Herald itself measured for the
// messages it accepted during the run: from its API's duration histogram
// (the request's body read, validation, the group commit, the answer; not
// the connection or the client), interpolated as lagReport is, and the
// exact share within the 10 ms target (a bucket bound).
type serverIngestReport struct {
	Requests     int64   `json:"requests"`
	P50          float64 `json:"p50Ms"`
	P99          float64 `json:"p99Ms"`
	Within10msPc float64 `json:"within10msPercent"`
}

// serverIngest is the duration of the message posts accepted between the
// scrapes before and after; nil when there was none.
func serverIngest(before, after lagBuckets) (*serverIngestReport, error) {
	h, ok, err := summarize(ingestDurationMetric, before, after, 0.01)
	if !ok {
		return nil, err
	}
	return &serverIngestReport{Requests: int64(h.count), P50: h.p50, P99: h.p99, Within10msPc: h.withinPc}, nil
}

// String is the report's server-side ingest row.
func (r *serverIngestReport) String() string {
	return "p50 " + strconv.FormatFloat(r.P50, 'f', 1, 64) + " ms  p99 " + strconv.FormatFloat(r.P99, 'f', 1, 64) +
		" ms  (" + strconv.FormatFloat(r.Within10msPc, 'f', 2, 64) + "% within 10 ms; Herald's histogram, " +
		strconv.FormatInt(r.Requests, 10) + " accepted posts)"
}

// bucketQuantile is histogram_quantile over cumulative counts cum by
// ascending upper bounds (the last +Inf): linear within the bucket that
// holds the rank, the highest finite bound when the rank is in +Inf.
func bucketQuantile(q float64, bounds, cum []float64) float64 {
	total := cum[len(cum)-1]
	rank := q * total
	for i, c := range cum {
		if c < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			if i == 0 {
				return 0
			}
			return bounds[i-1]
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = bounds[i-1], cum[i-1]
		}
		if c == below {
			return bounds[i]
		}
		return lower + (bounds[i]-lower)*(rank-below)/(c-below)
	}
	return bounds[len(bounds)-1]
}

// String is the report's dispatch-lag row.
func (r *lagReport) String() string {
	return "p50 " + strconv.FormatFloat(r.P50, 'f', 1, 64) + " ms  p99 " + strconv.FormatFloat(r.P99, 'f', 1, 64) +
		" ms  (" + strconv.FormatFloat(r.Within50msPc, 'f', 2, 64) + "% within 50 ms; Herald's histogram, " +
		strconv.FormatInt(r.Attempts, 10) + " first attempts)"
}
