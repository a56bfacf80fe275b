package dispatch

import "sync"

// adaptive is each endpoint's adaptive concurrency limit: an attempt that
// timed out or could not connect halves it (down to 1), so an endpoint
// that stopped answering holds one worker instead of --endpoint-concurrency
// for every request timeout; each success raises it by one, back up to the
// configured limit. An HTTP error answer leaves it as it is: the endpoint
// answers, so more concurrency does not hold workers longer.
type adaptive struct {
	max int
	mu  sync.Mutex
	// limit holds the endpoints below max; an endpoint absent is at max,
	// so the map holds only endpoints that failed lately.
	limit map[string]int
}

func newAdaptive(maxLimit int) *adaptive {
	return &adaptive{max: maxLimit, limit: make(map[string]int)}
}

// get returns the endpoint's concurrency limit now.
func (a *adaptive) get(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := a.limit[id]; ok {
		return n
	}
	return a.max
}

// cut halves the endpoint's limit, down to 1: an attempt timed out or
// failed to connect.
func (a *adaptive) cut(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.limit[id]
	if !ok {
		n = a.max
	}
	a.limit[id] = max(n/2, 1)
}

// grow raises the endpoint's limit by one after a success, up to max.
func (a *adaptive) grow(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.limit[id]
	if !ok {
		return
	}
	if n+1 >= a.max {
		delete(a.limit, id)
		return
	}
	a.limit[id] = n + 1
}
