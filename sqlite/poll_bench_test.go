package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// BenchmarkPoll measures a polling endpoint's reads on a store of
// 1,000,000 messages, half of them the polled application's (interleaved
// with another's), 1 KiB payloads: a page of 50 from the middle, a page
// whose filter keeps nothing (it reads its whole window of 1,000 rows),
// and the start position at a time (seek). ns/op is one call.
func BenchmarkPoll(b *testing.B) {
	const rows = 1_000_000
	s, f := openBenchStore(b)
	other := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "other", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateApplication(b.Context(), other); err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	series := fmt.Sprintf(`WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d) `, rows)
	q := series + fmt.Sprintf(`INSERT INTO message (id, app_id, event_type, payload, content_type, created_at, poll_seq)
		SELECT 'msg_0' || printf('%%026d', i), CASE WHEN i %% 2 = 0 THEN '%s' ELSE '%s' END, 'user.created', randomblob(1024), '',
			%d + i * 1000, 1000 + i FROM g`, f.app.ID, other.ID, start.UnixMicro())
	if err := sqlite.ExecOnWriter(b.Context(), s, q); err != nil {
		b.Fatal(err)
	}
	if err := sqlite.ExecOnWriter(b.Context(), s, `UPDATE poll_clock SET seq = 2000000; ANALYZE`); err != nil {
		b.Fatal(err)
	}
	mid := herald.PollPosition{Seq: 1000 + rows/2}
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			page, err := s.PollMessages(b.Context(), f.app.ID, herald.PollOptions{From: mid, Limit: 50})
			if err != nil || len(page.Messages) != 50 {
				b.Fatalf("%d messages, %v", len(page.Messages), err)
			}
		}
	})
	b.Run("filtered-out-window", func(b *testing.B) {
		for b.Loop() {
			page, err := s.PollMessages(b.Context(), f.app.ID, herald.PollOptions{From: mid, Limit: 50, Filter: herald.PollFilter{EventType: "rare"}})
			if err != nil || len(page.Messages) != 0 || page.Done {
				b.Fatalf("%d messages, done %v, %v", len(page.Messages), page.Done, err)
			}
		}
	})
	b.Run("start-at-time", func(b *testing.B) {
		at := start.Add(rows / 2 * time.Millisecond)
		for b.Loop() {
			if _, err := s.PollStart(b.Context(), f.app.ID, at); err != nil {
				b.Fatal(err)
			}
		}
	})
}
