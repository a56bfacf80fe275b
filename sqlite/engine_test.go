package sqlite_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is an application with one endpoint that accepts every message.
type fixture struct {
	app *herald.Application
	ep  *herald.Endpoint
}

// newFixture creates an application and an endpoint whose current secret is
// key.
func newFixture(t testing.TB, s herald.Store, key []byte) fixture {
	t.Helper()
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, t0), Name: "App", UID: "app-uid",
		Metadata: map[string]string{"k": "v"}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, t0), AppID: app.ID, URL: "https://example.com/hook",
		Version: 1, Headers: map[string]string{"x-h": "1"}, Secrets: []herald.SigningSecret{{Key: key}},
		CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return fixture{app: app, ep: ep}
}

// newMsg returns a message for appID created at t0 plus n seconds.
func newMsg(appID string, n int, eventID string) *herald.Message {
	at := t0.Add(time.Duration(n) * time.Second)
	return &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: appID, EventID: eventID,
		EventType: "user.created", Payload: []byte(`{"n":1}`), CreatedAt: at}
}

func randomKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// migrationCount is the number of migration files shipped in the package.
func migrationCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			n++
		}
	}
	return n
}

// latestMigration returns the highest version in migrations/: the schema
// version of a migrated database, which is above migrationCount while
// another branch's migration number is not merged yet.
func latestMigration(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := 0
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.Atoi(num); err == nil && strings.HasSuffix(e.Name(), ".sql") {
			latest = max(latest, v)
		}
	}
	return latest
}

// rawDB opens the file with the plain driver, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSecretsNeverInClear(t *testing.T) {
	s, path := newStore(t)
	key := randomKey(t)
	f := newFixture(t, s, key)
	// Rotation writes the secrets column again, with two secrets.
	next := randomKey(t)
	if err := s.RotateEndpointSecret(t.Context(), f.app.ID, f.ep.ID, herald.SigningSecret{Key: next}, t0.Add(time.Hour), t0); err != nil {
		t.Fatalf("RotateEndpointSecret: %v", err)
	}

	var column []byte
	if err := rawDB(t, path).QueryRow(`SELECT secrets FROM endpoint WHERE id = ?`, f.ep.ID).Scan(&column); err != nil {
		t.Fatalf("read secrets column: %v", err)
	}
	if len(column) == 0 {
		t.Fatal("secrets column is empty")
	}
	// Every form a secret could take in the column or the file: raw bytes,
	// base64 (how JSON encodes []byte) and hex.
	for _, secret := range [][]byte{key, next} {
		forms := [][]byte{secret, []byte(base64.StdEncoding.EncodeToString(secret)), []byte(hex.EncodeToString(secret))}
		for _, form := range forms {
			if bytes.Contains(column, form) {
				t.Fatalf("secrets column holds a secret in clear")
			}
		}
		// The main file and the WAL hold every page the store wrote.
		for _, file := range []string{path, path + "-wal"} {
			data, err := os.ReadFile(file)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			for _, form := range forms {
				if bytes.Contains(data, form) {
					t.Fatalf("%s holds a secret in clear", filepath.Base(file))
				}
			}
		}
	}

	// The sealed value is still what the store reads back.
	got, err := s.GetEndpoint(t.Context(), f.app.ID, f.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 2 || !bytes.Equal(got.Secrets[0].Key, next) || !bytes.Equal(got.Secrets[1].Key, key) {
		t.Fatalf("secrets after rotation = %d secrets, want [next, key]", len(got.Secrets))
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, randomKey(t))
	msg := newMsg(f.app.ID, 1, "evt-1")
	res, err := s.CreateMessages(t.Context(), []*herald.Message{msg}, herald.Lease{})
	if err != nil || res[0].Err != nil {
		t.Fatalf("CreateMessages: %v / %v", err, res[0].Err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openAt(t, path, ring)
	ctx := t.Context()
	app, err := s2.GetApplication(ctx, "app-uid")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s2.GetEndpoint(ctx, f.app.ID, f.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s2.GetMessage(ctx, f.app.ID, "evt-1")
	if err != nil {
		t.Fatal(err)
	}
	dels, err := s2.ListMessageDeliveries(ctx, f.app.ID, msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	opts := cmpopts.EquateEmpty()
	for _, c := range []struct {
		what      string
		want, got any
	}{
		{"application", f.app, app},
		{"endpoint", f.ep, ep},
		{"message", msg, m},
		{"deliveries", res[0].Deliveries, dels},
	} {
		if diff := cmp.Diff(c.want, c.got, opts); diff != "" {
			t.Errorf("%s after reopen (-want +got):\n%s", c.what, diff)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	want, count := latestMigration(t), migrationCount(t)
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	for i := range 3 {
		s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		v, err := s.SchemaVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Errorf("open %d: SchemaVersion = %d, want %d", i, v, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != count {
		t.Errorf("schema_migrations has %d rows, want %d (one per migration)", rows, count)
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	want, count := latestMigration(t), migrationCount(t)
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	const n = 4
	stores := make([]*sqlite.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("open %d: %v", i, errs[i])
			continue
		}
		v, err := stores[i].SchemaVersion(t.Context())
		if err != nil || v != want {
			t.Errorf("open %d: SchemaVersion = %d, %v; want %d", i, v, err, want)
		}
		stores[i].Close()
	}
	var rows int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != count {
		t.Errorf("schema_migrations has %d rows, want %d", rows, count)
	}
}

func TestCreateMessagesIsolatesFailures(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	f := newFixture(t, s, randomKey(t))
	first := newMsg(f.app.ID, 1, "taken")
	if res, err := s.CreateMessages(ctx, []*herald.Message{first}, herald.Lease{}); err != nil || res[0].Err != nil {
		t.Fatalf("first message: %v / %v", err, res[0].Err)
	}

	ok1 := newMsg(f.app.ID, 2, "")
	noApp := newMsg(herald.NewIDAt(herald.PrefixApplication, t0), 3, "")
	dup := newMsg(f.app.ID, 4, "taken")
	ok2 := newMsg(f.app.ID, 5, "fresh")
	dupInBatch := newMsg(f.app.ID, 6, "fresh")
	batch := []*herald.Message{ok1, noApp, dup, ok2, dupInBatch}
	res, err := s.CreateMessages(ctx, batch, herald.Lease{})
	if err != nil {
		t.Fatalf("CreateMessages: %v", err)
	}
	wantCodes := []string{"", herald.ENOTFOUND, herald.ECONFLICT, "", herald.ECONFLICT}
	for i, r := range res {
		if got := herald.ErrorCode(r.Err); got != wantCodes[i] {
			t.Errorf("result %d: code %q (%v), want %q", i, got, r.Err, wantCodes[i])
		}
		if (r.Message == nil) != (wantCodes[i] != "") {
			t.Errorf("result %d: Message = %v with code %q", i, r.Message, wantCodes[i])
		}
	}
	if msg := herald.ErrorMessage(res[2].Err); !strings.Contains(msg, "eventId") {
		t.Errorf("duplicate eventId message %q does not name the eventId", msg)
	}

	for _, m := range []*herald.Message{ok1, ok2} {
		got, err := s.GetMessage(ctx, f.app.ID, m.ID)
		if err != nil {
			t.Fatalf("committed message %s: %v", m.ID, err)
		}
		if diff := cmp.Diff(m, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("message (-want +got):\n%s", diff)
		}
		dels, err := s.ListMessageDeliveries(ctx, f.app.ID, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(dels) != 1 || dels[0].EndpointID != f.ep.ID || dels[0].Status != herald.DeliveryPending ||
			!dels[0].NextAttemptAt.Equal(m.CreatedAt) {
			t.Errorf("deliveries of %s = %+v, want one pending to %s at %v", m.ID, dels, f.ep.ID, m.CreatedAt)
		}
	}
	// The taken eventId still names the first message.
	got, err := s.GetMessage(ctx, f.app.ID, "taken")
	if err != nil || got.ID != first.ID {
		t.Errorf("eventId owner = %v, %v; want %s", got, err, first.ID)
	}
	if _, err := s.GetMessage(ctx, f.app.ID, dup.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Errorf("refused duplicate stored: %v", err)
	}
}

func TestFullDiskIsUnavailable(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	f := newFixture(t, s, randomKey(t))
	// max_page_count never goes below the current size, so this pins the
	// file at what it holds now.
	if err := sqlite.ExecOnWriter(ctx, s, `PRAGMA max_page_count = 1`); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for i := range 100 {
		m := newMsg(f.app.ID, i, "")
		m.Payload = bytes.Repeat([]byte("x"), 64<<10)
		_, lastErr = s.CreateMessages(ctx, []*herald.Message{m}, herald.Lease{})
		if lastErr != nil {
			break
		}
	}
	if lastErr == nil {
		t.Fatal("100 messages of 64 KiB fit in a database pinned at its size")
	}
	if code := herald.ErrorCode(lastErr); code != herald.EUNAVAILABLE {
		t.Fatalf("full database: code %q (%v), want %q", code, lastErr, herald.EUNAVAILABLE)
	}
	// Reads still work, and the store recovers once space is back.
	if _, err := s.GetApplication(ctx, f.app.ID); err != nil {
		t.Fatalf("read from a full database: %v", err)
	}
	if err := sqlite.ExecOnWriter(ctx, s, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if res, err := s.CreateMessages(ctx, []*herald.Message{newMsg(f.app.ID, 200, "")}, herald.Lease{}); err != nil || res[0].Err != nil {
		t.Fatalf("write after space is back: %v", err)
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s, randomKey(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetApplication(t.Context(), f.app.ID)
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Errorf("read after close: code %q (%v), want %q", code, err, herald.EUNAVAILABLE)
	}
	_, err = s.CreateMessages(t.Context(), []*herald.Message{newMsg(f.app.ID, 1, "")}, herald.Lease{})
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Errorf("write after close: code %q (%v), want %q", code, err, herald.EUNAVAILABLE)
	}
}

func TestOpenValidates(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  sqlite.Config
	}{
		{"no path", sqlite.Config{Keyring: testKeyring(t)}},
		{"no keyring", sqlite.Config{Path: filepath.Join(dir, "a.db")}},
		{"bad synchronous", sqlite.Config{Path: filepath.Join(dir, "b.db"), Keyring: testKeyring(t), Synchronous: "OFF"}},
		{"missing directory", sqlite.Config{Path: filepath.Join(dir, "nope", "c.db"), Keyring: testKeyring(t)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), c.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// TestPragmasInForce checks the settings durability and integrity rest on,
// as the connections really have them: WAL, synchronous FULL by default
// (NORMAL when asked), foreign keys, a busy timeout, read-only readers,
// and no automatic checkpoint in the writer's commits.
func TestPragmasInForce(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		config, want string // want is SQLite's number: 2 FULL, 1 NORMAL
	}{{"", "2"}, {"NORMAL", "1"}} {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "p.db"), Keyring: testKeyring(t), Synchronous: tc.config})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, c := range []struct {
			name, want string
			reader     bool
		}{
			{"journal_mode", "wal", false},
			{"synchronous", tc.want, false},
			{"synchronous", tc.want, true},
			{"foreign_keys", "1", false},
			{"busy_timeout", "5000", false},
			{"busy_timeout", "5000", true},
			{"query_only", "0", false},
			{"query_only", "1", true},
			{"wal_autocheckpoint", "0", false},
			{"journal_size_limit", "67108864", false},
		} {
			get := sqlite.PragmaOnWriter
			if c.reader {
				get = sqlite.PragmaOnReader
			}
			got, err := get(ctx, s, c.name)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("synchronous=%q: %s on reader=%v is %q, want %q", tc.config, c.name, c.reader, got, c.want)
			}
		}
	}
}

// TestClaimsCompileOnce checks that claims of every size, window, skip
// list and time run the statements compiled for the first claim: SQLite
// recompiles a statement whose planner read a bound value (a bare LIMIT ?,
// or with ANALYZE's samples a `col <= ?`) each time another value is
// bound, which cost many claims a compile in benchmark runs.
func TestClaimsCompileOnce(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	f := newFixture(t, s, randomKey(t))
	fifo := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, t0.Add(time.Second)), AppID: f.app.ID,
		URL: "https://example.com/fifo", Version: 1, Ordering: herald.OrderingFIFO, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateEndpoint(ctx, fifo); err != nil {
		t.Fatal(err)
	}
	msgs := make([]*herald.Message, 60)
	for i := range msgs {
		msgs[i] = newMsg(f.app.ID, i, "")
	}
	if _, err := s.CreateMessages(ctx, msgs, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	// With samples of the queue (an operator may run ANALYZE), the planner
	// would read the claim's time too.
	if err := sqlite.ExecOnWriter(ctx, s, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var compiles atomic.Int64
	err := sqlite.OnWriterUpdateCompile(ctx, s, func(table, column string) {
		// Every claim statement sets lease_owner: one call per compile.
		if table == "delivery" && column == "lease_owner" {
			compiles.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	claim := func(limit, window, perEndpoint, perApp int, skip []string) {
		t.Helper()
		calls++
		now := t0.Add(time.Hour + time.Duration(calls)*time.Second)
		_, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "node", Now: now, LeaseUntil: now.Add(time.Minute),
			Limit: limit, Window: window, PerEndpoint: perEndpoint, SkipEndpoints: skip, PerApp: perApp,
			SkipApps: []string{"app_none"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	skipOne := []string{"ep_none"}
	// The first claim of each kind compiles its statements (the first
	// leases the FIFO endpoint's head, whose lease never ends here, and
	// one more delivery).
	claim(2, 0, 0, 0, nil)
	claim(1, 0, 0, 0, skipOne)
	claim(1, 1, 1, 0, nil)
	claim(1, 1, 1, 1, nil)
	first := compiles.Load()
	if first == 0 {
		t.Fatal("no compile seen: the authorizer is not counting")
	}
	for i := 2; i <= 12; i++ {
		claim(i, 0, 0, 0, nil)
		claim(i, 0, 0, 0, append(skipOne, fmt.Sprint("ep_", i)))
		claim(i, 3*i, i/2+1, 0, skipOne)
		claim(i, 3*i, i/2+1, i, skipOne)
		claim(i, 0, 0, i+1, nil)
	}
	if n := compiles.Load() - first; n != 0 {
		t.Errorf("claims of other sizes compiled their statements %d more times (first claims: %d)", n, first)
	}
}

// TestBrokerPasswordNeverInClear: a broker URL's password is in neither
// the url column nor the database file; the URL reads back whole.
func TestBrokerPasswordNeverInClear(t *testing.T) {
	s, path := newStore(t)
	f := newFixture(t, s, randomKey(t))
	const password = "pw-sqlite-7f3a9c1e"
	full := "nats://herald:" + password + "@nats.example.com:4222/orders"
	if _, err := s.UpdateEndpointFunc(t.Context(), f.app.ID, f.ep.ID, func(ep *herald.Endpoint) error {
		ep.URL = full
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var column string
	if err := rawDB(t, path).QueryRow(`SELECT url FROM endpoint WHERE id = ?`, f.ep.ID).Scan(&column); err != nil {
		t.Fatal(err)
	}
	if column != "nats://herald:xxxxx@nats.example.com:4222/orders" {
		t.Fatalf("url column = %q, want the URL with its password masked", column)
	}
	if found := fileHolds(t, path, []byte(password)); found != nil {
		t.Fatalf("%v hold the broker password in clear", found)
	}
	ep, err := s.GetEndpoint(t.Context(), f.app.ID, f.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ep.URL != full {
		t.Fatalf("URL read back = %q, want %q", ep.URL, full)
	}
}
