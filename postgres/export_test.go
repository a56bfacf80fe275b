package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// MapError exposes mapError to the external tests.
var MapError = mapError

// QueryString runs q on a pooled connection of s and returns its one text
// value, with errors mapped as the store's verbs map them.
func QueryString(ctx context.Context, s *Store, q string) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, q).Scan(&v); err != nil {
		return "", s.fail("query", err)
	}
	return v, nil
}

// BeginStalled begins a transaction on a pooled connection of s, locks the
// rows q selects FOR UPDATE and returns the transaction without ending it:
// a process stopped mid-transaction.
func BeginStalled(ctx context.Context, s *Store, q string) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, q); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

// ExplainListMessages returns the plan PostgreSQL makes for the statement
// of ListMessages(appID, opts), one line per node.
func ExplainListMessages(ctx context.Context, s *Store, appID string, opts herald.MessageListOptions) (string, error) {
	q, args := messagesQuery(appID, opts)
	return explain(ctx, s, q, args)
}

// ExplainEndpointMessages is ExplainListMessages for ListEndpointMessages.
func ExplainEndpointMessages(ctx context.Context, s *Store, appID, endpointID string, opts herald.DeliveryListOptions) (string, error) {
	q, args := endpointMessagesQuery(appID, endpointID, opts)
	return explain(ctx, s, q, args)
}

func explain(ctx context.Context, s *Store, q string, args []any) (string, error) {
	rows, err := s.pool.Query(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// ExplainClaimApps runs the claim in applications' turns for args under
// EXPLAIN ANALYZE in a transaction it rolls back (plain EXPLAIN leaves out
// the plan of the recursive step's subquery) and returns the plan, one
// line per row.
func ExplainClaimApps(ctx context.Context, s *Store, args ...any) ([]string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, VERBOSE) "+claimAppsSQL, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ExplainPoll returns the plans of the poll queries (window, start, fetch)
// for appID, from position (seq, msgID), one text per query.
func ExplainPoll(ctx context.Context, s *Store, appID string, seq int64, msgID string, at time.Time) ([]string, error) {
	var out []string
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{pollWindowSQL, []any{appID, fmt.Sprint(seq), msgID, herald.DefaultPollWindow}},
		{pollStartSQL, []any{appID, at, herald.DefaultPollWindow}},
		{pollFetchSQL, []any{[]string{msgID, msgID + "x"}, appID}},
	} {
		text, err := explain(ctx, s, q.sql, q.args)
		if err != nil {
			return nil, err
		}
		out = append(out, text)
	}
	return out, nil
}
