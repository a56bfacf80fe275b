package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestNoArgumentsPrintsHelp: herald alone says what there is and exits 0.
func TestNoArgumentsPrintsHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, &out, &errOut); code != 0 {
		t.Fatalf("herald = %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "Usage: herald <command>") || !strings.Contains(out.String(), "serve [flags]") || errOut.Len() != 0 {
		t.Errorf("herald printed\n%s\nand on standard error %q", out.String(), errOut.String())
	}
}

// TestVersionFlag: herald --version prints what herald version prints.
func TestVersionFlag(t *testing.T) {
	var flag, cmd, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &flag, &errOut); code != 0 {
		t.Fatalf("herald --version = %d: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"version"}, &cmd, &errOut); code != 0 {
		t.Fatalf("herald version = %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(flag.String(), "herald "+Version()+" (go") || flag.String() != cmd.String() {
		t.Errorf("herald --version printed %q, herald version %q", flag.String(), cmd.String())
	}
}

// TestCompletionScripts: herald completion prints, for each shell, a
// script its shell accepts that names every command and every flag of
// herald's command line; bash is always there, zsh and fish where
// installed. internal/completion's tests complete lines with them.
func TestCompletionScripts(t *testing.T) {
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("herald"))
	if err != nil {
		t.Fatal(err)
	}
	type word struct {
		name string
		flag bool
	}
	var words []word
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if !f.Hidden {
				words = append(words, word{f.Name, true})
			}
		}
		for _, c := range n.Children {
			if c.Type == kong.CommandNode && !c.Hidden {
				words = append(words, word{c.Name, false})
				walk(c)
			}
		}
	}
	walk(parser.Model.Node)
	if len(words) < 100 {
		t.Fatalf("the command line has only %d commands and flags: %v", len(words), words)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{"completion", shell}, &out, &errOut); code != 0 {
				t.Fatalf("herald completion %s = %d: %s", shell, code, errOut.String())
			}
			for _, w := range words {
				// bash and zsh list "--flag" and "command"; fish has
				// "-l 'flag'" and "-a 'command'".
				want := w.name
				switch {
				case shell == "fish" && w.flag:
					want = "-l '" + w.name + "'"
				case shell == "fish":
					want = "-a '" + w.name + "'"
				case w.flag:
					want = "--" + w.name
				}
				if !strings.Contains(out.String(), want) {
					t.Errorf("the %s script does not name %s", shell, want)
				}
			}
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s is not installed", shell)
			}
			path := filepath.Join(t.TempDir(), "herald."+shell)
			if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n refuses the script: %v\n%s", shell, err, msg)
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"completion", "tcsh"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `"bash","zsh","fish"`) {
		t.Errorf("herald completion tcsh = %d: %s", code, errOut.String())
	}
}
