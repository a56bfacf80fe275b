package ingest

import (
	"runtime"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// BenchmarkIngest compares one transaction (and one fsync) per message with
// group commit, both with 64 concurrent senders on a real SQLite file with
// synchronous=FULL, one application and one endpoint. ns/op is per message.
func BenchmarkIngest(b *testing.B) {
	const senders = 64
	payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
	newMsg := func(e env) *herald.Message {
		return &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "user.created",
			Payload: payload, CreatedAt: time.Now()}
	}
	parallelism := max(1, senders/runtime.GOMAXPROCS(0))

	b.Run("per-message-tx", func(b *testing.B) {
		e := newEnv(b, "FULL")
		b.SetParallelism(parallelism)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := e.store.CreateMessages(b.Context(), []*herald.Message{newMsg(e)}, herald.Lease{})
				if err != nil {
					b.Error(err)
					return
				}
				if res[0].Err != nil {
					b.Error(res[0].Err)
					return
				}
			}
		})
	})

	b.Run("group-commit", func(b *testing.B) {
		e := newEnv(b, "FULL")
		c := New(e.store, Config{})
		defer c.Close()
		b.SetParallelism(parallelism)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.CreateMessage(b.Context(), newMsg(e))
				if err != nil {
					b.Error(err)
					return
				}
				if res.Err != nil {
					b.Error(res.Err)
					return
				}
			}
		})
	})
}
