package dispatch

import (
	"sync"
	"time"
)

// cacheTTL is how long an endpoint or application read from the store is
// reused: changes to them reach the dispatcher within it.
const cacheTTL = 2 * time.Second

// maxCached bounds a cache; past it the cache starts over.
const maxCached = 100_000

// ttlCache keeps values loaded from the store for cacheTTL.
type ttlCache[T any] struct {
	mu sync.Mutex
	m  map[string]cached[T]
}

type cached[T any] struct {
	v       T
	fetched time.Time
}

// get returns the value of id, loading it when absent or stale. Errors are
// not cached.
func (c *ttlCache[T]) get(id string, load func() (T, error)) (T, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < cacheTTL {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]cached[T])
	}
	c.m[id] = cached[T]{v: v, fetched: now}
	c.mu.Unlock()
	return v, nil
}
