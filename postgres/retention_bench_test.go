package postgres_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// retentionRows is how many expired messages (each with a delivery and an
// attempt) the retention benchmarks start from; HERALD_BENCH_RETENTION_ROWS
// overrides it to show that a batch's cost does not grow with the table.
func retentionRows(b *testing.B) int {
	if v := os.Getenv("HERALD_BENCH_RETENTION_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("HERALD_BENCH_RETENTION_ROWS=%q: want a number ≥ 1000", v)
		}
		return n
	}
	return 200_000
}

// fillExpired inserts n finished messages created 100 days ago, each with
// a succeeded delivery and one attempt, numbered from first. It writes the
// rows with generate_series: millions take seconds, not the minutes the
// store's verbs would. The IDs start with "0", below every real KSUID.
func fillExpired(ctx context.Context, b *testing.B, conn *pgx.Conn, appID, epID string, first, n int) {
	b.Helper()
	old := time.Now().Add(-100 * 24 * time.Hour)
	for _, q := range []string{
		`INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
		 SELECT 'msg_0' || lpad(i::text, 26, '0'), $1, 'user.created', '\x7b7d'::bytea, '', $3
		 FROM generate_series($4::bigint, $4::bigint + $5 - 1) i WHERE $2::text IS NOT NULL`,
		`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, created_at, updated_at)
		 SELECT 'dlv_0' || lpad(i::text, 26, '0'), $1, 'msg_0' || lpad(i::text, 26, '0'), $2, 'succeeded', $3, 1, $3, $3
		 FROM generate_series($4::bigint, $4::bigint + $5 - 1) i`,
		`INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, response_status, duration_us, status, trigger_type, created_at)
		 SELECT 'atmpt_0' || lpad(i::text, 26, '0'), 'dlv_0' || lpad(i::text, 26, '0'), 'msg_0' || lpad(i::text, 26, '0'), $2, $1,
		        'https://example.com/', 200, 1000, 0, 0, $3
		 FROM generate_series($4::bigint, $4::bigint + $5 - 1) i`,
	} {
		if _, err := conn.Exec(ctx, q, appID, epID, old, first, n); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `ANALYZE message; ANALYZE delivery; ANALYZE attempt`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRetention measures one cleaner batch (1,000 rows) on a table of
// retentionRows expired messages: ns/op is the time of one batch, which
// is also how long its transaction holds its row locks.
func BenchmarkRetention(b *testing.B) {
	for _, tc := range []struct {
		name string
		run  func(s herald.Store, ctx context.Context, before time.Time) (int, error)
	}{
		{"messages", func(s herald.Store, ctx context.Context, before time.Time) (int, error) {
			return s.DeleteExpiredMessages(ctx, before, 1000)
		}},
		{"attempts", func(s herald.Store, ctx context.Context, before time.Time) (int, error) {
			return s.DeleteExpiredAttempts(ctx, before, 1000)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			schema := freshSchema(b)
			s := openStore(b, schema, testKeyring(b))
			ctx := b.Context()
			appID := benchApp(b, s, 1)
			eps, err := s.ListEndpoints(ctx, appID, herald.ListOptions{Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			cfg, err := pgx.ParseConfig(testURL(b))
			if err != nil {
				b.Fatal(err)
			}
			cfg.RuntimeParams["search_path"] = schema
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			rows := retentionRows(b)
			fillExpired(ctx, b, conn, appID, eps[0].ID, 0, rows)
			next, left := rows, rows
			before := time.Now().Add(-90 * 24 * time.Hour)
			deleted := 0
			for b.Loop() {
				if left < 1000 {
					b.StopTimer()
					fillExpired(ctx, b, conn, appID, eps[0].ID, next, rows)
					next, left = next+rows, left+rows
					b.StartTimer()
				}
				n, err := tc.run(s, ctx, before)
				if err != nil || n != 1000 {
					b.Fatalf("batch deleted %d, %v; want 1000", n, err)
				}
				left -= n
				deleted += n
			}
			b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
