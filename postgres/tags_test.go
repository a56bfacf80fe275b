package postgres_test

import (
	"github.com/jackc/pgx/v5"
	"testing"

	"github.com/herald-webhooks/herald/storetest"
)

// TestMigrationIndexesExistingTags: a database of schema 11, whose
// messages kept their tags in message.tags only, is migrated by the next
// open so that ?tag= finds those messages through message_tag.
func TestMigrationIndexesExistingTags(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	appID, want := storetest.SeedTagged(t, s)
	s.Close()

	// Back to the schema before 0012: no message_tag, no deliver_at.
	conn := connect(t)
	for _, q := range []string{
		`DROP TABLE ` + pgx.Identifier{schema, "message_tag"}.Sanitize(),
		`ALTER TABLE ` + pgx.Identifier{schema, "message"}.Sanitize() + ` DROP COLUMN deliver_at`,
		`DELETE FROM ` + pgx.Identifier{schema, "schema_migrations"}.Sanitize() + ` WHERE version = 12`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s = openStore(t, schema, ring)
	storetest.CheckTagged(t, s, appID, want)
}
