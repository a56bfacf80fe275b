package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// workChannelSQL names the NOTIFY channel on which a store announces
// deliveries that became due for any node: released, rescued, resent,
// recovered, replayed, or created without a lease. Listen wakes idle nodes
// with it, so they claim at once instead of at their next poll. The
// channel is per schema (notifications are per database): deployments,
// or test runs, in other schemas of the same database do not wake each
// other. Channel names are identifiers, at most 63 bytes.
const workChannelSQL = `left('herald_work:' || current_schema(), 63)`

// Backoff between reconnections of Listen, and how long it waits for a
// notification before checking that its connection is still alive.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
	listenPingEvery  = 30 * time.Second
)

// notifyWork queues a notification on workChannel in tx; PostgreSQL sends
// it to the listeners when tx commits, and not at all if it rolls back.
// Notifications of one transaction are folded into one.
func notifyWork(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify(`+workChannelSQL+`, '')`); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Listen calls wake whenever any store on this database announces work
// (including this one), until ctx ends; then it returns nil. It holds one
// dedicated connection outside the pool, LISTENing on the schema's work
// channel, and
// reconnects with exponential backoff (100 ms to 10 s) whenever the
// connection fails. It also calls wake after every (re)connection, since
// notifications sent while it was disconnected are lost. Connection
// failures are logged to Config.Logger, not returned: a node keeps polling
// while the listener retries, so the error result is always nil today and
// reserved for failures that retrying cannot cure.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		connected, err := s.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			break
		}
		if connected {
			backoff = listenMinBackoff
		}
		s.log.Warn("listen for work: connection lost; polling until it is back", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, listenMaxBackoff)
	}
	return nil
}

// listenOnce connects, LISTENs and calls wake for each notification until
// the connection fails or ctx ends. connected reports whether LISTEN took
// effect, so that the caller resets its backoff.
func (s *Store) listenOnce(ctx context.Context, wake func()) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("listen: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+workChannelSQL).Scan(&channel); err != nil {
		return false, fmt.Errorf("listen: channel name: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	wake()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenPingEvery)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: make sure the server is still there, as
			// a dead peer may otherwise go unnoticed for a long time.
			if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
				return true, fmt.Errorf("listen: ping: %w", err)
			}
		default:
			return true, fmt.Errorf("listen: wait: %w", err)
		}
	}
}
