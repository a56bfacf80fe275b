package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
)

// configureFlagEndpoint sets up the endpoint of --operational-webhook-url
// as herald serve does at start.
func configureFlagEndpoint(t *testing.T, ts *testServer) {
	t.Helper()
	if err := dispatch.ConfigureOperational(t.Context(), ts.Store, "https://example.com/flag", []byte("0123456789abcdef0123456789abcdef"), ts.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestSDKOperationalEndpoints drives every operation of Svix's
// operationalWebhookEndpoint API through the official Go SDK, on both
// engines, beside the endpoint of --operational-webhook-url, which the API
// neither lists nor serves.
func TestSDKOperationalEndpoints(t *testing.T) {
	onEachEngine(t, testSDKOperationalEndpoints)
}

func testSDKOperationalEndpoints(t *testing.T, ts *testServer) {
	ctx := t.Context()
	client := ts.sdk(t, ts.Token)
	ops := client.OperationalWebhookEndpoint

	// Before any exists (no internal application yet): an empty list.
	list, err := ops.List(ctx, nil)
	mustNoErr(t, "list (none)", err)
	if len(list.Data) != 0 || !list.Done {
		t.Fatalf("list before any: %+v", list)
	}
	configureFlagEndpoint(t, ts)

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	created, err := ops.Create(ctx, models.OperationalWebhookEndpointIn{
		Url: "https://example.com/ops", Uid: ptr("ops-1"), Description: ptr("on call"),
		FilterTypes: []string{herald.EventEndpointDisabled, herald.EventMessageAttemptExhausted},
		Metadata:    &map[string]string{"team": "sre"}, RateLimit: ptr(uint16(5)), Secret: ptr(secret),
	}, nil)
	mustNoErr(t, "create", err)
	if !strings.HasPrefix(created.Id, herald.PrefixEndpoint) {
		t.Fatalf("created ID %q", created.Id)
	}
	want := &models.OperationalWebhookEndpointOut{
		Id: created.Id, Uid: ptr("ops-1"), Description: "on call", Url: "https://example.com/ops", Disabled: ptr(false),
		FilterTypes: []string{herald.EventEndpointDisabled, herald.EventMessageAttemptExhausted},
		Metadata:    map[string]string{"team": "sre"}, RateLimit: ptr(uint16(5)), ThrottleRate: ptr(uint16(5)),
		CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt,
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Fatalf("created (-want +got):\n%s", diff)
	}
	if !created.CreatedAt.Equal(ts.Clock.Now()) {
		t.Fatalf("createdAt %v, want %v", created.CreatedAt, ts.Clock.Now())
	}
	stored, err := ts.Store.GetEndpoint(ctx, herald.OperationalAppID, created.Id)
	mustNoErr(t, "store get", err)
	if stored.AppID != herald.OperationalAppID {
		t.Fatalf("stored under %q", stored.AppID)
	}
	for _, ref := range []string{created.Id, "ops-1"} {
		got, err := ops.Get(ctx, ref)
		mustNoErr(t, "get "+ref, err)
		if diff := cmp.Diff(created, got); diff != "" {
			t.Fatalf("get %s (-created +got):\n%s", ref, diff)
		}
	}
	sec, err := ops.GetSecret(ctx, "ops-1")
	mustNoErr(t, "get secret", err)
	if sec.Key != secret {
		t.Fatalf("secret %q, want %q", sec.Key, secret)
	}
	// Without a secret one is generated.
	second, err := ops.Create(ctx, models.OperationalWebhookEndpointIn{Url: "https://example.com/ops2"}, nil)
	mustNoErr(t, "create without secret", err)
	sec2, err := ops.GetSecret(ctx, second.Id)
	mustNoErr(t, "get generated secret", err)
	if !strings.HasPrefix(sec2.Key, "whsec_") || sec2.Key == secret {
		t.Fatalf("generated secret %q", sec2.Key)
	}
	if _, err := ops.Create(ctx, models.OperationalWebhookEndpointIn{Url: "https://example.com/dup", Uid: ptr("ops-1")}, nil); err == nil {
		t.Fatal("a second endpoint with uid ops-1 was created")
	} else {
		wantSDKError(t, "duplicate uid", err, http.StatusConflict, "")
	}

	// Update replaces: filter types, metadata and description go when
	// left out; disabled stays unless given.
	updated, err := ops.Update(ctx, "ops-1", models.OperationalWebhookEndpointUpdate{
		Url: "https://example.com/ops-v2", FilterTypes: []string{herald.EventEndpointEnabled}, Disabled: ptr(true),
		ThrottleRate: ptr(uint16(9)),
	})
	mustNoErr(t, "update", err)
	if updated.Url != "https://example.com/ops-v2" || !*updated.Disabled || !slices.Equal(updated.FilterTypes, []string{herald.EventEndpointEnabled}) ||
		*updated.ThrottleRate != 9 || *updated.RateLimit != 9 || len(updated.Metadata) != 0 || updated.Description != "" || *updated.Uid != "ops-1" {
		t.Fatalf("updated %+v", updated)
	}
	again, err := ops.Update(ctx, created.Id, models.OperationalWebhookEndpointUpdate{Url: "https://example.com/ops-v3"})
	mustNoErr(t, "update without disabled", err)
	if !*again.Disabled || len(again.FilterTypes) != 0 || again.RateLimit != nil {
		t.Fatalf("update without disabled: %+v", again)
	}
	_, err = ops.Update(ctx, "no-such", models.OperationalWebhookEndpointUpdate{Url: "https://example.com/x"})
	wantSDKError(t, "update missing", err, http.StatusNotFound, herald.ENOTFOUND)

	// Rotation keeps the old key for the grace period.
	const next = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	mustNoErr(t, "rotate", ops.RotateSecret(ctx, "ops-1", models.OperationalWebhookEndpointSecretIn{Key: ptr(next)}, nil))
	sec, err = ops.GetSecret(ctx, "ops-1")
	mustNoErr(t, "get rotated", err)
	if sec.Key != next {
		t.Fatalf("secret after rotate %q, want %q", sec.Key, next)
	}
	stored, err = ts.Store.GetEndpoint(ctx, herald.OperationalAppID, created.Id)
	mustNoErr(t, "store get", err)
	if len(stored.Secrets) != 2 || stored.Secrets[1].ExpiresAt.IsZero() {
		t.Fatalf("stored secrets after rotate: %+v", stored.Secrets)
	}
	mustNoErr(t, "rotate generated", ops.RotateSecret(ctx, "ops-1", models.OperationalWebhookEndpointSecretIn{}, nil))
	if sec3, err := ops.GetSecret(ctx, "ops-1"); err != nil || sec3.Key == next || !strings.HasPrefix(sec3.Key, "whsec_") {
		t.Fatalf("secret after a generated rotation: %+v, %v", sec3, err)
	}

	// Headers: sensitive values withheld.
	mustNoErr(t, "update headers", ops.UpdateHeaders(ctx, "ops-1", models.OperationalWebhookEndpointHeadersIn{
		Headers: map[string]string{"X-Team": "sre", "Authorization": "Bearer s3cret"},
	}))
	headers, err := ops.GetHeaders(ctx, created.Id)
	mustNoErr(t, "get headers", err)
	if diff := cmp.Diff(&models.OperationalWebhookEndpointHeadersOut{Headers: map[string]string{"X-Team": "sre"}, Sensitive: []string{"Authorization"}}, headers); diff != "" {
		t.Fatalf("headers (-want +got):\n%s", diff)
	}
	stored, err = ts.Store.GetEndpoint(ctx, herald.OperationalAppID, created.Id)
	mustNoErr(t, "store get", err)
	if stored.Headers["Authorization"] != "Bearer s3cret" {
		t.Fatalf("stored headers %v", stored.Headers)
	}

	// Pages of two, ascending by default, without the flag's endpoint.
	for i := range 3 {
		_, err := ops.Create(ctx, models.OperationalWebhookEndpointIn{Url: "https://example.com/more/" + string(rune('a'+i))}, nil)
		mustNoErr(t, "create more", err)
	}
	var ids []string
	opts := &svix.OperationalWebhookEndpointListOptions{Limit: ptr(uint64(2))}
	for range 10 {
		page, err := ops.List(ctx, opts)
		mustNoErr(t, "list page", err)
		for _, ep := range page.Data {
			ids = append(ids, ep.Id)
		}
		if page.Done {
			break
		}
		opts.Iterator = page.Iterator
	}
	if len(ids) != 5 || !slices.IsSorted(ids) || slices.Contains(ids, herald.OperationalEndpointID) {
		t.Fatalf("listed %v, want the 5 created, in ID order, without %s", ids, herald.OperationalEndpointID)
	}
	desc, err := ops.List(ctx, &svix.OperationalWebhookEndpointListOptions{Order: ptr(models.ORDERING_DESCENDING), Limit: ptr(uint64(250))})
	mustNoErr(t, "list descending", err)
	if len(desc.Data) != 5 || desc.Data[0].Id != ids[4] || !desc.Done {
		t.Fatalf("descending list %+v", desc)
	}

	// The flag's endpoint is out of reach of every operation, by its ID.
	flag := herald.OperationalEndpointID
	_, err = ops.Get(ctx, flag)
	wantSDKError(t, "get flag endpoint", err, http.StatusNotFound, herald.ENOTFOUND)
	_, err = ops.Update(ctx, flag, models.OperationalWebhookEndpointUpdate{Url: "https://example.com/stolen"})
	wantSDKError(t, "update flag endpoint", err, http.StatusNotFound, herald.ENOTFOUND)
	_, err = ops.GetSecret(ctx, flag)
	wantSDKError(t, "get flag secret", err, http.StatusNotFound, herald.ENOTFOUND)
	err = ops.RotateSecret(ctx, flag, models.OperationalWebhookEndpointSecretIn{}, nil)
	wantSDKError(t, "rotate flag secret", err, http.StatusNotFound, herald.ENOTFOUND)
	_, err = ops.GetHeaders(ctx, flag)
	wantSDKError(t, "get flag headers", err, http.StatusNotFound, herald.ENOTFOUND)
	err = ops.UpdateHeaders(ctx, flag, models.OperationalWebhookEndpointHeadersIn{Headers: map[string]string{"X-A": "b"}})
	wantSDKError(t, "update flag headers", err, http.StatusNotFound, herald.ENOTFOUND)
	err = ops.Delete(ctx, flag)
	wantSDKError(t, "delete flag endpoint", err, http.StatusNotFound, herald.ENOTFOUND)
	flagEp, err := ts.Store.GetEndpoint(ctx, herald.OperationalAppID, flag)
	mustNoErr(t, "store get flag endpoint", err)
	if flagEp.URL != "https://example.com/flag" || flagEp.Disabled || len(flagEp.Headers) != 0 || len(flagEp.Secrets) != 1 {
		t.Fatalf("flag endpoint changed through the API: %+v", flagEp)
	}
	// Nor does the application API show the operational application.
	_, err = client.Endpoint.List(ctx, herald.OperationalAppID, nil)
	wantSDKError(t, "list endpoints of the operational application", err, http.StatusNotFound, herald.ENOTFOUND)
	apps, err := client.Application.List(ctx, nil)
	mustNoErr(t, "list apps", err)
	if len(apps.Data) != 0 {
		t.Fatalf("applications %+v, want none", apps.Data)
	}

	mustNoErr(t, "delete", ops.Delete(ctx, "ops-1"))
	_, err = ops.Get(ctx, created.Id)
	wantSDKError(t, "get deleted", err, http.StatusNotFound, herald.ENOTFOUND)
	err = ops.Delete(ctx, "ops-1")
	wantSDKError(t, "delete deleted", err, http.StatusNotFound, herald.ENOTFOUND)
}

// TestOperationalEndpointInvalid: bad input is a 422 naming the field and
// changes nothing; a private target is refused unless
// --allow-private-targets.
func TestOperationalEndpointInvalid(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.AllowPrivateTargets = false })
	const base = "/api/v1/operational-webhook/endpoint"
	var ep opEndpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", base, `{"url":"https://example.com/ops","uid":"ops-1","filterTypes":["endpoint.disabled"]}`)
	one := base + "/" + ep.ID
	cases := []struct {
		method, path, body string
		loc                []string
	}{
		{"POST", base, `{}`, []string{"body", "url"}},
		{"POST", base, `{"url":"ftp://example.com/x"}`, []string{"body", "url"}},
		{"POST", base, `{"url":"http://127.0.0.1:9/x"}`, []string{"body", "url"}},
		{"POST", base, `{"url":"http://169.254.169.254/latest"}`, []string{"body", "url"}},
		{"POST", base, `{"url":"https://example.com/x","uid":"not a uid!"}`, []string{"body", "uid"}},
		{"POST", base, `{"url":"https://example.com/x","filterTypes":["no spaces allowed"]}`, []string{"body", "filterTypes"}},
		{"POST", base, `{"url":"https://example.com/x","secret":"whsec_short"}`, []string{"body", "secret"}},
		{"POST", base, `{"url":"https://example.com/x","rateLimit":"fast"}`, []string{"body", "rateLimit"}},
		{"PUT", one, `{"description":"no url"}`, []string{"body", "url"}},
		{"PUT", one, `{"url":"http://10.0.0.1/x"}`, []string{"body", "url"}},
		{"PUT", one + "/headers", `{}`, []string{"body", "headers"}},
		{"PUT", one + "/headers", `{"headers":{"Content-Type":"text/plain"}}`, []string{"body", "headers"}},
		{"POST", one + "/secret/rotate", `{"key":"not-a-secret"}`, []string{"body", "key"}},
		{"GET", base + "?limit=0", "", []string{"query", "limit"}},
		{"GET", base + "?iterator=not-an-iterator", "", []string{"query", "iterator"}},
	}
	for _, c := range cases {
		res := ts.call(t, c.method, c.path, c.body)
		fields := validationOut(t, res)
		if !slices.ContainsFunc(fields, func(f fieldError) bool { return len(f.Loc) >= 2 && slices.Equal(f.Loc[:2], c.loc) }) {
			t.Errorf("%s %s %s: 422 %s, want one naming %v", c.method, c.path, c.body, res.Body, c.loc)
		}
	}
	var page listResponse[opEndpointOut]
	ts.mustCall(t, http.StatusOK, &page, "GET", base, "")
	if len(page.Data) != 1 || page.Data[0].URL != "https://example.com/ops" || !slices.Equal(page.Data[0].FilterTypes, []string{"endpoint.disabled"}) {
		t.Fatalf("after the refused requests: %+v", page.Data)
	}
	stored, err := ts.Store.GetEndpoint(t.Context(), herald.OperationalAppID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Headers) != 0 || len(stored.Secrets) != 1 {
		t.Fatalf("after the refused requests: headers %v, %d secrets", stored.Headers, len(stored.Secrets))
	}
}
