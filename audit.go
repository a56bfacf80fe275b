package herald

import (
	"context"
	"time"
)

// PrefixAudit starts the ID of every audit record.
const PrefixAudit = "audit_"

// AuditActor is who made a change and through which route: the caller
// puts it in the context of a store call (WithAuditActor), and every
// mutating store verb then writes an AuditRecord in the same transaction
// as its change. No actor in the context (the dispatcher, the cleaner,
// tests) means no record.
//
// It holds identifiers only: never a secret, a header value or a payload.
type AuditActor struct {
	// TokenID is the token row's ID: an API key, an app-portal token or a
	// console or portal session; "" for the bootstrap admin token and for
	// the CLI.
	TokenID string
	// TokenKind is the token's kind ("key", "portal", "session"), "" for
	// the bootstrap admin token, AuditKindCLI for the command line.
	TokenKind TokenKind
	// TokenName names the token: "admin-token" for the bootstrap admin
	// token, a key's or portal token's name; for a session, the name of
	// the key or portal token it was opened with ("admin-token" for a
	// console session of the bootstrap token). For the CLI, "cli:<os user>".
	TokenName string
	// ParentTokenID is, for a session, the token it was opened with ("" for
	// a session of the bootstrap admin token).
	ParentTokenID string
	// Method and Route are the request's method and the route-table
	// pattern it matched ("PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}");
	// for the CLI, "CLI" and the command ("keys revoke").
	Method, Route string
	// RequestID is the request's x-request-id; "" outside a request.
	RequestID string
	// ClientAddr is the caller's address, as the trusted proxies say.
	ClientAddr string
	// At, when not zero, is the record's time; the store's clock otherwise.
	At time.Time
}

// AuditKindCLI is the TokenKind of the changes made with the herald
// command itself (herald keys create|revoke): TokenName is "cli:<os user>".
const AuditKindCLI TokenKind = "cli"

// CLIActor is the actor of a change the herald command makes itself
// (herald keys create|revoke): kind AuditKindCLI, name "cli:<osUser>",
// method "CLI" and the command as route ("keys revoke").
func CLIActor(osUser, command string) AuditActor {
	return AuditActor{TokenKind: AuditKindCLI, TokenName: "cli:" + osUser, Method: "CLI", Route: command}
}

// AuditRecord is one change, as the audit log keeps it.
type AuditRecord struct {
	ID        string
	CreatedAt time.Time
	Actor     AuditActor
	// Action says what changed: "<resource type>.<verb>", e.g.
	// "endpoint.update", "endpoint.secret.rotate", "token.revoke".
	Action string
	// ResourceType, ResourceID and AppID name what changed ("endpoint",
	// its ID, its application's ID); AppID is "" for a resource of no
	// application (an event type, an admin key).
	ResourceType string
	ResourceID   string
	AppID        string
}

// Audit resource types.
const (
	AuditApplication = "application"
	AuditEventType   = "event_type"
	AuditEndpoint    = "endpoint"
	AuditMessage     = "message"
	AuditAttempt     = "attempt"
	AuditToken       = "token"
	AuditTask        = "background_task"
)

type auditActorKey struct{}

// WithAuditActor returns ctx carrying a: the store calls made with it are
// recorded in the audit log as a's changes. The API sets it for every
// write route; the CLI sets it (kind AuditKindCLI) for its changes.
func WithAuditActor(ctx context.Context, a AuditActor) context.Context {
	return context.WithValue(ctx, auditActorKey{}, &a)
}

// WithoutAuditActor returns ctx without an actor: the store calls made
// with it are not recorded. For what a request does on Herald's own
// behalf, such as creating the internal operational application the first
// time an operational endpoint is created (the endpoint itself is
// recorded).
func WithoutAuditActor(ctx context.Context) context.Context {
	return context.WithValue(ctx, auditActorKey{}, (*AuditActor)(nil))
}

// AuditActorFrom returns the actor WithAuditActor put in ctx, or nil.
func AuditActorFrom(ctx context.Context) *AuditActor {
	a, _ := ctx.Value(auditActorKey{}).(*AuditActor)
	return a
}

// NewAuditRecord returns the record of a change by actor (an action on a
// resource), with a new ID made at the actor's At, or now when At is zero.
func NewAuditRecord(actor *AuditActor, action, resourceType, resourceID, appID string, now time.Time) *AuditRecord {
	at := actor.At
	if at.IsZero() {
		at = now
	}
	at = at.UTC().Truncate(time.Microsecond)
	return &AuditRecord{
		ID:           NewIDAt(PrefixAudit, at),
		CreatedAt:    at,
		Actor:        *actor,
		Action:       action,
		ResourceType: resourceType,
		ResourceID:   resourceID,
		AppID:        appID,
	}
}

// AuditListOptions selects a page of the audit log, ordered by ID (time).
type AuditListOptions struct {
	ListOptions
	// AppID and TokenID, when set, keep the records of that application
	// or that token only.
	AppID   string
	TokenID string
	// Since (inclusive) and Until (exclusive), when not zero, bound the
	// records' time.
	Since, Until time.Time
}

// AuditStore keeps the audit log. Every engine's Store implements it; the
// records themselves are written by the mutating verbs of the Store.
type AuditStore interface {
	// ListAuditRecords returns a page of the audit log.
	ListAuditRecords(ctx context.Context, opts AuditListOptions) ([]*AuditRecord, error)
	// DeleteExpiredAuditRecords deletes up to limit records created before
	// before, oldest first, and reports how many.
	DeleteExpiredAuditRecords(ctx context.Context, before time.Time, limit int) (int, error)
}
