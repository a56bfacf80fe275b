package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// KeysCmd manages keys in the database itself, not through the API: API
// keys, so that an operator locked out of the API (admin token lost, every
// admin key revoked) can make a new key, and the encryption keys that seal
// endpoint secrets and headers at rest. Whoever can run it can read the
// database and its encryption key anyway.
type KeysCmd struct {
	Create           KeysCreateCmd       `cmd:"" help:"Make an API key and print it (shown this once)."`
	List             KeysListCmd         `cmd:"" help:"List the API keys (secrets are never shown)."`
	Revoke           KeysRevokeCmd       `cmd:"" help:"Revoke an API key: it stops working on every node at its next request."`
	RotateEncryption RotateEncryptionCmd `cmd:"" name:"rotate-encryption" help:"Re-seal every endpoint secret and header with the first --encryption-key, while Herald serves; --check counts what an older key still seals."`
}

// keysDB opens the database of a keys command. Unlike serve and migrate it
// never creates a SQLite database: a mistyped --db would otherwise make a
// key for a new, empty database that no server reads.
func keysDB(ctx context.Context, db *DBFlags, log LogFlags, stderr io.Writer) (store, error) {
	if !db.postgres() {
		if _, err := os.Stat(db.DB); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist: pass the --db (HERALD_DB) that herald serve uses", db.DB)
		}
	}
	logger, err := log.logger(stderr)
	if err != nil {
		return nil, err
	}
	return db.open(ctx, logger)
}

// KeysCreateCmd makes an API key.
type KeysCreateCmd struct {
	DBFlags
	Log       LogFlags      `embed:""`
	Name      string        `name:"name" required:"" help:"What the key is for or whose it is (1–256 characters), shown in lists and logs."`
	Scope     string        `name:"scope" required:"" help:"admin (every route) or app:<application ID or uid> (that application's routes only)."`
	ReadOnly  bool          `name:"read-only" help:"The key may only read."`
	ExpiresIn time.Duration `name:"expires-in" help:"The key ends this long from now (720h is 30 days); it never expires when unset."`
}

// Run stores a new key and prints its secret alone on stdout (so that
// KEY=$(herald keys create …) works) and how to use it on stderr.
func (c *KeysCreateCmd) Run(env *Env) error {
	switch {
	case c.Name == "" || len(c.Name) > 256:
		return errors.New("--name must have between 1 and 256 characters")
	case strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("--name cannot contain control characters")
	case c.ExpiresIn < 0:
		return errors.New("--expires-in must not be negative")
	}
	appRef, ok := access.ParseScope(c.Scope)
	if !ok {
		return fmt.Errorf(`--scope %q: want "admin" or "app:" followed by an application's ID or uid`, c.Scope)
	}
	s, err := keysDB(env.Ctx, &c.DBFlags, c.Log, env.Stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	now := time.Now().UTC()
	t := &herald.Token{Kind: herald.TokenKey, Name: c.Name, ReadOnly: c.ReadOnly, ExpiresAt: herald.NeverExpires}
	if c.ExpiresIn > 0 {
		t.ExpiresAt = now.Add(c.ExpiresIn)
	}
	if appRef != "" {
		app, err := s.GetApplication(env.Ctx, appRef)
		if herald.ErrorCode(err) == herald.ENOTFOUND || (err == nil && app.ID == herald.OperationalAppID) {
			return fmt.Errorf("--scope %q: no application has this ID or uid", c.Scope)
		} else if err != nil {
			return fmt.Errorf("get application: %w", err)
		}
		t.AppID = app.ID
	}
	// Issuing needs no bootstrap admin token: the zero hash matches none.
	ctx := cliAudit(env.Ctx, "keys create")
	secret, err := access.NewAuthenticator(s, [32]byte{}, func() time.Time { return now }).Issue(ctx, t, access.PrefixKey)
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	expires := "never expires"
	if access.Expires(t) {
		expires = "expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(env.Stderr, "Created API key %s %q: scope %s, %s, %s.\n", t.ID, t.Name, access.Scope(t), accessText(t), expires)
	fmt.Fprintln(env.Stderr, "This is the only time the key is shown; Herald keeps only its hash. Send it as")
	fmt.Fprintln(env.Stderr, "  Authorization: Bearer <key>")
	fmt.Fprintf(env.Stderr, "and revoke it with: herald keys revoke %s\n", t.ID)
	_, err = fmt.Fprintln(env.Stdout, secret)
	return err
}

// cliAudit returns ctx carrying the audit actor of a command's changes:
// the operating-system user who ran it (the audit log's "cli:<user>").
func cliAudit(ctx context.Context, command string) context.Context {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return herald.WithAuditActor(ctx, herald.CLIActor(name, command))
}

// accessText says whether t may change things.
func accessText(t *herald.Token) string {
	if t.ReadOnly {
		return "read-only"
	}
	return "read-write"
}

// KeysListCmd lists the API keys.
type KeysListCmd struct {
	DBFlags
	Log LogFlags `embed:""`
	All bool     `name:"all" help:"Also list keys that were revoked or expired (kept for a day after they end)."`
}

// Run prints a table of the keys, newest first.
func (c *KeysListCmd) Run(env *Env) error {
	s, err := keysDB(env.Ctx, &c.DBFlags, c.Log, env.Stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	now := time.Now()
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tACCESS\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	opts := herald.TokenListOptions{Kind: herald.TokenKey, ListOptions: herald.ListOptions{Limit: 250, Order: herald.Descending}}
	for {
		keys, err := s.ListTokens(env.Ctx, opts)
		if err != nil {
			return fmt.Errorf("list API keys: %w", err)
		}
		for _, t := range keys {
			if !c.All && !t.Active(now) {
				continue
			}
			expires := "never"
			if access.Expires(t) {
				expires = listTime(t.ExpiresAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, oneLine(t.Name), access.Scope(t), accessText(t),
				listTime(t.CreatedAt), expires, listTime(t.LastUsedAt), listTime(t.RevokedAt))
		}
		if len(keys) < opts.Limit {
			break
		}
		opts.Cursor = keys[len(keys)-1].ID
	}
	return tw.Flush()
}

// listTime formats a time of the list; "-" when unset.
func listTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine keeps a name on its line and in its column whatever it holds
// (the API and create refuse control characters; a database edited by
// hand may not).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// KeysRevokeCmd revokes an API key.
type KeysRevokeCmd struct {
	DBFlags
	Log LogFlags `embed:""`
	ID  string   `arg:"" name:"id" help:"The key's ID (tok_…), as herald keys list shows it."`
}

// Run revokes the key and the sessions opened with it.
func (c *KeysRevokeCmd) Run(env *Env) error {
	s, err := keysDB(env.Ctx, &c.DBFlags, c.Log, env.Stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	t, err := s.GetToken(env.Ctx, c.ID)
	if herald.ErrorCode(err) == herald.ENOTFOUND || (err == nil && t.Kind != herald.TokenKey) {
		return fmt.Errorf("no API key has ID %q (herald keys list --all shows them)", c.ID)
	} else if err != nil {
		return fmt.Errorf("get API key: %w", err)
	}
	if err := s.RevokeToken(cliAudit(env.Ctx, "keys revoke"), t.ID, time.Now().UTC()); err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	_, err = fmt.Fprintf(env.Stdout, "revoked API key %s %q: it and the sessions opened with it stop working at their next request\n", t.ID, oneLine(t.Name))
	return err
}
