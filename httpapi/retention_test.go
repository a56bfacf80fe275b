package httpapi

import (
	"net/http"
	"testing"
	"time"
)

// A message's payloadRetentionHours or payloadRetentionPeriod sets when
// the cleaner may drop its payload; without either the payload lives as
// long as the message.
func TestPayloadRetention(t *testing.T) {
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"App"}`) // no endpoints: nothing pending holds a payload
	ids := map[string]string{}
	for name, body := range map[string]string{
		"hours":   `{"eventType":"a","payload":{"k":"hours"},"payloadRetentionHours":2}`,
		"days":    `{"eventType":"a","payload":{"k":"days"},"payloadRetentionPeriod":5}`,
		"both":    `{"eventType":"a","payload":{"k":"both"},"payloadRetentionPeriod":90,"payloadRetentionHours":1}`,
		"forever": `{"eventType":"a","payload":{"k":"forever"}}`,
	} {
		var out messageOut
		ts.mustCall(t, http.StatusAccepted, &out, "POST", "/api/v1/app/"+appID+"/msg", body)
		ids[name] = out.ID
	}
	created := ts.Clock.Now()
	expired := func(name string) bool {
		t.Helper()
		var out messageOut
		ts.mustCall(t, http.StatusOK, &out, "GET", "/api/v1/app/"+appID+"/msg/"+ids[name], "")
		return string(out.Payload) == string(emptyPayload)
	}
	for _, step := range []struct {
		at   time.Duration
		want int
		gone []string
	}{
		{59 * time.Minute, 0, nil},
		{time.Hour, 1, []string{"both"}}, // hours win over days
		{2 * time.Hour, 1, []string{"both", "hours"}},
		{5 * 24 * time.Hour, 1, []string{"both", "hours", "days"}},
		{10 * 365 * 24 * time.Hour, 0, []string{"both", "hours", "days"}},
	} {
		n, err := ts.Store.ExpirePayloads(t.Context(), created.Add(step.at), 100)
		if err != nil || n != step.want {
			t.Fatalf("ExpirePayloads at +%s = %d, %v; want %d", step.at, n, err, step.want)
		}
		gone := map[string]bool{}
		for _, name := range step.gone {
			gone[name] = true
		}
		for name := range ids {
			if expired(name) != gone[name] {
				t.Fatalf("at +%s: payload of %q expired = %v, want %v", step.at, name, !gone[name], gone[name])
			}
		}
	}
}
