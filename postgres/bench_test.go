package postgres_test

import (
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// benchApp creates an application with n accept-all endpoints and returns
// its ID.
func benchApp(b *testing.B, s herald.Store, n int) string {
	b.Helper()
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "bench", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(b.Context(), app); err != nil {
		b.Fatal(err)
	}
	for range n {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/", Version: 1,
			Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateEndpoint(b.Context(), ep); err != nil {
			b.Fatal(err)
		}
	}
	return app.ID
}

// benchMessages returns n new messages of appID.
func benchMessages(appID string, n int) []*herald.Message {
	msgs := make([]*herald.Message, n)
	now := time.Now()
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: appID, EventType: "user.created",
			Payload: []byte(`{"user":"u_123","plan":"pro"}`), CreatedAt: now}
	}
	return msgs
}

// BenchmarkCreateMessages stores batches of 512 messages, each routed to
// one endpoint, as the ingest committer does; it reports messages/s.
func BenchmarkCreateMessages(b *testing.B) {
	s := openStore(b, freshSchema(b), testKeyring(b))
	appID := benchApp(b, s, 1)
	const batch = 512
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		msgs := benchMessages(appID, batch)
		b.StartTimer()
		if _, err := s.CreateMessages(b.Context(), msgs, herald.Lease{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkClaimDue claims batches of 64 from a queue of due deliveries;
// it reports claims/s.
func BenchmarkClaimDue(b *testing.B) {
	s := openStore(b, freshSchema(b), testKeyring(b))
	appID := benchApp(b, s, 1)
	const limit = 64
	b.StopTimer()
	for range 10 {
		if _, err := s.CreateMessages(b.Context(), benchMessages(appID, 1000), herald.Lease{}); err != nil {
			b.Fatal(err)
		}
	}
	claimed := 0
	b.StartTimer()
	for b.Loop() {
		now := time.Now()
		claims, err := s.ClaimDue(b.Context(), herald.ClaimOptions{Owner: "bench", Now: now, LeaseUntil: now.Add(time.Minute), Limit: limit})
		if err != nil {
			b.Fatal(err)
		}
		if len(claims) == 0 {
			b.StopTimer()
			if _, err := s.CreateMessages(b.Context(), benchMessages(appID, 1000), herald.Lease{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		claimed += len(claims)
	}
	b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "claims/s")
}
