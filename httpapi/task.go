package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/herald-webhooks/herald"
)

// taskOut is Svix's RecoverOut, ReplayOut and ExpungeAllContentsOut: the
// task a request started, running.
type taskOut struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Task      string `json:"task"`
	UpdatedAt string `json:"updatedAt"`
}

// backgroundTaskOut is Svix's BackgroundTaskOut: taskOut with the task's
// progress in data.
type backgroundTaskOut struct {
	Data map[string]any `json:"data"`
	taskOut
}

// toBackgroundTaskOut describes t. data counts the rows done so far under
// the name Svix gives a purge's count (messagesPurged), or
// deliveriesQueued (Herald's name), and says why a failed task failed.
func toBackgroundTaskOut(t *herald.Task) backgroundTaskOut {
	data := map[string]any{}
	switch {
	case t.Kind == herald.TaskPurgeContent:
		data["messagesPurged"] = t.Done
	case t.Kind.Global():
		statsData(t, data)
	default:
		data["deliveriesQueued"] = t.Done
	}
	if t.Error != "" {
		data["error"] = t.Error
	}
	return backgroundTaskOut{Data: data, taskOut: toTaskOut(t)}
}

// toTaskOut describes t without its data.
func toTaskOut(t *herald.Task) taskOut {
	return taskOut{ID: t.ID, Status: string(t.Status), Task: string(t.Kind), UpdatedAt: formatTime(t.UpdatedAt)}
}

// createTask stores t as a running task and wakes the runner, which does
// the work in the background.
func (a *API) createTask(r *http.Request, t *herald.Task) error {
	if err := a.store.CreateTask(r.Context(), t, a.now().UTC()); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	a.onTask()
	return nil
}

// startTask stores t as a running task, wakes the runner and answers 202
// with it at once.
func (a *API) startTask(w http.ResponseWriter, r *http.Request, t *herald.Task) error {
	if err := a.createTask(r, t); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, toTaskOut(t))
}

// bulkReplayIn is Svix's BulkReplayIn. Status is Svix's MessageStatus
// number.
type bulkReplayIn struct {
	timeRangeIn
	Status          *int     `json:"status"`
	StatusCodeClass *int     `json:"statusCodeClass"`
	EventTypes      []string `json:"eventTypes"`
	Channel         *string  `json:"channel"`
	Tag             *string  `json:"tag"`
}

// bulkReplay is POST …/endpoint/{endpoint_id}/bulk-replay: a background
// task queues again every delivery to the endpoint of messages created in
// [since, until) in the given status, of the given event types, on the
// given channel and with the given tag (each optional). Deliveries being
// sent are left alone.
func (a *API) bulkReplay(w http.ResponseWriter, r *http.Request) error {
	var in bulkReplayIn
	var v validation
	var f herald.TaskFilter
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		f.Since, f.Until = in.parse(&v)
		f.Since, f.Until = f.Since.UTC(), f.Until.UTC()
		if in.Status != nil {
			st, ok := deliveryStatusByNumber[*in.Status]
			switch {
			case !ok:
				v.add("status must be 0 (success), 1 (pending), 2 (fail) or 3 (sending)", "body", "status")
			case st == herald.DeliveryFailed:
				// A canceled delivery shows as fail (deliveryStatusNumber).
				f.Statuses = []herald.DeliveryStatus{herald.DeliveryFailed, herald.DeliveryCanceled}
			default:
				f.Statuses = []herald.DeliveryStatus{st}
			}
		}
		if c := in.StatusCodeClass; c != nil {
			switch n := *c; {
			case n == 0:
				f.StatusCodeClass = -1 // Svix's CodeNone: no response
			case n%100 == 0 && n >= 100 && n <= 500:
				f.StatusCodeClass = n
			default:
				v.add("statusCodeClass must be one of 0, 100, 200, 300, 400, 500", "body", "statusCodeClass")
			}
		}
		v.checkNames(in.EventTypes, "body", "eventTypes")
		f.EventTypes = slices.Compact(slices.Sorted(slices.Values(in.EventTypes)))
		if in.Channel != nil {
			v.checkChannels([]string{*in.Channel}, "body", "channel")
			f.Channel = *in.Channel
		}
		if in.Tag != nil {
			v.checkTags([]string{*in.Tag}, "body", "tag")
			f.Tag = *in.Tag
		}
	})
	if err != nil {
		return err
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	return a.startTask(w, r, &herald.Task{Kind: herald.TaskBulkReplay, AppID: ep.AppID, EndpointID: ep.ID, Filter: f})
}

// expungeAllContents is POST …/msg/expunge-all-contents: a background task
// deletes the payload of every message of the application, as DELETE
// …/msg/{msg_id}/content does for one. Messages created after it started
// keep theirs once it has passed them.
func (a *API) expungeAllContents(w http.ResponseWriter, r *http.Request) error {
	// The SDK sends no body; an empty object is as good.
	var in struct{}
	if _, err := decodeJSON(r, &in, true); err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	return a.startTask(w, r, &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID})
}

// precheckIn is Svix's MessagePrecheckIn.
type precheckIn struct {
	EventType *string  `json:"eventType"`
	Channels  []string `json:"channels"`
}

// precheckPage is how many endpoints precheck reads at a time.
const precheckPage = 250

// precheckActive is POST …/msg/precheck/active: whether any enabled
// endpoint of the application would get a message of the event type on
// the channels (Svix's MessagePrecheckOut). It reads only.
func (a *API) precheckActive(w http.ResponseWriter, r *http.Request) error {
	var in precheckIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		v.checkRequiredName(in.EventType, "body", "eventType")
		v.checkChannels(in.Channels, "body", "channels")
	})
	if err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	opts := herald.ListOptions{Limit: precheckPage}
	for {
		eps, err := a.store.ListEndpoints(r.Context(), app.ID, opts)
		if err != nil {
			return fmt.Errorf("list endpoints: %w", err)
		}
		for _, ep := range eps {
			if ep.Accepts(*in.EventType, in.Channels) {
				return writeJSON(w, http.StatusOK, struct {
					Active bool `json:"active"`
				}{true})
			}
		}
		if len(eps) < precheckPage {
			return writeJSON(w, http.StatusOK, struct {
				Active bool `json:"active"`
			}{false})
		}
		opts.Cursor = eps[len(eps)-1].ID
	}
}

// listBackgroundTasks is GET /api/v1/background-task: tasks newest first,
// optionally of one status and one kind.
func (a *API) listBackgroundTasks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending, taskCursor)
	opts := herald.TaskListOptions{Status: herald.TaskStatus(q.Get("status")), Kind: herald.TaskKind(q.Get("task"))}
	if opts.Status != "" && !opts.Status.Valid() {
		v.add("status must be running, finished or failed", "query", "status")
	}
	if opts.Kind != "" && !opts.Kind.Valid() {
		v.add(fmt.Sprintf("task must be one of %v", herald.TaskKinds), "query", "task")
	}
	if err := v.err(); err != nil {
		return err
	}
	opts.ListOptions = p.options()
	tasks, err := a.store.ListTasks(r.Context(), opts)
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	return writeJSON(w, http.StatusOK, paginate(p, tasks,
		func(t *herald.Task) string { return t.ID }, toBackgroundTaskOut))
}

// getBackgroundTask is GET /api/v1/background-task/{task_id}.
func (a *API) getBackgroundTask(w http.ResponseWriter, r *http.Request) error {
	t, err := a.store.GetTask(r.Context(), r.PathValue("task_id"))
	if err != nil {
		return fmt.Errorf("get task: %w", err)
	}
	return writeJSON(w, http.StatusOK, toBackgroundTaskOut(t))
}
