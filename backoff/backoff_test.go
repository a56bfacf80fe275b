package backoff_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-webhooks/herald/backoff"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in      string
		want    []time.Duration
		wantErr string // substring of the error; "" means success
	}{
		{"5s,5m,30m", []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}, ""},
		{" 5s , 1h30m ,24h ", []time.Duration{5 * time.Second, 90 * time.Minute, 24 * time.Hour}, ""},
		{"250ms", []time.Duration{250 * time.Millisecond}, ""},
		{"5s,5m,30m,2h,5h,10h,10h", backoff.DefaultSchedule, ""},
		{"", nil, "empty"},
		{"   ", nil, "empty"},
		{"5s,,5m", nil, `step 2 "": empty`},
		{"5s,", nil, `step 2 "": empty`},
		{"5s,0s", nil, `step 2 "0s": must be positive`},
		{"-5s", nil, `step 1 "-5s": must be positive`},
		{"5s,25h", nil, `step 2 "25h": longer than 24h0m0s`},
		{"5s,5m,soon", nil, `step 3 "soon": not a duration`},
		{"5", nil, `step 1 "5": not a duration`},
		{strings.Repeat("1s,", 100) + "1s", nil, "101 steps, at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := backoff.ParseSchedule(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSchedule(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSchedule(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNextWithoutJitter(t *testing.T) {
	schedule := []time.Duration{time.Second, time.Minute, time.Hour}
	tests := []struct {
		policy   backoff.Policy
		attempts int
		want     time.Duration
		wantOK   bool
	}{
		{backoff.Policy{Schedule: schedule}, 0, 0, true},
		{backoff.Policy{Schedule: schedule}, -3, 0, true},
		{backoff.Policy{Schedule: schedule}, 1, time.Second, true},
		{backoff.Policy{Schedule: schedule}, 2, time.Minute, true},
		{backoff.Policy{Schedule: schedule}, 3, time.Hour, true},
		{backoff.Policy{Schedule: schedule}, 4, 0, false},
		{backoff.Policy{Schedule: schedule}, 1000, 0, false},
		{backoff.Policy{Schedule: []time.Duration{}}, 1, 0, false},
		{backoff.Policy{}, 1, 5 * time.Second, true},
		{backoff.Policy{}, 7, 10 * time.Hour, true},
		{backoff.Policy{}, 8, 0, false},
		// Jitter with a draw of exactly 0.5 is the scheduled delay.
		{backoff.Policy{Schedule: schedule, Jitter: 0.2, Rand: func() float64 { return 0.5 }}, 2, time.Minute, true},
		// The lowest draw gives 1-Jitter of the delay.
		{backoff.Policy{Schedule: schedule, Jitter: 0.2, Rand: func() float64 { return 0 }}, 3, 48 * time.Minute, true},
		// Jitter above 1 is clamped to 1, never a negative delay.
		{backoff.Policy{Schedule: schedule, Jitter: 5, Rand: func() float64 { return 0 }}, 3, 0, true},
		// Negative jitter is none.
		{backoff.Policy{Schedule: schedule, Jitter: -1, Rand: func() float64 { return 0 }}, 3, time.Hour, true},
		// A broken source outside [0,1) is treated as the midpoint.
		{backoff.Policy{Schedule: schedule, Jitter: 0.2, Rand: func() float64 { return 7 }}, 3, time.Hour, true},
		{backoff.Policy{Schedule: schedule, Jitter: 0.2, Rand: func() float64 { return math.NaN() }}, 3, time.Hour, true},
	}
	for i, tt := range tests {
		got, ok := tt.policy.Next(tt.attempts)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("#%d Next(%d) = %v, %v; want %v, %v", i, tt.attempts, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestJitterBounds draws many delays from a seeded source and checks every
// one stays within ±20%, and that together they cover the range and centre
// on the scheduled delay.
func TestJitterBounds(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	p := backoff.Policy{Schedule: backoff.DefaultSchedule, Jitter: 0.2, Rand: src.Float64}
	for attempt, step := range backoff.DefaultSchedule {
		lo, hi := time.Duration(float64(step)*0.8), time.Duration(float64(step)*1.2)
		minSeen, maxSeen := time.Duration(math.MaxInt64), time.Duration(0)
		var sum float64
		const draws = 5000
		for range draws {
			d, ok := p.Next(attempt + 1)
			if !ok {
				t.Fatalf("Next(%d) exhausted early", attempt+1)
			}
			if d < lo || d > hi {
				t.Fatalf("Next(%d) = %v, outside [%v, %v]", attempt+1, d, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
			sum += float64(d)
		}
		spread := float64(hi - lo)
		if float64(minSeen-lo) > 0.01*spread || float64(hi-maxSeen) > 0.01*spread {
			t.Errorf("step %v: draws span [%v, %v], want close to [%v, %v]", step, minSeen, maxSeen, lo, hi)
		}
		if mean := sum / draws; math.Abs(mean-float64(step)) > 0.02*float64(step) {
			t.Errorf("step %v: mean delay %v, want within 2%%", step, time.Duration(mean))
		}
	}
	if _, ok := p.Next(len(backoff.DefaultSchedule) + 1); ok {
		t.Error("Next after the last step is ok, want dead letter")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{" 30 ", 30 * time.Second, true},
		{"00042", 42 * time.Second, true},
		{"99999999999999999999999", time.Duration(math.MaxInt64), true},
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", time.Duration(math.MaxInt64), true},
		{"Sun, 01 Mar 2026 12:05:00 GMT", 5 * time.Minute, true},   // IMF-fixdate
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sun Mar  1 13:00:00 2026", time.Hour, true},              // asctime
		{"Sun, 01 Mar 2026 12:00:00 GMT", 0, true},                 // now
		{"Sun, 01 Mar 2026 11:59:59 GMT", 0, false},                // past
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"2026-03-01T12:05:00Z", 0, false},
	}
	for _, tt := range tests {
		got, ok := backoff.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestCapRetryAfter(t *testing.T) {
	tests := []struct {
		d, scheduled, want time.Duration
	}{
		{30 * time.Second, 5 * time.Second, 10 * time.Second},  // at most 2× the step
		{7 * time.Second, 5 * time.Second, 7 * time.Second},    // within bounds: honoured
		{time.Second, 5 * time.Minute, time.Second},            // shorter than scheduled: honoured
		{0, 5 * time.Minute, 0},                                // zero: now
		{-time.Minute, 5 * time.Minute, 0},                     // never negative
		{3 * time.Hour, 2 * time.Hour, time.Hour},              // at most 1 h
		{50 * time.Minute, 30 * time.Minute, 50 * time.Minute}, // 2× step is 1 h
		{2 * time.Hour, 40 * time.Minute, time.Hour},           // 2× step beyond 1 h
		{time.Duration(math.MaxInt64), 10 * time.Hour, time.Hour},
		{time.Duration(math.MaxInt64), time.Duration(math.MaxInt64), time.Hour}, // no overflow
		{time.Minute, 0, 0},
		{time.Minute, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := backoff.CapRetryAfter(tt.d, tt.scheduled); got != tt.want {
			t.Errorf("CapRetryAfter(%v, %v) = %v, want %v", tt.d, tt.scheduled, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"120", "0", "-1", "Sun, 01 Mar 2026 12:05:00 GMT", "Sunday, 01-Mar-26 12:00:30 GMT", "Sun Mar  1 13:00:00 2026", "99999999999999999999", "", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := backoff.ParseRetryAfter(s, now)
		if !ok {
			if d != 0 {
				t.Fatalf("ParseRetryAfter(%q) = %v, false; want 0 when not ok", s, d)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", s, d)
		}
		trimmed := strings.TrimSpace(s)
		if n, err := strconv.ParseInt(trimmed, 10, 64); err == nil && n < math.MaxInt64/int64(time.Second) && !strings.HasPrefix(trimmed, "+") {
			if d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %ds", s, d, n)
			}
		}
		if c := backoff.CapRetryAfter(d, 5*time.Minute); c < 0 || c > 10*time.Minute || c > d {
			t.Fatalf("CapRetryAfter(%v, 5m) = %v", d, c)
		}
	})
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"5s,5m,30m,2h,5h,10h,10h", "1ms", "", ",", "5s,,5m", "-1s", "25h", "1h1m1s1ms1us1ns", "0x10s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		schedule, err := backoff.ParseSchedule(s)
		if err != nil {
			if schedule != nil {
				t.Fatalf("ParseSchedule(%q) returned %v with error %v", s, schedule, err)
			}
			return
		}
		if len(schedule) == 0 || len(schedule) > backoff.MaxSteps {
			t.Fatalf("ParseSchedule(%q) returned %d steps", s, len(schedule))
		}
		parts := make([]string, len(schedule))
		for i, d := range schedule {
			if d <= 0 || d > backoff.MaxStep {
				t.Fatalf("ParseSchedule(%q) step %d = %v, out of range", s, i+1, d)
			}
			parts[i] = d.String()
		}
		// What ParseSchedule accepts, written back, parses to the same.
		again, err := backoff.ParseSchedule(strings.Join(parts, ","))
		if err != nil {
			t.Fatalf("reparse %q: %v", strings.Join(parts, ","), err)
		}
		if diff := cmp.Diff(schedule, again); diff != "" {
			t.Fatalf("reparse (-first +second):\n%s", diff)
		}
		p := backoff.Policy{Schedule: schedule, Jitter: 0.2, Rand: func() float64 { return 0.999999 }}
		for i, step := range schedule {
			d, ok := p.Next(i + 1)
			if !ok || d < 0 || float64(d) > 1.2*float64(step)+1 {
				t.Fatalf("Next(%d) = %v, %v for step %v", i+1, d, ok, step)
			}
		}
		if _, ok := p.Next(len(schedule) + 1); ok {
			t.Fatalf("Next past the schedule is ok")
		}
	})
}
