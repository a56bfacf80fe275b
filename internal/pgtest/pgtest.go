// Package pgtest gives tests of any package a PostgreSQL schema of their
// own on the database named by HERALD_TEST_POSTGRES_URL, so packages tested
// in parallel never see each other's tables.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test database's URL.
const EnvURL = "HERALD_TEST_POSTGRES_URL"

// URL returns the test database's URL, or skips the test when EnvURL is
// not set.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skip(EnvURL + " is not set: skipping PostgreSQL tests")
	}
	return url
}

// FreshSchema returns the test database's URL and the name of a schema no
// other test uses, dropped with everything in it when the test ends. It
// does not create the schema (stores create theirs on Open). It skips the
// test when EnvURL is not set.
func FreshSchema(t testing.TB) (url, schema string) {
	t.Helper()
	url = URL(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema = "herald_t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return url, schema
}
