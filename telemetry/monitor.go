package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/herald-webhooks/herald"
)

// Check is one readiness check.
type Check struct {
	// Name is how /readyz and herald_ready_check name the check.
	Name string
	// Run returns nil while the check passes. Its error is logged, never
	// shown: /readyz is public.
	Run func(ctx context.Context) error
	// Failure is what /readyz says when the check fails; "failed" when
	// empty.
	Failure string
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name string
	// Err is nil when the check passed.
	Err error
	// Failure is the check's public description of a failure.
	Failure string
}

// checkTimeout bounds each readiness check, so a hung database answers
// "not ready" rather than hanging the probe.
const checkTimeout = 5 * time.Second

// Readiness is the set of checks a node must pass to take traffic: the
// store answers, its schema is current, the dispatcher runs.
type Readiness struct {
	checks []Check
}

// NewReadiness returns the readiness made of checks, run in order.
func NewReadiness(checks ...Check) *Readiness {
	return &Readiness{checks: checks}
}

// Check runs every check and reports whether all passed, with each result
// in order.
func (r *Readiness) Check(ctx context.Context) (ready bool, results []CheckResult) {
	ready = true
	results = make([]CheckResult, len(r.checks))
	for i, c := range r.checks {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := c.Run(cctx)
		cancel()
		failure := c.Failure
		if failure == "" {
			failure = "failed"
		}
		results[i] = CheckResult{Name: c.Name, Err: err, Failure: failure}
		if err != nil {
			ready = false
		}
	}
	return ready, results
}

// QueueStatser is what the monitor needs of the store.
type QueueStatser interface {
	QueueStats(ctx context.Context, now time.Time) (herald.QueueStats, error)
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Store     QueueStatser
	Metrics   *Metrics
	Readiness *Readiness
	// Interval is how often the gauges are refreshed (default 5 s).
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Monitor refreshes the gauges that cost a database query (the queue's
// depth and age, disabled endpoints, readiness) every Interval from one
// goroutine, so a scrape never queries the database and many scrapers cost
// no more than one.
type Monitor struct {
	cfg MonitorConfig
	mu  sync.Mutex // one Refresh at a time: Run's and a caller's
	// failing counts the refreshes in a row at which each check failed. A
	// failure is logged once, at its second refresh (a dispatcher still
	// starting when the first refresh runs is no news), and its end once.
	failing map[string]int
}

// NewMonitor returns a monitor; start it with Run.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Readiness == nil {
		cfg.Readiness = NewReadiness()
	}
	return &Monitor{cfg: cfg, failing: map[string]int{}}
}

// Run refreshes the gauges at once and then every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		m.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Refresh reads the queue statistics and runs the readiness checks once,
// and sets the gauges. Run calls it; tests call it to read fresh values.
// Calls are serialised.
func (m *Monitor) Refresh(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	qctx, cancel := context.WithTimeout(ctx, checkTimeout)
	st, err := m.cfg.Store.QueueStats(qctx, now)
	cancel()
	met := m.cfg.Metrics
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Warn("read queue statistics; the queue gauges keep their last values", "err", err)
		}
	} else {
		met.pending.Set(float64(st.Pending))
		met.sending.Set(float64(st.Sending))
		age := 0.0
		if !st.OldestDue.IsZero() {
			age = max(now.Sub(st.OldestDue).Seconds(), 0)
		}
		met.oldestDueAge.Set(age)
		met.disabledEndpoints.Set(float64(st.DisabledEndpoints))
		met.queueStatsTime.Set(float64(now.UnixNano()) / 1e9)
	}

	ready, results := m.cfg.Readiness.Check(ctx)
	met.ready.Set(boolGauge(ready))
	for _, r := range results {
		met.readyChecks.WithLabelValues(r.Name).Set(boolGauge(r.Err == nil))
		switch {
		case r.Err != nil:
			m.failing[r.Name]++
			if m.failing[r.Name] == 2 && ctx.Err() == nil {
				m.cfg.Logger.Warn("readiness check failing: not ready", "check", r.Name, "err", r.Err)
			}
		case m.failing[r.Name] > 0:
			if m.failing[r.Name] >= 2 {
				m.cfg.Logger.Info("readiness check passes again", "check", r.Name)
			}
			delete(m.failing, r.Name)
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
