package access

import (
	"strings"

	"github.com/herald-webhooks/herald"
)

// API key scopes, as the API and the CLI write them: ScopeAdmin (every
// route) or ScopeAppPrefix followed by an application's ID or uid (that
// application's routes). Read-only is a flag beside the scope.
const (
	ScopeAdmin     = "admin"
	ScopeAppPrefix = "app:"
)

// ParseScope reads an API key's scope. It returns the application
// reference of an "app:" scope ("" for admin), and ok false when s is
// neither form.
func ParseScope(s string) (appRef string, ok bool) {
	if s == ScopeAdmin {
		return "", true
	}
	ref, found := strings.CutPrefix(s, ScopeAppPrefix)
	if !found || ref == "" || strings.ContainsFunc(ref, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", false
	}
	return ref, true
}

// Scope is the scope of a stored token: "admin" or "app:" and the ID of
// its application.
func Scope(t *herald.Token) string {
	if t.AppID == "" {
		return ScopeAdmin
	}
	return ScopeAppPrefix + t.AppID
}

// Expires reports whether t ends at a time of its own (an API key may be
// made without one: see herald.NeverExpires).
func Expires(t *herald.Token) bool {
	return t.ExpiresAt.Before(herald.NeverExpires)
}
