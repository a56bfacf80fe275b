package postgres

// Times are bound as time.Time: pgx sends a timestamptz as microseconds,
// truncated, so the stored time is t.Truncate(time.Microsecond), as the
// SQLite store keeps it. Scanned times are converted to UTC.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

// fromNullTime returns the zero time for NULL and the time in UTC otherwise.
func fromNullTime(v pgtype.Timestamptz) time.Time {
	if !v.Valid || v.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return v.Time.UTC()
}

// lowerBound returns t, or -infinity for the zero time (no lower bound).
func lowerBound(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// upperBound returns t, or infinity for the zero time (no upper bound).
func upperBound(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// nullTime returns NULL for the zero time and t otherwise.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nullString returns NULL for "" and s otherwise, for optional unique
// columns (uid, event_id) where "" means unset.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// fromNullString returns "" for NULL.
func fromNullString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// nullUint16 returns NULL for nil and *v otherwise.
func nullUint16(v *uint16) *int32 {
	if v == nil {
		return nil
	}
	i := int32(*v)
	return &i
}

// fromNullUint16 is the inverse of nullUint16.
func fromNullUint16(v *int32) *uint16 {
	if v == nil {
		return nil
	}
	u := uint16(*v)
	return &u
}

// nullList returns NULL for an empty list and l otherwise, so that "no
// filter" has one representation.
func nullList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// jsonMap returns m as JSON text for a jsonb column, or NULL when empty.
func jsonMap(m map[string]string) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode map: %w", err)
	}
	s := string(b)
	return &s, nil
}

// parseMap decodes a jsonb object column; NULL is a nil map.
func parseMap(b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode map: %w", err)
	}
	return m, nil
}

// limit returns opts.Limit, raised to 1 when below it.
func limit(opts herald.ListOptions) int {
	return max(opts.Limit, 1)
}

// query builds a statement and its arguments, numbering placeholders as
// arguments are added.
type query struct {
	sb   strings.Builder
	args []any
}

// add writes text to the statement.
func (q *query) add(text string) *query {
	q.sb.WriteString(text)
	return q
}

// arg appends v to the arguments and returns its placeholder, "$n".
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// String returns the statement.
func (q *query) String() string { return q.sb.String() }

// page writes the cursor condition of a listing ordered by col (the cursor
// is exclusive in the listing's order) and returns the ORDER BY and LIMIT
// clause that ends the statement.
func (q *query) page(col string, opts herald.ListOptions) string {
	dir, cmp := " ASC", " > "
	if opts.Order == herald.Descending {
		dir, cmp = " DESC", " < "
	}
	if opts.Cursor != "" {
		q.add(" AND " + col + cmp + q.arg(opts.Cursor))
	}
	return " ORDER BY " + col + dir + " LIMIT " + q.arg(limit(opts))
}

// pageByTag is page for a listing that walks message_tag's primary key
// for one application and tag: the ORDER BY names the whole key, so the
// planner sees that the key delivers the order and does not walk
// message_tag_message (message order too, but every tag's rows) instead.
func (q *query) pageByTag(opts herald.ListOptions) string {
	dir, cmp := " ASC", " > "
	if opts.Order == herald.Descending {
		dir, cmp = " DESC", " < "
	}
	if opts.Cursor != "" {
		q.add(" AND t.message_id" + cmp + q.arg(opts.Cursor))
	}
	return " ORDER BY t.app_id" + dir + ", t.tag" + dir + ", t.message_id" + dir + " LIMIT " + q.arg(limit(opts))
}

// endMessagePage ends a page of messages filtered by f (and by tag, when
// set) with its cursor, order and limit, and returns the statement and its
// arguments, planned for their values when a time window or a tag makes
// them matter (customPlan).
func (q *query) endMessagePage(f messageFilter, tag string, opts herald.ListOptions) (string, []any) {
	if tag == "" {
		q.add(q.page(f.idColumn, opts))
	} else {
		q.add(q.pageByTag(opts))
	}
	args := q.args
	if !f.before.IsZero() || !f.after.IsZero() || tag != "" {
		args = customPlan(args)
	}
	return q.String(), args
}

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

// addTo writes the filter's conditions to q.
func (f messageFilter) addTo(q *query) {
	if len(f.eventTypes) > 0 {
		q.add(" AND " + f.msg + "event_type = ANY(" + q.arg(f.eventTypes) + ")")
	}
	if f.channel != "" {
		q.add(" AND " + q.arg(f.channel) + " = ANY(" + f.msg + "channels)")
	}
	if !f.before.IsZero() {
		q.add(" AND " + f.timeColumn + " < " + q.arg(f.before))
		// Every ID of a second up to before's sorts below the first of the
		// next second.
		if id, ok := herald.MinIDAtBound(f.idPrefix, f.before.Add(time.Second)); ok && f.idColumn != "" {
			q.add(" AND " + f.idColumn + " < " + q.arg(id))
		}
	}
	if !f.after.IsZero() {
		q.add(" AND " + f.timeColumn + " > " + q.arg(f.after))
		if id, ok := herald.MinIDAtBound(f.idPrefix, f.after); ok && f.idColumn != "" {
			q.add(" AND " + f.idColumn + " >= " + q.arg(id))
		}
	}
}

// prefixed returns a comma-separated column list with each column
// qualified by prefix ("a." turns "id, url" into "a.id, a.url").
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// customPlan returns args to run a statement planned for these values
// (pgx.QueryExecModeExec: an unnamed statement), not through pgx's cache of
// prepared statements: after five runs PostgreSQL may switch a prepared
// statement to a generic plan, chosen without the values, which is the
// wrong one where the values matter: a time window of messages walked by
// message_app_created and sorted whole instead of by ID within its ID
// range, endpoint stats counted by parallel workers for an endpoint with
// no deliveries. Planning each time costs a fraction of a millisecond, so
// only those queries pay it.
func customPlan(args []any) []any {
	return append([]any{pgx.QueryExecModeExec}, args...)
}
