package access_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/internal/sqlitetest"
	"github.com/herald-webhooks/herald/internal/testclock"
)

const adminToken = "the-bootstrap-admin-token"

func setup(t *testing.T) (*access.Authenticator, herald.Store, *testclock.Clock, *herald.Application) {
	t.Helper()
	s := sqlitetest.Open(t)
	c := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, c.Now()), Name: "A", Metadata: map[string]string{}, CreatedAt: c.Now(), UpdatedAt: c.Now()}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	return access.NewAuthenticator(s, sha256.Sum256([]byte(adminToken)), c.Now), s, c, app
}

func TestBearer(t *testing.T) {
	auth, s, c, app := setup(t)
	ctx := t.Context()
	p, err := auth.Bearer(ctx, adminToken)
	if err != nil || !p.Admin() || p.TokenID != "" {
		t.Fatalf("admin token: %+v, %v", p, err)
	}
	portal := &herald.Token{Kind: herald.TokenPortal, Name: "p", AppID: app.ID, ReadOnly: true, ExpiresAt: c.Now().Add(time.Hour)}
	secret, err := auth.Issue(ctx, portal, access.PrefixPortal)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, access.PrefixPortal) || len(secret) < 40 {
		t.Errorf("secret %q", secret)
	}
	stored, err := s.GetTokenByHash(ctx, access.Hash(secret))
	if err != nil || stored.ID != portal.ID {
		t.Fatalf("stored by hash: %+v, %v", stored, err)
	}
	p, err = auth.Bearer(ctx, secret)
	if err != nil || p.Admin() || p.AppID != app.ID || !p.ReadOnly || p.TokenID != portal.ID || p.Kind != herald.TokenPortal {
		t.Fatalf("portal token: %+v, %v", p, err)
	}
	// Sessions are cookies, never bearer tokens; and the reverse.
	sess, sp, err := auth.OpenSession(ctx, p, "portal", c.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !sp.ExpiresAt.Equal(portal.ExpiresAt) || sp.Parent != portal.ID || sp.AppID != app.ID || !sp.ReadOnly {
		t.Errorf("session principal %+v: want the portal token's scope and expiry", sp)
	}
	if _, err := auth.Bearer(ctx, sess); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Errorf("session as bearer: %v", err)
	}
	if _, err := auth.Session(ctx, secret); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Errorf("portal token as session: %v", err)
	}
	if got, err := auth.Session(ctx, sess); err != nil || got.TokenID != sp.TokenID {
		t.Errorf("session: %+v, %v", got, err)
	}
	// Revoking the portal token ends its session.
	if err := auth.Revoke(ctx, portal.ID); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { _, err := auth.Bearer(ctx, secret); return err },
		func() error { _, err := auth.Session(ctx, sess); return err },
	} {
		if err := try(); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
			t.Errorf("after revoke: %v, want 401", err)
		}
	}
	for _, bad := range []string{"", "x", adminToken + " ", access.PrefixPortal + "nope", access.PrefixKey + "nope"} {
		if _, err := auth.Bearer(ctx, bad); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
			t.Errorf("Bearer(%q) = %v", bad, err)
		}
	}
}

func TestExpiryAndLastUsed(t *testing.T) {
	auth, s, c, _ := setup(t)
	ctx := t.Context()
	key := &herald.Token{Kind: herald.TokenKey, Name: "ci", ExpiresAt: c.Now().Add(time.Hour)}
	secret, err := auth.Issue(ctx, key, access.PrefixKey)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		var got time.Time
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) { // written in the background
			tok, err := s.GetTokenByHash(ctx, access.Hash(secret))
			if err != nil {
				t.Fatal(err)
			}
			if got = tok.LastUsedAt; !got.IsZero() && !got.Before(c.Now().Add(-time.Second)) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return got
	}
	if _, err := auth.Bearer(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(c.Now()) {
		t.Errorf("last used %v, want %v", got, c.Now())
	}
	c.Add(2 * time.Minute)
	if _, err := auth.Bearer(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(c.Now()) {
		t.Errorf("last used %v, want %v", got, c.Now())
	}
	c.Add(time.Hour)
	if _, err := auth.Bearer(ctx, secret); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Errorf("expired key: %v, want 401", err)
	}
}

func TestPrincipalContext(t *testing.T) {
	if _, ok := access.FromContext(t.Context()); ok {
		t.Fatal("a bare context carries no principal")
	}
	p := access.Principal{TokenID: "tok_1", AppID: "app_1", ReadOnly: true}
	got, ok := access.FromContext(access.WithPrincipal(t.Context(), p))
	if !ok || got.TokenID != p.TokenID || got.AppID != p.AppID || !got.ReadOnly {
		t.Errorf("FromContext = %+v, %v", got, ok)
	}
	if access.Bootstrap.AppID != "" || !access.Bootstrap.Admin() {
		t.Error("the bootstrap principal is admin")
	}
}

// TestSessionsEndWithTheirSource: a session stops working when the token
// it was opened with is revoked, even if it was opened after the
// revocation was decided (its own row was not there to be revoked), and a
// console session of the bootstrap admin token ends when that token is
// changed.
func TestSessionsEndWithTheirSource(t *testing.T) {
	auth, s, c, app := setup(t)
	ctx := t.Context()
	portal := &herald.Token{Kind: herald.TokenPortal, AppID: app.ID, ExpiresAt: c.Now().Add(time.Hour)}
	secret, err := auth.Issue(ctx, portal, access.PrefixPortal)
	if err != nil {
		t.Fatal(err)
	}
	p, err := auth.Bearer(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	// The revocation lands first, as it would in a race with the login
	// that checked the token just before.
	if err := s.RevokeToken(ctx, portal.ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	late, _, err := auth.OpenSession(ctx, p, "portal", c.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Session(ctx, late); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Errorf("session of a revoked token: %v, want 401", err)
	}

	console, _, err := auth.OpenSession(ctx, access.Bootstrap, "console", c.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.Session(ctx, console); err != nil || !got.Admin() {
		t.Fatalf("console session: %+v, %v", got, err)
	}
	rotated := access.NewAuthenticator(s, sha256.Sum256([]byte("a-new-admin-token")), c.Now)
	if _, err := rotated.Session(ctx, console); herald.ErrorCode(err) != herald.EUNAUTHORIZED {
		t.Errorf("console session after the admin token changed: %v, want 401", err)
	}
}

func TestCapabilities(t *testing.T) {
	unlimited := access.Principal{}
	if !unlimited.Can("ManageEndpoint") || !unlimited.Can() {
		t.Error("no limit allows everything")
	}
	limited := access.Principal{Capabilities: []string{"ViewBase", "CreateAttempts"}}
	if !limited.Can("ManageEndpoint", "CreateAttempts") || limited.Can("ManageEndpoint") || limited.Can() {
		t.Errorf("limited: %+v", limited)
	}
	if (access.Principal{Capabilities: []string{}}).Can("ViewBase") {
		t.Error("an empty list allows nothing")
	}
}
