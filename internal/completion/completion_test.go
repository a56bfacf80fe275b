package completion

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// testCLI has what a completion must know about: nested commands, an enum
// flag, a boolean one, a short one, a valued one, a positional argument
// with values, and a hidden command.
type testCLI struct {
	Verbose bool `short:"v" help:"Say more. Much more."`
	Serve   struct {
		Format string `enum:"json,text" default:"json" help:"Log format."`
		DB     string `name:"db" help:"The database's file."`
	} `cmd:"" help:"Run it."`
	Keys struct {
		Create struct {
			Scope string `help:"The key's scope."`
		} `cmd:"" help:"Make a key."`
		Revoke struct {
			ID string `arg:""`
		} `cmd:"" help:"Revoke a key."`
	} `cmd:"" help:"API keys."`
	Completion struct {
		Shell string `arg:"" enum:"bash,zsh,fish"`
	} `cmd:"" help:"Print a script."`
	Secret struct{} `cmd:"" hidden:""`
}

func testApp(t *testing.T, name string) *kong.Application {
	t.Helper()
	var cli testCLI
	p, err := kong.New(&cli, kong.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	return p.Model
}

func script(t *testing.T, shell string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, shell, testApp(t, "tool")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tool."+shell)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// completions are what each shell must offer after a command line; the
// last word is the one being completed.
var completions = []struct {
	line string
	want []string
}{
	{"tool ", []string{"serve", "keys", "completion"}},
	{"tool ke", []string{"keys"}},
	{"tool keys ", []string{"create", "revoke"}},
	{"tool keys create --sc", []string{"--scope"}},
	{"tool serve --fo", []string{"--format"}},
	{"tool serve --format ", []string{"json", "text"}},
	{"tool serve --format j", []string{"json"}},
	{"tool -v serve --format t", []string{"text"}},
	{"tool completion ", []string{"bash", "zsh", "fish"}},
	{"tool completion z", []string{"zsh"}},
}

// TestBash runs the bash script in bash and completes each line.
func TestBash(t *testing.T) {
	path := script(t, "bash")
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for _, c := range completions {
		drive := "source " + quote(path) + "\n" + compWords(c.line) + "_tool\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "-c", drive).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.line, err, out)
		}
		if got := strings.Fields(string(out)); !sameSet(got, c.want) {
			t.Errorf("bash %q offers %q, want %q", c.line, got, c.want)
		}
	}
	// Flags that take a value complete file names; the hidden command is
	// never offered.
	out, err := exec.Command("bash", "-c", "source "+quote(path)+"\n_tool_values serve --db && echo valued\n_tool_values '' --verbose || echo bool\n_tool_commands ''").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valued") || !strings.Contains(string(out), "bool") || strings.Contains(string(out), "secret") {
		t.Errorf("values and commands: %v\n%s", err, out)
	}
}

// TestFish completes each line in fish, where it is installed.
func TestFish(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Skip("fish is not installed")
	}
	path := script(t, "fish")
	if out, err := exec.Command("fish", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("fish -n: %v\n%s", err, out)
	}
	for _, c := range completions {
		out, err := exec.Command("fish", "--no-config", "-c", "source "+fishQuote(path)+"; complete -C "+fishQuote(c.line)).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.line, err, out)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			word, _, _ := strings.Cut(line, "\t")
			if word != "" {
				got = append(got, word)
			}
		}
		if !sameSet(got, c.want) {
			t.Errorf("fish %q offers %q, want %q", c.line, got, c.want)
		}
	}
}

// TestZsh loads the zsh script in zsh, where it is installed, and asks it
// through bashcompinit's compgen as zsh's completion would (zsh then keeps
// the candidates that start with the word typed).
func TestZsh(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed")
	}
	path := script(t, "zsh")
	if out, err := exec.Command("zsh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	for _, c := range completions {
		words := strings.Split(c.line, " ")
		drive := "source " + quote(path) + "\n[[ ${_comps[tool]} == *_tool* ]] || { print unregistered; exit 1 }\n" +
			compWords(c.line) + "compgen -F _tool -- " + quote(words[len(words)-1]) + "\n"
		cmd := exec.Command("zsh", "-f", "-c", drive)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.line, err, out)
		}
		var got []string
		for _, w := range strings.Fields(string(out)) {
			if strings.HasPrefix(w, words[len(words)-1]) {
				got = append(got, w)
			}
		}
		if !sameSet(got, c.want) {
			t.Errorf("zsh %q offers %q, want %q", c.line, got, c.want)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "tcsh", testApp(t, "tool")); err == nil || !strings.Contains(err.Error(), "bash, zsh, fish") {
		t.Errorf("unknown shell: %v", err)
	}
	if err := Write(&b, "bash", testApp(t, "to'ol")); err == nil {
		t.Error("a program name with a quote was written into a script")
	}
	if b.Len() != 0 {
		t.Errorf("a refused script wrote %q", b.String())
	}
}

func TestSummary(t *testing.T) {
	for in, want := range map[string]string{
		"Say more. Much more.": "Say more.",
		"One line":             "One line",
		"Spread\n  over   two": "Spread over two",
		"Version 1.2 is fine.": "Version 1.2 is fine.",
	} {
		if got := summary(in); got != want {
			t.Errorf("summary(%q) = %q, want %q", in, got, want)
		}
	}
}

// compWords sets COMP_WORDS and COMP_CWORD as bash does for line, whose
// last word is the one being completed.
func compWords(line string) string {
	words := strings.Split(line, " ")
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = quote(w)
	}
	return "COMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n"
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, w := range want {
		seen[w]++
	}
	for _, g := range got {
		if seen[g] == 0 {
			return false
		}
		seen[g]--
	}
	return true
}
