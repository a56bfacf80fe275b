package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// errPollConsumerNotFound is GetPollConsumer's ENOTFOUND.
var errPollConsumerNotFound = herald.Errorf(herald.ENOTFOUND, "Polling endpoint consumer not found.")

// pollHorizon is the oldest transaction still running when the statement
// took its snapshot: every transaction below it has committed or aborted,
// so the messages written below it are all there is below it, for good.
const pollHorizon = `pg_snapshot_xmin(pg_current_snapshot())`

// pollWindowSQL reads a poll page's window: the rows after a position in
// poll order below the horizon, through message_app_poll, without their
// payloads.
const pollWindowSQL = `SELECT m.write_xid::text::bigint AS seq, m.id, m.event_type, m.channels, m.created_at FROM message m
	WHERE m.app_id = $1 AND (m.write_xid, m.id) > ($2::text::xid8, $3) AND m.write_xid < ` + pollHorizon + `
	ORDER BY m.write_xid, m.id LIMIT $4`

// pollStartSQL finds the lowest write_xid among the first messages created
// at or after a time (through message_app_created), capped by the horizon.
const pollStartSQL = `SELECT least(min(w.write_xid), ` + pollHorizon + `)::text::bigint
	FROM (SELECT write_xid FROM message WHERE app_id = $1 AND created_at >= $2 ORDER BY created_at LIMIT $3) w`

// pollFetchSQL reads the kept messages of a page by ID.
const pollFetchSQL = `SELECT ` + messageReadColumns + ` FROM message WHERE id = ANY($1) AND app_id = $2`

// PollMessages reads a page of application appID's messages in
// (write_xid, id) order, only below the horizon (see herald.PollStore and
// migration 0016): a writer whose transaction is still open holds the
// horizon at or below its own ID, so its messages cannot land behind a
// position handed out meanwhile.
func (s *Store) PollMessages(ctx context.Context, appID string, opts herald.PollOptions) (herald.PollPage, error) {
	page, err := s.pollMessages(ctx, appID, opts)
	if err != nil {
		return herald.PollPage{}, s.fail("poll messages", err)
	}
	return page, nil
}

func (s *Store) pollMessages(ctx context.Context, appID string, opts herald.PollOptions) (herald.PollPage, error) {
	window := opts.Window
	if window <= 0 {
		window = herald.DefaultPollWindow
	}
	page := herald.PollPage{Next: opts.From}
	var keep []string
	// The window is read whole (a few hundred short rows at most): a
	// half-read result would hold the connection for the second query.
	rows, _ := s.pool.Query(ctx, pollWindowSQL, appID, fmt.Sprint(opts.From.Seq), opts.From.MessageID, window)
	type row struct {
		seq       int64
		id, typ   string
		channels  []string
		createdAt time.Time
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.seq, &x.id, &x.typ, &x.channels, &x.createdAt)
		return x, err
	})
	if err != nil {
		return herald.PollPage{}, err
	}
	for _, x := range got {
		page.Next = herald.PollPosition{Seq: x.seq, MessageID: x.id}
		if opts.Filter.Keeps(x.typ, x.channels, x.createdAt) {
			keep = append(keep, x.id)
			if len(keep) == opts.Limit {
				break
			}
		}
	}
	page.Done = len(keep) < opts.Limit && len(got) < window
	if len(keep) == 0 {
		return page, nil
	}
	rows, _ = s.pool.Query(ctx, pollFetchSQL, keep, appID)
	msgs, err := collect(rows, nil, scanMessage)
	if err != nil {
		return herald.PollPage{}, err
	}
	page.Messages = herald.InOrder(keep, msgs)
	return page, nil
}

// PollStart returns the position before the first message created at or
// after at, never above the horizon; or the horizon itself (see
// herald.PollStore). A message committed above the horizon before the call
// may come again after the position: never one skipped.
func (s *Store) PollStart(ctx context.Context, appID string, at time.Time) (herald.PollPosition, error) {
	var seq int64
	var err error
	if at.IsZero() {
		err = s.pool.QueryRow(ctx, `SELECT `+pollHorizon+`::text::bigint`).Scan(&seq)
	} else {
		err = s.pool.QueryRow(ctx, pollStartSQL, appID, at, herald.DefaultPollWindow).Scan(&seq)
	}
	if err != nil {
		return herald.PollPosition{}, s.fail("poll start", err)
	}
	return herald.PollPosition{Seq: seq}, nil
}

// GetPollConsumer returns a consumer's stored position.
func (s *Store) GetPollConsumer(ctx context.Context, endpointID, consumerID string) (*herald.PollConsumer, error) {
	c := herald.PollConsumer{EndpointID: endpointID, ConsumerID: consumerID}
	err := s.pool.QueryRow(ctx, `SELECT app_id, seq, message_id, updated_at FROM poll_consumer
		WHERE endpoint_id = $1 AND consumer_id = $2`, endpointID, consumerID).Scan(&c.AppID, &c.Position.Seq, &c.Position.MessageID, &c.UpdatedAt)
	if err != nil {
		return nil, s.fail("get poll consumer", notFound(err, errPollConsumerNotFound))
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	return &c, nil
}

// SetPollConsumer stores a consumer's position; the endpoint must be one of
// the application's.
func (s *Store) SetPollConsumer(ctx context.Context, c *herald.PollConsumer) error {
	c.UpdatedAt = c.UpdatedAt.Truncate(time.Microsecond)
	err := s.change(ctx, &auditTarget{"endpoint.poller.seek", herald.AuditEndpoint, c.EndpointID, c.AppID}, func(db execer) error {
		tag, err := db.Exec(ctx, `INSERT INTO poll_consumer (endpoint_id, consumer_id, app_id, seq, message_id, updated_at)
			SELECT id, $1, app_id, $2, $3, $4 FROM endpoint WHERE id = $5 AND app_id = $6
			ON CONFLICT (endpoint_id, consumer_id) DO UPDATE SET seq = excluded.seq, message_id = excluded.message_id,
				updated_at = excluded.updated_at`,
			c.ConsumerID, c.Position.Seq, c.Position.MessageID, c.UpdatedAt, c.EndpointID, c.AppID)
		if err != nil {
			return fmt.Errorf("upsert poll consumer: %w", err)
		}
		return mustAffect(tag, errEndpointNotFound)
	})
	if err != nil {
		return s.fail("set poll consumer", err)
	}
	return nil
}
