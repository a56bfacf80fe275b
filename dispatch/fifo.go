package dispatch

import (
	"sync"
	"sync/atomic"

	"github.com/herald-webhooks/herald"
)

// FIFO endpoints get their ordering from the store: ClaimDue hands out a
// FIFO endpoint's next delivery only once the one before it has left
// "sending", and ingest never leases their deliveries to a dispatcher
// directly. The dispatcher's part is to claim again as soon as such an
// outcome is written, so an ordered endpoint runs at one delivery per
// round trip (send, record, claim) instead of one per poll interval.

// fifoWaits holds the deliveries of FIFO endpoints whose outcome is on its
// way to the store.
type fifoWaits struct {
	n   atomic.Int64
	ids sync.Map // delivery ID → struct{}
}

// add notes that the outcome of delivery id, to a FIFO endpoint, is queued.
func (f *fifoWaits) add(id string) {
	if _, loaded := f.ids.LoadOrStore(id, struct{}{}); !loaded {
		f.n.Add(1)
	}
}

// written forgets the FIFO deliveries of a batch of outcomes that the
// recorder wrote (or gave up on) and reports whether there were any.
func (f *fifoWaits) written(batch []herald.AttemptOutcome) bool {
	if f.n.Load() == 0 {
		return false
	}
	found := false
	for i := range batch {
		if _, ok := f.ids.LoadAndDelete(batch[i].DeliveryID); ok {
			f.n.Add(-1)
			found = true
		}
	}
	return found
}
