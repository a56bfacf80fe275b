package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/herald-webhooks/herald/storetest"
)

// TestMigrationIndexesExistingTags: a database of schema 12, whose
// messages kept their tags in message.tags only, is migrated by the next
// open so that ?tag= finds those messages through message_tag.
func TestMigrationIndexesExistingTags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	appID, want := storetest.SeedTagged(t, s)
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
	storetest.CheckTagged(t, s, appID, want)
}
