package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/task"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testToken is the admin token of every test server.
const testToken = "test-admin-token-0123456789"

// testServer is an API on a real SQLite file (or, from
// newTestServerOn, another store) behind a real HTTP server on 127.0.0.1.
type testServer struct {
	URL    string
	Token  string
	Store  herald.Store
	Client *http.Client
	// Clock is the API's clock; tests may move it.
	Clock *testclock.Clock
	// API is the server's handler, for tests of its internals.
	API  *API
	logs *syncBuffer
}

// syncBuffer collects log output written from handler goroutines.
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

// newTestServer starts an API on a fresh database. opts may change the
// config, e.g. the body limit or the message creator.
func newTestServer(t testing.TB, opts ...func(*Config)) *testServer {
	t.Helper()
	store, err := sqlite.Open(t.Context(), sqlite.Config{
		Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testkeys.Ring(t), Synchronous: "NORMAL",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newTestServerOn(t, store, opts...)
}

// newTestServerOn starts an API on store (which the caller closes).
func newTestServerOn(t testing.TB, store herald.Store, opts ...func(*Config)) *testServer {
	t.Helper()
	clock := testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	logs := &syncBuffer{}
	cfg := Config{
		Store:          store,
		Messages:       newCommitter(t, store),
		AdminTokenHash: sha256.Sum256([]byte(testToken)),
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Now:            clock.Now,
		Version:        "test",
		// Tests deliver to loopback receivers; TestEndpointURLHost checks
		// the default, which refuses them.
		AllowPrivateTargets: true,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	// The background tasks the API starts run as in herald serve: a runner
	// on the same store, woken by the API, on the API's clock.
	// Slices of two rows, so that every task of a test runs in several.
	runner, err := task.New(task.Config{Store: store, Owner: "test-runner", Now: clock.Now, OnQueued: cfg.OnQueued, Slice: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OnTask == nil {
		cfg.OnTask = runner.Wake
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	runCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		runner.Run(runCtx)
	}()
	t.Cleanup(func() {
		stopRunner()
		<-runnerDone
	})
	return &testServer{URL: srv.URL, Token: testToken, Store: store, Client: srv.Client(), Clock: clock, API: api, logs: logs}
}

// sdk returns an official Svix client for the server with the given token.
func (ts *testServer) sdk(t *testing.T, token string) *svix.Svix {
	t.Helper()
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := svix.New(token, &svix.SvixOptions{ServerUrl: u, HTTPClient: ts.Client})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// response is a raw answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// call sends a raw request with the admin token. headers are name/value
// pairs that override the defaults; an empty value removes a header.
func (ts *testServer) call(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// mustCall is call that fails the test unless the status is want; it
// decodes the body into out when out is not nil.
func (ts *testServer) mustCall(t *testing.T, want int, out any, method, path, body string, headers ...string) response {
	t.Helper()
	res := ts.call(t, method, path, body, headers...)
	if res.Status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, res.Status, want, res.Body)
	}
	if out != nil {
		if err := json.Unmarshal(res.Body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, res.Body, err)
		}
	}
	return res
}

// errorOut decodes a {"code","detail"} body.
func errorOut(t *testing.T, res response) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(res.Body, &e); err != nil {
		t.Fatalf("error body %s: %v", res.Body, err)
	}
	return e
}

// validationOut decodes a 422 body.
func validationOut(t *testing.T, res response) []fieldError {
	t.Helper()
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422; body %s", res.Status, res.Body)
	}
	var v validationBody
	if err := json.Unmarshal(res.Body, &v); err != nil {
		t.Fatalf("validation body %s: %v", res.Body, err)
	}
	return v.Detail
}

// countMessages returns how many messages an application has.
func countMessages(t *testing.T, store herald.Store, appID string) int {
	t.Helper()
	msgs, err := store.ListMessages(t.Context(), appID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

// faultyCreator commits messages through next, except that it fails (or
// panics) for the event types it is told to, to drive the gateway's 5xx
// paths.
type faultyCreator struct {
	next MessageCreator
}

func (f faultyCreator) CreateMessage(ctx context.Context, m *herald.Message) (herald.MessageResult, error) {
	switch m.EventType {
	case "fault.panic":
		panic("injected panic")
	case "fault.error":
		return herald.MessageResult{}, io.ErrUnexpectedEOF
	}
	return f.next.CreateMessage(ctx, m)
}
