package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// maxHangingEndpoints bounds --hanging-endpoints (one loopback listener
// each).
const maxHangingEndpoints = 1000

// hangingApp is the noisy neighbour of --hanging-endpoints: an application
// of its own whose endpoints accept each request and never answer (until
// the sender's request timeout, or the run's end), posted enough messages
// that its deliveries alone would hold every worker if nothing stopped
// them. The benchmark application's figures, measured beside it, show
// whether another application's endpoints can stall it.
type hangingApp struct {
	recv        *receivers
	deliveries  int
	heldAtStart int64
}

// hangingAppReport is what the report shows of it.
type hangingAppReport struct {
	Endpoints  int `json:"endpoints"`
	Deliveries int `json:"deliveries"`
	// HeldAtStart is how many of its requests hung when the run began:
	// the workers it held; HeldAtEnd counts every request it received by
	// the run's end (retries after the request timeout included).
	HeldAtStart int64 `json:"requestsHeldAtStart"`
	HeldAtEnd   int64 `json:"requestsByEnd"`
}

// startHangingApp creates the application and its endpoints, posts
// 2 × --endpoint-concurrency messages, each to every endpoint (twice what
// the endpoints may have in flight, so the application wants more workers
// than its share and, with N × concurrency ≥ --workers, than the node has),
// and waits until its requests stop growing: the workers it could take are
// taken before the run begins.
func (c *Command) startHangingApp(ctx context.Context, client *http.Client, t serverTarget, stop <-chan struct{}) (*hangingApp, error) {
	p := &routePlan{roles: make([]role, c.HangingEndpoints), filters: make([][]string, c.HangingEndpoints)}
	for i := range p.roles {
		p.roles[i] = roleHanging
	}
	recv, err := startReceivers(p, 0, time.Now(), stop)
	if err != nil {
		return nil, err
	}
	h := &hangingApp{recv: recv}
	appID, err := setupApp(ctx, client, t, "herald-bench-hanging", p, recv.servers)
	if err != nil {
		recv.close(func() {})
		return nil, err
	}
	messages := 2 * c.EndpointConcurrency
	for i := range messages {
		in := map[string]any{"eventType": "hang", "payload": map[string]any{"n": i}}
		if err := call(ctx, client, t, http.MethodPost, "/api/v1/app/"+appID+"/msg", in, nil); err != nil {
			recv.close(func() {})
			return nil, fmt.Errorf("post to the hanging application: %w", err)
		}
	}
	h.deliveries = messages * c.HangingEndpoints
	// Settled: no new hanging request for a second (or 30 s in all).
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		n := recv.tally.hangs.Load()
		if n != last {
			last, since = n, time.Now()
		} else if n > 0 && time.Since(since) >= time.Second {
			break
		}
		select {
		case <-ctx.Done():
			recv.close(func() {})
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	h.heldAtStart = recv.tally.hangs.Load()
	return h, nil
}

func (h *hangingApp) report() *hangingAppReport {
	return &hangingAppReport{Endpoints: len(h.recv.servers), Deliveries: h.deliveries,
		HeldAtStart: h.heldAtStart, HeldAtEnd: h.recv.tally.hangs.Load()}
}

// close releases the hanging requests (release closes the run's stop
// channel) and stops the listeners.
func (h *hangingApp) close(release func()) { h.recv.close(release) }
