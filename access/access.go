// Package access says who is calling: it turns a bearer token or a session
// cookie into a Principal (the bootstrap admin token, an API key, an
// app-portal token, a console or portal session) and issues new tokens.
// One token store holds every credential Herald issues (herald.TokenStore);
// only SHA-256 hashes of secrets are stored.
//
// What a principal may do is decided in one place, the API's route table
// (package httpapi); the console and the portal reach data only through
// the API, as the principal of their session.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-webhooks/herald"
)

// Token secret prefixes: they say what a leaked secret is at a glance (and
// let secret scanners find it). The bootstrap admin token keeps the form
// it always had ("hk_…" when generated).
const (
	PrefixPortal  = "appsk_"
	PrefixSession = "hsess_"
	PrefixKey     = "hkey_"
)

// Principal is the caller of a request.
type Principal struct {
	// TokenID is the token row's ID; "" for the bootstrap admin token.
	TokenID string
	// Kind is the token's kind; "" for the bootstrap admin token.
	Kind herald.TokenKind
	// Name names the token (for logs and, later, the audit trail).
	Name string
	// AppID limits the principal to one application; "" is admin scope.
	AppID string
	// ReadOnly principals may only read.
	ReadOnly bool
	// Parent is, for a session, the token it was opened with.
	Parent string
	// ParentName is, for a session, the name of the token it was opened
	// with ("admin-token" for the bootstrap admin token): the audit log
	// names a session's changes by it.
	ParentName string
	// ExpiresAt is when the credential ends; zero for the bootstrap token.
	ExpiresAt time.Time
	// Capabilities limit an app-portal principal to some routes (Svix's
	// AppPortalCapability values); nil is no limit.
	Capabilities []string
}

// Admin reports whether the principal may use every route.
func (p Principal) Admin() bool { return p.AppID == "" }

// Can reports whether the principal holds one of caps (or no limit).
func (p Principal) Can(caps ...string) bool {
	if p.Capabilities == nil {
		return true
	}
	for _, c := range caps {
		if slices.Contains(p.Capabilities, c) {
			return true
		}
	}
	return false
}

// Bootstrap is the principal of the bootstrap admin token.
var Bootstrap = Principal{Name: "admin-token"}

type principalKey struct{}

// WithPrincipal returns ctx carrying p. The API trusts a principal found in
// the request context instead of reading credentials: only in-process
// callers (the console and portal, calling the API as their session's
// principal) can set one; no network request can.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal WithPrincipal put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NewSecret returns a new random secret with the given prefix (32 random
// bytes, base64url) and its hash as the token store keeps it.
func NewSecret(prefix string) (secret string, hash []byte) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret = prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return secret, Hash(secret)
}

// Hash is the stored form of a secret.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// touchEvery is how often a token's LastUsedAt is written: at most once a
// minute per token, so using a token costs no write on most requests.
const touchEvery = time.Minute

// Authenticator checks credentials against the bootstrap admin token and
// the token store.
type Authenticator struct {
	store herald.TokenStore
	admin [32]byte
	now   func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // token ID → last LastUsedAt written
}

// NewAuthenticator returns an Authenticator; adminHash is the SHA-256 of
// the bootstrap admin token; now defaults to time.Now.
func NewAuthenticator(store herald.TokenStore, adminHash [32]byte, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: store, admin: adminHash, now: now, touched: make(map[string]time.Time)}
}

// errInvalid is the one answer to every credential that does not work:
// unknown, malformed, expired and revoked look the same to the caller.
func errInvalid() error { return herald.Errorf(herald.EUNAUTHORIZED, "Invalid token.") }

// IsAdminToken reports, in constant time, whether secret is the bootstrap
// admin token.
func (a *Authenticator) IsAdminToken(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1
}

// Bearer authenticates an API bearer token: the bootstrap admin token, an
// API key or an app-portal token. Session secrets are refused: they live
// in cookies and are bound to their CSRF token.
func (a *Authenticator) Bearer(ctx context.Context, secret string) (Principal, error) {
	if a.IsAdminToken(secret) {
		return Bootstrap, nil
	}
	if !strings.HasPrefix(secret, PrefixPortal) && !strings.HasPrefix(secret, PrefixKey) {
		return Principal{}, errInvalid()
	}
	return a.lookup(ctx, secret, herald.TokenPortal, herald.TokenKey)
}

// Session authenticates the secret of a session cookie.
func (a *Authenticator) Session(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, PrefixSession) {
		return Principal{}, errInvalid()
	}
	return a.lookup(ctx, secret, herald.TokenSession)
}

// lookup finds an active token of one of kinds by its secret.
func (a *Authenticator) lookup(ctx context.Context, secret string, kinds ...herald.TokenKind) (Principal, error) {
	t, err := a.store.GetTokenByHash(ctx, Hash(secret))
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return Principal{}, errInvalid()
	} else if err != nil {
		return Principal{}, err
	}
	now := a.now()
	kindOK := false
	for _, k := range kinds {
		kindOK = kindOK || t.Kind == k
	}
	if !kindOK || !t.Active(now) {
		return Principal{}, errInvalid()
	}
	var parentName string
	if t.Kind == herald.TokenSession {
		var err error
		if parentName, err = a.checkSessionSource(ctx, t, now); err != nil {
			return Principal{}, err
		}
	}
	a.touch(ctx, t.ID, now)
	p := principalOf(t)
	p.ParentName = parentName
	return p, nil
}

// checkSessionSource checks that what a session was opened with still
// works: its parent token is active (a revocation or expiry that raced the
// session's creation still ends it), or, for a session of the bootstrap
// admin token, that token is still the one configured (a rotated admin
// token ends the console sessions opened with the old one). It returns
// the name of what the session was opened with.
func (a *Authenticator) checkSessionSource(ctx context.Context, t *herald.Token, now time.Time) (string, error) {
	if t.Parent == "" {
		if subtle.ConstantTimeCompare([]byte(t.SessionID), []byte(a.bootstrapMark())) != 1 {
			return "", errInvalid()
		}
		return Bootstrap.Name, nil
	}
	parent, err := a.store.GetToken(ctx, t.Parent)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return "", errInvalid()
	} else if err != nil {
		return "", err
	}
	if !parent.Active(now) {
		return "", errInvalid()
	}
	return parent.Name, nil
}

// bootstrapMark labels the sessions opened with the bootstrap admin
// token: a digest of its hash, so that they end when the token changes.
func (a *Authenticator) bootstrapMark() string {
	sum := sha256.Sum256(append(a.admin[:], "herald console session"...))
	return "bootstrap:" + hex.EncodeToString(sum[:16])
}

func principalOf(t *herald.Token) Principal {
	return Principal{
		TokenID:   t.ID,
		Kind:      t.Kind,
		Name:      t.Name,
		AppID:     t.AppID,
		ReadOnly:  t.ReadOnly,
		Parent:    t.Parent,
		ExpiresAt: t.ExpiresAt,
		// Sessions copy their parent's.
		Capabilities: t.Capabilities,
	}
}

// touch records the token's use, at most once per touchEvery, in the
// background: a failed write costs only the last-used time.
func (a *Authenticator) touch(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	last, seen := a.touched[id]
	due := !seen || now.Sub(last) >= touchEvery
	if due {
		if len(a.touched) > 100_000 { // bound the memory of a long-lived node
			clear(a.touched)
		}
		a.touched[id] = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = a.store.TouchToken(ctx, id, now)
	}()
}

// Issue stores t with a new secret of the given prefix and returns the
// secret: the only time it is ever seen. ID, Hash and CreatedAt are set.
func (a *Authenticator) Issue(ctx context.Context, t *herald.Token, prefix string) (string, error) {
	secret, hash := NewSecret(prefix)
	now := a.now().UTC()
	t.ID = herald.NewIDAt(herald.PrefixToken, now)
	t.Hash = hash
	t.CreatedAt = now
	if err := a.store.CreateToken(ctx, t); err != nil {
		return "", err
	}
	return secret, nil
}

// OpenSession issues a browser session for p, ending at expires or when
// p's own credential ends, whichever is first, and returns its secret.
func (a *Authenticator) OpenSession(ctx context.Context, p Principal, name string, expires time.Time) (string, Principal, error) {
	if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(expires) {
		expires = p.ExpiresAt
	}
	t := &herald.Token{
		Kind:         herald.TokenSession,
		Name:         name,
		AppID:        p.AppID,
		ReadOnly:     p.ReadOnly,
		Parent:       p.TokenID,
		Capabilities: p.Capabilities,
		ExpiresAt:    expires.UTC(),
	}
	if p.TokenID == "" {
		t.SessionID = a.bootstrapMark()
	}
	secret, err := a.Issue(ctx, t, PrefixSession)
	if err != nil {
		return "", Principal{}, err
	}
	sp := principalOf(t)
	sp.ParentName = p.Name
	return secret, sp, nil
}

// Revoke revokes the token with id (and its sessions).
func (a *Authenticator) Revoke(ctx context.Context, id string) error {
	return a.store.RevokeToken(ctx, id, a.now().UTC())
}
