package postgres_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/storetest"
)

func TestRotation(t *testing.T) {
	testURL(t)
	storetest.RunRotation(t, func(t *testing.T) storetest.Opener {
		schema := freshSchema(t)
		return func(t *testing.T, ring *keyring.Keyring) herald.Store { return openStore(t, schema, ring) }
	})
}

// rowsHolding counts the endpoint rows whose text form (every column; a
// bytea column as hex) holds needle.
func rowsHolding(t *testing.T, conn *pgx.Conn, schema, needle string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, "endpoint"}.Sanitize()+` e
		WHERE strpos(e::text, $1) > 0`, needle).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigrationSealsPlaintextHeaders: a schema at version 7, whose
// endpoints' headers are plaintext jsonb, is migrated by the next node to
// sealed headers: no row holds the value any more, in any column, and the
// headers read back the same.
func TestMigrationSealsPlaintextHeaders(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	const value = "Bearer migrated-pg-1a2b3c4d"
	app := &herald.Application{ID: "app_sealheaders", Name: "Sealed headers"}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	var eps []*herald.Endpoint
	for i := range 20 {
		ep := &herald.Endpoint{
			ID: fmt.Sprintf("ep_sealheaders%02d", i), AppID: app.ID, URL: "https://receiver.example/hook", Version: 1,
			Headers: map[string]string{"Authorization": value, "X-N": fmt.Sprint(i)},
			Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}},
		}
		if err := s.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	conn := connect(t)
	if n := rowsHolding(t, conn, schema, value); n != 0 {
		t.Fatalf("%d endpoint rows hold the header value in plaintext", n)
	}
	s.Close()

	// Back to schema 7 as an older Herald left it: headers in plaintext.
	table := pgx.Identifier{schema, "endpoint"}.Sanitize()
	for _, q := range []string{
		`UPDATE ` + table + ` SET headers = jsonb_build_object('Authorization', '` + value + `', 'X-N', substr(id, 15)::int::text)`,
		`ALTER TABLE ` + table + ` DROP COLUMN sealed_headers`,
		`DELETE FROM ` + pgx.Identifier{schema, "schema_migrations"}.Sanitize() + ` WHERE version = 8`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if n := rowsHolding(t, conn, schema, value); n != len(eps) {
		t.Fatalf("the schema-7 table has %d rows with the plaintext header, want %d: the test proves nothing", n, len(eps))
	}

	s = openStore(t, schema, ring)
	if n := rowsHolding(t, conn, schema, value); n != 0 {
		t.Errorf("after the migration, %d endpoint rows hold the header value in plaintext", n)
	}
	for _, ep := range eps {
		got, err := s.GetEndpoint(t.Context(), app.ID, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ep.Headers, got.Headers); diff != "" {
			t.Errorf("headers of %s after the migration (-want +got):\n%s", ep.ID, diff)
		}
	}
	c, err := s.CountSealed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (herald.SealCount{Endpoints: len(eps), Values: 2 * len(eps)}); c != want {
		t.Errorf("CountSealed = %+v, want %+v", c, want)
	}
}

// TestOlderNodeHeadersSealedByRotation: headers an older node writes in
// plaintext during a rolling upgrade are read in preference to the sealed
// ones, counted by CountSealed, and sealed by the next rotation.
func TestOlderNodeHeadersSealedByRotation(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	s := openStore(t, schema, ring)
	app := &herald.Application{ID: "app_oldnode", Name: "Older node"}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	ep := &herald.Endpoint{
		ID: "ep_oldnode", AppID: app.ID, URL: "https://receiver.example/hook", Version: 1,
		Headers: map[string]string{"Authorization": "Bearer before"},
		Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}},
	}
	if err := s.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	const value = "Bearer written-by-an-older-node"
	conn := connect(t)
	if _, err := conn.Exec(t.Context(), `UPDATE `+pgx.Identifier{schema, "endpoint"}.Sanitize()+
		` SET headers = jsonb_build_object('Authorization', $1::text)`, value); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Authorization": value}
	check := func(when string) {
		t.Helper()
		got, err := s.GetEndpoint(t.Context(), app.ID, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Headers); diff != "" {
			t.Errorf("headers %s (-want +got):\n%s", when, diff)
		}
	}
	check("written by the older node")
	c, err := s.CountSealed(t.Context())
	if err != nil || c.Plaintext != 1 {
		t.Fatalf("CountSealed = %+v, %v; want one plaintext", c, err)
	}
	p, err := herald.ResealAll(t.Context(), s, 10, nil)
	if err != nil || p.Resealed != 1 {
		t.Fatalf("ResealAll = %+v, %v; want one resealed", p, err)
	}
	if n := rowsHolding(t, conn, schema, value); n != 0 {
		t.Errorf("after the rotation, %d rows hold the older node's header in plaintext", n)
	}
	check("after the rotation")
}

// TestBrokerPasswordNeverInClear: no endpoint row holds a broker URL's
// password in any column; the URL reads back whole.
func TestBrokerPasswordNeverInClear(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	const password = "pw-postgres-4b8d2e6a"
	app := &herald.Application{ID: "app_brokerpw", Name: "Broker password"}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	ep := &herald.Endpoint{
		ID: "ep_brokerpw", AppID: app.ID, URL: "redis://default:" + password + "@redis.example.com:6379/0?stream=events", Version: 1,
		Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}},
	}
	if err := s.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	if n := rowsHolding(t, connect(t), schema, password); n != 0 {
		t.Fatalf("%d endpoint rows hold the broker password in clear", n)
	}
	if n := rowsHolding(t, connect(t), schema, "redis://default:xxxxx@redis.example.com:6379/0?stream=events"); n != 1 {
		t.Fatalf("%d endpoint rows hold the masked URL, want 1", n)
	}
	got, err := s.GetEndpoint(t.Context(), app.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != ep.URL {
		t.Fatalf("URL read back = %q, want %q", got.URL, ep.URL)
	}
}
