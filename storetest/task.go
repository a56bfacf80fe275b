package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var taskTests = []namedTest{
	{"CreateGetList", testTaskCreateGetList},
	{"ClaimLease", testTaskClaimLease},
	{"RecoverSlices", testTaskRecoverSlices},
	{"BulkReplayFilter", testTaskBulkReplayFilter},
	{"ReplaySlices", testTaskReplaySlices},
	{"PurgeContent", testTaskPurgeContent},
	{"DeleteExpired", testTaskDeleteExpired},
}

const (
	runnerA = "runner-a"
	runnerB = "runner-b"
)

// mustCreateTask stores t at(n) and returns it.
func mustCreateTask(t *testing.T, s herald.Store, task *herald.Task, n int) *herald.Task {
	t.Helper()
	mustOK(t, "CreateTask", s.CreateTask(t.Context(), task, at(n)))
	return task
}

// runTask claims the task for runnerA (it must be the one claimed) and
// runs its slices of limit rows to the end at(n), and returns it with the
// Done of each slice.
func runTask(t *testing.T, s herald.Store, task *herald.Task, limit, n int) (*herald.Task, []int) {
	t.Helper()
	claimed, err := s.ClaimTask(t.Context(), runnerA, at(n), at(n+60))
	mustOK(t, "ClaimTask", err)
	if claimed == nil || claimed.ID != task.ID {
		t.Fatalf("claimed %+v, want task %s", claimed, task.ID)
	}
	var done []int
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("task %s still running after 1,000 slices", task.ID)
		}
		got, err := s.RunTaskSlice(t.Context(), task.ID, runnerA, limit, at(n), at(n+60))
		mustOK(t, "RunTaskSlice", err)
		done = append(done, got.Done)
		if got.Status != herald.TaskRunning {
			return got, done
		}
	}
}

func testTaskCreateGetList(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	recover := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskRecover, AppID: f.app.ID, EndpointID: ep.ID,
		Filter: herald.TaskFilter{Since: at(1), Until: at(2)}}, 10)
	bulk := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskBulkReplay, AppID: f.app.ID, EndpointID: ep.ID,
		Filter: herald.TaskFilter{Since: at(1), Statuses: []herald.DeliveryStatus{herald.DeliveryFailed, herald.DeliveryCanceled},
			EventTypes: []string{"a.b", "c.d"}, Channel: "eu", Tag: "vip"}}, 11)
	purge := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: f.app.ID}, 12)
	want := &herald.Task{ID: bulk.ID, AppID: f.app.ID, EndpointID: ep.ID, Kind: herald.TaskBulkReplay, Status: herald.TaskRunning,
		Filter: bulk.Filter, CreatedAt: at(11), UpdatedAt: at(11)}
	got, err := s.GetTask(t.Context(), bulk.ID)
	mustOK(t, "GetTask", err)
	mustEqual(t, "task", want, got)
	mustEqual(t, "task as created", want, bulk)

	list := func(opts herald.TaskListOptions) []string {
		t.Helper()
		if opts.Limit == 0 {
			opts.Limit = 10
		}
		tasks, err := s.ListTasks(t.Context(), opts)
		mustOK(t, "ListTasks", err)
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.ID)
		}
		return ids
	}
	mustEqual(t, "all tasks", []string{recover.ID, bulk.ID, purge.ID}, list(herald.TaskListOptions{}))
	mustEqual(t, "newest first", []string{purge.ID, bulk.ID, recover.ID}, list(herald.TaskListOptions{ListOptions: herald.ListOptions{Order: herald.Descending}}))
	mustEqual(t, "after the first", []string{bulk.ID}, list(herald.TaskListOptions{ListOptions: herald.ListOptions{Limit: 1, Cursor: recover.ID}}))
	mustEqual(t, "purges", []string{purge.ID}, list(herald.TaskListOptions{Kind: herald.TaskPurgeContent}))
	mustEqual(t, "finished", []string(nil), list(herald.TaskListOptions{Status: herald.TaskFinished}))

	_, err = s.GetTask(t.Context(), id(herald.PrefixTask, 99))
	mustCode(t, "unknown task", err, herald.ENOTFOUND)
	err = s.CreateTask(t.Context(), &herald.Task{Kind: herald.TaskRecover, AppID: f.app.ID, EndpointID: id(herald.PrefixEndpoint, 99)}, at(13))
	mustCode(t, "task of an unknown endpoint", err, herald.ENOTFOUND)
	err = s.CreateTask(t.Context(), &herald.Task{Kind: herald.TaskPurgeContent, AppID: id(herald.PrefixApplication, 99)}, at(13))
	mustCode(t, "task of an unknown application", err, herald.ENOTFOUND)
	mustEqual(t, "tasks after refusals", 3, len(list(herald.TaskListOptions{})))
}

func testTaskClaimLease(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	mustCreateMessages(t, s, newMessages(f.app.ID, 5)...)
	first := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: f.app.ID}, 10)
	second := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: f.app.ID}, 11)
	ctx := t.Context()

	got, err := s.ClaimTask(ctx, runnerA, at(20), at(50))
	mustOK(t, "ClaimTask", err)
	if got == nil || got.ID != first.ID {
		t.Fatalf("A claimed %+v, want the oldest task", got)
	}
	// B gets the other one; then none is left while the leases live.
	got, err = s.ClaimTask(ctx, runnerB, at(21), at(51))
	mustOK(t, "ClaimTask B", err)
	if got == nil || got.ID != second.ID {
		t.Fatalf("B claimed %+v, want the second task", got)
	}
	got, err = s.ClaimTask(ctx, "runner-c", at(22), at(52))
	mustOK(t, "ClaimTask C", err)
	if got != nil {
		t.Fatalf("C claimed %s while both leases live", got.ID)
	}
	// A slice of a task leased to another is refused and changes nothing.
	_, err = s.RunTaskSlice(ctx, second.ID, runnerA, 10, at(23), at(53))
	mustCode(t, "slice of B's task by A", err, herald.ECONFLICT)
	// A slice renews the lease: at(51) A's lease (now at(60)) still
	// lives, B's expired.
	partial, err := s.RunTaskSlice(ctx, first.ID, runnerA, 1, at(24), at(60))
	mustOK(t, "slice of A's task", err)
	if partial.Status != herald.TaskRunning || partial.Done != 1 {
		t.Fatalf("after one slice of one row: %+v", partial)
	}
	got, err = s.ClaimTask(ctx, "runner-c", at(51), at(80))
	mustOK(t, "ClaimTask C after B's lease", err)
	if got == nil || got.ID != second.ID {
		t.Fatalf("C claimed %+v after B's lease expired, want the second task", got)
	}
	_, err = s.RunTaskSlice(ctx, second.ID, runnerB, 10, at(52), at(90))
	mustCode(t, "slice by B after C took over", err, herald.ECONFLICT)
	// A claim by a lease's own owner (a runner restarted under its name)
	// takes its task back at once.
	got, err = s.ClaimTask(ctx, "runner-c", at(53), at(90))
	mustOK(t, "ClaimTask C again", err)
	if got == nil || got.ID != second.ID {
		t.Fatalf("C claimed %+v again, want its own task", got)
	}
	// A finished task is never claimed; its slices change nothing.
	done, err := s.RunTaskSlice(ctx, second.ID, "runner-c", 10, at(54), at(90))
	mustOK(t, "slice of C's task", err)
	if done.Status != herald.TaskFinished || done.Done != 4 {
		t.Fatalf("C's purge after A's first row: %+v, want finished with 4", done)
	}
	again, err := s.RunTaskSlice(ctx, second.ID, "runner-c", 10, at(55), at(90))
	mustOK(t, "slice of a finished task", err)
	mustEqual(t, "finished task after another slice", done, again)
	got, err = s.ClaimTask(ctx, "runner-c", at(100), at(130))
	mustOK(t, "ClaimTask after expiry", err)
	if got == nil || got.ID != first.ID {
		t.Fatalf("claimed %+v, want the first task (the second is finished)", got)
	}
	_, err = s.RunTaskSlice(ctx, id(herald.PrefixTask, 99), runnerA, 10, at(100), at(130))
	mustCode(t, "slice of an unknown task", err, herald.ENOTFOUND)
}

func testTaskRecoverSlices(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 2)
	ep, otherEp := f.eps[0], f.eps[1]
	msgs := newMessages(f.app.ID, 9)
	mustCreateMessages(t, s, msgs...)
	// ep: 0 and 1..7 failed but 3 succeeded and 8 pending; otherEp: all
	// failed.
	var failed []*herald.Message
	for i, m := range msgs[:8] {
		if i != 3 {
			failed = append(failed, m)
		}
	}
	finish(t, s, ep, at(30), herald.DeliveryFailed, failed...)
	finish(t, s, ep, at(31), herald.DeliverySucceeded, msgs[3])
	finish(t, s, otherEp, at(32), herald.DeliveryFailed, msgs...)

	// [at(11), at(18)): messages 1, 2, 4, 5, 6, 7 of ep; 0 is before.
	task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskRecover, AppID: f.app.ID, EndpointID: ep.ID,
		Filter: herald.TaskFilter{Since: at(11), Until: at(18)}}, 40)
	claimed, err := s.ClaimTask(t.Context(), runnerA, at(41), at(100))
	mustOK(t, "ClaimTask", err)
	if claimed == nil {
		t.Fatal("nothing claimed")
	}
	// Two slices of two rows: messages 0 and 1 read (1 queued), then 2
	// and 4 (both queued).
	for i, want := range []int{1, 3} {
		got, err := s.RunTaskSlice(t.Context(), task.ID, runnerA, 2, at(42+i), at(100))
		mustOK(t, "RunTaskSlice", err)
		if got.Done != want || got.Status != herald.TaskRunning {
			t.Fatalf("after slice %d: %+v, want %d done and running", i, got, want)
		}
	}
	// Message 1's delivery was sent again meanwhile and failed again: the
	// task, past it, does not queue it a second time.
	finish(t, s, ep, at(50), herald.DeliveryFailed, msgs[1])
	got, done := runTask(t, s, task, 2, 60)
	if got.Status != herald.TaskFinished || got.Done != 6 || got.Error != "" {
		t.Fatalf("recover task %+v (done by slice %v), want finished with 6", got, done)
	}
	for i, m := range msgs {
		d := deliveryOf(t, s, m, ep.ID)
		switch i {
		case 1:
			if d.Status != herald.DeliveryFailed {
				t.Errorf("message 1 (failed again after its recovery) is %s, want failed", d.Status)
			}
		case 2, 4, 5, 6, 7:
			if d.Status != herald.DeliveryPending || d.Trigger != herald.TriggerManual {
				t.Errorf("message %d is %s/%v, want pending/manual", i, d.Status, d.Trigger)
			}
		case 0:
			if d.Status != herald.DeliveryFailed {
				t.Errorf("message 0 (before since) is %s, want failed", d.Status)
			}
		}
		if d := deliveryOf(t, s, m, otherEp.ID); d.Status != herald.DeliveryFailed {
			t.Errorf("the other endpoint's delivery of message %d is %s, want failed", i, d.Status)
		}
	}
}

func testTaskBulkReplayFilter(t *testing.T, s herald.Store) {
	f := mustEngineFixture(t, s, 1)
	ep := f.eps[0]
	var msgs []*herald.Message
	for i := range 8 {
		m := newMessage(f.app.ID, 10+i, []string{"a.b", "c.d"}[i%2])
		if i%4 < 2 {
			m.Channels = []string{"eu"}
		}
		if i >= 4 {
			m.Tags = []string{"vip"}
		}
		msgs = append(msgs, m)
	}
	mustCreateMessages(t, s, msgs...)
	// 0-3 succeeded, 4 and 5 failed, 6 canceled, 7 pending.
	finish(t, s, ep, at(30), herald.DeliverySucceeded, msgs[:4]...)
	finish(t, s, ep, at(31), herald.DeliveryFailed, msgs[4:6]...)
	finish(t, s, ep, at(32), herald.DeliveryCanceled, msgs[6])
	for ci, c := range []struct {
		name   string
		filter herald.TaskFilter
		want   []int
	}{
		{"succeeded a.b", herald.TaskFilter{Statuses: []herald.DeliveryStatus{herald.DeliverySucceeded}, EventTypes: []string{"a.b"}}, []int{0, 2}},
		{"on eu", herald.TaskFilter{Channel: "eu"}, []int{0, 1, 4, 5}},
		{"failed or canceled vip", herald.TaskFilter{Statuses: []herald.DeliveryStatus{herald.DeliveryFailed, herald.DeliveryCanceled}, Tag: "vip"}, []int{4, 5, 6}},
		{"window", herald.TaskFilter{Since: at(13), Until: at(15), EventTypes: []string{"c.d", "x.y"}}, []int{3}},
		// The class of the last attempt's answer: 6 (canceled) and 7
		// (pending) were never attempted, so they have none.
		{"last answer 5xx", herald.TaskFilter{StatusCodeClass: 500}, []int{4, 5}},
		{"last answer 2xx on eu", herald.TaskFilter{StatusCodeClass: 200, Channel: "eu"}, []int{0, 1}},
		{"last answer 4xx", herald.TaskFilter{StatusCodeClass: 400}, nil},
		{"no response", herald.TaskFilter{StatusCodeClass: -1}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := map[int]*herald.Delivery{}
			for i, m := range msgs {
				before[i] = deliveryOf(t, s, m, ep.ID)
			}
			n := 100 + 10*ci // a fresh moment after the deliveries
			task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskBulkReplay, AppID: f.app.ID, EndpointID: ep.ID, Filter: c.filter}, n)
			got, _ := runTask(t, s, task, 3, n+1)
			if got.Status != herald.TaskFinished || got.Done != len(c.want) {
				t.Fatalf("task %+v, want finished with %d", got, len(c.want))
			}
			for i, m := range msgs {
				d := deliveryOf(t, s, m, ep.ID)
				want := *before[i]
				for _, w := range c.want {
					if w == i {
						want.Status, want.NextAttemptAt, want.Trigger = herald.DeliveryPending, at(n+1), herald.TriggerManual
						want.LeaseOwner, want.LeaseExpiresAt = "", time.Time{}
					}
				}
				mustEqual(t, fmt.Sprintf("delivery %d", i), &want, d, ignoreTimes)
			}
			// Back to how they were, for the next case.
			finish(t, s, ep, at(n+2), herald.DeliverySucceeded, pick(msgs, c.want, []int{0, 1, 2, 3})...)
			finish(t, s, ep, at(n+2), herald.DeliveryFailed, pick(msgs, c.want, []int{4, 5})...)
			finish(t, s, ep, at(n+2), herald.DeliveryCanceled, pick(msgs, c.want, []int{6})...)
		})
	}
}

// pick returns the messages of msgs at the indexes in both a and b.
func pick(msgs []*herald.Message, a, b []int) []*herald.Message {
	var out []*herald.Message
	for _, i := range a {
		for _, j := range b {
			if i == j {
				out = append(out, msgs[i])
			}
		}
	}
	return out
}

func testTaskReplaySlices(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	types := []string{"user.created", "user.deleted"}
	var msgs []*herald.Message
	for i := range 9 {
		msgs = append(msgs, newMessage(app.ID, 10+i, types[i%2]))
	}
	mustCreateMessages(t, s, msgs...)
	ep := newEndpoint(app.ID, 30)
	ep.FilterTypes = []string{"user.created"}
	mustCreateEndpoint(t, s, ep)
	// [at(11), at(18)): user.created messages 12, 14, 16.
	task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskReplay, AppID: app.ID, EndpointID: ep.ID,
		Filter: herald.TaskFilter{Since: at(11), Until: at(18)}}, 40)
	got, done := runTask(t, s, task, 2, 41)
	if got.Status != herald.TaskFinished || got.Done != 3 {
		t.Fatalf("replay task %+v, want finished with 3", got)
	}
	if len(done) < 4 {
		t.Fatalf("replay of 7 messages in slices of 2 took %d slices (%v)", len(done), done)
	}
	for i, m := range msgs {
		ds := mustListDeliveries(t, s, app.ID, m.ID)
		if want := i >= 2 && i < 8 && i%2 == 0; (len(ds) == 1) != want {
			t.Errorf("message %d has %d deliveries, want one: %v", i, len(ds), want)
		}
	}
	// The endpoint deleted: a replay of it fails, saying why.
	task = mustCreateTask(t, s, &herald.Task{Kind: herald.TaskReplay, AppID: app.ID, EndpointID: ep.ID}, 50)
	mustOK(t, "DeleteEndpoint", s.DeleteEndpoint(t.Context(), app.ID, ep.ID))
	got, _ = runTask(t, s, task, 2, 51)
	if got.Status != herald.TaskFailed || got.Error == "" {
		t.Fatalf("replay of a deleted endpoint %+v, want failed with an error", got)
	}
}

func testTaskPurgeContent(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	msgs := newMessages(app.ID, 7)
	kept := newMessage(other.ID, 30, "user.created")
	mustCreateMessages(t, s, append(msgs, kept)...)
	mustOK(t, "ExpungeMessageContent", s.ExpungeMessageContent(t.Context(), app.ID, msgs[2].ID))
	task := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, 40)
	got, done := runTask(t, s, task, 3, 41)
	if got.Status != herald.TaskFinished || got.Done != 6 {
		t.Fatalf("purge %+v (by slice %v), want finished with 6 (one was expunged before)", got, done)
	}
	for _, m := range msgs {
		stored, err := s.GetMessage(t.Context(), app.ID, m.ID)
		mustOK(t, "GetMessage", err)
		if stored.Payload != nil {
			t.Errorf("message %s keeps payload %s", m.ID, stored.Payload)
		}
	}
	stored, err := s.GetMessage(t.Context(), other.ID, kept.ID)
	mustOK(t, "GetMessage of the other application", err)
	mustEqual(t, "the other application's payload", string(kept.Payload), string(stored.Payload))
}

// testTaskDeleteExpired: finished and failed tasks last updated before the
// cutoff go, oldest update first, limit at a time; running tasks and
// those updated since stay.
func testTaskDeleteExpired(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := newEndpoint(app.ID, 2)
	mustCreateEndpoint(t, s, ep)
	ctx := t.Context()
	// finished: created at(10), finished at(25). failed: created at(11)
	// but failed earlier, at(21), so it is the older update.
	finished := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, 10)
	if got, _ := runTask(t, s, finished, 10, 25); got.Status != herald.TaskFinished {
		t.Fatalf("purge of an empty application %+v, want finished", got)
	}
	failed := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskReplay, AppID: app.ID, EndpointID: ep.ID}, 11)
	mustOK(t, "DeleteEndpoint", s.DeleteEndpoint(ctx, app.ID, ep.ID))
	if got, _ := runTask(t, s, failed, 10, 21); got.Status != herald.TaskFailed {
		t.Fatalf("replay of a deleted endpoint %+v, want failed", got)
	}
	recent := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, 12)
	if got, _ := runTask(t, s, recent, 10, 40); got.Status != herald.TaskFinished {
		t.Fatalf("purge of an empty application %+v, want finished", got)
	}
	// running is older than the cutoff but never ran: it stays.
	running := mustCreateTask(t, s, &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, 5)
	exists := func(task *herald.Task) bool {
		t.Helper()
		_, err := s.GetTask(ctx, task.ID)
		if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("GetTask %s: %v", task.ID, err)
		}
		return err == nil
	}

	n, err := s.DeleteExpiredTasks(ctx, at(100), 0)
	mustCount(t, "DeleteExpiredTasks(limit 0)", 0, n, err)
	n, err = s.DeleteExpiredTasks(ctx, at(21), 10)
	mustCount(t, "DeleteExpiredTasks(at(21)): updated_at must be before", 0, n, err)
	n, err = s.DeleteExpiredTasks(ctx, at(30), 1)
	mustCount(t, "DeleteExpiredTasks(limit 1)", 1, n, err)
	if exists(failed) || !exists(finished) {
		t.Fatalf("after one deletion: failed task kept %v, finished task kept %v; want the older update (failed) gone",
			exists(failed), exists(finished))
	}
	n, err = s.DeleteExpiredTasks(ctx, at(30), 5)
	mustCount(t, "DeleteExpiredTasks(limit 5)", 1, n, err)
	n, err = s.DeleteExpiredTasks(ctx, at(30), 5)
	mustCount(t, "DeleteExpiredTasks again", 0, n, err)
	for name, task := range map[string]*herald.Task{"finished": finished, "failed": failed} {
		if exists(task) {
			t.Errorf("%s task before the cutoff kept", name)
		}
	}
	for name, task := range map[string]*herald.Task{"running": running, "recent": recent} {
		if !exists(task) {
			t.Errorf("%s task deleted", name)
		}
	}
	// Even a cutoff after everything leaves the running task.
	n, err = s.DeleteExpiredTasks(ctx, at(1000), 5)
	mustCount(t, "DeleteExpiredTasks(at(1000))", 1, n, err)
	got, err := s.GetTask(ctx, running.ID)
	mustOK(t, "GetTask running", err)
	if got.Status != herald.TaskRunning {
		t.Fatalf("running task %+v", got)
	}
}
