package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// TestSDKStatistics drives statistics.aggregateAppStats and
// statistics.aggregateEventTypes through the official Svix Go SDK, on
// SQLite and PostgreSQL: each answers at once with a running task, which
// finishes with its result in the task's data (Svix's shape), counted
// from what was posted.
func TestSDKStatistics(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testSDKStatistics(t, newTestServer(t)) })
	t.Run("postgres", func(t *testing.T) { testSDKStatistics(t, newTestServerOn(t, postgresNodes(t, 1)[0])) })
}

// statsLine is one line of appStats as the task's data holds it.
type statsLine struct {
	AppID               string  `json:"appId"`
	AppUID              *string `json:"appUid"`
	Messages            int64   `json:"messages"`
	MessageDestinations int64   `json:"messageDestinations"`
}

// eventTypesLine is one line of event_types.
type eventTypesLine struct {
	AppID                          string   `json:"appId"`
	ExplicitlySubscribedEventTypes []string `json:"explicitlySubscribedEventTypes"`
	HasCatchAllEndpoint            bool     `json:"hasCatchAllEndpoint"`
}

// dataAs decodes the task's data[key] into out.
func dataAs(t *testing.T, task *models.BackgroundTaskOut, key string, out any) {
	t.Helper()
	v, ok := task.Data[key]
	if !ok {
		t.Fatalf("task %s data has no %q: %v", task.Id, key, task.Data)
	}
	b, err := json.Marshal(v)
	mustNoErr(t, "encode data", err)
	mustNoErr(t, "decode data", json.Unmarshal(b, out))
}

func testSDKStatistics(t *testing.T, ts *testServer) {
	ctx := t.Context()
	client := ts.sdk(t, ts.Token)
	mkApp := func(name string, uid *string) *models.ApplicationOut {
		app, err := client.Application.Create(ctx, models.ApplicationIn{Name: name, Uid: uid}, nil)
		mustNoErr(t, "create application", err)
		return app
	}
	mkEndpoint := func(app string, filter []string) {
		_, err := client.Endpoint.Create(ctx, app, models.EndpointIn{Url: "https://hooks.example/" + app, FilterTypes: filter}, nil)
		mustNoErr(t, "create endpoint", err)
	}
	post := func(app, eventType string) {
		_, err := client.Message.Create(ctx, app, models.MessageIn{EventType: eventType, Payload: map[string]any{"a": 1}}, nil)
		mustNoErr(t, "create message", err)
	}
	acme := mkApp("Acme", new("acme"))
	quiet := mkApp("Quiet", nil)
	solo := mkApp("Solo", nil)
	mkEndpoint(acme.Id, nil)
	mkEndpoint(acme.Id, []string{"order.paid", "order.created", "order.paid.late"})
	mkEndpoint(solo.Id, []string{"user.signup"})
	since := ts.Clock.Now()
	for range 3 {
		post(acme.Id, "order.shipped") // the catch-all endpoint only
	}
	for range 2 {
		post(acme.Id, "order.paid") // both
	}
	post(quiet.Id, "order.paid") // no endpoints
	post(solo.Id, "user.signup")
	post(solo.Id, "user.deleted") // filtered out
	until := ts.Clock.Now().Add(time.Second)

	// Every application with messages in the range.
	out, err := client.Statistics.AggregateAppStats(ctx, models.AppUsageStatsIn{Since: since, Until: until}, nil)
	mustNoErr(t, "aggregate app stats", err)
	if out.Status != models.BACKGROUNDTASKSTATUS_RUNNING || out.Task != models.BACKGROUNDTASKTYPE_APPLICATION_STATS ||
		out.UnresolvedAppIds == nil || len(out.UnresolvedAppIds) != 0 {
		t.Fatalf("aggregate app stats answer %+v", out)
	}
	task := waitTask(t, client, out.Id)
	if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED || task.Task != models.BACKGROUNDTASKTYPE_APPLICATION_STATS {
		t.Fatalf("stats task %+v", task)
	}
	var lines []statsLine
	dataAs(t, task, "appStats", &lines)
	want := []statsLine{
		{AppID: acme.Id, AppUID: new("acme"), Messages: 5, MessageDestinations: 7},
		{AppID: quiet.Id, Messages: 1},
		{AppID: solo.Id, Messages: 2, MessageDestinations: 1},
	}
	slices.SortFunc(want, func(a, b statsLine) int { return compareStrings(a.AppID, b.AppID) })
	mustEqualJSON(t, "appStats", want, lines)

	// Named by UID and ID; an unknown one is reported and left out; an
	// hour with nothing is zero.
	out, err = client.Statistics.AggregateAppStats(ctx, models.AppUsageStatsIn{
		Since: since, Until: until, AppIds: []string{"acme", "nobody", quiet.Id},
	}, nil)
	mustNoErr(t, "aggregate app stats of named apps", err)
	if !slices.Equal(out.UnresolvedAppIds, []string{"nobody"}) {
		t.Fatalf("unresolvedAppIds %v, want [nobody]", out.UnresolvedAppIds)
	}
	dataAs(t, waitTask(t, client, out.Id), "appStats", &lines)
	want = []statsLine{{AppID: acme.Id, AppUID: new("acme"), Messages: 5, MessageDestinations: 7}, {AppID: quiet.Id, Messages: 1}}
	slices.SortFunc(want, func(a, b statsLine) int { return compareStrings(a.AppID, b.AppID) })
	mustEqualJSON(t, "appStats of named apps", want, lines)
	out, err = client.Statistics.AggregateAppStats(ctx, models.AppUsageStatsIn{
		Since: since.Add(-48 * time.Hour), Until: since.Add(-47 * time.Hour), AppIds: []string{"acme"},
	}, nil)
	mustNoErr(t, "aggregate app stats of an empty range", err)
	dataAs(t, waitTask(t, client, out.Id), "appStats", &lines)
	mustEqualJSON(t, "appStats of an empty range", []statsLine{{AppID: acme.Id, AppUID: new("acme")}}, lines)

	// Event types: from the endpoints' filters, not from the messages.
	et, err := client.Statistics.AggregateEventTypes(ctx)
	mustNoErr(t, "aggregate event types", err)
	if et.Status != models.BACKGROUNDTASKSTATUS_RUNNING || et.Task != models.BACKGROUNDTASKTYPE_EVENT_TYPE_AGGREGATE {
		t.Fatalf("aggregate event types answer %+v", et)
	}
	task = waitTask(t, client, et.Id)
	if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED {
		t.Fatalf("event-type task %+v", task)
	}
	var types []eventTypesLine
	dataAs(t, task, "event_types", &types)
	wantTypes := []eventTypesLine{
		{AppID: acme.Id, ExplicitlySubscribedEventTypes: []string{"order.created", "order.paid", "order.paid.late"}, HasCatchAllEndpoint: true},
		{AppID: solo.Id, ExplicitlySubscribedEventTypes: []string{"user.signup"}},
	}
	slices.SortFunc(wantTypes, func(a, b eventTypesLine) int { return compareStrings(a.AppID, b.AppID) })
	mustEqualJSON(t, "event_types", wantTypes, types)

	// Both kinds are listed as background tasks, filterable by kind.
	list, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Task: new(models.BACKGROUNDTASKTYPE_EVENT_TYPE_AGGREGATE)})
	mustNoErr(t, "list background tasks", err)
	if len(list.Data) != 1 || list.Data[0].Id != et.Id {
		t.Fatalf("event-type tasks listed: %+v", list.Data)
	}

	// Each start is in the audit log as the operator's.
	recs, err := ts.Store.ListAuditRecords(ctx, herald.AuditListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	mustNoErr(t, "list audit records", err)
	started := map[string]int{}
	for _, r := range recs {
		if r.ResourceType == herald.AuditTask {
			started[r.Action]++
		}
	}
	if started["stats.usage.app"] != 3 || started["stats.usage.event_types"] != 1 {
		t.Fatalf("audited task starts %v, want 3 stats.usage.app and 1 stats.usage.event_types", started)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mustEqualJSON compares want and got as JSON.
func mustEqualJSON(t *testing.T, what string, want, got any) {
	t.Helper()
	w, err := json.Marshal(want)
	mustNoErr(t, "encode", err)
	g, err := json.Marshal(got)
	mustNoErr(t, "encode", err)
	if string(w) != string(g) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestStatisticsRefusals: a bad range or appIds is a 422 naming the field
// (and appIds of which none is found one too), a body on the event-type
// aggregation that is not an object a 422, a key of an application a
// 403; none starts a task.
func TestStatisticsRefusals(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"Acme","uid":"acme"}`)
	for _, c := range []struct {
		method, path, body string
		loc                []string
	}{
		{"POST", "/api/v1/stats/usage/app", `{"until":"2025-03-01T00:00:00Z"}`, []string{"body", "since"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-01T00:00:00Z"}`, []string{"body", "until"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-02T00:00:00Z","until":"2025-03-01T00:00:00Z"}`, []string{"body", "until"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-01T00:00:00Z","until":"2025-03-01T00:00:00Z"}`, []string{"body", "until"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"yesterday","until":"2025-03-01T00:00:00Z"}`, []string{"body", "since"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-01T00:00:00Z","until":"2025-03-02T00:00:00Z","appIds":[""]}`, []string{"body", "appIds", "0"}},
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-01T00:00:00Z","until":"2025-03-02T00:00:00Z","appIds":["nobody","nothing"]}`, []string{"body", "appIds"}},
		{"PUT", "/api/v1/stats/usage/event-types", `[1]`, []string{"body"}},
	} {
		res := ts.call(t, c.method, c.path, c.body)
		detail := validationOut(t, res)
		if len(detail) == 0 || !slices.Equal(detail[0].Loc, c.loc) {
			t.Errorf("%s %s %s: %s, want loc %v", c.method, c.path, c.body, res.Body, c.loc)
		}
	}
	var portal appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &portal, "POST", "/api/v1/auth/app-portal-access/acme", `{"sessionId":"s1"}`)
	appKey := portal.Token
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/stats/usage/app", `{"since":"2025-03-01T00:00:00Z","until":"2025-03-02T00:00:00Z"}`},
		{"PUT", "/api/v1/stats/usage/event-types", ``},
	} {
		if res := ts.callAs(t, appKey, c.method, c.path, c.body); res.Status != http.StatusForbidden {
			t.Errorf("%s %s with an application's key: %d %s, want 403", c.method, c.path, res.Status, res.Body)
		}
	}
	tasks, err := ts.Store.ListTasks(t.Context(), herald.TaskListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil || len(tasks) != 0 {
		t.Fatalf("tasks after refusals: %v %v", tasks, err)
	}
}
