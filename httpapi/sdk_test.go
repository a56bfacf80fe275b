package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
	"github.com/svix/svix-webhooks/go/utils"

	"github.com/herald-webhooks/herald"
)

func ptr[T any](v T) *T { return &v }

// wantSDKError fails unless err is a *svix.Error with the given status and
// body code.
func wantSDKError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var se *svix.Error
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v (%T), want *svix.Error", what, err, err)
	}
	if se.Status() != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, se.Status(), status, se.Body())
	}
	if code == "" {
		return
	}
	var body errorBody
	if err := json.Unmarshal(se.Body(), &body); err != nil {
		t.Fatalf("%s: body %s: %v", what, se.Body(), err)
	}
	if body.Code != code || body.Detail == "" {
		t.Fatalf("%s: body %+v, want code %q and a detail", what, body, code)
	}
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		var se *svix.Error
		if errors.As(err, &se) {
			t.Fatalf("%s: %v; body %s", what, err, se.Body())
		}
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSDKApplications(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()

	created, err := client.Application.Create(ctx, models.ApplicationIn{
		Name: "Acme", Uid: ptr("acme"), ThrottleRate: ptr(uint16(100)),
		Metadata: &map[string]string{"plan": "pro"},
	}, nil)
	mustNoErr(t, "create", err)
	if created.Name != "Acme" || *created.Uid != "acme" || *created.ThrottleRate != 100 ||
		*created.RateLimit != 100 || created.Metadata["plan"] != "pro" || created.CreatedAt.IsZero() {
		t.Fatalf("created %+v", created)
	}

	byID, err := client.Application.Get(ctx, created.Id)
	mustNoErr(t, "get by ID", err)
	byUID, err := client.Application.Get(ctx, "acme")
	mustNoErr(t, "get by uid", err)
	if diff := cmp.Diff(created, byID); diff != "" {
		t.Errorf("get by ID (-created +got):\n%s", diff)
	}
	if diff := cmp.Diff(created, byUID); diff != "" {
		t.Errorf("get by uid (-created +got):\n%s", diff)
	}

	// get_or_create: the same uid returns the existing application.
	again, err := client.Application.GetOrCreate(ctx, models.ApplicationIn{Name: "Other", Uid: ptr("acme")}, nil)
	mustNoErr(t, "get or create existing", err)
	if again.Id != created.Id || again.Name != "Acme" {
		t.Fatalf("get_or_create returned %+v, want the existing %s", again, created.Id)
	}
	fresh, err := client.Application.GetOrCreate(ctx, models.ApplicationIn{Name: "Beta", Uid: ptr("beta")}, nil)
	mustNoErr(t, "get or create new", err)
	if fresh.Id == created.Id || fresh.Name != "Beta" {
		t.Fatalf("get_or_create of a new uid returned %+v", fresh)
	}

	list, err := client.Application.List(ctx, &svix.ApplicationListOptions{Limit: ptr(uint64(10))})
	mustNoErr(t, "list", err)
	var ids []string
	for _, app := range list.Data {
		ids = append(ids, app.Id)
	}
	sortIDs := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff([]string{created.Id, fresh.Id}, ids, sortIDs); diff != "" || !list.Done {
		t.Errorf("list ids (-want +got):\n%s done=%v", diff, list.Done)
	}

	updated, err := client.Application.Update(ctx, "acme", models.ApplicationIn{
		Name: "Acme Corp", RateLimit: ptr(uint16(5)),
	})
	mustNoErr(t, "update", err)
	if updated.Id != created.Id || updated.Name != "Acme Corp" || *updated.ThrottleRate != 5 ||
		len(updated.Metadata) != 0 || *updated.Uid != "acme" {
		t.Fatalf("updated %+v", updated)
	}

	// PUT of an unknown uid creates the application with that uid.
	put, err := client.Application.Update(ctx, "gamma", models.ApplicationIn{Name: "Gamma"})
	mustNoErr(t, "update creates", err)
	if put.Uid == nil || *put.Uid != "gamma" {
		t.Fatalf("PUT-created app %+v, want uid gamma", put)
	}

	patched, err := client.Application.Patch(ctx, created.Id, models.ApplicationPatch{
		Name: ptr("Acme Inc"), ThrottleRate: utils.NewNullableFromPtr[uint16](nil),
	})
	mustNoErr(t, "patch", err)
	if patched.Name != "Acme Inc" || patched.ThrottleRate != nil || *patched.Uid != "acme" {
		t.Fatalf("patched %+v", patched)
	}
	stored, err := ts.Store.GetApplication(ctx, created.Id)
	mustNoErr(t, "store get", err)
	if stored.Name != "Acme Inc" || stored.RateLimit != nil {
		t.Fatalf("stored after patch %+v", stored)
	}

	mustNoErr(t, "delete", client.Application.Delete(ctx, "acme"))
	_, err = client.Application.Get(ctx, created.Id)
	wantSDKError(t, "get deleted", err, http.StatusNotFound, herald.ENOTFOUND)
}

func TestSDKEventTypes(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()

	schemas := map[string]any{"1": map[string]any{"type": "object"}}
	created, err := client.EventType.Create(ctx, models.EventTypeIn{
		Name: "user.signup", Description: "A user signed up", Schemas: &schemas,
	}, nil)
	mustNoErr(t, "create", err)
	if created.Name != "user.signup" || created.Description != "A user signed up" || created.Schemas == nil {
		t.Fatalf("created %+v", created)
	}
	_, err = client.EventType.Create(ctx, models.EventTypeIn{Name: "user.signup", Description: "again"}, nil)
	wantSDKError(t, "duplicate", err, http.StatusConflict, herald.ECONFLICT)

	got, err := client.EventType.Get(ctx, "user.signup")
	mustNoErr(t, "get", err)
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}

	updated, err := client.EventType.Update(ctx, "user.signup", models.EventTypeUpdate{Description: "Signed up", Deprecated: ptr(true)})
	mustNoErr(t, "update", err)
	if updated.Description != "Signed up" || !updated.Deprecated || updated.Schemas != nil {
		t.Fatalf("updated %+v", updated)
	}
	putNew, err := client.EventType.Update(ctx, "user.deleted", models.EventTypeUpdate{Description: "Deleted"})
	mustNoErr(t, "update creates", err)
	if putNew.Name != "user.deleted" {
		t.Fatalf("PUT-created %+v", putNew)
	}

	patched, err := client.EventType.Patch(ctx, "user.signup", models.EventTypePatch{
		Description: ptr("Patched"), FeatureFlag: utils.NewNullable("beta-flag"),
	})
	mustNoErr(t, "patch", err)
	if patched.Description != "Patched" || patched.FeatureFlag == nil || *patched.FeatureFlag != "beta-flag" || !patched.Deprecated {
		t.Fatalf("patched %+v", patched)
	}

	names := func(opts *svix.EventTypeListOptions) []string {
		t.Helper()
		list, err := client.EventType.List(ctx, opts)
		mustNoErr(t, "list", err)
		var out []string
		for _, et := range list.Data {
			out = append(out, et.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"user.deleted", "user.signup"}, names(nil)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// DELETE archives: hidden from the list unless include_archived.
	mustNoErr(t, "archive", client.EventType.Delete(ctx, "user.signup", nil))
	archived, err := client.EventType.Get(ctx, "user.signup")
	mustNoErr(t, "get archived", err)
	if archived.Archived == nil || !*archived.Archived {
		t.Fatalf("after delete %+v, want archived", archived)
	}
	if diff := cmp.Diff([]string{"user.deleted"}, names(nil)); diff != "" {
		t.Errorf("list without archived (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"user.deleted", "user.signup"}, names(&svix.EventTypeListOptions{IncludeArchived: ptr(true)})); diff != "" {
		t.Errorf("list with archived (-want +got):\n%s", diff)
	}

	// ?expunge=true deletes for good.
	mustNoErr(t, "expunge", client.EventType.Delete(ctx, "user.signup", &svix.EventTypeDeleteOptions{Expunge: ptr(true)}))
	_, err = client.EventType.Get(ctx, "user.signup")
	wantSDKError(t, "get expunged", err, http.StatusNotFound, herald.ENOTFOUND)
}

func TestSDKEndpoints(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()
	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "App", Uid: ptr("app-1")}, nil)
	mustNoErr(t, "create app", err)

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	created, err := client.Endpoint.Create(ctx, "app-1", models.EndpointIn{
		Url:         "https://example.com/hook",
		Uid:         ptr("ep-1"),
		Description: ptr("main"),
		FilterTypes: []string{"user.signup", "user.deleted"},
		Channels:    []string{"project-1"},
		Metadata:    &map[string]string{"team": "core"},
		Secret:      ptr(secret),
		Headers:     &map[string]string{"X-Custom": "1"},
	}, nil)
	mustNoErr(t, "create", err)
	want := &models.EndpointOut{
		Id: created.Id, Url: "https://example.com/hook", Uid: ptr("ep-1"), Description: "main",
		FilterTypes: []string{"user.signup", "user.deleted"}, Channels: []string{"project-1"},
		Metadata: map[string]string{"team": "core"}, Version: 1, Disabled: ptr(false),
		CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt,
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Fatalf("created (-want +got):\n%s", diff)
	}

	got, err := client.Endpoint.Get(ctx, app.Id, "ep-1")
	mustNoErr(t, "get by uid", err)
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}
	sec, err := client.Endpoint.GetSecret(ctx, "app-1", created.Id)
	mustNoErr(t, "get secret", err)
	if sec.Key != secret {
		t.Fatalf("secret %q, want the given %q", sec.Key, secret)
	}

	list, err := client.Endpoint.List(ctx, "app-1", nil)
	mustNoErr(t, "list", err)
	if len(list.Data) != 1 || list.Data[0].Id != created.Id || !list.Done {
		t.Fatalf("list %+v", list)
	}

	updated, err := client.Endpoint.Update(ctx, "app-1", "ep-1", models.EndpointUpdate{
		Url: "https://example.com/v2", Version: ptr(uint16(2)), Disabled: ptr(true),
	})
	mustNoErr(t, "update", err)
	if updated.Url != "https://example.com/v2" || updated.Version != 2 || !*updated.Disabled ||
		len(updated.FilterTypes) != 0 || len(updated.Channels) != 0 || *updated.Uid != "ep-1" {
		t.Fatalf("updated %+v", updated)
	}
	patched, err := client.Endpoint.Patch(ctx, "app-1", "ep-1", models.EndpointPatch{
		Disabled: ptr(false), FilterTypes: utils.NewNullable([]string{"user.signup"}),
		ThrottleRate: utils.NewNullable(uint16(7)),
	})
	mustNoErr(t, "patch", err)
	if *patched.Disabled || patched.Url != "https://example.com/v2" ||
		!slices.Equal(patched.FilterTypes, []string{"user.signup"}) || *patched.ThrottleRate != 7 || *patched.RateLimit != 7 {
		t.Fatalf("patched %+v", patched)
	}

	// Rotation keeps the old key in the store with the grace period's end.
	const next = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	mustNoErr(t, "rotate", client.Endpoint.RotateSecret(ctx, "app-1", "ep-1",
		models.EndpointSecretRotateIn{Key: ptr(next), GracePeriodSeconds: ptr(uint32(3600))}, nil))
	sec, err = client.Endpoint.GetSecret(ctx, "app-1", "ep-1")
	mustNoErr(t, "get rotated secret", err)
	if sec.Key != next {
		t.Fatalf("secret after rotate %q, want %q", sec.Key, next)
	}
	stored, err := ts.Store.GetEndpoint(ctx, app.Id, created.Id)
	mustNoErr(t, "store get endpoint", err)
	oldKey, _ := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	newKey, _ := base64.StdEncoding.DecodeString(next[len("whsec_"):])
	wantSecrets := []herald.SigningSecret{
		{Key: newKey},
		{Key: oldKey, ExpiresAt: ts.Clock.Now().Add(time.Hour)},
	}
	if diff := cmp.Diff(wantSecrets, stored.Secrets); diff != "" {
		t.Fatalf("stored secrets (-want +got):\n%s", diff)
	}

	// Headers: sensitive values are withheld, PATCH merges and null removes.
	mustNoErr(t, "update headers", client.Endpoint.UpdateHeaders(ctx, "app-1", "ep-1", models.EndpointHeadersIn{
		Headers: map[string]string{"X-Plain": "a", "Authorization": "Bearer s3cret", "X-Api-Key": "k"},
	}))
	headers, err := client.Endpoint.GetHeaders(ctx, "app-1", "ep-1")
	mustNoErr(t, "get headers", err)
	wantHeaders := &models.EndpointHeadersOut{
		Headers: map[string]string{"X-Plain": "a"}, Sensitive: []string{"Authorization", "X-Api-Key"},
	}
	if diff := cmp.Diff(wantHeaders, headers); diff != "" {
		t.Fatalf("headers (-want +got):\n%s", diff)
	}
	ts.mustCall(t, http.StatusNoContent, nil, "PATCH", "/api/v1/app/app-1/endpoint/ep-1/headers",
		`{"headers":{"X-Plain":null,"X-New":"b"}}`)
	mustNoErr(t, "patch headers", client.Endpoint.PatchHeaders(ctx, "app-1", "ep-1", models.EndpointHeadersPatchIn{
		Headers: map[string]string{"X-Other": "c"},
	}))
	stored, err = ts.Store.GetEndpoint(ctx, app.Id, created.Id)
	mustNoErr(t, "store get endpoint", err)
	wantStored := map[string]string{"Authorization": "Bearer s3cret", "X-Api-Key": "k", "X-New": "b", "X-Other": "c"}
	if diff := cmp.Diff(wantStored, stored.Headers); diff != "" {
		t.Fatalf("stored headers (-want +got):\n%s", diff)
	}

	mustNoErr(t, "delete", client.Endpoint.Delete(ctx, "app-1", "ep-1"))
	_, err = client.Endpoint.Get(ctx, "app-1", "ep-1")
	wantSDKError(t, "get deleted", err, http.StatusNotFound, herald.ENOTFOUND)
}

func TestSDKMessages(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()
	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "App"}, nil)
	mustNoErr(t, "create app", err)

	payload := map[string]any{"email": "ünïcode@example.com", "n": float64(42)}
	msg, err := client.Message.Create(ctx, app.Id, models.MessageIn{
		EventType: "user.signup", EventId: ptr("evt-1"), Payload: payload,
		Channels: []string{"project-1"}, Tags: []string{"signup"},
	}, nil)
	mustNoErr(t, "create", err)
	if msg.EventType != "user.signup" || *msg.EventId != "evt-1" || !slices.Equal(msg.Channels, []string{"project-1"}) {
		t.Fatalf("created %+v", msg)
	}

	byEventID, err := client.Message.Get(ctx, app.Id, "evt-1", nil)
	mustNoErr(t, "get by eventId", err)
	if byEventID.Id != msg.Id || !cmp.Equal(payload, byEventID.Payload) || !slices.Equal(byEventID.Tags, []string{"signup"}) {
		t.Fatalf("get by eventId %+v, want %s with payload %v", byEventID, msg.Id, payload)
	}

	ts.Clock.Add(time.Second) // IDs sort by their second
	second, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "user.deleted", Payload: map[string]any{}}, nil)
	mustNoErr(t, "create second", err)
	list, err := client.Message.List(ctx, app.Id, nil)
	mustNoErr(t, "list", err)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.Id)
	}
	// Newest first.
	if diff := cmp.Diff([]string{second.Id, msg.Id}, ids); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	filtered, err := client.Message.List(ctx, app.Id, &svix.MessageListOptions{EventTypes: &[]string{"user.signup"}})
	mustNoErr(t, "list filtered", err)
	if len(filtered.Data) != 1 || filtered.Data[0].Id != msg.Id {
		t.Fatalf("filtered list %+v", filtered.Data)
	}

	// The same idempotency key twice: one message, the same answer.
	key := "idem-key-1"
	in := models.MessageIn{EventType: "order.paid", Payload: map[string]any{"order": "o-1"}}
	first, err := client.Message.Create(ctx, app.Id, in, &svix.MessageCreateOptions{IdempotencyKey: &key})
	mustNoErr(t, "idempotent create", err)
	retry, err := client.Message.Create(ctx, app.Id, in, &svix.MessageCreateOptions{IdempotencyKey: &key})
	mustNoErr(t, "idempotent retry", err)
	if first.Id != retry.Id {
		t.Fatalf("retry created %s, want the first message %s", retry.Id, first.Id)
	}
	if n := countMessages(t, ts.Store, app.Id); n != 3 {
		t.Fatalf("%d messages stored, want 3", n)
	}

	mustNoErr(t, "expunge", client.Message.ExpungeContent(ctx, app.Id, msg.Id))
	expunged, err := client.Message.Get(ctx, app.Id, msg.Id, nil)
	mustNoErr(t, "get expunged", err)
	if len(expunged.Payload) != 0 {
		t.Fatalf("payload after expunge %v, want empty", expunged.Payload)
	}
}

func TestSDKErrors(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()

	_, err := ts.sdk(t, "wrong-token").Application.List(ctx, nil)
	wantSDKError(t, "wrong token", err, http.StatusUnauthorized, herald.EUNAUTHORIZED)

	_, err = client.Application.Get(ctx, "no-such-app")
	wantSDKError(t, "missing app", err, http.StatusNotFound, herald.ENOTFOUND)

	_, err = client.Application.Create(ctx, models.ApplicationIn{Name: "A", Uid: ptr("dup")}, nil)
	mustNoErr(t, "create", err)
	_, err = client.Application.Create(ctx, models.ApplicationIn{Name: "B", Uid: ptr("dup")}, nil)
	wantSDKError(t, "duplicate uid", err, http.StatusConflict, herald.ECONFLICT)

	_, err = client.Endpoint.Create(ctx, "dup", models.EndpointIn{Url: "ftp://example.com"}, nil)
	wantSDKError(t, "bad url", err, http.StatusUnprocessableEntity, "")
	var se *svix.Error
	errors.As(err, &se)
	var body validationBody
	if err := json.Unmarshal(se.Body(), &body); err != nil {
		t.Fatal(err)
	}
	want := []fieldError{{Loc: []string{"body", "url"}, Msg: body.Detail[0].Msg, Type: "value_error"}}
	if diff := cmp.Diff(want, body.Detail); diff != "" {
		t.Fatalf("422 detail (-want +got):\n%s", diff)
	}
}
