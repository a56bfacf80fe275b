package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/storetest"
)

// TestMigrationIndexesExistingTags: a database of schema 12, whose
// messages kept their tags in message.tags only, is migrated by the next
// open so that ?tag= finds those messages through message_tag; a message
// inserted afterwards by another writer (an older Herald's insert, without
// the new columns) is found too.
func TestMigrationIndexesExistingTags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	appID, want := storetest.SeedTagged(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to schema 12: no message_tag (nor its trigger), no deliver_at.
	db := rawDB(t, path)
	for _, q := range []string{
		`DROP TRIGGER message_tag_insert`,
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
	storetest.CheckTagged(t, s, appID, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	late := herald.NewIDAt(herald.PrefixMessage, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	if _, err := rawDB(t, path).Exec(`INSERT INTO message (id, app_id, event_type, payload, content_type, tags, created_at)
		VALUES (?, ?, 'a', CAST('{}' AS BLOB), '', '["even"]', 0)`, late, appID); err != nil {
		t.Fatal(err)
	}
	storetest.CheckTagged(t, openAt(t, path, ring), appID, append(want, late))
}
