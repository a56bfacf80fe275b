package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// errPollConsumerNotFound is GetPollConsumer's ENOTFOUND.
var errPollConsumerNotFound = herald.Errorf(herald.ENOTFOUND, "Polling endpoint consumer not found.")

// pollWindowSQL reads a poll page's window: the rows after a position in
// poll order, through message_app_poll, without their payloads.
const pollWindowSQL = `SELECT poll_seq, id, event_type, channels, created_at FROM message
	WHERE app_id = ? AND poll_seq > ? ORDER BY poll_seq LIMIT ?`

// pollStartSQL finds the first poll_seq among the first messages created
// at or after a time, through message_app_created.
const pollStartSQL = `SELECT min(poll_seq) FROM (SELECT poll_seq FROM message
	WHERE app_id = ? AND created_at >= ? ORDER BY created_at LIMIT ?)`

// pollFetchSQL reads the kept messages of a page by ID; %s is the
// placeholders.
const pollFetchSQL = `SELECT ` + messageReadColumns + ` FROM message WHERE id IN (%s)`

// PollMessages reads a page of application appID's messages in poll_seq
// order (see herald.PollStore). poll_seq follows the single writer's
// commit order (migration 0017), so comparing it alone is exact; the
// position's message ID is not needed. Both reads share one snapshot.
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
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return herald.PollPage{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	rows, err := tx.QueryContext(ctx, pollWindowSQL, appID, opts.From.Seq, window)
	if err != nil {
		return herald.PollPage{}, err
	}
	defer rows.Close()
	page := herald.PollPage{Next: opts.From}
	var keep []string
	read := 0
	for rows.Next() {
		var (
			id, eventType string
			channels      sql.NullString
			seq, created  int64
		)
		if err := rows.Scan(&seq, &id, &eventType, &channels, &created); err != nil {
			return herald.PollPage{}, err
		}
		read++
		page.Next = herald.PollPosition{Seq: seq, MessageID: id}
		list, err := parseList(channels)
		if err != nil {
			return herald.PollPage{}, err
		}
		if opts.Filter.Keeps(eventType, list, fromMicros(created)) {
			keep = append(keep, id)
			if len(keep) == opts.Limit {
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return herald.PollPage{}, err
	}
	rows.Close()
	page.Done = len(keep) < opts.Limit && read < window
	if len(keep) == 0 {
		return page, nil
	}
	q := fmt.Sprintf(pollFetchSQL, "?"+strings.Repeat(", ?", len(keep)-1))
	args := make([]any, len(keep))
	for i, id := range keep {
		args[i] = id
	}
	msgRows, err := tx.QueryContext(ctx, q, args...)
	msgs, err := collect(msgRows, err, scanMessage)
	if err != nil {
		return herald.PollPage{}, err
	}
	page.Messages = herald.InOrder(keep, msgs)
	return page, nil
}

// PollStart returns the position before the first message created at or
// after at, or after every message (poll_clock) (see herald.PollStore).
func (s *Store) PollStart(ctx context.Context, appID string, at time.Time) (herald.PollPosition, error) {
	var first sql.NullInt64
	if !at.IsZero() {
		err := s.r.QueryRowContext(ctx, pollStartSQL, appID, micros(at), herald.DefaultPollWindow).Scan(&first)
		if err != nil {
			return herald.PollPosition{}, s.fail("poll start", err)
		}
	}
	if first.Valid {
		return herald.PollPosition{Seq: first.Int64 - 1}, nil
	}
	var head int64
	if err := s.r.QueryRowContext(ctx, `SELECT seq FROM poll_clock WHERE id = 1`).Scan(&head); err != nil {
		return herald.PollPosition{}, s.fail("poll start", err)
	}
	return herald.PollPosition{Seq: head}, nil
}

// GetPollConsumer returns a consumer's stored position.
func (s *Store) GetPollConsumer(ctx context.Context, endpointID, consumerID string) (*herald.PollConsumer, error) {
	c := herald.PollConsumer{EndpointID: endpointID, ConsumerID: consumerID}
	var updated int64
	err := s.r.QueryRowContext(ctx, `SELECT app_id, seq, message_id, updated_at FROM poll_consumer
		WHERE endpoint_id = ? AND consumer_id = ?`, endpointID, consumerID).Scan(&c.AppID, &c.Position.Seq, &c.Position.MessageID, &updated)
	if err != nil {
		return nil, s.fail("get poll consumer", notFound(err, errPollConsumerNotFound))
	}
	c.UpdatedAt = fromMicros(updated)
	return &c, nil
}

// SetPollConsumer stores a consumer's position; the endpoint must be one of
// the application's.
func (s *Store) SetPollConsumer(ctx context.Context, c *herald.PollConsumer) error {
	c.UpdatedAt = c.UpdatedAt.Truncate(time.Microsecond)
	err := s.change(ctx, &auditTarget{"endpoint.poller.seek", herald.AuditEndpoint, c.EndpointID, c.AppID}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `INSERT INTO poll_consumer (endpoint_id, consumer_id, app_id, seq, message_id, updated_at)
			SELECT id, ?, app_id, ?, ?, ? FROM endpoint WHERE id = ? AND app_id = ?
			ON CONFLICT (endpoint_id, consumer_id) DO UPDATE SET seq = excluded.seq, message_id = excluded.message_id,
				updated_at = excluded.updated_at`,
			c.ConsumerID, c.Position.Seq, c.Position.MessageID, micros(c.UpdatedAt), c.EndpointID, c.AppID)
		if err != nil {
			return fmt.Errorf("upsert poll consumer: %w", err)
		}
		return mustAffect(res, errEndpointNotFound)
	})
	if err != nil {
		return s.fail("set poll consumer", err)
	}
	return nil
}
