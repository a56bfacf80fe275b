package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/sqlite"
)

// fillExpired inserts n finished messages created 100 days ago, numbered
// from first, each with a succeeded delivery and one attempt, in one
// statement per table. The IDs start with "0", below every real KSUID.
func fillExpired(b *testing.B, s *sqlite.Store, appID, epID string, first, n int) {
	b.Helper()
	old := time.Now().Add(-100 * 24 * time.Hour).UnixMicro()
	series := fmt.Sprintf(`WITH RECURSIVE g(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM g WHERE i < %d) `, first, first+n-1)
	num := `printf('%026d', i)`
	for _, q := range []string{
		series + `INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
		 SELECT 'msg_0' || ` + num + fmt.Sprintf(`, '%s', 'user.created', x'7b7d', '', %d FROM g`, appID, old),
		series + `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, created_at, updated_at)
		 SELECT 'dlv_0' || ` + num + `, '` + appID + `', 'msg_0' || ` + num + fmt.Sprintf(`, '%s', 'succeeded', %d, 1, %d, %d FROM g`, epID, old, old, old),
		series + `INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, response_status, duration_us, status, trigger, created_at)
		 SELECT 'atmpt_0' || ` + num + `, 'dlv_0' || ` + num + `, 'msg_0' || ` + num + fmt.Sprintf(`, '%s', '%s', 'https://example.com/', 200, 1000, 0, 0, %d FROM g`, epID, appID, old),
	} {
		if err := sqlite.ExecOnWriter(b.Context(), s, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRetention measures one cleaner batch (1,000 rows) on a table of
// 100,000 expired messages, synchronous=FULL: ns/op is the time of one
// batch, which is how long it holds SQLite's one writer (ingest and
// dispatch wait that long at most).
func BenchmarkRetention(b *testing.B) {
	const rows = 100_000
	for _, tc := range []struct {
		name string
		run  func(s *sqlite.Store, before time.Time) (int, error)
	}{
		{"messages", func(s *sqlite.Store, before time.Time) (int, error) {
			return s.DeleteExpiredMessages(b.Context(), before, 1000)
		}},
		{"attempts", func(s *sqlite.Store, before time.Time) (int, error) {
			return s.DeleteExpiredAttempts(b.Context(), before, 1000)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, f := openBenchStore(b)
			fillExpired(b, s, f.app.ID, f.ep.ID, 0, rows)
			next, left := rows, rows
			before := time.Now().Add(-90 * 24 * time.Hour)
			deleted := 0
			for b.Loop() {
				if left < 1000 {
					b.StopTimer()
					fillExpired(b, s, f.app.ID, f.ep.ID, next, rows)
					next, left = next+rows, left+rows
					b.StartTimer()
				}
				n, err := tc.run(s, before)
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
