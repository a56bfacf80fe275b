package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// withLimits sets the API's rate limits and gives it metrics on reg.
func withLimits(reg *prometheus.Registry, perSecond float64, burst, authFailures int) func(*Config) {
	return func(cfg *Config) {
		cfg.Metrics = telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
		cfg.APIRateLimit, cfg.APIRateBurst, cfg.AuthFailureBurst = perSecond, burst, authFailures
	}
}

// callAs is ts.call with another bearer token.
func (ts *testServer) callAs(t *testing.T, token, method, path, body string, headers ...string) response {
	t.Helper()
	return ts.call(t, method, path, body, append([]string{"Authorization", "Bearer " + token}, headers...)...)
}

// adminKey issues an admin-scope API key and returns its secret and ID.
func adminKey(t *testing.T, ts *testServer, name string) (secret, id string) {
	t.Helper()
	tok := herald.Token{Kind: herald.TokenKey, Name: name, ExpiresAt: ts.Clock.Now().Add(24 * time.Hour)}
	auth := access.NewAuthenticator(ts.Store, [32]byte{1}, ts.Clock.Now)
	secret, err := auth.Issue(t.Context(), &tok, access.PrefixKey)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok.ID
}

// wantLimited checks a 429 answer: Retry-After in whole seconds, at least
// want, and Svix's error shape.
func wantLimited(t *testing.T, res response, want string) {
	t.Helper()
	if res.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429; body %s", res.Status, res.Body)
	}
	if got := res.Header.Get("Retry-After"); got != want {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
	if e := errorOut(t, res); e.Code != herald.ERATELIMIT || e.Detail == "" {
		t.Errorf("body %s, want code %q and a detail", res.Body, herald.ERATELIMIT)
	}
}

// TestAPIRateLimitPerKey: a key over its limit gets 429 with Retry-After
// and nothing is done (no idempotency record: the same request runs once
// the bucket refills), while another key, the bootstrap admin token and
// the refilled key itself are served; a console session counts against
// the key it was opened with.
func TestAPIRateLimitPerKey(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := newTestServer(t, withLimits(reg, 5, 5, 0))
	keyA, idA := adminKey(t, ts, "a")
	keyB, _ := adminKey(t, ts, "b")

	for i := range 5 {
		if res := ts.callAs(t, keyA, "GET", "/api/v1/app", ""); res.Status != http.StatusOK {
			t.Fatalf("key A request %d: %d %s", i, res.Status, res.Body)
		}
	}
	wantLimited(t, ts.callAs(t, keyA, "GET", "/api/v1/app", ""), "1")
	// Refused before the handler: no application, no idempotency record.
	wantLimited(t, ts.callAs(t, keyA, "POST", "/api/v1/app", `{"name":"x","uid":"once"}`, "idempotency-key", "k1"), "1")
	if apps, err := ts.Store.ListApplications(t.Context(), herald.ListOptions{Limit: 10}); err != nil || len(apps) != 0 {
		t.Fatalf("applications after a refused create: %d, %v", len(apps), err)
	}
	// A session opened with key A counts against key A.
	req := httptest.NewRequestWithContext(access.WithPrincipal(t.Context(),
		access.Principal{TokenID: "tok_session", Kind: herald.TokenSession, Parent: idA}), "GET", "/api/v1/app", nil)
	rec := httptest.NewRecorder()
	ts.API.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("session of key A: %d, want 429", rec.Code)
	}

	for i := range 5 {
		if res := ts.callAs(t, keyB, "GET", "/api/v1/app", ""); res.Status != http.StatusOK {
			t.Fatalf("key B request %d while A is limited: %d %s", i, res.Status, res.Body)
		}
	}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "") // the bootstrap token

	ts.Clock.Add(time.Second) // five more for A
	res := ts.callAs(t, keyA, "POST", "/api/v1/app", `{"name":"x","uid":"once"}`, "idempotency-key", "k1")
	if res.Status != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the refill: %d replayed=%q %s", res.Status, res.Header.Get("Idempotent-Replayed"), res.Body)
	}

	got := telemetrytest.Values(t, reg)
	if n := got[`herald_api_rate_limited_total{limit="key"}`]; n != 3 {
		t.Errorf(`herald_api_rate_limited_total{limit="key"} = %v, want 3`, n)
	}
	if n := got[`herald_api_rate_limited_total{limit="auth_failures"}`]; n != 0 {
		t.Errorf(`herald_api_rate_limited_total{limit="auth_failures"} = %v, want 0`, n)
	}
}

// TestAPIRateLimitRetryAfter: Retry-After says when the next token comes,
// in whole seconds, at least one.
func TestAPIRateLimitRetryAfter(t *testing.T) {
	ts := newTestServer(t, withLimits(prometheus.NewRegistry(), 0.25, 1, 0)) // one every 4 s
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "")
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", ""), "4")
	ts.Clock.Add(2500 * time.Millisecond)
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", ""), "2")
	ts.Clock.Add(1400 * time.Millisecond)
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", ""), "1")
	ts.Clock.Add(100 * time.Millisecond)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "")
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {time.Minute, "60"}} {
		if got := retryAfter(tc.d); got != tc.want {
			t.Errorf("retryAfter(%v) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

// TestAPIRateLimitSvixSDK: the official Svix Go SDK reads a 429 as an
// *svix.Error with its status and body; it does not retry it (it retries
// 5xx and network errors only), so the one request it made is the one
// refused, and Retry-After is for the caller to honour.
func TestAPIRateLimitSvixSDK(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := newTestServer(t, withLimits(reg, 1, 1, 0))
	client := ts.sdk(t, ts.Token)
	if _, err := client.Application.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	_, err := client.Application.List(t.Context(), nil)
	var serr *svix.Error
	if !errors.As(err, &serr) || serr.Status() != http.StatusTooManyRequests || !strings.Contains(string(serr.Body()), `"code":"rate_limited"`) {
		t.Fatalf("second list: %v (%T), want a 429 svix.Error with code rate_limited", err, err)
	}
	if n := telemetrytest.Values(t, reg)[`herald_http_requests_total{code="429",route="GET /api/v1/app"}`]; n != 1 {
		t.Errorf("429 answers: %v, want 1 (the SDK does not retry them)", n)
	}
}

// countingTokens counts the token lookups of the authenticator.
type countingTokens struct {
	herald.TokenStore
	lookups atomic.Int64
}

func (c *countingTokens) GetTokenByHash(ctx context.Context, hash []byte) (*herald.Token, error) {
	c.lookups.Add(1)
	return c.TokenStore.GetTokenByHash(ctx, hash)
}

// TestAuthFailureLimit: after a burst of failed authentications an address
// gets 429 with Retry-After, and its tokens are not even looked up; the
// bootstrap token and a key that authenticated lately still pass (many
// customers behind one NAT); one more failure is allowed a second.
func TestAuthFailureLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	var tokens *countingTokens
	ts := newTestServer(t, withLimits(reg, 0, 0, 3), func(cfg *Config) {
		tokens = &countingTokens{TokenStore: cfg.Store}
		cfg.Auth = access.NewAuthenticator(tokens, cfg.AdminTokenHash, cfg.Now)
	})
	good, _ := adminKey(t, ts, "good")
	late, _ := adminKey(t, ts, "never used before the block")
	// A key that worked before the failures and during them.
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", "Bearer "+good)

	bad := []string{"Bearer hkey_unknown", "Bearer appsk_unknown", "Basic abc", ""}
	for i := range 3 {
		h := bad[i]
		res := ts.call(t, "GET", "/api/v1/app", "", "Authorization", h)
		if res.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d (%q): %d, want 401", i, h, res.Status)
		}
		if i == 1 {
			ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", "Bearer "+good)
		}
	}
	before := tokens.lookups.Load()
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", "", "Authorization", "Bearer hkey_unknown"), "1")
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", "", "Authorization", ""), "1")
	wantLimited(t, ts.callAs(t, late, "GET", "/api/v1/app", ""), "1")
	if n := tokens.lookups.Load() - before; n != 0 {
		t.Errorf("%d token lookups for a blocked address, want 0", n)
	}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", "Bearer "+good)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "") // the bootstrap token

	ts.Clock.Add(time.Second)
	if res := ts.call(t, "GET", "/api/v1/app", "", "Authorization", "Bearer hkey_unknown"); res.Status != http.StatusUnauthorized {
		t.Fatalf("a second later: %d, want one more 401", res.Status)
	}
	wantLimited(t, ts.call(t, "GET", "/api/v1/app", "", "Authorization", "Bearer hkey_unknown"), "1")
	ts.Clock.Add(time.Second)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", "Bearer "+late)

	if n := telemetrytest.Values(t, reg)[`herald_api_rate_limited_total{limit="auth_failures"}`]; n != 4 {
		t.Errorf(`herald_api_rate_limited_total{limit="auth_failures"} = %v, want 4`, n)
	}
	// Once the failures stop and the bucket refills, the address is
	// forgotten within a minute: the hot path skips the table again.
	ts.Clock.Add(time.Minute)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "")
	if addrs, _ := ts.API.fails.sizes(); addrs != 0 || ts.API.fails.active() {
		t.Errorf("%d addresses remembered a minute after the last failure, want 0", addrs)
	}
}

// TestAuthFailureLimitProxies: behind a trusted proxy each forwarded
// client address has its own limit; a client that is not a trusted proxy
// cannot dodge its limit by setting X-Forwarded-For.
func TestAuthFailureLimitProxies(t *testing.T) {
	fail := func(t *testing.T, ts *testServer, xff string) int {
		t.Helper()
		return ts.call(t, "GET", "/api/v1/app", "", "Authorization", "Bearer hkey_unknown", "X-Forwarded-For", xff).Status
	}
	t.Run("trusted", func(t *testing.T) {
		proxies, err := access.ParseProxies("127.0.0.1/32")
		if err != nil {
			t.Fatal(err)
		}
		ts := newTestServer(t, withLimits(prometheus.NewRegistry(), 0, 0, 2), func(cfg *Config) { cfg.Proxies = proxies })
		for i, want := range []int{401, 401, 429, 429} {
			if got := fail(t, ts, "203.0.113.5"); got != want {
				t.Errorf("client 203.0.113.5, failure %d: %d, want %d", i, got, want)
			}
		}
		if got := fail(t, ts, "198.51.100.7, 203.0.113.6"); got != http.StatusUnauthorized {
			t.Errorf("client 203.0.113.6 (the nearest untrusted hop): %d, want 401", got)
		}
		// IPv6 clients are limited by their /64.
		for i, want := range []int{401, 401, 429} {
			if got := fail(t, ts, fmt.Sprintf("2001:db8:1:2::%x", i+1)); got != want {
				t.Errorf("client in 2001:db8:1:2::/64, failure %d: %d, want %d", i, got, want)
			}
		}
		if got := fail(t, ts, "2001:db8:1:3::1"); got != http.StatusUnauthorized {
			t.Errorf("client in another /64: %d, want 401", got)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		proxies, err := access.ParseProxies("10.0.0.0/8")
		if err != nil {
			t.Fatal(err)
		}
		ts := newTestServer(t, withLimits(prometheus.NewRegistry(), 0, 0, 2), func(cfg *Config) { cfg.Proxies = proxies })
		for i, want := range []int{401, 401, 429, 429, 429} {
			if got := fail(t, ts, fmt.Sprintf("203.0.113.%d", i+1)); got != want {
				t.Errorf("failure %d with a forged X-Forwarded-For: %d, want %d", i, got, want)
			}
		}
	})
}

// TestRateLimitTablesBounded: neither many addresses, nor many tokens that
// authenticated, nor many credentials grow a node's tables past their cap.
func TestRateLimitTablesBounded(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f := newFailLimits(3)
	var addr string
	for i := range 3 * maxFailAddrs {
		addr = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		for range 4 {
			f.failed(addr, now)
		}
		f.succeeded(addr, tokenHash(addr), now)
		if addrs, good := f.sizes(); addrs > maxFailAddrs || good > maxGoodTokens {
			t.Fatalf("after %d addresses: %d addresses, %d good tokens; caps %d, %d", i+1, addrs, good, maxFailAddrs, maxGoodTokens)
		}
	}
	// The latest address is still limited.
	if _, blocked := f.blocked(addr, now); !blocked {
		t.Error("the latest address is not limited")
	}

	l := newKeyLimits(1, 1, nil, nil)
	for i := range 2 * maxKeyBuckets {
		l.allow(t.Context(), fmt.Sprintf("tok_%d", i), now)
	}
	if n := l.size(); n > maxKeyBuckets {
		t.Fatalf("%d credential buckets, cap %d", n, maxKeyBuckets)
	}
	// A credential in use keeps its bucket: it is still empty.
	key := fmt.Sprintf("tok_%d", 2*maxKeyBuckets-1)
	if _, ok := l.allow(t.Context(), key, now); ok {
		t.Error("the latest credential's spent bucket was forgotten")
	}
}

// TestAPIRateLimitSharedTwoNodes: two API instances ("nodes", each with
// its own PostgreSQL pool) on one database share a key's bucket. With the
// clock stopped the bucket never refills, so together they serve at most
// its burst, however the requests are spread, and every token they took
// is served once the background takes have landed. A second later they
// serve at most one second's worth more. Per-node buckets would serve
// twice as many, and so would a sweep of idle buckets that took the busy
// one (each node sweeps at its first take).
func TestAPIRateLimitSharedTwoNodes(t *testing.T) {
	url, schema := pgtest.FreshSchema(t)
	const perSecond, burst = 50, 100
	clock := testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	var nodes []*testServer
	for range 2 {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: url, Keyring: testkeys.Ring(t), Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ts := newTestServer(t, withLimits(prometheus.NewRegistry(), perSecond, burst, 0), func(cfg *Config) {
			cfg.Store, cfg.Messages, cfg.SharedRateLimits, cfg.IdleBuckets, cfg.Now = s, newCommitter(t, s), s, s, clock.Now
		})
		ts.Clock = clock
		t.Cleanup(ts.API.keys.fetches.Wait) // before the store closes
		nodes = append(nodes, ts)
	}

	served := func(rounds int) (total int, byNode [2]int) {
		for i := range rounds {
			n := i % 2
			res := nodes[n].call(t, "GET", "/api/v1/app", "")
			switch res.Status {
			case http.StatusOK:
				byNode[n]++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("node %d: %d %s", n, res.Status, res.Body)
			}
		}
		return byNode[0] + byNode[1], byNode
	}
	drain := func() int {
		for _, n := range nodes {
			n.API.keys.fetches.Wait()
		}
		total, _ := served(40) // the hands: at most 1.5 chunks each
		return total
	}

	total, byNode := served(3 * burst)
	total += drain()
	if total != burst || byNode[0] == 0 || byNode[1] == 0 {
		t.Fatalf("stopped clock: served %d (by node %v, then the hands), want exactly the burst %d from both nodes", total, byNode, burst)
	}
	nodes[0].Clock.Add(time.Second)
	total, _ = served(3 * perSecond)
	total += drain()
	if total != perSecond {
		t.Fatalf("one second later: served %d more, want the second's %d", total, perSecond)
	}
}

// scriptedTaker grants what grant says and counts the takes.
type scriptedTaker struct {
	takes atomic.Int64
	grant func(want int) (int, error)
}

func (s *scriptedTaker) TakeTokens(_ context.Context, _ string, _, _ float64, want int, _ time.Time) (int, error) {
	s.takes.Add(1)
	return s.grant(want)
}

// TestSharedLimitRoundTrips: a credential over its shared limit costs its
// node one take from the database per 100 ms, not one per request; a node
// spends a chunk (100 ms worth) locally, asking for the next one in the
// background; while the database cannot be read, the node's own bucket
// decides (a burst, then the rate), never every request nor none.
func TestSharedLimitRoundTrips(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t.Run("dry", func(t *testing.T) {
		st := &scriptedTaker{grant: func(int) (int, error) { return 0, nil }}
		l := newKeyLimits(100, 200, st, nil)
		for range 50 {
			if d, ok := l.allow(t.Context(), "k", now); ok || d != apiSharedChunk {
				t.Fatalf("an empty shared bucket: ok=%v, retry in %v; want a refusal for %v", ok, d, apiSharedChunk)
			}
		}
		if n := st.takes.Load(); n != 1 {
			t.Errorf("%d takes for 50 refused requests in the same 100 ms, want 1", n)
		}
		if _, ok := l.allow(t.Context(), "k", now.Add(apiSharedChunk)); ok || st.takes.Load() != 2 {
			t.Errorf("100 ms later: ok=%v after %d takes; want one more take, still refused", ok, st.takes.Load())
		}
	})
	t.Run("chunks", func(t *testing.T) {
		st := &scriptedTaker{grant: func(want int) (int, error) { return want, nil }}
		l := newKeyLimits(100, 200, st, nil) // chunks of 10
		for i := range 1000 {
			if _, ok := l.allow(t.Context(), "k", now); !ok {
				t.Fatalf("request %d refused", i)
			}
			if i%10 == 0 {
				l.fetches.Wait() // let the background take land, as the database would in time
			}
		}
		l.fetches.Wait()
		if n := st.takes.Load(); n < 100 || n > 102 {
			t.Errorf("%d takes for 1,000 requests, want about 100 (one per chunk of 10)", n)
		}
	})
	t.Run("store down", func(t *testing.T) {
		var errs atomic.Int64
		st := &scriptedTaker{grant: func(int) (int, error) { return 0, errors.New("connection refused") }}
		l := newKeyLimits(10, 5, st, func(error) { errs.Add(1) })
		served := 0
		for range 20 {
			if _, ok := l.allow(t.Context(), "k", now); ok {
				served++
			}
		}
		l.fetches.Wait()
		if served != 5 || st.takes.Load() != 1 || errs.Load() != 1 {
			t.Errorf("database down: served %d of 20 after %d takes and %d errors; want this node's burst of 5 after one failed take", served, st.takes.Load(), errs.Load())
		}
		// A second later the database is asked again; it still fails, so
		// the local bucket, refilled meanwhile, decides.
		if _, ok := l.allow(t.Context(), "k", now.Add(apiStoreDown)); !ok || st.takes.Load() != 2 {
			t.Errorf("after %v: ok=%v, %d takes; want one more take and the refilled local bucket's token", apiStoreDown, ok, st.takes.Load())
		}
	})
}

// countingSweeper records the sweeps of idle shared buckets.
type countingSweeper struct {
	mu     sync.Mutex
	before []time.Time
}

func (c *countingSweeper) DeleteIdleRateBuckets(_ context.Context, prefix string, before time.Time) (int, error) {
	if prefix != sharedKeyPrefix {
		return 0, fmt.Errorf("prefix %q", prefix)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before = append(c.before, before)
	return 0, nil
}

// TestSharedLimitSweeps: a node deletes the shared buckets idle for an
// hour (or long enough to refill, when longer) once an hour, not per take.
func TestSharedLimitSweeps(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sw := &countingSweeper{}
	l := newKeyLimits(0.0001, 1, &scriptedTaker{grant: func(want int) (int, error) { return want, nil }}, nil) // refills in 10,000 s
	l.sweeper = sw
	for _, at := range []time.Duration{0, time.Minute, 59 * time.Minute, time.Hour, time.Hour + time.Second} {
		for i := range 3 {
			l.allow(t.Context(), fmt.Sprint("tok_", i), now.Add(at))
			l.fetches.Wait()
		}
	}
	want := []time.Time{now.Add(-10000*time.Second - time.Minute), now.Add(time.Hour - 10000*time.Second - time.Minute)}
	if !slices.Equal(sw.before, want) {
		t.Errorf("sweeps of buckets idle since %v, want %v", sw.before, want)
	}
}

// fakeTaker grants every take in full.
type fakeTaker struct{}

func (fakeTaker) TakeTokens(_ context.Context, _ string, _, _ float64, want int, _ time.Time) (int, error) {
	return want, nil
}

// BenchmarkAPIRateLimit is the per-request cost of the credential rate
// limit on the allowed path: this node's bucket (SQLite), and a hand of the
// shared bucket (PostgreSQL; the store here grants at once, so only the
// hand's bookkeeping and its background takes are measured).
func BenchmarkAPIRateLimit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		shared TokenTaker
	}{{"local", nil}, {"shared", fakeTaker{}}} {
		b.Run(bc.name, func(b *testing.B) {
			l := newKeyLimits(1e9, 1e9, bc.shared, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.allow(ctx, "tok_bench", time.Now()); !ok {
					b.Fatal("refused")
				}
			}
			l.fetches.Wait()
		})
	}
}
