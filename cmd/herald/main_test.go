package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestMain lets the test binary stand in for the herald binary: a test
// re-executes itself with HERALD_TEST_MAIN=1 to run a real herald process
// that it can signal or kill -9.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// process is a herald process started by a test.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHerald runs `herald serve` with args and waits until it logs where it
// listens.
func startHerald(t testing.TB, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "HERALD_TEST_MAIN=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.stderr, line)
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "Herald is listening" {
				urls <- rec.URL
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("herald exited before listening: %v\n%s", err, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("herald did not report its address:\n%s", p.stderr)
	}
	return p
}

// request sends a JSON request with the token and returns status and body.
func request(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	if token != "" {
		req.Header.Set("authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func readToken(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "admin-token")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("admin token file mode = %v, want 0600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestServeFirstStartAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"))
	token := readToken(t, dir)
	if strings.Contains(p.stderr.String(), token) {
		t.Fatal("the admin token appears in the log")
	}
	if !strings.Contains(p.stderr.String(), filepath.Join(dir, "admin-token")) {
		t.Errorf("the log does not say where the admin token is:\n%s", p.stderr)
	}
	if info, err := os.Stat(filepath.Join(dir, "encryption-key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("encryption key file: %v, %v", info, err)
	}

	if code, _ := request(t, "GET", p.url+"/api/v1/health", "", nil); code != http.StatusNoContent {
		t.Errorf("health = %d, want 204", code)
	}
	if code, _ := request(t, "GET", p.url+"/api/v1/app", "", nil); code != http.StatusUnauthorized {
		t.Errorf("list apps without token = %d, want 401", code)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme"}); code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("herald exited with %v after SIGINT:\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("herald did not stop after SIGINT")
	}
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", p.stderr)
	}

	// A second start reuses the token and the key, and finds the data.
	p2 := startHerald(t, "--db", filepath.Join(dir, "herald.db"))
	if got := readToken(t, dir); got != token {
		t.Fatal("the admin token changed across restarts")
	}
	code, body := request(t, "GET", p2.url+"/api/v1/app", token, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"Acme"`) {
		t.Fatalf("list apps after restart = %d %s", code, body)
	}
}

func TestServeRefusesMissingEncryptionKey(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--db", db, "--log-format", "text"}, &out, &errOut); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut.String())
	}
	if err := os.Remove(filepath.Join(dir, "encryption-key")); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"migrate", "--db", db}, &out, &errOut); code == 0 {
		t.Fatal("migrate without the encryption key of an existing database succeeded")
	}
	if !strings.Contains(errOut.String(), "encryption key") {
		t.Errorf("error does not name the missing key: %s", errOut.String())
	}
}

func TestMigrateAndVersion(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--db", filepath.Join(dir, "h.db")}, &out, &errOut); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "schema version") {
		t.Errorf("migrate output = %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "herald ") {
		t.Errorf("version = %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"serve", "--max-body-size", "10"}, &out, &errOut); code == 0 {
		t.Error("serve with a 10-byte body limit was accepted")
	}
	if code := run(context.Background(), []string{"serve", "--db", "postgres://x@127.0.0.1/db"}, &out, &errOut); code == 0 {
		t.Error("serve with a postgres URL was accepted by a build without PostgreSQL support")
	}
}

// openDataDir opens the database of a stopped or killed herald with the
// encryption key from its data directory.
func openDataDir(t testing.TB, dir, db string) *sqlite.Store {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dir, "encryption-key"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: db, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// TestServeRefusesBadWebFlags: the console's and portal's flags are
// checked before anything starts, each refusal naming its flag.
func TestServeRefusesBadWebFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--public-url", "hooks.example.com"}, "--public-url"},
		{[]string{"--public-url", "https://hooks.example.com/prefix"}, "--public-url"},
		{[]string{"--public-url", "https://hooks.example.com/?a=1"}, "--public-url"},
		{[]string{"--portal-frame-ancestors", "https://a.example; script-src *"}, "--portal-frame-ancestors"},
		{[]string{"--portal-frame-ancestors", " "}, "--portal-frame-ancestors"},
		{[]string{"--trusted-proxies", "10.0.0.0/99"}, "--trusted-proxies"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}
