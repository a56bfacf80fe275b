package herald

import (
	"context"
	"strings"
	"time"
)

// PrefixToken starts the ID of every token row (never the secret itself).
const PrefixToken = "tok_"

// TokenKind says what a token is for. One store holds them all, so that
// one lookup, one revocation and one expiry sweep serve every credential
// Herald issues.
type TokenKind string

const (
	// TokenKey is an API key: a bearer token for the API.
	TokenKey TokenKind = "key"
	// TokenPortal is an app-portal token (Svix's appPortalAccess): a bearer
	// token for one application's routes, also exchanged for a portal
	// session in the browser.
	TokenPortal TokenKind = "portal"
	// TokenSession is a browser session of the console or the portal,
	// carried in a cookie and never accepted as a bearer token.
	TokenSession TokenKind = "session"
)

// Token is a credential Herald issued. Only the SHA-256 of its secret is
// stored: the secret is shown once, when it is made.
type Token struct {
	ID   string
	Kind TokenKind
	// Hash is the SHA-256 of the secret (32 bytes); unique.
	Hash []byte
	// Name says whose or what the token is ("console", a key's name).
	Name string
	// AppID limits the token to one application's routes; "" is admin
	// scope (every route).
	AppID string
	// ReadOnly tokens may only read.
	ReadOnly bool
	// Parent is the token a session was opened with (a portal token's ID,
	// or "" for a session opened with the bootstrap admin token). Revoking
	// or expiring a token ends its sessions too.
	Parent string
	// SessionID is the caller's own label of a portal token (Svix's
	// sessionId), used to expire a chosen set of tokens; "" when unset.
	SessionID string
	// Capabilities limit an app-portal token (and its sessions) to some of
	// the routes of its application: Svix's AppPortalCapability values. Nil
	// is no limit; an empty slice allows only what needs no capability.
	Capabilities []string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	LastUsedAt   time.Time // zero when never used
	RevokedAt    time.Time // zero while not revoked
}

// Active reports whether the token may be used at now: not revoked and
// not expired.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// CapabilitiesText is how stores keep Capabilities: nil for no limit, the
// capabilities joined by commas otherwise (capabilities hold no commas).
func (t *Token) CapabilitiesText() any {
	if t.Capabilities == nil {
		return nil
	}
	return strings.Join(t.Capabilities, ",")
}

// SetCapabilitiesText sets Capabilities from what CapabilitiesText made;
// valid is false for a NULL.
func (t *Token) SetCapabilitiesText(s string, valid bool) {
	switch {
	case !valid:
		t.Capabilities = nil
	case s == "":
		t.Capabilities = []string{}
	default:
		t.Capabilities = strings.Split(s, ",")
	}
}

// TokenListOptions selects a page of tokens, ordered by ID.
type TokenListOptions struct {
	ListOptions
	// Kind, when set, lists only tokens of that kind.
	Kind TokenKind
	// AppID, when set, lists only tokens of that application.
	AppID string
}

// TokenStore keeps the tokens. Every engine's Store implements it.
type TokenStore interface {
	// CreateToken stores t; a taken hash is ECONFLICT, an AppID that names
	// no application ENOTFOUND.
	CreateToken(ctx context.Context, t *Token) error
	// GetTokenByHash returns the token whose secret hashes to hash, active
	// or not, or ENOTFOUND.
	GetTokenByHash(ctx context.Context, hash []byte) (*Token, error)
	// GetToken returns the token with id, active or not, or ENOTFOUND.
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns a page of tokens, active or not.
	ListTokens(ctx context.Context, opts TokenListOptions) ([]*Token, error)
	// RevokeToken revokes the token with id and every session opened with
	// it, at now; an unknown id is ENOTFOUND. Revoking twice keeps the
	// first time.
	RevokeToken(ctx context.Context, id string, now time.Time) error
	// ExpireAppTokens brings the expiry of the application's portal tokens
	// (only those with one of sessionIDs, when any are given) and of their
	// sessions forward to at, when they would expire later; it reports how
	// many tokens it changed.
	ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) (int, error)
	// TouchToken sets the token's LastUsedAt to now (callers throttle it).
	TouchToken(ctx context.Context, id string, now time.Time) error
	// DeleteExpiredTokens deletes up to limit tokens that expired, or were
	// revoked, before before, and reports how many.
	DeleteExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error)
}

// NeverExpires is the ExpiresAt of a token made without an expiry (an API
// key may have none): a time no clock reaches that every engine can store,
// so the sweep and Active need no special case.
var NeverExpires = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
