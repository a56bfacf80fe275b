package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestReleaseAllLeases: the owner of the database returns every leased
// delivery to pending, due at once, without counting an attempt, and
// leaves the others alone; a store that does not own the database cannot.
func TestReleaseAllLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	f := newFixture(t, s, randomKey(t))
	msgs := []*herald.Message{newMsg(f.app.ID, 1, ""), newMsg(f.app.ID, 2, ""), newMsg(f.app.ID, 30, "")}
	if res, err := s.CreateMessages(ctx, msgs, herald.Lease{}); err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("CreateMessages: %v %+v", err, res)
	}
	// A process that died held the first two; the third is not due yet.
	claimed, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "killed-node", Now: t0.Add(10 * time.Second), LeaseUntil: t0.Add(time.Hour), Limit: 10})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("ClaimDue = %d claims, %v; want 2", len(claimed), err)
	}

	now := t0.Add(20 * time.Second)
	n, err := s.ReleaseAllLeases(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("ReleaseAllLeases = %d, %v; want 2", n, err)
	}
	for i, m := range msgs {
		ds, err := s.ListMessageDeliveries(ctx, f.app.ID, m.ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of message %d: %v, %v", i, ds, err)
		}
		d := ds[0]
		wantDue := now
		if i == 2 {
			wantDue = m.CreatedAt // never leased: untouched
		}
		if d.Status != herald.DeliveryPending || !d.NextAttemptAt.Equal(wantDue) || d.Attempts != 0 ||
			d.LeaseOwner != "" || !d.LeaseExpiresAt.IsZero() {
			t.Errorf("delivery of message %d = %+v; want pending, due %v, no attempt, no lease", i, d, wantDue)
		}
	}
	// They are claimable at once, long before the old lease's expiry.
	again, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "new-node", Now: now, LeaseUntil: now.Add(time.Hour), Limit: 10})
	if err != nil || len(again) != 2 {
		t.Fatalf("ClaimDue after the release = %d claims, %v; want 2", len(again), err)
	}

	// A store that does not own the file (a CLI command beside the
	// server) is refused and changes nothing.
	other := openAt(t, path, ring)
	if n, err := other.ReleaseAllLeases(ctx, now); err == nil {
		t.Fatalf("ReleaseAllLeases on a store without Exclusive = %d, nil; want an error", n)
	}
	stats, err := s.QueueStats(ctx, now)
	if err != nil || stats.Sending != 2 {
		t.Fatalf("QueueStats after the refused release = %+v, %v; want 2 sending", stats, err)
	}
}
