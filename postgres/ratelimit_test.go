package postgres_test

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
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

// TestRateBucketsGoWithTheirOwner: deleting an endpoint removes its
// shared rate-limit bucket, and deleting an application removes its own
// and those of its endpoints; other buckets stay.
func TestRateBucketsGoWithTheirOwner(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	ctx := t.Context()
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "a", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	var eps []*herald.Endpoint
	for range 2 {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
			Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	for _, key := range []string{app.ID, eps[0].ID, eps[1].ID, "app_unrelated"} {
		if _, err := s.TakeTokens(ctx, key, 10, 10, 1, now); err != nil {
			t.Fatal(err)
		}
	}
	buckets := func() string {
		t.Helper()
		v, err := postgres.QueryString(ctx, s, `SELECT coalesce(string_agg(key, ',' ORDER BY key COLLATE "C"), '') FROM rate_bucket`)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := s.DeleteEndpoint(ctx, app.ID, eps[0].ID); err != nil {
		t.Fatal(err)
	}
	if got, want := buckets(), sortedKeys(app.ID, eps[1].ID, "app_unrelated"); got != want {
		t.Fatalf("buckets after deleting an endpoint: %s, want %s", got, want)
	}
	if err := s.DeleteApplication(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if got := buckets(); got != "app_unrelated" {
		t.Fatalf("buckets after deleting the application: %s, want app_unrelated", got)
	}
	// Deleting what does not exist still answers not found.
	if err := s.DeleteEndpoint(ctx, app.ID, eps[1].ID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("DeleteEndpoint of a deleted endpoint: %v, want not found", err)
	}
	if err := s.DeleteApplication(ctx, app.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("DeleteApplication of a deleted application: %v, want not found", err)
	}
}

// sortedKeys joins keys in byte order, as ORDER BY key COLLATE "C" sorts.
func sortedKeys(keys ...string) string {
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// TestDeleteIdleRateBuckets: the buckets of a prefix idle since before go;
// the busy ones and the other prefixes' stay, and a bucket that went
// starts full again.
func TestDeleteIdleRateBuckets(t *testing.T) {
	s := openStore(t, freshSchema(t), testKeyring(t))
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for key, at := range map[string]time.Time{
		"api:tok_old": t0, "api:tok_new": t0.Add(2 * time.Hour), "ep_old": t0, "apix": t0,
	} {
		if n, err := s.TakeTokens(ctx, key, 1, 5, 5, at); err != nil || n != 5 {
			t.Fatalf("TakeTokens(%s): %d, %v", key, n, err)
		}
	}
	n, err := s.DeleteIdleRateBuckets(ctx, "api:", t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteIdleRateBuckets: %d, %v; want 1", n, err)
	}
	got, err := postgres.QueryString(ctx, s, `SELECT string_agg(key, ',' ORDER BY key COLLATE "C") FROM rate_bucket`)
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedKeys("api:tok_new", "ep_old", "apix"); got != want {
		t.Fatalf("buckets left: %s, want %s", got, want)
	}
	// The deleted bucket is full again; the kept one is still empty.
	at := t0.Add(2 * time.Hour)
	if n, _ := s.TakeTokens(ctx, "api:tok_old", 1, 5, 5, at); n != 5 {
		t.Errorf("a deleted bucket granted %d, want a full 5", n)
	}
	if n, _ := s.TakeTokens(ctx, "api:tok_new", 1, 5, 5, at); n != 0 {
		t.Errorf("a kept bucket granted %d, want 0", n)
	}
}
