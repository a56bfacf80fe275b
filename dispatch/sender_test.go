package dispatch

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/netguard"
	"github.com/herald-webhooks/herald/signature"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func testKey(t *testing.T) []byte {
	t.Helper()
	key, err := signature.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newRequest(t *testing.T, url string) Request {
	return Request{
		URL:       url,
		MessageID: "msg_1",
		Payload:   []byte(`{"hello":"wörld"}`),
		Headers:   map[string]string{"X-Custom": "yes", "Webhook-Id": "forged", "User-Agent": "forged"},
		Keys:      []signature.Key{{Secret: testKey(t)}},
		Timestamp: time.Now(),
	}
}

func TestSendSignsAndVerifies(t *testing.T) {
	verifier, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var got http.Header
	var verifyErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = r.Header.Clone()
		verifyErr = verifier.Verify(body, r.Header)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	s := NewSender(SenderConfig{AllowPrivate: true, UserAgent: "Herald/test", Timeout: 5 * time.Second})
	defer s.Close()
	res := s.Send(t.Context(), newRequest(t, srv.URL))
	if !res.Succeeded() {
		t.Fatalf("send = %+v", res)
	}
	if verifyErr != nil {
		t.Fatalf("the Standard Webhooks verifier refused the delivery: %v", verifyErr)
	}
	for name, want := range map[string]string{
		"Webhook-Id": "msg_1", "Svix-Id": "msg_1", "User-Agent": "Herald/test",
		"Content-Type": "application/json", "X-Custom": "yes",
	} {
		if got.Get(name) != want {
			t.Errorf("header %s = %q, want %q", name, got.Get(name), want)
		}
	}
	if got.Get("Svix-Signature") != got.Get("Webhook-Signature") || got.Get("Svix-Timestamp") != got.Get("Webhook-Timestamp") {
		t.Error("svix-* headers differ from webhook-* headers")
	}
}

func TestSendOutcomes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	var okHits atomic.Int32
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { okHits.Add(1) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		// Read the body so the server notices the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 300 * time.Millisecond})
	defer s.Close()

	res := s.Send(t.Context(), newRequest(t, srv.URL+"/redirect"))
	if res.Succeeded() || res.StatusCode != http.StatusFound || okHits.Load() != 0 {
		t.Errorf("redirect: %+v, followed %d times; want a failed 302, not followed", res, okHits.Load())
	}
	res = s.Send(t.Context(), newRequest(t, srv.URL+"/busy"))
	if res.Succeeded() || res.StatusCode != 503 || res.RetryAfter != "120" {
		t.Errorf("busy: %+v", res)
	}
	res = s.Send(t.Context(), newRequest(t, srv.URL+"/hang"))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "timed out") {
		t.Errorf("hang: %+v, want a timeout error", res)
	}
}

// TestSendTruncatesAndReusesConnection: a large response is kept only up to
// MaxResponseBody, and the connection goes back to the pool.
func TestSendTruncatesAndReusesConnection(t *testing.T) {
	var conns atomic.Int32
	big := bytes.Repeat([]byte("x"), 100<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(big)
	}))
	srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 5 * time.Second})
	defer s.Close()
	for range 5 {
		res := s.Send(t.Context(), newRequest(t, srv.URL))
		if !res.Succeeded() || len(res.Body) != herald.MaxResponseBody {
			t.Fatalf("send: status %d, body %d bytes, err %v", res.StatusCode, len(res.Body), res.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential sends opened %d connections, want 1 (reused)", n)
	}
}

func TestSendRefusesPrivateTargets(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	s := NewSender(SenderConfig{Timeout: 2 * time.Second})
	defer s.Close()
	// The guard refuses in the dialer's Control hook, before connect(2):
	// no packet leaves for the private addresses below.
	for _, target := range []string{
		"http://127.0.0.1" + port, "http://[::1]" + port, "http://localhost" + port,
		"http://10.0.0.1:80", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1:80",
	} {
		res := s.Send(t.Context(), newRequest(t, target))
		var blocked *netguard.BlockedError
		if !errors.As(res.Err, &blocked) {
			t.Errorf("%s: err = %v, want a *netguard.BlockedError", target, res.Err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the guarded sender reached the loopback server %d times", hits.Load())
	}
	allowed := NewSender(SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	defer allowed.Close()
	if res := allowed.Send(t.Context(), newRequest(t, srv.URL)); !res.Succeeded() {
		t.Errorf("with private targets allowed: %+v", res)
	}
}
