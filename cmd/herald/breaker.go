package main

import (
	"errors"
	"math"
	"time"

	"github.com/herald-webhooks/herald/dispatch"
)

// BreakerFlags configure the per-endpoint circuit breakers
// (dispatch.BreakerConfig).
type BreakerFlags struct {
	Enabled          bool          `name:"breaker" env:"HERALD_BREAKER" default:"true" negatable:"" help:"Per-endpoint circuit breakers: an endpoint whose attempts time out or fail to connect has its deliveries wait, without using up retries, instead of holding workers. --no-breaker (or --breaker=false) turns them off: every delivery is attempted on its schedule."`
	FailureThreshold int           `name:"breaker-failure-threshold" env:"HERALD_BREAKER_FAILURE_THRESHOLD" default:"10" help:"Attempts in a row that fail without an answer (timeout, connection failure, or a failed answer slower than half --request-timeout) that open an endpoint's breaker; twice as many failed attempts in a row of any kind (fast error answers included) open it too."`
	FailureRatio     float64       `name:"breaker-failure-ratio" env:"HERALD_BREAKER_FAILURE_RATIO" default:"0.5" help:"Share of an endpoint's last 20 attempts failing without an answer that opens its breaker; also the share of a half-open round's probes that reopens it. Between 0 and 1."`
	OpenTime         time.Duration `name:"breaker-open-time" env:"HERALD_BREAKER_OPEN_TIME" default:"10s" help:"How long a breaker stays open the first time; each failed round of probes doubles it, up to --breaker-max-open-time."`
	MaxOpenTime      time.Duration `name:"breaker-max-open-time" env:"HERALD_BREAKER_MAX_OPEN_TIME" default:"5m" help:"Longest a breaker stays open between two rounds of probes."`
	Probes           int           `name:"breaker-probes" env:"HERALD_BREAKER_PROBES" default:"5" help:"Deliveries a half-open breaker lets through as probes (at most --endpoint-concurrency at once). It closes once one succeeded and too few can still stall to reopen it; it reopens when --breaker-failure-ratio of them stalled or none succeeded."`
}

// validate checks the flags that kong cannot.
func (f *BreakerFlags) validate() error {
	if f.FailureThreshold < 1 || f.FailureThreshold > 10000 {
		return errors.New("--breaker-failure-threshold must be between 1 and 10000")
	}
	if math.IsNaN(f.FailureRatio) || f.FailureRatio <= 0 || f.FailureRatio > 1 {
		return errors.New("--breaker-failure-ratio must be above 0 and at most 1")
	}
	if f.OpenTime < time.Second || f.OpenTime > time.Hour {
		return errors.New("--breaker-open-time must be between 1s and 1h")
	}
	if f.MaxOpenTime < f.OpenTime || f.MaxOpenTime > 24*time.Hour {
		return errors.New("--breaker-max-open-time must be at least --breaker-open-time and at most 24h")
	}
	if f.Probes < 1 || f.Probes > 100 {
		return errors.New("--breaker-probes must be between 1 and 100")
	}
	return nil
}

// config is the dispatcher's breaker configuration.
func (f *BreakerFlags) config() dispatch.BreakerConfig {
	return dispatch.BreakerConfig{
		Disabled:            !f.Enabled,
		ConsecutiveFailures: f.FailureThreshold,
		FailureRatio:        f.FailureRatio,
		OpenFor:             f.OpenTime,
		MaxOpenFor:          f.MaxOpenTime,
		Probes:              f.Probes,
	}
}
