package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// TestMigrationNumbersExistingMessages: a database from before migration
// 0017 (polling endpoints) is migrated by the next open so that its messages
// poll in the order they were inserted; a message inserted afterwards by
// another writer (an older Herald's insert, without poll_seq) is numbered
// by the trigger after them, and the store's next message after that.
func TestMigrationNumbersExistingMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, now), Name: "a", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	// Inserted out of ID order: the poll order is the insertion order.
	var want []string
	for _, sec := range []int{30, 10, 20} {
		m := &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, now.Add(time.Duration(sec)*time.Second)), AppID: app.ID,
			EventType: "a", Payload: []byte(`{}`), CreatedAt: now.Add(time.Duration(sec) * time.Second)}
		if res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{}); err != nil || res[0].Err != nil {
			t.Fatalf("CreateMessages: %v %v", err, res[0].Err)
		}
		want = append(want, m.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to the schema before migration 0017.
	db := rawDB(t, path)
	for _, q := range []string{
		`DROP TRIGGER message_poll_seq`,
		`DROP INDEX message_app_poll`,
		`DROP TABLE poll_consumer`,
		`DROP TABLE poll_clock`,
		`ALTER TABLE message DROP COLUMN poll_seq`,
		`DELETE FROM schema_migrations WHERE version = 17`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	poll := func(from herald.PollPosition) ([]string, herald.PollPosition) {
		t.Helper()
		s := openAt(t, path, ring)
		defer s.Close()
		page, err := s.PollMessages(t.Context(), app.ID, herald.PollOptions{From: from, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range page.Messages {
			got = append(got, m.ID)
		}
		return got, page.Next
	}
	got, next := poll(herald.PollPosition{})
	if !slices.Equal(got, want) {
		t.Fatalf("after the migration polled %v, want %v", got, want)
	}

	late := herald.NewIDAt(herald.PrefixMessage, now)
	if _, err := rawDB(t, path).Exec(`INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
		VALUES (?, ?, 'a', CAST('{}' AS BLOB), '', 0)`, late, app.ID); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, ring)
	m := &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, now.Add(-time.Hour)), AppID: app.ID, EventType: "a", Payload: []byte(`{}`), CreatedAt: now}
	if res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{}); err != nil || res[0].Err != nil {
		t.Fatalf("CreateMessages: %v %v", err, res[0].Err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ = poll(next)
	if !slices.Equal(got, []string{late, m.ID}) {
		t.Fatalf("after the other writer's insert polled %v, want %v", got, []string{late, m.ID})
	}
}
