package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

var usageTests = []namedTest{
	{"CountsMatchDeliveries", testUsageCountsMatchDeliveries},
	{"HourRounding", testUsageHourRounding},
	{"NamedApps", testUsageNamedApps},
	{"DeletedApp", testUsageDeletedApp},
	{"ConcurrentBatches", testUsageConcurrentBatches},
	{"EventTypes", testUsageEventTypes},
	{"ReplayMissingCounted", testUsageReplayMissingCounted},
}

// hourStart is the start of base's hour; hourAt(h, s) is s seconds into
// the h-th hour after it.
var hourStart = base.Truncate(time.Hour)

func hourAt(h, s int) time.Time {
	return hourStart.Add(time.Duration(h)*time.Hour + time.Duration(s)*time.Second)
}

// stamped is a message of appID created at c, its ID from c.
func stamped(appID string, c time.Time, eventType string) *herald.Message {
	return &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, c), AppID: appID, EventType: eventType,
		Payload: []byte(`{}`), CreatedAt: c}
}

// runStats runs an application.stats task over filter in slices of limit
// applications and returns its result.
func runStats(t *testing.T, s herald.Store, f herald.TaskFilter, limit int) []herald.AppUsage {
	t.Helper()
	task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskAppStats, Filter: f}, 5000)
	got, _ := runTask(t, s, task, limit, 5000)
	if got.Status != herald.TaskFinished {
		t.Fatalf("stats task %s: %s (%s)", got.ID, got.Status, got.Error)
	}
	if got.Result == nil {
		return nil
	}
	return got.Result.AppStats
}

// usageOf is the line of an application without a UID.
func usageOf(app *herald.Application, msgs, dests int64) herald.AppUsage {
	u := herald.AppUsage{AppID: app.ID, Messages: msgs, Destinations: dests}
	if app.UID != "" {
		u.AppUID = &app.UID
	}
	return u
}

// testUsageCountsMatchDeliveries: over random traffic to three
// applications (endpoints with and without filters, one application with
// none, messages refused for a taken ID), a stats task in slices of one
// application reports for each application exactly the messages stored
// and the deliveries the store holds for them, counted from the rows.
func testUsageCountsMatchDeliveries(t *testing.T, s herald.Store) {
	rng := rand.New(rand.NewPCG(7, 21))
	var apps []*herald.Application
	for i := range 3 {
		app := mustCreateApp(t, s, newApp(i*100+1))
		apps = append(apps, app)
		for j := range i * 2 { // 0, 2 and 4 endpoints
			ep := newEndpoint(app.ID, i*100+2+j)
			if j%2 == 1 {
				ep.FilterTypes = []string{"a.b"}
			}
			mustCreateEndpoint(t, s, ep)
		}
	}
	var all []*herald.Message
	for b := range 20 {
		var batch []*herald.Message
		for range 1 + rng.IntN(8) {
			app := apps[rng.IntN(len(apps))]
			m := stamped(app.ID, hourAt(rng.IntN(3), rng.IntN(3600)), []string{"a.b", "c.d"}[rng.IntN(2)])
			m.ID = herald.NewIDAt(herald.PrefixMessage, m.CreatedAt) // distinct: KSUIDs carry randomness
			batch = append(batch, m)
		}
		if b%5 == 4 && len(all) > 0 {
			dup := *all[0] // a taken ID: refused, not counted
			batch = append(batch, &dup)
		}
		if _, err := s.CreateMessages(t.Context(), batch, herald.Lease{}); err != nil {
			t.Fatalf("CreateMessages: %v", err)
		}
		for _, m := range batch {
			if m != batch[len(batch)-1] || b%5 != 4 || len(all) == 0 {
				all = append(all, m)
			}
		}
	}
	want := map[string]herald.AppUsage{}
	for _, app := range apps {
		want[app.ID] = usageOf(app, 0, 0)
	}
	for _, m := range all {
		u := want[m.AppID]
		u.Messages++
		u.Destinations += int64(len(mustListDeliveries(t, s, m.AppID, m.ID)))
		want[m.AppID] = u
	}
	var wantList []herald.AppUsage
	for _, app := range apps { // newApp's IDs sort in creation order
		if want[app.ID].Messages > 0 {
			wantList = append(wantList, want[app.ID])
		}
	}
	got := runStats(t, s, herald.TaskFilter{Since: hourAt(0, 0), Until: hourAt(3, 0)}, 1)
	mustEqual(t, "usage over all traffic", wantList, got)
}

// testUsageHourRounding: counters are hourly and a range is rounded
// outward to whole hours: since in the middle of an hour counts that hour
// in full, until on an hour's start excludes that hour.
func testUsageHourRounding(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	mustCreateMessages(t, s, stamped(app.ID, hourAt(0, 10), "a.b"), stamped(app.ID, hourAt(0, 3000), "a.b"))
	mustCreateMessages(t, s, stamped(app.ID, hourAt(1, 0), "a.b"))
	mustCreateMessages(t, s, stamped(app.ID, hourAt(2, 3599), "a.b"))
	cases := []struct {
		since, until time.Time
		want         int64
	}{
		{hourAt(0, 0), hourAt(3, 0), 4},
		{hourAt(0, 1800), hourAt(0, 1801), 2}, // inside one hour: all of it
		{hourAt(0, 0), hourAt(1, 0), 2},       // until on an hour: excluded
		{hourAt(0, 0), hourAt(1, 1), 3},
		{hourAt(1, 0), hourAt(2, 0), 1},
		{hourAt(3, 0), hourAt(9, 0), 0},
		{hourAt(-5, 0), hourAt(0, 0), 0},
	}
	for _, tc := range cases {
		got := runStats(t, s, herald.TaskFilter{Since: tc.since, Until: tc.until}, 10)
		var want []herald.AppUsage
		if tc.want > 0 {
			want = []herald.AppUsage{usageOf(app, tc.want, tc.want)}
		}
		mustEqual(t, fmt.Sprintf("usage in [%s, %s)", tc.since.Format(time.TimeOnly), tc.until.Format(time.TimeOnly)), want, got)
	}
}

// testUsageNamedApps: named applications are reported each, in ID order,
// with zeros for one without usage, in slices; their UIDs come along.
func testUsageNamedApps(t *testing.T, s herald.Store) {
	busy := newApp(1)
	busy.UID = "busy"
	mustCreateApp(t, s, busy)
	idle := mustCreateApp(t, s, newApp(2))
	other := mustCreateApp(t, s, newApp(3))
	mustCreateEndpoint(t, s, newEndpoint(busy.ID, 4))
	mustCreateMessages(t, s, stamped(busy.ID, hourAt(0, 1), "a.b"), stamped(other.ID, hourAt(0, 2), "a.b"))
	f := herald.TaskFilter{Since: hourAt(0, 0), Until: hourAt(1, 0), AppIDs: []string{busy.ID, idle.ID}}
	for _, limit := range []int{1, 2, 10} {
		got := runStats(t, s, f, limit)
		mustEqual(t, fmt.Sprintf("usage of named apps, slices of %d", limit),
			[]herald.AppUsage{usageOf(busy, 1, 1), usageOf(idle, 0, 0)}, got)
	}
}

// testUsageDeletedApp: a deleted application's counters go with it: it is
// in no result, named or not, and the others' counts are untouched.
func testUsageDeletedApp(t *testing.T, s herald.Store) {
	doomed := mustCreateApp(t, s, newApp(1))
	kept := mustCreateApp(t, s, newApp(2))
	mustCreateEndpoint(t, s, newEndpoint(doomed.ID, 3))
	mustCreateMessages(t, s, stamped(doomed.ID, hourAt(0, 1), "a.b"), stamped(kept.ID, hourAt(0, 2), "a.b"))
	mustOK(t, "DeleteApplication", s.DeleteApplication(t.Context(), doomed.ID))
	f := herald.TaskFilter{Since: hourAt(0, 0), Until: hourAt(1, 0)}
	mustEqual(t, "usage after a delete", []herald.AppUsage{usageOf(kept, 1, 0)}, runStats(t, s, f, 10))
	f.AppIDs = []string{doomed.ID, kept.ID}
	mustEqual(t, "usage of a deleted app named", []herald.AppUsage{usageOf(kept, 1, 0)}, runStats(t, s, f, 10))
	// A new application with the old one's messages' hour starts at zero.
	again := mustCreateApp(t, s, newApp(1))
	f.AppIDs = []string{again.ID}
	mustEqual(t, "usage of a recreated app", []herald.AppUsage{usageOf(again, 0, 0)}, runStats(t, s, f, 10))
}

// testUsageConcurrentBatches: batches written at once from many
// goroutines, to two applications and two hours, lose no count.
func testUsageConcurrentBatches(t *testing.T, s herald.Store) {
	a := mustCreateApp(t, s, newApp(1))
	b := mustCreateApp(t, s, newApp(2))
	mustCreateEndpoint(t, s, newEndpoint(a.ID, 3))
	mustCreateEndpoint(t, s, newEndpoint(a.ID, 4))
	mustCreateEndpoint(t, s, newEndpoint(b.ID, 5))
	const workers, batches, size = 8, 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Go(func() {
			for i := range batches {
				var msgs []*herald.Message
				for j := range size {
					// Both applications and hours in every batch, in an
					// order that differs between workers.
					app := []*herald.Application{a, b}[(w+j)%2]
					c := hourAt((w+i+j)%2, (w*batches+i)*size+j)
					m := stamped(app.ID, c, "a.b")
					msgs = append(msgs, m)
				}
				res, err := s.CreateMessages(t.Context(), msgs, herald.Lease{})
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
						}
					}
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent CreateMessages: %v", err)
	}
	got := runStats(t, s, herald.TaskFilter{Since: hourAt(0, 0), Until: hourAt(2, 0)}, 10)
	half := int64(workers * batches * size / 2)
	mustEqual(t, "usage after concurrent batches", []herald.AppUsage{usageOf(a, half, 2*half), usageOf(b, half, half)}, got)
}

// testUsageEventTypes: an event-type aggregation lists, per application
// with endpoints (in ID order, in slices of one application), the event
// types its endpoints' filters name, sorted and once each, and whether one
// endpoint (disabled ones too) has no filter; an application without
// endpoints, and the operational application, are left out.
func testUsageEventTypes(t *testing.T, s herald.Store) {
	filtered := mustCreateApp(t, s, newApp(1))
	catchAll := mustCreateApp(t, s, newApp(2))
	mustCreateApp(t, s, newApp(3)) // no endpoints
	deleted := mustCreateApp(t, s, newApp(4))
	for i, types := range [][]string{{"b.x", "a.x"}, {"c.x", "b.x"}} {
		ep := newEndpoint(filtered.ID, 10+i)
		ep.FilterTypes = types
		mustCreateEndpoint(t, s, ep)
	}
	ep := newEndpoint(catchAll.ID, 20)
	ep.FilterTypes = []string{"z.x"}
	mustCreateEndpoint(t, s, ep)
	ep = newEndpoint(catchAll.ID, 21)
	ep.Disabled = true
	mustCreateEndpoint(t, s, ep)
	mustCreateEndpoint(t, s, newEndpoint(deleted.ID, 30))
	mustOK(t, "DeleteApplication", s.DeleteApplication(t.Context(), deleted.ID))
	// Herald's own operational endpoints are no customer's subscriptions.
	mustOperationalEndpoint(t, s)
	want := []herald.AppEventTypes{
		{AppID: filtered.ID, EventTypes: []string{"a.x", "b.x", "c.x"}},
		{AppID: catchAll.ID, EventTypes: []string{"z.x"}, CatchAll: true},
	}
	for _, limit := range []int{1, 3, 10} {
		task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskEventTypes}, 5000)
		got, done := runTask(t, s, task, limit, 5000)
		if got.Status != herald.TaskFinished || got.Result == nil {
			t.Fatalf("event-type task: %+v", got)
		}
		mustEqual(t, fmt.Sprintf("event types, slices of %d", limit), want, got.Result.EventTypes)
		if done[len(done)-1] != 2 {
			t.Errorf("event-type task done %v, want 2 applications at the end", done)
		}
		again, err := s.GetTask(t.Context(), task.ID)
		mustOK(t, "GetTask", err)
		mustEqual(t, "event-type task as read", got, again, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }))
	}
}

// testUsageReplayMissingCounted: the deliveries replay-missing creates,
// by the store verb or by a task's slices, are destinations of their
// messages, counted in the hours the messages were created; a second
// replay creates and counts none.
func testUsageReplayMissingCounted(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	mustCreateMessages(t, s, stamped(app.ID, hourAt(1, 5), "a.b"), stamped(app.ID, hourAt(2, 5), "a.b"),
		stamped(app.ID, hourAt(2, 6), "a.b"))
	one := mustCreateEndpoint(t, s, newEndpoint(app.ID, 2))
	two := mustCreateEndpoint(t, s, newEndpoint(app.ID, 3))
	f := herald.TaskFilter{Since: hourAt(1, 0), Until: hourAt(3, 0)}
	mustEqual(t, "usage before the replays", []herald.AppUsage{usageOf(app, 3, 0)}, runStats(t, s, f, 10))
	n, err := s.ReplayMissing(t.Context(), app.ID, one.ID, hourAt(0, 0), time.Time{}, hourAt(3, 0))
	mustOK(t, "ReplayMissing", err)
	if n != 3 {
		t.Fatalf("ReplayMissing created %d deliveries, want 3", n)
	}
	task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskReplay, AppID: app.ID, EndpointID: two.ID,
		Filter: herald.TaskFilter{Since: hourAt(0, 0)}}, 4000)
	if got, _ := runTask(t, s, task, 1, 4000); got.Done != 3 {
		t.Fatalf("replay task created %d deliveries, want 3", got.Done)
	}
	n, err = s.ReplayMissing(t.Context(), app.ID, one.ID, hourAt(0, 0), time.Time{}, hourAt(3, 0))
	mustOK(t, "ReplayMissing again", err)
	if n != 0 {
		t.Fatalf("second ReplayMissing created %d deliveries, want none", n)
	}
	mustEqual(t, "usage after the replays", []herald.AppUsage{usageOf(app, 3, 6)}, runStats(t, s, f, 10))
	f.Until = hourAt(2, 0)
	mustEqual(t, "usage of the first hour", []herald.AppUsage{usageOf(app, 1, 2)}, runStats(t, s, f, 10))
}
