package sqlite_test

import (
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// BenchmarkRecoverSlice measures one slice of a recovery, synchronous=FULL:
// RunTaskSlice queuing again 500 failed deliveries of one endpoint (of
// 60,000) and saving the task's progress, in one write transaction. ns/op
// is how long one slice holds the writer that ingest also needs. Run it
// with -benchtime of at most 100x: the deliveries run out after 120 slices.
func BenchmarkRecoverSlice(b *testing.B) {
	const total, slice = 60_000, 500
	s, f := openBenchStore(b)
	payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
	lease := herald.Lease{Owner: "bench", Until: time.Now().Add(time.Hour)}
	for i := 0; i < total; i += 1000 {
		msgs := make([]*herald.Message, 1000)
		fillBenchMessages(msgs, f.app.ID, payload)
		results, err := s.CreateMessages(b.Context(), msgs, lease)
		if err != nil {
			b.Fatal(err)
		}
		var outcomes []herald.AttemptOutcome
		for _, r := range results {
			for _, d := range r.Deliveries {
				outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: d.ID, LeaseOwner: "bench", Status: herald.DeliveryFailed})
			}
		}
		if err := s.RecordAttempts(b.Context(), outcomes); err != nil {
			b.Fatal(err)
		}
	}
	t := &herald.Task{Kind: herald.TaskRecover, AppID: f.app.ID, EndpointID: f.ep.ID}
	now := time.Now()
	if err := s.CreateTask(b.Context(), t, now); err != nil {
		b.Fatal(err)
	}
	if _, err := s.ClaimTask(b.Context(), "bench", now, now.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	done := 0
	for b.Loop() {
		got, err := s.RunTaskSlice(b.Context(), t.ID, "bench", slice, now, now.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		if got.Done != done+slice {
			b.Fatalf("slice queued %d, want %d (more than %d slices?)", got.Done-done, slice, total/slice)
		}
		done = got.Done
	}
	b.ReportMetric(float64(slice), "rows/slice")
}
