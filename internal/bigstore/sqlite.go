package bigstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// SQLite returns the Big fixture on SQLite, building it when no kept one
// matches (see the package comment). It skips tb unless HERALD_BIGSTORE=1
// and not -short.
func SQLite(tb testing.TB) *Fixture {
	tb.Helper()
	enabled(tb)
	return OpenSQLite(tb, Big, os.TempDir())
}

// OpenSQLite returns a fixture of shape on SQLite, kept in dir as
// herald-bigstore-<key>.db and built first when missing. The store is
// closed when the test ends.
func OpenSQLite(tb testing.TB, shape Shape, dir string) *Fixture {
	tb.Helper()
	ctx := tb.Context()
	schema, err := sqliteSchema(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	key, versioned := keyOf(tb, schema, shape)
	path := filepath.Join(dir, "herald-bigstore-"+key+".db")
	if !versioned {
		removeSQLite(tb, path)
	}
	var built time.Duration
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// Fixtures of other sources are of no more use, and a few GiB each.
		stale, _ := filepath.Glob(filepath.Join(dir, "herald-bigstore-*.db"))
		for _, f := range stale {
			tb.Logf("bigstore: removing the outdated fixture %s", f)
			removeSQLite(tb, f)
		}
		began := time.Now()
		if err := buildSQLite(ctx, tb, path, shape); err != nil {
			tb.Fatalf("bigstore: build %s: %v", path, err)
		}
		built = time.Since(began)
	} else if err != nil {
		tb.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		tb.Logf("bigstore: SQLite fixture %s (%d MiB)", path, fi.Size()>>20)
	}
	return openSQLite(ctx, tb, path, shape, built)
}

// sqliteSchema describes the schema this binary's migrations make: the
// definitions of a freshly migrated store's tables, indexes and triggers.
func sqliteSchema(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "herald-bigstore-schema-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "schema.db")
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path, Keyring: fixtureKeyring()})
	if err != nil {
		return "", fmt.Errorf("bigstore: migrate a probe store: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite", sqliteURL(path, "query_only(1)"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	lines, err := collect(rows, err)
	if err != nil {
		return "", fmt.Errorf("bigstore: describe the schema: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// collect reads a query's one text column.
func collect(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// removeSQLite removes the database file at path with its WAL files.
func removeSQLite(tb testing.TB, path string) {
	tb.Helper()
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Fatal(err)
		}
	}
}

// sqliteURL returns the driver's name for the file at path with pragmas.
func sqliteURL(path string, pragmas ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// buildSQLite builds the fixture in a file of its own beside path and
// renames it to path once complete, so a kept file is always a whole one
// (an interrupted build leaves only its own file, removed by the next).
func buildSQLite(ctx context.Context, tb testing.TB, path string, shape Shape) (err error) {
	p := progress{tb: tb, began: time.Now()}
	tmp := fmt.Sprintf("%s.build-%d", path, os.Getpid())
	removeSQLite(tb, tmp)
	defer func() {
		if err != nil {
			removeSQLite(tb, tmp)
		}
	}()
	st, types, eps := newSetup(shape, buildStart(shape))
	s, err := sqlite.Open(ctx, sqlite.Config{Path: tmp, Keyring: fixtureKeyring(), Synchronous: "NORMAL"})
	if err != nil {
		return err
	}
	if err := createSetup(ctx, s, st, types, eps); err != nil {
		s.Close()
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	p.logf("SQLite schema migrated, applications and endpoints created in %s", tmp)

	// Nothing else has the file open: the bulk connection trades every
	// safety for speed (a build that fails is thrown away) and gives the
	// file back in WAL mode, as the store keeps it.
	db, err := sql.Open("sqlite", sqliteURL(tmp, "journal_mode(OFF)", "synchronous(OFF)", "locking_mode(EXCLUSIVE)",
		"cache_size(-262144)", "temp_store(MEMORY)"))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	w := sqliteWriter{db: db, st: st}
	if err := writeRows(ctx, p, w, st, shape); err != nil {
		return err
	}
	if err := checkCounts(ctx, w, st, shape); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	p.logf("SQLite fixture complete")
	return nil
}

// createSetup creates the setup's applications, event types and endpoints
// through the store's verbs.
func createSetup(ctx context.Context, s herald.Store, st *setup, types []*herald.EventType, eps []*herald.Endpoint) error {
	for _, app := range append([]*herald.Application{st.mainApp}, st.others...) {
		if err := s.CreateApplication(ctx, app); err != nil {
			return err
		}
	}
	for _, et := range types {
		if err := s.CreateEventType(ctx, et); err != nil {
			return err
		}
	}
	for _, ep := range eps {
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			return err
		}
	}
	return nil
}

// rowWriter writes one engine's rows.
type rowWriter interface {
	// mainChunk writes a chunk of the main application's messages with
	// their deliveries and attempts, in one transaction.
	mainChunk(ctx context.Context, c *chunk) error
	// otherChunk writes a chunk of another application's messages.
	otherChunk(ctx context.Context, appID string, c *chunk) error
	// count returns how many rows table has.
	count(ctx context.Context, table string) (int, error)
}

// writeRows writes every message, delivery and attempt of a shape.
func writeRows(ctx context.Context, p progress, w rowWriter, st *setup, shape Shape) error {
	l := layout{shape: shape, start: st.start}
	var g gens
	began := time.Now()
	for base := 0; base < shape.Messages; base += shape.Chunk {
		c := g.mainChunk(l, base, min(shape.Chunk, shape.Messages-base))
		if err := w.mainChunk(ctx, c); err != nil {
			return fmt.Errorf("write messages %d-%d: %w", base, base+c.n-1, err)
		}
		if done := base + c.n; done%(10*shape.Chunk) == 0 || done == shape.Messages {
			p.logf("%d messages with their deliveries and attempts (%.0f messages/s)", done, float64(done)/time.Since(began).Seconds())
		}
	}
	for _, app := range st.others {
		var msg idGen
		for base := 0; base < shape.OtherMessages; base += shape.Chunk {
			c := otherChunk(&msg, l, base, min(shape.Chunk, shape.OtherMessages-base))
			if err := w.otherChunk(ctx, app.ID, c); err != nil {
				return fmt.Errorf("write messages of %s: %w", app.UID, err)
			}
		}
	}
	p.logf("%d messages of the other applications", len(st.others)*shape.OtherMessages)
	return nil
}

// expectedAttempts returns how many attempts the main application's
// deliveries have.
func expectedAttempts(shape Shape) int {
	n := 0
	for k := range shape.Messages {
		for e := range Delivering {
			kk := (k*6007 + e*3571) % 100
			for _, o := range outcomes {
				if kk < o.upTo {
					n += len(o.codes)
					break
				}
			}
		}
	}
	return n
}

// checkCounts checks that every row was written.
func checkCounts(ctx context.Context, w rowWriter, st *setup, shape Shape) error {
	for _, c := range []struct {
		table string
		want  int
	}{
		{"message", shape.Messages + len(st.others)*shape.OtherMessages},
		{"delivery", shape.Messages * Delivering},
		{"attempt", expectedAttempts(shape)},
	} {
		n, err := w.count(ctx, c.table)
		if err != nil {
			return err
		}
		if n != c.want {
			return fmt.Errorf("%s has %d rows, want %d", c.table, n, c.want)
		}
	}
	return nil
}

// sqliteLabels is message k's channels, and its tags: see ChannelCommon.
const sqliteLabels = `CASE WHEN k % 10 < 8 THEN
				CASE WHEN k % 47 = 3 THEN '["project-' || (k % 10) || '","vip"]' ELSE '["project-' || (k % 10) || '"]' END
			WHEN k % 47 = 3 THEN '["vip"]' END`

// sqliteSQL fills in a statement's constants.
var sqliteSQL = strings.NewReplacer("IDLEN", strconv.Itoa(ksuidLen), "SLOTS", strconv.Itoa(slots),
	"DELIVERING", strconv.Itoa(Delivering)).Replace

// The bulk statements on SQLite. Each counts rows with a recursive CTE and
// reads row n's KSUID from a packed BLOB parameter (substr of a BLOB is by
// byte, so each read costs the same wherever it is) and its time from
// another, as 16 decimal digits.
var (
	// ?1 app, ?2 message IDs, ?3 message times, ?4 messages, ?5 index of the
	// chunk's first message.
	sqliteMessages = sqliteSQL(`WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?4)
	INSERT INTO message (id, app_id, event_id, event_type, payload, content_type, channels, tags, created_at,
		traceparent, payload_expires_at)
	SELECT 'msg_' || CAST(substr(?2, i * IDLEN + 1, IDLEN) AS TEXT), ?1,
		CASE WHEN k % 2 = 0 THEN printf('evt-%09d', k) END,
		` + eventTypeSQL("k") + `,
		CAST(printf('{"n":%d,"amount":%d,"currency":"EUR","note":"bigstore"}', k, k * 37 % 100000) AS BLOB),
		'',
		` + sqliteLabels + `,
		` + sqliteLabels + `, CAST(substr(?3, i * 16 + 1, 16) AS INTEGER), NULL, NULL
	FROM (SELECT i, ?5 + i AS k FROM g)`)

	// ?1 app, ?2 message IDs, ?3 message times, ?4 deliveries, ?5 index of
	// the chunk's first message, ?6 delivery IDs, ?7 attempt times, ?8-?10
	// the delivering endpoints.
	sqliteDeliveries = sqliteSQL(`WITH RECURSIVE g(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM g WHERE j + 1 < ?4)
	INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, lease_owner,
		lease_expires_at, trigger, created_at, updated_at)
	SELECT 'dlv_' || CAST(substr(?6, j * IDLEN + 1, IDLEN) AS TEXT), ?1,
		'msg_' || CAST(substr(?2, (j / DELIVERING) * IDLEN + 1, IDLEN) AS TEXT),
		CASE j % DELIVERING WHEN 0 THEN ?8 WHEN 1 THEN ?9 ELSE ?10 END,
		status, CASE status WHEN 'pending' THEN t + 3600000000 ELSE updated END, attempts, NULL, NULL, 0, t, updated
	FROM (SELECT j, t, status, attempts,
			CASE attempts WHEN 0 THEN t ELSE CAST(substr(?7, (j * SLOTS + attempts - 1) * 16 + 1, 16) AS INTEGER) END AS updated
		FROM (SELECT j, CAST(substr(?3, (j / DELIVERING) * 16 + 1, 16) AS INTEGER) AS t,
				` + statusSQL("kk") + ` AS status, ` + attemptsSQL("kk") + ` AS attempts
			FROM (SELECT j, ` + drawSQL("?5 + j / DELIVERING", "j % DELIVERING") + ` AS kk FROM g)))`)

	sqliteAttemptStatus, sqliteAttemptBody, sqliteAttemptError = responseSQL("code")

	// ?1 app, ?2 message IDs, ?3 attempt slots, ?4 index of the chunk's
	// first message, ?5 delivery IDs, ?6 attempt IDs, ?7 attempt times,
	// ?8-?10 the delivering endpoints, ?11-?13 their URLs.
	sqliteAttempts = sqliteSQL(`WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x + 1 < ?3)
	INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, response_status, response_body,
		duration_us, status, trigger, error, created_at)
	SELECT 'atmpt_' || CAST(substr(?6, x * IDLEN + 1, IDLEN) AS TEXT),
		'dlv_' || CAST(substr(?5, j * IDLEN + 1, IDLEN) AS TEXT),
		'msg_' || CAST(substr(?2, (j / DELIVERING) * IDLEN + 1, IDLEN) AS TEXT),
		CASE j % DELIVERING WHEN 0 THEN ?8 WHEN 1 THEN ?9 ELSE ?10 END, ?1,
		CASE j % DELIVERING WHEN 0 THEN ?11 WHEN 1 THEN ?12 ELSE ?13 END,
		code, CAST(` + sqliteAttemptBody + ` AS BLOB), ` + durationSQL("k", "code") + `,
		` + sqliteAttemptStatus + `, 0, ` + sqliteAttemptError + `,
		CAST(substr(?7, x * 16 + 1, 16) AS INTEGER)
	FROM (SELECT x, j, k, ` + codeSQL("kk", "s") + ` AS code
		FROM (SELECT x, j, k, s, kk, ` + attemptsSQL("kk") + ` AS made
			FROM (SELECT x, x / SLOTS AS j, ?4 + x / (SLOTS * DELIVERING) AS k, x % SLOTS AS s,
					` + drawSQL("?4 + x / (SLOTS * DELIVERING)", "(x / SLOTS) % DELIVERING") + ` AS kk FROM g))
		WHERE s < made)`)
)

// sqliteWriter writes rows through one bulk connection.
type sqliteWriter struct {
	db *sql.DB
	st *setup
}

// decimals packs times as 16 decimal digits each.
func decimals(times []int64) []byte {
	b := make([]byte, 0, len(times)*16)
	for _, t := range times {
		b = fmt.Appendf(b, "%016d", t)
	}
	return b
}

func (w sqliteWriter) mainChunk(ctx context.Context, c *chunk) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	app, eps := w.st.mainApp.ID, w.st.delivered
	msgTimes, atmTimes := decimals(c.msgTimes), decimals(c.atmTimes)
	if _, err := tx.ExecContext(ctx, sqliteMessages, app, c.msgIDs, msgTimes, c.n, c.base); err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqliteDeliveries, app, c.msgIDs, msgTimes, c.n*Delivering, c.base, c.dlvIDs,
		atmTimes, eps[0].ID, eps[1].ID, eps[2].ID); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqliteAttempts, app, c.msgIDs, c.n*Delivering*slots, c.base, c.dlvIDs, c.atmIDs,
		atmTimes, eps[0].ID, eps[1].ID, eps[2].ID, eps[0].URL, eps[1].URL, eps[2].URL); err != nil {
		return fmt.Errorf("attempts: %w", err)
	}
	return tx.Commit()
}

func (w sqliteWriter) otherChunk(ctx context.Context, appID string, c *chunk) error {
	_, err := w.db.ExecContext(ctx, sqliteMessages, appID, c.msgIDs, decimals(c.msgTimes), c.n, c.base)
	return err
}

func (w sqliteWriter) count(ctx context.Context, table string) (int, error) {
	var n int
	err := w.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// openSQLite opens a built fixture file.
func openSQLite(ctx context.Context, tb testing.TB, path string, shape Shape, built time.Duration) *Fixture {
	tb.Helper()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path, Keyring: fixtureKeyring()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	// A connection of the fixture's own finds messages by time for the
	// benchmarks' set-up, outside the store's verbs that are measured.
	ro, err := sql.Open("sqlite", sqliteURL(path, "query_only(1)"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ro.Close() })
	f := &Fixture{Engine: "sqlite", Shape: shape, Store: s, Built: built, Where: path}
	f.lookup = func(tb testing.TB, at time.Time) string {
		tb.Helper()
		var id string
		err := ro.QueryRowContext(tb.Context(), `SELECT id FROM message WHERE app_id = ? AND created_at = ?`,
			f.App.ID, at.UnixMicro()).Scan(&id)
		if err != nil {
			tb.Fatalf("bigstore: message at %s: %v", at.Format(time.RFC3339Nano), err)
		}
		return id
	}
	var first int64
	findFirst := func(appID string) error {
		return ro.QueryRowContext(ctx, `SELECT min(created_at) FROM message WHERE app_id = ?`, appID).Scan(&first)
	}
	if err := f.load(ctx, findFirst); err != nil {
		tb.Fatal(err)
	}
	f.first = time.UnixMicro(first).UTC()
	f.layout = layout{shape: shape, start: f.first}
	return f
}

// load reads the main application and its endpoints through the store,
// then the oldest message's time with first.
func (f *Fixture) load(ctx context.Context, first func(appID string) error) error {
	app, err := f.Store.GetApplication(ctx, MainUID)
	if err != nil {
		return fmt.Errorf("bigstore: %s fixture: %w", f.Engine, err)
	}
	f.App = app
	if f.Endpoints, err = f.Store.ListEndpoints(ctx, app.ID, herald.ListOptions{Limit: Endpoints + 1}); err != nil {
		return fmt.Errorf("bigstore: %s fixture: %w", f.Engine, err)
	}
	if len(f.Endpoints) != Endpoints {
		return fmt.Errorf("bigstore: %s fixture: %d endpoints, want %d", f.Engine, len(f.Endpoints), Endpoints)
	}
	return first(app.ID)
}
