package dispatch_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
)

// captured is one delivery as a receiver saw it.
type captured struct {
	header http.Header
	body   []byte
}

// captureReceiver is a loopback endpoint that keeps every delivery by its
// webhook-id and answers 204.
type captureReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]captured
}

func newCaptureReceiver(t *testing.T) *captureReceiver {
	t.Helper()
	c := &captureReceiver{got: map[string]captured{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got[r.Header.Get("webhook-id")] = captured{r.Header.Clone(), body}
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *captureReceiver) wait(t *testing.T, msgID string) captured {
	t.Helper()
	var d captured
	eventually(t, "delivery of "+msgID, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		var ok bool
		d, ok = c.got[msgID]
		return ok
	})
	return d
}

// verifyEd25519 is a receiver that knows only the Standard Webhooks rules
// and crypto/ed25519: the webhook-timestamp within five minutes of its
// clock, then some "v1a,<base64>" of the space-separated
// webhook-signature that verifies under pub over "id.timestamp.body".
func verifyEd25519(pub ed25519.PublicKey, h http.Header, body []byte, now time.Time) bool {
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || id == "" {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	signed := []byte(id + "." + tsText + "." + string(body))
	for _, s := range strings.Split(sigs, " ") {
		b64, ok := strings.CutPrefix(s, "v1a,")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && ed25519.Verify(pub, signed, raw) {
			return true
		}
	}
	return false
}

// versions lists the version labels of a webhook-signature value in order.
func versions(sigs string) []string {
	var out []string
	for _, s := range strings.Split(sigs, " ") {
		v, _, _ := strings.Cut(s, ",")
		out = append(out, v)
	}
	return out
}

// TestDeliveryEd25519 sends to loopback receivers whose endpoints hold an
// ed25519 key, or are rotated between an HMAC and an ed25519 key. During
// the grace period both keys sign and each signature verifies (v1 with the
// Standard Webhooks library, v1a with crypto/ed25519); once the clock
// passes the grace period only the new key signs.
func TestDeliveryEd25519(t *testing.T) {
	hmacKey, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signature.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	hmacSecret := herald.SigningSecret{Key: hmacKey}
	edSecret := herald.SigningSecret{Key: priv, Type: herald.SecretEd25519}
	// A v1 receiver: the Standard Webhooks library, which checks the
	// timestamp against the real clock, so the timestamp (the test clock's)
	// is left to verifyEd25519's check.
	verifyV1 := func(t *testing.T, d captured) {
		t.Helper()
		wh, err := standardwebhooks.NewWebhook(signature.FormatSecret(hmacKey))
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.VerifyIgnoringTimestamp(d.body, d.header); err != nil {
			t.Errorf("v1 does not verify with the Standard Webhooks library: %v", err)
		}
	}
	for _, tc := range []struct {
		name        string
		first, next *herald.SigningSecret // next nil: no rotation
		during      []string              // versions while both sign
	}{
		{name: "ed25519 only", first: &edSecret, during: []string{"v1a"}},
		{name: "hmac to ed25519", first: &hmacSecret, next: &edSecret, during: []string{"v1a", "v1"}},
		{name: "ed25519 to hmac", first: &edSecret, next: &hmacSecret, during: []string{"v1", "v1a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testclock.New(time.Now().UTC().Truncate(time.Second))
			e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{time.Minute}})
			r := newCaptureReceiver(t)
			t0 := c.Now()
			ep := &herald.Endpoint{
				ID: herald.NewID(herald.PrefixEndpoint), AppID: e.app.ID, URL: r.srv.URL + "/hook", Version: 1,
				Secrets: []herald.SigningSecret{*tc.first}, CreatedAt: t0, UpdatedAt: t0,
			}
			if err := e.store.CreateEndpoint(t.Context(), ep); err != nil {
				t.Fatal(err)
			}
			grace := time.Hour
			if tc.next != nil {
				// The store verb the API's rotate calls, before the
				// dispatcher has read (and cached) the endpoint.
				if err := e.store.RotateEndpointSecret(t.Context(), e.app.ID, ep.ID, *tc.next, t0.Add(grace), t0); err != nil {
					t.Fatal(err)
				}
			}
			m := e.send(t, "user.created", nil)
			d := r.wait(t, m.ID)
			sigs := d.header.Get("webhook-signature")
			if got := versions(sigs); strings.Join(got, " ") != strings.Join(tc.during, " ") {
				t.Fatalf("webhook-signature %q: versions %v, want %v", sigs, got, tc.during)
			}
			if d.header.Get("svix-signature") != sigs {
				t.Errorf("svix-signature %q differs from webhook-signature %q", d.header.Get("svix-signature"), sigs)
			}
			if !verifyEd25519(pub, d.header, d.body, c.Now()) {
				t.Errorf("v1a does not verify with crypto/ed25519: %q", sigs)
			}
			if len(tc.during) > 1 {
				verifyV1(t, d)
			}
			// The receiver's clock far from the timestamp refuses it.
			if verifyEd25519(pub, d.header, d.body, c.Now().Add(10*time.Minute)) {
				t.Error("a delivery ten minutes old verified")
			}
			if tc.next == nil {
				return
			}

			// After the grace period only the new key signs.
			c.Add(grace + time.Second)
			m2 := e.send(t, "user.created", nil)
			e.dispatcher.Notify()
			d2 := r.wait(t, m2.ID)
			sigs2 := d2.header.Get("webhook-signature")
			if got := versions(sigs2); len(got) != 1 || got[0] != tc.during[0] {
				t.Fatalf("after the grace period: webhook-signature %q, want one %s", sigs2, tc.during[0])
			}
			if tc.next.Type == herald.SecretEd25519 {
				if !verifyEd25519(pub, d2.header, d2.body, c.Now()) {
					t.Errorf("after the grace period v1a does not verify: %q", sigs2)
				}
			} else {
				verifyV1(t, d2)
			}
		})
	}
}
