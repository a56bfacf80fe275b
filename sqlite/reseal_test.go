package sqlite_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/storetest"
)

func TestRotation(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "herald.db")
		return func(t *testing.T, ring *keyring.Keyring) herald.Store { return openAt(t, path, ring) }
	})
}

// fileHolds reports which of the database's files (the database, its WAL)
// hold needle anywhere in their bytes.
func fileHolds(t *testing.T, path string, needle []byte) []string {
	t.Helper()
	var found []string
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, needle) {
			found = append(found, filepath.Base(f))
		}
	}
	return found
}

// headerEndpoint creates an application and an endpoint whose custom
// header carries value, and returns the endpoint.
func headerEndpoint(t *testing.T, s herald.Store, value string) *herald.Endpoint {
	t.Helper()
	app := &herald.Application{ID: "app_sealheaders", Name: "Sealed headers"}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	ep := &herald.Endpoint{
		ID: "ep_sealheaders", AppID: app.ID, URL: "https://receiver.example/hook", Version: 1,
		Headers: map[string]string{"Authorization": value, "X-Tenant": "acme"},
		Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}},
	}
	if err := s.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestHeadersSealedAtRest: an endpoint's custom header value (a credential
// for the customer's receiver) is nowhere in the database file or its WAL,
// before or after a checkpoint, and reads back whole.
func TestHeadersSealedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	const value = "Bearer at-rest-8f1c2d3e4b5a"
	ep := headerEndpoint(t, s, value)
	if found := fileHolds(t, path, []byte(value)); found != nil {
		t.Errorf("before a checkpoint, %v hold the header value in plaintext", found)
	}
	got, err := s.GetEndpoint(t.Context(), ep.AppID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ep.Headers, got.Headers); diff != "" {
		t.Errorf("headers read back (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if found := fileHolds(t, path, []byte(value)); found != nil {
		t.Errorf("after close, %v hold the header value in plaintext", found)
	}
}

// TestMigrationSealsPlaintextHeaders: a database of schema 9, whose
// endpoints' headers are plaintext, is migrated by the next open to sealed
// headers, with no plaintext left in the file or the WAL, and reads the
// same headers back.
func TestMigrationSealsPlaintextHeaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s := openAt(t, path, ring)
	const value = "Bearer migrated-5e6f7a8b9c0d"
	ep := headerEndpoint(t, s, value)
	// Many more endpoints, so the conversion rewrites several pages.
	for i := range 300 {
		more := *ep
		more.ID = fmt.Sprintf("ep_more%03d", i)
		more.Headers = map[string]string{"Authorization": value, "X-N": fmt.Sprint(i)}
		if err := s.CreateEndpoint(t.Context(), &more); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to schema 9 as an older Herald left it: headers in plaintext.
	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE endpoint SET headers = json_object('Authorization', '` + value + `', 'X-Tenant', 'acme'), sealed_headers = NULL`,
		`ALTER TABLE endpoint DROP COLUMN sealed_headers`,
		`DELETE FROM schema_migrations WHERE version = 10`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if found := fileHolds(t, path, []byte(value)); found == nil {
		t.Fatal("the schema-9 database does not hold the plaintext header: the test proves nothing")
	}

	s = openAt(t, path, ring)
	if v, err := s.SchemaVersion(t.Context()); err != nil || v < 10 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	if found := fileHolds(t, path, []byte(value)); found != nil {
		t.Errorf("after the migration, %v hold the header value in plaintext", found)
	}
	got, err := s.GetEndpoint(t.Context(), ep.AppID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ep.Headers, got.Headers); diff != "" {
		t.Errorf("headers after the migration (-want +got):\n%s", diff)
	}
	c, err := s.CountSealed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := (herald.SealCount{Endpoints: 301, Values: 602}); c != want {
		t.Errorf("CountSealed = %+v, want %+v", c, want)
	}
}
