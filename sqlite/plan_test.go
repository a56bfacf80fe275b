package sqlite

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// fullScan matches a plan step that reads a whole table, or sorts or groups
// rows in a temporary B-tree that an index should have delivered in order.
// json_each is a virtual table of the query's own parameter: scanning it is
// expected.
var fullScan = regexp.MustCompile(`^SCAN (delivery|attempt|message|endpoint|application)\b|^SCAN [a-z]+$|TEMP B-TREE FOR (ORDER|GROUP) BY`)

// TestQueryPlans checks with EXPLAIN QUERY PLAN that every hot query of the
// delivery engine searches an index: none scans a table or sorts. The plans
// are logged (go test -v) for review.
func TestQueryPlans(t *testing.T) {
	s := openInternal(t)
	// ANALYZE-free plans on an empty database are the planner's defaults,
	// which is what a fresh install runs with.
	now := micros(time.Now())
	status := herald.AttemptFailed
	type query struct {
		name string
		sql  string
		args []any
	}
	// boundedSorts sort, but only rows they read through an index and
	// whose number does not grow with the backlog: the Window rows of a
	// windowed claim, one head per FIFO endpoint.
	boundedSorts := map[string]bool{"ClaimDue window": true, "ClaimDue heads": true, "ClaimDue heads skipping": true,
		"ClaimDue apps": true}
	// boundedScans read a table of the query's own making whose rows do
	// not grow with the backlog: one per application with pending
	// deliveries.
	boundedScans := map[string]string{"ClaimDue apps": "SCAN apps"}
	queries := []query{
		{"ClaimDue", fmt.Sprintf(claimSQL, ""), []any{"node", now, now, now, 10}},
		{"ClaimDue skipping", fmt.Sprintf(claimSQL, ` AND endpoint_id NOT IN (SELECT value FROM json_each(?))`),
			[]any{"node", now, now, now, `["ep_a"]`, 10}},
		{"ClaimDue window", claimWindowSQL, []any{"node", now, now, now, 64, `["ep_a"]`, 8, 10}},
		{"ClaimDue heads", fmt.Sprintf(claimHeadsSQL, ""), []any{"node", now, now, now, 10}},
		{"ClaimDue heads skipping", fmt.Sprintf(claimHeadsSQL, skipHeads), []any{"node", now, now, now, `["ep_a"]`, `["app_a"]`, 10}},
		{"ClaimDue apps", claimAppsSQL, []any{"node", now, now, `["app_a"]`, now, 64, `["ep_a"]`, 8, 16, 10}},
		{"ClaimDue messages", claimMessagesSQL, []any{`["msg_a","msg_b"]`}},
		{"RecordAttempts delivery", finishSQL, []any{now, `[["dlv_a","pending",null,1,"node"]]`}},
		{"RecordAttempts cancel", cancelPendingSQL, []any{now, "ep_a"}},
		{"ReleaseDeliveries", releaseSQL, []any{now, now, `[["dlv_a",null]]`, "node"}},
		{"RescueExpired", rescueSQL, []any{now, now, now, 100}},
		{"RecoverEndpoint", recoverSQL, []any{now, now, "ep_a", int64(0), now}},
		{"ReplayMissing first", replayFirstSQL, []any{"app_a", int64(0), now, replayChunk}},
		{"ReplayMissing next", replayNextSQL, []any{"app_a", int64(0), int64(5), now, replayChunk}},
		{"GetEndpointStats", statsSQL, []any{"ep_a"}},
		{"GetEndpointStats window", statsWindowSQL, []any{"ep_a", int64(0), now}},
		{"ClaimTask", claimTaskSQL, []any{"node", now, now}},
		{"RunTaskSlice read", requeueReadSQL, []any{"ep_a", "msg_a", 500}},
		{"RunTaskSlice read by status", requeueReadStatusSQL, []any{"ep_a", "msg_a", 500, "failed"}},
		{"RunTaskSlice requeue", requeueSQL, []any{now, now, `["dlv_a"]`}},
		{"RunTaskSlice purge page", purgePageSQL, []any{"app_a", "msg_a", 500}},
		{"RunTaskSlice purge", purgeSQL, []any{"app_a", "msg_a", "msg_b"}},
		{"PollMessages window", pollWindowSQL, []any{"app_a", int64(5), herald.DefaultPollWindow}},
		{"PollMessages fetch", fmt.Sprintf(pollFetchSQL, "?, ?"), []any{"msg_a", "msg_b"}},
		{"PollStart", pollStartSQL, []any{"app_a", now, herald.DefaultPollWindow}},
	}
	for _, opts := range []herald.AttemptListOptions{
		{MessageID: "msg_a"},
		{MessageID: "msg_a", ListOptions: herald.ListOptions{Cursor: "atmpt_a", Order: herald.Descending}},
		{EndpointID: "ep_a", ListOptions: herald.ListOptions{Cursor: "atmpt_a"}},
		{EndpointID: "ep_a", Status: &status, StatusCodeClass: 500, EventTypes: []string{"a", "b"}, Channel: "c",
			Before: time.Now(), After: time.Now().Add(-time.Hour)},
		{MessageID: "msg_a", EndpointID: "ep_a"},
	} {
		q, args := attemptListQuery("app_a", opts)
		queries = append(queries, query{fmt.Sprintf("ListAttempts %+v", opts), q, args})
	}
	// The queries of deliveries not done with success must search the
	// partial index that holds only those: delivery_endpoint would also
	// find them, after reading every delivery the endpoint ever had.
	const open = "SEARCH delivery USING INDEX delivery_endpoint_open (endpoint_id=? AND status=?)"
	// Claims walk the due rows by time, their bound time and limits being
	// unplanned parameters (see unplanned).
	const due = "SEARCH delivery USING INDEX delivery_due (next_attempt_at<?)"
	wantSteps := map[string][]string{
		// A poll page walks the application's poll order from its position.
		"PollMessages window": {"SEARCH message USING INDEX message_app_poll (app_id=? AND poll_seq>?)"},
		"PollStart":           {"SEARCH message USING INDEX message_app_created (app_id=? AND created_at>?)"},
		"ClaimDue":            {due},
		"ClaimDue skipping":   {due},
		"ClaimDue window":     {due},
		// The next application after the last, then each one's due rows.
		"ClaimDue apps": {"SEARCH delivery USING COVERING INDEX delivery_app_due (app_id>?)",
			"SEARCH delivery USING INDEX delivery_app_due (app_id=? AND next_attempt_at<?)"},
		"RecordAttempts cancel": {open},
		"RecoverEndpoint":       {"SEARCH delivery USING COVERING INDEX delivery_endpoint_open (endpoint_id=? AND status=?)"},
		"GetEndpointStats": {"SEARCH delivery USING COVERING INDEX delivery_endpoint_open (endpoint_id=? AND status=?)",
			"SEARCH delivery USING COVERING INDEX delivery_endpoint (endpoint_id=?)"},
		"GetEndpointStats window": {"SEARCH d USING COVERING INDEX delivery_endpoint_open (endpoint_id=? AND status=?)",
			"SEARCH d USING COVERING INDEX delivery_endpoint (endpoint_id=?)"},
	}
	for _, opts := range []herald.DeliveryListOptions{
		{},
		{ListOptions: herald.ListOptions{Cursor: "msg_a", Order: herald.Descending}},
		{Status: herald.DeliveryFailed, ListOptions: herald.ListOptions{Cursor: "msg_a"}},
		{Status: herald.DeliveryPending},
		{Status: herald.DeliverySucceeded, ListOptions: herald.ListOptions{Cursor: "msg_a"}},
		{EventTypes: []string{"a"}, Channel: "c", Before: time.Now(), After: time.Now().Add(-time.Hour)},
	} {
		q, args := endpointMessagesQuery("app_a", "ep_a", opts)
		name := fmt.Sprintf("ListEndpointMessages %+v", opts)
		queries = append(queries, query{name, q, args})
		switch opts.Status {
		case herald.DeliveryFailed:
			wantSteps[name] = []string{"SEARCH d USING INDEX delivery_endpoint_open (endpoint_id=? AND status=? AND message_id>?)"}
		case herald.DeliveryPending:
			wantSteps[name] = []string{"SEARCH d USING INDEX delivery_endpoint_open (endpoint_id=? AND status=?)"}
		case herald.DeliverySucceeded:
			wantSteps[name] = []string{"SEARCH d USING INDEX delivery_endpoint (endpoint_id=? AND message_id>?)"}
		}
	}
	// ?tag= walks the tag's entries of message_tag's key in message order,
	// whatever else filters the page: a tag's rows, not the application's
	// or the endpoint's.
	const tagWalk = "SEARCH t USING PRIMARY KEY (app_id=? AND tag=?"
	tagged := map[string]bool{}
	for _, opts := range []herald.MessageListOptions{
		{Tag: "vip"},
		{Tag: "vip", ListOptions: herald.ListOptions{Cursor: "msg_a", Order: herald.Descending}},
		{Tag: "vip", EventTypes: []string{"a", "b"}, Channel: "c", Before: time.Now(), After: time.Now().Add(-time.Hour)},
		{},
	} {
		q, args := messagesQuery("app_a", opts)
		name := fmt.Sprintf("ListMessages %+v", opts)
		queries = append(queries, query{name, q, args})
		tagged[name] = opts.Tag != ""
	}
	for _, opts := range []herald.DeliveryListOptions{
		{Tag: "vip"},
		{Tag: "vip", Status: herald.DeliveryFailed, ListOptions: herald.ListOptions{Cursor: "msg_a", Order: herald.Descending}},
		{Tag: "vip", EventTypes: []string{"a"}, Channel: "c", Before: time.Now(), After: time.Now().Add(-time.Hour)},
	} {
		q, args := endpointMessagesQuery("app_a", "ep_a", opts)
		name := fmt.Sprintf("ListEndpointMessages tagged %+v", opts)
		queries = append(queries, query{name, q, args})
		tagged[name] = true
		wantSteps[name] = []string{"SEARCH d USING INDEX delivery_message_endpoint (message_id=? AND endpoint_id=?)"}
	}

	for _, q := range queries {
		plan := explain(t, s, q.name, q.sql, q.args...)
		if tagged[q.name] && (len(plan) == 0 || !strings.HasPrefix(plan[0], tagWalk)) {
			t.Errorf("%s: the plan does not start with a walk of the tag's entries (%q)", q.name, tagWalk)
		}
		for _, step := range plan {
			if boundedSorts[q.name] && step == "USE TEMP B-TREE FOR ORDER BY" || step == boundedScans[q.name] {
				continue
			}
			if fullScan.MatchString(step) {
				t.Errorf("%s: plan step %q scans or sorts", q.name, step)
			}
		}
		for _, want := range wantSteps[q.name] {
			if !slices.Contains(plan, want) {
				t.Errorf("%s: no plan step %q", q.name, want)
			}
		}
	}
}

// explain returns the steps of the query plan of q and logs them.
func explain(t *testing.T, s *Store, name, q string, args ...any) []string {
	t.Helper()
	rows, err := s.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n    %s", name, strings.Join(plan, "\n    "))
	return plan
}

// TestQueueStatsPlan checks that the monitor's counts read the deliveries
// only through the partial indexes of the pending and the sending rows:
// their cost grows with the queue, never with the delivered history.
func TestQueueStatsPlan(t *testing.T) {
	s := openInternal(t)
	plan := explain(t, s, "QueueStats", queueStatsSQL, micros(time.Now()))
	var delivery []string
	for _, step := range plan {
		if strings.Contains(step, " delivery ") || strings.HasSuffix(step, " delivery") {
			delivery = append(delivery, step)
		}
	}
	want := []string{
		"SCAN delivery USING COVERING INDEX delivery_due",
		"SCAN delivery USING COVERING INDEX delivery_lease",
		"SEARCH delivery USING COVERING INDEX delivery_due (next_attempt_at<?)",
	}
	if strings.Join(delivery, "\n") != strings.Join(want, "\n") {
		t.Errorf("QueueStats reads deliveries with\n    %s\nwant\n    %s", strings.Join(delivery, "\n    "), strings.Join(want, "\n    "))
	}
}

// TestFinishPlanWithStatistics checks the plan of the outcome update once
// the database has statistics taken while almost nothing was in flight
// (an operator's ANALYZE on a quiet queue): it must still walk the JSON
// array and find each delivery by ID, not scan delivery_lease once per
// array element.
func TestFinishPlanWithStatistics(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	now := micros(time.Now())
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`PRAGMA foreign_keys = OFF`)
	defer exec(`PRAGMA foreign_keys = ON`)
	exec(`BEGIN`)
	for i := range 5000 {
		exec(`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, created_at, updated_at)
			VALUES (?, 'app_a', ?, 'ep_a', 'succeeded', ?, 1, ?, ?)`, fmt.Sprintf("dlv_%08d", i), fmt.Sprintf("msg_%08d", i), now, now, now)
	}
	exec(`UPDATE delivery SET status = 'sending', lease_owner = 'node', lease_expires_at = ? WHERE id = 'dlv_00000000'`, now)
	exec(`COMMIT`)
	exec(`ANALYZE`)
	plan := explain(t, s, "finish with statistics", finishSQL, now, `[["dlv_00000000","pending",null,1,"node",null]]`)
	want := []string{"SCAN json_each VIRTUAL TABLE INDEX 1:", "SEARCH delivery USING INDEX sqlite_autoindex_delivery_1 (id=?)"}
	if strings.Join(plan, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan\n    %s\nwant\n    %s", strings.Join(plan, "\n    "), strings.Join(want, "\n    "))
	}
}
