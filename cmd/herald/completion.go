package main

import (
	"github.com/alecthomas/kong"

	"github.com/herald-webhooks/herald/internal/completion"
)

// CompletionCmd prints a shell completion script made from the command
// line's own model, so it always names today's commands and flags.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash (source <(herald completion bash)), zsh (source <(herald completion zsh)) or fish (herald completion fish | source)."`
}

// Run writes the script to standard output.
func (c *CompletionCmd) Run(env *Env, kctx *kong.Context) error {
	return completion.Write(env.Stdout, c.Shell, kctx.Model)
}
