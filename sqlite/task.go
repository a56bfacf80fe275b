package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

var (
	errTaskNotFound  = herald.Errorf(herald.ENOTFOUND, "Background task not found.")
	errTaskNotLeased = herald.Errorf(herald.ECONFLICT, "The background task is leased to another runner.")
)

const taskColumns = `id, app_id, endpoint_id, kind, status, filter, done, error, created_at, updated_at, result`

// CreateTask stores a new running task, after checking that its
// application (and endpoint) exist, with the audit record of its start.
func (s *Store) CreateTask(ctx context.Context, t *herald.Task, now time.Time) error {
	filter, err := json.Marshal(t.Filter)
	if err != nil {
		return s.fail("create task", err)
	}
	t.ID, t.Status, t.Done, t.Error = herald.NewIDAt(herald.PrefixTask, now), herald.TaskRunning, 0, ""
	t.CreatedAt, t.UpdatedAt = now, now
	target := &auditTarget{t.Kind.AuditAction(), herald.AuditEndpoint, t.EndpointID, t.AppID}
	t.Result = nil
	if t.Kind.Global() {
		target.resourceType, target.resourceID, target.appID = herald.AuditTask, t.ID, ""
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if t.Kind.Global() {
			// Statistics tasks read every application, or those named
			// in the filter; the handler resolved those, and one deleted
			// since is left out of the result.
		} else if t.EndpointID != "" {
			if err := endpointExists(ctx, tx, t.AppID, t.EndpointID); err != nil {
				return err
			}
		} else {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM application WHERE id = ?`, t.AppID).Scan(&one)
			if err != nil {
				return notFound(err, errAppNotFound)
			}
			target.resourceType, target.resourceID = herald.AuditApplication, t.AppID
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO background_task (`+taskColumns+`, cursor)
			VALUES (?, ?, ?, ?, 'running', ?, 0, '', ?, ?, NULL, '')`,
			t.ID, t.AppID, t.EndpointID, string(t.Kind), string(filter), micros(now), micros(now))
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, target)
	})
	if err != nil {
		return s.fail("create task", err)
	}
	return nil
}

// GetTask returns the task with the given ID.
func (s *Store) GetTask(ctx context.Context, id string) (*herald.Task, error) {
	t, err := scanTask(s.r.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM background_task WHERE id = ?`, id))
	if err != nil {
		return nil, s.fail("get task", notFound(err, errTaskNotFound))
	}
	return t, nil
}

// ListTasks returns a page of tasks by ID.
func (s *Store) ListTasks(ctx context.Context, opts herald.TaskListOptions) ([]*herald.Task, error) {
	var q strings.Builder
	args := make([]any, 0, 4)
	q.WriteString(`SELECT ` + taskColumns + ` FROM background_task WHERE 1 = 1`)
	if opts.Status != "" {
		q.WriteString(` AND status = ?`)
		args = append(args, string(opts.Status))
	}
	if opts.Kind != "" {
		q.WriteString(` AND kind = ?`)
		args = append(args, string(opts.Kind))
	}
	cond, order := pageClause("id", opts.ListOptions)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	q.WriteString(cond + order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	out, err := collect(rows, err, func(row scanner) (*herald.Task, error) { return scanTask(row) })
	if err != nil {
		return nil, s.fail("list tasks", err)
	}
	return out, nil
}

// claimTaskSQL leases the oldest running task whose lease is free, ?1's
// own or expired at ?3 to ?1 until ?2, through background_task_running.
const claimTaskSQL = `UPDATE background_task SET lease_owner = ?1, lease_expires_at = ?2
	WHERE id = (SELECT id FROM background_task WHERE status = 'running'
		AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_expires_at <= ?3) ORDER BY id LIMIT 1)
	RETURNING ` + taskColumns

// ClaimTask leases the oldest running task whose lease is free, expired
// or owner's own (the runner of this process after a restart: one process
// owns a SQLite database, so a lease of an earlier one is dead).
func (s *Store) ClaimTask(ctx context.Context, owner string, now, leaseUntil time.Time) (*herald.Task, error) {
	var t *herald.Task
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		t, err = scanTask(tx.QueryRowContext(ctx, claimTaskSQL, owner, micros(leaseUntil), micros(now)))
		if errors.Is(err, sql.ErrNoRows) {
			t, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, s.fail("claim task", err)
	}
	return t, nil
}

// RunTaskSlice does the next slice of the task's work and saves its
// progress in the same write transaction.
func (s *Store) RunTaskSlice(ctx context.Context, id, owner string, limit int, now, leaseUntil time.Time) (*herald.Task, error) {
	t, err := s.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Status != herald.TaskRunning {
		return t, nil
	}
	// What routing needs of the endpoint, read before the write like
	// ReplayMissing does; a deleted endpoint fails the task.
	var ep *herald.Endpoint
	var gone error
	if t.Kind == herald.TaskReplay {
		ep, err = s.routing(ctx, t.AppID, t.EndpointID)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			gone = err
		} else if err != nil {
			return nil, s.fail("run task slice", err)
		}
	}
	limit = max(limit, 1)
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var cursor string
		var leaseOwner sql.NullString
		t, err = scanTask(tx.QueryRowContext(ctx, `SELECT `+taskColumns+`, cursor, lease_owner FROM background_task WHERE id = ?`, id),
			&cursor, &leaseOwner)
		if err != nil {
			return notFound(err, errTaskNotFound)
		}
		if t.Status != herald.TaskRunning {
			return nil
		}
		if leaseOwner.String != owner {
			return errTaskNotLeased
		}
		var n int
		var done bool
		switch {
		case gone != nil:
			t.Status, t.Error = herald.TaskFailed, gone.Error()
		case t.Kind == herald.TaskRecover || t.Kind == herald.TaskBulkReplay:
			n, cursor, done, err = requeueSlice(ctx, tx, t, cursor, limit, micros(now))
		case t.Kind == herald.TaskReplay:
			n, cursor, done, err = replaySlice(ctx, tx, t, ep, cursor, limit, micros(now))
		case t.Kind == herald.TaskPurgeContent:
			n, cursor, done, err = purgeSlice(ctx, tx, t.AppID, cursor, limit)
		case t.Kind == herald.TaskAppStats:
			n, cursor, done, err = appStatsSlice(ctx, tx, t, cursor, limit)
		case t.Kind == herald.TaskEventTypes:
			n, cursor, done, err = eventTypesSlice(ctx, tx, t, cursor, limit)
		default:
			t.Status, t.Error = herald.TaskFailed, fmt.Sprintf("Herald does not run tasks of kind %q.", t.Kind)
		}
		if err != nil {
			return err
		}
		t.Done += n
		if done {
			t.Status = herald.TaskFinished
		}
		t.UpdatedAt = now
		var result any
		if t.Result != nil {
			b, err := json.Marshal(t.Result)
			if err != nil {
				return fmt.Errorf("encode task result: %w", err)
			}
			result = string(b)
		}
		_, err = tx.ExecContext(ctx, `UPDATE background_task SET status = ?, cursor = ?, done = ?, error = ?,
			lease_expires_at = ?, updated_at = ?, result = ? WHERE id = ?`,
			string(t.Status), cursor, t.Done, t.Error, micros(leaseUntil), micros(now), result, id)
		return err
	})
	if err != nil {
		return nil, s.fail("run task slice", err)
	}
	return t, nil
}

// DeleteExpiredTasks deletes up to limit finished or failed tasks last
// updated before before, oldest update first. background_task has no
// index on updated_at: the table holds only the tasks of the retention
// period (operators' requests, not traffic), so the cleaner's scan of it
// is cheap.
func (s *Store) DeleteExpiredTasks(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM background_task WHERE id IN (
		SELECT id FROM background_task WHERE status IN ('finished', 'failed') AND updated_at < ?
		ORDER BY updated_at, id LIMIT ?)`, micros(before), limit)
	return s.affected("delete expired tasks", res, err)
}

// requeueReadSQL reads the next ?3 of endpoint ?1's deliveries after
// message ?2 through delivery_endpoint, each with what the filter needs of
// its message; requeueReadStatusSQL only those in status ?4, through
// delivery_endpoint_status.
const (
	requeueReadSQL = `SELECT d.id, d.message_id, d.status, m.event_type, m.channels, m.tags, m.created_at
		FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ?1 AND d.message_id > ?2 ORDER BY d.message_id LIMIT ?3`
	requeueReadStatusSQL = `SELECT d.id, d.message_id, d.status, m.event_type, m.channels, m.tags, m.created_at
		FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ?1 AND d.status = ?4 AND d.message_id > ?2 ORDER BY d.message_id LIMIT ?3`
)

// requeueSQL queues the deliveries whose IDs are in the JSON list ?3 again,
// due now and manual, unless one is being sent.
const requeueSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = ?1, trigger = 1,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2
	WHERE id IN (SELECT value FROM json_each(?3)) AND status <> 'sending'`

// requeueSlice queues again, due now and manual, the deliveries of the
// next at most limit of the endpoint's deliveries after the cursor (a
// message ID) that the task's filter selects. Recover reads only failed
// deliveries, through delivery_endpoint_status; a bulk replay reads every
// delivery of the endpoint through delivery_endpoint and filters here, so
// a slice reads at most limit rows whatever matches.
func requeueSlice(ctx context.Context, tx *sql.Tx, t *herald.Task, cursor string, limit int, now int64) (int, string, bool, error) {
	f := t.Filter
	if t.Kind == herald.TaskRecover {
		f.Statuses = []herald.DeliveryStatus{herald.DeliveryFailed}
	}
	q, args := requeueReadSQL, []any{t.EndpointID, cursor, limit}
	if len(f.Statuses) == 1 {
		q, args = requeueReadStatusSQL, append(args, string(f.Statuses[0]))
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, "", false, fmt.Errorf("read deliveries: %w", err)
	}
	var ids []string
	read := 0
	for rows.Next() {
		var (
			id, status, eventType string
			channels, tags        sql.NullString
			createdAt             int64
		)
		if err := rows.Scan(&id, &cursor, &status, &eventType, &channels, &tags, &createdAt); err != nil {
			rows.Close()
			return 0, "", false, fmt.Errorf("read deliveries: %w", err)
		}
		read++
		chs, err := parseList(channels)
		if err != nil {
			rows.Close()
			return 0, "", false, err
		}
		tgs, err := parseList(tags)
		if err != nil {
			rows.Close()
			return 0, "", false, err
		}
		if f.Matches(herald.DeliveryStatus(status), fromMicros(createdAt), eventType, chs, tgs) {
			ids = append(ids, id)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, "", false, fmt.Errorf("read deliveries: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, "", false, fmt.Errorf("read deliveries: %w", err)
	}
	if len(ids) > 0 && f.StatusCodeClass != 0 {
		if ids, err = keepLastResponse(ctx, tx, &f, ids); err != nil {
			return 0, "", false, err
		}
	}
	if len(ids) == 0 {
		return 0, cursor, read < limit, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, "", false, err
	}
	res, err := tx.ExecContext(ctx, requeueSQL, now, now, string(list))
	if err != nil {
		return 0, "", false, fmt.Errorf("queue deliveries: %w", err)
	}
	queued, err := res.RowsAffected()
	if err != nil {
		return 0, "", false, err
	}
	return int(queued), cursor, read < limit, nil
}

// replaySlice is one chunk of ReplayMissing; its cursor is the last
// message read, as "created_at rowid", empty before the first chunk.
func replaySlice(ctx context.Context, tx *sql.Tx, t *herald.Task, ep *herald.Endpoint, cursor string, limit int, now int64) (int, string, bool, error) {
	cur := replayCursor{createdAt: lowerBound(t.Filter.Since), rowid: -1 << 63}
	if cursor != "" {
		at, rowid, ok := strings.Cut(cursor, " ")
		var err1, err2 error
		cur.createdAt, err1 = strconv.ParseInt(at, 10, 64)
		cur.rowid, err2 = strconv.ParseInt(rowid, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return 0, "", false, fmt.Errorf("task %s: malformed cursor %q", t.ID, cursor)
		}
		cur.started = true
	}
	n, done, err := replayChunkOf(ctx, tx, ep, &cur, upperBound(t.Filter.Until), now, limit)
	if err != nil {
		return 0, "", false, err
	}
	if cur.started {
		cursor = strconv.FormatInt(cur.createdAt, 10) + " " + strconv.FormatInt(cur.rowid, 10)
	}
	return n, cursor, done, nil
}

// purgePageSQL finds the last of application ?1's next ?3 messages after
// ?2, and how many there are, through message_app; purgeSQL deletes the
// payloads of its messages in (?2, ?3].
const (
	purgePageSQL = `SELECT max(id), count(*) FROM (SELECT id FROM message
		WHERE app_id = ? AND id > ? ORDER BY id LIMIT ?)`
	purgeSQL = `UPDATE message SET payload = NULL WHERE app_id = ? AND id > ? AND id <= ? AND payload IS NOT NULL`
)

// purgeSlice deletes the payloads of the application's next at most limit
// messages after the cursor (a message ID), through message_app, and
// reports how many had one.
func purgeSlice(ctx context.Context, tx *sql.Tx, appID, cursor string, limit int) (int, string, bool, error) {
	var last sql.NullString
	var read int
	err := tx.QueryRowContext(ctx, purgePageSQL, appID, cursor, limit).Scan(&last, &read)
	if err != nil {
		return 0, "", false, fmt.Errorf("read messages: %w", err)
	}
	if read == 0 {
		return 0, cursor, true, nil
	}
	res, err := tx.ExecContext(ctx, purgeSQL, appID, cursor, last.String)
	if err != nil {
		return 0, "", false, fmt.Errorf("delete payloads: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, "", false, err
	}
	return int(n), last.String, read < limit, nil
}

// scanTask reads taskColumns, then extra.
func scanTask(row scanner, extra ...any) (*herald.Task, error) {
	var (
		t                    herald.Task
		kind, status, filter string
		createdAt, updatedAt int64
		result               sql.NullString
	)
	dest := append([]any{&t.ID, &t.AppID, &t.EndpointID, &kind, &status, &filter, &t.Done, &t.Error, &createdAt, &updatedAt, &result}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	t.Kind, t.Status = herald.TaskKind(kind), herald.TaskStatus(status)
	t.CreatedAt, t.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	if err := json.Unmarshal([]byte(filter), &t.Filter); err != nil {
		return nil, fmt.Errorf("decode task filter: %w", err)
	}
	if result.Valid {
		t.Result = new(herald.TaskResult)
		if err := json.Unmarshal([]byte(result.String), t.Result); err != nil {
			return nil, fmt.Errorf("decode task result: %w", err)
		}
	}
	return &t, nil
}

// lastResponseSQL reads, for each delivery whose ID is in the JSON list
// ?1, the response status of its last attempt (NULL when it has none),
// through attempt_message: a message's attempts, newest first.
const lastResponseSQL = `SELECT d.id, (SELECT a.response_status FROM attempt a
		WHERE a.message_id = d.message_id AND a.endpoint_id = d.endpoint_id ORDER BY a.id DESC LIMIT 1)
	FROM delivery d WHERE d.id IN (SELECT value FROM json_each(?1))`

// keepLastResponse keeps the deliveries of ids whose last attempt's
// response passes f's StatusCodeClass (a bulk replay's statusCodeClass).
func keepLastResponse(ctx context.Context, tx *sql.Tx, f *herald.TaskFilter, ids []string) ([]string, error) {
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, lastResponseSQL, string(list))
	if err != nil {
		return nil, fmt.Errorf("read last attempts: %w", err)
	}
	defer rows.Close()
	var kept []string
	for rows.Next() {
		var id string
		var status sql.NullInt64
		if err := rows.Scan(&id, &status); err != nil {
			return nil, fmt.Errorf("read last attempts: %w", err)
		}
		if f.MatchesLastResponse(int(status.Int64), status.Valid) {
			kept = append(kept, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read last attempts: %w", err)
	}
	return kept, nil
}
