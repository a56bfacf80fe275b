package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// BenchmarkCreateMessages measures one CreateMessages transaction of a
// batch of messages to an application with one endpoint, synchronous=FULL.
// ns/op is per batch; msgs/s is per message.
func BenchmarkCreateMessages(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, f := openBenchStore(b)
			payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
			msgs := make([]*herald.Message, size)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				for i := range msgs {
					msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: f.app.ID,
						EventType: "user.created", Payload: payload, CreatedAt: time.Now()}
				}
				res, err := s.CreateMessages(b.Context(), msgs, herald.Lease{})
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Err != nil {
					b.Fatal(res[0].Err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkClaimRecord measures the dispatcher's store round trip for a
// batch of 64 deliveries, synchronous=FULL: one ClaimDue and one
// RecordAttempts (a success each). ns/op is per batch; deliveries/s counts
// both calls.
func BenchmarkClaimRecord(b *testing.B) {
	const size = 64
	s, f := openBenchStore(b)
	payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
	msgs := make([]*herald.Message, size)
	outcomes := make([]herald.AttemptOutcome, 0, size)
	b.ReportAllocs()
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		fillBenchMessages(msgs, f.app.ID, payload)
		if _, err := s.CreateMessages(b.Context(), msgs, herald.Lease{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		claims, err := s.ClaimDue(b.Context(), herald.ClaimOptions{Owner: "bench", Now: time.Now(),
			LeaseUntil: time.Now().Add(time.Minute), Limit: size})
		if err != nil {
			b.Fatal(err)
		}
		if len(claims) != size {
			b.Fatalf("claimed %d, want %d", len(claims), size)
		}
		outcomes = outcomes[:0]
		for _, c := range claims {
			outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: "bench",
				Status: herald.DeliverySucceeded, Attempt: &herald.Attempt{
					ID: herald.NewID(herald.PrefixAttempt), URL: f.ep.URL, ResponseStatus: 200,
					Response: []byte("ok"), Duration: time.Millisecond, CreatedAt: time.Now()}})
		}
		if err := s.RecordAttempts(b.Context(), outcomes); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*size)/elapsed.Seconds(), "deliveries/s")
}

// BenchmarkClaimVaryingSize measures ClaimDue as the dispatcher calls it
// between polls: a window of the queue's head whose size, the room its
// workers have, changes from one claim to the next (1 to 32 deliveries,
// 16.5 on average). ns/op is per claim.
func BenchmarkClaimVaryingSize(b *testing.B) {
	const most = 32
	s, f := openBenchStore(b)
	payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
	msgs := make([]*herald.Message, most)
	b.ReportAllocs()
	var elapsed time.Duration
	claimed := 0
	for i := 0; b.Loop(); i++ {
		size := i%most + 1
		b.StopTimer()
		fillBenchMessages(msgs[:size], f.app.ID, payload)
		if _, err := s.CreateMessages(b.Context(), msgs[:size], herald.Lease{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		claims, err := s.ClaimDue(b.Context(), herald.ClaimOptions{Owner: "bench", Now: time.Now(),
			LeaseUntil: time.Now().Add(time.Hour), Limit: size, Window: size, PerEndpoint: size})
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(claims) != size {
			b.Fatalf("claimed %d, want %d", len(claims), size)
		}
		claimed += size
	}
	b.ReportMetric(float64(claimed)/elapsed.Seconds(), "deliveries/s")
}

// BenchmarkRecordAttempts measures RecordAttempts alone: a batch of 250
// successful outcomes of deliveries of 5 messages fanned out to 50
// endpoints, as the dispatcher writes them under a fan-out load. ns/op is
// per batch; outcomes/s is per outcome.
func BenchmarkRecordAttempts(b *testing.B) {
	const endpoints, messages = 50, 5
	s, f := openBenchStore(b)
	for range endpoints - 1 {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/hook",
			Version: 1, Secrets: []herald.SigningSecret{{Key: randomKey(b)}}, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateEndpoint(b.Context(), ep); err != nil {
			b.Fatal(err)
		}
	}
	payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
	msgs := make([]*herald.Message, messages)
	outcomes := make([]herald.AttemptOutcome, 0, messages*endpoints)
	lease := herald.Lease{Owner: "bench", Until: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		fillBenchMessages(msgs, f.app.ID, payload)
		results, err := s.CreateMessages(b.Context(), msgs, lease)
		if err != nil {
			b.Fatal(err)
		}
		outcomes = outcomes[:0]
		for _, r := range results {
			for _, d := range r.Deliveries {
				outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: d.ID, LeaseOwner: "bench",
					Status: herald.DeliverySucceeded, Attempt: &herald.Attempt{
						ID: herald.NewID(herald.PrefixAttempt), URL: "https://example.com/hook", ResponseStatus: 200,
						Response: []byte("ok"), Duration: time.Millisecond, Trigger: herald.TriggerScheduled, CreatedAt: time.Now()}})
			}
		}
		if len(outcomes) != messages*endpoints {
			b.Fatalf("%d deliveries, want %d", len(outcomes), messages*endpoints)
		}
		b.StartTimer()
		start := time.Now()
		if err := s.RecordAttempts(b.Context(), outcomes); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N*messages*endpoints)/elapsed.Seconds(), "outcomes/s")
}

// openBenchStore opens a durable (synchronous=FULL) store in a temporary
// file, closed when the benchmark ends, with an application and one
// endpoint.
func openBenchStore(b *testing.B) (*sqlite.Store, fixture) {
	b.Helper()
	s, err := sqlite.Open(b.Context(), sqlite.Config{
		Path: filepath.Join(b.TempDir(), "herald.db"), Synchronous: "FULL", Keyring: testKeyring(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, newFixture(b, s, randomKey(b))
}

// fillBenchMessages fills msgs with new user.created messages of appID
// carrying payload, created now.
func fillBenchMessages(msgs []*herald.Message, appID string, payload []byte) {
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: appID,
			EventType: "user.created", Payload: payload, CreatedAt: time.Now()}
	}
}
