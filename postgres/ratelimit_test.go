package postgres_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTakeTokensConcurrent: many goroutines on two stores (two nodes) take
// tokens from one bucket while the injected clock advances; together they
// are never granted more than the burst plus the rate times the time
// elapsed, and they do get that much once demand exceeds it.
func TestTakeTokensConcurrent(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	a, b := openStore(t, schema, ring), openStore(t, schema, ring)
	const (
		perSecond = 20.0
		burst     = 20.0
		steps     = 50
		step      = 100 * time.Millisecond // 2 tokens a step
	)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var granted atomic.Int64
	for i := range steps {
		now := t0.Add(time.Duration(i) * step)
		var wg sync.WaitGroup
		for g := range 16 {
			s := a
			if g%2 == 1 {
				s = b
			}
			wg.Go(func() {
				n, err := s.TakeTokens(t.Context(), "ep_shared", perSecond, burst, 3, now)
				if err != nil {
					t.Errorf("TakeTokens: %v", err)
				}
				if n < 0 || n > 3 {
					t.Errorf("TakeTokens granted %d, want 0 to 3", n)
				}
				granted.Add(int64(n))
			})
		}
		wg.Wait()
		elapsed := now.Sub(t0).Seconds()
		limit := int64(burst + perSecond*elapsed + 1e-9)
		if got := granted.Load(); got > limit {
			t.Fatalf("after %.1f s: granted %d tokens, more than burst + rate × elapsed = %d", elapsed, got, limit)
		} else if got < limit {
			// 16 takes of 3 a step always exceed the 2 tokens a step refills:
			// the bucket is drained to below one token every step.
			t.Fatalf("after %.1f s: granted %d tokens, want all %d available", elapsed, got, limit)
		}
	}
	// Another key has its own bucket, full at first.
	if n, err := a.TakeTokens(t.Context(), "app_other", perSecond, burst, 25, t0); err != nil || n != 20 {
		t.Fatalf("first take of a new key = %d, %v; want the burst, 20", n, err)
	}
	// A clock that runs backwards refills nothing.
	if n, err := b.TakeTokens(t.Context(), "app_other", perSecond, burst, 5, t0.Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("take at an earlier time = %d, %v; want 0", n, err)
	}
	// A long pause refills only up to the burst.
	if n, err := b.TakeTokens(t.Context(), "app_other", perSecond, burst, 100, t0.Add(time.Hour)); err != nil || n != 20 {
		t.Fatalf("take after an hour = %d, %v; want the burst, 20", n, err)
	}
}
