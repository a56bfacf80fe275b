package httpapi

import (
	"net/http"
	"time"
)

// Query structs of the routes with their own parameters.
type (
	createApplicationQuery struct {
		GetIfExists bool `query:"get_if_exists" doc:"Answer the application with the same uid (200) instead of a conflict."`
		GetOrCreate bool `query:"get_or_create" doc:"Another name of get_if_exists."`
	}
	withContentQuery struct {
		WithContent bool `query:"with_content" doc:"Include the payload (default true)."`
	}
	eventTypeListQuery struct {
		pageQuery
		IncludeArchived bool `query:"include_archived"`
		WithContent     bool `query:"with_content" doc:"Include the schemas (default true)."`
	}
	auditLogQuery struct {
		pageQuery
		AppID   string    `query:"app_id"`
		TokenID string    `query:"token_id"`
		Since   time.Time `query:"since"`
		Until   time.Time `query:"until"`
	}
	apiKeyListQuery struct {
		pageQuery
		IncludeRevoked bool `query:"include_revoked"`
	}
	backgroundTaskListQuery struct {
		pageQuery
		Status string `query:"status" enum:"running,finished,failed"`
		Task   string `query:"task"`
	}
	eventTypeDeleteQuery struct {
		Expunge bool `query:"expunge" doc:"Delete the event type instead of archiving it."`
	}
	statsQuery struct {
		Since time.Time `query:"since"`
		Until time.Time `query:"until"`
	}
	// pollQuery is poll's query; consumerPollQuery pollConsumer's.
	consumerPollQuery struct {
		Limit    int    `query:"limit" minimum:"1" maximum:"250" doc:"Messages per page (default 50)."`
		Iterator string `query:"iterator" doc:"The iterator a previous poll returned; the consumer's stored position when absent (its start the first time)."`
	}
	pollQuery struct {
		consumerPollQuery
		EventType string    `query:"event_type" doc:"Only messages of this event type (within the endpoint's own filter)."`
		Channel   string    `query:"channel" doc:"Only messages of this channel (within the endpoint's own filter)."`
		After     time.Time `query:"after" doc:"Start at the first message created after this time (without an iterator)."`
	}
)

// Doc-only types of the operational-webhook endpoints: the fields
// decodeOpEndpoint reads from endpointIn (it clears the others), Svix's
// OperationalWebhookEndpointIn and OperationalWebhookEndpointUpdate.
type (
	opEndpointUpdateIn struct {
		URL          *string           `json:"url"`
		Description  *string           `json:"description"`
		UID          *string           `json:"uid"`
		Disabled     *bool             `json:"disabled"`
		FilterTypes  []string          `json:"filterTypes"`
		RateLimit    *uint16           `json:"rateLimit"`
		ThrottleRate *uint16           `json:"throttleRate"`
		Metadata     map[string]string `json:"metadata"`
	}
	opEndpointIn struct {
		opEndpointUpdateIn
		Secret *string `json:"secret"`
	}
	// pollOutDoc is writePollPage's answer, Svix's PollingEndpointOut:
	// the messages are spliced in as data.
	pollOutDoc struct {
		Data []messageOutDoc `json:"data"`
		pollOut
	}
)

// openapiOps documents every route of the table, keyed "METHOD pattern".
// A route added to the table needs its row here: TestOpenAPIRoutesBothWays
// fails until it has one.
var openapiOps = map[string]op{
	"GET /api/v1/health":      {id: "v1.health.get", summary: "Health", status: http.StatusNoContent},
	"GET /api/v1/health/ping": {id: "v1.health.ping", summary: "Ping", status: http.StatusNoContent},
	"GET /healthz":            {id: "herald.healthz", summary: "Liveness probe", ext: true, out: healthBody{}},
	"GET /readyz":             {id: "herald.readyz", summary: "Readiness probe", ext: true, out: readyBody{}, errs: []int{http.StatusServiceUnavailable}},
	"GET /metrics":            {id: "herald.metrics", summary: "Prometheus metrics (text exposition format)", ext: true, text: true},
	"GET /api/v1/openapi.json": {id: "herald.openapi", summary: "This OpenAPI document", ext: true,
		out: map[string]any{}},

	"GET /api/v1/app":             {id: "v1.application.list", summary: "List applications", query: pageQuery{}, out: listResponse[applicationOut]{}},
	"POST /api/v1/app":            {id: "v1.application.create", summary: "Create an application", query: createApplicationQuery{}, in: applicationIn{}, status: http.StatusCreated, alt: http.StatusOK, out: applicationOut{}},
	"GET /api/v1/app/{app_id}":    {id: "v1.application.get", summary: "Get an application", out: applicationOut{}},
	"PUT /api/v1/app/{app_id}":    {id: "v1.application.update", summary: "Update an application (created when missing)", in: applicationIn{}, out: applicationOut{}, alt: http.StatusCreated},
	"PATCH /api/v1/app/{app_id}":  {id: "v1.application.patch", summary: "Change some fields of an application", in: applicationPatch{}, out: applicationOut{}},
	"DELETE /api/v1/app/{app_id}": {id: "v1.application.delete", summary: "Delete an application", status: http.StatusNoContent},

	"GET /api/v1/event-type":                      {id: "v1.event-type.list", summary: "List event types", query: eventTypeListQuery{}, out: listResponse[eventTypeOut]{}},
	"POST /api/v1/event-type":                     {id: "v1.event-type.create", summary: "Create an event type", in: eventTypeIn{}, status: http.StatusCreated, out: eventTypeOut{}},
	"POST /api/v1/event-type/import/openapi":      {id: "v1.event-type.import-openapi", summary: "Import event types from an OpenAPI document's webhooks", in: eventTypeImportIn{}, out: eventTypeImportOut{}},
	"GET /api/v1/event-type/{event_type_name}":    {id: "v1.event-type.get", summary: "Get an event type", out: eventTypeOut{}},
	"PUT /api/v1/event-type/{event_type_name}":    {id: "v1.event-type.update", summary: "Update an event type (created when missing)", in: eventTypeIn{}, out: eventTypeOut{}, alt: http.StatusCreated},
	"PATCH /api/v1/event-type/{event_type_name}":  {id: "v1.event-type.patch", summary: "Change some fields of an event type", in: eventTypeIn{}, out: eventTypeOut{}},
	"DELETE /api/v1/event-type/{event_type_name}": {id: "v1.event-type.delete", summary: "Archive an event type", query: eventTypeDeleteQuery{}, status: http.StatusNoContent},

	"POST /api/v1/auth/app-portal-access/{app_id}": {id: "v1.authentication.app-portal-access", summary: "A token and link to the application's portal", in: appPortalAccessIn{}, out: appPortalAccessOut{}},
	"POST /api/v1/auth/app/{app_id}/expire-all":    {id: "v1.authentication.expire-all", summary: "Expire the application's portal tokens", in: applicationTokenExpireIn{}, status: http.StatusNoContent},
	"POST /api/v1/auth/logout":                     {id: "v1.authentication.logout", summary: "End the caller's own token", status: http.StatusNoContent},
	"GET /api/v1/audit-log":                        {id: "herald.audit-log.list", summary: "List the audit log, newest first", ext: true, query: auditLogQuery{}, out: listResponse[auditRecordOut]{}},
	"GET /api/v1/node":                             {id: "herald.node.list", summary: "List the nodes serving this database", ext: true, out: listResponse[nodeOut]{}},
	"GET /api/v1/background-task":                  {id: "v1.background-task.list", summary: "List background tasks", query: backgroundTaskListQuery{}, out: listResponse[backgroundTaskOut]{}},
	"GET /api/v1/background-task/{task_id}":        {id: "v1.background-task.get", summary: "Get a background task", out: backgroundTaskOut{}},
	"POST /api/v1/stats/usage/app":                 {id: "v1.statistics.aggregate-app-stats", summary: "Count the message destinations of applications over a period (background task)", in: appUsageStatsIn{}, status: http.StatusAccepted, out: appUsageStatsOut{}},
	// The body is optional and read only to refuse a malformed one.
	"PUT /api/v1/stats/usage/event-types": {id: "v1.statistics.aggregate-event-types", summary: "List each application's subscribed event types (background task)", status: http.StatusAccepted, out: taskOut{},
		errs: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType}},

	"GET /api/v1/operational-webhook/endpoint":                              {id: "v1.operational-webhook.endpoint.list", summary: "List operational-webhook endpoints", query: pageQuery{}, out: listResponse[opEndpointOut]{}},
	"POST /api/v1/operational-webhook/endpoint":                             {id: "v1.operational-webhook.endpoint.create", summary: "Create an operational-webhook endpoint", in: opEndpointIn{}, status: http.StatusCreated, out: opEndpointOut{}},
	"GET /api/v1/operational-webhook/endpoint/{endpoint_id}":                {id: "v1.operational-webhook.endpoint.get", summary: "Get an operational-webhook endpoint", out: opEndpointOut{}},
	"PUT /api/v1/operational-webhook/endpoint/{endpoint_id}":                {id: "v1.operational-webhook.endpoint.update", summary: "Update an operational-webhook endpoint", in: opEndpointUpdateIn{}, out: opEndpointOut{}},
	"DELETE /api/v1/operational-webhook/endpoint/{endpoint_id}":             {id: "v1.operational-webhook.endpoint.delete", summary: "Delete an operational-webhook endpoint", status: http.StatusNoContent},
	"GET /api/v1/operational-webhook/endpoint/{endpoint_id}/headers":        {id: "v1.operational-webhook.endpoint.get-headers", summary: "Get an operational-webhook endpoint's custom headers", out: endpointHeadersOut{}},
	"PUT /api/v1/operational-webhook/endpoint/{endpoint_id}/headers":        {id: "v1.operational-webhook.endpoint.update-headers", summary: "Replace an operational-webhook endpoint's custom headers", in: endpointHeadersIn{}, status: http.StatusNoContent},
	"GET /api/v1/operational-webhook/endpoint/{endpoint_id}/secret":         {id: "v1.operational-webhook.endpoint.get-secret", summary: "The key a receiver verifies operational webhooks with", out: endpointSecretOut{}},
	"POST /api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate": {id: "v1.operational-webhook.endpoint.rotate-secret", summary: "Rotate an operational-webhook endpoint's signing secret", in: secretRotateIn{}, status: http.StatusNoContent},

	"GET /api/v1/auth/api-key":             {id: "herald.api-key.list", summary: "List API keys", ext: true, query: apiKeyListQuery{}, out: listResponse[apiKeyOut]{}},
	"POST /api/v1/auth/api-key":            {id: "herald.api-key.create", summary: "Create an API key (its secret shown this once)", ext: true, in: apiKeyIn{}, status: http.StatusCreated, out: apiKeyCreatedOut{}},
	"GET /api/v1/auth/api-key/{key_id}":    {id: "herald.api-key.get", summary: "Get an API key", ext: true, out: apiKeyOut{}},
	"DELETE /api/v1/auth/api-key/{key_id}": {id: "herald.api-key.revoke", summary: "Revoke an API key", ext: true, status: http.StatusNoContent},

	"GET /api/v1/app/{app_id}/endpoint":                               {id: "v1.endpoint.list", summary: "List endpoints", query: pageQuery{}, out: listResponse[endpointOut]{}},
	"POST /api/v1/app/{app_id}/endpoint":                              {id: "v1.endpoint.create", summary: "Create an endpoint", in: endpointIn{}, status: http.StatusCreated, out: endpointOut{}},
	"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}":                 {id: "v1.endpoint.get", summary: "Get an endpoint", out: endpointOut{}},
	"PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}":                 {id: "v1.endpoint.update", summary: "Update an endpoint (created when missing)", in: endpointIn{}, out: endpointOut{}, alt: http.StatusCreated},
	"PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}":               {id: "v1.endpoint.patch", summary: "Change some fields of an endpoint", in: endpointIn{}, out: endpointOut{}},
	"DELETE /api/v1/app/{app_id}/endpoint/{endpoint_id}":              {id: "v1.endpoint.delete", summary: "Delete an endpoint", status: http.StatusNoContent},
	"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret":          {id: "v1.endpoint.get-secret", summary: "The key a receiver verifies signatures with", out: endpointSecretOut{}},
	"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate":  {id: "v1.endpoint.rotate-secret", summary: "Rotate the signing secret", in: secretRotateIn{}, status: http.StatusNoContent},
	"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers":         {id: "v1.endpoint.get-headers", summary: "Get the custom headers", out: endpointHeadersOut{}},
	"PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers":         {id: "v1.endpoint.update-headers", summary: "Replace the custom headers", in: endpointHeadersIn{}, status: http.StatusNoContent},
	"PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers":       {id: "v1.endpoint.patch-headers", summary: "Change some custom headers", in: endpointHeadersIn{}, status: http.StatusNoContent},
	"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/msg":             {id: "v1.message-attempt.list-attempted-messages", summary: "List the messages routed to an endpoint", query: endpointMessageListQuery{}, out: listResponse[endpointMessageOutDoc]{}},
	"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/recover":        {id: "v1.endpoint.recover", summary: "Queue failed deliveries again (background task)", in: timeRangeIn{}, status: http.StatusAccepted, out: taskOut{}},
	"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing": {id: "v1.endpoint.replay-missing", summary: "Send the messages an endpoint never got (background task)", in: timeRangeIn{}, status: http.StatusAccepted, out: taskOut{}},
	"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay":    {id: "v1.endpoint.bulk-replay", summary: "Queue deliveries again by filter (background task)", in: bulkReplayIn{}, status: http.StatusAccepted, out: taskOut{}},
	"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/stats":           {id: "v1.endpoint.get-stats", summary: "Delivery counts of an endpoint", query: statsQuery{}, out: endpointStatsOut{}},
	"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example":   {id: "v1.endpoint.send-example", summary: "Send an event type's example to an endpoint", in: eventExampleIn{}, out: messageOutDoc{}},

	"POST /api/v1/app/{app_id}/msg":                                        {id: "v1.message.create", summary: "Send a message", query: withContentQuery{}, in: messageIn{}, status: http.StatusAccepted, out: messageOutDoc{}},
	"GET /api/v1/app/{app_id}/msg":                                         {id: "v1.message.list", summary: "List messages", query: messageListQuery{}, out: listResponse[messageOutDoc]{}},
	"GET /api/v1/app/{app_id}/msg/{msg_id}":                                {id: "v1.message.get", summary: "Get a message", query: withContentQuery{}, out: messageOutDoc{}},
	"GET /api/v1/app/{app_id}/msg/{msg_id}/raw":                            {id: "v1.message.get-raw-payload", summary: "The exact body a message's attempts send", out: messageRawOut{}},
	"DELETE /api/v1/app/{app_id}/msg/{msg_id}":                             {id: "herald.message.delete", summary: "Delete a message (cancels a scheduled one)", ext: true, status: http.StatusNoContent},
	"DELETE /api/v1/app/{app_id}/msg/{msg_id}/content":                     {id: "v1.message.expunge-content", summary: "Delete a message's payload", status: http.StatusNoContent},
	"POST /api/v1/app/{app_id}/msg/expunge-all-contents":                   {id: "v1.message.expunge-all-contents", summary: "Delete every payload of the application (background task)", status: http.StatusAccepted, out: taskOut{}},
	"POST /api/v1/app/{app_id}/msg/precheck/active":                        {id: "v1.message.precheck", summary: "Whether a message would reach any endpoint", in: precheckIn{}, out: precheckOut{}},
	"GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint":                       {id: "v1.message-attempt.list-attempted-destinations", summary: "List the endpoints a message was routed to", query: pageQuery{}, out: listResponse[messageEndpointOut]{}},
	"POST /api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend": {id: "v1.message-attempt.resend", summary: "Send a message to an endpoint again", status: http.StatusAccepted, out: emptyOut{}},

	"GET /api/v1/app/{app_id}/poller/{sink_id}":                              {id: "v1.message.poller.poll", summary: "Read the application's messages through a polling endpoint (poller://)", query: pollQuery{}, out: pollOutDoc{}, errs: []int{http.StatusConflict}},
	"GET /api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}":       {id: "v1.message.poller.consumer-poll", summary: "Read the next messages of a named consumer, its position kept by the server", query: consumerPollQuery{}, out: pollOutDoc{}, errs: []int{http.StatusConflict}},
	"POST /api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}/seek": {id: "v1.message.poller.consumer-seek", summary: "Move a consumer to the first message after a time", in: seekIn{}, out: seekOut{}},

	"GET /api/v1/app/{app_id}/attempt/msg/{msg_id}":                         {id: "v1.message-attempt.list-by-msg", summary: "List a message's attempts", query: attemptByMessageQuery{}, out: listResponse[attemptOutDoc]{}},
	"GET /api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}":               {id: "v1.message-attempt.list-by-endpoint", summary: "List an endpoint's attempts", query: attemptListQuery{}, out: listResponse[attemptOutDoc]{}},
	"GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}":            {id: "v1.message-attempt.get", summary: "Get an attempt", out: attemptOutDoc{}},
	"DELETE /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content": {id: "v1.message-attempt.expunge-content", summary: "Delete an attempt's response body", status: http.StatusNoContent},
}
