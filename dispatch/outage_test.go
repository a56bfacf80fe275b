package dispatch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// unreadableStore is a store whose endpoint and application reads,
// releases and outcome writes fail as in a database outage while down is
// set; claims still succeed, so the dispatcher holds deliveries it cannot
// read the endpoint of or record, as a node does when the database goes
// away after it claimed them.
type unreadableStore struct {
	herald.Store
	down           atomic.Bool
	failed         atomic.Int64 // reads, writes and releases refused
	releasesFailed atomic.Int64
}

func (s *unreadableStore) refuse() error {
	if s.down.Load() {
		s.failed.Add(1)
		return herald.Errorf(herald.EUNAVAILABLE, "The database is unavailable.")
	}
	return nil
}

func (s *unreadableStore) GetEndpoint(ctx context.Context, appID, id string) (*herald.Endpoint, error) {
	if err := s.refuse(); err != nil {
		return nil, err
	}
	return s.Store.GetEndpoint(ctx, appID, id)
}

func (s *unreadableStore) GetApplication(ctx context.Context, id string) (*herald.Application, error) {
	if err := s.refuse(); err != nil {
		return nil, err
	}
	return s.Store.GetApplication(ctx, id)
}

func (s *unreadableStore) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	if err := s.refuse(); err != nil {
		return err
	}
	return s.Store.RecordAttempts(ctx, outcomes)
}

func (s *unreadableStore) ReleaseDeliveries(ctx context.Context, owner string, claims []herald.LeaseRef, now time.Time) error {
	if err := s.refuse(); err != nil {
		s.releasesFailed.Add(1)
		return err
	}
	return s.Store.ReleaseDeliveries(ctx, owner, claims, now)
}

// TestClaimsHeldThroughStoreOutage: deliveries a node holds when the
// database becomes unreadable are sent when it is back, not when their
// lease expires. Releasing them would fail as well (the database is away),
// which left them leased for the whole lease (90 s by default, an hour
// here) although the outage lasted seconds. Each is sent once, with one
// attempt.
func TestClaimsHeldThroughStoreOutage(t *testing.T) {
	store := &unreadableStore{}
	store.down.Store(true)
	e := newEnv(t, envOptions{lease: time.Hour, wrap: func(s herald.Store) herald.Store {
		store.Store = s
		return store
	}})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	e.storePending(t, 5, "a")
	e.dispatcher.Notify()
	// The deliveries are claimed, and their endpoint cannot be read.
	eventually(t, "the endpoint reads to fail", func() bool { return store.failed.Load() >= 5 })
	store.down.Store(false)
	eventually(t, "the held deliveries to be sent", func() bool { got, _ := r.received(); return len(got) == 5 })
	got, _ := r.received()
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s arrived %d times", id, n)
		}
		eventually(t, "its outcome", func() bool { return e.delivery(t, id, ep.ID).Status == herald.DeliverySucceeded })
		if as := e.attempts(t, id); len(as) != 1 {
			t.Errorf("message %s has %d attempts, want 1", id, len(as))
		}
	}
}

// TestOutcomesRecordedAfterStoreOutage: deliveries sent while the
// database cannot be written (their endpoint was read just before) are
// recorded when it is back, though the outage outlasts the first few
// tries of the write (about 2 s): not dropped, which left them leased for
// the whole lease and then sent a second time. Each message arrives once
// and has one attempt.
func TestOutcomesRecordedAfterStoreOutage(t *testing.T) {
	store := &unreadableStore{}
	e := newEnv(t, envOptions{lease: time.Hour, wrap: func(s herald.Store) herald.Store {
		store.Store = s
		return store
	}})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	first := e.send(t, "a", nil) // reads the endpoint into the dispatcher's cache
	eventually(t, "the first delivery", func() bool { return e.delivery(t, first.ID, ep.ID).Status == herald.DeliverySucceeded })
	store.down.Store(true)
	e.storePending(t, 3, "a")
	e.dispatcher.Notify()
	time.Sleep(3 * time.Second) // longer than the write's first five tries
	sentWhileDown, _ := r.received()
	store.down.Store(false)
	eventually(t, "every delivery to be recorded", func() bool {
		got, _ := r.received()
		if len(got) != 4 {
			return false
		}
		for id := range got {
			if e.delivery(t, id, ep.ID).Status != herald.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	t.Logf("%d of the 3 deliveries sent while the database was away", len(sentWhileDown)-1)
	got, _ := r.received()
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s arrived %d times", id, n)
		}
		if as := e.attempts(t, id); len(as) != 1 {
			t.Errorf("message %s has %d attempts, want 1", id, len(as))
		}
	}
}

// TestFailedReleaseRetried: claims the dispatcher gives back while the
// database is away (here: those beyond the endpoint's share of the queue,
// with one send at a time) are released when it is back, and sent, not
// left leased to this node for the whole lease (an hour here).
func TestFailedReleaseRetried(t *testing.T) {
	store := &unreadableStore{}
	store.down.Store(true)
	e := newEnv(t, envOptions{lease: time.Hour, perEndpoint: 1, wrap: func(s herald.Store) herald.Store {
		store.Store = s
		return store
	}})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	e.storePending(t, 20, "a")
	e.dispatcher.Notify()
	eventually(t, "a release to fail", func() bool { return store.releasesFailed.Load() >= 1 })
	store.down.Store(false)
	eventually(t, "every delivery to be sent and recorded", func() bool {
		got, _ := r.received()
		if len(got) != 20 {
			return false
		}
		for id := range got {
			if e.delivery(t, id, ep.ID).Status != herald.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	got, _ := r.received()
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s arrived %d times", id, n)
		}
	}
}

// TestStopDuringStoreOutage: a dispatcher stopped while its deliveries
// wait for the database stops without waiting for the database (or for
// its shutdown timeout, an hour here); the deliveries stay leased, as when
// any release fails, and nothing was sent.
func TestStopDuringStoreOutage(t *testing.T) {
	store := &unreadableStore{}
	store.down.Store(true)
	e := newEnv(t, envOptions{lease: time.Hour, shutdown: time.Hour, wrap: func(s herald.Store) herald.Store {
		store.Store = s
		return store
	}})
	r := newReceiver(t, nil)
	e.endpoint(t, r, nil, nil)
	e.storePending(t, 3, "a")
	e.dispatcher.Notify()
	eventually(t, "the endpoint reads to fail", func() bool { return store.failed.Load() >= 3 })
	stopped := make(chan struct{})
	go func() {
		e.stop()
		close(stopped)
	}()
	eventually(t, "the dispatcher to stop", func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	})
	if got, _ := r.received(); len(got) != 0 {
		t.Errorf("%d deliveries sent while their endpoint could not be read", len(got))
	}
}
