package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/herald-webhooks/herald"
)

// addUsageSQL adds to the usage counter of application ?1 and hour ?2
// (migration 0016).
const addUsageSQL = `INSERT INTO usage_stat (app_id, bucket, messages, destinations) VALUES (?1, ?2, ?3, ?4)
	ON CONFLICT (app_id, bucket) DO UPDATE SET messages = messages + excluded.messages,
		destinations = destinations + excluded.destinations`

// addUsage adds a batch's counts to the usage counters with st (addUsageSQL
// bound to the batch's transaction): one upsert per (application, hour),
// a batch mostly has one.
func addUsage(ctx context.Context, st *sql.Stmt, rows []herald.UsageCount) error {
	for _, u := range rows {
		if _, err := st.ExecContext(ctx, u.AppID, u.Bucket, u.Messages, u.Destinations); err != nil {
			return fmt.Errorf("add usage counts: %w", err)
		}
	}
	return nil
}

// The statistics tasks' reads. appStatsAllSQL sums the usage counters in
// buckets [?2, ?3) of the next ?4 applications after ?1 that have any
// there, by the counters' primary key; appStatsOfSQL those of the
// applications in the JSON list ?1, zeros included. Counters go with their
// application (ON DELETE CASCADE), so the join drops nothing but a
// deleted application named in the list.
const (
	appStatsAllSQL = `SELECT a.id, a.uid, s.m, s.d FROM (SELECT app_id, sum(messages) AS m, sum(destinations) AS d
			FROM usage_stat WHERE app_id > ?1 AND bucket >= ?2 AND bucket < ?3
			GROUP BY app_id ORDER BY app_id LIMIT ?4) s
		JOIN application a ON a.id = s.app_id ORDER BY a.id`
	appStatsOfSQL = `SELECT a.id, a.uid, coalesce(sum(u.messages), 0), coalesce(sum(u.destinations), 0)
		FROM application a LEFT JOIN usage_stat u ON u.app_id = a.id AND u.bucket >= ?2 AND u.bucket < ?3
		WHERE a.id IN (SELECT value FROM json_each(?1)) GROUP BY a.id ORDER BY a.id`
)

// appStatsSlice adds the next at most limit applications' sums to the
// task's result; its cursor is the last application ID done.
func appStatsSlice(ctx context.Context, tx *sql.Tx, t *herald.Task, cursor string, limit int) (int, string, bool, error) {
	from, to := herald.UsageRange(t.Filter.Since, t.Filter.Until)
	var rows *sql.Rows
	var err error
	done := false
	next := cursor
	if len(t.Filter.AppIDs) > 0 {
		ids := herald.AfterInOrder(t.Filter.AppIDs, cursor, limit)
		done = len(ids) < limit
		if len(ids) == 0 {
			return 0, cursor, true, nil
		}
		next = ids[len(ids)-1]
		list, err := json.Marshal(ids)
		if err != nil {
			return 0, "", false, err
		}
		rows, err = tx.QueryContext(ctx, appStatsOfSQL, string(list), from, to)
		if err != nil {
			return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
		}
	} else {
		rows, err = tx.QueryContext(ctx, appStatsAllSQL, cursor, from, to, limit)
		if err != nil {
			return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
		}
	}
	if t.Result == nil {
		t.Result = &herald.TaskResult{}
	}
	n := 0
	for rows.Next() {
		var u herald.AppUsage
		var uid sql.NullString
		if err := rows.Scan(&u.AppID, &uid, &u.Messages, &u.Destinations); err != nil {
			rows.Close()
			return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
		}
		if uid.Valid {
			u.AppUID = &uid.String
		}
		t.Result.AppStats = append(t.Result.AppStats, u)
		n++
		if len(t.Filter.AppIDs) == 0 {
			next = u.AppID
		}
	}
	if err := rows.Close(); err != nil {
		return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
	}
	if len(t.Filter.AppIDs) == 0 {
		done = n < limit
	}
	return n, next, done, nil
}

// eventTypesPageSQL finds the last of the next ?2 applications after ?1
// and how many there are; eventTypesSQL reads the filters of the endpoints
// of the applications in (?1, ?2], through endpoint_app.
const (
	eventTypesPageSQL = `SELECT max(id), count(*) FROM (SELECT id FROM application WHERE id > ? ORDER BY id LIMIT ?)`
	eventTypesSQL     = `SELECT app_id, filter_types FROM endpoint WHERE app_id > ? AND app_id <= ? ORDER BY app_id`
)

// eventTypesSlice adds to the task's result, for each of the next at most
// limit applications that has endpoints, the event types its endpoints'
// filters name and whether one has none; its cursor is the last
// application ID read.
func eventTypesSlice(ctx context.Context, tx *sql.Tx, t *herald.Task, cursor string, limit int) (int, string, bool, error) {
	var last sql.NullString
	var read int
	if err := tx.QueryRowContext(ctx, eventTypesPageSQL, cursor, limit).Scan(&last, &read); err != nil {
		return 0, "", false, fmt.Errorf("read applications: %w", err)
	}
	if t.Result == nil {
		t.Result = &herald.TaskResult{}
	}
	if read == 0 {
		return 0, cursor, true, nil
	}
	rows, err := tx.QueryContext(ctx, eventTypesSQL, cursor, last.String)
	if err != nil {
		return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
	}
	var agg herald.EventTypeAggregator
	for rows.Next() {
		var appID string
		var filter sql.NullString
		if err := rows.Scan(&appID, &filter); err != nil {
			rows.Close()
			return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
		}
		types, err := parseList(filter)
		if err != nil {
			rows.Close()
			return 0, "", false, err
		}
		agg.Add(appID, types)
	}
	if err := rows.Close(); err != nil {
		return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
	}
	apps := agg.Apps()
	t.Result.EventTypes = append(t.Result.EventTypes, apps...)
	return len(apps), last.String, read < limit, nil
}
