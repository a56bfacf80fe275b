package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

// cancelOnWrite is an output that cancels a context at its first write:
// the command is stopped right after its first batch, as by a crash.
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// TestRotateEncryptionCommand: on a real SQLite database whose key file
// lists a new key before the old one, herald keys rotate-encryption --check
// reports what the old key seals; a rotation stopped after its first batch
// and run again re-seals every secret and header, which the new key alone
// then reads, and --check passes.
func TestRotateEncryptionCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	keyFile := filepath.Join(dir, "encryption-key")
	cli := func(ctx context.Context, stdout io.Writer, args ...string) (int, string) {
		t.Helper()
		var errOut bytes.Buffer
		code := run(ctx, append([]string{"keys", "rotate-encryption", "--db", db, "--log-format", "text"}, args...), stdout, &errOut)
		return code, errOut.String()
	}

	if code, errOut := cli(t.Context(), &bytes.Buffer{}); code == 0 {
		t.Fatal("rotate-encryption on a missing database succeeded")
	} else if !strings.Contains(errOut, "no such file") {
		t.Errorf("rotate-encryption on a missing database: %s", errOut)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("rotate-encryption created the database (%v)", err)
	}

	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"migrate", "--db", db}, &bytes.Buffer{}, &errOut); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut.String())
	}
	store := openDataDir(t, dir, db)
	app := &herald.Application{ID: "app_rotate", Name: "Rotate"}
	if err := store.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var eps []*herald.Endpoint
	for i := range n {
		ep := &herald.Endpoint{
			ID: fmt.Sprintf("ep_rotate%d", i), AppID: app.ID, URL: "https://receiver.example/hook", Version: 1,
			Headers: map[string]string{"Authorization": fmt.Sprintf("Bearer receiver-%d", i)},
			Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{byte(i + 1)}, 24)}},
		}
		if err := store.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	store.Close()

	// Step 1 of the runbook: a new key first, the old one kept after it.
	oldKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(newKey+","+strings.TrimSpace(string(oldKey))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if code, errOut := cli(t.Context(), &out, "--check"); code != 1 || !strings.Contains(errOut, "not done") {
		t.Errorf("--check before = %d, stderr %q", code, errOut)
	}
	if want := "5 endpoints, 10 sealed values: 10 sealed by an older key, 0 endpoints with plaintext headers\n"; out.String() != want {
		t.Errorf("--check before printed %q, want %q", out.String(), want)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopped := &cancelOnWrite{cancel: cancel}
	if code, errOut := cli(ctx, stopped, "--batch", "2"); code != 1 || !strings.Contains(errOut, "run again to resume") {
		t.Errorf("stopped rotation = %d, stderr %q", code, errOut)
	}
	if want := "re-sealed endpoints: 2 of 5 looked at, 2 rewritten\n"; stopped.String() != want {
		t.Errorf("stopped rotation printed %q, want %q", stopped.String(), want)
	}
	out.Reset()
	if code, _ := cli(t.Context(), &out, "--check"); code != 1 ||
		out.String() != "5 endpoints, 10 sealed values: 6 sealed by an older key, 0 endpoints with plaintext headers\n" {
		t.Errorf("--check half way = %d %q", code, out.String())
	}

	out.Reset()
	if code, errOut := cli(t.Context(), &out, "--batch", "2"); code != 0 {
		t.Fatalf("rotation run again = %d: %s", code, errOut)
	}
	want := `re-sealed endpoints: 2 of 5 looked at, 0 rewritten
re-sealed endpoints: 4 of 5 looked at, 2 rewritten
re-sealed endpoints: 5 of 5 looked at, 3 rewritten
5 endpoints, 10 sealed values: 0 sealed by an older key, 0 endpoints with plaintext headers
every value is sealed by the first key: the older keys can be dropped
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("rotation output (-want +got):\n%s", diff)
	}

	// Last step: drop the old key. The new key alone reads every value.
	if err := os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, errOut := cli(t.Context(), &bytes.Buffer{}, "--check"); code != 0 {
		t.Errorf("--check with the new key alone = %d: %s", code, errOut)
	}
	store = openDataDir(t, dir, db)
	defer store.Close()
	for _, ep := range eps {
		got, err := store.GetEndpoint(t.Context(), app.ID, ep.ID)
		if err != nil {
			t.Fatalf("read %s with the new key alone: %v", ep.ID, err)
		}
		if diff := cmp.Diff(ep, got); diff != "" {
			t.Errorf("endpoint %s after the rotation (-want +got):\n%s", ep.ID, diff)
		}
	}
}

// stopHerald interrupts a started herald and waits for it to exit.
func stopHerald(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("herald exited with %v:\n%s", err, p.stderr)
	}
}

// TestRotateEncryptionWhileServing: with a herald serving the database
// under the new key first and the old one after it, the rotation runs
// beside it while the API changes every endpoint's headers; no change is
// lost (the next deliveries carry the new headers), and the new key alone
// then opens everything.
func TestRotateEncryptionWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes")
	}
	var (
		mu  sync.Mutex
		got = map[string]string{} // path → X-Receiver-Token received
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get("X-Receiver-Token")
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	oldKey, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")

	p := startHerald(t, "--db", db, "--encryption-key", oldKey, "--allow-private-targets")
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	const n = 12
	for i := range n {
		code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token, map[string]any{
			"uid": fmt.Sprintf("e%d", i), "url": fmt.Sprintf("%s/hook/%d", recv.URL, i),
			"headers": map[string]string{"X-Receiver-Token": fmt.Sprintf("before-%d", i)},
		})
		if code != http.StatusCreated {
			t.Fatalf("create endpoint = %d %s", code, body)
		}
	}
	stopHerald(t, p)

	// Every node restarts with the new key first, the old one after it.
	both := newKey + "," + oldKey
	p = startHerald(t, "--db", db, "--encryption-key", both, "--allow-private-targets")
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			code, body := request(t, "PUT", fmt.Sprintf("%s/api/v1/app/acme/endpoint/e%d/headers", p.url, i), token,
				map[string]any{"headers": map[string]string{"X-Receiver-Token": fmt.Sprintf("after-%d", i)}})
			if code != http.StatusNoContent {
				t.Errorf("put headers of e%d = %d %s", i, code, body)
			}
		}
	})
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"keys", "rotate-encryption", "--db", db, "--encryption-key", both, "--batch", "1", "--log-format", "text"}, &out, &errOut)
	wg.Wait()
	if code != 0 {
		t.Fatalf("rotation beside a serving herald = %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d of %d looked at", n, n)) {
		t.Errorf("rotation output:\n%s", out.String())
	}

	if code, body := request(t, "POST", p.url+"/api/v1/app/acme/msg", token, map[string]any{"eventType": "order.paid", "payload": map[string]any{"n": 1}}); code != http.StatusAccepted {
		t.Fatalf("send = %d %s", code, body)
	}
	want := map[string]string{}
	for i := range n {
		want[fmt.Sprintf("/hook/%d", i)] = fmt.Sprintf("after-%d", i)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got) == n
		diff := cmp.Diff(want, got)
		mu.Unlock()
		if done {
			if diff != "" {
				t.Errorf("headers delivered after the rotation (-want +got):\n%s", diff)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries did not all arrive (-want +got):\n%s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopHerald(t, p)

	out.Reset()
	if code := run(t.Context(), []string{"keys", "rotate-encryption", "--check", "--db", db, "--encryption-key", newKey}, &out, &errOut); code != 0 {
		t.Errorf("--check with the new key alone = %d: %s%s", code, out.String(), errOut.String())
	}
}
