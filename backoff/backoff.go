// Package backoff decides when a failed delivery is tried again: a fixed
// schedule of delays after each attempt, spread by random jitter so that
// endpoints that failed together do not retry together, and a server's
// Retry-After hint honoured within limits.
package backoff

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the delay before each retry, the first entry applying
// after the first attempt. Eight tries in all, the last about 28 hours after
// the first, as Svix does.
var DefaultSchedule = []time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// Limits on a configured schedule.
const (
	MaxStep  = 24 * time.Hour // longest single delay
	MaxSteps = 100            // most retries
)

// DefaultJitter spreads each delay by ±20%.
const DefaultJitter = 0.2

// MaxRetryAfter is the longest delay a Retry-After header can impose.
const MaxRetryAfter = time.Hour

// ParseSchedule reads a comma-separated list of Go durations such as
// "5s,5m,30m,2h". Each item must be positive and at most MaxStep; the error
// names the first bad item and its position.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse retry schedule: empty")
	}
	items := strings.Split(s, ",")
	if len(items) > MaxSteps {
		return nil, fmt.Errorf("parse retry schedule: %d steps, at most %d allowed", len(items), MaxSteps)
	}
	schedule := make([]time.Duration, 0, len(items))
	for i, item := range items {
		d, err := parseStep(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("parse retry schedule: step %d %q: %w", i+1, item, err)
		}
		schedule = append(schedule, d)
	}
	return schedule, nil
}

// parseStep reads one schedule item.
func parseStep(item string) (time.Duration, error) {
	if item == "" {
		return 0, errors.New("empty")
	}
	d, err := time.ParseDuration(item)
	if err != nil {
		return 0, errors.New("not a duration such as 30s, 5m or 2h")
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	if d > MaxStep {
		return 0, fmt.Errorf("longer than %s", MaxStep)
	}
	return d, nil
}

// Policy turns a count of attempts into the delay before the next one.
// The zero Policy uses DefaultSchedule without jitter.
type Policy struct {
	// Schedule is the delay after each attempt; nil means DefaultSchedule,
	// an empty non-nil slice means no retries.
	Schedule []time.Duration
	// Jitter spreads each delay uniformly by ±Jitter of itself: 0.2 gives
	// 80% to 120%. It is clamped to [0, 1].
	Jitter float64
	// Rand returns a number in [0, 1); nil means math/rand/v2's Float64.
	// Tests inject a deterministic one.
	Rand func() float64
}

// Next returns the delay before the next attempt, given the number of
// attempts made so far (1 after the first try). ok is false when the
// schedule is exhausted and the delivery has failed for good. With no
// attempt made yet (attempts < 1) the delay is zero: try now.
func (p Policy) Next(attempts int) (delay time.Duration, ok bool) {
	schedule := p.Schedule
	if schedule == nil {
		schedule = DefaultSchedule
	}
	if attempts < 1 {
		return 0, true
	}
	if attempts > len(schedule) {
		return 0, false
	}
	return p.jitter(schedule[attempts-1]), true
}

// jitter scales d by a random factor in [1-Jitter, 1+Jitter).
func (p Policy) jitter(d time.Duration) time.Duration {
	j := min(max(p.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	draw := rand.Float64
	if p.Rand != nil {
		draw = p.Rand
	}
	r := draw()
	if !(r >= 0 && r < 1) { // also catches NaN from a broken source
		r = 0.5
	}
	scaled := float64(d) * (1 + j*(2*r-1))
	if scaled >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(scaled)
}

// ParseRetryAfter reads a Retry-After header value, either delay-seconds or
// an HTTP-date, as the wait from now. ok is false for an empty, malformed or
// negative value and for a date already past, in which case the schedule
// applies. Huge second counts saturate rather than overflow.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > math.MaxInt64/uint64(time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		return 0, false
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CapRetryAfter bounds a server's Retry-After wait d: at least 0, at most
// twice the scheduled delay and at most MaxRetryAfter, so an endpoint cannot
// park a delivery for days nor push it far past its schedule.
func CapRetryAfter(d, scheduled time.Duration) time.Duration {
	limit := MaxRetryAfter
	if scheduled < MaxRetryAfter/2 {
		limit = max(2*scheduled, 0)
	}
	return min(max(d, 0), limit)
}
