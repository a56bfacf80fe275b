package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald/migration"
	"github.com/herald-webhooks/herald/postgres"
)

// TestOpenRefusesNewerSchema: a database that a newer Herald migrated (a
// version above every embedded migration) is refused with a clear message,
// so an old node cannot start on it during or after an upgrade.
func TestOpenRefusesNewerSchema(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	latest, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t)
	table := pgx.Identifier{schema, "schema_migrations"}.Sanitize()
	if _, err := conn.Exec(t.Context(), `INSERT INTO `+table+` (version, name) VALUES ($1, 'from_the_future.sql')`, latest+1); err != nil {
		t.Fatal(err)
	}

	_, err = postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: ring, Schema: schema, MaxConns: 2})
	var tooNew *migration.TooNewError
	if !errors.As(err, &tooNew) || tooNew.Database != latest+1 || tooNew.Known != latest {
		t.Fatalf("Open of a newer database = %v, want a TooNewError", err)
	}
	if !strings.Contains(err.Error(), "newer Herald") {
		t.Errorf("message does not say why: %v", err)
	}
	// The running store is unaffected: refusing changed nothing.
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != latest+1 {
		t.Errorf("SchemaVersion after the refusal = %d, %v", v, err)
	}
}
