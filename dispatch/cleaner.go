package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// RetentionStore is what the cleaner needs of a store: bounded batch
// deletes, each its own short transaction (herald.Store has them all).
type RetentionStore interface {
	DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error)
	ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error)
	DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error)
	DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error)
	DeleteExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error)
	DeleteExpiredAuditRecords(ctx context.Context, before time.Time, limit int) (int, error)
	DeleteExpiredTasks(ctx context.Context, before time.Time, limit int) (int, error)
}

// TokenGrace is how long a token is kept after it expired or was revoked,
// so that a request presenting it meanwhile can still be told why it is
// refused, and a console can show it revoked.
const TokenGrace = 24 * time.Hour

// CleanerConfig configures a Cleaner. Zero fields take the defaults.
type CleanerConfig struct {
	Store RetentionStore
	// Retention is how long messages and attempts are kept, and finished
	// or failed background tasks after their last update; zero keeps them
	// forever. Payloads with their own retention, expired idempotency keys
	// and tokens past TokenGrace are cleaned either way.
	Retention time.Duration
	// AuditRetention is how long audit records are kept; zero keeps them
	// forever.
	AuditRetention time.Duration
	// Interval is the pause between passes (default one minute).
	Interval time.Duration
	// BatchSize is the most rows one statement deletes (default 1,000).
	BatchSize int
	// Pause is the wait between two batches of one pass (default 10 ms),
	// so ingest and dispatch get the database in between.
	Pause  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// CleanerCounts is what one pass removed.
type CleanerCounts struct {
	Attempts, Payloads, Messages, IdempotencyKeys, Tokens, AuditRecords, Tasks int
}

// Cleaner enforces retention: every Interval it deletes expired attempts,
// drops expired payloads, deletes expired messages (with their deliveries
// and attempts; never one still being delivered), forgets expired
// idempotency keys and deletes tokens that expired or were revoked more
// than TokenGrace ago (with their sessions), audit records older than
// AuditRetention and background tasks finished or failed more than
// Retention ago (never a running one), each in batches of BatchSize. On
// PostgreSQL the batches of several nodes' cleaners skip each other's
// locked rows, so every node can run one.
type Cleaner struct {
	cfg CleanerConfig
}

// NewCleaner returns a cleaner; cfg.Store is required.
func NewCleaner(cfg CleanerConfig) (*Cleaner, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: cleaner needs a store")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("dispatch: retention %s is negative", cfg.Retention)
	}
	if cfg.AuditRetention < 0 {
		return nil, fmt.Errorf("dispatch: audit retention %s is negative", cfg.AuditRetention)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 10 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cleaner{cfg: cfg}, nil
}

// Run makes a pass at once and then every Interval until ctx ends. A
// failed pass (the database away, say) is logged and retried at the next
// interval; what it deleted before failing stays deleted.
func (c *Cleaner) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		counts, err := c.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.cfg.Logger.Warn("retention pass failed; retrying at the next interval", "err", err, "next", c.cfg.Interval)
		} else if counts != (CleanerCounts{}) {
			c.cfg.Logger.Info("retention pass", "attempts", counts.Attempts, "payloads", counts.Payloads,
				"messages", counts.Messages, "idempotency_keys", counts.IdempotencyKeys, "tokens", counts.Tokens, "audit_records", counts.AuditRecords,
				"tasks", counts.Tasks)
		}
		t.Reset(c.cfg.Interval)
	}
}

// Pass deletes everything expired at the cleaner's Now, a batch at a time,
// and reports how much. Attempts go first: a message's delete then has
// fewer rows to cascade to.
func (c *Cleaner) Pass(ctx context.Context) (CleanerCounts, error) {
	var counts CleanerCounts
	now := c.cfg.Now()
	steps := []struct {
		what  string
		aged  bool // bounded by Retention: skipped when it is zero
		count *int
		run   func(ctx context.Context, limit int) (int, error)
	}{
		{"attempts", true, &counts.Attempts, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.DeleteExpiredAttempts(ctx, now.Add(-c.cfg.Retention), limit)
		}},
		{"payloads", false, &counts.Payloads, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.ExpirePayloads(ctx, now, limit)
		}},
		{"messages", true, &counts.Messages, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.DeleteExpiredMessages(ctx, now.Add(-c.cfg.Retention), limit)
		}},
		{"idempotency keys", false, &counts.IdempotencyKeys, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.DeleteExpiredIdempotent(ctx, now, limit)
		}},
		{"tokens", false, &counts.Tokens, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.DeleteExpiredTokens(ctx, now.Add(-TokenGrace), limit)
		}},
		{"audit records", false, &counts.AuditRecords, func(ctx context.Context, limit int) (int, error) {
			if c.cfg.AuditRetention == 0 { // kept forever
				return 0, nil
			}
			return c.cfg.Store.DeleteExpiredAuditRecords(ctx, now.Add(-c.cfg.AuditRetention), limit)
		}},
		{"tasks", true, &counts.Tasks, func(ctx context.Context, limit int) (int, error) {
			return c.cfg.Store.DeleteExpiredTasks(ctx, now.Add(-c.cfg.Retention), limit)
		}},
	}
	for _, s := range steps {
		if s.aged && c.cfg.Retention == 0 {
			continue
		}
		for {
			n, err := s.run(ctx, c.cfg.BatchSize)
			*s.count += n
			if err != nil {
				return counts, fmt.Errorf("clean %s: %w", s.what, err)
			}
			if n < c.cfg.BatchSize {
				break
			}
			select {
			case <-ctx.Done():
				return counts, ctx.Err()
			case <-time.After(c.cfg.Pause):
			}
		}
	}
	return counts, nil
}
