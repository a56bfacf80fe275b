package dispatch_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
)

// TestMetadataTargetFailsAtOnce: a target refused as a cloud metadata
// address is never allowed, so its delivery fails at the first attempt
// instead of retrying through the schedule, and the attempt says why
// without the address. A redirect, by contrast, is retried, and its
// attempt names where it pointed.
func TestMetadataTargetFailsAtOnce(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{time.Minute, time.Hour}})
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	// Stored directly: the API refuses this URL at creation.
	now := c.Now()
	meta := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: e.app.ID, URL: "http://169.254.169.254/latest/meta-data/",
		Version: 1, Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateEndpoint(t.Context(), meta); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Location", "https://moved.example.com/hook")
		w.WriteHeader(http.StatusMovedPermanently)
	})
	moved := e.endpoint(t, r, nil, nil)

	m := e.send(t, "a", nil)
	eventually(t, "the metadata delivery failed", func() bool { return e.delivery(t, m.ID, meta.ID).Status == herald.DeliveryFailed })
	eventually(t, "the redirect attempted", func() bool { return e.delivery(t, m.ID, moved.ID).Attempts == 1 })
	if d := e.delivery(t, m.ID, meta.ID); d.Attempts != 1 {
		t.Errorf("metadata delivery: %d attempts, want 1", d.Attempts)
	}
	if d := e.delivery(t, m.ID, moved.ID); d.Status != herald.DeliveryPending {
		t.Errorf("redirected delivery: %s, want pending (retried)", d.Status)
	}
	for _, a := range e.attempts(t, m.ID) {
		switch a.EndpointID {
		case meta.ID:
			if a.Error != "delivery target refused (cloud metadata address; never allowed): the delivery is not retried" {
				t.Errorf("metadata attempt text %q", a.Error)
			}
			if strings.Contains(a.Error, "169.254") {
				t.Errorf("metadata attempt text %q names the address", a.Error)
			}
		case moved.ID:
			if a.ResponseStatus != http.StatusMovedPermanently || a.Error != `redirected to "https://moved.example.com/hook": redirects are not followed` {
				t.Errorf("redirect attempt: status %d, text %q", a.ResponseStatus, a.Error)
			}
		}
	}
}
