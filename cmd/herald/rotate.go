package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/herald-webhooks/herald"
)

// RotateEncryptionCmd re-seals every sealed value of the database (each
// endpoint's signing secrets and custom headers) with the first key of the
// keyring, so the older keys can then be dropped. It works on the database
// directly, beside the nodes that serve it: each batch of endpoints is one
// short write transaction that reads the rows it rewrites.
type RotateEncryptionCmd struct {
	DBFlags
	Log   LogFlags `embed:""`
	Check bool     `name:"check" help:"Change nothing: count the values still sealed by an older key (and headers an older Herald stored in plaintext), and exit 1 while there are any."`
	Batch int      `name:"batch" default:"100" help:"Endpoints re-sealed per write transaction."`
}

// Run re-seals (or, with --check, counts) and prints its progress.
func (c *RotateEncryptionCmd) Run(env *Env) error {
	if c.Batch < 1 {
		return fmt.Errorf("--batch is %d, want at least 1", c.Batch)
	}
	if !c.postgres() {
		// Opening would create a new database: there is nothing to rotate.
		if _, err := os.Stat(c.DB); err != nil {
			return fmt.Errorf("database %s: %w", c.DB, err)
		}
	}
	logger, err := c.Log.logger(env.Stderr)
	if err != nil {
		return err
	}
	store, err := c.open(env.Ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if !c.Check {
		_, err := herald.ResealAll(env.Ctx, store, c.Batch, func(p herald.ResealProgress) {
			fmt.Fprintf(env.Stdout, "re-sealed endpoints: %d of %d looked at, %d rewritten\n", p.Done, p.Total, p.Resealed)
		})
		if err != nil {
			return fmt.Errorf("re-seal with the first encryption key (every older key must still be listed after it; run again to resume): %w", err)
		}
	}
	count, err := store.CountSealed(env.Ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%d endpoints, %d sealed values: %d sealed by an older key, %d endpoints with plaintext headers\n",
		count.Endpoints, count.Values, count.Stale, count.Plaintext)
	if count.Stale > 0 || count.Plaintext > 0 {
		if c.Check {
			return errors.New("not done: run herald keys rotate-encryption (older keys are still needed)")
		}
		// A node still sealing with an older key first wrote meanwhile.
		return errors.New("not done: a node still seals with an older key first; restart every node with the new key first, then run again")
	}
	_, err = fmt.Fprintln(env.Stdout, "every value is sealed by the first key: the older keys can be dropped")
	return err
}
