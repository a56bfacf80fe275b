package ttlcache

import (
	"errors"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Cache[int]{TTL: time.Second, Max: 2, Now: func() time.Time { return now }}
	loads := 0
	load := func(v int) func() (int, error) {
		return func() (int, error) { loads++; return v, nil }
	}
	get := func(key string, v int) int {
		t.Helper()
		got, err := c.Get(key, load(v))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := get("a", 1); got != 1 || loads != 1 {
		t.Fatalf("first get = %d after %d loads", got, loads)
	}
	now = now.Add(999 * time.Millisecond)
	if got := get("a", 2); got != 1 || loads != 1 {
		t.Fatalf("get within the TTL = %d after %d loads, want the cached 1", got, loads)
	}
	now = now.Add(time.Millisecond)
	if got := get("a", 3); got != 3 || loads != 2 {
		t.Fatalf("get at the TTL = %d after %d loads, want a reload", got, loads)
	}
	c.Forget("a")
	if got := get("a", 4); got != 4 || loads != 3 {
		t.Fatalf("get after Forget = %d after %d loads, want a reload", got, loads)
	}
	boom := errors.New("boom")
	if _, err := c.Get("b", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("failed load returned %v", err)
	}
	if got := get("b", 5); got != 5 {
		t.Fatalf("an error was cached: got %d", got)
	}
	c.Clear()
	if got := get("b", 8); got != 8 {
		t.Fatalf("get after Clear = %d, want a reload", got)
	}
	// Max 2: a third key starts the cache over.
	get("c", 6)
	get("d", 9)
	if got := get("a", 7); got != 7 {
		t.Fatalf("after the cache started over, a = %d, want a reload", got)
	}
}
