package telemetry

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/herald-webhooks/herald"
)

// Store is a herald.Store that times every operation of the store it wraps
// and counts its failures (herald_store_operation_duration_seconds and
// herald_store_errors_total, labelled with the method's name in
// snake_case). Every method delegates to the wrapped store; each adds two
// clock reads and one histogram observation.
type Store struct {
	// Store is embedded so that a method added to herald.Store later still
	// compiles (unmeasured) until it gets its own line below;
	// TestStoreInstrumentsEveryMethod names any such method.
	herald.Store
	next herald.Store
	m    *Metrics
}

// InstrumentStore returns s measured into m.
func InstrumentStore(s herald.Store, m *Metrics) *Store {
	return &Store{Store: s, next: s, m: m}
}

// Unwrap returns the wrapped store, for optional interfaces the decorator
// does not forward (such as a LISTEN connection).
func (s *Store) Unwrap() herald.Store { return s.next }

// storeOp names one Store method.
type storeOp int

const (
	opPing storeOp = iota
	opCreateApplication
	opGetApplication
	opListApplications
	opUpdateApplication
	opUpdateApplicationFunc
	opDeleteApplication
	opCreateEventType
	opGetEventType
	opListEventTypes
	opUpdateEventType
	opUpdateEventTypeFunc
	opDeleteEventType
	opImportEventTypes
	opCreateEndpoint
	opGetEndpoint
	opListEndpoints
	opUpdateEndpoint
	opUpdateEndpointKeepDisabled
	opUpdateEndpointFunc
	opDeleteEndpoint
	opRotateEndpointSecret
	opCreateMessages
	opFanOut
	opGetMessage
	opListMessages
	opExpungeMessageContent
	opDeleteMessage
	opListMessageDeliveries
	opListEndpointMessages
	opClaimDue
	opRecordAttempts
	opReleaseDeliveries
	opRescueExpired
	opListAttempts
	opGetAttempt
	opExpungeAttemptContent
	opResendDelivery
	opRecoverEndpoint
	opReplayMissing
	opGetEndpointStats
	opQueueStats
	opDeleteExpiredAttempts
	opExpirePayloads
	opDeleteExpiredMessages
	opBeginIdempotent
	opCompleteIdempotent
	opAbandonIdempotent
	opDeleteExpiredIdempotent
	opCreateToken
	opGetTokenByHash
	opGetToken
	opListTokens
	opRevokeToken
	opExpireAppTokens
	opTouchToken
	opDeleteExpiredTokens
	opResealEndpoints
	opCountSealed
	opListAuditRecords
	opDeleteExpiredAuditRecords
	opCreateTask
	opGetTask
	opListTasks
	opClaimTask
	opRunTaskSlice
	opDeleteExpiredTasks
	opPollMessages
	opPollStart
	opGetPollConsumer
	opSetPollConsumer
	opTakeTokens // TokenTaker's, not herald.Store's
	numStoreOps
)

// storeOpMethods are the method names of the operations, in storeOp order.
var storeOpMethods = [numStoreOps]string{
	"Ping",
	"CreateApplication", "GetApplication", "ListApplications", "UpdateApplication", "UpdateApplicationFunc", "DeleteApplication",
	"CreateEventType", "GetEventType", "ListEventTypes", "UpdateEventType", "UpdateEventTypeFunc", "DeleteEventType", "ImportEventTypes",
	"CreateEndpoint", "GetEndpoint", "ListEndpoints", "UpdateEndpoint", "UpdateEndpointKeepDisabled", "UpdateEndpointFunc", "DeleteEndpoint",
	"RotateEndpointSecret",
	"CreateMessages", "FanOut", "GetMessage", "ListMessages", "ExpungeMessageContent", "DeleteMessage", "ListMessageDeliveries", "ListEndpointMessages",
	"ClaimDue", "RecordAttempts", "ReleaseDeliveries", "RescueExpired",
	"ListAttempts", "GetAttempt", "ExpungeAttemptContent",
	"ResendDelivery", "RecoverEndpoint", "ReplayMissing", "GetEndpointStats", "QueueStats",
	"DeleteExpiredAttempts", "ExpirePayloads", "DeleteExpiredMessages",
	"BeginIdempotent", "CompleteIdempotent", "AbandonIdempotent", "DeleteExpiredIdempotent",
	"CreateToken", "GetTokenByHash", "GetToken", "ListTokens", "RevokeToken", "ExpireAppTokens", "TouchToken", "DeleteExpiredTokens",
	"ResealEndpoints", "CountSealed",
	"ListAuditRecords", "DeleteExpiredAuditRecords",
	"CreateTask", "GetTask", "ListTasks", "ClaimTask", "RunTaskSlice", "DeleteExpiredTasks",
	"PollMessages", "PollStart", "GetPollConsumer", "SetPollConsumer",
	"TakeTokens",
}

// storeOpLabels are the operation label values: the method names in
// snake_case.
var storeOpLabels = func() (out [numStoreOps]string) {
	for i, name := range storeOpMethods {
		out[i] = snakeCase(name)
	}
	return out
}()

// snakeCase turns CreateMessages into create_messages.
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// observe runs one operation returning a value and records it.
func observe[T any](s *Store, op storeOp, fn func() (T, error)) (T, error) {
	start := time.Now()
	v, err := fn()
	s.m.storeDone(op, start, err)
	return v, err
}

// observe0 runs one operation returning only an error and records it.
func observe0(s *Store, op storeOp, fn func() error) error {
	start := time.Now()
	err := fn()
	s.m.storeDone(op, start, err)
	return err
}

// storeDone records one finished operation.
func (m *Metrics) storeDone(op storeOp, start time.Time, err error) {
	om := &m.storeOps[op]
	om.duration.Observe(time.Since(start).Seconds())
	if isStoreFailure(err) {
		om.errors.Inc()
	}
}

// isStoreFailure reports whether err is a failure of the database rather
// than an answer: not found, conflicts and invalid input are answers, and
// so is a caller that gave up (its context was canceled).
func isStoreFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch herald.ErrorCode(err) {
	case herald.EINTERNAL, herald.EUNAVAILABLE:
		return true
	}
	return false
}

func (s *Store) Ping(ctx context.Context) error {
	return observe0(s, opPing, func() error { return s.next.Ping(ctx) })
}

func (s *Store) CreateApplication(ctx context.Context, app *herald.Application) error {
	return observe0(s, opCreateApplication, func() error { return s.next.CreateApplication(ctx, app) })
}

func (s *Store) GetApplication(ctx context.Context, ref string) (*herald.Application, error) {
	return observe(s, opGetApplication, func() (*herald.Application, error) { return s.next.GetApplication(ctx, ref) })
}

func (s *Store) ListApplications(ctx context.Context, opts herald.ListOptions) ([]*herald.Application, error) {
	return observe(s, opListApplications, func() ([]*herald.Application, error) { return s.next.ListApplications(ctx, opts) })
}

func (s *Store) UpdateApplication(ctx context.Context, app *herald.Application) error {
	return observe0(s, opUpdateApplication, func() error { return s.next.UpdateApplication(ctx, app) })
}

func (s *Store) UpdateApplicationFunc(ctx context.Context, ref string, update func(*herald.Application) error) (*herald.Application, error) {
	return observe(s, opUpdateApplicationFunc, func() (*herald.Application, error) { return s.next.UpdateApplicationFunc(ctx, ref, update) })
}

func (s *Store) DeleteApplication(ctx context.Context, id string) error {
	return observe0(s, opDeleteApplication, func() error { return s.next.DeleteApplication(ctx, id) })
}

func (s *Store) CreateEventType(ctx context.Context, et *herald.EventType) error {
	return observe0(s, opCreateEventType, func() error { return s.next.CreateEventType(ctx, et) })
}

func (s *Store) GetEventType(ctx context.Context, name string) (*herald.EventType, error) {
	return observe(s, opGetEventType, func() (*herald.EventType, error) { return s.next.GetEventType(ctx, name) })
}

func (s *Store) ListEventTypes(ctx context.Context, opts herald.EventTypeListOptions) ([]*herald.EventType, error) {
	return observe(s, opListEventTypes, func() ([]*herald.EventType, error) { return s.next.ListEventTypes(ctx, opts) })
}

func (s *Store) UpdateEventType(ctx context.Context, et *herald.EventType) error {
	return observe0(s, opUpdateEventType, func() error { return s.next.UpdateEventType(ctx, et) })
}

func (s *Store) UpdateEventTypeFunc(ctx context.Context, name string, update func(*herald.EventType) error) (*herald.EventType, error) {
	return observe(s, opUpdateEventTypeFunc, func() (*herald.EventType, error) { return s.next.UpdateEventTypeFunc(ctx, name, update) })
}

func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	return observe0(s, opDeleteEventType, func() error { return s.next.DeleteEventType(ctx, name) })
}

func (s *Store) ImportEventTypes(ctx context.Context, types []*herald.EventType, archiveOthers bool, now time.Time) ([]string, error) {
	return observe(s, opImportEventTypes, func() ([]string, error) { return s.next.ImportEventTypes(ctx, types, archiveOthers, now) })
}

func (s *Store) CreateEndpoint(ctx context.Context, ep *herald.Endpoint) error {
	return observe0(s, opCreateEndpoint, func() error { return s.next.CreateEndpoint(ctx, ep) })
}

func (s *Store) GetEndpoint(ctx context.Context, appID, ref string) (*herald.Endpoint, error) {
	return observe(s, opGetEndpoint, func() (*herald.Endpoint, error) { return s.next.GetEndpoint(ctx, appID, ref) })
}

func (s *Store) ListEndpoints(ctx context.Context, appID string, opts herald.ListOptions) ([]*herald.Endpoint, error) {
	return observe(s, opListEndpoints, func() ([]*herald.Endpoint, error) { return s.next.ListEndpoints(ctx, appID, opts) })
}

func (s *Store) UpdateEndpoint(ctx context.Context, ep *herald.Endpoint) error {
	return observe0(s, opUpdateEndpoint, func() error { return s.next.UpdateEndpoint(ctx, ep) })
}

func (s *Store) UpdateEndpointKeepDisabled(ctx context.Context, ep *herald.Endpoint) error {
	return observe0(s, opUpdateEndpointKeepDisabled, func() error { return s.next.UpdateEndpointKeepDisabled(ctx, ep) })
}

func (s *Store) UpdateEndpointFunc(ctx context.Context, appID, ref string, update func(*herald.Endpoint) error) (*herald.Endpoint, error) {
	return observe(s, opUpdateEndpointFunc, func() (*herald.Endpoint, error) { return s.next.UpdateEndpointFunc(ctx, appID, ref, update) })
}

func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	return observe0(s, opDeleteEndpoint, func() error { return s.next.DeleteEndpoint(ctx, appID, id) })
}

func (s *Store) RotateEndpointSecret(ctx context.Context, appID, id string, next herald.SigningSecret, graceUntil, now time.Time) error {
	return observe0(s, opRotateEndpointSecret, func() error { return s.next.RotateEndpointSecret(ctx, appID, id, next, graceUntil, now) })
}

func (s *Store) CreateMessages(ctx context.Context, msgs []*herald.Message, lease herald.Lease) ([]herald.MessageResult, error) {
	return observe(s, opCreateMessages, func() ([]herald.MessageResult, error) { return s.next.CreateMessages(ctx, msgs, lease) })
}

func (s *Store) FanOut(ctx context.Context, limit int, lease herald.Lease) (herald.FanOutChunk, error) {
	return observe(s, opFanOut, func() (herald.FanOutChunk, error) { return s.next.FanOut(ctx, limit, lease) })
}

func (s *Store) GetMessage(ctx context.Context, appID, ref string) (*herald.Message, error) {
	return observe(s, opGetMessage, func() (*herald.Message, error) { return s.next.GetMessage(ctx, appID, ref) })
}

func (s *Store) ListMessages(ctx context.Context, appID string, opts herald.MessageListOptions) ([]*herald.Message, error) {
	return observe(s, opListMessages, func() ([]*herald.Message, error) { return s.next.ListMessages(ctx, appID, opts) })
}

func (s *Store) ExpungeMessageContent(ctx context.Context, appID, id string) error {
	return observe0(s, opExpungeMessageContent, func() error { return s.next.ExpungeMessageContent(ctx, appID, id) })
}

func (s *Store) ListMessageDeliveries(ctx context.Context, appID, msgID string) ([]*herald.Delivery, error) {
	return observe(s, opListMessageDeliveries, func() ([]*herald.Delivery, error) { return s.next.ListMessageDeliveries(ctx, appID, msgID) })
}

func (s *Store) ListEndpointMessages(ctx context.Context, appID, endpointID string, opts herald.DeliveryListOptions) ([]herald.EndpointMessage, error) {
	return observe(s, opListEndpointMessages, func() ([]herald.EndpointMessage, error) {
		return s.next.ListEndpointMessages(ctx, appID, endpointID, opts)
	})
}

func (s *Store) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	return observe(s, opClaimDue, func() ([]herald.Claim, error) { return s.next.ClaimDue(ctx, opts) })
}

func (s *Store) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	return observe0(s, opRecordAttempts, func() error { return s.next.RecordAttempts(ctx, outcomes) })
}

func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, claims []herald.LeaseRef, now time.Time) error {
	return observe0(s, opReleaseDeliveries, func() error { return s.next.ReleaseDeliveries(ctx, owner, claims, now) })
}

func (s *Store) RescueExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	return observe(s, opRescueExpired, func() (int, error) { return s.next.RescueExpired(ctx, now, limit) })
}

func (s *Store) ListAttempts(ctx context.Context, appID string, opts herald.AttemptListOptions) ([]*herald.Attempt, error) {
	return observe(s, opListAttempts, func() ([]*herald.Attempt, error) { return s.next.ListAttempts(ctx, appID, opts) })
}

func (s *Store) GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*herald.Attempt, error) {
	return observe(s, opGetAttempt, func() (*herald.Attempt, error) { return s.next.GetAttempt(ctx, appID, msgID, attemptID) })
}

func (s *Store) ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error {
	return observe0(s, opExpungeAttemptContent, func() error { return s.next.ExpungeAttemptContent(ctx, appID, msgID, attemptID) })
}

func (s *Store) ResendDelivery(ctx context.Context, appID, msgID, endpointID string, now time.Time) error {
	return observe0(s, opResendDelivery, func() error { return s.next.ResendDelivery(ctx, appID, msgID, endpointID, now) })
}

func (s *Store) RecoverEndpoint(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	return observe(s, opRecoverEndpoint, func() (int, error) { return s.next.RecoverEndpoint(ctx, appID, endpointID, since, until, now) })
}

func (s *Store) ReplayMissing(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	return observe(s, opReplayMissing, func() (int, error) { return s.next.ReplayMissing(ctx, appID, endpointID, since, until, now) })
}

func (s *Store) GetEndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (herald.EndpointStats, error) {
	return observe(s, opGetEndpointStats, func() (herald.EndpointStats, error) {
		return s.next.GetEndpointStats(ctx, appID, endpointID, since, until)
	})
}

func (s *Store) DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredAttempts, func() (int, error) { return s.next.DeleteExpiredAttempts(ctx, before, limit) })
}

func (s *Store) ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error) {
	return observe(s, opExpirePayloads, func() (int, error) { return s.next.ExpirePayloads(ctx, now, limit) })
}

func (s *Store) DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredMessages, func() (int, error) { return s.next.DeleteExpiredMessages(ctx, before, limit) })
}

func (s *Store) BeginIdempotent(ctx context.Context, rec *herald.IdempotencyRecord) (*herald.IdempotencyRecord, error) {
	return observe(s, opBeginIdempotent, func() (*herald.IdempotencyRecord, error) { return s.next.BeginIdempotent(ctx, rec) })
}

func (s *Store) CompleteIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	return observe0(s, opCompleteIdempotent, func() error { return s.next.CompleteIdempotent(ctx, key, statusCode, body) })
}

func (s *Store) AbandonIdempotent(ctx context.Context, key string, createdAt time.Time) error {
	return observe0(s, opAbandonIdempotent, func() error { return s.next.AbandonIdempotent(ctx, key, createdAt) })
}

func (s *Store) DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredIdempotent, func() (int, error) { return s.next.DeleteExpiredIdempotent(ctx, now, limit) })
}

func (s *Store) QueueStats(ctx context.Context, now time.Time) (herald.QueueStats, error) {
	return observe(s, opQueueStats, func() (herald.QueueStats, error) { return s.next.QueueStats(ctx, now) })
}

func (s *Store) CreateToken(ctx context.Context, t *herald.Token) error {
	return observe0(s, opCreateToken, func() error { return s.next.CreateToken(ctx, t) })
}

func (s *Store) GetTokenByHash(ctx context.Context, hash []byte) (*herald.Token, error) {
	return observe(s, opGetTokenByHash, func() (*herald.Token, error) { return s.next.GetTokenByHash(ctx, hash) })
}

func (s *Store) GetToken(ctx context.Context, id string) (*herald.Token, error) {
	return observe(s, opGetToken, func() (*herald.Token, error) { return s.next.GetToken(ctx, id) })
}

func (s *Store) ListTokens(ctx context.Context, opts herald.TokenListOptions) ([]*herald.Token, error) {
	return observe(s, opListTokens, func() ([]*herald.Token, error) { return s.next.ListTokens(ctx, opts) })
}

func (s *Store) DeleteMessage(ctx context.Context, appID, id string) error {
	return observe0(s, opDeleteMessage, func() error { return s.next.DeleteMessage(ctx, appID, id) })
}

func (s *Store) CreateTask(ctx context.Context, t *herald.Task, now time.Time) error {
	return observe0(s, opCreateTask, func() error { return s.next.CreateTask(ctx, t, now) })
}

func (s *Store) GetTask(ctx context.Context, id string) (*herald.Task, error) {
	return observe(s, opGetTask, func() (*herald.Task, error) { return s.next.GetTask(ctx, id) })
}

func (s *Store) ListTasks(ctx context.Context, opts herald.TaskListOptions) ([]*herald.Task, error) {
	return observe(s, opListTasks, func() ([]*herald.Task, error) { return s.next.ListTasks(ctx, opts) })
}

func (s *Store) ClaimTask(ctx context.Context, owner string, now, leaseUntil time.Time) (*herald.Task, error) {
	return observe(s, opClaimTask, func() (*herald.Task, error) { return s.next.ClaimTask(ctx, owner, now, leaseUntil) })
}

func (s *Store) RunTaskSlice(ctx context.Context, id, owner string, limit int, now, leaseUntil time.Time) (*herald.Task, error) {
	return observe(s, opRunTaskSlice, func() (*herald.Task, error) {
		return s.next.RunTaskSlice(ctx, id, owner, limit, now, leaseUntil)
	})
}

func (s *Store) DeleteExpiredTasks(ctx context.Context, before time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredTasks, func() (int, error) { return s.next.DeleteExpiredTasks(ctx, before, limit) })
}

func (s *Store) ListAuditRecords(ctx context.Context, opts herald.AuditListOptions) ([]*herald.AuditRecord, error) {
	return observe(s, opListAuditRecords, func() ([]*herald.AuditRecord, error) { return s.next.ListAuditRecords(ctx, opts) })
}

func (s *Store) DeleteExpiredAuditRecords(ctx context.Context, before time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredAuditRecords, func() (int, error) { return s.next.DeleteExpiredAuditRecords(ctx, before, limit) })
}

func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) error {
	return observe0(s, opRevokeToken, func() error { return s.next.RevokeToken(ctx, id, now) })
}

func (s *Store) ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) (int, error) {
	return observe(s, opExpireAppTokens, func() (int, error) { return s.next.ExpireAppTokens(ctx, appID, sessionIDs, at) })
}

func (s *Store) TouchToken(ctx context.Context, id string, now time.Time) error {
	return observe0(s, opTouchToken, func() error { return s.next.TouchToken(ctx, id, now) })
}

func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	return observe(s, opDeleteExpiredTokens, func() (int, error) { return s.next.DeleteExpiredTokens(ctx, before, limit) })
}

func (s *Store) ResealEndpoints(ctx context.Context, after string, limit int) (herald.ResealBatch, error) {
	return observe(s, opResealEndpoints, func() (herald.ResealBatch, error) { return s.next.ResealEndpoints(ctx, after, limit) })
}

func (s *Store) CountSealed(ctx context.Context) (herald.SealCount, error) {
	return observe(s, opCountSealed, func() (herald.SealCount, error) { return s.next.CountSealed(ctx) })
}

// TokenTaker is the optional shared token bucket of a store (PostgreSQL's),
// which the dispatcher uses to hold rate limits across nodes. It is not part
// of herald.Store, so Store does not forward it; wrap it with
// InstrumentTokens.
type TokenTaker interface {
	TakeTokens(ctx context.Context, key string, perSecond, burst float64, want int, now time.Time) (int, error)
}

// InstrumentTokens returns t measured into m under the operation
// take_tokens.
func InstrumentTokens(t TokenTaker, m *Metrics) TokenTaker { return &tokens{next: t, m: m} }

// tokens is a measured TokenTaker.
type tokens struct {
	next TokenTaker
	m    *Metrics
}

func (t *tokens) TakeTokens(ctx context.Context, key string, perSecond, burst float64, want int, now time.Time) (int, error) {
	start := time.Now()
	n, err := t.next.TakeTokens(ctx, key, perSecond, burst, want, now)
	t.m.storeDone(opTakeTokens, start, err)
	return n, err
}

func (s *Store) PollMessages(ctx context.Context, appID string, opts herald.PollOptions) (herald.PollPage, error) {
	return observe(s, opPollMessages, func() (herald.PollPage, error) { return s.next.PollMessages(ctx, appID, opts) })
}

func (s *Store) PollStart(ctx context.Context, appID string, at time.Time) (herald.PollPosition, error) {
	return observe(s, opPollStart, func() (herald.PollPosition, error) { return s.next.PollStart(ctx, appID, at) })
}

func (s *Store) GetPollConsumer(ctx context.Context, endpointID, consumerID string) (*herald.PollConsumer, error) {
	return observe(s, opGetPollConsumer, func() (*herald.PollConsumer, error) {
		return s.next.GetPollConsumer(ctx, endpointID, consumerID)
	})
}

func (s *Store) SetPollConsumer(ctx context.Context, c *herald.PollConsumer) error {
	return observe0(s, opSetPollConsumer, func() error { return s.next.SetPollConsumer(ctx, c) })
}
