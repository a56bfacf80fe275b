package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var idempotencyTests = []namedTest{
	{"BeginCompleteReplay", testIdempotencyBeginCompleteReplay},
	{"ConcurrentBegin", testIdempotencyConcurrentBegin},
	{"ExpiredIsReplaced", testIdempotencyExpiredIsReplaced},
	{"Abandon", testIdempotencyAbandon},
	{"CompleteUnknown", testIdempotencyCompleteUnknown},
	{"DeleteExpired", testIdempotencyDeleteExpired},
}

// idemTTL is how long the tests keep idempotency records, as the gateway
// does.
const idemTTL = 24 * time.Hour

// newIdem returns an in-progress record for key made at(n).
func newIdem(key string, n int) *herald.IdempotencyRecord {
	return &herald.IdempotencyRecord{
		Key:         key,
		RequestHash: []byte{0, 1, 2, byte(n), 0xfe, 0xff},
		CreatedAt:   at(n),
		ExpiresAt:   at(n).Add(idemTTL),
	}
}

// mustBegin begins rec and fails unless the key was free.
func mustBegin(t *testing.T, s herald.Store, rec *herald.IdempotencyRecord) {
	t.Helper()
	existing, err := s.BeginIdempotent(t.Context(), rec)
	mustOK(t, "BeginIdempotent "+rec.Key, err)
	if existing != nil {
		t.Fatalf("BeginIdempotent %s: got existing record %+v, want nil for a free key", rec.Key, existing)
	}
}

// mustBeginExisting begins rec and returns the record that holds its key,
// failing when there is none.
func mustBeginExisting(t *testing.T, s herald.Store, rec *herald.IdempotencyRecord) *herald.IdempotencyRecord {
	t.Helper()
	existing, err := s.BeginIdempotent(t.Context(), rec)
	mustOK(t, "BeginIdempotent "+rec.Key, err)
	if existing == nil {
		t.Fatalf("BeginIdempotent %s: got nil, want the existing record", rec.Key)
	}
	return existing
}

func testIdempotencyBeginCompleteReplay(t *testing.T, s herald.Store) {
	first := newIdem("tok1:POST:/api/v1/app/", 1)
	mustBegin(t, s, first)
	other := newIdem("tok2:POST:/api/v1/app/", 1)
	mustBegin(t, s, other)

	// A retry while the first request runs sees it in progress.
	retry := newIdem(first.Key, 2)
	retry.RequestHash = []byte("different body")
	mustEqual(t, "in-progress record", first, mustBeginExisting(t, s, retry))

	body := []byte(`{"id":"app_1","name":"Zoë"}`)
	mustOK(t, "complete", s.CompleteIdempotent(t.Context(), first.Key, 201, body))
	want := *first
	want.Completed, want.StatusCode, want.Body = true, 201, body
	mustEqual(t, "completed record", &want, mustBeginExisting(t, s, newIdem(first.Key, 3)))

	// Completing one key leaves the others in progress.
	mustEqual(t, "other key", other, mustBeginExisting(t, s, newIdem(other.Key, 3)))
}

func testIdempotencyConcurrentBegin(t *testing.T, s herald.Store) {
	// Two retries racing on one key must not both do the work: exactly one
	// BeginIdempotent wins, every other sees its record.
	const callers = 8
	results := make([]*herald.IdempotencyRecord, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			rec := newIdem("race", 1)
			rec.RequestHash = []byte{byte(i)}
			results[i], errs[i] = s.BeginIdempotent(t.Context(), rec)
		})
	}
	wg.Wait()

	winner := -1
	for i := range callers {
		mustOK(t, fmt.Sprintf("caller %d", i), errs[i])
		if results[i] != nil {
			continue
		}
		if winner >= 0 {
			t.Fatalf("callers %d and %d both began the key", winner, i)
		}
		winner = i
	}
	if winner < 0 {
		t.Fatal("no caller began the key")
	}
	want := newIdem("race", 1)
	want.RequestHash = []byte{byte(winner)}
	for i, got := range results {
		if i != winner {
			mustEqual(t, fmt.Sprintf("caller %d sees the winner's record", i), want, got)
		}
	}
}

func testIdempotencyExpiredIsReplaced(t *testing.T, s herald.Store) {
	old := newIdem("k", 1)
	mustBegin(t, s, old)
	mustOK(t, "complete", s.CompleteIdempotent(t.Context(), "k", 200, []byte("old")))

	// The store judges expiry at the new record's CreatedAt: just before
	// ExpiresAt the old record holds, after it the key is free again.
	mustBeginExisting(t, s, newIdem("k", 1+int(idemTTL/time.Second)-1))
	fresh := newIdem("k", 1+int(idemTTL/time.Second)+1)
	mustBegin(t, s, fresh)
	mustEqual(t, "replacing record", fresh, mustBeginExisting(t, s, newIdem("k", 1+int(idemTTL/time.Second)+2)))
}

func testIdempotencyAbandon(t *testing.T, s herald.Store) {
	rec := newIdem("k", 1)
	mustBegin(t, s, rec)
	kept := newIdem("kept", 1)
	mustBegin(t, s, kept)

	// Only the record begun at that time, still in progress, is abandoned:
	// a retry that saw an older record cannot delete a newer one.
	if err := s.AbandonIdempotent(t.Context(), "k", rec.CreatedAt.Add(time.Second)); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("abandon with another creation time = %v, want ENOTFOUND", err)
	}
	mustEqual(t, "record kept", rec, mustBeginExisting(t, s, newIdem("k", 3)))
	mustOK(t, "abandon", s.AbandonIdempotent(t.Context(), "k", rec.CreatedAt))
	again := newIdem("k", 2)
	again.RequestHash = []byte("second try")
	mustBegin(t, s, again)
	mustEqual(t, "begun again", again, mustBeginExisting(t, s, newIdem("k", 3)))
	mustEqual(t, "other key kept", kept, mustBeginExisting(t, s, newIdem("kept", 3)))
}

func testIdempotencyCompleteUnknown(t *testing.T, s herald.Store) {
	// Completing a key that was never begun (or was abandoned) has nothing
	// to store the response in.
	err := s.CompleteIdempotent(t.Context(), "never-begun", 200, []byte("x"))
	mustCode(t, "complete unknown key", err, herald.ENOTFOUND)
	// ... and it did not create the record.
	mustBegin(t, s, newIdem("never-begun", 1))
}

func testIdempotencyDeleteExpired(t *testing.T, s herald.Store) {
	ctx := t.Context()
	// Five records expire at(1)..at(5) plus TTL, two long after.
	for i := 1; i <= 5; i++ {
		mustBegin(t, s, newIdem(fmt.Sprintf("expired-%d", i), i))
	}
	live := []*herald.IdempotencyRecord{newIdem("live-1", 1000), newIdem("live-2", 1001)}
	for _, rec := range live {
		mustBegin(t, s, rec)
	}
	mustOK(t, "complete one expired", s.CompleteIdempotent(ctx, "expired-2", 200, []byte("done")))
	now := at(10).Add(idemTTL)

	for _, step := range []struct {
		limit, want int
	}{{3, 3}, {10, 2}, {10, 0}} {
		n, err := s.DeleteExpiredIdempotent(ctx, now, step.limit)
		mustOK(t, "DeleteExpiredIdempotent", err)
		if n != step.want {
			t.Fatalf("DeleteExpiredIdempotent(limit %d) deleted %d, want %d", step.limit, n, step.want)
		}
	}
	for _, rec := range live {
		mustEqual(t, "unexpired record kept", rec, mustBeginExisting(t, s, newIdem(rec.Key, 1002)))
	}
}
