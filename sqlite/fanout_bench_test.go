package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// BenchmarkLargeFanOut measures what a message to 1,000 endpoints costs
// the writer, synchronous=FULL: inline, one CreateMessages transaction
// holding every delivery (what every other message of its batch waits
// for); deferred (FanOutInlineMax 64), the CreateMessages transaction with
// the marker, then FanOut chunks of 128 or 256 endpoints until none is left.
// ns/op is the whole message; hold-ms is the median over messages of the
// longest write transaction of each, which bounds how long another
// application's ingest batch waits behind it.
func BenchmarkLargeFanOut(b *testing.B) {
	for _, c := range []struct {
		name      string
		inlineMax int
		chunk     int
	}{{"inline", 0, 0}, {"deferred/chunk=128", 64, 128}, {"deferred/chunk=256", 64, 256}} {
		b.Run(c.name, func(b *testing.B) {
			s := openFanOutBench(b, c.inlineMax)
			app, _ := createFanOutApp(b, s, 1000)
			payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
			var longest time.Duration
			var holds []float64
			timed := func(f func()) {
				start := time.Now()
				f()
				longest = max(longest, time.Since(start))
			}
			for b.Loop() {
				longest = 0
				m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "user.created", Payload: payload, CreatedAt: time.Now()}
				timed(func() {
					if _, err := s.CreateMessages(b.Context(), []*herald.Message{m}, herald.Lease{}); err != nil {
						b.Fatal(err)
					}
				})
				for more := c.inlineMax > 0; more; {
					timed(func() {
						chunk, err := s.FanOut(b.Context(), c.chunk, herald.Lease{})
						if err != nil {
							b.Fatal(err)
						}
						more = chunk.Message != nil
					})
				}
				holds = append(holds, float64(longest.Microseconds())/1000)
			}
			slices.Sort(holds)
			b.ReportMetric(holds[len(holds)/2], "hold-ms")
		})
	}
}

func openFanOutBench(b *testing.B, inlineMax int) herald.Store {
	b.Helper()
	return openFanOutTB(b, filepath.Join(b.TempDir(), "herald.db"), inlineMax)
}

// createFanOutApp creates an application with n endpoints created now.
func createFanOutApp(tb testing.TB, s herald.Store, n int) (*herald.Application, []*herald.Endpoint) {
	tb.Helper()
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "fan-out", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(tb.Context(), app); err != nil {
		tb.Fatal(err)
	}
	eps := make([]*herald.Endpoint, n)
	for i := range eps {
		eps[i] = &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
			Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(tb.Context(), eps[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return app, eps
}
