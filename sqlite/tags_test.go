package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

// TestMigrationIndexesExistingTags: a database of schema 12, whose
// messages kept their tags in message.tags only, is migrated by the next
// open so that ?tag= finds those messages through message_tag.
func TestMigrationIndexesExistingTags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, now), Name: "tags", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	var msgs []*herald.Message
	var want []string
	for i := range 5 {
		at := now.Add(time.Duration(i) * time.Second)
		m := &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: app.ID, EventType: "a", Payload: []byte(`{}`), CreatedAt: at}
		if i%2 == 0 {
			m.Tags = []string{"even", "x"}
			want = append(want, m.ID)
		}
		msgs = append(msgs, m)
	}
	if _, err := s.CreateMessages(t.Context(), msgs, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to schema 12: no message_tag, no deliver_at.
	db := rawDB(t, path)
	for _, q := range []string{
		`DROP TABLE message_tag`,
		`ALTER TABLE message DROP COLUMN deliver_at`,
		`DELETE FROM schema_migrations WHERE version = 13`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, ring)
	got, err := s.ListMessages(t.Context(), app.ID, herald.MessageListOptions{Tag: "even", ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("messages tagged even after the migration (-want +got):\n%s", diff)
	}
}
