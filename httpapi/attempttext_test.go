package httpapi

import (
	"testing"

	"github.com/herald-webhooks/herald"
)

// TestAttemptResponseText: an attempt without an answer shows why in its
// response; one with an answer that needs words (a redirect not followed)
// shows them on a line before the body; others show the body alone.
func TestAttemptResponseText(t *testing.T) {
	for _, tc := range []struct {
		at   herald.Attempt
		want string
	}{
		{herald.Attempt{Error: "connection refused"}, "connection refused"},
		{herald.Attempt{ResponseStatus: 500, Response: []byte("oops")}, "oops"},
		{herald.Attempt{ResponseStatus: 302, Response: []byte("<a>Found</a>"), Error: `redirected to "https://x.example/": redirects are not followed`},
			"redirected to \"https://x.example/\": redirects are not followed\n\n<a>Found</a>"},
		{herald.Attempt{ResponseStatus: 301, Error: `redirected to "/y": redirects are not followed`},
			"redirected to \"/y\": redirects are not followed"},
	} {
		if got := toAttemptOut(&tc.at, true).Response; got != tc.want {
			t.Errorf("response %q, want %q", got, tc.want)
		}
		if got := toAttemptOut(&tc.at, false).Response; got != "" {
			t.Errorf("without content: response %q", got)
		}
	}
}
