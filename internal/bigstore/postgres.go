package bigstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/postgres"
)

// Postgres returns the Big fixture on the PostgreSQL database named by
// HERALD_TEST_POSTGRES_URL, building it when no kept one matches (see the
// package comment). It skips tb unless HERALD_BIGSTORE=1 and not -short,
// and when the URL is not set.
func Postgres(tb testing.TB) *Fixture {
	tb.Helper()
	enabled(tb)
	url := os.Getenv(pgtest.EnvURL)
	if url == "" {
		tb.Skip("bigstore: " + pgtest.EnvURL + " is not set: no PostgreSQL fixture")
	}
	return OpenPostgres(tb, Big, url, "")
}

// OpenPostgres returns a fixture of shape in schema of the database at url,
// built first when the schema does not exist; "" names the kept schema
// herald_bigstore_<key>. A build runs in a schema of its own, renamed to
// schema once complete, so a schema of that name is always a whole
// fixture; concurrent builds of one schema wait for each other. The store
// is closed when the test ends.
func OpenPostgres(tb testing.TB, shape Shape, url, schema string) *Fixture {
	tb.Helper()
	ctx := tb.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	desc, err := pgSchema(ctx, conn, url)
	if err != nil {
		tb.Fatal(err)
	}
	key, versioned := keyOf(tb, desc, shape)
	kept := schema == ""
	if kept {
		schema = "herald_bigstore_" + key
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, "herald bigstore "+schema); err != nil {
		tb.Fatal(err)
	}
	if !versioned {
		dropSchema(tb, conn, schema)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		tb.Fatal(err)
	}
	var built time.Duration
	if !exists && kept {
		// Kept fixtures of other sources are of no more use, and a few GiB
		// each (builds in progress end in _build and are left alone).
		rows, _ := conn.Query(ctx, `SELECT nspname FROM pg_namespace
			WHERE nspname LIKE 'herald\_bigstore\_%' AND nspname NOT LIKE '%\_build'`)
		stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatal(err)
		}
		for _, name := range stale {
			tb.Logf("bigstore: dropping the outdated fixture schema %s", name)
			dropSchema(tb, conn, name)
		}
	}
	if !exists {
		began := time.Now()
		if err := buildPostgres(ctx, tb, conn, url, schema, shape); err != nil {
			tb.Fatalf("bigstore: build schema %s: %v", schema, err)
		}
		built = time.Since(began)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "herald bigstore "+schema); err != nil {
		tb.Fatal(err)
	}
	var size int64
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&size)
	if err == nil {
		tb.Logf("bigstore: PostgreSQL fixture in schema %s (%d MiB)", schema, size>>20)
	}
	return openPostgres(ctx, tb, url, schema, shape, built)
}

// pgSchema describes the schema this binary's migrations make: the
// columns, indexes and constraints of a freshly migrated store, in a probe
// schema dropped afterwards.
func pgSchema(ctx context.Context, conn *pgx.Conn, url string) (string, error) {
	probe := fmt.Sprintf("herald_probe_bigstore_%d_%d", os.Getpid(), time.Now().UnixNano())
	defer conn.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS `+pgx.Identifier{probe}.Sanitize()+` CASCADE`) //nolint:errcheck // a leftover probe is harmless
	s, err := postgres.Open(ctx, postgres.Config{URL: url, Keyring: fixtureKeyring(), Schema: probe, MaxConns: 1})
	if err != nil {
		return "", fmt.Errorf("bigstore: migrate a probe schema: %w", err)
	}
	s.Close()
	// The error of Query comes back from CollectRows.
	rows, _ := conn.Query(ctx, `
		SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' ' ||
			is_nullable || ' ' || coalesce(column_default, '') || ' ' || coalesce(collation_name, '')
		FROM information_schema.columns WHERE table_schema = $1
		UNION ALL SELECT 'index ' || indexname || ' ' || replace(indexdef, $1 || '.', '') FROM pg_indexes WHERE schemaname = $1
		UNION ALL SELECT 'constraint ' || t.relname || '.' || c.conname || ' ' || replace(pg_get_constraintdef(c.oid), $1 || '.', '')
		FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1
		ORDER BY 1`, probe)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("bigstore: describe the schema: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// dropSchema drops a schema and everything in it.
func dropSchema(tb testing.TB, conn *pgx.Conn, schema string) {
	tb.Helper()
	if _, err := conn.Exec(tb.Context(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		tb.Fatal(err)
	}
}

// buildPostgres builds the fixture in schema+"_build" and renames it.
func buildPostgres(ctx context.Context, tb testing.TB, admin *pgx.Conn, url, schema string, shape Shape) (err error) {
	p := progress{tb: tb, began: time.Now()}
	build := schema + "_build"
	drop := func() error {
		_, err := admin.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS `+pgx.Identifier{build}.Sanitize()+` CASCADE`)
		return err
	}
	if err := drop(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = drop()
		}
	}()
	st, types, eps := newSetup(shape, buildStart(shape))
	s, err := postgres.Open(ctx, postgres.Config{URL: url, Keyring: fixtureKeyring(), Schema: build, MaxConns: 2})
	if err != nil {
		return err
	}
	if err := createSetup(ctx, s, st, types, eps); err != nil {
		s.Close()
		return err
	}
	s.Close()
	p.logf("PostgreSQL schema %s migrated, applications and endpoints created", build)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{build}.Sanitize()
	// Losing the last commits on a crash costs nothing here: the build is
	// thrown away.
	cfg.RuntimeParams["synchronous_commit"] = "off"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	w := pgWriter{conn: conn, st: st}
	if err := writeRows(ctx, p, w, st, shape); err != nil {
		return err
	}
	if err := checkCounts(ctx, w, st, shape); err != nil {
		return err
	}
	// What autovacuum would have done after such inserts, at once: the
	// visibility map that lets counts read an index alone, and the
	// statistics the planner chooses with.
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) application, event_type, endpoint, message, delivery, attempt`); err != nil {
		return err
	}
	p.logf("vacuumed and analyzed")
	if _, err := admin.Exec(ctx, `ALTER SCHEMA `+pgx.Identifier{build}.Sanitize()+` RENAME TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	p.logf("PostgreSQL fixture complete")
	return nil
}

// pgSQL fills in a statement's constants.
var pgSQL = strings.NewReplacer("IDLEN", strconv.Itoa(ksuidLen), "SLOTS", strconv.Itoa(slots),
	"DELIVERING", strconv.Itoa(Delivering)).Replace

// pgLabels is message k's channels, and its tags: see ChannelCommon.
const pgLabels = `CASE WHEN k % 10 < 8 THEN
				CASE WHEN k % 47 = 3 THEN ARRAY['project-' || (k % 10), 'vip'] ELSE ARRAY['project-' || (k % 10)] END
			WHEN k % 47 = 3 THEN ARRAY['vip'] END`

// pgID returns row n's KSUID in the packed bytea parameter param
// (substring of a bytea is by byte, so each read costs the same).
func pgID(param, n string) string {
	return "convert_from(substring(" + param + "::bytea FROM ((" + n + ") * IDLEN + 1)::int FOR IDLEN), 'UTF8')"
}

// pgTime returns the timestamptz of unix microseconds us.
func pgTime(us string) string {
	return "(timestamptz 'epoch' + (" + us + ") * interval '1 microsecond')"
}

// The bulk statements on PostgreSQL: rows counted by generate_series,
// KSUIDs read from packed bytea parameters, times from bigint arrays (an
// element of an array of fixed-size values is found by position).
var (
	// $1 app, $2 message IDs, $3 message times, $4 messages, $5 index of the
	// chunk's first message.
	pgMessages = pgSQL(`INSERT INTO message (id, app_id, event_id, event_type, payload, content_type, channels, tags,
		created_at, traceparent, payload_expires_at)
	SELECT 'msg_' || ` + pgID("$2", "i") + `, $1::text,
		CASE WHEN k % 2 = 0 THEN 'evt-' || lpad(k::text, 9, '0') END,
		` + eventTypeSQL("k") + `,
		convert_to(format('{"n":%s,"amount":%s,"currency":"EUR","note":"bigstore"}', k, k * 37 % 100000), 'UTF8'),
		'',
		` + pgLabels + `,
		` + pgLabels + `, ` + pgTime("($3::int8[])[(i + 1)::int]") + `, NULL, NULL
	FROM (SELECT i, $5::bigint + i AS k FROM generate_series(0::bigint, $4::bigint - 1) AS g (i)) AS s`)

	// $1 app, $2 message IDs, $3 message times, $4 deliveries, $5 index of
	// the chunk's first message, $6 delivery IDs, $7 attempt times, $8-$10
	// the delivering endpoints.
	pgDeliveries = pgSQL(`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts,
		lease_owner, lease_expires_at, trigger_type, created_at, updated_at)
	SELECT 'dlv_' || ` + pgID("$6", "j") + `, $1::text, 'msg_' || ` + pgID("$2", "j / DELIVERING") + `,
		CASE j % DELIVERING WHEN 0 THEN $8::text WHEN 1 THEN $9::text ELSE $10::text END,
		status, CASE status WHEN 'pending' THEN ` + pgTime("t") + ` + interval '1 hour' ELSE ` + pgTime("updated") + ` END,
		attempts, NULL, NULL, 0, ` + pgTime("t") + `, ` + pgTime("updated") + `
	FROM (SELECT j, t, status, attempts,
			CASE attempts WHEN 0 THEN t ELSE ($7::int8[])[(j * SLOTS + attempts)::int] END AS updated
		FROM (SELECT j, ($3::int8[])[(j / DELIVERING + 1)::int] AS t,
				` + statusSQL("kk") + ` AS status, ` + attemptsSQL("kk") + ` AS attempts
			FROM (SELECT j, ` + drawSQL("$5::bigint + j / DELIVERING", "j % DELIVERING") + ` AS kk
				FROM generate_series(0::bigint, $4::bigint - 1) AS g (j)) AS a) AS b) AS c`)

	pgAttemptStatus, pgAttemptBody, pgAttemptError = responseSQL("code")

	// $1 app, $2 message IDs, $3 attempt slots, $4 index of the chunk's
	// first message, $5 delivery IDs, $6 attempt IDs, $7 attempt times,
	// $8-$10 the delivering endpoints, $11-$13 their URLs.
	pgAttempts = pgSQL(`INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, response_status,
		response_body, duration_us, status, trigger_type, error, created_at)
	SELECT 'atmpt_' || ` + pgID("$6", "x") + `, 'dlv_' || ` + pgID("$5", "j") + `,
		'msg_' || ` + pgID("$2", "j / DELIVERING") + `,
		CASE j % DELIVERING WHEN 0 THEN $8::text WHEN 1 THEN $9::text ELSE $10::text END, $1::text,
		CASE j % DELIVERING WHEN 0 THEN $11::text WHEN 1 THEN $12::text ELSE $13::text END,
		code, convert_to(` + pgAttemptBody + `, 'UTF8'), ` + durationSQL("k", "code") + `,
		` + pgAttemptStatus + `, 0, ` + pgAttemptError + `, ` + pgTime("($7::int8[])[(x + 1)::int]") + `
	FROM (SELECT x, j, k, ` + codeSQL("kk", "s") + ` AS code
		FROM (SELECT x, j, k, s, kk, ` + attemptsSQL("kk") + ` AS made
			FROM (SELECT x, x / SLOTS AS j, $4::bigint + x / (SLOTS * DELIVERING) AS k, x % SLOTS AS s,
					` + drawSQL("$4::bigint + x / (SLOTS * DELIVERING)", "(x / SLOTS) % DELIVERING") + ` AS kk
				FROM generate_series(0::bigint, $3::bigint - 1) AS g (x)) AS a) AS b
		WHERE s < made) AS c`)
)

// pgWriter writes rows through one bulk connection.
type pgWriter struct {
	conn *pgx.Conn
	st   *setup
}

func (w pgWriter) mainChunk(ctx context.Context, c *chunk) error {
	app, eps := w.st.mainApp.ID, w.st.delivered
	return pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgMessages, app, c.msgIDs, c.msgTimes, c.n, c.base); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		if _, err := tx.Exec(ctx, pgDeliveries, app, c.msgIDs, c.msgTimes, c.n*Delivering, c.base, c.dlvIDs,
			c.atmTimes, eps[0].ID, eps[1].ID, eps[2].ID); err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		if _, err := tx.Exec(ctx, pgAttempts, app, c.msgIDs, c.n*Delivering*slots, c.base, c.dlvIDs, c.atmIDs,
			c.atmTimes, eps[0].ID, eps[1].ID, eps[2].ID, eps[0].URL, eps[1].URL, eps[2].URL); err != nil {
			return fmt.Errorf("attempts: %w", err)
		}
		return nil
	})
}

func (w pgWriter) otherChunk(ctx context.Context, appID string, c *chunk) error {
	_, err := w.conn.Exec(ctx, pgMessages, appID, c.msgIDs, c.msgTimes, c.n, c.base)
	return err
}

func (w pgWriter) count(ctx context.Context, table string) (int, error) {
	var n int
	err := w.conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n)
	return n, err
}

// openPostgres opens a built fixture schema.
func openPostgres(ctx context.Context, tb testing.TB, url, schema string, shape Shape, built time.Duration) *Fixture {
	tb.Helper()
	s, err := postgres.Open(ctx, postgres.Config{URL: url, Keyring: fixtureKeyring(), Schema: schema})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	// A pool of the fixture's own finds messages by time for the
	// benchmarks' set-up, outside the store's verbs that are measured.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	f := &Fixture{Engine: "postgres", Shape: shape, Store: s, Built: built, Where: "schema " + schema}
	f.lookup = func(tb testing.TB, at time.Time) string {
		tb.Helper()
		var id string
		err := pool.QueryRow(tb.Context(), `SELECT id FROM message WHERE app_id = $1 AND created_at = $2`, f.App.ID, at).Scan(&id)
		if err != nil {
			tb.Fatalf("bigstore: message at %s: %v", at.Format(time.RFC3339Nano), err)
		}
		return id
	}
	var first time.Time
	findFirst := func(appID string) error {
		return pool.QueryRow(ctx, `SELECT min(created_at) FROM message WHERE app_id = $1`, appID).Scan(&first)
	}
	if err := f.load(ctx, findFirst); err != nil {
		tb.Fatal(err)
	}
	f.first = first.UTC()
	f.layout = layout{shape: shape, start: f.first}
	return f
}
