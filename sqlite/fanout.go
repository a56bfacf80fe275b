package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald"
)

// fanOutDeliveryArgs is the number of parameters per row of a FanOut
// delivery insert: each row carries its own status and lease (FIFO
// endpoints' rows are pending among leased ones) and its own due time.
const fanOutDeliveryArgs = 10

// fanOutInsert is the statement inserting size deliveries of a FanOut
// chunk. A (message, endpoint) pair that already has a delivery (resend,
// replay-missing) keeps it: the row is skipped, not an error.
func fanOutInsert(size int) string {
	return multiRowInsert(`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts,
		created_at, updated_at, lease_owner, lease_expires_at) VALUES `, "(?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)", size) +
		` ON CONFLICT (message_id, endpoint_id) DO NOTHING`
}

// insertFanOut stores the fan-out marker of m, a message whose deliveries
// FanOut creates after the batch (see herald.DefersFanOut).
func insertFanOut(ctx context.Context, tx *sql.Tx, m *herald.Message) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO fanout (message_id, app_id, created_at) VALUES (?, ?, ?)`,
		m.ID, m.AppID, micros(m.CreatedAt)); err != nil {
		return fmt.Errorf("insert fan-out marker: %w", err)
	}
	return nil
}

// FanOut continues the oldest deferred fan-out by one chunk of at most
// limit endpoints, in a write transaction of its own (see herald.Store).
// On SQLite one process owns the database, so no other caller works on
// the same marker.
func (s *Store) FanOut(ctx context.Context, limit int, lease herald.Lease) (herald.FanOutChunk, error) {
	if limit < 1 {
		return herald.FanOutChunk{}, herald.Errorf(herald.EINVALID, "A fan-out chunk must hold at least one endpoint.")
	}
	// The worker looks every second: a reader answers "none" without
	// taking the writer from ingest.
	var waiting bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM fanout)`).Scan(&waiting); err != nil {
		return herald.FanOutChunk{}, s.fail("fan out", err)
	}
	if !waiting {
		return herald.FanOutChunk{}, nil
	}
	lease.Until = lease.Until.Truncate(time.Microsecond)
	var chunk herald.FanOutChunk
	err := s.writeAlone(ctx, func(ctx context.Context, tx *sql.Tx) error {
		chunk = herald.FanOutChunk{}
		var msgID, appID, after string
		err := tx.QueryRowContext(ctx, `SELECT message_id, app_id, after_endpoint FROM fanout ORDER BY message_id LIMIT 1`).
			Scan(&msgID, &appID, &after)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read fan-out marker: %w", err)
		}
		m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageReadColumns+` FROM message WHERE id = ?`, msgID))
		if err != nil {
			return fmt.Errorf("read fan-out message: %w", err)
		}
		eps, err := fanOutRoutes(ctx, tx, appID, after, m.CreatedAt, limit)
		if err != nil {
			return err
		}
		dels, err := s.insertFanOutDeliveries(ctx, tx, herald.Route(nil, m, eps, lease))
		if err != nil {
			return err
		}
		if len(dels) > 0 {
			var usage herald.UsageCounts
			usage.Add(m.AppID, m.CreatedAt, 0, len(dels))
			st := tx.StmtContext(ctx, s.batch.addUsage)
			err := addUsage(ctx, st, usage.Rows())
			st.Close()
			if err != nil {
				return err
			}
		}
		done := len(eps) < limit
		if done {
			_, err = tx.ExecContext(ctx, `DELETE FROM fanout WHERE message_id = ?`, msgID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE fanout SET after_endpoint = ? WHERE message_id = ?`, eps[len(eps)-1].ID, msgID)
		}
		if err != nil {
			return fmt.Errorf("move fan-out marker: %w", err)
		}
		chunk = herald.FanOutChunk{Message: m, Deliveries: dels, Done: done}
		return nil
	})
	if err != nil {
		return herald.FanOutChunk{}, s.fail("fan out", err)
	}
	return chunk, nil
}

// fanOutRoutes reads the routing data of up to limit endpoints of appID
// after the endpoint ID after, in ID order, created no later than at.
func fanOutRoutes(ctx context.Context, tx *sql.Tx, appID, after string, at time.Time, limit int) ([]herald.Endpoint, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, disabled, filter_types, channels, ordering, url = 'poller://' FROM endpoint
		WHERE app_id = ? AND id > ? AND created_at <= ? ORDER BY id LIMIT ?`, appID, after, micros(at), limit)
	if err != nil {
		return nil, fmt.Errorf("load fan-out routes: %w", err)
	}
	defer rows.Close()
	eps := make([]herald.Endpoint, 0, limit)
	for rows.Next() {
		r, ok, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("load fan-out routes: %w", err)
		}
		if ok {
			eps = append(eps, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load fan-out routes: %w", err)
	}
	return eps, nil
}

// insertFanOutDeliveries inserts dels, leased or pending each as it says,
// with the prepared multi-row statements, and returns those inserted: a
// (message, endpoint) pair that already has a delivery keeps it. Each
// row's due time and creation time are the delivery's own, as
// herald.NewDelivery set them from the message.
func (s *Store) insertFanOutDeliveries(ctx context.Context, tx *sql.Tx, dels []herald.Delivery) ([]*herald.Delivery, error) {
	out := make([]*herald.Delivery, 0, len(dels))
	args := make([]any, 0, deliveryChunks[0]*fanOutDeliveryArgs)
	for i, size := range deliveryChunks {
		for len(dels) >= size {
			rows := dels[:size]
			args = args[:0]
			for j := range rows {
				d := &rows[j]
				var owner, until any
				if d.Status == herald.DeliverySending {
					owner, until = d.LeaseOwner, micros(d.LeaseExpiresAt)
				}
				args = append(args, d.ID, d.AppID, d.MessageID, d.EndpointID, string(d.Status),
					micros(d.NextAttemptAt), micros(d.CreatedAt), micros(d.UpdatedAt), owner, until)
			}
			st := tx.StmtContext(ctx, s.batch.insertFanOut[i])
			res, err := st.ExecContext(ctx, args...)
			st.Close()
			if err != nil {
				return nil, fmt.Errorf("insert fan-out deliveries: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, fmt.Errorf("insert fan-out deliveries: %w", err)
			}
			for j := range rows {
				if n == int64(size) {
					out = append(out, &rows[j])
					continue
				}
				// Rare: some pairs had a delivery already; keep the rows
				// that are this chunk's.
				var mine bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM delivery WHERE id = ?)`, rows[j].ID).Scan(&mine); err != nil {
					return nil, fmt.Errorf("insert fan-out deliveries: %w", err)
				}
				if mine {
					out = append(out, &rows[j])
				}
			}
			dels = dels[size:]
		}
	}
	return out, nil
}
