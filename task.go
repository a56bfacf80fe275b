package herald

import (
	"context"
	"slices"
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
)

// TaskKinds lists the kinds Herald runs.
var TaskKinds = []TaskKind{TaskRecover, TaskReplay, TaskBulkReplay, TaskPurgeContent}

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
// empty), on Channel and with Tag (when set).
type TaskFilter struct {
	Since      time.Time        `json:"since,omitzero"`
	Until      time.Time        `json:"until,omitzero"`
	Statuses   []DeliveryStatus `json:"statuses,omitempty"`
	EventTypes []string         `json:"eventTypes,omitempty"`
	Channel    string           `json:"channel,omitempty"`
	Tag        string           `json:"tag,omitempty"`
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
	ID    string
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
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
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
	// endpoint for the endpoint.* kinds (ENOTFOUND).
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
}
