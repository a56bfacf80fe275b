package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// queueFanOuts queues the insert of the fan-out markers of msgs, messages
// whose deliveries FanOut creates after the batch (see
// herald.DefersFanOut).
func queueFanOuts(pb *pgx.Batch, msgs []*herald.Message) {
	if len(msgs) == 0 {
		return
	}
	ids := make([]string, len(msgs))
	apps := make([]string, len(msgs))
	ats := make([]time.Time, len(msgs))
	for i, m := range msgs {
		ids[i], apps[i], ats[i] = m.ID, m.AppID, m.CreatedAt
	}
	pb.Queue(`INSERT INTO fanout (message_id, app_id, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`, ids, apps, ats)
}

// insertFanOutDeliveriesSQL inserts a chunk's deliveries, each with its
// own due time ($5) and creation time ($6); $7 says which are leased
// (sending) to owner $8 until $9. A (message, endpoint) pair that already
// has a delivery keeps it and returns no ID.
const insertFanOutDeliveriesSQL = `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at,
		attempts, lease_owner, lease_expires_at, trigger_type, created_at, updated_at)
	SELECT d.id, d.app_id, d.message_id, d.endpoint_id, CASE WHEN d.leased THEN 'sending' ELSE 'pending' END, d.due, 0,
		CASE WHEN d.leased THEN $8::text END, CASE WHEN d.leased THEN $9::timestamptz END, 0, d.at, d.at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::boolean[])
		AS d (id, app_id, message_id, endpoint_id, due, at, leased)
	ON CONFLICT (message_id, endpoint_id) DO NOTHING
	RETURNING id`

// FanOut continues the oldest deferred fan-out by one chunk of at most
// limit endpoints, in one transaction (see herald.Store). The marker is
// taken FOR UPDATE SKIP LOCKED, so nodes working at once take different
// fan-outs, and one left by a crashed node is continued by any node; the
// endpoints are locked FOR KEY SHARE, as ingest locks them, so a delete
// waits for the chunk instead of failing its foreign keys. Pending
// deliveries wake the other nodes (NOTIFY).
func (s *Store) FanOut(ctx context.Context, limit int, lease herald.Lease) (herald.FanOutChunk, error) {
	if limit < 1 {
		return herald.FanOutChunk{}, herald.Errorf(herald.EINVALID, "A fan-out chunk must hold at least one endpoint.")
	}
	lease.Until = lease.Until.Truncate(time.Microsecond)
	var chunk herald.FanOutChunk
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		chunk = herald.FanOutChunk{}
		var msgID, appID, after string
		err := tx.QueryRow(ctx, `SELECT message_id, app_id, after_endpoint FROM fanout
			ORDER BY message_id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&msgID, &appID, &after)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read fan-out marker: %w", err)
		}
		m, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageReadColumns+` FROM message WHERE id = $1`, msgID))
		if err != nil {
			return fmt.Errorf("read fan-out message: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT id, disabled, filter_types, channels, coalesce(ordering, ''), url = 'poller://' FROM endpoint
			WHERE app_id = $1 AND id > $2 AND created_at <= $3 ORDER BY id LIMIT $4 FOR KEY SHARE`, appID, after, m.CreatedAt, limit)
		eps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (herald.Endpoint, error) {
			var r herald.Endpoint
			err := row.Scan(&r.ID, &r.Disabled, &r.FilterTypes, &r.Channels, &r.Ordering, &r.Poller)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("load fan-out routes: %w", err)
		}
		dels, err := insertFanOutDeliveries(ctx, tx, herald.Route(nil, m, eps, lease), lease)
		if err != nil {
			return err
		}
		if len(dels) > 0 {
			var usage herald.UsageCounts
			usage.Add(m.AppID, m.CreatedAt, 0, len(dels))
			if err := addUsage(ctx, tx, usage.Rows()); err != nil {
				return err
			}
		}
		done := len(eps) < limit
		if done {
			_, err = tx.Exec(ctx, `DELETE FROM fanout WHERE message_id = $1`, msgID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE fanout SET after_endpoint = $1 WHERE message_id = $2`, eps[len(eps)-1].ID, msgID)
		}
		if err != nil {
			return fmt.Errorf("move fan-out marker: %w", err)
		}
		chunk = herald.FanOutChunk{Message: m, Deliveries: dels, Done: done}
		if anyPending([]herald.MessageResult{{Deliveries: dels}}) {
			return notifyWork(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return herald.FanOutChunk{}, s.fail("fan out", err)
	}
	return chunk, nil
}

// insertFanOutDeliveries inserts dels with one statement and returns those
// inserted; each row's due time and creation time are the delivery's own,
// as herald.NewDelivery set them from the message.
func insertFanOutDeliveries(ctx context.Context, tx pgx.Tx, dels []herald.Delivery, lease herald.Lease) ([]*herald.Delivery, error) {
	if len(dels) == 0 {
		return nil, nil
	}
	ids := make([]string, len(dels))
	apps := make([]string, len(dels))
	msgIDs := make([]string, len(dels))
	eps := make([]string, len(dels))
	dues := make([]time.Time, len(dels))
	ats := make([]time.Time, len(dels))
	leased := make([]bool, len(dels))
	for i := range dels {
		d := &dels[i]
		ids[i], apps[i], msgIDs[i], eps[i], dues[i], ats[i] = d.ID, d.AppID, d.MessageID, d.EndpointID, d.NextAttemptAt, d.CreatedAt
		leased[i] = d.Status == herald.DeliverySending
	}
	owner, until := (*string)(nil), (*time.Time)(nil)
	if lease.Held() {
		owner, until = &lease.Owner, &lease.Until
	}
	rows, _ := tx.Query(ctx, insertFanOutDeliveriesSQL, ids, apps, msgIDs, eps, dues, ats, leased, owner, until)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert fan-out deliveries: %w", err)
	}
	inserted := make(map[string]bool, len(got))
	for _, id := range got {
		inserted[id] = true
	}
	out := make([]*herald.Delivery, 0, len(got))
	for i := range dels {
		if inserted[dels[i].ID] {
			out = append(out, &dels[i])
		}
	}
	return out, nil
}
