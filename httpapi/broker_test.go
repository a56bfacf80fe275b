package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBrokerEndpointURLs: broker URLs (Herald extension) are checked by
// destination.Check on POST, PUT and PATCH: a malformed one is a 422 at
// body.url whose detail names the problem, and nothing is stored. A
// private or loopback broker host is refused as an HTTP one is unless
// AllowPrivateTargets; well-formed public ones are accepted.
func TestBrokerEndpointURLs(t *testing.T) {
	malformed := map[string]string{
		"nats://nats.example.com:4222":                               "needs a subject",
		"nats://nats.example.com:4222/":                              "needs a subject",
		"nats://nats.example.com:4222/orders.*":                      "wildcard",
		"nats://nats.example.com:4222/orders..created":               "empty token",
		"nats://nats.example.com:4222/orders?x=1":                    "takes no query",
		"nats:///orders":                                             "needs a host",
		"nats://nats.example.com:99999/orders":                       "not in 1-65535",
		"redis://redis.example.com:6379/0":                           "needs the stream's key",
		"redis://redis.example.com:6379/zero?stream=events":          "database number",
		"redis://redis.example.com:6379/0?stream=events&maxlen=-5":   "maxlen is a positive whole number",
		"redis://redis.example.com:6379/0?stream=events&maxlen=many": "maxlen is a positive whole number",
		"rediss://redis.example.com:6380/0?stream=a&stream=b":        "given 2 times",
		"redis://redis.example.com:6379/0?stream=a&block=1":          `unknown query parameter "block"`,
		"redis://redis.example.com:6379/0?stream=a#frag":             "no fragment",
		"ftp://files.example.com/x":                                  "http or https URL is required, or a broker's (",
	}
	ts := newTestServer(t, func(c *Config) { c.AllowPrivateTargets = false })
	createApp(t, ts, `{"name":"A","uid":"a"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/a/endpoint", `{"url":"https://hooks.example.com/in"}`)
	for u, want := range malformed {
		before := dumpStore(t, ts.Store)
		for _, call := range []struct{ method, path string }{
			{"POST", "/api/v1/app/a/endpoint"},
			{"PUT", "/api/v1/app/a/endpoint/" + ep.ID},
			{"PATCH", "/api/v1/app/a/endpoint/" + ep.ID},
		} {
			items := validationOut(t, ts.call(t, call.method, call.path, `{"url":"`+u+`"}`))
			if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"body", "url"}) || !strings.Contains(items[0].Msg, want) {
				t.Errorf("%s %s: 422 items %+v, want one at body.url containing %q", call.method, u, items, want)
			}
		}
		checkUnchanged(t, ts.Store, before, u)
	}

	private := []string{"nats://127.0.0.1:4222/orders", "redis://localhost:6379/0?stream=events", "rediss://10.1.2.3:6380/0?stream=e",
		"amqp://u:p@192.168.1.2/?exchange=x&routing_key=k",
		// Every seed of a Kafka list is judged, not only the first.
		"kafka://kafka.example.com:9092,10.0.0.7:9092/orders", "kafka://127.0.0.1:9092,127.0.0.1:9093/orders"}
	for _, u := range private {
		before := dumpStore(t, ts.Store)
		items := validationOut(t, ts.call(t, "POST", "/api/v1/app/a/endpoint", `{"url":"`+u+`"}`))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"body", "url"}) || !strings.Contains(items[0].Msg, "--allow-private-targets") {
			t.Errorf("%s: 422 items %+v, want a private-host refusal", u, items)
		}
		checkUnchanged(t, ts.Store, before, u)
	}
	for _, u := range []string{"nats://nats.example.com:4222/orders.created", "redis://redis.example.com:6379/2?stream=events&maxlen=1000", "rediss://redis.example.com/?stream=events",
		"kafka://k1.example.com:9092,k2.example.com:9092/orders", "amqp://u:p@mq.example.com/?exchange=x&routing_key=k"} {
		ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/a/endpoint", `{"url":"`+u+`"}`)
	}
	open := newTestServer(t, func(c *Config) { c.AllowPrivateTargets = true })
	createApp(t, open, `{"name":"A","uid":"a"}`)
	for _, u := range private {
		open.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/a/endpoint", `{"url":"`+u+`"}`)
	}
}

// TestBrokerURLPasswordMasked: a broker URL's password is never in an API
// answer (create, get, list, update) nor the API's log; the store keeps
// it. A PUT or PATCH sending the masked URL back keeps the stored
// password; the masked URL with another host does not carry it there;
// a new password replaces it.
func TestBrokerURLPasswordMasked(t *testing.T) {
	const password = "s3cret-api-9d2f"
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"A","uid":"a"}`)
	full := "nats://herald:" + password + "@nats.example.com:4222/orders"
	masked := "nats://herald:xxxxx@nats.example.com:4222/orders"
	var ep endpointOut
	var answers []string
	res := ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/a/endpoint", `{"url":"`+full+`","description":"broker"}`)
	answers = append(answers, string(res.Body))
	if ep.URL != masked {
		t.Fatalf("created URL %q, want %q", ep.URL, masked)
	}
	stored := func() string {
		t.Helper()
		e, err := ts.Store.GetEndpoint(t.Context(), appID, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		return e.URL
	}
	if got := stored(); got != full {
		t.Fatalf("stored URL %q, want %q", got, full)
	}
	path := "/api/v1/app/a/endpoint/" + ep.ID
	answers = append(answers,
		string(ts.mustCall(t, http.StatusOK, nil, "GET", path, "").Body),
		string(ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/a/endpoint", "").Body),
		string(ts.mustCall(t, http.StatusOK, nil, "PATCH", path, `{"description":"renamed"}`).Body),
		string(ts.mustCall(t, http.StatusOK, nil, "PUT", path, `{"url":"`+masked+`","description":"put back"}`).Body),
		string(ts.mustCall(t, http.StatusOK, nil, "PATCH", path, `{"url":"nats://herald:xxxxx@nats.example.com:4222/orders.v2"}`).Body),
	)
	if got, want := stored(), "nats://herald:"+password+"@nats.example.com:4222/orders.v2"; got != want {
		t.Fatalf("after sending the masked URL back: stored %q, want %q", got, want)
	}
	for i, a := range answers {
		if strings.Contains(a, password) {
			t.Errorf("answer %d holds the password: %s", i, a)
		}
	}
	if strings.Contains(ts.logs.String(), password) {
		t.Error("the API's log holds the password")
	}
	// The masked URL with another host is taken literally.
	ts.mustCall(t, http.StatusOK, nil, "PATCH", path, `{"url":"nats://herald:xxxxx@other.example.com:4222/orders"}`)
	if got := stored(); got != "nats://herald:xxxxx@other.example.com:4222/orders" {
		t.Fatalf("masked URL to another host: stored %q", got)
	}
	ts.mustCall(t, http.StatusOK, nil, "PATCH", path, `{"url":"nats://herald:new-pw@nats.example.com:4222/orders"}`)
	if got := stored(); got != "nats://herald:new-pw@nats.example.com:4222/orders" {
		t.Fatalf("new password: stored %q", got)
	}
}
