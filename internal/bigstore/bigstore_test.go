package bigstore

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/ksuid"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/pgtest"
)

// small is a shape that builds in about a second: the bulk statements and
// the layout are checked on it, in every `go test` run.
var small = Shape{Messages: 3_001, Span: 24 * time.Hour, Chunk: 1_000, OtherMessages: 150}

func TestSmallSQLite(t *testing.T) {
	f := OpenSQLite(t, small, t.TempDir())
	if f.Built == 0 {
		t.Fatal("a fixture in a new directory was not built")
	}
	checkFixture(t, f)

	db, err := sql.Open("sqlite", sqliteURL(f.Where, "query_only(1)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The bulk connection writes without foreign keys: check them all.
	rows, err := db.QueryContext(t.Context(), `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("the fixture breaks a foreign key")
	}
	rows.Close()
	for _, q := range []string{
		`SELECT id, created_at FROM message`,
		`SELECT id, created_at FROM delivery`,
		`SELECT id, created_at FROM attempt`,
	} {
		checkIDTimes(t, db, q)
	}

	again := OpenSQLite(t, small, filepath.Dir(f.Where))
	if _, err := fixtureKey("", small); err == nil && again.Built != 0 {
		t.Error("a kept fixture was built again")
	}
}

// TestBig builds (or opens) the Big fixtures and checks them as the small
// ones; it runs only with HERALD_BIGSTORE=1. Run it alone to build the
// fixtures ahead of the benchmarks:
//
//	HERALD_BIGSTORE=1 HERALD_TEST_POSTGRES_URL=… go test ./internal/bigstore -run TestBig -v
func TestBig(t *testing.T) {
	for _, open := range []struct {
		name string
		open func(testing.TB) *Fixture
	}{{"sqlite", SQLite}, {"postgres", Postgres}} {
		t.Run(open.name, func(t *testing.T) {
			f := open.open(t)
			if f.Built > 0 {
				t.Logf("built in %s", f.Built.Round(time.Second))
			}
			checkFixture(t, f)
		})
	}
}

func TestSmallPostgres(t *testing.T) {
	url, schema := pgtest.FreshSchema(t)
	f := OpenPostgres(t, small, url, schema)
	checkFixture(t, f)
	// PostgreSQL checked the foreign keys as the rows went in.
}

// checkIDTimes checks that every ID of a table is a KSUID of its row's
// creation second.
func checkIDTimes(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id string
			us int64
		)
		if err := rows.Scan(&id, &us); err != nil {
			t.Fatal(err)
		}
		k, err := ksuid.Parse(id[len(id)-ksuidLen:])
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got, want := k.Time().Unix(), time.UnixMicro(us).Unix(); got != want {
			t.Fatalf("%s: ID of second %d, created in %d", id, got, want)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s: no rows", q)
	}
}

// checkFixture checks a small fixture through the store's verbs.
func checkFixture(t *testing.T, f *Fixture) {
	t.Helper()
	ctx := t.Context()
	s := f.Store
	// The newest page is the newest messages in ID order, and MessageID
	// finds them by time.
	page, err := s.ListMessages(ctx, f.App.ID, herald.MessageListOptions{
		ListOptions: herald.ListOptions{Limit: 10, Order: herald.Descending}})
	if err != nil {
		t.Fatal(err)
	}
	for n, m := range page {
		i := f.Shape.Messages - 1 - n
		if want := f.MessageID(t, i); m.ID != want {
			t.Fatalf("newest message %d is %s, MessageID(%d) %s", n, m.ID, i, want)
		}
		if !m.CreatedAt.Equal(f.Time(i)) {
			t.Fatalf("message %d created at %s, Time says %s", i, m.CreatedAt, f.Time(i))
		}
	}
	// Paging by ID walks the messages in creation order.
	var prev *herald.Message
	cursor := ""
	seen := 0
	for {
		msgs, err := s.ListMessages(ctx, f.App.ID, herald.MessageListOptions{
			ListOptions: herald.ListOptions{Limit: 250, Cursor: cursor}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if prev != nil && !m.CreatedAt.After(prev.CreatedAt) {
				t.Fatalf("message %s (%s) after %s (%s) in ID order", m.ID, m.CreatedAt, prev.ID, prev.CreatedAt)
			}
			prev = m
		}
		seen += len(msgs)
		if len(msgs) < 250 {
			break
		}
		cursor = msgs[len(msgs)-1].ID
	}
	if seen != f.Shape.Messages {
		t.Fatalf("paged through %d messages, want %d", seen, f.Shape.Messages)
	}
	if m, err := s.GetMessage(ctx, f.App.ID, "evt-000000002"); err != nil || m.ID != f.MessageID(t, 2) {
		t.Fatalf("message by event ID: %v, %v", m, err)
	}

	// Each delivering endpoint has one delivery per message, in the
	// outcomes' shares; the others have none.
	want := herald.EndpointStats{}
	for k := range f.Shape.Messages {
		kk := (k * 6007) % 100 // endpoint 0
		for _, o := range outcomes {
			if kk < o.upTo {
				switch o.status {
				case herald.DeliverySucceeded:
					want.Success++
				case herald.DeliveryPending:
					want.Pending++
				default:
					want.Fail++
				}
				break
			}
		}
	}
	stats, err := s.GetEndpointStats(ctx, f.App.ID, f.Endpoints[0].ID, time.Time{}, time.Time{})
	if err != nil || stats != want {
		t.Fatalf("stats of the first endpoint %+v, %v; want %+v", stats, err, want)
	}
	stats, err = s.GetEndpointStats(ctx, f.App.ID, f.Endpoints[Delivering].ID, time.Time{}, time.Time{})
	if err != nil || stats != (herald.EndpointStats{}) {
		t.Fatalf("stats of a later endpoint %+v, %v; want none", stats, err)
	}
	// A message's deliveries and attempts are found from it.
	id := f.MessageID(t, 42)
	dlv, err := s.ListMessageDeliveries(ctx, f.App.ID, id)
	if err != nil || len(dlv) != Delivering {
		t.Fatalf("deliveries of message 42: %d, %v", len(dlv), err)
	}
	attempts, err := s.ListAttempts(ctx, f.App.ID, herald.AttemptListOptions{MessageID: id, ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil || len(attempts) == 0 {
		t.Fatalf("attempts of message 42: %d, %v", len(attempts), err)
	}
	for _, a := range attempts {
		if a.CreatedAt.Before(f.Time(42)) || a.URL == "" || a.DeliveryID == "" {
			t.Fatalf("attempt %+v", a)
		}
	}
	failed, err := s.ListEndpointMessages(ctx, f.App.ID, f.Endpoints[1].ID, herald.DeliveryListOptions{
		Status: herald.DeliveryFailed, ListOptions: herald.ListOptions{Limit: 5}})
	if err != nil || len(failed) == 0 {
		t.Fatalf("failed deliveries: %d, %v", len(failed), err)
	}
	// The rare tag is on every 47th message from the fourth, in the
	// message list and in a delivering endpoint's messages.
	var wantTagged []string
	for k := 3; k < f.Shape.Messages && len(wantTagged) < 20; k += 47 {
		wantTagged = append(wantTagged, f.MessageID(t, k))
	}
	tagged, err := s.ListMessages(ctx, f.App.ID, herald.MessageListOptions{Tag: TagRare, ListOptions: herald.ListOptions{Limit: 20}})
	if err != nil {
		t.Fatal(err)
	}
	epTagged, err := s.ListEndpointMessages(ctx, f.App.ID, f.Endpoints[0].ID, herald.DeliveryListOptions{Tag: TagRare, ListOptions: herald.ListOptions{Limit: 20}})
	if err != nil {
		t.Fatal(err)
	}
	var gotTagged, gotEpTagged []string
	for _, m := range tagged {
		gotTagged = append(gotTagged, m.ID)
	}
	for _, em := range epTagged {
		gotEpTagged = append(gotEpTagged, em.Message.ID)
	}
	if !slices.Equal(gotTagged, wantTagged) || !slices.Equal(gotEpTagged, wantTagged) {
		t.Fatalf("messages tagged %s: %v, of the endpoint %v; want %v", TagRare, gotTagged, gotEpTagged, wantTagged)
	}
	// Endpoint secrets open with the fixture's keyring.
	if len(f.Endpoints[0].Secrets) != 1 || len(f.Endpoints[0].Secrets[0].Key) != 24 {
		t.Fatalf("endpoint secrets %+v", f.Endpoints[0].Secrets)
	}
}

func TestEventTypeSQLShares(t *testing.T) {
	// The draws of 1000 consecutive messages cover each residue once, so
	// every type has exactly its share of them.
	seen := map[int]bool{}
	for k := range 1000 {
		seen[k*7919%1000] = true
	}
	if len(seen) != 1000 {
		t.Fatal("7919 is not a permutation of the residues mod 1000")
	}
}

func TestIDGenIncreases(t *testing.T) {
	var g idGen
	l := layout{shape: Big, start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var prev string
	for i := range 10_000 {
		id := string(g.appendID(nil, l.msgTime(i)))
		if id <= prev {
			t.Fatalf("ID %d %s not above %s", i, id, prev)
		}
		prev = id
	}
}
