package destination

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Publishers is the dispatcher's set of publishers: one per broker kind,
// made on its first publish, all closed by Close.
type Publishers struct {
	cfg Config

	mu     sync.Mutex
	open   map[string]Publisher
	closed bool
}

// NewPublishers returns an empty pool whose publishers get cfg.
func NewPublishers(cfg Config) *Publishers {
	return &Publishers{cfg: cfg, open: map[string]Publisher{}}
}

// Publish publishes p through the publisher of its target's scheme.
func (ps *Publishers) Publish(ctx context.Context, p Publication) Ack {
	k, ok := registry[p.Target.Scheme]
	if !ok {
		return Ack{Err: errors.New("not a broker URL scheme: " + p.Target.Scheme)}
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return Ack{Err: errors.New("the broker publishers are closed")}
	}
	pub, ok := ps.open[k.name]
	if !ok {
		pub = k.new(ps.cfg)
		ps.open[k.name] = pub
	}
	ps.mu.Unlock()
	start := time.Now()
	ack := pub.Publish(ctx, p)
	if ack.Duration == 0 {
		ack.Duration = time.Since(start)
	}
	return ack
}

// Close closes every publisher opened; later publishes fail.
func (ps *Publishers) Close() error {
	if ps == nil {
		return nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.closed = true
	var errs []error
	for name, pub := range ps.open {
		errs = append(errs, pub.Close())
		delete(ps.open, name)
	}
	return errors.Join(errs...)
}
