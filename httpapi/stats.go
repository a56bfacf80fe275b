package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/herald-webhooks/herald"
)

// appUsageStatsIn is Svix's AppUsageStatsIn.
type appUsageStatsIn struct {
	timeRangeIn
	AppIDs []string `json:"appIds"`
}

// appUsageStatsOut is Svix's AppUsageStatsOut: the task started, and the
// application IDs or UIDs of the request that name no application.
type appUsageStatsOut struct {
	taskOut
	UnresolvedAppIDs []string `json:"unresolvedAppIds"`
}

// maxStatsApps bounds appIds: each is looked up before the task starts.
const maxStatsApps = 1000

// appUsageStats is POST /api/v1/stats/usage/app: a background task sums
// the usage counters (messages, and deliveries created for them:
// messageDestinations) of messages created in [since, until), per
// application, for the applications named in appIds (IDs or UIDs) or for
// every application with messages there. The counters are hourly: the
// range is rounded outward to whole hours (herald.UsageRange).
func (a *API) appUsageStats(w http.ResponseWriter, r *http.Request) error {
	var in appUsageStatsIn
	var v validation
	var f herald.TaskFilter
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		if in.Until == nil {
			v.add("field required", "body", "until")
		}
		f.Since, f.Until = in.parse(&v)
		f.Since, f.Until = f.Since.UTC(), f.Until.UTC()
		if len(in.AppIDs) > maxStatsApps {
			v.add(fmt.Sprintf("at most %d applications", maxStatsApps), "body", "appIds")
		}
		for i, ref := range in.AppIDs {
			if ref == "" || len(ref) > 256 {
				v.add("an application ID or UID of 1 to 256 characters", "body", "appIds", fmt.Sprint(i))
			}
		}
	})
	if err != nil {
		return err
	}
	unresolved := []string{}
	if in.AppIDs != nil {
		for _, ref := range in.AppIDs {
			app, err := a.store.GetApplication(r.Context(), ref)
			switch {
			case herald.ErrorCode(err) == herald.ENOTFOUND:
				if !slices.Contains(unresolved, ref) {
					unresolved = append(unresolved, ref)
				}
			case err != nil:
				return fmt.Errorf("get application: %w", err)
			default:
				f.AppIDs = append(f.AppIDs, app.ID)
			}
		}
		if len(f.AppIDs) == 0 {
			return invalid("none of the applications was found", "body", "appIds")
		}
		f.AppIDs = slices.Compact(slices.Sorted(slices.Values(f.AppIDs)))
	}
	t := &herald.Task{Kind: herald.TaskAppStats, Filter: f}
	if err := a.createTask(r, t); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, appUsageStatsOut{taskOut: toTaskOut(t), UnresolvedAppIDs: unresolved})
}

// aggregateEventTypes is PUT /api/v1/stats/usage/event-types: a
// background task lists, for every application with endpoints, the event
// types its endpoints' filters name (explicitlySubscribedEventTypes) and
// whether one of them has no filter (hasCatchAllEndpoint), disabled
// endpoints included. It reads the endpoints, not the messages.
func (a *API) aggregateEventTypes(w http.ResponseWriter, r *http.Request) error {
	// The SDK sends no body; an empty object is as good.
	var in struct{}
	if _, err := decodeJSON(r, &in, true); err != nil {
		return err
	}
	t := &herald.Task{Kind: herald.TaskEventTypes}
	if err := a.createTask(r, t); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, toTaskOut(t))
}

// statsData is the data of a finished statistics task, as Svix names it:
// appStats, or event_types.
func statsData(t *herald.Task, data map[string]any) {
	if t.Status != herald.TaskFinished {
		return
	}
	var res herald.TaskResult
	if t.Result != nil {
		res = *t.Result
	}
	switch t.Kind {
	case herald.TaskAppStats:
		data["appStats"] = orEmpty(res.AppStats)
	case herald.TaskEventTypes:
		data["event_types"] = orEmpty(res.EventTypes)
	}
}

// orEmpty is l, or an empty list for nil (JSON [] rather than null).
func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
