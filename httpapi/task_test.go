package httpapi

import (
	"net/http"
	"slices"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// waitTask polls the task through the SDK until it is no longer running
// (the test's own deadline bounds the wait) and returns it.
func waitTask(t *testing.T, client *svix.Svix, id string) *models.BackgroundTaskOut {
	t.Helper()
	for {
		got, err := client.BackgroundTask.Get(t.Context(), id)
		mustNoErr(t, "get background task "+id, err)
		if got.Status != models.BACKGROUNDTASKSTATUS_RUNNING {
			return got
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("task %s still running at the test's deadline: %+v", id, got)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitUntil polls cond until it holds (the test's own deadline bounds the
// wait).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: not by the test's deadline", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestSDKBackgroundTasks drives every background-task operation through
// the official Svix Go SDK, on SQLite and PostgreSQL: recover, bulk replay
// with each filter, expunge-all-contents, precheck, and the task list and
// task routes. The test servers' runners work in slices of two rows, so
// each task here takes several slices.
func TestSDKBackgroundTasks(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testSDKBackgroundTasks(t, newDeliveryFixtureOn(t, 4, func(opts ...func(*Config)) *testServer { return newTestServer(t, opts...) }))
	})
	t.Run("postgres", func(t *testing.T) {
		testSDKBackgroundTasks(t, newDeliveryFixtureOn(t, 4, func(opts ...func(*Config)) *testServer {
			return newTestServerOn(t, postgresNodes(t, 1)[0], opts...)
		}))
	})
}

func testSDKBackgroundTasks(t *testing.T, f *deliveryFixture) {
	ctx := t.Context()
	client := f.ts.sdk(t, f.ts.Token)
	since := f.ts.Clock.Now().Add(-time.Hour)
	status := func(msg int, ep endpointOut) (herald.DeliveryStatus, herald.TriggerType) {
		d := deliveryOf(t, f.ts, f.appID, f.msgs[msg].ID, ep.ID)
		return d.Status, d.Trigger
	}
	want := func(what string, msg int, ep endpointOut, st herald.DeliveryStatus, tr herald.TriggerType) {
		t.Helper()
		if gotSt, gotTr := status(msg, ep); gotSt != st || gotTr != tr {
			t.Errorf("%s: message %d to %s is %s/%v, want %s/%v", what, msg, ep.ID, gotSt, gotTr, st, tr)
		}
	}
	queued := func(task *models.BackgroundTaskOut) float64 {
		n, _ := task.Data["deliveriesQueued"].(float64)
		return n
	}

	// Recover: ep-one's one failed delivery (message 0), nothing else.
	rec, err := client.Endpoint.Recover(ctx, "acme", "ep-one", models.RecoverIn{Since: since}, nil)
	mustNoErr(t, "recover", err)
	if rec.Status != models.BACKGROUNDTASKSTATUS_RUNNING || rec.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER {
		t.Fatalf("recover answer %+v", rec)
	}
	if got := waitTask(t, client, rec.Id); got.Status != models.BACKGROUNDTASKSTATUS_FINISHED || queued(got) != 1 {
		t.Fatalf("recover task %+v", got)
	}
	want("recover", 0, f.ep1, herald.DeliveryPending, herald.TriggerManual)
	waitUntil(t, "OnQueued after recover", func() bool { return f.queued.Load() >= 1 })

	// Bulk replay of ep-two's successful order.paid deliveries: messages 1
	// and 3, not 0 and 2.
	success := models.MESSAGESTATUS_SUCCESS
	bulk, err := client.Endpoint.BulkReplay(ctx, "acme", "ep-two", models.BulkReplayIn{
		Since: since, Status: &success, EventTypes: []string{"order.paid"},
	}, nil)
	mustNoErr(t, "bulk replay", err)
	if bulk.Status != models.BACKGROUNDTASKSTATUS_RUNNING || bulk.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_BULK_REPLAY {
		t.Fatalf("bulk replay answer %+v", bulk)
	}
	if got := waitTask(t, client, bulk.Id); got.Status != models.BACKGROUNDTASKSTATUS_FINISHED || queued(got) != 2 {
		t.Fatalf("bulk replay task %+v", got)
	}
	want("bulk replay", 0, f.ep2, herald.DeliverySucceeded, herald.TriggerScheduled)
	want("bulk replay", 1, f.ep2, herald.DeliveryPending, herald.TriggerManual)
	want("bulk replay", 2, f.ep2, herald.DeliverySucceeded, herald.TriggerScheduled)
	want("bulk replay", 3, f.ep2, herald.DeliveryPending, herald.TriggerManual)

	// A window [message 1, message 3) on channel "eu", any status: message
	// 1 only (message 2 is on no channel).
	from, err := time.Parse(time.RFC3339Nano, f.msgs[1].Timestamp)
	mustNoErr(t, "timestamp", err)
	until, err := time.Parse(time.RFC3339Nano, f.msgs[3].Timestamp)
	mustNoErr(t, "timestamp", err)
	eu := "eu"
	window, err := client.Endpoint.BulkReplay(ctx, "acme", "ep-one", models.BulkReplayIn{Since: from, Until: &until, Channel: &eu}, nil)
	mustNoErr(t, "bulk replay of a window", err)
	if got := waitTask(t, client, window.Id); got.Status != models.BACKGROUNDTASKSTATUS_FINISHED || queued(got) != 1 {
		t.Fatalf("bulk replay of a window %+v", got)
	}
	want("window", 1, f.ep1, herald.DeliveryPending, herald.TriggerManual)
	want("window", 2, f.ep1, herald.DeliveryPending, herald.TriggerScheduled)
	want("window", 3, f.ep1, herald.DeliveryPending, herald.TriggerScheduled)

	// By the class of the last attempt's answer: ep-two's deliveries still
	// succeeded (messages 0 and 2) last got a 2xx; none got a 5xx.
	var byClass []string // task IDs, newest first
	for _, c := range []struct {
		class  models.StatusCodeClass
		queued float64
	}{{models.STATUSCODECLASS_CODE5XX, 0}, {models.STATUSCODECLASS_CODE2XX, 2}} {
		task, err := client.Endpoint.BulkReplay(ctx, "acme", "ep-two", models.BulkReplayIn{Since: since, Status: &success, StatusCodeClass: &c.class}, nil)
		mustNoErr(t, "bulk replay by status code class", err)
		if got := waitTask(t, client, task.Id); got.Status != models.BACKGROUNDTASKSTATUS_FINISHED || queued(got) != c.queued {
			t.Fatalf("bulk replay of class %d: %+v, want %v queued", c.class, got, c.queued)
		}
		byClass = append([]string{task.Id}, byClass...)
	}
	want("class", 0, f.ep2, herald.DeliveryPending, herald.TriggerManual)
	want("class", 2, f.ep2, herald.DeliveryPending, herald.TriggerManual)

	// Expunge all contents: every payload goes, the messages stay.
	purge, err := client.Message.ExpungeAllContents(ctx, "acme", nil)
	mustNoErr(t, "expunge all contents", err)
	if purge.Status != models.BACKGROUNDTASKSTATUS_RUNNING || purge.Task != models.BACKGROUNDTASKTYPE_APPLICATION_PURGE_CONTENT {
		t.Fatalf("expunge answer %+v", purge)
	}
	got := waitTask(t, client, purge.Id)
	if got.Status != models.BACKGROUNDTASKSTATUS_FINISHED || got.Data["messagesPurged"] != float64(4) {
		t.Fatalf("expunge task %+v", got)
	}
	for _, m := range f.msgs {
		stored, err := f.ts.Store.GetMessage(ctx, f.appID, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Payload != nil {
			t.Errorf("message %s keeps its payload %s", m.ID, stored.Payload)
		}
	}
	again, err := client.Message.ExpungeAllContents(ctx, "acme", nil)
	mustNoErr(t, "expunge all contents again", err)
	if got := waitTask(t, client, again.Id); got.Data["messagesPurged"] != float64(0) {
		t.Fatalf("second expunge %+v", got)
	}

	// Precheck: an application with a filtered endpoint on channel eu and
	// a disabled endpoint that takes everything.
	createApp(t, f.ts, `{"name":"Quiet","uid":"quiet"}`)
	f.ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/quiet/endpoint", `{"url":"https://q.example/a","filterTypes":["a.b"],"channels":["eu"]}`)
	f.ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/quiet/endpoint", `{"url":"https://q.example/b","disabled":true}`)
	for _, c := range []struct {
		eventType string
		channels  []string
		active    bool
	}{
		{"a.b", []string{"eu"}, true},
		{"a.b", []string{"us", "eu"}, true},
		{"a.b", []string{"us"}, false},
		{"a.b", nil, false},
		{"c.d", []string{"eu"}, false},
	} {
		out, err := client.Message.Precheck(ctx, "quiet", models.MessagePrecheckIn{EventType: c.eventType, Channels: c.channels}, nil)
		mustNoErr(t, "precheck", err)
		if out.Active != c.active {
			t.Errorf("precheck %s on %v: active %v, want %v", c.eventType, c.channels, out.Active, c.active)
		}
	}
	out, err := client.Message.Precheck(ctx, "acme", models.MessagePrecheckIn{EventType: "anything"}, nil)
	mustNoErr(t, "precheck acme", err)
	if !out.Active {
		t.Error("precheck: acme's endpoints take every event type, but not active")
	}

	// The task list: newest first, filtered by kind and status, in pages.
	all, err := client.BackgroundTask.List(ctx, nil)
	mustNoErr(t, "list tasks", err)
	var ids []string
	for _, task := range all.Data {
		ids = append(ids, task.Id)
	}
	if wantIDs := slices.Concat([]string{again.Id, purge.Id}, byClass, []string{window.Id, bulk.Id, rec.Id}); !slices.Equal(ids, wantIDs) || !all.Done {
		t.Fatalf("tasks %v (done %v), want %v", ids, all.Done, wantIDs)
	}
	kind := models.BACKGROUNDTASKTYPE_ENDPOINT_BULK_REPLAY
	bulks, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Task: &kind})
	mustNoErr(t, "list bulk replays", err)
	var bulkIDs []string
	for _, b := range bulks.Data {
		bulkIDs = append(bulkIDs, b.Id)
	}
	if !slices.Equal(bulkIDs, slices.Concat(byClass, []string{window.Id, bulk.Id})) {
		t.Fatalf("bulk replays %+v", bulks.Data)
	}
	running := models.BACKGROUNDTASKSTATUS_RUNNING
	none, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Status: &running})
	mustNoErr(t, "list running tasks", err)
	if len(none.Data) != 0 {
		t.Fatalf("running tasks %+v", none.Data)
	}
	var limit uint64 = 2
	asc := models.ORDERING_ASCENDING
	p1, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Limit: &limit, Order: &asc})
	mustNoErr(t, "first page", err)
	p2, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Limit: &limit, Order: &asc, Iterator: p1.Iterator})
	mustNoErr(t, "second page", err)
	if p1.Done || len(p1.Data) != 2 || len(p2.Data) != 2 || p1.Data[0].Id != rec.Id || p2.Data[0].Id != window.Id || p2.Data[1].Id != byClass[1] {
		t.Fatalf("pages %+v %+v", p1, p2)
	}

	_, err = client.BackgroundTask.Get(ctx, "qtask_2VZ7Qm3k4wQpXxYz1")
	wantSDKError(t, "unknown task", err, http.StatusNotFound, herald.ENOTFOUND)
}

// TestBackgroundTaskRefusals: bad input is a 422 naming the field, an
// unknown endpoint or application a 404, and neither starts a task.
func TestBackgroundTaskRefusals(t *testing.T) {
	f := newDeliveryFixture(t, 1)
	ts := f.ts
	for _, c := range []struct {
		method, path, body string
		loc                []string
	}{
		{"POST", "/api/v1/app/acme/endpoint/ep-one/bulk-replay", `{}`, []string{"body", "since"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/bulk-replay", `{"since":"2025-03-01T00:00:00Z","status":4}`, []string{"body", "status"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/bulk-replay", `{"since":"2025-03-01T00:00:00Z","statusCodeClass":250}`, []string{"body", "statusCodeClass"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/bulk-replay", `{"since":"2025-03-01T00:00:00Z","eventTypes":["no spaces"]}`, []string{"body", "eventTypes", "0"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/bulk-replay", `{"since":"2025-03-02T00:00:00Z","until":"2025-03-01T00:00:00Z"}`, []string{"body", "until"}},
		{"POST", "/api/v1/app/acme/msg/precheck/active", `{}`, []string{"body", "eventType"}},
		{"POST", "/api/v1/app/acme/msg/precheck/active", `{"eventType":"a b"}`, []string{"body", "eventType"}},
		{"GET", "/api/v1/background-task?status=done", "", []string{"query", "status"}},
		{"GET", "/api/v1/background-task?task=endpoint.delete", "", []string{"query", "task"}},
		{"GET", "/api/v1/background-task?limit=0", "", []string{"query", "limit"}},
	} {
		res := ts.call(t, c.method, c.path, c.body)
		detail := validationOut(t, res)
		if len(detail) == 0 || !slices.Equal(detail[0].Loc, c.loc) {
			t.Errorf("%s %s %s: %s, want loc %v", c.method, c.path, c.body, res.Body, c.loc)
		}
	}
	for _, path := range []string{
		"/api/v1/app/acme/endpoint/ep-missing/bulk-replay",
		"/api/v1/app/acme/endpoint/ep-missing/recover",
		"/api/v1/app/acme/endpoint/ep-missing/replay-missing",
		"/api/v1/app/nobody/msg/expunge-all-contents",
		"/api/v1/app/nobody/msg/precheck/active",
	} {
		body := `{"since":"2025-03-01T00:00:00Z","eventType":"a.b"}`
		if res := ts.call(t, "POST", path, body); res.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", path, res.Status, res.Body)
		}
	}
	tasks, err := ts.Store.ListTasks(t.Context(), herald.TaskListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil || len(tasks) != 0 {
		t.Fatalf("tasks after refusals: %v %v", tasks, err)
	}
}
