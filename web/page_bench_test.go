package web_test

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/internal/bigstore"
	"github.com/herald-webhooks/herald/web"
)

// BenchmarkConsolePages renders the console's message log, message,
// endpoints and endpoint pages on the store of package bigstore (1,000,000 messages,
// 3,000,000 attempts), on SQLite and on PostgreSQL, through the real API
// in-process as the console serves them:
//
//	HERALD_BIGSTORE=1 HERALD_TEST_POSTGRES_URL=… go test ./web -run '^$' -bench ConsolePages -benchtime 200x
//
// A message log filtered by event type or channel without a time range
// redirects (303) to the last day (`after` = 24 h ago, to the minute): the
// filter pages request the URL the redirect points to, checked against the
// redirect itself. The fixture's messages end when it was built, so for a
// fixture older than a day that window holds no message and reads nothing.
//
// It reports the percentiles of a page's time (p99 is the target) and the
// size of its HTML. It opens one console session on the fixture (a token
// row that expires within the hour).
func BenchmarkConsolePages(b *testing.B) {
	for _, engine := range []struct {
		name string
		open func(testing.TB) *bigstore.Fixture
	}{{"sqlite", bigstore.SQLite}, {"postgres", bigstore.Postgres}} {
		b.Run(engine.name, func(b *testing.B) {
			f := engine.open(b)
			ctx := b.Context()
			hash := sha256.Sum256([]byte("bigstore-console-bench-token"))
			auth := access.NewAuthenticator(f.Store, hash, time.Now)
			committer := ingest.New(f.Store, ingest.Config{})
			b.Cleanup(func() { _ = committer.Close() })
			api, err := httpapi.New(httpapi.Config{Store: f.Store, Messages: committer, AdminTokenHash: hash, Auth: auth})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := web.New(web.Config{API: api, Auth: auth, Store: f.Store})
			if err != nil {
				b.Fatal(err)
			}
			secret, _, err := auth.OpenSession(ctx, access.Bootstrap, "console", time.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			cookie := &http.Cookie{Name: "herald_console", Value: secret}

			n := f.Shape.Messages
			base := "/console/apps/" + url.PathEscape(f.App.ID)
			deep := f.MessageID(b, n/10) // 900,000 messages back from the newest
			var details []string
			for i := range 64 {
				details = append(details, base+"/messages/"+f.MessageID(b, (i*7919+13)%n))
			}
			// The filters as the console's form sends them: without a time
			// range, answered with a 303 to the same filter over the last day.
			filtered := func(kv ...string) string {
				v := url.Values{}
				for i := 0; i+1 < len(kv); i += 2 {
					v.Set(kv[i], kv[i+1])
				}
				return lastDay(b, srv, cookie, base+"/messages", v)
			}
			mid := f.Time(n / 2)
			window := url.Values{ // a day in the middle of the log, as the form sends it
				"after":  {mid.UTC().Format(localInput)},
				"before": {mid.UTC().Add(24 * time.Hour).Format(localInput)},
			}
			pages := []struct {
				name  string
				paths []string
			}{
				{"messages/first", []string{base + "/messages"}},
				{"messages/deep", []string{base + "/messages?iterator=" + deep}},
				{"messages/failed-on-endpoint", []string{base + "/messages?" + url.Values{
					"endpoint": {f.Endpoints[1].ID}, "status": {"2"}}.Encode()}},
				{"messages/type-0.1%-last-day", []string{filtered("event_type", bigstore.EventTypes[len(bigstore.EventTypes)-1].Name)}},
				{"messages/channel-2%-last-day", []string{filtered("channel", bigstore.ChannelRare)}},
				{"messages/window-1d", []string{base + "/messages?" + window.Encode()}},
				{"message", details},
				{"endpoints", []string{base}},
				// 1,000,000 deliveries; the page counts those of the last day.
				{"endpoint", []string{base + "/endpoints/" + url.PathEscape(f.Endpoints[1].ID)}},
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					var (
						times []time.Duration
						size  int
					)
					for b.Loop() {
						path := p.paths[len(times)%len(p.paths)]
						req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
						req.AddCookie(cookie)
						rec := httptest.NewRecorder()
						began := time.Now()
						srv.ServeHTTP(rec, req)
						times = append(times, time.Since(began))
						if rec.Code != http.StatusOK {
							b.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body.Bytes())
						}
						size = rec.Body.Len()
					}
					bigstore.ReportLatencies(b, times)
					b.ReportMetric(float64(size), "html-B")
				})
			}
		})
	}
}

// localInput is the layout of the console's datetime-local fields (UTC),
// in which the message log's redirect writes its `after`.
const localInput = "2006-01-02T15:04"

// lastDay returns the URL of the message log at path filtered by v with
// `after` 24 hours ago, as the console computes it, and checks that the
// console redirects the unwindowed filter there.
func lastDay(b *testing.B, h http.Handler, cookie *http.Cookie, path string, v url.Values) string {
	b.Helper()
	for range 2 { // once more if the minute turned during the request
		before := time.Now().UTC().Add(-24 * time.Hour).Format(localInput)
		req := httptest.NewRequestWithContext(b.Context(), http.MethodGet, path+"?"+v.Encode(), nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := time.Now().UTC().Add(-24 * time.Hour).Format(localInput)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("GET %s?%s: %d, want a redirect to the last day", path, v.Encode(), rec.Code)
		}
		w := url.Values{}
		for k, vs := range v {
			w[k] = vs
		}
		w.Set("after", after)
		want := path + "?" + w.Encode()
		if loc := rec.Header().Get("Location"); loc == want {
			return want
		} else if before == after {
			b.Fatalf("GET %s?%s redirects to %s, want %s", path, v.Encode(), loc, want)
		}
	}
	b.Fatal("the minute turned twice")
	return ""
}
