package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/sqlite"
)

// refusesNewerSchema runs the real binary's `herald serve` and `herald
// migrate` on dbArgs, a database a newer Herald has migrated to version
// newer (this binary knows up to known): each must exit 1 before listening,
// saying which versions are involved and what to do. schemaVersion reads the
// database's version afterwards: the refusal must leave it as it was.
func refusesNewerSchema(t *testing.T, dbArgs []string, newer, known int, schemaVersion func() int) {
	t.Helper()
	for _, command := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"},
		{"migrate"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], append(command, dbArgs...)...)
		cmd.Env = append(os.Environ(), "HERALD_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("herald %s on a newer database: %v (want exit status 1)\n%s", command[0], err, stderr.String())
		}
		msg := stderr.String()
		for _, want := range []string{
			fmt.Sprintf("the database is at schema version %d", newer),
			fmt.Sprintf("this Herald knows versions up to %d", known),
			"a newer Herald migrated it",
			"restore a backup taken before the upgrade",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("herald %s: the refusal does not say %q:\n%s", command[0], want, msg)
			}
		}
		t.Logf("herald %s: %s", command[0], strings.TrimSpace(msg))
		if strings.Contains(msg, "Herald is listening") {
			t.Errorf("herald %s listened before refusing:\n%s", command[0], msg)
		}
	}
	if v := schemaVersion(); v != newer {
		t.Errorf("schema version after the refusals = %d, want %d unchanged", v, newer)
	}
}

// TestBinaryRefusesNewerSchema: migrations are forward-only, so a binary
// started on a database that a newer Herald migrated (a version above its
// newest embedded migration) must not run on a schema it does not know. It
// exits with status 1 and a message naming both versions, on SQLite and on
// PostgreSQL, and changes nothing.
func TestBinaryRefusesNewerSchema(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "herald.db")
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"migrate", "--db", db}, &out, &errOut); code != 0 {
			t.Fatalf("migrate = %d: %s", code, errOut.String())
		}
		known, err := sqlite.LatestVersion()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		// What a newer release's migration leaves behind.
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			known+1, fmt.Sprintf("%04d_from_a_newer_release.sql", known+1), time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		refusesNewerSchema(t, []string{"--db", db}, known+1, known, func() int {
			var v int
			if err := raw.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		})
	})

	t.Run("postgres", func(t *testing.T) {
		dbURL, _ := pgFreshSchema(t)
		key := newEncryptionKey(t)
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"migrate", "--db", dbURL, "--encryption-key", key}, &out, &errOut); code != 0 {
			t.Fatalf("migrate = %d: %s", code, errOut.String())
		}
		conn := pgConnect(t, dbURL)
		schemaVersion := func() int {
			var v int
			if err := conn.QueryRow(context.Background(), `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		known := schemaVersion()
		if !strings.Contains(out.String(), fmt.Sprintf("schema version %d", known)) {
			t.Fatalf("migrate reported %q; the database is at %d", out.String(), known)
		}
		if _, err := conn.Exec(context.Background(), `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
			known+1, fmt.Sprintf("%04d_from_a_newer_release.sql", known+1)); err != nil {
			t.Fatal(err)
		}
		refusesNewerSchema(t, []string{"--db", dbURL, "--encryption-key", key}, known+1, known, schemaVersion)
	})
}
