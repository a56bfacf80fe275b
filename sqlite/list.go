package sqlite

import (
	"database/sql"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// messageFilter is the filter the message, attempt and endpoint-message
// lists share: the message's event type and channel, and a time window.
type messageFilter struct {
	// msg qualifies message columns: "message." or "m.".
	msg string
	// timeColumn is the column Before and After bound.
	timeColumn string
	// idColumn, when set, is the ID column the listing walks, made by
	// herald.NewIDAt with idPrefix at timeColumn's time: Before and After
	// bound it too, so a time window is a range of the index the listing
	// walks instead of a filter over every row (or a sort of the window).
	// Messages only: an attempt's ID is made when it ends, its created_at
	// is when it started.
	idColumn, idPrefix string
	eventTypes         []string
	channel            string
	before, after      time.Time
}

// appendTo writes the filter's conditions to q and returns args with their
// arguments appended.
func (f messageFilter) appendTo(q *strings.Builder, args []any) []any {
	if len(f.eventTypes) > 0 {
		q.WriteString(` AND ` + f.msg + `event_type IN (?` + strings.Repeat(`, ?`, len(f.eventTypes)-1) + `)`)
		for _, et := range f.eventTypes {
			args = append(args, et)
		}
	}
	if f.channel != "" {
		q.WriteString(` AND EXISTS (SELECT 1 FROM json_each(` + f.msg + `channels) WHERE value = ?)`)
		args = append(args, f.channel)
	}
	if !f.before.IsZero() {
		q.WriteString(` AND ` + f.timeColumn + ` < ?`)
		args = append(args, micros(f.before))
		// Every ID of a second up to before's sorts below the first of the
		// next second.
		if id, ok := herald.MinIDAtBound(f.idPrefix, f.before.Add(time.Second)); ok && f.idColumn != "" {
			q.WriteString(` AND ` + f.idColumn + ` < ?`)
			args = append(args, id)
		}
	}
	if !f.after.IsZero() {
		q.WriteString(` AND ` + f.timeColumn + ` > ?`)
		args = append(args, micros(f.after))
		if id, ok := herald.MinIDAtBound(f.idPrefix, f.after); ok && f.idColumn != "" {
			q.WriteString(` AND ` + f.idColumn + ` >= ?`)
			args = append(args, id)
		}
	}
	return args
}

// collect scans every row of a query with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
