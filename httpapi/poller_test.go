package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// sdkConsumer is one consumer of a polling endpoint driven through the
// Svix SDK as its documentation says: poll, process the page, come back
// with the page's iterator (which acknowledges it).
type sdkConsumer struct {
	client     *svix.Svix
	app, sink  string
	id         string
	iterator   *string
	seen       []string
	limit      uint64
	pageCounts []int
}

// next polls one page, records its messages and keeps its iterator for
// the next call.
func (c *sdkConsumer) next(t *testing.T) *models.PollingEndpointOut {
	t.Helper()
	out, err := c.client.Message.Poller.ConsumerPoll(t.Context(), c.app, c.sink, c.id,
		&svix.MessagePollerConsumerPollOptions{Limit: &c.limit, Iterator: c.iterator})
	mustNoErr(t, "ConsumerPoll "+c.id, err)
	if uint64(len(out.Data)) > c.limit {
		t.Fatalf("%s: page of %d, limit %d", c.id, len(out.Data), c.limit)
	}
	for _, m := range out.Data {
		c.seen = append(c.seen, m.Id)
	}
	c.pageCounts = append(c.pageCounts, len(out.Data))
	it := out.Iterator
	c.iterator = &it
	return out
}

// until polls until the consumer has seen n messages in all. On
// PostgreSQL a message is readable once every older transaction ended
// (another test's included), so an empty page is polled again.
func (c *sdkConsumer) until(t *testing.T, n int) {
	t.Helper()
	for try := 0; len(c.seen) < n; try++ {
		if try == 2000 {
			t.Fatalf("%s saw %d messages, want %d: %v", c.id, len(c.seen), n, c.seen)
		}
		if out := c.next(t); len(out.Data) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// untilSeen polls until the consumer has seen the message id.
func (c *sdkConsumer) untilSeen(t *testing.T, id string) {
	t.Helper()
	for !slices.Contains(c.seen, id) {
		c.until(t, len(c.seen)+1)
	}
}

// postMessages posts n messages of eventType through the SDK, the clock a
// second apart, and returns them.
func postMessages(t *testing.T, ts *testServer, client *svix.Svix, app string, n int, eventType string, channels []string) []*models.MessageOut {
	t.Helper()
	var out []*models.MessageOut
	for i := range n {
		ts.Clock.Add(time.Second)
		m, err := client.Message.Create(t.Context(), app, models.MessageIn{EventType: eventType, Payload: map[string]any{"i": i}, Channels: channels}, nil)
		mustNoErr(t, "create message", err)
		out = append(out, m)
	}
	return out
}

func msgIDs(msgs []*models.MessageOut) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Id
	}
	return out
}

// TestSDKPollingConsumers: a polling endpoint (poller://) gets no
// deliveries; two consumers each see every message exactly once, in the
// order posted, acknowledging with the iterator; a consumer that does not
// acknowledge gets the same page again; a seek moves one consumer only.
func TestSDKPollingConsumers(t *testing.T) {
	onEachEngine(t, func(t *testing.T, ts *testServer) {
		client := ts.sdk(t, ts.Token)
		ctx := t.Context()
		app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "poll"}, nil)
		mustNoErr(t, "create app", err)
		web, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook"}, nil)
		mustNoErr(t, "create endpoint", err)
		sink, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: herald.PollerURL, Uid: ptr("sink")}, nil)
		mustNoErr(t, "create polling endpoint", err)
		if sink.Url != herald.PollerURL {
			t.Fatalf("polling endpoint URL %q", sink.Url)
		}

		msgs := postMessages(t, ts, client, app.Id, 7, "user.created", nil)
		want := msgIDs(msgs)
		// Deliveries: the HTTP endpoint's only.
		for _, m := range msgs {
			dests, err := client.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, m.Id, nil)
			mustNoErr(t, "attempted destinations", err)
			if len(dests.Data) != 1 || dests.Data[0].Id != web.Id {
				t.Fatalf("message %s routed to %+v, want only %s", m.Id, dests.Data, web.Id)
			}
		}

		c1 := &sdkConsumer{client: client, app: app.Id, sink: "sink", id: "c1", limit: 3}
		c2 := &sdkConsumer{client: client, app: app.Id, sink: sink.Id, id: "c2", limit: 2}
		// Interleaved, each at its own pace.
		for len(c1.seen) < len(want) || len(c2.seen) < len(want) {
			if len(c1.seen) < len(want) {
				c1.until(t, len(c1.seen)+1)
			}
			if len(c2.seen) < len(want) {
				c2.until(t, len(c2.seen)+1)
			}
		}
		mustEqualIDs(t, "c1", want, c1.seen)
		mustEqualIDs(t, "c2", want, c2.seen)
		if out := c1.next(t); len(out.Data) != 0 || !out.Done {
			t.Fatalf("c1 at the end: %d messages, done %v", len(out.Data), out.Done)
		}

		// At least once: a consumer that does not come back with the
		// iterator gets the same page again.
		more := postMessages(t, ts, client, app.Id, 2, "user.created", nil)
		c2.until(t, len(want)+1)
		first := c2.seen[len(want):]
		c2.iterator = nil // "crashed" before acknowledging
		c2.seen = c2.seen[:len(want)]
		c2.until(t, len(want)+len(first))
		mustEqualIDs(t, "c2's unacknowledged page again", first, c2.seen[len(want):len(want)+len(first)])
		c2.until(t, len(want)+2)
		mustEqualIDs(t, "c2 after the new messages", append(slices.Clone(want), msgIDs(more)...), c2.seen)

		// Seek c1 back to the fourth message's time: it reads from there
		// again; c2 is not moved.
		seek, err := client.Message.Poller.ConsumerSeek(ctx, app.Id, "sink", "c1", models.PollingEndpointConsumerSeekIn{After: msgs[3].Timestamp}, nil)
		mustNoErr(t, "seek", err)
		if !strings.HasPrefix(seek.Iterator, "it_") {
			t.Fatalf("seek iterator %q", seek.Iterator)
		}
		c1.iterator, c1.seen = nil, nil
		tail := append(msgIDs(msgs[3:]), msgIDs(more)...)
		c1.untilSeen(t, tail[len(tail)-1])
		mustEndWith(t, "c1 after the seek", tail, c1.seen, want[:3])
		if out := c2.next(t); len(out.Data) != 0 {
			t.Fatalf("c2 moved by c1's seek: got %d messages", len(out.Data))
		}
	})
}

// mustEqualIDs fails unless got is want.
func mustEqualIDs(t *testing.T, what string, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// mustEndWith fails unless got ends with want and whatever comes before
// is among earlier (PostgreSQL may give back messages committed beside the
// position's horizon: at least once).
func mustEndWith(t *testing.T, what string, want, got, earlier []string) {
	t.Helper()
	if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Fatalf("%s: got %v, want it to end with %v", what, got, want)
	}
	for _, id := range got[:len(got)-len(want)] {
		if !slices.Contains(earlier, id) {
			t.Fatalf("%s: got %v, want %v (maybe after some of %v)", what, got, want, earlier)
		}
	}
}

// TestSDKPollingStateless: Poll without an iterator starts now (or at
// after), returns an iterator to come back with, and narrows by event
// type and channel within the polling endpoint's own filter.
func TestSDKPollingStateless(t *testing.T) {
	onEachEngine(t, func(t *testing.T, ts *testServer) {
		client := ts.sdk(t, ts.Token)
		ctx := t.Context()
		app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "poll"}, nil)
		mustNoErr(t, "create app", err)
		_, err = client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: herald.PollerURL, Uid: ptr("eu"), Channels: []string{"eu"}}, nil)
		mustNoErr(t, "create polling endpoint", err)
		start := ts.Clock.Now()
		old := postMessages(t, ts, client, app.Id, 1, "a", []string{"eu"})

		var first *models.PollingEndpointOut
		first, err = client.Message.Poller.Poll(ctx, app.Id, "eu", nil)
		mustNoErr(t, "first poll", err)
		if !strings.HasPrefix(first.Iterator, "it_") {
			t.Fatalf("first poll's iterator %q", first.Iterator)
		}
		for _, m := range first.Data {
			if m.Id != old[0].Id { // PostgreSQL may hand back a message beside the horizon
				t.Fatalf("first poll returned %s", m.Id)
			}
		}
		a := postMessages(t, ts, client, app.Id, 1, "a", []string{"eu"})
		postMessages(t, ts, client, app.Id, 1, "a", []string{"us"}) // not the endpoint's channel
		b := postMessages(t, ts, client, app.Id, 1, "b", []string{"eu", "x"})

		// poll polls until it has seen last.
		poll := func(o *svix.MessagePollerPollOptions, last string) []string {
			t.Helper()
			var got []string
			it := o.Iterator
			for try := 0; !slices.Contains(got, last); try++ {
				if try == 2000 {
					t.Fatalf("polled %v, want %s among them", got, last)
				}
				o.Iterator = it
				out, err := client.Message.Poller.Poll(ctx, app.Id, "eu", o)
				mustNoErr(t, "poll", err)
				for _, m := range out.Data {
					got = append(got, m.Id)
					if m.Payload == nil || m.EventType == "" || m.Timestamp.IsZero() {
						t.Fatalf("polled message %+v", m)
					}
				}
				it = &out.Iterator
				if len(out.Data) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			return got
		}
		// PostgreSQL's first position is the oldest open transaction's:
		// the message posted just before may come after it (at least
		// once); SQLite's is exact.
		mayRepeat := msgIDs(old)
		if len(first.Data) > 0 {
			mayRepeat = nil
		}
		mustEndWith(t, "after the first iterator", []string{a[0].Id, b[0].Id}, poll(&svix.MessagePollerPollOptions{Iterator: &first.Iterator}, b[0].Id), mayRepeat)
		mustEqualIDs(t, "event type b", []string{b[0].Id}, poll(&svix.MessagePollerPollOptions{Iterator: &first.Iterator, EventType: ptr("b")}, b[0].Id))
		mustEqualIDs(t, "channel x", []string{b[0].Id}, poll(&svix.MessagePollerPollOptions{Iterator: &first.Iterator, Channel: ptr("x")}, b[0].Id))
		mustEqualIDs(t, "after start", []string{old[0].Id, a[0].Id, b[0].Id}, poll(&svix.MessagePollerPollOptions{After: &start}, b[0].Id))
	})
}

// TestPollingRefusals: every bad input is a 422 naming it and changes
// nothing; polling what is not a polling endpoint is a 404, a disabled one
// a 409; nothing can make a delivery to a polling endpoint, nor turn an
// endpoint into one or back.
func TestPollingRefusals(t *testing.T) {
	onEachEngine(t, func(t *testing.T, ts *testServer) {
		client := ts.sdk(t, ts.Token)
		ctx := t.Context()
		app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "poll", Uid: ptr("p")}, nil)
		mustNoErr(t, "create app", err)
		web, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook", Uid: ptr("web")}, nil)
		mustNoErr(t, "create endpoint", err)
		_, err = client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: herald.PollerURL, Uid: ptr("sink")}, nil)
		mustNoErr(t, "create polling endpoint", err)
		msgs := postMessages(t, ts, client, app.Id, 2, "a", nil)
		// c1 reads the first message and acknowledges it.
		c1 := &sdkConsumer{client: client, app: app.Id, sink: "sink", id: "c1", limit: 1}
		c1.until(t, 1)
		c1.next(t) // acknowledges the first, reads the second
		ack := *c1.iterator

		const base = "/api/v1/app/p/poller/sink"
		for _, tc := range []struct {
			method, path, body string
			loc                []string
		}{
			{"GET", base + "?iterator=bogus", "", []string{"query", "iterator"}},
			{"GET", base + "?iterator=it_-1", "", []string{"query", "iterator"}},
			{"GET", base + "?iterator=it_5_nope", "", []string{"query", "iterator"}},
			{"GET", base + "?iterator=" + msgs[0].Id, "", []string{"query", "iterator"}},
			{"GET", base + "?limit=0", "", []string{"query", "limit"}},
			{"GET", base + "?limit=251", "", []string{"query", "limit"}},
			{"GET", base + "?after=yesterday", "", []string{"query", "after"}},
			{"GET", base + "?event_type=a%20b", "", []string{"query", "event_type"}},
			{"GET", base + "?channel=" + strings.Repeat("c", 200), "", []string{"query", "channel"}},
			{"GET", base + "/consumer/c1?iterator=it_x", "", []string{"query", "iterator"}},
			{"GET", base + "/consumer/c1?limit=x", "", []string{"query", "limit"}},
			{"GET", base + "/consumer/c!1", "", []string{"path", "consumer_id"}},
			{"POST", base + "/consumer/c1/seek", `{}`, []string{"body", "after"}},
			{"POST", base + "/consumer/c1/seek", `{"after":"soon"}`, []string{"body", "after"}},
			{"POST", base + "/consumer/c!1/seek", `{"after":"2025-03-01T12:00:00Z"}`, []string{"path", "consumer_id"}},
			{"POST", "/api/v1/app/p/msg/" + msgs[0].Id + "/endpoint/sink/resend", `{}`, []string{"path", "endpoint_id"}},
			{"POST", "/api/v1/app/p/endpoint/sink/send-example", `{"eventType":"svix.ping"}`, []string{"path", "endpoint_id"}},
			{"PATCH", "/api/v1/app/p/endpoint/sink", `{"url":"https://example.com/x"}`, []string{"body", "url"}},
			{"PUT", "/api/v1/app/p/endpoint/sink", `{"url":"https://example.com/x"}`, []string{"body", "url"}},
			{"PATCH", "/api/v1/app/p/endpoint/web", `{"url":"poller://"}`, []string{"body", "url"}},
			{"POST", "/api/v1/app/p/endpoint", `{"url":"poller://x"}`, []string{"body", "url"}},
		} {
			res := ts.call(t, tc.method, tc.path, tc.body)
			if res.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%s %s: %d %s", tc.method, tc.path, res.Status, res.Body)
			}
			fields := validationOut(t, res)
			if len(fields) != 1 || !slices.Equal(fields[0].Loc, tc.loc) {
				t.Fatalf("%s %s: %s, want one problem at %v", tc.method, tc.path, res.Body, tc.loc)
			}
		}
		// Nothing changed: c1 is where it acknowledged, the endpoints are
		// what they were, the message went nowhere new.
		page, err := client.Message.Poller.ConsumerPoll(ctx, app.Id, "sink", "c1", nil)
		mustNoErr(t, "c1 after the refusals", err)
		if len(page.Data) != 1 || page.Data[0].Id != msgs[1].Id {
			t.Fatalf("c1 after the refusals: %+v, want the unacknowledged %s", page.Data, msgs[1].Id)
		}
		if page.Iterator != ack {
			t.Fatalf("c1's page iterator %s, want %s as before the refusals", page.Iterator, ack)
		}
		for ref, url := range map[string]string{"sink": herald.PollerURL, "web": web.Url} {
			ep, err := client.Endpoint.Get(ctx, app.Id, ref)
			mustNoErr(t, "get "+ref, err)
			if ep.Url != url {
				t.Fatalf("%s: URL %q, want %q", ref, ep.Url, url)
			}
		}
		dests, err := client.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, msgs[0].Id, nil)
		mustNoErr(t, "attempted destinations", err)
		if len(dests.Data) != 1 || dests.Data[0].Id != web.Id {
			t.Fatalf("message routed to %+v, want only %s", dests.Data, web.Id)
		}

		// Not a polling endpoint, unknown, or of another application: 404.
		_, err = client.Message.Poller.Poll(ctx, app.Id, "web", nil)
		wantSDKError(t, "poll an HTTP endpoint", err, http.StatusNotFound, herald.ENOTFOUND)
		_, err = client.Message.Poller.ConsumerPoll(ctx, app.Id, "nope", "c1", nil)
		wantSDKError(t, "poll an unknown endpoint", err, http.StatusNotFound, herald.ENOTFOUND)
		other, err := client.Application.Create(ctx, models.ApplicationIn{Name: "other"}, nil)
		mustNoErr(t, "create other app", err)
		_, err = client.Message.Poller.ConsumerSeek(ctx, other.Id, "sink", "c1", models.PollingEndpointConsumerSeekIn{After: ts.Clock.Now()}, nil)
		wantSDKError(t, "seek in another app", err, http.StatusNotFound, herald.ENOTFOUND)
		// Disabled: 409, and nothing moves.
		_, err = client.Endpoint.Patch(ctx, app.Id, "sink", models.EndpointPatch{Disabled: ptr(true)})
		mustNoErr(t, "disable", err)
		_, err = client.Message.Poller.ConsumerSeek(ctx, app.Id, "sink", "c1", models.PollingEndpointConsumerSeekIn{After: ts.Clock.Now()}, nil)
		wantSDKError(t, "seek a disabled polling endpoint", err, http.StatusConflict, herald.ECONFLICT)
		_, err = client.Message.Poller.Poll(ctx, app.Id, "sink", nil)
		wantSDKError(t, "poll a disabled polling endpoint", err, http.StatusConflict, herald.ECONFLICT)
		_, err = client.Endpoint.Patch(ctx, app.Id, "sink", models.EndpointPatch{Disabled: ptr(false)})
		mustNoErr(t, "enable", err)
		page, err = client.Message.Poller.ConsumerPoll(ctx, app.Id, "sink", "c1", nil)
		mustNoErr(t, "c1 after enabling", err)
		if len(page.Data) != 1 || page.Data[0].Id != msgs[1].Id {
			t.Fatalf("c1 after enabling: %+v, want %s", page.Data, msgs[1].Id)
		}
	})
}

// TestPollingReadOnlyKey: a read-only key may poll, not move a consumer.
func TestPollingReadOnlyKey(t *testing.T) {
	ts := newTestServer(t)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"A","uid":"a"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/a/endpoint", `{"url":"poller://","uid":"sink"}`)
	var key apiKeyCreatedOut
	ts.mustCall(t, http.StatusCreated, &key, "POST", "/api/v1/auth/api-key", `{"name":"ro","scope":"app:a","readOnly":true}`)
	auth := []string{"Authorization", "Bearer " + key.Key}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/a/poller/sink", "", auth...)
	ts.mustCall(t, http.StatusForbidden, nil, "GET", "/api/v1/app/a/poller/sink/consumer/c1", "", auth...)
	ts.mustCall(t, http.StatusForbidden, nil, "POST", "/api/v1/app/a/poller/sink/consumer/c1/seek", `{"after":"2025-03-01T12:00:00Z"}`, auth...)
	if _, err := ts.Store.GetPollConsumer(context.Background(), mustEndpointID(t, ts, "a", "sink"), "c1"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("consumer after refused calls: %v, want none", err)
	}
}

// mustEndpointID returns the ID of the endpoint ref of application appRef.
func mustEndpointID(t *testing.T, ts *testServer, appRef, ref string) string {
	t.Helper()
	app, err := ts.Store.GetApplication(t.Context(), appRef)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ts.Store.GetEndpoint(t.Context(), app.ID, ref)
	if err != nil {
		t.Fatal(err)
	}
	return ep.ID
}
