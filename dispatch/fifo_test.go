package dispatch_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/signature"
)

// TestFIFOOrder sends 500 messages, one after the other, to a FIFO endpoint
// whose receiver fails about 30% of requests at random, while Herald
// delivers: the first successful receipt of each message must come in
// creation order, and the receiver never sees two requests at once.
func TestFIFOOrder(t *testing.T) {
	const messages = 500
	steps := make([]time.Duration, 60) // 0.3^61: no message runs out of tries
	for i := range steps {
		steps[i] = time.Millisecond
	}
	e := newEnv(t, envOptions{schedule: steps, breaker: dispatch.BreakerConfig{Disabled: true}})
	var (
		mu          sync.Mutex
		rng         = rand.New(rand.NewPCG(1, 2))
		inFlight    int
		maxInFlight int
		requests    int
		order       []string // webhook-id of each first successful receipt
		succeeded   = map[string]bool{}
		bad         int // requests that failed signature verification
	)
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, secret: signature.FormatSecret(key), got: map[string]int{}}
	verifier, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		requests++
		fail := rng.Float64() < 0.3
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		if verifier.Verify(body, req.Header) != nil {
			mu.Lock()
			bad++
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		id := req.Header.Get("webhook-id")
		mu.Lock()
		if !succeeded[id] {
			succeeded[id] = true
			order = append(order, id)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	ep := e.endpoint(t, r, nil, nil)
	ep.Ordering, ep.UpdatedAt = herald.OrderingFIFO, time.Now()
	if err := e.store.UpdateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	var created []string
	for range messages {
		created = append(created, e.send(t, "a", nil).ID)
	}
	eventually(t, "every message delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == messages
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range created {
		if order[i] != created[i] {
			t.Fatalf("first successful receipt %d is %s, want %s (creation order)", i, order[i], created[i])
		}
	}
	if maxInFlight != 1 {
		t.Errorf("the FIFO endpoint had %d requests in flight at once, want 1", maxInFlight)
	}
	if bad != 0 {
		t.Errorf("%d deliveries failed signature verification", bad)
	}
	t.Logf("%d messages, %d requests (%d failed on purpose)", messages, requests, requests-messages)
}
