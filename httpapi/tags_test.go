package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

// TestSDKTags: tags sent through the official SDK are stored and returned
// in every message answer, and ?tag= filters the message list and the
// endpoint's message list, combined with the other filters and paged by
// iterator; on SQLite and PostgreSQL.
func TestSDKTags(t *testing.T) {
	onEachEngine(t, testSDKTags)
}

// sdkAppWithEndpoint creates, through the SDK, an application with one
// endpoint (never sent to: these tests run no dispatcher).
func sdkAppWithEndpoint(t *testing.T, ts *testServer) (*svix.Svix, *models.ApplicationOut, *models.EndpointOut) {
	t.Helper()
	client := ts.sdk(t, ts.Token)
	app, err := client.Application.Create(t.Context(), models.ApplicationIn{Name: "App"}, nil)
	mustNoErr(t, "create app", err)
	ep, err := client.Endpoint.Create(t.Context(), app.Id, models.EndpointIn{Url: "http://127.0.0.1:9/hook"}, nil)
	mustNoErr(t, "create endpoint", err)
	return client, app, ep
}

func testSDKTags(t *testing.T, ts *testServer) {
	client, app, ep := sdkAppWithEndpoint(t, ts)
	ctx := t.Context()
	other, err := client.Application.Create(ctx, models.ApplicationIn{Name: "Other"}, nil)
	mustNoErr(t, "create other app", err)

	// Message i: "odd" on odd ones, "3/#x" on every third, event type a or b.
	var ids []string
	tagsOf := func(i int) []string {
		var tags []string
		if i%2 == 1 {
			tags = append(tags, "odd")
		}
		if i%3 == 0 {
			tags = append(tags, `3/#x`)
		}
		return tags
	}
	for i := range 7 {
		eventType := "a"
		if i >= 4 {
			eventType = "b"
		}
		m, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: eventType, Payload: map[string]any{"i": i}, Tags: tagsOf(i)}, nil)
		mustNoErr(t, "create", err)
		if !slices.Equal(m.Tags, tagsOf(i)) {
			t.Fatalf("created message %d with tags %v, want %v", i, m.Tags, tagsOf(i))
		}
		ids = append(ids, m.Id)
		ts.Clock.Add(time.Second) // IDs sort by their second
	}
	_, err = client.Message.Create(ctx, other.Id, models.MessageIn{EventType: "a", Payload: map[string]any{}, Tags: []string{"odd"}}, nil)
	mustNoErr(t, "create in the other app", err)

	got, err := client.Message.Get(ctx, app.Id, ids[3], nil)
	mustNoErr(t, "get", err)
	if !slices.Equal(got.Tags, []string{"odd", "3/#x"}) {
		t.Fatalf("get: tags %v", got.Tags)
	}

	pick := func(keep func(i int) bool) []string {
		var out []string
		for i := len(ids) - 1; i >= 0; i-- { // newest first
			if keep(i) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	// walk pages through a list one message at a time.
	walk := func(list func(iterator *string) ([]string, *string, bool)) []string {
		t.Helper()
		var out []string
		var iterator *string
		for range 20 {
			page, next, done := list(iterator)
			out = append(out, page...)
			if done {
				return out
			}
			iterator = next
		}
		t.Fatal("the list did not end")
		return nil
	}
	after := ts.Clock.Now().Add(-5 * time.Second) // after message 1's second: 2…6
	cases := []struct {
		name string
		opts svix.MessageListOptions
		want []string
	}{
		{"tag", svix.MessageListOptions{Tag: ptr("odd")}, pick(func(i int) bool { return i%2 == 1 })},
		{"tag with / and #", svix.MessageListOptions{Tag: ptr("3/#x")}, pick(func(i int) bool { return i%3 == 0 })},
		{"tag and event type", svix.MessageListOptions{Tag: ptr("odd"), EventTypes: &[]string{"b"}}, pick(func(i int) bool { return i == 5 })},
		{"tag and after", svix.MessageListOptions{Tag: ptr("3/#x"), After: &after}, pick(func(i int) bool { return i == 3 || i == 6 })},
		{"unknown tag", svix.MessageListOptions{Tag: ptr("none")}, nil},
	}
	// taggedIDs returns the IDs of a page's messages, each of which must
	// carry tag (when set).
	taggedIDs := func(what string, tag *string, ids []string, tags [][]string) []string {
		t.Helper()
		for i, id := range ids {
			if tag != nil && !slices.Contains(tags[i], *tag) {
				t.Errorf("%s: message %s has tags %v", what, id, tags[i])
			}
		}
		return ids
	}
	for _, c := range cases {
		listed := walk(func(iterator *string) ([]string, *string, bool) {
			opts := c.opts
			opts.Limit, opts.Iterator = ptr(uint64(1)), iterator
			page, err := client.Message.List(ctx, app.Id, &opts)
			mustNoErr(t, "list "+c.name, err)
			var ids []string
			var tags [][]string
			for _, m := range page.Data {
				ids, tags = append(ids, m.Id), append(tags, m.Tags)
			}
			return taggedIDs("list "+c.name, opts.Tag, ids, tags), page.Iterator, page.Done
		})
		endpointListed := walk(func(iterator *string) ([]string, *string, bool) {
			opts := svix.MessageAttemptListAttemptedMessagesOptions{Tag: c.opts.Tag, EventTypes: c.opts.EventTypes, After: c.opts.After,
				Limit: ptr(uint64(1)), Iterator: iterator}
			page, err := client.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, &opts)
			mustNoErr(t, "endpoint list "+c.name, err)
			var ids []string
			var tags [][]string
			for _, m := range page.Data {
				ids, tags = append(ids, m.Id), append(tags, m.Tags)
			}
			return taggedIDs("endpoint list "+c.name, opts.Tag, ids, tags), page.Iterator, page.Done
		})
		if diff := cmp.Diff(c.want, listed); diff != "" {
			t.Errorf("list %s (-want +got):\n%s", c.name, diff)
		}
		if diff := cmp.Diff(c.want, endpointListed); diff != "" {
			t.Errorf("endpoint list %s (-want +got):\n%s", c.name, diff)
		}
	}

	// Bad tags are refused naming the field, and nothing is stored.
	before := countMessages(t, ts.Store, app.Id)
	_, err = client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "a", Payload: map[string]any{}, Tags: []string{"a b"}}, nil)
	wantSDKError(t, "a tag with a space", err, http.StatusUnprocessableEntity, "")
	for _, tc := range []struct{ body, loc string }{
		{`{"eventType":"a","payload":{},"tags":["a b"]}`, "body tags 0"},
		{`{"eventType":"a","payload":{},"tags":["` + strings.Repeat("t", 129) + `"]}`, "body tags 0"},
		{`{"eventType":"a","payload":{},"tags":["1","2","3","4","5","6"]}`, "body tags"},
		{`{"eventType":"a","payload":{},"tags":["a","a"]}`, "body tags"},
	} {
		items := validationOut(t, ts.call(t, "POST", "/api/v1/app/"+app.Id+"/msg", tc.body))
		if len(items) != 1 || strings.Join(items[0].Loc, " ") != tc.loc {
			t.Errorf("%s: problems %+v, want one at %q", tc.body, items, tc.loc)
		}
	}
	if n := countMessages(t, ts.Store, app.Id); n != before {
		t.Fatalf("refused messages stored: %d messages, want %d", n, before)
	}
	for _, path := range []string{"/api/v1/app/" + app.Id + "/msg", "/api/v1/app/" + app.Id + "/endpoint/" + ep.Id + "/msg"} {
		for _, tag := range []string{"a b", "", strings.Repeat("t", 129)} {
			items := validationOut(t, ts.call(t, "GET", path+"?tag="+url.QueryEscape(tag), ""))
			if len(items) != 1 || strings.Join(items[0].Loc, " ") != "query tag" {
				t.Errorf("GET %s?tag=%q: problems %+v, want one at query tag", path, tag, items)
			}
		}
	}
	// The attempt lists store no tags: refused, not ignored.
	items := validationOut(t, ts.call(t, "GET", "/api/v1/app/"+app.Id+"/attempt/endpoint/"+ep.Id+"?tag=odd", ""))
	if len(items) != 1 || strings.Join(items[0].Loc, " ") != "query tag" {
		t.Errorf("attempt list by tag: problems %+v", items)
	}
}

// TestSDKScheduledMessages: deliverAt within Svix's bounds (one minute to
// 24 hours ahead) stores the message at once with its deliveries pending
// and due then, and every answer carries deliverAt; outside them it is a
// 422 naming deliverAt that stores nothing; deleting the message cancels
// it. On SQLite and PostgreSQL.
func TestSDKScheduledMessages(t *testing.T) {
	onEachEngine(t, testSDKScheduledMessages)
}

func testSDKScheduledMessages(t *testing.T, ts *testServer) {
	client, app, ep := sdkAppWithEndpoint(t, ts)
	ctx := t.Context()
	now := ts.Clock.Now()

	deliverAt := now.Add(90 * time.Minute).Add(123456 * time.Microsecond)
	m, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "invoice.due", Payload: map[string]any{"n": 1},
		DeliverAt: &deliverAt, Tags: []string{"later"}}, nil)
	mustNoErr(t, "create scheduled", err)
	wantAt := func(what string, got *time.Time) {
		t.Helper()
		if got == nil || !got.Equal(deliverAt) {
			t.Fatalf("%s: deliverAt %v, want %v", what, got, deliverAt)
		}
	}
	wantAt("create", m.DeliverAt)
	got, err := client.Message.Get(ctx, app.Id, m.Id, nil)
	mustNoErr(t, "get", err)
	wantAt("get", got.DeliverAt)
	list, err := client.Message.List(ctx, app.Id, &svix.MessageListOptions{Tag: ptr("later")})
	mustNoErr(t, "list", err)
	if len(list.Data) != 1 {
		t.Fatalf("list: %d messages, want 1", len(list.Data))
	}
	wantAt("list", list.Data[0].DeliverAt)
	em, err := client.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, nil)
	mustNoErr(t, "endpoint messages", err)
	if len(em.Data) != 1 || em.Data[0].Status != models.MESSAGESTATUS_PENDING || em.Data[0].NextAttempt == nil || !em.Data[0].NextAttempt.Equal(deliverAt) {
		t.Fatalf("endpoint messages %+v, want the message pending with its next attempt at deliverAt", em.Data)
	}
	wantAt("endpoint messages", em.Data[0].DeliverAt)
	// The delivery waits in the database, pending and due at deliverAt.
	ds, err := ts.Store.ListMessageDeliveries(ctx, app.Id, m.Id)
	mustNoErr(t, "deliveries", err)
	if len(ds) != 1 || ds[0].Status != herald.DeliveryPending || !ds[0].NextAttemptAt.Equal(deliverAt) {
		t.Fatalf("deliveries %+v, want one pending and due at %v", ds, deliverAt)
	}
	// An unscheduled message has no deliverAt.
	plain, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "a", Payload: map[string]any{}}, nil)
	mustNoErr(t, "create unscheduled", err)
	if plain.DeliverAt != nil {
		t.Fatalf("unscheduled message has deliverAt %v", plain.DeliverAt)
	}

	// The bounds, from the server's clock: a minute (less the skew
	// allowance) to 24 hours ahead.
	before := countMessages(t, ts.Store, app.Id)
	for _, tc := range []struct {
		name  string
		at    time.Time
		valid bool
	}{
		{"in the past", now.Add(-time.Minute), false},
		{"now", now, false},
		{"under a minute, beyond the skew", now.Add(minDeliverAhead - deliverAtSkew - time.Millisecond), false},
		{"a minute less the skew", now.Add(minDeliverAhead - deliverAtSkew), true},
		{"24 hours", now.Add(maxDeliverAhead), true},
		{"past 24 hours", now.Add(maxDeliverAhead + time.Millisecond), false},
	} {
		at := tc.at
		_, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "a", Payload: map[string]any{}, DeliverAt: &at}, nil)
		if tc.valid {
			mustNoErr(t, tc.name, err)
			before++
			continue
		}
		wantSDKError(t, tc.name, err, http.StatusUnprocessableEntity, "")
		items := validationOut(t, ts.call(t, "POST", "/api/v1/app/"+app.Id+"/msg",
			`{"eventType":"a","payload":{},"deliverAt":"`+at.Format(time.RFC3339Nano)+`"}`))
		if len(items) != 1 || strings.Join(items[0].Loc, " ") != "body deliverAt" {
			t.Errorf("%s: problems %+v, want one at body deliverAt", tc.name, items)
		}
	}
	items := validationOut(t, ts.call(t, "POST", "/api/v1/app/"+app.Id+"/msg", `{"eventType":"a","payload":{},"deliverAt":"tomorrow"}`))
	if len(items) != 1 || strings.Join(items[0].Loc, " ") != "body deliverAt" {
		t.Errorf("deliverAt tomorrow: problems %+v, want one at body deliverAt", items)
	}
	if n := countMessages(t, ts.Store, app.Id); n != before {
		t.Fatalf("%d messages stored, want %d: a refused deliverAt stored something", n, before)
	}

	// Deleting the message cancels it: the message, its tags and its
	// delivery are gone. The SDK has no call for it (a Herald extension).
	ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/app/"+app.Id+"/msg/"+m.Id, "")
	_, err = client.Message.Get(ctx, app.Id, m.Id, nil)
	wantSDKError(t, "get deleted", err, http.StatusNotFound, "not_found")
	if _, err := ts.Store.ListMessageDeliveries(ctx, app.Id, m.Id); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("deliveries of the deleted message: %v, want ENOTFOUND", err)
	}
	list, err = client.Message.List(ctx, app.Id, &svix.MessageListOptions{Tag: ptr("later")})
	mustNoErr(t, "list after delete", err)
	if len(list.Data) != 0 {
		t.Fatalf("list by tag after the delete: %d messages", len(list.Data))
	}
	if res := ts.call(t, "DELETE", "/api/v1/app/"+app.Id+"/msg/"+m.Id, ""); res.Status != http.StatusNotFound || errorOut(t, res).Code != "not_found" {
		t.Fatalf("delete twice: %d %s, want 404 not_found", res.Status, res.Body)
	}
	// By eventId too, like every message route.
	byEvent, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "a", EventId: ptr("evt-sched"), Payload: map[string]any{},
		DeliverAt: &deliverAt}, nil)
	mustNoErr(t, "create with eventId", err)
	ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/app/"+app.Id+"/msg/evt-sched", "")
	_, err = client.Message.Get(ctx, app.Id, byEvent.Id, nil)
	wantSDKError(t, "get deleted by eventId", err, http.StatusNotFound, "not_found")
}
