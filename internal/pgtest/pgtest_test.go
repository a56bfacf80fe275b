package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestFreshSchema: each call names another schema, and the schema (created
// here as a store would) is gone once its test has ended.
func TestFreshSchema(t *testing.T) {
	url := URL(t)
	var first string
	t.Run("uses", func(t *testing.T) {
		u, schema := FreshSchema(t)
		if _, other := FreshSchema(t); other == schema {
			t.Fatalf("two fresh schemas share the name %s", schema)
		}
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		first = schema
	})
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, first).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s is still there after its test ended", first)
	}
}
