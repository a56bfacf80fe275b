// Command herald is the Herald webhook delivery service: one binary that
// serves the API, stores messages and delivers them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// CLI is the command line: one field per command, each in its own file.
type CLI struct {
	Serve       ServeCmd       `cmd:"" help:"Run the Herald server (API and delivery)."`
	Migrate     MigrateCmd     `cmd:"" help:"Apply pending database migrations and exit."`
	Send        SendCmd        `cmd:"" help:"Post a message to a Herald server."`
	Listen      ListenCmd      `cmd:"" help:"Receive webhooks locally, verify their signatures and print them."`
	Bench       BenchCmd       `cmd:"" help:"Load-test Herald end to end against loopback receivers."`
	Backup      BackupCmd      `cmd:"" help:"Copy the SQLite database consistently while Herald serves it."`
	Restore     RestoreCmd     `cmd:"" help:"Check a backup and install it as the SQLite database."`
	Keys        KeysCmd        `cmd:"" help:"API keys (create, list, revoke) and encryption-key rotation, on the database directly (works when locked out of the API)."`
	Nodes       NodesCmd       `cmd:"" help:"List the nodes serving a PostgreSQL database: version, host, start, last heartbeat, alive or taken over."`
	Healthcheck HealthcheckCmd `cmd:"" help:"GET a Herald health URL; exit 0 when it answers 200 (container health checks)."`
	Version     VersionCmd     `cmd:"" help:"Print the version and exit."`
	Completion  CompletionCmd  `cmd:"" help:"Print a shell completion script: bash, zsh or fish."`

	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`
}

// Env is what every command gets: where to write, and a context that ends
// on SIGINT or SIGTERM.
type Env struct {
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args and runs the chosen command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exitCode := -1
	parser, err := kong.New(&cli,
		kong.Name("herald"),
		kong.Description("Herald: self-hosted, Svix-compatible webhook delivery."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
		kong.Vars{"version": versionLine()},
	)
	if err != nil {
		fmt.Fprintln(stderr, "herald:", err)
		return 2
	}
	if len(args) == 0 {
		// Asked for nothing: say what there is (exit 0), not that a
		// command is missing.
		args = []string{"--help"}
	}
	kctx, err := parser.Parse(args)
	if exitCode >= 0 { // --help and friends
		return exitCode
	}
	if err != nil {
		fmt.Fprintln(stderr, "herald:", err)
		return 2
	}
	if err := kctx.Run(&Env{Ctx: ctx, Stdout: stdout, Stderr: stderr}); err != nil {
		fmt.Fprintln(stderr, "herald:", err)
		return 1
	}
	return 0
}
