// Package ttlcache keeps values read from the store for a short time, so
// hot paths (every delivery, every message) do not read rows that rarely
// change on every call. Changes made elsewhere (another node) are seen
// within the TTL.
package ttlcache

import (
	"sync"
	"time"
)

// DefaultMax bounds a cache when Max is zero; past the bound the cache
// starts over.
const DefaultMax = 100_000

// Cache maps keys to values loaded at most TTL ago. The zero value is not
// usable: set TTL. Safe for concurrent use.
type Cache[T any] struct {
	// TTL is how long a loaded value is reused.
	TTL time.Duration
	// Max is the most entries kept (DefaultMax when zero).
	Max int
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex
	m  map[string]entry[T]
}

type entry[T any] struct {
	v       T
	fetched time.Time
}

func (c *Cache[T]) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the value of key, calling load when it is absent or older
// than TTL. Errors are not cached. Concurrent misses of one key may each
// call load.
func (c *Cache[T]) Get(key string, load func() (T, error)) (T, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.TTL {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.Put(key, v)
	return v, nil
}

// Put stores v as key's value, loaded now.
func (c *Cache[T]) Put(key string, v T) {
	limit := c.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	now := c.now()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[string]entry[T])
	}
	c.m[key] = entry[T]{v: v, fetched: now}
	c.mu.Unlock()
}

// Forget drops key, so the next Get loads it.
func (c *Cache[T]) Forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// Clear drops every entry.
func (c *Cache[T]) Clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
