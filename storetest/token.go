package storetest

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

var tokenTests = []namedTest{
	{"CreateAndGet", testTokenCreateAndGet},
	{"Conflict", testTokenConflict},
	{"NotFound", testTokenNotFound},
	{"List", testTokenList},
	{"Revoke", testTokenRevoke},
	{"ExpireAppTokens", testTokenExpireAppTokens},
	{"Touch", testTokenTouch},
	{"DeleteExpired", testTokenDeleteExpired},
	{"ApplicationCascades", testTokenApplicationCascades},
}

// subMicro is sub-microsecond digits the store truncates.
const subMicro = 123456789 * time.Nanosecond

// tokenHash returns the hash of token n's secret; it holds a zero byte, as
// any hash may.
func tokenHash(n int) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "secret-%d", n))
	sum[7] = 0
	return sum[:]
}

// newToken returns a token of kind made at(n), with an ID of that moment,
// for application appID ("" for admin scope), expiring an hour later.
func newToken(kind herald.TokenKind, n int, appID string) *herald.Token {
	return &herald.Token{
		ID:        id(herald.PrefixToken, n),
		Kind:      kind,
		Hash:      tokenHash(n),
		Name:      fmt.Sprintf("%s %d", kind, n),
		AppID:     appID,
		CreatedAt: at(n),
		ExpiresAt: at(n).Add(time.Hour),
	}
}

// newSession returns a session made at(n) opened with parent.
func newSession(n int, parent *herald.Token) *herald.Token {
	t := newToken(herald.TokenSession, n, parent.AppID)
	t.Parent = parent.ID
	t.ReadOnly = parent.ReadOnly
	return t
}

// mustCreateToken stores tok and returns it.
func mustCreateToken(t *testing.T, s herald.Store, tok *herald.Token) *herald.Token {
	t.Helper()
	mustOK(t, "CreateToken "+tok.ID, s.CreateToken(t.Context(), tok))
	return tok
}

// mustGetToken returns the token whose secret hashes to hash.
func mustGetToken(t *testing.T, s herald.Store, hash []byte) *herald.Token {
	t.Helper()
	got, err := s.GetTokenByHash(t.Context(), hash)
	mustOK(t, "GetTokenByHash", err)
	return got
}

// mustTokenGone fails unless no token has tok's hash.
func mustTokenGone(t *testing.T, s herald.Store, what string, tok *herald.Token) {
	t.Helper()
	_, err := s.GetTokenByHash(t.Context(), tok.Hash)
	mustCode(t, what+": GetTokenByHash "+tok.ID, err, herald.ENOTFOUND)
}

// stored returns tok as the store keeps it: times truncated to the
// microsecond.
func stored(tok *herald.Token) *herald.Token {
	c := *tok
	for _, tp := range []*time.Time{&c.CreatedAt, &c.ExpiresAt, &c.LastUsedAt, &c.RevokedAt} {
		*tp = tp.Truncate(time.Microsecond)
	}
	return &c
}

// mustTokens fails unless each token is stored as want says.
func mustTokens(t *testing.T, s herald.Store, what string, want ...*herald.Token) {
	t.Helper()
	for _, tok := range want {
		mustEqual(t, what+": "+tok.Name, stored(tok), mustGetToken(t, s, tok.Hash))
	}
}

func testTokenCreateAndGet(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	full := newToken(herald.TokenPortal, 10, app.ID)
	full.Name = "app-portal customer-42 «Zoë»"
	full.ReadOnly = true
	full.SessionID = "customer-42"
	full.Capabilities = []string{"ViewBase", "CreateAttempts"}
	full.CreatedAt = full.CreatedAt.Add(subMicro)
	full.ExpiresAt = full.ExpiresAt.Add(subMicro)
	full.LastUsedAt = at(20).Add(subMicro)
	full.RevokedAt = at(30).Add(subMicro)
	key := newToken(herald.TokenKey, 11, "") // admin scope, never used
	session := newSession(12, full)
	adminSession := newToken(herald.TokenSession, 13, "") // opened with the bootstrap token
	// No capability at all is not the same as no limit.
	viewNothing := newToken(herald.TokenPortal, 14, app.ID)
	viewNothing.Capabilities = []string{}
	for _, tok := range []*herald.Token{full, key, session, adminSession, viewNothing} {
		mustCreateToken(t, s, tok)
	}
	mustTokens(t, s, "get by hash", full, key, session, adminSession, viewNothing)
	for _, tok := range []*herald.Token{full, session} {
		got, err := s.GetToken(t.Context(), tok.ID)
		mustOK(t, "GetToken "+tok.ID, err)
		mustEqual(t, "get by ID: "+tok.Name, stored(tok), got)
	}
	_, err := s.GetToken(t.Context(), "tok_unknown")
	mustCode(t, "GetToken unknown", err, herald.ENOTFOUND)
	if caps := mustGetToken(t, s, viewNothing.Hash).Capabilities; caps == nil || len(caps) != 0 {
		t.Errorf("empty capabilities read back as %#v", caps)
	}
	if caps := mustGetToken(t, s, key.Hash).Capabilities; caps != nil {
		t.Errorf("no limit read back as %#v", caps)
	}
	got := mustGetToken(t, s, full.Hash)
	if got.Active(at(25)) {
		t.Errorf("revoked token active")
	}
	if !mustGetToken(t, s, key.Hash).Active(at(11)) || mustGetToken(t, s, key.Hash).Active(key.ExpiresAt) {
		t.Errorf("key's Active around its expiry is wrong")
	}
}

func testTokenConflict(t *testing.T, s herald.Store) {
	first := mustCreateToken(t, s, newToken(herald.TokenKey, 1, ""))

	dupHash := newToken(herald.TokenKey, 2, "")
	dupHash.Hash = tokenHash(1)
	mustCode(t, "create with taken hash", s.CreateToken(t.Context(), dupHash), herald.ECONFLICT)
	dupID := newToken(herald.TokenKey, 3, "")
	dupID.ID = first.ID
	mustCode(t, "create with taken ID", s.CreateToken(t.Context(), dupID), herald.ECONFLICT)
	mustTokenGone(t, s, "refused token", dupID)
	mustTokens(t, s, "first token unchanged", first)
}

func testTokenNotFound(t *testing.T, s herald.Store) {
	ctx := t.Context()
	_, err := s.GetTokenByHash(ctx, tokenHash(1))
	mustCode(t, "get unknown hash", err, herald.ENOTFOUND)
	_, err = s.GetTokenByHash(ctx, nil)
	mustCode(t, "get empty hash", err, herald.ENOTFOUND)

	orphan := newToken(herald.TokenPortal, 2, id(herald.PrefixApplication, 2))
	mustCode(t, "create for unknown app", s.CreateToken(ctx, orphan), herald.ENOTFOUND)
	mustTokenGone(t, s, "refused token", orphan)
	// A session of a token that does not exist (swept meanwhile) could never
	// be ended by revoking its parent: it is refused too.
	lost := newSession(3, newToken(herald.TokenPortal, 4, ""))
	mustCode(t, "create session of unknown parent", s.CreateToken(ctx, lost), herald.ENOTFOUND)
	mustTokenGone(t, s, "refused session", lost)

	mustCode(t, "revoke unknown", s.RevokeToken(ctx, id(herald.PrefixToken, 5), at(5)), herald.ENOTFOUND)
	// Touching a token deleted meanwhile says so, as other verbs do.
	mustCode(t, "touch unknown", s.TouchToken(ctx, id(herald.PrefixToken, 5), at(5)), herald.ENOTFOUND)
}

func testTokenList(t *testing.T, s herald.Store) {
	appA := mustCreateApp(t, s, newApp(1))
	appB := mustCreateApp(t, s, newApp(2))
	// Seven portal tokens of A, and among them tokens of other kinds and
	// of B, so every filter has rows to skip.
	const n = 2*pageSize + 1
	portalsA := make([]*herald.Token, n)
	for i := range n {
		portalsA[i] = newToken(herald.TokenPortal, 100+10*i, appA.ID)
	}
	var others []*herald.Token
	for i := range n {
		others = append(others,
			newToken(herald.TokenPortal, 101+10*i, appB.ID),
			newToken(herald.TokenKey, 102+10*i, ""),
			newSession(103+10*i, portalsA[i]),
		)
	}
	others = append(others, newToken(herald.TokenKey, 99, appA.ID))
	// Created out of ID order, so a store that lists by insertion order
	// fails.
	for _, i := range creationOrder {
		mustCreateToken(t, s, portalsA[i])
	}
	for i := len(others) - 1; i >= 0; i-- {
		mustCreateToken(t, s, others[i])
	}

	all := append(append([]*herald.Token{}, portalsA...), others...)
	// ids returns the sorted IDs of the tokens keep keeps.
	ids := func(keep func(*herald.Token) bool) []string {
		var out []string
		for _, tok := range all {
			if keep(tok) {
				out = append(out, tok.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		name string
		opts herald.TokenListOptions
		keep func(*herald.Token) bool
	}{
		{"All", herald.TokenListOptions{}, func(*herald.Token) bool { return true }},
		{"Kind", herald.TokenListOptions{Kind: herald.TokenPortal},
			func(tok *herald.Token) bool { return tok.Kind == herald.TokenPortal }},
		{"App", herald.TokenListOptions{AppID: appA.ID},
			func(tok *herald.Token) bool { return tok.AppID == appA.ID }},
		{"KindAndApp", herald.TokenListOptions{Kind: herald.TokenPortal, AppID: appA.ID},
			func(tok *herald.Token) bool { return tok.Kind == herald.TokenPortal && tok.AppID == appA.ID }},
		{"Keys", herald.TokenListOptions{Kind: herald.TokenKey},
			func(tok *herald.Token) bool { return tok.Kind == herald.TokenKey }},
	}
	for _, c := range cases {
		want := ids(c.keep)
		for _, o := range orders {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				exp := want
				if o.order == herald.Descending {
					exp = reversed(want)
				}
				mustWalk(t, "token IDs", exp, func(cursor string) ([]*herald.Token, error) {
					opts := c.opts
					opts.ListOptions = herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order}
					return s.ListTokens(t.Context(), opts)
				}, func(tok *herald.Token) string { return tok.ID })
			})
		}
	}

	// Rows come back whole, not just their IDs.
	page, err := s.ListTokens(t.Context(), herald.TokenListOptions{AppID: appA.ID, Kind: herald.TokenSession,
		ListOptions: herald.ListOptions{Limit: 1}})
	mustOK(t, "list first session", err)
	mustEqual(t, "listed row", []*herald.Token{others[2]}, page)
	page, err = s.ListTokens(t.Context(), herald.TokenListOptions{AppID: appB.ID, Kind: herald.TokenKey})
	mustOK(t, "list keys of B", err)
	mustEqual(t, "keys of B", []*herald.Token(nil), page)
}

func testTokenRevoke(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	portal := mustCreateToken(t, s, newToken(herald.TokenPortal, 10, app.ID))
	open := mustCreateToken(t, s, newSession(11, portal))
	loggedOut := newSession(12, portal)
	loggedOut.RevokedAt = at(13)
	mustCreateToken(t, s, loggedOut)
	other := mustCreateToken(t, s, newToken(herald.TokenPortal, 20, app.ID))
	otherSession := mustCreateToken(t, s, newSession(21, other))

	now := at(100).Add(subMicro)
	mustOK(t, "revoke", s.RevokeToken(ctx, portal.ID, now))
	portal.RevokedAt = now
	open.RevokedAt = now
	mustTokens(t, s, "revoked", portal, open)
	// A session revoked before keeps its time; another token's are
	// untouched.
	mustTokens(t, s, "kept", loggedOut, other, otherSession)

	// Revoking twice keeps the first time.
	mustOK(t, "revoke again", s.RevokeToken(ctx, portal.ID, at(200)))
	mustTokens(t, s, "revoked twice", portal, open, loggedOut)

	// Revoking a session ends it alone.
	mustOK(t, "revoke session", s.RevokeToken(ctx, otherSession.ID, at(300)))
	otherSession.RevokedAt = at(300)
	mustTokens(t, s, "session revoked", otherSession, other)
}

func testTokenExpireAppTokens(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	otherApp := mustCreateApp(t, s, newApp(2))
	expiring := func(tok *herald.Token, n int) *herald.Token {
		tok.ExpiresAt = at(n)
		return tok
	}
	labelled := func(tok *herald.Token, sessionID string) *herald.Token {
		tok.SessionID = sessionID
		return tok
	}
	p1 := labelled(expiring(newToken(herald.TokenPortal, 10, app.ID), 1000), "s1")
	p2 := labelled(expiring(newToken(herald.TokenPortal, 11, app.ID), 1000), "s2")
	p3 := expiring(newToken(herald.TokenPortal, 12, app.ID), 1000)
	// p4 expires before any expire-all below; its session, stored with a
	// later expiry, is brought forward all the same.
	p4 := labelled(expiring(newToken(herald.TokenPortal, 13, app.ID), 50), "s1")
	sp1 := expiring(newSession(14, p1), 1000)
	sp4 := expiring(newSession(15, p4), 1000)
	key := expiring(newToken(herald.TokenKey, 16, app.ID), 1000)
	keySession := expiring(newSession(17, key), 1000)
	foreign := labelled(expiring(newToken(herald.TokenPortal, 18, otherApp.ID), 1000), "s1")
	admin := expiring(newToken(herald.TokenSession, 19, ""), 1000)
	for _, tok := range []*herald.Token{p1, p2, p3, p4, sp1, sp4, key, keySession, foreign, admin} {
		mustCreateToken(t, s, tok)
	}
	expire := func(sessionIDs []string, when time.Time, want int) {
		t.Helper()
		n, err := s.ExpireAppTokens(ctx, app.ID, sessionIDs, when)
		mustOK(t, "ExpireAppTokens", err)
		// The count is of every row changed, sessions included: they are
		// tokens too.
		if n != want {
			t.Fatalf("ExpireAppTokens(%v, %v) changed %d tokens, want %d", sessionIDs, when, n, want)
		}
	}

	// Only the tokens labelled s1 and their sessions.
	first := at(500).Add(subMicro)
	expire([]string{"s1", "unknown"}, first, 3)
	p1.ExpiresAt, sp1.ExpiresAt, sp4.ExpiresAt = first, first, first
	mustTokens(t, s, "s1 expired", p1, sp1, sp4)
	mustTokens(t, s, "others kept", p2, p3, p4, key, keySession, foreign, admin)

	// Every portal token of the application; none is given a later expiry.
	second := at(600)
	expire(nil, second, 2)
	p2.ExpiresAt, p3.ExpiresAt = second, second
	mustTokens(t, s, "all expired", p1, p2, p3, p4, sp1, sp4)
	mustTokens(t, s, "non-portal and other apps kept", key, keySession, foreign, admin)

	// Never extended.
	expire(nil, at(700), 0)
	expire([]string{"s2"}, at(700), 0)
	mustTokens(t, s, "not extended", p1, p2, p3, p4, sp1, sp4)
}

func testTokenTouch(t *testing.T, s herald.Store) {
	ctx := t.Context()
	used := mustCreateToken(t, s, newToken(herald.TokenKey, 1, ""))
	idle := mustCreateToken(t, s, newToken(herald.TokenKey, 2, ""))
	for _, when := range []time.Time{at(10).Add(subMicro), at(20)} {
		mustOK(t, "touch", s.TouchToken(ctx, used.ID, when))
		used.LastUsedAt = when
		mustTokens(t, s, "touched", used, idle)
	}
}

func testTokenDeleteExpired(t *testing.T, s herald.Store) {
	ctx := t.Context()
	before := at(100)
	live := newToken(herald.TokenPortal, 1, "")
	live.ExpiresAt = at(1000)
	mustCreateToken(t, s, live)
	var doomed []*herald.Token
	for i := range 4 { // expired before before
		tok := newToken(herald.TokenKey, 10+i, "")
		tok.ExpiresAt = at(50 + i)
		doomed = append(doomed, mustCreateToken(t, s, tok))
	}
	revoked := newToken(herald.TokenKey, 20, "") // revoked before before, expiring long after
	revoked.ExpiresAt, revoked.RevokedAt = at(1000), at(99)
	expiredSession := newSession(21, live)
	expiredSession.ExpiresAt = at(30)
	doomed = append(doomed, mustCreateToken(t, s, revoked), mustCreateToken(t, s, expiredSession))
	// A live session of an expired token goes with it, uncounted.
	orphaned := newSession(22, doomed[0])
	orphaned.ExpiresAt = at(1000)
	mustCreateToken(t, s, orphaned)

	// "before" is exclusive; revoked after it or not expired, they stay.
	atBound := newToken(herald.TokenKey, 30, "")
	atBound.ExpiresAt = before
	revokedAtBound := newToken(herald.TokenKey, 31, "")
	revokedAtBound.ExpiresAt, revokedAtBound.RevokedAt = at(1000), before
	revokedLater := newToken(herald.TokenKey, 32, "")
	revokedLater.ExpiresAt, revokedLater.RevokedAt = at(1000), at(150)
	kept := []*herald.Token{live, atBound, revokedAtBound, revokedLater}
	for _, tok := range kept[1:] {
		mustCreateToken(t, s, tok)
	}

	n, err := s.DeleteExpiredTokens(ctx, before, 0)
	mustCount(t, "DeleteExpiredTokens(limit 0)", 0, n, err)
	for _, step := range []struct{ limit, want int }{{4, 4}, {10, 2}, {10, 0}} {
		n, err := s.DeleteExpiredTokens(ctx, before, step.limit)
		mustCount(t, fmt.Sprintf("DeleteExpiredTokens(limit %d)", step.limit), step.want, n, err)
	}
	for _, tok := range append(doomed, orphaned) {
		mustTokenGone(t, s, "deleted", tok)
	}
	mustTokens(t, s, "kept", kept...)
}

func testTokenApplicationCascades(t *testing.T, s herald.Store) {
	ctx := t.Context()
	doomed := mustCreateApp(t, s, newApp(1))
	survivor := mustCreateApp(t, s, newApp(2))
	portal := mustCreateToken(t, s, newToken(herald.TokenPortal, 10, doomed.ID))
	key := mustCreateToken(t, s, newToken(herald.TokenKey, 11, doomed.ID))
	session := mustCreateToken(t, s, newSession(12, portal))
	// A session whose own AppID is unset still goes with its parent.
	unscoped := newSession(13, portal)
	unscoped.AppID = ""
	mustCreateToken(t, s, unscoped)
	kept := []*herald.Token{
		mustCreateToken(t, s, newToken(herald.TokenPortal, 20, survivor.ID)),
		mustCreateToken(t, s, newToken(herald.TokenKey, 21, "")),
		mustCreateToken(t, s, newToken(herald.TokenSession, 22, "")),
	}

	mustOK(t, "delete application", s.DeleteApplication(ctx, doomed.ID))
	for _, tok := range []*herald.Token{portal, key, session, unscoped} {
		mustTokenGone(t, s, "token of deleted app", tok)
	}
	list, err := s.ListTokens(ctx, herald.TokenListOptions{AppID: doomed.ID, ListOptions: herald.ListOptions{Limit: 10}})
	mustEmptyOrNotFound(t, "tokens of deleted app", len(list), err)
	mustTokens(t, s, "other tokens kept", kept...)
}
