package main

import "fmt"

// MigrateCmd applies pending migrations; serve does the same at start, so
// this is for operators who migrate before rolling out new nodes.
type MigrateCmd struct {
	DBFlags
	Log LogFlags `embed:""`
}

// Run opens the database (which migrates it) and reports the schema
// version. On SQLite it owns the database meanwhile, so it is refused while
// a server runs (which migrated the file at its start).
func (c *MigrateCmd) Run(env *Env) error {
	logger, err := c.Log.logger(env.Stderr)
	if err != nil {
		return err
	}
	store, err := c.own(env.Ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := store.SchemaVersion(env.Ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "database %s is at schema version %d\n", c.DB, v)
	return err
}
