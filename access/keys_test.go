package access

import (
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// TestParseScope: "admin" and "app:<ref>" only, spelt exactly; Scope
// writes a stored token's back.
func TestParseScope(t *testing.T) {
	for s, want := range map[string]string{"admin": "", "app:acme": "acme", "app:app_2VZ7Qm3k4wQpXxYz1": "app_2VZ7Qm3k4wQpXxYz1"} {
		if ref, ok := ParseScope(s); !ok || ref != want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", s, ref, ok, want)
		}
	}
	for _, s := range []string{"", "Admin", "admin ", "app:", "app", "APP:acme", "app:a b", "app:a\x00", "app:a\x7f", "application:acme", "root"} {
		if ref, ok := ParseScope(s); ok {
			t.Errorf("ParseScope(%q) = %q, accepted", s, ref)
		}
	}
	if got := Scope(&herald.Token{}); got != "admin" {
		t.Errorf("Scope(admin token) = %q", got)
	}
	if got := Scope(&herald.Token{AppID: "app_1"}); got != "app:app_1" {
		t.Errorf("Scope(app token) = %q", got)
	}
	if Expires(&herald.Token{ExpiresAt: herald.NeverExpires}) || !Expires(&herald.Token{ExpiresAt: time.Now()}) {
		t.Error("Expires wrong around NeverExpires")
	}
	if !(&herald.Token{ExpiresAt: herald.NeverExpires}).Active(time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a token that never expires is not active in the year 9000")
	}
}
