package herald

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// PrefixTask prefixes background task IDs, as Svix's QueueBackgroundTask.
const PrefixTask = "qtask_"

// TaskKind is what a background task does; the values are Svix's
// BackgroundTaskType.
type TaskKind string

const (
	// TaskRecover queues the endpoint's failed deliveries again.
	TaskRecover TaskKind = "endpoint.recover"
	// TaskReplay creates the deliveries the endpoint never got.
	TaskReplay TaskKind = "endpoint.replay"
	// TaskBulkReplay queues the endpoint's deliveries that match a filter
	// again.
	TaskBulkReplay TaskKind = "endpoint.bulk-replay"
	// TaskPurgeContent deletes the payload of every message of the
	// application (expunge-all-contents).
	TaskPurgeContent TaskKind = "application.purge_content"
	// TaskAppStats sums the usage counters of applications over a time
	// range (Svix's statistics.aggregateAppStats).
	TaskAppStats TaskKind = "application.stats"
	// TaskEventTypes lists, per application, the event types its
	// endpoints subscribe to (Svix's statistics.aggregateEventTypes).
	TaskEventTypes TaskKind = "event-type.aggregate"
)

// TaskKinds lists the kinds Herald runs.
var TaskKinds = []TaskKind{TaskRecover, TaskReplay, TaskBulkReplay, TaskPurgeContent, TaskAppStats, TaskEventTypes}

// Queues reports whether tasks of kind k queue deliveries (so that the
// dispatcher is worth waking after their slices).
func (k TaskKind) Queues() bool {
	return k == TaskRecover || k == TaskReplay || k == TaskBulkReplay
}

// Global reports whether tasks of kind k work across applications: they
// have no AppID, and their start is audited as the operator's.
func (k TaskKind) Global() bool { return k == TaskAppStats || k == TaskEventTypes }

// Valid reports whether Herald runs tasks of kind k.
func (k TaskKind) Valid() bool { return slices.Contains(TaskKinds, k) }

// AuditAction is the audit log's name for starting a task of kind k.
func (k TaskKind) AuditAction() string {
	switch k {
	case TaskRecover:
		return "endpoint.recover"
	case TaskReplay:
		return "endpoint.replay_missing"
	case TaskBulkReplay:
		return "endpoint.bulk_replay"
	case TaskPurgeContent:
		return "message.content.expunge_all"
	case TaskAppStats:
		return "stats.usage.app"
	case TaskEventTypes:
		return "stats.usage.event_types"
	}
	return string(k)
}

// TaskStatus is a background task's state; the values are Svix's
// BackgroundTaskStatus.
type TaskStatus string

const (
	TaskRunning  TaskStatus = "running"
	TaskFinished TaskStatus = "finished"
	TaskFailed   TaskStatus = "failed"
)

// Valid reports whether s is one of the three statuses.
func (s TaskStatus) Valid() bool {
	return s == TaskRunning || s == TaskFinished || s == TaskFailed
}

// TaskFilter says which rows a task works on: the deliveries (recover,
// bulk replay) or messages (replay) of messages created in [Since, Until)
// (zero bounds are open), and for a bulk replay only deliveries in one of
// Statuses (any when empty) of messages of one of EventTypes (any when
// empty), on Channel and with Tag (when set). A statistics task
// (TaskAppStats) sums the usage buckets in [Since, Until) of the
// applications AppIDs, or of every application with usage there when
// AppIDs is empty.
type TaskFilter struct {
	Since      time.Time        `json:"since,omitzero"`
	Until      time.Time        `json:"until,omitzero"`
	Statuses   []DeliveryStatus `json:"statuses,omitempty"`
	EventTypes []string         `json:"eventTypes,omitempty"`
	Channel    string           `json:"channel,omitempty"`
	Tag        string           `json:"tag,omitempty"`
	AppIDs     []string         `json:"appIds,omitempty"`
	// StatusCodeClass, when not zero, keeps only deliveries whose last
	// attempt's response status is in that class (100, 200 … 500), or
	// that got no response (-1), as AttemptListOptions.StatusCodeClass: a
	// delivery never attempted has no class.
	StatusCodeClass int `json:"statusCodeClass,omitempty"`
}

// MatchesLastResponse reports whether a delivery whose last attempt
// answered status (attempted false: it has no attempt) passes the
// filter's StatusCodeClass.
func (f *TaskFilter) MatchesLastResponse(status int, attempted bool) bool {
	switch c := f.StatusCodeClass; {
	case c == 0:
		return true
	case !attempted:
		return false
	case c == -1:
		return status == 0
	default:
		return status >= c && status < c+100
	}
}

// Matches reports whether a delivery in status of a message created at
// createdAt with the given event type, channels and tags is one the filter
// selects. A delivery being sent never is: it cannot be queued again.
func (f *TaskFilter) Matches(status DeliveryStatus, createdAt time.Time, eventType string, channels, tags []string) bool {
	switch {
	case status == DeliverySending:
		return false
	case createdAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && !createdAt.Before(f.Until):
		return false
	case len(f.Statuses) > 0 && !slices.Contains(f.Statuses, status):
		return false
	case len(f.EventTypes) > 0 && !slices.Contains(f.EventTypes, eventType):
		return false
	case f.Channel != "" && !slices.Contains(channels, f.Channel):
		return false
	case f.Tag != "" && !slices.Contains(tags, f.Tag):
		return false
	}
	return true
}

// Task is a durable background task: an operation on many rows that runs
// in short slices, each a write transaction that also saves the task's
// progress, so a task resumes after a crash (or on another node) where its
// last slice left it without doing any row twice.
type Task struct {
	ID string
	// AppID is the application; empty for the Global kinds.
	AppID string
	// EndpointID is the endpoint of the endpoint.* kinds; empty otherwise.
	EndpointID string
	Kind       TaskKind
	Status     TaskStatus
	Filter     TaskFilter
	// Done counts the rows changed so far: deliveries queued, or payloads
	// deleted.
	Done int
	// Error says why a failed task failed.
	Error string
	// Result is what a statistics task computed, filled slice by slice;
	// nil for the other kinds.
	Result    *TaskResult
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UsageBucket is the span of one usage counter: the counts of the
// messages created in one hour (UTC) of one application.
const UsageBucket = time.Hour

// UsageBucketOf is the start, in unix seconds, of the usage bucket of a
// message created at t.
func UsageBucketOf(t time.Time) int64 {
	s := t.Unix()
	b := int64(UsageBucket / time.Second)
	return s - ((s%b)+b)%b
}

// UsageRange is the buckets [from, to) (unix seconds) that a statistics
// request for [since, until) sums: rounded outward to whole hours, so
// every hour the range touches counts in full.
func UsageRange(since, until time.Time) (from, to int64) {
	from, to = UsageBucketOf(since), UsageBucketOf(until)
	if !until.Equal(time.Unix(to, 0)) {
		to += int64(UsageBucket / time.Second)
	}
	return from, to
}

// UsageCount is what one batch adds to one usage counter.
type UsageCount struct {
	AppID        string
	Bucket       int64
	Messages     int64
	Destinations int64
}

// UsageCounts sums a batch's counts per (application, bucket), sorted by
// application and bucket: the order every writer upserts them in, so
// that concurrent batches on PostgreSQL cannot deadlock on each other's
// rows. A batch has few pairs (mostly one), so Add looks them up in a
// list: no map to allocate on the ingest path.
type UsageCounts struct {
	rows []UsageCount
}

// Add counts messages messages of appID created at createdAt and
// destinations deliveries of them.
func (u *UsageCounts) Add(appID string, createdAt time.Time, messages, destinations int) {
	bucket := UsageBucketOf(createdAt)
	for i := len(u.rows) - 1; i >= 0; i-- { // the last pair is the likeliest
		r := &u.rows[i]
		if r.Bucket == bucket && r.AppID == appID {
			r.Messages += int64(messages)
			r.Destinations += int64(destinations)
			return
		}
	}
	u.rows = append(u.rows, UsageCount{AppID: appID, Bucket: bucket, Messages: int64(messages), Destinations: int64(destinations)})
}

// Rows returns the sums, sorted by application and bucket.
func (u *UsageCounts) Rows() []UsageCount {
	if len(u.rows) > 1 {
		slices.SortFunc(u.rows, func(a, b UsageCount) int {
			if c := strings.Compare(a.AppID, b.AppID); c != 0 {
				return c
			}
			return cmp.Compare(a.Bucket, b.Bucket)
		})
	}
	return u.rows
}

// AppUsage is one application's line of a statistics task's result.
type AppUsage struct {
	AppID        string  `json:"appId"`
	AppUID       *string `json:"appUid"`
	Messages     int64   `json:"messages"`
	Destinations int64   `json:"messageDestinations"`
}

// AppEventTypes is one application's line of an event-type aggregation:
// the event types its endpoints name in their filters, and whether one of
// them has no filter (receives every event type).
type AppEventTypes struct {
	AppID      string   `json:"appId"`
	EventTypes []string `json:"explicitlySubscribedEventTypes"`
	CatchAll   bool     `json:"hasCatchAllEndpoint"`
}

// TaskResult is a statistics task's result: AppStats for TaskAppStats,
// EventTypes for TaskEventTypes, in application ID order.
type TaskResult struct {
	AppStats   []AppUsage      `json:"appStats,omitempty"`
	EventTypes []AppEventTypes `json:"eventTypes,omitempty"`
}

// AfterInOrder returns at most limit of the IDs in ids (sorted) after
// cursor: the next page of a statistics task over named applications.
func AfterInOrder(ids []string, cursor string, limit int) []string {
	i, _ := slices.BinarySearch(ids, cursor)
	for i < len(ids) && ids[i] <= cursor {
		i++
	}
	return ids[i:min(len(ids), i+limit)]
}

// EventTypeAggregator gathers endpoints' filters per application, for an
// event-type aggregation; Add the endpoints of each application together.
type EventTypeAggregator struct {
	apps []AppEventTypes
	seen map[string]bool
}

// Add counts one endpoint of appID with the filter types (none: it
// receives every event type). The operational application's endpoints
// are Herald's own receivers, not a customer's subscriptions: skipped.
func (g *EventTypeAggregator) Add(appID string, types []string) {
	if appID == OperationalAppID {
		return
	}
	if n := len(g.apps); n == 0 || g.apps[n-1].AppID != appID {
		g.apps = append(g.apps, AppEventTypes{AppID: appID, EventTypes: []string{}})
		g.seen = map[string]bool{}
	}
	a := &g.apps[len(g.apps)-1]
	if len(types) == 0 {
		a.CatchAll = true
	}
	for _, t := range types {
		if !g.seen[t] {
			g.seen[t] = true
			a.EventTypes = append(a.EventTypes, t)
		}
	}
}

// Apps returns each application's line, event types sorted.
func (g *EventTypeAggregator) Apps() []AppEventTypes {
	for i := range g.apps {
		slices.Sort(g.apps[i].EventTypes)
	}
	return g.apps
}

// TaskListOptions selects a page of tasks, by ID (creation time).
type TaskListOptions struct {
	ListOptions
	Status TaskStatus // any when empty
	Kind   TaskKind   // any when empty
}

// TaskStore keeps background tasks and runs their slices.
type TaskStore interface {
	// CreateTask stores t as a new running task (ID, Status, Done and the
	// times are set here from now) and records the audit action of its
	// kind in the same transaction. The application must exist, and the
	// endpoint for the endpoint.* kinds (ENOTFOUND); a Global kind has no
	// application, and its audit record names the task.
	CreateTask(ctx context.Context, t *Task, now time.Time) error
	GetTask(ctx context.Context, id string) (*Task, error)
	ListTasks(ctx context.Context, opts TaskListOptions) ([]*Task, error)
	// ClaimTask leases to owner, until leaseUntil, the oldest running task
	// that no owner holds a live lease on (the lease of a dead node
	// expires), and returns it; nil when there is none. On PostgreSQL
	// nodes skip each other's locked rows.
	ClaimTask(ctx context.Context, owner string, now, leaseUntil time.Time) (*Task, error)
	// RunTaskSlice does the next at most limit rows of the task's work in
	// one write transaction that also saves its progress (and the status
	// finished when the work is done, or failed when it cannot go on) and
	// extends owner's lease to leaseUntil. It returns the task as saved.
	// A task no longer leased to owner is ECONFLICT and is left alone; a
	// task no longer running is returned unchanged.
	RunTaskSlice(ctx context.Context, id, owner string, limit int, now, leaseUntil time.Time) (*Task, error)
	// DeleteExpiredTasks deletes up to limit tasks that are finished or
	// failed and were last updated before before, oldest update first,
	// and returns how many; a running task is never deleted. On
	// PostgreSQL several nodes' cleaners skip each other's locked rows.
	DeleteExpiredTasks(ctx context.Context, before time.Time, limit int) (int, error)
}
