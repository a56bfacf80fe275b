package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

var (
	errTaskNotFound  = herald.Errorf(herald.ENOTFOUND, "Background task not found.")
	errTaskNotLeased = herald.Errorf(herald.ECONFLICT, "The background task is leased to another runner.")
)

const taskColumns = `id, app_id, endpoint_id, kind, status, filter::text, done, error, created_at, updated_at, result::text`

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
	err = s.inTx(ctx, func(tx pgx.Tx) error {
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
			if err := tx.QueryRow(ctx, `SELECT 1 FROM application WHERE id = $1`, t.AppID).Scan(&one); err != nil {
				return notFound(err, errAppNotFound)
			}
			target.resourceType, target.resourceID = herald.AuditApplication, t.AppID
		}
		_, err := tx.Exec(ctx, `INSERT INTO background_task (id, app_id, endpoint_id, kind, status, filter, done, error,
			created_at, updated_at, cursor) VALUES ($1, $2, $3, $4, 'running', $5::jsonb, 0, '', $6, $6, '')`,
			t.ID, t.AppID, t.EndpointID, string(t.Kind), string(filter), now)
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
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM background_task WHERE id = $1`, id))
	if err != nil {
		return nil, s.fail("get task", notFound(err, errTaskNotFound))
	}
	return t, nil
}

// ListTasks returns a page of tasks by ID.
func (s *Store) ListTasks(ctx context.Context, opts herald.TaskListOptions) ([]*herald.Task, error) {
	var q query
	q.add(`SELECT ` + taskColumns + ` FROM background_task WHERE true`)
	if opts.Status != "" {
		q.add(` AND status = ` + q.arg(string(opts.Status)))
	}
	if opts.Kind != "" {
		q.add(` AND kind = ` + q.arg(string(opts.Kind)))
	}
	q.add(q.page("id", opts.ListOptions))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, func(row pgx.Row) (*herald.Task, error) { return scanTask(row) })
	if err != nil {
		return nil, s.fail("list tasks", err)
	}
	return out, nil
}

// ClaimTask leases the oldest running task whose lease is free, expired
// or owner's own; SKIP LOCKED lets nodes claim side by side, each passing
// over the task another is saving a slice of.
func (s *Store) ClaimTask(ctx context.Context, owner string, now, leaseUntil time.Time) (*herald.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `UPDATE background_task SET lease_owner = $1, lease_expires_at = $3
		WHERE id = (SELECT id FROM background_task WHERE status = 'running'
			AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at <= $2)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+taskColumns, owner, now, leaseUntil))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail("claim task", err)
	}
	return t, nil
}

// RunTaskSlice does the next slice of the task's work and saves its
// progress in the same transaction, which holds the task's row locked: two
// nodes never run slices of one task at once.
func (s *Store) RunTaskSlice(ctx context.Context, id, owner string, limit int, now, leaseUntil time.Time) (*herald.Task, error) {
	limit = max(limit, 1)
	var t *herald.Task
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var cursor string
		var leaseOwner *string
		var err error
		t, err = scanTask(tx.QueryRow(ctx, `SELECT `+taskColumns+`, cursor, lease_owner FROM background_task WHERE id = $1 FOR UPDATE`, id),
			&cursor, &leaseOwner)
		if err != nil {
			return notFound(err, errTaskNotFound)
		}
		if t.Status != herald.TaskRunning {
			return nil
		}
		if leaseOwner == nil || *leaseOwner != owner {
			return errTaskNotLeased
		}
		var n int
		var done bool
		switch t.Kind {
		case herald.TaskRecover, herald.TaskBulkReplay:
			n, cursor, done, err = requeueSlice(ctx, tx, t, cursor, limit, now)
		case herald.TaskReplay:
			var ep *herald.Endpoint
			ep, err = routingTx(ctx, tx, t.AppID, t.EndpointID)
			if herald.ErrorCode(err) == herald.ENOTFOUND {
				t.Status, t.Error, err = herald.TaskFailed, err.Error(), nil
				break
			}
			if err == nil {
				n, cursor, done, err = replaySlice(ctx, tx, t, ep, cursor, limit, now)
			}
		case herald.TaskPurgeContent:
			n, cursor, done, err = purgeSlice(ctx, tx, t.AppID, cursor, limit)
		case herald.TaskAppStats:
			n, cursor, done, err = appStatsSlice(ctx, tx, t, cursor, limit)
		case herald.TaskEventTypes:
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
		var result *string
		if t.Result != nil {
			b, err := json.Marshal(t.Result)
			if err != nil {
				return fmt.Errorf("encode task result: %w", err)
			}
			result = new(string(b))
		}
		_, err = tx.Exec(ctx, `UPDATE background_task SET status = $1, cursor = $2, done = $3, error = $4,
			lease_expires_at = $5, updated_at = $6, result = $8::jsonb WHERE id = $7`,
			string(t.Status), cursor, t.Done, t.Error, leaseUntil, now, id, result)
		if err == nil && n > 0 && t.Kind.Queues() {
			err = notifyWork(ctx, tx)
		}
		return err
	})
	if err != nil {
		return nil, s.fail("run task slice", err)
	}
	return t, nil
}

// DeleteExpiredTasks deletes up to limit finished or failed tasks last
// updated before before, oldest update first. SKIP LOCKED lets several
// nodes' cleaners share the work, and skips a task whose slice is being
// saved. background_task has no index on updated_at: the table holds only
// the tasks of the retention period (operators' requests, not traffic),
// so the cleaner's scan of it is cheap.
func (s *Store) DeleteExpiredTasks(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM background_task WHERE id IN (
		SELECT id FROM background_task WHERE status IN ('finished', 'failed') AND updated_at < $1
		ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
	return s.affected("delete expired tasks", tag, err)
}

// routingTx is routing inside tx.
func routingTx(ctx context.Context, tx pgx.Tx, appID, endpointID string) (*herald.Endpoint, error) {
	ep := herald.Endpoint{ID: endpointID, AppID: appID}
	err := tx.QueryRow(ctx, `SELECT disabled, filter_types, channels, url = 'poller://' FROM endpoint WHERE id = $1 AND app_id = $2`,
		endpointID, appID).Scan(&ep.Disabled, &ep.FilterTypes, &ep.Channels, &ep.Poller)
	if err != nil {
		return nil, notFound(err, errEndpointNotFound)
	}
	return &ep, nil
}

// requeueSlice queues again, due now and manual, the deliveries of the
// next at most limit of the endpoint's deliveries after the cursor (a
// message ID) that the task's filter selects. Recover reads only failed
// deliveries, through delivery_endpoint_status; a bulk replay reads every
// delivery of the endpoint through delivery_endpoint and filters here, so
// a slice reads at most limit rows whatever matches. FOR KEY SHARE keeps
// the cleaner from deleting the messages under the queued deliveries (see
// retention.go).
func requeueSlice(ctx context.Context, tx pgx.Tx, t *herald.Task, cursor string, limit int, now time.Time) (int, string, bool, error) {
	f := t.Filter
	if t.Kind == herald.TaskRecover {
		f.Statuses = []herald.DeliveryStatus{herald.DeliveryFailed}
	}
	var q query
	q.add(`SELECT d.id, d.message_id, d.status, m.event_type, m.channels, m.tags, m.created_at
		FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ` + q.arg(t.EndpointID) + ` AND d.message_id > ` + q.arg(cursor))
	if len(f.Statuses) == 1 {
		q.add(` AND d.status = ` + q.arg(string(f.Statuses[0])))
	}
	q.add(` ORDER BY d.message_id LIMIT ` + q.arg(limit) + ` FOR KEY SHARE OF m`)
	rows, err := tx.Query(ctx, q.String(), q.args...)
	if err != nil {
		return 0, "", false, fmt.Errorf("read deliveries: %w", err)
	}
	var ids []string
	read := 0
	for rows.Next() {
		var (
			id, status, eventType string
			channels, tags        []string
			createdAt             time.Time
		)
		if err := rows.Scan(&id, &cursor, &status, &eventType, &channels, &tags, &createdAt); err != nil {
			rows.Close()
			return 0, "", false, fmt.Errorf("read deliveries: %w", err)
		}
		read++
		if f.Matches(herald.DeliveryStatus(status), createdAt, eventType, channels, tags) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, "", false, fmt.Errorf("read deliveries: %w", err)
	}
	if len(ids) > 0 && f.StatusCodeClass != 0 {
		var err error
		if ids, err = keepLastResponse(ctx, tx, &f, ids); err != nil {
			return 0, "", false, err
		}
	}
	if len(ids) == 0 {
		return 0, cursor, read < limit, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE delivery SET status = 'pending', next_attempt_at = $1, trigger_type = 1,
		lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 WHERE id = ANY($2::text[]) AND status <> 'sending'`, now, ids)
	if err != nil {
		return 0, "", false, fmt.Errorf("queue deliveries: %w", err)
	}
	return int(tag.RowsAffected()), cursor, read < limit, nil
}

// replaySlice is one chunk of ReplayMissing; its cursor is the last
// message read, as "created_at id" (RFC 3339), empty before the first
// chunk.
func replaySlice(ctx context.Context, tx pgx.Tx, t *herald.Task, ep *herald.Endpoint, cursor string, limit int, now time.Time) (int, string, bool, error) {
	var cur replayCursor
	first := cursor == ""
	if !first {
		at, id, ok := strings.Cut(cursor, " ")
		var err error
		cur.createdAt, err = time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil {
			return 0, "", false, fmt.Errorf("task %s: malformed cursor %q", t.ID, cursor)
		}
		cur.id = id
	}
	n, done, err := replayChunkOf(ctx, tx, ep, &cur, first, t.Filter.Since, t.Filter.Until, now, limit)
	if err != nil {
		return 0, "", false, err
	}
	if cur.id != "" {
		cursor = cur.createdAt.UTC().Format(time.RFC3339Nano) + " " + cur.id
	}
	return n, cursor, done, nil
}

// purgeSlice deletes the payloads of the application's next at most limit
// messages after the cursor (a message ID), through message_app, and
// reports how many had one.
func purgeSlice(ctx context.Context, tx pgx.Tx, appID, cursor string, limit int) (int, string, bool, error) {
	var last *string
	var read int
	err := tx.QueryRow(ctx, `SELECT max(id), count(*) FROM (SELECT id FROM message
		WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3) page`, appID, cursor, limit).Scan(&last, &read)
	if err != nil {
		return 0, "", false, fmt.Errorf("read messages: %w", err)
	}
	if read == 0 || last == nil {
		return 0, cursor, true, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE message SET payload = NULL
		WHERE app_id = $1 AND id > $2 AND id <= $3 AND payload IS NOT NULL`, appID, cursor, *last)
	if err != nil {
		return 0, "", false, fmt.Errorf("delete payloads: %w", err)
	}
	return int(tag.RowsAffected()), *last, read < limit, nil
}

// scanTask reads taskColumns, then extra.
func scanTask(row pgx.Row, extra ...any) (*herald.Task, error) {
	var (
		t                    herald.Task
		kind, status, filter string
		done                 int64
		result               *string
	)
	dest := append([]any{&t.ID, &t.AppID, &t.EndpointID, &kind, &status, &filter, &done, &t.Error, &t.CreatedAt, &t.UpdatedAt, &result}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	t.Kind, t.Status, t.Done = herald.TaskKind(kind), herald.TaskStatus(status), int(done)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	if err := json.Unmarshal([]byte(filter), &t.Filter); err != nil {
		return nil, fmt.Errorf("decode task filter: %w", err)
	}
	if result != nil {
		t.Result = new(herald.TaskResult)
		if err := json.Unmarshal([]byte(*result), t.Result); err != nil {
			return nil, fmt.Errorf("decode task result: %w", err)
		}
	}
	return &t, nil
}

// keepLastResponse keeps the deliveries of ids whose last attempt's
// response passes f's StatusCodeClass (a bulk replay's statusCodeClass):
// each delivery's newest attempt is read through attempt_message.
func keepLastResponse(ctx context.Context, tx pgx.Tx, f *herald.TaskFilter, ids []string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT d.id, (SELECT a.response_status FROM attempt a
			WHERE a.message_id = d.message_id AND a.endpoint_id = d.endpoint_id ORDER BY a.id DESC LIMIT 1)
		FROM delivery d WHERE d.id = ANY($1::text[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read last attempts: %w", err)
	}
	defer rows.Close()
	var kept []string
	for rows.Next() {
		var id string
		var status *int32
		if err := rows.Scan(&id, &status); err != nil {
			return nil, fmt.Errorf("read last attempts: %w", err)
		}
		if f.MatchesLastResponse(int(ptrOr(status)), status != nil) {
			kept = append(kept, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read last attempts: %w", err)
	}
	return kept, nil
}

// ptrOr is *p, or 0 when p is nil.
func ptrOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
