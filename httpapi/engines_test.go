package httpapi

import (
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/postgres"
)

// postgresNodes opens n stores ("nodes", each with its own connection
// pool) on one fresh schema of the PostgreSQL test database, closed when
// the test ends. It skips the test when HERALD_TEST_POSTGRES_URL is unset.
func postgresNodes(t *testing.T, n int) []herald.Store {
	t.Helper()
	url, schema := pgtest.FreshSchema(t)
	ring := testkeys.Ring(t) // every node seals with the same keys
	stores := make([]herald.Store, n)
	for i := range stores {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: url, Keyring: ring, Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	return stores
}

// onEachEngine runs test against a test server on SQLite and one on
// PostgreSQL (skipped when HERALD_TEST_POSTGRES_URL is unset).
func onEachEngine(t *testing.T, test func(t *testing.T, ts *testServer), opts ...func(*Config)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newTestServer(t, opts...)) })
	t.Run("postgres", func(t *testing.T) { test(t, newTestServerOn(t, postgresNodes(t, 1)[0], opts...)) })
}
