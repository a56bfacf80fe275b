package dispatch_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
)

// TestSharedRateLimitTwoNodes: two dispatchers ("nodes", each with its own
// connection pool) on one PostgreSQL schema deliver 120 messages to an
// endpoint limited to 20/s. The bucket is shared, so the receiver never
// sees more in any one-second window than one node alone could send: 20
// (the burst, one second's worth) + 20 (a second's refill) + 2 per node
// (the ~100 ms chunk each node may hold in hand) = 44. With per-node
// buckets the two nodes would send up to 80 in the first second.
func TestSharedRateLimitTwoNodes(t *testing.T) {
	url, schema := pgtest.FreshSchema(t)
	key, _ := keyring.NewKey()
	ring, _ := keyring.Parse(key)
	stores := make([]*postgres.Store, 2)
	for i := range stores {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: url, Keyring: ring, Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}

	var mu sync.Mutex
	var times []time.Time
	byNode := map[string]int{}
	seen := map[string]bool{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		byNode[r.Header.Get("user-agent")]++
		seen[r.Header.Get("webhook-id")] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "shared", CreatedAt: now, UpdatedAt: now}
	if err := stores[0].CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	const perSecond = 20
	rateLimit := uint16(perSecond)
	ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: recv.URL, Version: 1, RateLimit: &rateLimit,
		Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
	if err := stores[0].CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}

	dispatchers := make([]*dispatch.Dispatcher, 2)
	for i, owner := range []string{"node-a", "node-b"} {
		d, err := dispatch.New(dispatch.Config{
			Store:        stores[i],
			Sender:       dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second, UserAgent: owner}),
			Owner:        owner,
			Workers:      16,
			ClaimBatch:   8, // small claims, so both nodes take part
			PollInterval: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		runDispatcher(t, d)
		dispatchers[i] = d
	}

	const messages = 120
	msgs := make([]*herald.Message, messages)
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "e",
			Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := stores[0].CreateMessages(t.Context(), msgs, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range dispatchers {
		d.Notify()
	}
	eventually(t, "every message delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == messages
	})

	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	const bound = perSecond + perSecond + 2*2 // burst + refill + chunks in hand
	// 50 ms of slack for the trip from the sender's token to the receiver's
	// clock; the bound only gets easier on a slow machine.
	const window = 950 * time.Millisecond
	most := 0
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < window {
			j++
		}
		most = max(most, j-i)
	}
	t.Logf("%d receptions (%v by node), at most %d within %v", len(times), byNode, most, window)
	if most > bound {
		t.Errorf("%d deliveries within %v, more than %d: the rate limit does not hold across nodes", most, window, bound)
	}
	if len(byNode) != 2 {
		t.Errorf("receptions by node %v: want both nodes sending", byNode)
	}
}
