package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// usageShards is how many rows one (application, hour) counter is spread
// over (migration 0015): a transaction adds to one picked at random, so
// concurrent batches of one application seldom wait for each other's row
// lock until they commit. A statistics task sums them.
const usageShards = 8

// addUsageSQL adds the counts in the arrays to the usage counters, one row
// per (application, hour), all on shard $5. The rows come sorted by
// application and hour (herald.UsageCounts), the order every writer locks
// them in, so two transactions cannot deadlock on them.
const addUsageSQL = `INSERT INTO usage_stat (app_id, bucket, shard, messages, destinations)
	SELECT u.app_id, u.bucket, $5, u.messages, u.destinations
	FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) WITH ORDINALITY
		AS u (app_id, bucket, messages, destinations, n)
	ORDER BY u.n
	ON CONFLICT (app_id, bucket, shard) DO UPDATE SET messages = usage_stat.messages + excluded.messages,
		destinations = usage_stat.destinations + excluded.destinations`

// usageArgs are addUsageSQL's arguments for rows.
func usageArgs(rows []herald.UsageCount) []any {
	apps := make([]string, len(rows))
	buckets := make([]int64, len(rows))
	msgs := make([]int64, len(rows))
	dests := make([]int64, len(rows))
	for i, u := range rows {
		apps[i], buckets[i], msgs[i], dests[i] = u.AppID, u.Bucket, u.Messages, u.Destinations
	}
	return []any{apps, buckets, msgs, dests, rand.IntN(usageShards)}
}

// queueUsage queues the upsert of a batch's counts.
func queueUsage(pb *pgx.Batch, rows []herald.UsageCount) {
	if len(rows) > 0 {
		pb.Queue(addUsageSQL, usageArgs(rows)...)
	}
}

// addUsage adds counts to the usage counters in tx.
func addUsage(ctx context.Context, tx pgx.Tx, rows []herald.UsageCount) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, addUsageSQL, usageArgs(rows)...); err != nil {
		return fmt.Errorf("add usage counts: %w", err)
	}
	return nil
}

// The statistics tasks' reads. appStatsAllSQL sums the usage counters in
// buckets [$2, $3) of the next $4 applications after $1 that have any
// there, by the counters' primary key; appStatsOfSQL those of the
// applications $1, zeros included. Counters go with their application
// (ON DELETE CASCADE), so the join drops nothing but a deleted
// application named in the list.
const (
	appStatsAllSQL = `SELECT a.id, a.uid, s.m, s.d FROM (SELECT app_id, sum(messages)::bigint AS m, sum(destinations)::bigint AS d
			FROM usage_stat WHERE app_id > $1 AND bucket >= $2 AND bucket < $3
			GROUP BY app_id ORDER BY app_id LIMIT $4) s
		JOIN application a ON a.id = s.app_id ORDER BY a.id`
	appStatsOfSQL = `SELECT a.id, a.uid, coalesce(sum(u.messages), 0)::bigint, coalesce(sum(u.destinations), 0)::bigint
		FROM application a LEFT JOIN usage_stat u ON u.app_id = a.id AND u.bucket >= $2 AND u.bucket < $3
		WHERE a.id = ANY($1) GROUP BY a.id ORDER BY a.id`
)

// appStatsSlice adds the next at most limit applications' sums to the
// task's result; its cursor is the last application ID done.
func appStatsSlice(ctx context.Context, tx pgx.Tx, t *herald.Task, cursor string, limit int) (int, string, bool, error) {
	from, to := herald.UsageRange(t.Filter.Since, t.Filter.Until)
	named := len(t.Filter.AppIDs) > 0
	var rows pgx.Rows
	done, next := false, cursor
	if named {
		ids := herald.AfterInOrder(t.Filter.AppIDs, cursor, limit)
		if len(ids) == 0 {
			return 0, cursor, true, nil
		}
		done, next = len(ids) < limit, ids[len(ids)-1]
		rows, _ = tx.Query(ctx, appStatsOfSQL, ids, from, to)
	} else {
		rows, _ = tx.Query(ctx, appStatsAllSQL, cursor, from, to, limit)
	}
	stats, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (herald.AppUsage, error) {
		var u herald.AppUsage
		err := row.Scan(&u.AppID, &u.AppUID, &u.Messages, &u.Destinations)
		return u, err
	})
	if err != nil {
		return 0, "", false, fmt.Errorf("sum usage counters: %w", err)
	}
	if t.Result == nil {
		t.Result = &herald.TaskResult{}
	}
	t.Result.AppStats = append(t.Result.AppStats, stats...)
	if !named {
		done = len(stats) < limit
		if len(stats) > 0 {
			next = stats[len(stats)-1].AppID
		}
	}
	return len(stats), next, done, nil
}

// eventTypesSQL reads the filters of the endpoints of the next $2
// applications after $1, through endpoint_app, with the last of those
// applications and how many there are on every row (a row of NULLs when
// none of them has an endpoint).
const eventTypesSQL = `WITH page AS (SELECT id FROM application WHERE id > $1 ORDER BY id LIMIT $2),
		last AS (SELECT max(id) AS id, count(*) AS n FROM page)
	SELECT last.id, last.n, e.app_id, e.filter_types
	FROM last LEFT JOIN (endpoint e JOIN page p ON p.id = e.app_id) ON true
	ORDER BY e.app_id`

// eventTypesSlice adds to the task's result, for each of the next at most
// limit applications that has endpoints, the event types its endpoints'
// filters name and whether one has none; its cursor is the last
// application ID read.
func eventTypesSlice(ctx context.Context, tx pgx.Tx, t *herald.Task, cursor string, limit int) (int, string, bool, error) {
	if t.Result == nil {
		t.Result = &herald.TaskResult{}
	}
	rows, err := tx.Query(ctx, eventTypesSQL, cursor, limit)
	if err != nil {
		return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
	}
	defer rows.Close()
	var agg herald.EventTypeAggregator
	var last *string
	var read int64
	for rows.Next() {
		var appID *string
		var types []string
		if err := rows.Scan(&last, &read, &appID, &types); err != nil {
			return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
		}
		if appID != nil {
			agg.Add(*appID, types)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", false, fmt.Errorf("read endpoint filters: %w", err)
	}
	if read == 0 || last == nil {
		return 0, cursor, true, nil
	}
	apps := agg.Apps()
	t.Result.EventTypes = append(t.Result.EventTypes, apps...)
	return len(apps), *last, read < int64(limit), nil
}
