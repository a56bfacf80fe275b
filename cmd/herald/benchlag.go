package main

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

// scrapeDispatchLag reads Herald's dispatch-lag histogram from the
// /metrics of every node and sums it.
func scrapeDispatchLag(ctx context.Context, client *http.Client, t serverTarget) (lagBuckets, error) {
	sum := lagBuckets{}
	seen := make(map[string]bool, len(t.nodes))
	for _, node := range t.nodes {
		if seen[node] { // a node listed twice is one server
			continue
		}
		seen[node] = true
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		families, err := func() (map[string]*dto.MetricFamily, error) {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				_, _ = io.Copy(io.Discard, resp.Body)
				return nil, fmt.Errorf("GET %s/metrics: %s (is it served on a separate --metrics-addr?)", node, resp.Status)
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			return p.TextToMetricFamilies(resp.Body)
		}()
		if err != nil {
			return nil, err
		}
		mf, ok := families[dispatchLagMetric]
		if !ok {
			return nil, fmt.Errorf("%s/metrics has no %s", node, dispatchLagMetric)
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				return nil, errors.New(dispatchLagMetric + " is not a histogram")
			}
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) { // +Inf is the sample count
					sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
			sum[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	return sum, nil
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

// dispatchLag is the lag of what happened between the scrapes before and
// after; nil when no first attempt was made. A count that went down (a
// node restarted between the scrapes) makes the difference meaningless.
func dispatchLag(before, after lagBuckets) (*lagReport, error) {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	cum := make([]float64, len(bounds))
	for i, b := range bounds {
		if cum[i] = after[b] - before[b]; cum[i] < 0 {
			return nil, errors.New(dispatchLagMetric + " went down during the run: a node restarted")
		}
	}
	if len(cum) == 0 || cum[len(cum)-1] <= 0 {
		return nil, nil
	}
	total := cum[len(cum)-1]
	r := &lagReport{
		Attempts: int64(total),
		P50:      1000 * bucketQuantile(0.5, bounds, cum),
		P99:      1000 * bucketQuantile(0.99, bounds, cum),
	}
	if i := slices.Index(bounds, 0.05); i >= 0 {
		r.Within50msPc = 100 * cum[i] / total
	}
	return r, nil
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
