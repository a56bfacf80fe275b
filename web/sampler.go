package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-webhooks/herald"
)

// The overview keeps the last hour at one sample every ten seconds.
const (
	sampleEvery = 10 * time.Second
	maxSamples  = 360
)

// Metric names the sampler reads (see telemetry/metrics.go).
const (
	metricMessages     = "herald_messages_ingested_total"
	metricDeliveries   = "herald_deliveries_total"
	metricOpenBreakers = "herald_circuit_breakers_open"
)

// sample is this node's state at one moment. Counters are cumulative; the
// overview computes rates from the deltas of consecutive samples.
type sample struct {
	At time.Time
	// HaveMetrics is false when the gatherer was missing or failed.
	HaveMetrics bool
	Messages    float64
	// Attempt outcomes (cumulative).
	Succeeded, Retrying, Exhausted float64
	OpenBreakers                   float64
	// HaveQueue is false when QueueStats failed.
	HaveQueue         bool
	Pending, Sending  int
	OldestDueAge      time.Duration
	DisabledEndpoints int
}

// sampler reads the node's metrics and the queue every sampleEvery into a
// ring of maxSamples.
type sampler struct {
	store    herald.Store
	gatherer prometheus.Gatherer
	now      func() time.Time
	logger   *slog.Logger

	mu   sync.Mutex
	ring []sample // oldest first once full; next is the write position
	next int
	full bool
}

func newSampler(store herald.Store, g prometheus.Gatherer, now func() time.Time, logger *slog.Logger) *sampler {
	return &sampler{store: store, gatherer: g, now: now, logger: logger, ring: make([]sample, maxSamples)}
}

// run samples at once and then every sampleEvery until ctx ends.
func (sm *sampler) run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		sm.take(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// take reads one sample and adds it to the ring.
func (sm *sampler) take(ctx context.Context) {
	now := sm.now()
	sp := sample{At: now}
	if sm.gatherer != nil {
		if mfs, err := sm.gatherer.Gather(); err != nil {
			sm.logger.LogAttrs(ctx, slog.LevelWarn, "overview: gather metrics", slog.String("error", err.Error()))
		} else {
			sp.HaveMetrics = true
			readMetrics(mfs, &sp)
		}
	}
	if sm.store != nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := sm.store.QueueStats(qctx, now)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				sm.logger.LogAttrs(ctx, slog.LevelWarn, "overview: queue stats", slog.String("error", err.Error()))
			}
		} else {
			sp.HaveQueue = true
			sp.Pending, sp.Sending, sp.DisabledEndpoints = st.Pending, st.Sending, st.DisabledEndpoints
			if !st.OldestDue.IsZero() && now.After(st.OldestDue) {
				sp.OldestDueAge = now.Sub(st.OldestDue)
			}
		}
	}
	sm.mu.Lock()
	sm.ring[sm.next] = sp
	sm.next = (sm.next + 1) % len(sm.ring)
	sm.full = sm.full || sm.next == 0
	sm.mu.Unlock()
}

// readMetrics sums the series the overview needs (every label set of a
// name: with the app_id label there is one series per application).
func readMetrics(mfs []*dto.MetricFamily, sp *sample) {
	for _, mf := range mfs {
		switch mf.GetName() {
		case metricMessages:
			for _, m := range mf.GetMetric() {
				sp.Messages += m.GetCounter().GetValue()
			}
		case metricDeliveries:
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue()
				for _, l := range m.GetLabel() {
					if l.GetName() != "outcome" {
						continue
					}
					switch l.GetValue() {
					case "succeeded":
						sp.Succeeded += v
					case "retrying":
						sp.Retrying += v
					case "exhausted":
						sp.Exhausted += v
					}
				}
			}
		case metricOpenBreakers:
			for _, m := range mf.GetMetric() {
				sp.OpenBreakers += m.GetGauge().GetValue()
			}
		}
	}
}

// samples returns the ring's samples, oldest first.
func (sm *sampler) samples() []sample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.full {
		return append([]sample(nil), sm.ring[:sm.next]...)
	}
	return append(append([]sample(nil), sm.ring[sm.next:]...), sm.ring[:sm.next]...)
}
