package bigstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/internal/bigstore"
)

// benchToken is the admin token of the benchmarks' API.
const benchToken = "bigstore-bench-admin-token"

// noMessages is the API's message creator: the benchmarks only read.
type noMessages struct{}

func (noMessages) CreateMessage(context.Context, *herald.Message) (herald.MessageResult, error) {
	return herald.MessageResult{}, errors.New("the bigstore benchmarks post no messages")
}

// newAPI returns the real API handler over the fixture's store.
func newAPI(b *testing.B, f *bigstore.Fixture) http.Handler {
	b.Helper()
	api, err := httpapi.New(httpapi.Config{Store: f.Store, Messages: noMessages{}, AdminTokenHash: sha256.Sum256([]byte(benchToken))})
	if err != nil {
		b.Fatal(err)
	}
	return api
}

// page is what one page of the console asks the API for: the requests of
// iteration n (several for a page that reads several lists).
type page struct {
	name  string
	paths func(n int) []string
}

// one is a page of one fixed request.
func one(name, path string) page {
	return page{name, func(int) []string { return []string{path} }}
}

// each is a page of one request that changes with each iteration.
func each(name string, paths []string) page {
	return page{name, func(n int) []string { return []string{paths[n%len(paths)]} }}
}

// consolePages returns the console's pages on fixture f, as API requests.
func consolePages(b *testing.B, h http.Handler, f *bigstore.Fixture) []page {
	b.Helper()
	n := f.Shape.Messages
	app := "/api/v1/app/" + f.App.ID
	msgs := app + "/msg?limit=50"
	busy, idle := f.Endpoints[1], f.Endpoints[bigstore.Endpoints-1]

	// Messages spread over the whole log, one per iteration, so that a
	// page is not always read from the same cached database pages.
	rng := rand.New(rand.NewPCG(1, 2))
	var spread []string
	for range 256 {
		spread = append(spread, f.MessageID(b, rng.IntN(n)))
	}
	deep := f.MessageID(b, n/10) // 900,000 messages back from the newest

	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	mid := f.Time(n / 2)
	window := func(d time.Duration) string {
		return q("after", mid.Format(time.RFC3339Nano), "before", mid.Add(d).Format(time.RFC3339Nano))
	}
	// The console's event-type and channel filters search the last day
	// (after = 24 h ago, to the minute) unless given a range. The fixture's
	// messages end when it was built: for a fixture older than a day this
	// window is empty.
	lastDay := func(kv ...string) string {
		return msgs + "&" + q(append(kv, "after", time.Now().UTC().Add(-24*time.Hour).Truncate(time.Minute).Format(time.RFC3339))...)
	}
	rare := bigstore.EventTypes[len(bigstore.EventTypes)-1].Name
	// The second page of a time window starts where its first page ends.
	dayNext := iteratorOf(b, h, msgs+"&"+window(24*time.Hour))

	var spreadPages, details, endpointsOf []string
	for _, id := range spread {
		spreadPages = append(spreadPages, msgs+"&iterator="+id)
		details = append(details, app+"/msg/"+id)
	}
	attempts := attemptsOf(app, spread)
	for _, ep := range f.Endpoints {
		endpointsOf = append(endpointsOf, app+"/endpoint/"+ep.ID+"/stats", app+"/attempt/endpoint/"+ep.ID+"?limit=1")
	}
	return []page{
		one("log/first", msgs),
		one("log/deep", msgs+"&iterator="+deep),
		each("log/spread", spreadPages),
		one("log/deep-previous", msgs+"&iterator=-"+deep),
		one("log/type-35%", msgs+"&"+q("event_types", bigstore.EventTypes[0].Name)),
		one("log/type-0.9%", msgs+"&"+q("event_types", bigstore.EventTypes[len(bigstore.EventTypes)-2].Name)),
		one("log/type-0.1%", msgs+"&"+q("event_types", bigstore.EventTypes[len(bigstore.EventTypes)-1].Name)),
		one("log/type-0.1%-deep", msgs+"&"+q("event_types", bigstore.EventTypes[len(bigstore.EventTypes)-1].Name, "iterator", deep)),
		one("log/channel-10%", msgs+"&"+q("channel", bigstore.ChannelCommon)),
		one("log/channel-2%", msgs+"&"+q("channel", bigstore.ChannelRare)),
		one("log/type-0.1%-last-day", lastDay("event_types", rare)),
		one("log/channel-2%-last-day", lastDay("channel", bigstore.ChannelRare)),
		one("log/type-absent-last-day", lastDay("event_types", "svix.ping")),
		one("log/tag-10%", msgs+"&"+q("tag", bigstore.TagCommon)),
		one("log/tag-2%", msgs+"&"+q("tag", bigstore.TagRare)),
		one("log/tag-2%-deep", msgs+"&"+q("tag", bigstore.TagRare, "iterator", deep)),
		one("log/tag-absent", msgs+"&"+q("tag", "absent")),
		one("endpoint-msgs/tag-2%", app+"/endpoint/"+busy.ID+"/msg?limit=50&"+q("tag", bigstore.TagRare)),
		one("endpoint-msgs/tag-2%-failed", app+"/endpoint/"+busy.ID+"/msg?limit=50&status=2&"+q("tag", bigstore.TagRare)),
		one("log/window-1h", msgs+"&"+window(time.Hour)),
		one("log/window-1d", msgs+"&"+window(24*time.Hour)),
		one("log/window-1d-next", msgs+"&"+window(24*time.Hour)+"&iterator="+dayNext),
		one("endpoint-msgs/first", app+"/endpoint/"+busy.ID+"/msg?limit=50"),
		one("endpoint-msgs/failed", app+"/endpoint/"+busy.ID+"/msg?limit=50&status=2"),
		one("endpoint-msgs/failed-deep", app+"/endpoint/"+busy.ID+"/msg?limit=50&status=2&iterator="+deep),
		each("detail/msg", details),
		each("detail/endpoints", appendEach(details, "/endpoint")),
		each("detail/attempts", attempts),
		{"detail/page", func(i int) []string {
			d := details[i%len(details)]
			return []string{d, d + "/endpoint", attempts[i%len(attempts)]}
		}},
		one("endpoints/list", app+"/endpoint?limit=50"),
		one("endpoints/stats-busy", app+"/endpoint/"+busy.ID+"/stats"),
		one("endpoints/stats-idle", app+"/endpoint/"+idle.ID+"/stats"),
		one("endpoints/last-attempt-busy", app+"/attempt/endpoint/"+busy.ID+"?limit=1"),
		one("endpoints/last-attempt-idle", app+"/attempt/endpoint/"+idle.ID+"?limit=1"),
		{"endpoints/page", func(int) []string { return append([]string{app + "/endpoint?limit=50"}, endpointsOf...) }},
		one("endpoints/stats-busy-24h", app+"/endpoint/"+busy.ID+"/stats?"+q("since", f.Time(n-1).Add(-24*time.Hour).Format(time.RFC3339))),

		// Filters that match nothing, or most of the log: their cost grows
		// with the log (run them with a small -benchtime).
		one("worst/type-absent", msgs+"&"+q("event_types", "svix.ping")),
		one("worst/channel-absent", msgs+"&"+q("channel", "nobody")),
		one("worst/after-15d", msgs+"&"+q("after", mid.Format(time.RFC3339Nano))),
		one("worst/window-29d", msgs+"&"+q("after", f.Time(1).Format(time.RFC3339Nano), "before", f.Time(n-2).Format(time.RFC3339Nano))),
	}
}

// appendEach returns each path with suffix appended.
func appendEach(paths []string, suffix string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p + suffix
	}
	return out
}

// attemptsOf returns the attempt list of each message.
func attemptsOf(app string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = app + "/attempt/msg/" + id
	}
	return out
}

// get serves one GET through h and returns the answer's body; anything
// but 200 fails the benchmark.
func get(b *testing.B, h http.Handler, path string) []byte {
	req := httptest.NewRequestWithContext(b.Context(), http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+benchToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

// iteratorOf returns the iterator of the page at path.
func iteratorOf(b *testing.B, h http.Handler, path string) string {
	b.Helper()
	var page struct {
		Iterator *string `json:"iterator"`
		Data     []json.RawMessage
	}
	if err := json.Unmarshal(get(b, h, path), &page); err != nil || page.Iterator == nil || len(page.Data) < 50 {
		b.Fatalf("GET %s: no full page with an iterator (%v)", path, err)
	}
	return *page.Iterator
}

// measure serves a page b.N times and reports the percentiles of its time
// (p99 is the console's target) and the size of its answers.
func measure(b *testing.B, h http.Handler, p page) {
	var (
		times []time.Duration
		bytes int
	)
	for b.Loop() {
		paths := p.paths(len(times))
		began := time.Now()
		size := 0
		for _, path := range paths {
			size += len(get(b, h, path))
		}
		times = append(times, time.Since(began))
		bytes = size
	}
	bigstore.ReportLatencies(b, times)
	b.ReportMetric(float64(bytes), "resp-B")
}

// BenchmarkConsoleAPI serves the API requests the console's message log,
// message and endpoint pages make, on a store of 1,000,000 messages and
// 3,000,000 attempts (package bigstore), on SQLite and on PostgreSQL:
//
//	HERALD_BIGSTORE=1 HERALD_TEST_POSTGRES_URL=… go test ./internal/bigstore -run '^$' \
//		-bench 'ConsoleAPI/./(log|endpoint-msgs|detail)/' -benchtime 200x
//
// The endpoints/ and worst/ pages take up to seconds each: run them with
// -benchtime 20x and 5x. A page reads from a warm cache after its first
// iteration; the spread and detail pages read a different part of the log
// each time.
func BenchmarkConsoleAPI(b *testing.B) {
	for _, engine := range []struct {
		name string
		open func(testing.TB) *bigstore.Fixture
	}{{"sqlite", bigstore.SQLite}, {"postgres", bigstore.Postgres}} {
		b.Run(engine.name, func(b *testing.B) {
			f := engine.open(b)
			if f.Built > 0 {
				b.Logf("built the %s fixture in %s", engine.name, f.Built.Round(time.Second))
			}
			h := newAPI(b, f)
			for _, p := range consolePages(b, h, f) {
				b.Run(p.name, func(b *testing.B) { measure(b, h, p) })
			}
		})
	}
}
