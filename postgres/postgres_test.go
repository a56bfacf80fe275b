package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testURL returns the URL of the test database, or skips the test.
func testURL(t testing.TB) string { return pgtest.URL(t) }

// testKeyring returns a keyring with one fresh key.
func testKeyring(t testing.TB) *keyring.Keyring { return testkeys.Ring(t) }

// connect opens a plain connection to the test database, closed when the
// test ends, for checks that read tables behind the store's back.
func connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// freshSchema returns the name of a schema no test uses, dropped with
// everything in it when the test ends. Stores create it on Open.
func freshSchema(t testing.TB) string {
	t.Helper()
	_, schema := pgtest.FreshSchema(t)
	return schema
}

// openStore opens a store on schema and closes it when the test ends.
func openStore(t testing.TB, schema string, ring *keyring.Keyring) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: ring, Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("Open schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) herald.Store {
		return openStore(t, freshSchema(t), testKeyring(t))
	})
}

func TestConcurrentMigrations(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: ring, Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		t.FailNow()
	}
	version, count := latestMigration(t), embeddedMigrations(t)
	for i, s := range stores {
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v != version {
			t.Fatalf("store %d: SchemaVersion = %d, %v; want %d", i, v, err, version)
		}
	}

	conn := connect(t)
	rows, _ := conn.Query(t.Context(), `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = $1 ORDER BY table_name`, schema)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"application", "attempt", "audit_log", "background_task", "delivery", "endpoint", "event_type", "fanout", "idempotency_key", "message", "message_tag", "node", "poll_consumer", "rate_bucket", "schema_migrations", "token", "usage_stat"}
	if diff := cmp.Diff(want, tables); diff != "" {
		t.Fatalf("tables in %s (-want +got):\n%s", schema, diff)
	}
	var applied int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&applied)
	if err != nil || applied != count {
		t.Fatalf("schema_migrations has %d rows (%v), want %d: a migration ran twice or not at all", applied, err, count)
	}
	// A store opened later finds the work done and still works.
	late := openStore(t, schema, ring)
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "late", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := late.CreateApplication(t.Context(), app); err != nil {
		t.Fatalf("CreateApplication after migrations: %v", err)
	}
	if _, err := stores[0].GetApplication(t.Context(), app.ID); err != nil {
		t.Fatalf("another node reads the application: %v", err)
	}
}

func TestConcurrentClaims(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	a, b := openStore(t, schema, ring), openStore(t, schema, ring)
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "claims", CreatedAt: now, UpdatedAt: now}
	if err := a.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	const endpoints, messages = 5, 100 // 500 deliveries
	for i := range endpoints {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: fmt.Sprintf("https://example.com/%d", i),
			Version: 1, Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
		if err := a.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	msgs := make([]*herald.Message, messages)
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "e",
			Payload: []byte(`{}`), CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
	}
	res, err := b.CreateMessages(ctx, msgs, herald.Lease{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		total += len(r.Deliveries)
	}
	if total != endpoints*messages {
		t.Fatalf("created %d deliveries, want %d", total, endpoints*messages)
	}

	// Four claimers, two per store, claim small batches until nothing is
	// left; every delivery must be claimed exactly once.
	var (
		mu      sync.Mutex
		claimed = map[string]string{} // delivery ID → owner
		dupes   []string
	)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, s := range []*postgres.Store{a, a, b, b} {
		owner := fmt.Sprintf("node-%d", i)
		wg.Go(func() {
			for {
				claims, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: owner, Now: now.Add(time.Hour),
					LeaseUntil: now.Add(2 * time.Hour), Limit: 7})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", owner, err)
					return
				}
				if len(claims) == 0 {
					return
				}
				mu.Lock()
				for _, c := range claims {
					if prev, ok := claimed[c.Delivery.ID]; ok {
						dupes = append(dupes, fmt.Sprintf("%s by %s and %s", c.Delivery.ID, prev, owner))
					}
					claimed[c.Delivery.ID] = owner
					if c.Delivery.LeaseOwner != owner || c.Message.ID != c.Delivery.MessageID {
						dupes = append(dupes, fmt.Sprintf("claim %+v of %s", c.Delivery, owner))
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(dupes) > 0 {
		t.Fatalf("claimed twice or wrongly: %v", dupes)
	}
	if len(claimed) != endpoints*messages {
		t.Fatalf("claimed %d deliveries, want %d", len(claimed), endpoints*messages)
	}
	// The table agrees: every delivery is leased, to the node that got it.
	conn := connect(t)
	rows, _ := conn.Query(ctx, `SELECT id, status, lease_owner FROM `+pgx.Identifier{schema, "delivery"}.Sanitize())
	type row struct{ ID, Status, Owner string }
	stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range stored {
		if r.Status != "sending" || r.Owner != claimed[r.ID] {
			t.Fatalf("stored delivery %+v, want sending and leased to %q", r, claimed[r.ID])
		}
	}
}

func TestSecretsSealedAtRest(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	ctx := t.Context()
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "a", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	current, old := []byte("current-secret-0123456789abcdef"), []byte("old-secret-0123456789abcdef0000")
	ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/", Version: 1,
		Secrets:   []herald.SigningSecret{{Key: old}},
		CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateEndpointSecret(ctx, app.ID, ep.ID, herald.SigningSecret{Key: current}, now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}

	conn := connect(t)
	var sealed []byte
	var whole string
	err := conn.QueryRow(ctx, `SELECT secrets, e::text FROM `+pgx.Identifier{schema, "endpoint"}.Sanitize()+` e WHERE id = $1`, ep.ID).
		Scan(&sealed, &whole)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]byte{current, old} {
		for _, form := range [][]byte{key, []byte(base64.StdEncoding.EncodeToString(key)), []byte(hex.EncodeToString(key))} {
			if bytes.Contains(sealed, form) || bytes.Contains([]byte(whole), form) {
				t.Fatalf("secret %q is readable in the endpoint row", key)
			}
		}
	}
	// The column holds the keyring's sealing of the secrets for this
	// endpoint: it opens with the endpoint ID and with nothing else.
	if _, err := ring.Open(sealed, []byte(ep.ID)); err != nil {
		t.Fatalf("open the stored secrets: %v", err)
	}
	if _, err := ring.Open(sealed, []byte("ep_other")); err == nil {
		t.Fatal("the stored secrets open for another endpoint ID")
	}
	got, err := s.GetEndpoint(ctx, app.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 2 || !bytes.Equal(got.Secrets[0].Key, current) || !bytes.Equal(got.Secrets[1].Key, old) {
		t.Fatalf("secrets read back as %+v", got.Secrets)
	}
}

func TestOpenUnreachable(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, postgres.Config{URL: "postgres://herald:s3cret-pw@" + addr + "/test?sslmode=disable&connect_timeout=5", Keyring: testKeyring(t)})
	if err == nil {
		s.Close()
		t.Fatal("Open on a closed port succeeded")
	}
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Fatalf("Open on a closed port: code %q (%v), want %q", code, err, herald.EUNAVAILABLE)
	}
	if bytes.Contains([]byte(err.Error()), []byte("s3cret-pw")) {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	s, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: testKeyring(t), Schema: freshSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	s.Close()
	ctx := t.Context()
	now := time.Now()
	calls := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"GetApplication": func() error {
			_, err := s.GetApplication(ctx, "app_x")
			return err
		},
		"CreateMessages": func() error {
			_, err := s.CreateMessages(ctx, []*herald.Message{{ID: "msg_x", AppID: "app_x", CreatedAt: now}}, herald.Lease{})
			return err
		},
		"ClaimDue": func() error {
			_, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "n", Now: now, LeaseUntil: now, Limit: 1})
			return err
		},
		"RecordAttempts": func() error {
			return s.RecordAttempts(ctx, []herald.AttemptOutcome{{DeliveryID: "dlv_x", LeaseOwner: "n", Status: herald.DeliveryFailed}})
		},
	}
	for name, call := range calls {
		if code := herald.ErrorCode(call()); code != herald.EUNAVAILABLE {
			t.Errorf("%s after Close: code %q, want %q", name, code, herald.EUNAVAILABLE)
		}
	}
}

func TestMapError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"UniqueUID", &pgconn.PgError{Code: "23505", ConstraintName: "application_uid"}, herald.ECONFLICT},
		{"UniqueUnknown", &pgconn.PgError{Code: "23505", ConstraintName: "other"}, herald.ECONFLICT},
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, herald.EUNAVAILABLE},
		{"CannotConnectNow", &pgconn.PgError{Code: "57P03"}, herald.EUNAVAILABLE},
		{"TooManyConnections", &pgconn.PgError{Code: "53300"}, herald.EUNAVAILABLE},
		{"DiskFull", &pgconn.PgError{Code: "53100"}, herald.EUNAVAILABLE},
		{"ConnectionFailure", &pgconn.PgError{Code: "08006"}, herald.EUNAVAILABLE},
		{"StatementTimeout", &pgconn.PgError{Code: "57014"}, herald.EUNAVAILABLE},
		{"PoolDeadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), herald.EUNAVAILABLE},
		{"SyntaxError", &pgconn.PgError{Code: "42601"}, herald.EINTERNAL},
		{"Canceled", context.Canceled, herald.EINTERNAL},
		{"Other", errors.New("boom"), herald.EINTERNAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := herald.ErrorCode(postgres.MapError(c.err)); got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
		})
	}
	if msg := herald.ErrorMessage(postgres.MapError(&pgconn.PgError{Code: "23505", ConstraintName: "message_event_id"})); msg != "A message with this eventId already exists." {
		t.Fatalf("conflict message %q", msg)
	}
}

func TestConnectionSettings(t *testing.T) {
	schema := freshSchema(t)
	s, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: testKeyring(t), Schema: schema,
		StatementTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for q, want := range map[string]string{
		`SHOW statement_timeout`:  "150ms",
		`SELECT current_schema()`: schema,
	} {
		got, err := postgres.QueryString(t.Context(), s, q)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", q, got, err, want)
		}
	}
	// A statement over the timeout is stopped by the server: the store
	// reports the database as unavailable, not an internal error.
	_, err = postgres.QueryString(t.Context(), s, `SELECT pg_sleep(5)::text`)
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Fatalf("statement over the timeout: code %q (%v), want %q", code, err, herald.EUNAVAILABLE)
	}
}

func TestOpenBadURL(t *testing.T) {
	_, err := postgres.Open(t.Context(), postgres.Config{URL: "postgres://herald:s3cret-pw@127.0.0.1:notaport/test", Keyring: testKeyring(t)})
	if err == nil {
		t.Fatal("Open with a malformed URL succeeded")
	}
	if bytes.Contains([]byte(err.Error()), []byte("s3cret-pw")) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if _, err := postgres.Open(t.Context(), postgres.Config{URL: "postgres://127.0.0.1/test"}); err == nil {
		t.Fatal("Open without a keyring succeeded")
	}
}

// embeddedMigrations is the number of migration files shipped in the
// package, numbered 1 to n: the schema version of a migrated database.
func embeddedMigrations(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v, %d files", err, len(files))
	}
	return len(files)
}

// latestMigration returns the highest version in migrations/: the schema
// version of a migrated database, which is above embeddedMigrations while
// another branch's migration number is not merged yet.
func latestMigration(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, f := range files {
		num, _, _ := strings.Cut(filepath.Base(f), "_")
		if v, err := strconv.Atoi(num); err == nil {
			latest = max(latest, v)
		}
	}
	return latest
}

// TestStalledTransactionEnded: a session that holds a transaction (and its
// row locks) open without sending anything, as a node stopped with SIGSTOP
// mid-transaction does, is ended by PostgreSQL after the store's
// IdleInTransactionTimeout, so another node's change of those rows (a
// takeover of its deliveries) goes through instead of waiting for as long
// as the stopped node stays stopped.
func TestStalledTransactionEnded(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	openStore(t, schema, ring) // migrations
	stalledStore, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: ring, Schema: schema, MaxConns: 2,
		IdleInTransactionTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalledStore.Close() })
	if v, err := postgres.QueryString(t.Context(), stalledStore, "SHOW idle_in_transaction_session_timeout"); err != nil || v != "300ms" {
		t.Fatalf("idle_in_transaction_session_timeout %q, %v", v, err)
	}
	conn := connect(t)
	if _, err := conn.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{schema, "node"}.Sanitize()+` (name, version, host, pid, started_at, heartbeat_at)
		VALUES ('stalled', 'test', 'h', 1, now(), now())`); err != nil {
		t.Fatal(err)
	}
	tx, err := postgres.BeginStalled(t.Context(), stalledStore, `SELECT name FROM node WHERE name = 'stalled' FOR UPDATE`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	// The other side waits for the lock; with the stalled session ended by
	// the server it gets it. Its own bound is generous: it fails the test
	// only if the stalled session is never ended.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "node"}.Sanitize()+` SET taken_over_at = now() WHERE name = 'stalled'`); err != nil {
		t.Fatalf("update of the rows a stalled transaction locked: %v", err)
	}
	if _, err := tx.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("the stalled transaction's session is still usable after the timeout")
	}
}
