package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/storetest"
)

// TestMigrationIndexesExistingTags: a database of schema 11, whose
// messages kept their tags in message.tags only, is migrated by the next
// open so that ?tag= finds those messages through message_tag; a message
// an older node of the rolling upgrade inserts afterwards (without the new
// columns) is found too.
func TestMigrationIndexesExistingTags(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	appID, want := storetest.SeedTagged(t, s)
	s.Close()

	// Back to the schema before 0012: no message_tag (nor its trigger), no
	// deliver_at.
	conn := connect(t)
	for _, q := range []string{
		`DROP FUNCTION ` + pgx.Identifier{schema, "message_tag_insert"}.Sanitize() + `() CASCADE`, // and its trigger
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
	late := herald.NewIDAt(herald.PrefixMessage, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	if _, err := conn.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{schema, "message"}.Sanitize()+`
		(id, app_id, event_type, payload, content_type, tags, created_at) VALUES ($1, $2, 'a', '{}', '', '{even}', now())`, late, appID); err != nil {
		t.Fatal(err)
	}
	storetest.CheckTagged(t, s, appID, append(want, late))
}
