package herald

import (
	"fmt"
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

// An ID for an earlier second (an operational event dated by its attempt)
// must not move NewID's run: FIFO delivery orders by message ID.
func TestNewIDAtEarlierSecondKeepsNewIDIncreasing(t *testing.T) {
	prev, prevOld := NewID(PrefixMessage), ""
	for i := range 1000 {
		older := time.Now().Add(-time.Hour).Truncate(time.Second)
		old := NewIDAt(PrefixMessage, older)
		if got := mustKSUID(t, old).Time(); !got.Equal(older) {
			t.Fatalf("NewIDAt(%v) = %s, of time %v", older, old, got)
		}
		// Successive IDs for one earlier second count up too.
		if prevOld != "" && mustKSUID(t, prevOld).Time().Equal(older) && old <= prevOld {
			t.Fatalf("call %d: NewIDAt for an earlier second gave %s after %s", i, old, prevOld)
		}
		id := NewID(PrefixMessage)
		if id <= prev {
			t.Fatalf("call %d: NewID gave %s after %s, with NewIDAt(%v) in between", i, id, prev, older)
		}
		prev, prevOld = id, old
	}
}

// mustKSUID parses the KSUID of a message ID.
func mustKSUID(t *testing.T, id string) ksuid.KSUID {
	t.Helper()
	k, err := ksuid.Parse(strings.TrimPrefix(id, PrefixMessage))
	if err != nil {
		t.Fatalf("id %q is not a KSUID: %v", id, err)
	}
	return k
}

// A second with more IDs than one run holds keeps counting up: the next
// run starts above the used-up one, even from a seed near the top (where a
// fresh random seed would almost surely sort lower). A seed that cannot
// grow falls back to a fresh one, still of the same second.
func TestIDRunContinuesPastItsEnd(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name       string
		last       byte // the seed's payload is 0xff…ff plus this last byte before the counter
		increasing bool
	}{{"can grow", 0xfe, true}, {"cannot grow", 0xff, false}} {
		var r idRun
		r.reseed(at)
		for i := 4; i < 18; i++ {
			r.seq.Seed[i] = 0xff
		}
		r.seq.Seed[17] = tt.last
		prev := r.next(at)
		for range 70_000 { // crosses the 65,536 IDs of one run
			k := r.next(at)
			if !k.Time().Equal(at) {
				t.Fatalf("%s: id %s carries time %v, want %v", tt.name, k, k.Time(), at)
			}
			if k == prev || tt.increasing && ksuid.Compare(prev, k) >= 0 {
				t.Fatalf("%s: id %s does not sort after %s", tt.name, k, prev)
			}
			prev = k
		}
	}
}

func TestReservedHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Webhook-Signature": true, "svix-id": true, "Herald-Event-Type": true, "Content-Type": true,
		"user-agent": true, "Host": true, "Transfer-Encoding": true, "traceparent": true,
		"Authorization": false, "X-Webhook": false, "X-Svix": false, "X-Api-Key": false,
	} {
		if got := ReservedHeader(name); got != want {
			t.Errorf("ReservedHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEndpointAccepts(t *testing.T) {
	tests := []struct {
		name      string
		ep        Endpoint
		eventType string
		channels  []string
		want      bool
	}{
		{"open endpoint", Endpoint{}, "a", nil, true},
		{"disabled", Endpoint{Disabled: true}, "a", nil, false},
		{"filter match", Endpoint{FilterTypes: []string{"a", "b"}}, "b", nil, true},
		{"filter miss", Endpoint{FilterTypes: []string{"a"}}, "b", nil, false},
		{"channel shared", Endpoint{Channels: []string{"x", "y"}}, "a", []string{"z", "y"}, true},
		{"channel not shared", Endpoint{Channels: []string{"x"}}, "a", []string{"z"}, false},
		{"message without channels", Endpoint{Channels: []string{"x"}}, "a", nil, false},
		{"endpoint without channels", Endpoint{}, "a", []string{"x"}, true},
	}
	for _, tt := range tests {
		if got := tt.ep.Accepts(tt.eventType, tt.channels); got != tt.want {
			t.Errorf("%s: Accepts = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// prefixSealer is a reversible stand-in for a keyring that binds the additional
// data, enough to test the secrets format; the keyring has its own tests.
type prefixSealer struct{}

func (prefixSealer) Seal(p, add []byte) ([]byte, error) {
	return append(append([]byte{}, add...), p...), nil
}
func (prefixSealer) Open(s, add []byte) ([]byte, error) {
	if len(s) < len(add) || string(s[:len(add)]) != string(add) {
		return nil, fmt.Errorf("sealed for another endpoint")
	}
	return s[len(add):], nil
}

func TestSecretsRoundTrip(t *testing.T) {
	in := []SigningSecret{{Key: []byte{0, 1, 255}}, {Key: []byte("old"), ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}}
	sealed, err := SealSecrets(prefixSealer{}, "ep_1", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := OpenSecrets(prefixSealer{}, "ep_1", sealed)
	if err != nil || len(out) != 2 || string(out[0].Key) != string(in[0].Key) || !out[1].ExpiresAt.Equal(in[1].ExpiresAt) {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	if _, err := OpenSecrets(prefixSealer{}, "ep_2", sealed); err == nil {
		t.Fatal("secrets sealed for ep_1 opened for ep_2")
	}
}

func TestRoutesToAndNewDelivery(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &Message{ID: "msg_1", AppID: "app_1", EventType: "a", CreatedAt: at}
	open, filtered, disabled := &Endpoint{ID: "ep_1"}, &Endpoint{ID: "ep_2", FilterTypes: []string{"b"}}, &Endpoint{ID: "ep_3", Disabled: true}
	if !m.RoutesTo(open) || m.RoutesTo(filtered) || m.RoutesTo(disabled) {
		t.Fatal("routing by filters is wrong")
	}
	m.OnlyEndpointID = "ep_3" // send-example: that endpoint only, even disabled
	if m.RoutesTo(open) || !m.RoutesTo(disabled) {
		t.Fatal("routing to the only endpoint is wrong")
	}
	d := NewDelivery(m, "ep_1", Lease{})
	if d.Status != DeliveryPending || !d.NextAttemptAt.Equal(at) || d.LeaseOwner != "" || !strings.HasPrefix(d.ID, PrefixDelivery) {
		t.Fatalf("unleased delivery = %+v", d)
	}
	d = NewDelivery(m, "ep_1", Lease{Owner: "node", Until: at.Add(time.Minute)})
	if d.Status != DeliverySending || d.LeaseOwner != "node" || !d.LeaseExpiresAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("leased delivery = %+v", d)
	}
}

func TestIDRange(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lo, hi, ok := IDRange(PrefixMessage, t0, t0.Add(time.Hour))
	if !ok || lo != MinIDAt(PrefixMessage, t0) || hi != MinIDAt(PrefixMessage, t0.Add(time.Hour)) {
		t.Fatalf("IDRange = %q, %q, %v", lo, hi, ok)
	}
	// Every ID made in the window is inside; the first of the next second is not.
	for _, at := range []time.Time{t0, t0.Add(30 * time.Minute), t0.Add(time.Hour - time.Nanosecond)} {
		if id := NewIDAt(PrefixMessage, at); id < lo || id >= hi {
			t.Errorf("ID of %v (%s) outside [%s, %s)", at, id, lo, hi)
		}
	}
	if id := NewIDAt(PrefixMessage, t0.Add(time.Hour)); id < hi {
		t.Errorf("ID of the window's end %s inside it", id)
	}
	// Open bounds; a bound within a second is not exact.
	if lo, hi, ok := IDRange(PrefixMessage, time.Time{}, time.Time{}); !ok || lo != PrefixMessage || hi <= NewIDAt(PrefixMessage, t0) {
		t.Errorf("open range = %q, %q, %v", lo, hi, ok)
	}
	if _, _, ok := IDRange(PrefixMessage, t0.Add(time.Millisecond), time.Time{}); ok {
		t.Error("a bound within a second gave an exact range")
	}
	if _, ok := MinIDAtBound(PrefixMessage, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("a time before the KSUID epoch has a bound")
	}
	if _, _, ok := IDRange(PrefixMessage, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}); ok {
		t.Error("a window from before the KSUID epoch gave an exact range")
	}
}
