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
			s, err := sqlite.Open(b.Context(), sqlite.Config{
				Path: filepath.Join(b.TempDir(), "herald.db"), Synchronous: "FULL", Keyring: testKeyring(b),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := newFixture(b, s, randomKey(b))
			payload := []byte(`{"user":{"id":"u_123","email":"someone@example.com"}}`)
			msgs := make([]*herald.Message, size)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				for i := range msgs {
					msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: f.app.ID,
						EventType: "user.created", Payload: payload, CreatedAt: time.Now()}
				}
				res, err := s.CreateMessages(b.Context(), msgs)
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
