package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-webhooks/herald"
)

// The retention deletes each take one bounded batch in one short
// transaction; SKIP LOCKED lets the cleaners of several nodes share the
// work without waiting on each other or on a claim. Attempts and messages
// are walked by primary key: IDs sort by creation second, so
// "id < MinIDAt" is a range scan of the primary key, and created_at keeps
// the bound exact.

// DeleteExpiredAttempts deletes up to limit attempts created before before.
func (s *Store) DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM attempt WHERE id IN (
		SELECT id FROM attempt WHERE id < $1 AND created_at < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)`,
		herald.MinIDAt(herald.PrefixAttempt, before.Add(time.Second)), before, limit)
	return s.affected("delete expired attempts", tag, err)
}

// The cleaner and the verbs that queue a message's delivery again
// (ResendDelivery, RecoverEndpoint, ReplayMissing) race: a message the
// cleaner judged finished may have a delivery made pending again before
// the cleaner deletes it, and the delete would cascade to that delivery,
// losing a resend the API had acknowledged (or, for a payload, sending one
// that was dropped). Two halves close the race:
//
//   - The re-queueing verbs take FOR KEY SHARE on each message whose
//     delivery they touch, before touching it. While one holds it, the
//     cleaner's FOR UPDATE SKIP LOCKED passes the message over; when the
//     cleaner holds the message first, the verb waits and then finds it
//     gone (not found, or skipped) instead of re-queueing a delivery about
//     to be deleted. An insert's foreign key check alone takes that lock
//     too late, and an update of an existing delivery takes none.
//   - The cleaner locks its batch first (expiredMessagesSQL,
//     expiringPayloadsSQL) and only then, in a second statement whose
//     snapshot follows the commit of any verb that held a lock a moment
//     earlier, checks again that no delivery is pending or being sent. In
//     one statement the check would read a snapshot taken before the
//     lock, which a verb that committed in between does not reach.
const (
	expiringPayloadsSQL = `SELECT m.id FROM message m
		WHERE m.payload_expires_at <= $1
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)
		ORDER BY m.payload_expires_at LIMIT $2 FOR UPDATE OF m SKIP LOCKED`
	expirePayloadsSQL = `UPDATE message m SET payload = NULL, payload_expires_at = NULL WHERE m.id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)`

	expiredMessagesSQL = `SELECT m.id FROM message m
		WHERE m.id < $1 AND m.created_at < $2
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)
		ORDER BY m.id LIMIT $3 FOR UPDATE OF m SKIP LOCKED`
	deleteMessagesSQL = `DELETE FROM message m WHERE m.id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)`
)

// ExpirePayloads drops the payloads of up to limit messages past their
// payload retention with no delivery pending or being sent.
func (s *Store) ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	n, err := s.lockThenApply(ctx, expiringPayloadsSQL, []any{now, limit}, expirePayloadsSQL)
	if err != nil {
		return 0, s.fail("expire payloads", err)
	}
	return n, nil
}

// DeleteExpiredMessages deletes up to limit messages created before before
// with no delivery pending or being sent; foreign keys cascade to their
// deliveries and attempts.
func (s *Store) DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	n, err := s.lockThenApply(ctx, expiredMessagesSQL,
		[]any{herald.MinIDAt(herald.PrefixMessage, before.Add(time.Second)), before, limit}, deleteMessagesSQL)
	if err != nil {
		return 0, s.fail("delete expired messages", err)
	}
	return n, nil
}

// lockThenApply runs, in one transaction, lockSQL (which locks and returns
// message IDs) and then applySQL on those IDs, and reports the rows
// applySQL changed.
func (s *Store) lockThenApply(ctx context.Context, lockSQL string, args []any, applySQL string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, lockSQL, args...)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, applySQL, ids)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// affected returns the rows a retention statement changed.
func (s *Store) affected(op string, tag pgconn.CommandTag, err error) (int, error) {
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(tag.RowsAffected()), nil
}
