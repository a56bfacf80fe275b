package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/signature"
)

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestListenVerifiesAndPrints runs `herald listen` in-process and posts a
// correctly signed delivery and a forged one to it.
func TestListenVerifiesAndPrints(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut safeBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--listen", addr, "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, &out, &errOut)
	}()
	key, _ := signature.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	for i := 0; ; i++ { // wait until the listener is up
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			break
		}
		if i == 200 {
			t.Fatalf("herald listen did not start: %v\n%s", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	post := func(sig string) int {
		body := `{"invoice":"inv-42"}`
		now := time.Now()
		if sig == "" {
			sig = signature.Sign(key, "msg_1", now, []byte(body))
		}
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		req.Header.Set("herald-event-type", "invoice.paid")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusNoContent {
		t.Errorf("signed delivery answered %d, want 204", code)
	}
	if code := post("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); code != http.StatusUnauthorized {
		t.Errorf("forged delivery answered %d, want 401", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("listen exited %d: %s", code, errOut.String())
	}
	printed := out.String()
	for _, want := range []string{"msg_1  invoice.paid  verified", "INVALID SIGNATURE", `"invoice": "inv-42"`} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
}

// TestSendPostsAMessage runs `herald send` against a real herald process.
func TestSendPostsAMessage(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/herald.db"
	p := startHerald(t, "--db", db)
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"send", "--url", p.url, "--db", db, "--app", "acme",
		"--event-type", "invoice.paid", "--event-id", "inv-42", `{"amount":4200}`}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), `"eventId":"inv-42"`) {
		t.Fatalf("send = %d, out %q, err %q", code, out.String(), errOut.String())
	}
	// The same eventId again is a conflict, reported with Herald's answer.
	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"send", "--url", p.url, "--token", token, "--app", "acme",
		"--event-type", "invoice.paid", "--event-id", "inv-42", `{"amount":4200}`}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "409") {
		t.Fatalf("duplicate send = %d, err %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"send", "--url", p.url, "--token", token, "--app", "acme",
		"--event-type", "a", "not json"}, &out, &errOut); code == 0 {
		t.Fatal("send with an invalid payload succeeded")
	}
}

// safeBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
