package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

var _ herald.NodeStore = (*Store)(nil)

// nodeColumns are the node table's columns in scanNode order.
const nodeColumns = `name, version, host, pid, started_at, heartbeat_at, taken_over_at, coalesce(taken_over_by, '')`

// RegisterNode records n as alive with a heartbeat at the database's now
// (see herald.NodeStore); n.HeartbeatAt is set to it.
func (s *Store) RegisterNode(ctx context.Context, n *herald.Node) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO node (name, version, host, pid, started_at, heartbeat_at)
		VALUES ($1, $2, $3, $4, $5, now()) RETURNING heartbeat_at`,
		n.Name, n.Version, n.Host, n.PID, n.StartedAt).Scan(&n.HeartbeatAt)
	if err != nil {
		return s.fail("register node", err)
	}
	return nil
}

// HeartbeatNode renews the heartbeat of a node not taken over; ENOTFOUND
// when it was taken over or is unknown. The row lock orders it with a
// takeover: whichever commits first wins, and a takeover that waited
// re-checks the renewed heartbeat.
func (s *Store) HeartbeatNode(ctx context.Context, name string) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `UPDATE node SET heartbeat_at = now()
		WHERE name = $1 AND taken_over_at IS NULL RETURNING heartbeat_at`, name).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, herald.Errorf(herald.ENOTFOUND, "Node %s is not registered as alive: it was taken over.", name)
	}
	if err != nil {
		return time.Time{}, s.fail("node heartbeat", err)
	}
	return at, nil
}

// TakeOverDeadNodes takes over the nodes whose heartbeat is older than
// timeout (see herald.NodeStore). Besides the newly dead, it returns to the
// queue any delivery still leased to a node taken over earlier (one that
// stored deliveries under its lease after it was taken over and before it
// noticed), so nothing waits for such a lease to expire.
func (s *Store) TakeOverDeadNodes(ctx context.Context, by string, timeout time.Duration) ([]*herald.Node, int, error) {
	if timeout <= 0 {
		return nil, 0, herald.Errorf(herald.EINVALID, "The node timeout must be positive.")
	}
	now := s.now()
	var dead []*herald.Node
	var moved int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		dead = dead[:0]
		rows, err := tx.Query(ctx, `UPDATE node SET taken_over_at = now(), taken_over_by = $1
			WHERE taken_over_at IS NULL AND name <> $1 AND heartbeat_at < now() - $2::interval
			RETURNING `+nodeColumns, by, timeout)
		if err != nil {
			return err
		}
		dead, err = pgx.CollectRows(rows, scanNode)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM node WHERE taken_over_at < now() - $1::interval`, herald.NodeKeep); err != nil {
			return err
		}
		var gone []string
		rows, err = tx.Query(ctx, `SELECT name FROM node WHERE taken_over_at IS NOT NULL`)
		if err != nil {
			return err
		}
		if gone, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(gone) == 0 {
			return err
		}
		// Through the partial index delivery_lease: only sending rows.
		tag, err := tx.Exec(ctx, `UPDATE delivery SET status = 'pending', next_attempt_at = $1,
			lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
			WHERE status = 'sending' AND lease_expires_at IS NOT NULL AND lease_owner = ANY($2::text[])`, now, gone)
		if err != nil {
			return err
		}
		if moved = tag.RowsAffected(); moved > 0 {
			return notifyWork(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, 0, s.fail("take over dead nodes", err)
	}
	return dead, int(moved), nil
}

// ListNodes returns the registered nodes, newest start first, with the
// database's now.
func (s *Store) ListNodes(ctx context.Context) ([]*herald.Node, time.Time, error) {
	var nodes []*herald.Node
	var now time.Time
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+nodeColumns+` FROM node ORDER BY started_at DESC, name`)
		if err != nil {
			return err
		}
		nodes, err = pgx.CollectRows(rows, scanNode)
		return err
	})
	if err != nil {
		return nil, time.Time{}, s.fail("list nodes", err)
	}
	return nodes, now, nil
}

// DeregisterNode deletes the node's row.
func (s *Store) DeregisterNode(ctx context.Context, name string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM node WHERE name = $1`, name); err != nil {
		return s.fail("deregister node", err)
	}
	return nil
}

func scanNode(row pgx.CollectableRow) (*herald.Node, error) {
	var n herald.Node
	var takenOver *time.Time
	if err := row.Scan(&n.Name, &n.Version, &n.Host, &n.PID, &n.StartedAt, &n.HeartbeatAt, &takenOver, &n.TakenOverBy); err != nil {
		return nil, fmt.Errorf("scan node: %w", err)
	}
	if takenOver != nil {
		n.TakenOverAt = *takenOver
	}
	return &n, nil
}
