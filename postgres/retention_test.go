package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// requeueFixture is a store with one finished delivery, of message msg to
// endpoint ep, created long before the tests' clock.
type requeueFixture struct {
	s       *postgres.Store
	schema  string
	app     *herald.Application
	ep, ep2 *herald.Endpoint // ep2 was created after msg: it has no delivery of it
	msg     *herald.Message
}

// newRequeueFixture creates the fixture with the delivery to ep finished as
// status (succeeded or failed).
func newRequeueFixture(t *testing.T, status herald.DeliveryStatus) requeueFixture {
	t.Helper()
	ctx := t.Context()
	f := requeueFixture{schema: freshSchema(t)}
	f.s = openStore(t, f.schema, testKeyring(t))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.app = &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, at), Name: "a", CreatedAt: at, UpdatedAt: at}
	if err := f.s.CreateApplication(ctx, f.app); err != nil {
		t.Fatal(err)
	}
	newEndpoint := func() *herald.Endpoint {
		ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, at), AppID: f.app.ID, URL: "https://example.com/",
			Version: 1, Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: at, UpdatedAt: at}
		if err := f.s.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	f.ep = newEndpoint()
	f.msg = &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: f.app.ID, EventType: "e", Payload: []byte(`{}`), CreatedAt: at,
		PayloadExpiresAt: at.Add(time.Hour)}
	if _, err := f.s.CreateMessages(ctx, []*herald.Message{f.msg}, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	f.ep2 = newEndpoint()
	claims, err := f.s.ClaimDue(ctx, herald.ClaimOptions{Owner: "node", Now: at, LeaseUntil: at.Add(time.Hour), Limit: 10})
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimDue = %d claims, %v; want 1", len(claims), err)
	}
	err = f.s.RecordAttempts(ctx, []herald.AttemptOutcome{{DeliveryID: claims[0].Delivery.ID, LeaseOwner: "node", Status: status}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// table names a table of the fixture's schema.
func (f requeueFixture) table(name string) string { return pgx.Identifier{f.schema, name}.Sanitize() }

// The cleaner's delete and the verbs that queue a delivery again race (see
// retention.go). Here a transaction holds the message as the cleaner's
// batch does (FOR UPDATE) and then deletes it: each verb must wait for it
// and then find the message gone, instead of re-queueing a delivery the
// delete cascades to (or failing on the foreign key).
func TestRequeueWaitsForCleaner(t *testing.T) {
	later := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status herald.DeliveryStatus // of the delivery to ep before the verb
		verb   func(ctx context.Context, f requeueFixture) error
	}{
		{"ResendDelivery", herald.DeliverySucceeded, func(ctx context.Context, f requeueFixture) error {
			err := f.s.ResendDelivery(ctx, f.app.ID, f.msg.ID, f.ep.ID, later)
			if herald.ErrorCode(err) == herald.ENOTFOUND {
				return nil
			}
			return err
		}},
		{"RecoverEndpoint", herald.DeliveryFailed, func(ctx context.Context, f requeueFixture) error {
			_, err := f.s.RecoverEndpoint(ctx, f.app.ID, f.ep.ID, time.Time{}, time.Time{}, later)
			return err
		}},
		{"ReplayMissing", herald.DeliverySucceeded, func(ctx context.Context, f requeueFixture) error {
			_, err := f.s.ReplayMissing(ctx, f.app.ID, f.ep2.ID, time.Time{}, time.Time{}, later)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRequeueFixture(t, tt.status)
			ctx := t.Context()
			cleaner := connect(t)
			tx, err := cleaner.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			var pid int32
			if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT id FROM `+f.table("message")+` WHERE id = $1 FOR UPDATE`, f.msg.ID); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.verb(ctx, f) }()
			waitBlockedBy(t, connect(t), pid, done)
			if _, err := tx.Exec(ctx, `DELETE FROM `+f.table("message")+` WHERE id = $1`, f.msg.ID); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("%s after the cleaner deleted the message: %v", tt.name, err)
			}
			var n int
			if err := cleaner.QueryRow(ctx, `SELECT count(*) FROM `+f.table("delivery")).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d deliveries left of a deleted message", n)
			}
		})
	}
}

// waitBlockedBy returns once a session waits for a lock that session pid
// holds; it fails the test if the verb reports done first, that is went
// ahead without waiting.
func waitBlockedBy(t *testing.T, conn *pgx.Conn, pid int32, done <-chan error) {
	t.Helper()
	for {
		select {
		case err := <-done:
			t.Fatalf("the verb finished (err %v) while the cleaner held the message, without waiting for it", err)
		default:
		}
		var blocked bool
		err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))`,
			pid).Scan(&blocked)
		if err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// A message whose delivery a verb is re-queueing right now (FOR KEY SHARE
// held) is left alone by the cleaner until the verb is done.
func TestCleanerSkipsMessageBeingRequeued(t *testing.T) {
	f := newRequeueFixture(t, herald.DeliverySucceeded)
	ctx := t.Context()
	conn := connect(t)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT id FROM `+f.table("message")+` WHERE id = $1 FOR KEY SHARE`, f.msg.ID); err != nil {
		t.Fatal(err)
	}
	before := f.msg.CreatedAt.Add(24 * time.Hour)
	if n, err := f.s.DeleteExpiredMessages(ctx, before, 10); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredMessages while a verb holds the message = %d, %v; want 0", n, err)
	}
	if n, err := f.s.ExpirePayloads(ctx, before, 10); err != nil || n != 0 {
		t.Fatalf("ExpirePayloads while a verb holds the message = %d, %v; want 0", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := f.s.DeleteExpiredMessages(ctx, before, 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredMessages after the verb = %d, %v; want 1", n, err)
	}
}
