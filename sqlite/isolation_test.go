package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestIsolationQueryPlans checks that the FIFO claim and the failure
// tracking search indexes: a FIFO endpoint's head and its in-flight check,
// and the pending deliveries failed with a disabled endpoint, come from
// delivery_endpoint_open, the FIFO endpoints from
// endpoint_ordering. The FIFO claim may sort its heads (one per FIFO
// endpoint) by due time; nothing may scan a table.
func TestIsolationQueryPlans(t *testing.T) {
	s := openInternal(t)
	now := micros(time.Now())
	queries := []struct {
		name      string
		sql       string
		args      []any
		mayDoSort bool
	}{
		{"claim FIFO heads", fmt.Sprintf(claimHeadsSQL, ""), []any{"node", now, now, now, 10}, true},
		{"claim FIFO heads skipping", fmt.Sprintf(claimHeadsSQL, skipHeads), []any{"node", now, now, now, `["ep_a"]`, `["app_a"]`, 10}, true},
		{"clear failing_since", clearFailingSQL, []any{"ep_a"}, false},
		{"set failing_since", setFailingSQL, []any{now, "ep_a"}, false},
		{"auto-disable", autoDisableSQL, []any{now, "ep_a", now}, false},
		{"fail pending", failPendingSQL, []any{now, "ep_a"}, false},
		{"disable on 410", disableSQL, []any{now, "ep_a"}, false},
	}
	for _, q := range queries {
		plan := explain(t, s, q.name, q.sql, q.args...)
		for _, step := range plan {
			if fullScan.MatchString(step) && !(q.mayDoSort && strings.HasPrefix(step, "USE TEMP B-TREE FOR ORDER BY")) {
				t.Errorf("%s: plan step %q scans or sorts", q.name, step)
			}
		}
		if (strings.HasPrefix(q.name, "claim FIFO") || q.name == "fail pending") && !strings.Contains(strings.Join(plan, "\n"), "delivery_endpoint_open") {
			t.Errorf("%s: the lookups by endpoint and status do not use delivery_endpoint_open", q.name)
		}
	}
}
