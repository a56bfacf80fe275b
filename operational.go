package herald

import (
	"encoding/json"
	"fmt"
	"time"
)

// Operational webhooks are Herald's own events about the endpoints it
// delivers to, posted to the operational endpoints: those the operator
// creates through /api/v1/operational-webhook/endpoint, each with its
// filter types, and the one --operational-webhook-url configures. They
// travel through the ordinary delivery pipeline (signed, retried,
// rate-limited, recorded) as messages of an internal application whose
// endpoints the operational endpoints are. The fixed IDs hold a ':' so that
// no client-chosen uid can equal them; the application API neither lists
// nor serves the application, and the operational-endpoint API does not
// show the flag's endpoint, whose settings are the flags'. Stores queue
// the events in the transaction that makes the change they report, to
// every enabled operational endpoint that accepts the event type, and
// never about an operational endpoint, so a failing operational receiver
// cannot report on itself or on another.
const (
	OperationalAppID      = "app_:operational"
	OperationalEndpointID = "ep_:operational"
)

// Operational event types, named and shaped as Svix's.
const (
	EventEndpointDisabled        = "endpoint.disabled"
	EventEndpointEnabled         = "endpoint.enabled"
	EventMessageAttemptExhausted = "message.attempt.exhausted"
	EventMessageAttemptFailing   = "message.attempt.failing"
)

// Triggers of endpoint.disabled.
const (
	TriggerManualDisable    = "manual"    // disabled through the API
	TriggerAutomaticDisable = "automatic" // 410 Gone, or failing for too long
)

// OperationalEvent is one operational event, with what its payload needs.
// A store fills it in the transaction that makes the change.
type OperationalEvent struct {
	Type string
	// At is when the change happened: the carrying message's CreatedAt.
	At          time.Time
	AppID       string
	AppUID      string
	EndpointID  string
	EndpointUID string
	// FailSince and Trigger describe endpoint.disabled.
	FailSince time.Time
	Trigger   string
	// MessageID, MsgEventID and the attempt's ID, response status and time
	// describe message.attempt.failing and message.attempt.exhausted.
	MessageID      string
	MsgEventID     string
	AttemptID      string
	ResponseStatus int
	AttemptAt      time.Time
}

// operationalTime is how times appear in operational payloads: RFC 3339 in
// UTC with microseconds, as the API writes them.
const operationalTime = "2006-01-02T15:04:05.000000Z"

// endpointEventData is Svix's EndpointDisabledEventData and
// EndpointEnabledEventData (which lacks failSince and trigger).
type endpointEventData struct {
	AppID       string  `json:"appId"`
	AppUID      *string `json:"appUid,omitempty"`
	EndpointID  string  `json:"endpointId"`
	EndpointUID *string `json:"endpointUid,omitempty"`
	FailSince   *string `json:"failSince,omitempty"`
	Trigger     string  `json:"trigger,omitempty"`
}

// attemptEventData is Svix's MessageAttemptFailingEventData and
// MessageAttemptExhaustedEventData.
type attemptEventData struct {
	AppID       string            `json:"appId"`
	AppUID      *string           `json:"appUid,omitempty"`
	EndpointID  string            `json:"endpointId"`
	MsgID       string            `json:"msgId"`
	MsgEventID  *string           `json:"msgEventId,omitempty"`
	LastAttempt attemptFailedData `json:"lastAttempt"`
}

// attemptFailedData is Svix's MessageAttemptFailedData.
type attemptFailedData struct {
	ID                 string `json:"id"`
	ResponseStatusCode int    `json:"responseStatusCode"`
	Timestamp          string `json:"timestamp"`
}

// Payload returns the event as Svix posts it: {"type": …, "data": {…}}.
func (ev *OperationalEvent) Payload() ([]byte, error) {
	var data any
	switch ev.Type {
	case EventEndpointDisabled, EventEndpointEnabled:
		d := endpointEventData{AppID: ev.AppID, AppUID: optional(ev.AppUID), EndpointID: ev.EndpointID, EndpointUID: optional(ev.EndpointUID)}
		if ev.Type == EventEndpointDisabled {
			d.Trigger = ev.Trigger
			if !ev.FailSince.IsZero() {
				d.FailSince = optional(ev.FailSince.UTC().Format(operationalTime))
			}
		}
		data = d
	case EventMessageAttemptExhausted, EventMessageAttemptFailing:
		data = attemptEventData{
			AppID: ev.AppID, AppUID: optional(ev.AppUID), EndpointID: ev.EndpointID,
			MsgID: ev.MessageID, MsgEventID: optional(ev.MsgEventID),
			LastAttempt: attemptFailedData{ID: ev.AttemptID, ResponseStatusCode: ev.ResponseStatus,
				Timestamp: ev.AttemptAt.UTC().Format(operationalTime)},
		}
	default:
		return nil, fmt.Errorf("unknown operational event type %q", ev.Type)
	}
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		Data any    `json:"data"`
	}{ev.Type, data})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	return b, nil
}

// Message returns the message that carries the event to the operational
// endpoints endpointIDs, created at ev.At, and one delivery to each,
// pending and due then.
func (ev *OperationalEvent) Message(endpointIDs []string) (*Message, []Delivery, error) {
	payload, err := ev.Payload()
	if err != nil {
		return nil, nil, err
	}
	now := ev.At.UTC().Truncate(time.Microsecond)
	m := &Message{
		ID:        NewIDAt(PrefixMessage, now),
		AppID:     OperationalAppID,
		EventType: ev.Type,
		Payload:   payload,
		CreatedAt: now,
	}
	// IDs made for one second count up, so the events of one moment keep
	// their order; NewDelivery's NewID would date the delivery now. An
	// event older than the current second takes its IDs from NewIDAt's
	// run of the past, which leaves NewID's order alone.
	ds := make([]Delivery, 0, len(endpointIDs))
	for _, id := range endpointIDs {
		ds = append(ds, Delivery{ID: NewIDAt(PrefixDelivery, now), AppID: m.AppID, MessageID: m.ID, EndpointID: id,
			Status: DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
	}
	return m, ds, nil
}

// OperationalRoutes returns the IDs of the operational endpoints eps (as
// stores read them: ID, disabled, filter types) that receive an event of
// eventType: the enabled ones whose filter types are empty or name it.
func OperationalRoutes(eps []Endpoint, eventType string) []string {
	var ids []string
	for i := range eps {
		if eps[i].Accepts(eventType, nil) {
			ids = append(ids, eps[i].ID)
		}
	}
	return ids
}

// optional returns nil for "" so optional fields are omitted.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// EndpointToggledEvent returns the event of an endpoint whose Disabled was
// just changed to ep.Disabled through the API: endpoint.disabled (manual,
// with the failing run it interrupted, if any) or endpoint.enabled.
func EndpointToggledEvent(ep *Endpoint, failingSince time.Time) OperationalEvent {
	ev := OperationalEvent{Type: EventEndpointEnabled, At: ep.UpdatedAt, AppID: ep.AppID, EndpointID: ep.ID}
	if ep.Disabled {
		ev.Type, ev.Trigger, ev.FailSince = EventEndpointDisabled, TriggerManualDisable, failingSince
	}
	return ev
}
