// Package completion writes shell completion scripts for a kong command
// line: bash, zsh and fish. The scripts are static, made from kong's model
// of the commands and flags, so completing runs no Herald process.
package completion

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// Shells are the shells Write knows.
var Shells = []string{"bash", "zsh", "fish"}

// Write writes the completion script of app for shell.
func Write(w io.Writer, shell string, app *kong.Application) error {
	name := app.Name
	if !safeWord.MatchString(name) {
		return fmt.Errorf("completion: program name %q is not a plain word", name)
	}
	cmds := commands(app.Node, nil)
	var b strings.Builder
	switch shell {
	case "bash":
		writeBash(&b, name, cmds)
	case "zsh":
		writeZsh(&b, name, cmds)
	case "fish":
		writeFish(&b, name, cmds)
	default:
		return fmt.Errorf("completion: unknown shell %q: want one of %s", shell, strings.Join(Shells, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// safeWord is what names of programs, commands, flags and enum values
// must be to go into a script unquoted-safe (they are quoted anyway).
var safeWord = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// command is one node of the command tree with what completes after it.
type command struct {
	path  []string // the words from the program name on, without it
	help  string
	subs  []command
	flags []flag
	args  []string // the values its positional arguments take, when they say
}

// flag is one flag as a shell sees it.
type flag struct {
	long   string
	short  rune
	help   string
	valued bool     // takes a value (the next word, or after "=")
	enum   []string // the values it takes, when it says
}

// commands returns the command n at path and every command under it.
func commands(n *kong.Node, path []string) command {
	c := command{path: path, help: summary(n.Help)}
	for _, group := range n.AllFlags(true) {
		for _, f := range group {
			if !safeWord.MatchString(f.Name) {
				continue
			}
			fl := flag{long: f.Name, short: f.Short, help: summary(f.Help), valued: !f.IsBool() && !f.IsCounter()}
			if f.Enum != "" {
				for _, v := range f.EnumSlice() {
					if safeWord.MatchString(v) {
						fl.enum = append(fl.enum, v)
					}
				}
			}
			c.flags = append(c.flags, fl)
		}
	}
	for _, arg := range n.Positional {
		for _, v := range arg.EnumSlice() {
			if arg.Enum != "" && safeWord.MatchString(v) {
				c.args = append(c.args, v)
			}
		}
	}
	for _, child := range n.Children {
		if child.Type != kong.CommandNode || child.Hidden || !safeWord.MatchString(child.Name) {
			continue
		}
		c.subs = append(c.subs, commands(child, append(slices.Clip(path), child.Name)))
	}
	return c
}

// summary is the first sentence of a help text, on one line.
func summary(help string) string {
	s := strings.Join(strings.Fields(help), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}

// walk calls fn for c and every command under it, parents first.
func (c command) walk(fn func(command)) {
	fn(c)
	for _, s := range c.subs {
		s.walk(fn)
	}
}

// quote single-quotes s for bash and zsh, where every character is
// literal inside single quotes except the quote itself.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, `'`, `'\''`) + "'"
}

// fishQuote single-quotes s for fish, where \' and \\ are the escapes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// writeBash writes a bash script: three functions that answer from the
// command path (the subcommands typed so far) and one that completes.
func writeBash(b *strings.Builder, name string, root command) {
	fn := "_" + strings.NewReplacer("-", "_", ".", "_").Replace(name)
	fmt.Fprintf(b, "# bash completion for %s; made by `%s completion bash`.\n", name, name)
	fmt.Fprintf(b, "# Load it with: source <(%s completion bash)\n\n", name)

	b.WriteString("# The subcommands of command $1, or the values its arguments take.\n")
	fmt.Fprintf(b, "%s_commands() {\n\tcase \"$1\" in\n", fn)
	root.walk(func(c command) {
		words := c.args
		for _, s := range c.subs {
			words = append(words, s.path[len(s.path)-1])
		}
		if len(words) == 0 {
			return
		}
		fmt.Fprintf(b, "\t%s) echo %s ;;\n", quote(strings.Join(c.path, " ")), quote(strings.Join(words, " ")))
	})
	b.WriteString("\tesac\n}\n\n")

	fmt.Fprintf(b, "%s_flags() {\n\tcase \"$1\" in\n", fn)
	root.walk(func(c command) {
		var words []string
		for _, f := range c.flags {
			words = append(words, "--"+f.long)
			if f.short != 0 {
				words = append(words, "-"+string(f.short))
			}
		}
		fmt.Fprintf(b, "\t%s) echo %s ;;\n", quote(strings.Join(c.path, " ")), quote(strings.Join(words, " ")))
	})
	b.WriteString("\tesac\n}\n\n")

	b.WriteString("# The values of flag $2 of command $1; fails when it takes none.\n")
	fmt.Fprintf(b, "%s_values() {\n\tcase \"$1|$2\" in\n", fn)
	root.walk(func(c command) {
		for _, f := range c.flags {
			if !f.valued {
				continue
			}
			pats := []string{quote(strings.Join(c.path, " ") + "|--" + f.long)}
			if f.short != 0 {
				pats = append(pats, quote(strings.Join(c.path, " ")+"|-"+string(f.short)))
			}
			fmt.Fprintf(b, "\t%s) echo %s ;;\n", strings.Join(pats, "|"), quote(strings.Join(f.enum, " ")))
		}
	})
	b.WriteString("\t*) return 1 ;;\n\tesac\n}\n\n")

	fmt.Fprintf(b, `%[1]s() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmdpath='' word sub values i
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		for sub in $(%[1]s_commands "$cmdpath"); do
			if [[ $word == "$sub" ]]; then
				cmdpath=${cmdpath:+$cmdpath }$word
				break
			fi
		done
	done
	# "--flag=value": bash splits the word at "=".
	if [[ $cur == = ]]; then
		cur=''
	elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	if [[ $prev == -* ]] && values=$(%[1]s_values "$cmdpath" "$prev"); then
		if [[ -n $values ]]; then
			COMPREPLY=($(compgen -W "$values" -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(%[1]s_flags "$cmdpath")" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "$(%[1]s_commands "$cmdpath")" -- "$cur"))
		if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
	fi
	return 0
}

complete -F %[1]s %[2]s
`, fn, name)
}

// writeZsh writes the bash script behind zsh's bash completion layer
// (bashcompinit), which runs it unchanged.
func writeZsh(b *strings.Builder, name string, root command) {
	fmt.Fprintf(b, "# zsh completion for %s; made by `%s completion zsh`.\n", name, name)
	fmt.Fprintf(b, "# Load it with: source <(%s completion zsh)\n", name)
	b.WriteString("(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }\n")
	b.WriteString("autoload -U +X bashcompinit && bashcompinit\n\n")
	var bash strings.Builder
	writeBash(&bash, name, root)
	_, rest, _ := strings.Cut(bash.String(), "\n\n") // the bash header
	b.WriteString(rest)
}

// writeFish writes one fish complete line per command and flag, each
// conditioned on the command path typed so far.
func writeFish(b *strings.Builder, name string, root command) {
	fmt.Fprintf(b, "# fish completion for %s; made by `%s completion fish`.\n", name, name)
	fmt.Fprintf(b, "# Load it with: %s completion fish | source\n\n", name)
	fn := "__" + strings.NewReplacer("-", "_", ".", "_").Replace(name)
	b.WriteString("# The command path typed so far: the words that name commands.\n")
	fmt.Fprintf(b, "function %s_path\n\tset -l path ''\n\tfor word in (commandline -opc)[2..-1]\n\t\tswitch (string trim -- \"$path $word\")\n", fn)
	root.walk(func(c command) {
		if len(c.path) == 0 {
			return
		}
		p := fishQuote(strings.Join(c.path, " "))
		fmt.Fprintf(b, "\t\t\tcase %s\n\t\t\t\tset path %s\n", p, p)
	})
	b.WriteString("\t\tend\n\tend\n\techo $path\nend\n\n")
	b.WriteString("# Whether the command path typed so far is the arguments.\n")
	fmt.Fprintf(b, "function %s_at\n\tset -l path (%s_path)\n\ttest \"$path\" = \"$argv\"\nend\n\n", fn, fn)
	fmt.Fprintf(b, "complete -c %s -f\n", name)
	root.walk(func(c command) {
		cond := "-n " + fishQuote(strings.TrimSpace(fn+"_at "+strings.Join(c.path, " ")))
		for _, s := range c.subs {
			fmt.Fprintf(b, "complete -c %s %s -a %s -d %s\n", name, cond, fishQuote(s.path[len(s.path)-1]), fishQuote(s.help))
		}
		if len(c.args) > 0 {
			fmt.Fprintf(b, "complete -c %s %s -a %s\n", name, cond, fishQuote(strings.Join(c.args, " ")))
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c %s %s -l %s", name, cond, fishQuote(f.long))
			if f.short != 0 {
				line += " -s " + fishQuote(string(f.short))
			}
			switch {
			case len(f.enum) > 0:
				line += " -x -a " + fishQuote(strings.Join(f.enum, " "))
			case f.valued:
				line += " -r -F"
			}
			fmt.Fprintf(b, "%s -d %s\n", line, fishQuote(f.help))
		}
	})
}
