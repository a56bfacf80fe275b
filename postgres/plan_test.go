package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// TestTagListPlans checks with EXPLAIN, on an analyzed application of
// 50,000 messages (a delivery of each to one endpoint, a rare tag on one
// in a hundred, a common one on half), that ?tag= pages walk
// message_tag's primary key in message order, combined with the other
// filters: no sequential scan and no sort, whatever the tag.
func TestTagListPlans(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	now := time.Now().UTC()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "plans", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
		Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	conn := connect(t)
	const n = 50_000
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`SET search_path TO ` + pgx.Identifier{schema}.Sanitize(), nil},
		{fmt.Sprintf(`INSERT INTO message (id, app_id, event_type, payload, content_type, tags, created_at)
			SELECT 'msg_' || lpad(i::text, 27, '0'), $1, CASE WHEN i %% 3 = 0 THEN 'a' ELSE 'b' END, '{}', '',
				CASE WHEN i %% 100 = 7 THEN ARRAY['rare', 'common'] WHEN i %% 2 = 0 THEN ARRAY['common'] END,
				now() - (%d - i) * interval '1 second'
			FROM generate_series(1, %d) AS i`, n, n), []any{app.ID}}, // message_tag by the schema's trigger
		{`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, trigger_type, created_at, updated_at)
			SELECT 'dlv_' || substr(id, 5), app_id, id, $1, CASE WHEN right(id, 1) = '3' THEN 'failed' ELSE 'succeeded' END,
				created_at, 1, 0, created_at, created_at FROM message`, []any{ep.ID}},
		{`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(t.Context(), st.q, st.args...); err != nil {
			t.Fatalf("%.60s: %v", st.q, err)
		}
	}

	mid := now.Add(-n / 2 * time.Second)
	page := func(cursor string, order herald.Order) herald.ListOptions {
		return herald.ListOptions{Limit: 50, Cursor: cursor, Order: order}
	}
	cursor := fmt.Sprintf("msg_%027d", n/2)
	type plan struct {
		name string
		text string
	}
	var plans []plan
	for _, tag := range []string{"rare", "common"} {
		for _, opts := range []herald.MessageListOptions{
			{Tag: tag, ListOptions: page("", herald.Descending)},
			{Tag: tag, ListOptions: page(cursor, herald.Descending)},
			{Tag: tag, ListOptions: page(cursor, herald.Ascending), EventTypes: []string{"a"}},
			{Tag: tag, ListOptions: page("", herald.Descending), After: mid.Add(-time.Hour), Before: mid},
		} {
			text, err := postgres.ExplainListMessages(t.Context(), s, app.ID, opts)
			if err != nil {
				t.Fatal(err)
			}
			plans = append(plans, plan{fmt.Sprintf("ListMessages %+v", opts), text})
		}
		for _, opts := range []herald.DeliveryListOptions{
			{Tag: tag, ListOptions: page("", herald.Descending)},
			{Tag: tag, ListOptions: page(cursor, herald.Descending), Status: herald.DeliveryFailed},
			{Tag: tag, ListOptions: page("", herald.Descending), EventTypes: []string{"a"}, After: mid.Add(-time.Hour), Before: mid},
		} {
			text, err := postgres.ExplainEndpointMessages(t.Context(), s, app.ID, ep.ID, opts)
			if err != nil {
				t.Fatal(err)
			}
			plans = append(plans, plan{fmt.Sprintf("ListEndpointMessages %+v", opts), text})
		}
	}
	for _, p := range plans {
		t.Logf("%s:\n%s", p.name, p.text)
		if !strings.Contains(p.text, "using message_tag_pkey on message_tag t") {
			t.Errorf("%s: the plan does not walk message_tag_pkey", p.name)
		}
		if strings.Contains(p.text, "Seq Scan") || strings.Contains(p.text, "Sort") {
			t.Errorf("%s: the plan scans a table or sorts", p.name)
		}
	}
}
