package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// TestPollOpenWriter is the ordering trap with a writer whose transaction
// is still open: it inserted a message with a smaller ID (and an earlier
// time) than one another writer commits meanwhile. A reader paging by ID
// would take the committed one, then never see the other. The poll reads
// nothing past the open writer until it ends, then both, the open one's
// first (its transaction is the older).
func TestPollOpenWriter(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	now := time.Now().UTC()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "poll", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	conn := connect(t)
	if _, err := conn.Exec(t.Context(), `SET search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slowID := herald.NewIDAt(herald.PrefixMessage, now.Add(-time.Second))
	if _, err := tx.Exec(t.Context(), `INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
		VALUES ($1, $2, 'a', '{"slow":true}', '', $3)`, slowID, app.ID, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	fast := &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, now), AppID: app.ID, EventType: "a", Payload: []byte(`{"fast":true}`), CreatedAt: now}
	res, err := s.CreateMessages(t.Context(), []*herald.Message{fast}, herald.Lease{})
	if err != nil || res[0].Err != nil {
		t.Fatalf("CreateMessages: %v %v", err, res[0].Err)
	}
	if slowID >= fast.ID {
		t.Fatalf("test setup: the open writer's ID %s should sort before %s", slowID, fast.ID)
	}
	// The committed message is there for any reader…
	if _, err := s.GetMessage(t.Context(), app.ID, fast.ID); err != nil {
		t.Fatalf("GetMessage of the committed message: %v", err)
	}
	// …but not for the poll while the older writer is open.
	for range 3 {
		page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 0 || page.Next != (herald.PollPosition{}) {
			t.Fatalf("poll with an older writer open: %d messages, next %v; want none", len(page.Messages), page.Next)
		}
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	from := herald.PollPosition{}
	for try := 0; len(got) < 2; try++ {
		if try == 2000 {
			t.Fatalf("after the commit polled %v, want both messages", got)
		}
		page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{From: from, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			got = append(got, m.ID)
		}
		from = page.Next
		if len(got) < 2 {
			time.Sleep(5 * time.Millisecond) // another test's transaction may hold the horizon
		}
	}
	if want := []string{slowID, fast.ID}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("polled %v, want %v", got, want)
	}
}

// TestPollPlans checks with EXPLAIN, on an analyzed application of 50,000
// messages beside another of 50,000, that a poll page walks
// message_app_poll from its position, the start position
// message_app_created, and the fetch an index of message IDs: no sequential scan
// and no sort.
func TestPollPlans(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	now := time.Now().UTC()
	var apps []string
	for i := range 2 {
		app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: fmt.Sprint("plans", i), CreatedAt: now, UpdatedAt: now}
		if err := s.CreateApplication(t.Context(), app); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app.ID)
	}
	conn := connect(t)
	const n = 50_000
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`SET search_path TO ` + pgx.Identifier{schema}.Sanitize(), nil},
		{fmt.Sprintf(`INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
			SELECT 'msg_' || lpad(i::text, 27, '0'), CASE WHEN i %% 2 = 0 THEN $1 ELSE $2 END, 'a', '{}', '',
				now() - (%d - i) * interval '1 second'
			FROM generate_series(1, %d) AS i`, 2*n, 2*n), []any{apps[0], apps[1]}},
		{`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(t.Context(), st.q, st.args...); err != nil {
			t.Fatalf("%.60s: %v", st.q, err)
		}
	}
	var xid int64
	if err := conn.QueryRow(t.Context(), `SELECT write_xid::text::bigint FROM message LIMIT 1`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	plans, err := postgres.ExplainPoll(t.Context(), s, apps[0], xid, fmt.Sprintf("msg_%027d", n), now.Add(-n/2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"message_app_poll", "message_app_created", "message_"} {
		t.Logf("plan %d:\n%s", i, plans[i])
		if !strings.Contains(plans[i], "using "+want) {
			t.Errorf("plan %d does not use %s", i, want)
		}
		if strings.Contains(plans[i], "Seq Scan") || strings.Contains(plans[i], "Sort") {
			t.Errorf("plan %d scans a table or sorts", i)
		}
	}
}
