package main

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// repoRoot is the repository, seen from cmd/herald.
const repoRoot = "../.."

// envVars returns every environment variable the command line reads.
func envVars(t reflect.Type, into map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if env, ok := f.Tag.Lookup("env"); ok {
			for _, name := range strings.Split(env, ",") {
				into[strings.TrimSpace(name)] = true
			}
		}
		if f.Type.Kind() == reflect.Struct {
			envVars(f.Type, into)
		}
	}
}

// parseCLI parses args as herald's command line would, without running the
// command, and returns what it filled in.
func parseCLI(args []string) (*CLI, *kong.Context, error) {
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("herald"), kong.Exit(func(int) {}), kong.Vars{"version": "test"})
	if err != nil {
		return nil, nil, err
	}
	kctx, err := parser.Parse(args)
	return &cli, kctx, err
}

// TestDeployFilesUseRealVariables: every HERALD_* name in deploy/ and
// .github/ is one the binary reads, so the image, compose stack, chart,
// example configurations and workflows cannot set a flag that does not
// exist.
func TestDeployFilesUseRealVariables(t *testing.T) {
	known := map[string]bool{}
	envVars(reflect.TypeOf(CLI{}), known)
	// Names that are not herald flags, and what reads them.
	others := map[string]string{
		"HERALD_VERSION":           "deploy/build.sh and compose.yaml: the version stamped into the build",
		"HERALD_TEST_POSTGRES_URL": "the tests: the PostgreSQL database they use",
	}
	name := regexp.MustCompile(`\bHERALD_[A-Z0-9_]+\b`)
	checked := 0
	for _, dir := range []string{"deploy", ".github"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "go.sum" {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			checked++
			for _, v := range name.FindAllString(string(b), -1) {
				if !known[v] && others[v] == "" {
					t.Errorf("%s uses %s, which herald does not read", path, v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d files under deploy/ and .github/", checked)
	}
}

// TestExampleConfigsParse loads each deploy/config/*.env into the
// environment and parses `herald serve` with it: every value is one the
// flag accepts (enums, durations, numbers, the retry schedule).
func TestExampleConfigsParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "config", "*.env"))
	var names []string
	for _, file := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(file), ".env"))
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			vars := map[string]string{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				k, v, ok := strings.Cut(line, "=")
				if !ok || strings.ContainsAny(v, `"'`) {
					t.Fatalf("%q: want KEY=value without quotes (docker --env-file and systemd read them literally)", line)
				}
				vars[k] = v
				t.Setenv(k, v)
			}
			cli, _, err := parseCLI([]string{"serve"})
			if err != nil {
				t.Fatalf("herald serve with %s: %v", file, err)
			}
			if cli.Serve.Listen != vars["HERALD_LISTEN"] || cli.Serve.DB != vars["HERALD_DB"] {
				t.Errorf("parsed listen %q, db %q", cli.Serve.Listen, cli.Serve.DB)
			}
		})
	}
	sort.Strings(names)
	if want := []string{"development", "production", "staging", "testing"}; !slices.Equal(names, want) {
		t.Errorf("deploy/config has profiles %v, want %v", names, want)
	}
}

// TestDockerfileCommandsParse checks deploy/Dockerfile against the binary:
// its CMD and HEALTHCHECK are commands herald accepts, with the image's
// environment; the health check asks the port herald listens on; the
// volume is the database's directory; the build runs deploy/build.sh; and
// the final stage is distroless static or scratch.
func TestDockerfileCommandsParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, then read the final stage's instructions.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	stages := regexp.MustCompile(`(?m)^FROM `).Split(text, -1)
	final := stages[len(stages)-1]
	if !strings.Contains(stages[len(stages)-2], "deploy/build.sh") {
		t.Error("the build stage does not build with deploy/build.sh")
	}
	// The builder image holds the release toolchain that deploy/build.sh
	// asks for (deploy/release-toolchain), so the image build downloads no
	// second Go.
	toolchain, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "release-toolchain"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindStringSubmatch(text)
	if want := strings.TrimPrefix(strings.TrimSpace(string(toolchain)), "go"); goVersion == nil || goVersion[1] != want {
		t.Errorf("deploy/Dockerfile ARG GO_VERSION is %v, deploy/release-toolchain says %s", goVersion, want)
	}
	// The image runs the static binary alone: no shell, no libc.
	if base, _, _ := strings.Cut(strings.TrimSpace(final), "\n"); !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("the final stage is FROM %s, want distroless static or scratch", base)
	}
	instr := map[string][]string{}
	for _, line := range strings.Split(final, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		instr[word] = append(instr[word], strings.TrimSpace(rest))
	}
	jsonArgs := func(s string) []string {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err != nil {
			t.Fatalf("%q is not an exec-form JSON array (the image has no shell): %v", s, err)
		}
		return args
	}
	for _, env := range regexp.MustCompile(`(HERALD_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(strings.Join(instr["ENV"], " "), -1) {
		t.Setenv(env[1], env[2])
	}

	entrypoint := jsonArgs(instr["ENTRYPOINT"][0])
	cmd := jsonArgs(instr["CMD"][0])
	if len(entrypoint) != 1 || !strings.Contains(instr["COPY"][0], entrypoint[0]) {
		t.Errorf("ENTRYPOINT %v is not the copied binary (%v)", entrypoint, instr["COPY"])
	}
	cli, kctx, err := parseCLI(cmd)
	if err != nil || kctx.Command() != "serve" {
		t.Fatalf("CMD %v: %v (command %v)", cmd, err, kctx)
	}
	_, port, _ := net.SplitHostPort(cli.Serve.Listen)
	if host, _, _ := net.SplitHostPort(cli.Serve.Listen); host != "0.0.0.0" {
		t.Errorf("the image listens on %s: unreachable from outside the container", cli.Serve.Listen)
	}
	if !slices.Contains(instr["EXPOSE"], port) {
		t.Errorf("EXPOSE %v, herald listens on %s", instr["EXPOSE"], cli.Serve.Listen)
	}
	if vol := jsonArgs(instr["VOLUME"][0]); len(vol) != 1 || vol[0] != filepath.Dir(cli.Serve.DB) {
		t.Errorf("VOLUME %v, the database is %s", vol, cli.Serve.DB)
	}
	if cli.Serve.Log.LogFormat != "json" {
		t.Errorf("the image logs %s, want json", cli.Serve.Log.LogFormat)
	}
	if user := instr["USER"]; len(user) != 1 || strings.HasPrefix(user[0], "0") || strings.HasPrefix(user[0], "root") {
		t.Errorf("USER %v: want a non-root user", user)
	}

	hc := instr["HEALTHCHECK"][0]
	_, hcCmd, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	args := jsonArgs(hcCmd)
	if args[0] != entrypoint[0] {
		t.Errorf("HEALTHCHECK runs %s, not herald", args[0])
	}
	cli, kctx, err = parseCLI(args[1:])
	if err != nil || kctx.Command() != "healthcheck" {
		t.Fatalf("HEALTHCHECK %v: %v", args, err)
	}
	u, err := url.Parse(cli.Healthcheck.URL)
	if err != nil || u.Port() != port || (u.Path != "/healthz" && u.Path != "/readyz") {
		t.Errorf("HEALTHCHECK asks %s; herald listens on port %s and serves /healthz and /readyz", cli.Healthcheck.URL, port)
	}
}
