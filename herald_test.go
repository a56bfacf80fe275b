package herald

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/ksuid"
)

func TestNewIDIncreasesAndIsUnique(t *testing.T) {
	seen := make(map[string]bool)
	prev, prevK := "", ksuid.Nil
	for range 200_000 { // crosses a 65,536-ID run at least twice
		id := NewID(PrefixMessage)
		if !strings.HasPrefix(id, PrefixMessage) {
			t.Fatalf("id %q lacks its prefix", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		k, err := ksuid.Parse(strings.TrimPrefix(id, PrefixMessage))
		if err != nil {
			t.Fatalf("id %q is not a KSUID: %v", id, err)
		}
		if d := time.Since(k.Time()); d < -time.Second || d > 2*time.Second {
			t.Fatalf("id %s carries time %v, %v from now", id, k.Time(), d)
		}
		// Within one run (same second, same 14-byte seed) IDs count up.
		if prevK != ksuid.Nil && prevK.Timestamp() == k.Timestamp() &&
			string(prevK.Payload()[:14]) == string(k.Payload()[:14]) && ksuid.Compare(prevK, k) >= 0 {
			t.Fatalf("id %s does not sort after the previous %s of its run", id, prev)
		}
		prevK = k
		prev = id
	}
}

func TestNewIDAt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k, err := ksuid.Parse(strings.TrimPrefix(NewIDAt(PrefixApplication, at), PrefixApplication))
	if err != nil || !k.Time().Equal(at) {
		t.Fatalf("NewIDAt time = %v, %v; want %v", k.Time(), err, at)
	}
}
