package destination

import (
	"slices"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://user:pw@host:4222/subj":             "nats://user:xxxxx@host:4222/subj",
		"redis://:p%40ss@host:6379/0?stream=events": "redis://:xxxxx@host:6379/0?stream=events",
		"redis://default@host:6379/0?stream=e":      "redis://default@host:6379/0?stream=e",
		"nats://host:4222/subj":                     "nats://host:4222/subj",
		"https://hooks.example.com/in":              "https://hooks.example.com/in",
		"nats://user:p w%zz@host/subj":              "nats://xxxxx@host/subj", // does not parse
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnredact(t *testing.T) {
	stored := "nats://user:secret@host:4222/a"
	for next, want := range map[string]string{
		"nats://user:xxxxx@host:4222/b":  "nats://user:secret@host:4222/b", // path changed, password kept
		"nats://user:xxxxx@other:4222/a": "nats://user:xxxxx@other:4222/a", // another host: literal
		"nats://bob:xxxxx@host:4222/a":   "nats://bob:xxxxx@host:4222/a",   // another user: literal
		"redis://user:xxxxx@host:4222/a": "redis://user:xxxxx@host:4222/a", // another scheme: literal
		"nats://user:new@host:4222/a":    "nats://user:new@host:4222/a",    // a new password
		"nats://host:4222/a":             "nats://host:4222/a",             // none
	} {
		if got := Unredact(next, stored); got != want {
			t.Errorf("Unredact(%q) = %q, want %q", next, got, want)
		}
	}
}

// TestCheck: every registered scheme's well-formed URL passes; each
// malformed one fails with words naming its problem.
func TestCheck(t *testing.T) {
	for _, ok := range []string{
		"nats://h:4222/a.b.c", "nats://u:p@h/a", "redis://h:6379/0?stream=s", "rediss://u:p@h/?stream=s&maxlen=10", "redis://h?stream=s",
	} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"nats://h:4222":              "needs a subject",
		"nats://h/a.>":               "wildcard",
		"nats://h/a b":               "white space",
		"redis://h/0":                "needs the stream's key",
		"redis://h/x?stream=s":       "database number",
		"redis://h/0?stream=s&foo=1": "unknown query parameter",
		"gopher://h/x":               "unknown URL scheme",
		"nats:opaque":                "needs a host",
		"nats://h:0/a":               "not in 1-65535",
	} {
		err := Check(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want an error containing %q", bad, err, want)
		}
	}
}

func TestKinds(t *testing.T) {
	kinds := Kinds()
	if !slices.IsSorted(kinds) || !slices.Contains(kinds, "nats") || !slices.Contains(kinds, "redis") || slices.Contains(kinds, "rediss") {
		t.Errorf("Kinds() = %v: sorted, one per broker", kinds)
	}
	for scheme, want := range map[string]string{"nats": "nats", "redis": "redis", "rediss": "redis", "https": "http", "": "http"} {
		if got := Kind(scheme); got != want {
			t.Errorf("Kind(%q) = %q, want %q", scheme, got, want)
		}
	}
}
