// Package migration reads a store's embedded, numbered, up-only SQL
// migrations. Each engine applies them its own way (SQLite under its write
// lock, PostgreSQL under an advisory lock); reading and ordering them is the
// same for both.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change, numbered by the prefix of its file name
// (0001_init.sql is version 1).
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the migrations in fsys matching pattern, in version order.
// A file whose name does not start with a positive number and "_", or two
// files with one version, are errors.
func Load(fsys fs.FS, pattern string) ([]Migration, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		out = append(out, Migration{Version: version, Name: base, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// Latest returns the highest version in ms, or 0 when there is none.
func Latest(ms []Migration) int {
	latest := 0
	for _, m := range ms {
		latest = max(latest, m.Version)
	}
	return latest
}

// TooNewError says a database holds a migration newer than every migration
// this binary embeds: a newer Herald migrated it, and this one does not know
// its schema. Migrations are forward-only, so the only ways out are running
// that newer version again or restoring a backup taken before the upgrade.
type TooNewError struct {
	Database int // the highest version applied to the database
	Known    int // the highest version this binary embeds
}

func (e *TooNewError) Error() string {
	return fmt.Sprintf("the database is at schema version %d but this Herald knows versions up to %d: "+
		"a newer Herald migrated it; run that version (or newer), or restore a backup taken before the upgrade", e.Database, e.Known)
}

// CheckNotNewer returns a *TooNewError when applied, the highest version
// applied to a database, is above the latest of ms.
func CheckNotNewer(applied int, ms []Migration) error {
	if known := Latest(ms); applied > known {
		return &TooNewError{Database: applied, Known: known}
	}
	return nil
}

// CheckNotBehind returns an error when applied, the highest version applied
// to a database, is below the latest of ms: this binary's migrations have
// not run there. A newer schema passes: migrations are additive, so a node
// already running keeps serving while a rolling upgrade migrates ahead of it
// (only starting an older binary on it is refused, by CheckNotNewer).
func CheckNotBehind(applied int, ms []Migration) error {
	if latest := Latest(ms); applied < latest {
		return fmt.Errorf("schema version %d, this Herald expects %d: its migrations have not run", applied, latest)
	}
	return nil
}
