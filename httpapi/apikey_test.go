package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// createKey makes an API key through the API with the bootstrap token.
func createKey(t *testing.T, ts *testServer, body string) apiKeyCreatedOut {
	t.Helper()
	var out apiKeyCreatedOut
	ts.mustCall(t, http.StatusCreated, &out, "POST", "/api/v1/auth/api-key", body)
	return out
}

// waitLastUsed waits for the authenticator's background write of a key's
// last use (it never blocks the request) and returns the key as the API
// shows it then.
func waitLastUsed(t *testing.T, ts *testServer, id string) apiKeyOut {
	t.Helper()
	for range 1000 {
		var out apiKeyOut
		ts.mustCall(t, http.StatusOK, &out, "GET", "/api/v1/auth/api-key/"+id, "")
		if out.LastUsedAt != nil {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("key %s: last use never recorded", id)
	return apiKeyOut{}
}

// TestAPIKeyLifecycle: an admin key and an application key are created
// through the API, shown once, stored hashed, work with the official Svix
// SDK within their scope, record their last use, and answer 401 at the
// very next request after their revocation. On SQLite and PostgreSQL.
func TestAPIKeyLifecycle(t *testing.T) {
	onEachEngine(t, func(t *testing.T, ts *testServer) {
		ctx := t.Context()
		var appA, appB applicationOut
		ts.mustCall(t, http.StatusCreated, &appA, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
		ts.mustCall(t, http.StatusCreated, &appB, "POST", "/api/v1/app", `{"name":"B"}`)

		admin := createKey(t, ts, `{"name":"ci deploys","scope":"admin"}`)
		if !strings.HasPrefix(admin.Key, access.PrefixKey) || !strings.HasPrefix(admin.ID, herald.PrefixToken) {
			t.Fatalf("created %+v", admin)
		}
		want := apiKeyOut{ID: admin.ID, Name: "ci deploys", Scope: "admin", CreatedAt: formatTime(ts.Clock.Now())}
		if admin.apiKeyOut != want {
			t.Errorf("created %+v, want %+v", admin.apiKeyOut, want)
		}
		// Stored as its hash, found by it; never shown again.
		stored, err := ts.Store.GetTokenByHash(ctx, access.Hash(admin.Key))
		if err != nil || stored.ID != admin.ID || stored.Kind != herald.TokenKey {
			t.Fatalf("stored %+v, %v", stored, err)
		}
		res := ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/auth/api-key/"+admin.ID, "")
		if bytes.Contains(res.Body, []byte(admin.Key)) || bytes.Contains(res.Body, []byte(`"key"`)) {
			t.Errorf("GET shows the secret: %s", res.Body)
		}

		expires := ts.Clock.Now().Add(30 * 24 * time.Hour)
		appKey := createKey(t, ts, `{"name":"backend A","scope":"app:tenant-a","readOnly":false,"expiresAt":"`+expires.Format(time.RFC3339)+`"}`)
		if appKey.Scope != "app:"+appA.ID || appKey.AppID == nil || *appKey.AppID != appA.ID || appKey.ExpiresAt == nil || *appKey.ExpiresAt != formatTime(expires) {
			t.Errorf("app key %+v: want scope app:%s and its expiry", appKey.apiKeyOut, appA.ID)
		}

		// Used through the official SDK, each within its scope.
		adminSDK := ts.sdk(t, admin.Key)
		if _, err := adminSDK.Application.List(ctx, nil); err != nil {
			t.Fatalf("admin key lists applications: %v", err)
		}
		appSDK := ts.sdk(t, appKey.Key)
		if _, err := appSDK.Endpoint.Create(ctx, "tenant-a", models.EndpointIn{Url: "https://example.com/hook"}, nil); err != nil {
			t.Fatalf("app key creates an endpoint of its application: %v", err)
		}
		_, err = appSDK.Endpoint.List(ctx, appB.ID, nil)
		wantSDKError(t, "app key on another application", err, http.StatusForbidden, herald.EFORBIDDEN)
		_, err = appSDK.Application.List(ctx, nil)
		wantSDKError(t, "app key lists applications", err, http.StatusForbidden, herald.EFORBIDDEN)
		res = ts.call(t, "GET", "/api/v1/auth/api-key", "", "Authorization", "Bearer "+appKey.Key)
		if res.Status != http.StatusForbidden {
			t.Errorf("app key lists keys: %d %s", res.Status, res.Body)
		}

		for _, k := range []apiKeyCreatedOut{admin, appKey} {
			if got := waitLastUsed(t, ts, k.ID); *got.LastUsedAt != formatTime(ts.Clock.Now()) {
				t.Errorf("key %s last used %s, want %s", k.Name, *got.LastUsedAt, formatTime(ts.Clock.Now()))
			}
		}

		// Revoked (by the admin key itself, an admin too): the very next
		// request is refused.
		ts.Clock.Add(time.Minute)
		ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/auth/api-key/"+appKey.ID, "", "Authorization", "Bearer "+admin.Key)
		_, err = appSDK.Endpoint.List(ctx, "tenant-a", nil)
		wantSDKError(t, "revoked app key", err, http.StatusUnauthorized, herald.EUNAUTHORIZED)
		var got apiKeyOut
		ts.mustCall(t, http.StatusOK, &got, "GET", "/api/v1/auth/api-key/"+appKey.ID, "")
		if got.RevokedAt == nil || *got.RevokedAt != formatTime(ts.Clock.Now()) {
			t.Errorf("revoked key shows revokedAt %v, want %s", got.RevokedAt, formatTime(ts.Clock.Now()))
		}
		// Revoking again keeps the first time.
		ts.Clock.Add(time.Minute)
		ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/auth/api-key/"+appKey.ID, "")
		ts.mustCall(t, http.StatusOK, &got, "GET", "/api/v1/auth/api-key/"+appKey.ID, "")
		if *got.RevokedAt != formatTime(ts.Clock.Now().Add(-time.Minute)) {
			t.Errorf("revoked twice: revokedAt %s", *got.RevokedAt)
		}
		ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/auth/api-key/"+admin.ID, "")
		_, err = adminSDK.Application.List(ctx, nil)
		wantSDKError(t, "revoked admin key", err, http.StatusUnauthorized, herald.EUNAUTHORIZED)
	})
}

// TestAPIKeyRevokedOnEveryNode: two API nodes on one PostgreSQL database.
// A key made on node A works on node B; revoked on node A, it is refused
// by node B at the very next request (no node caches tokens).
func TestAPIKeyRevokedOnEveryNode(t *testing.T) {
	nodes := postgresNodes(t, 2)
	a := newTestServerOn(t, nodes[0])
	b := newTestServerOn(t, nodes[1])
	key := createKey(t, a, `{"name":"shared","scope":"admin"}`)
	bearer := "Bearer " + key.Key
	b.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", bearer)
	b.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"made on B"}`, "Authorization", bearer)
	a.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/auth/api-key/"+key.ID, "")
	res := b.call(t, "GET", "/api/v1/app", "", "Authorization", bearer)
	if res.Status != http.StatusUnauthorized || errorOut(t, res).Code != herald.EUNAUTHORIZED {
		t.Fatalf("node B after the revocation on node A: %d %s, want 401", res.Status, res.Body)
	}
	// Node B sees the revocation in the list too.
	var list listResponse[apiKeyOut]
	b.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/auth/api-key", "")
	if len(list.Data) != 0 {
		t.Errorf("node B lists revoked keys without include_revoked: %+v", list.Data)
	}
}

// TestAPIKeyValidation: each bad input is a 422 naming its field, and no
// key is made.
func TestAPIKeyValidation(t *testing.T) {
	ts := newTestServer(t)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
	past := ts.Clock.Now().Add(-time.Second).Format(time.RFC3339)
	now := ts.Clock.Now().Format(time.RFC3339)
	for _, c := range []struct{ body, field string }{
		{`{"scope":"admin"}`, "name"},
		{`{"name":"","scope":"admin"}`, "name"},
		{`{"name":"` + strings.Repeat("n", 257) + `","scope":"admin"}`, "name"},
		{`{"name":"a\u0007b","scope":"admin"}`, "name"},
		{`{"name":7,"scope":"admin"}`, "name"},
		{`{"name":"k"}`, "scope"},
		{`{"name":"k","scope":"root"}`, "scope"},
		{`{"name":"k","scope":"Admin"}`, "scope"},
		{`{"name":"k","scope":"app:"}`, "scope"},
		{`{"name":"k","scope":"app:tenant a"}`, "scope"},
		{`{"name":"k","scope":"app:no-such-app"}`, "scope"},
		{`{"name":"k","scope":"app:app_2VZ7Qm3k4wQpXxYz1"}`, "scope"},
		{`{"name":"k","scope":"app:` + herald.OperationalAppID + `"}`, "scope"},
		{`{"name":"k","scope":"admin","readOnly":"yes"}`, "readOnly"},
		{`{"name":"k","scope":"admin","expiresAt":"tomorrow"}`, "expiresAt"},
		{`{"name":"k","scope":"admin","expiresAt":"` + past + `"}`, "expiresAt"},
		{`{"name":"k","scope":"admin","expiresAt":"` + now + `"}`, "expiresAt"},
		{`{"name":"k","scope":"admin","expiresAt":"9999-12-31T00:00:00Z"}`, "expiresAt"},
		{`{"name":"k","scope":"admin","expiresAt":12}`, "expiresAt"},
	} {
		res := ts.call(t, "POST", "/api/v1/auth/api-key", c.body)
		if res.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s, want 422", c.body, res.Status, res.Body)
			continue
		}
		d := validationOut(t, res)
		if len(d) != 1 || d[0].Loc[len(d[0].Loc)-1] != c.field {
			t.Errorf("%s: %s, want one problem naming %s", c.body, res.Body, c.field)
		}
	}
	keys, err := ts.Store.ListTokens(t.Context(), herald.TokenListOptions{Kind: herald.TokenKey, ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil || len(keys) != 0 {
		t.Fatalf("refused requests made keys: %+v, %v", keys, err)
	}
	// null is no expiry; the scope may name the application by ID.
	app, err := ts.Store.GetApplication(t.Context(), "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	k := createKey(t, ts, `{"name":"k","scope":"app:`+app.ID+`","expiresAt":null}`)
	if k.ExpiresAt != nil || k.Scope != "app:"+app.ID {
		t.Errorf("created %+v", k.apiKeyOut)
	}
	if tok, err := ts.Store.GetToken(t.Context(), k.ID); err != nil || !tok.ExpiresAt.Equal(herald.NeverExpires) {
		t.Errorf("a key without expiry is stored with %v (%v)", tok, err)
	}
}

// TestAPIKeyExpiry: a key ends at its expiresAt; the list then shows it
// only with include_revoked.
func TestAPIKeyExpiry(t *testing.T) {
	ts := newTestServer(t)
	k := createKey(t, ts, `{"name":"temp","scope":"admin","readOnly":true,"expiresAt":"`+ts.Clock.Now().Add(time.Hour).Format(time.RFC3339Nano)+`"}`)
	bearer := "Bearer " + k.Key
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/auth/api-key", "", "Authorization", bearer)
	ts.mustCall(t, http.StatusForbidden, nil, "POST", "/api/v1/auth/api-key", `{"name":"x","scope":"admin"}`, "Authorization", bearer)
	ts.Clock.Add(time.Hour)
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/auth/api-key", "", "Authorization", bearer)
	var list listResponse[apiKeyOut]
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/auth/api-key", "")
	if len(list.Data) != 0 {
		t.Errorf("expired key listed: %+v", list.Data)
	}
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/auth/api-key?include_revoked=true", "")
	if len(list.Data) != 1 || list.Data[0].ID != k.ID {
		t.Errorf("include_revoked: %+v, want the expired key", list.Data)
	}
	ts.mustCall(t, http.StatusUnprocessableEntity, nil, "GET", "/api/v1/auth/api-key?include_revoked=maybe", "")
}

// TestAPIKeyList: newest first, iterator paging over the keys in force
// (ended keys skipped even when they fill whole store pages), every key
// with include_revoked; never an app-portal token or a session, which GET
// and DELETE do not find either.
func TestAPIKeyList(t *testing.T) {
	ts := newTestServer(t)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A"}`)
	var ids []string // oldest first
	for i := range 9 {
		ts.Clock.Add(time.Second)
		ids = append(ids, createKey(t, ts, `{"name":"key `+string(rune('0'+i))+`","scope":"admin"}`).ID)
	}
	// Keys 2–6 end: a run longer than a page of two.
	for _, i := range []int{2, 3, 4, 5, 6} {
		ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/auth/api-key/"+ids[i], "")
	}
	portal := issue(t, ts, herald.Token{Kind: herald.TokenPortal, AppID: app.ID, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixPortal)
	portalTok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(portal))
	if err != nil {
		t.Fatal(err)
	}
	walk := func(query string) []string {
		t.Helper()
		var got []string
		it := ""
		for range 20 {
			var page listResponse[apiKeyOut]
			ts.mustCall(t, http.StatusOK, &page, "GET", "/api/v1/auth/api-key?limit=2"+query+it, "")
			for _, k := range page.Data {
				got = append(got, k.ID)
			}
			if page.Done {
				return got
			}
			it = "&iterator=" + *page.Iterator
		}
		t.Fatalf("list %s never done", query)
		return nil
	}
	if got, want := walk(""), []string{ids[8], ids[7], ids[1], ids[0]}; !equalStrings(got, want) {
		t.Errorf("keys in force: %v, want %v", got, want)
	}
	all := []string{ids[8], ids[7], ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
	if got := walk("&include_revoked=true"); !equalStrings(got, all) {
		t.Errorf("all keys: %v, want %v", got, all)
	}
	if got := walk("&order=ascending"); !equalStrings(got, []string{ids[0], ids[1], ids[7], ids[8]}) {
		t.Errorf("ascending: %v", got)
	}
	// Back from the last page: the page before it.
	var page listResponse[apiKeyOut]
	ts.mustCall(t, http.StatusOK, &page, "GET", "/api/v1/auth/api-key?limit=2&iterator=-"+ids[0], "")
	if len(page.Data) != 2 || page.Data[0].ID != ids[7] || page.Data[1].ID != ids[1] {
		t.Errorf("previous page: %+v", page.Data)
	}
	ts.mustCall(t, http.StatusNotFound, nil, "GET", "/api/v1/auth/api-key/"+portalTok.ID, "")
	ts.mustCall(t, http.StatusNotFound, nil, "DELETE", "/api/v1/auth/api-key/"+portalTok.ID, "")
	ts.mustCall(t, http.StatusNotFound, nil, "DELETE", "/api/v1/auth/api-key/tok_unknown", "")
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/"+app.ID+"/endpoint", "", "Authorization", "Bearer "+portal)
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// TestAPIKeyIdempotentCreate: a retry with the same idempotency key gets
// the same key, not a second one, and without its secret, which is stored
// nowhere in the database (its files are searched for it).
func TestAPIKeyIdempotentCreate(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "herald.db"), Keyring: testkeys.Ring(t), Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ts := newTestServerOn(t, store)
	body := `{"name":"retried","scope":"admin"}`
	first := ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/auth/api-key", body, "Idempotency-Key", "create-1")
	var created apiKeyCreatedOut
	if err := json.Unmarshal(first.Body, &created); err != nil || created.Key == "" {
		t.Fatalf("first answer %s: %v", first.Body, err)
	}
	again := ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/auth/api-key", body, "Idempotency-Key", "create-1")
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry not replayed: %s", again.Body)
	}
	var replayed map[string]any
	if err := json.Unmarshal(again.Body, &replayed); err != nil {
		t.Fatal(err)
	}
	if _, ok := replayed["key"]; ok || replayed["id"] != created.ID {
		t.Errorf("replay %s: want key %s without its secret", again.Body, created.ID)
	}
	var list listResponse[apiKeyOut]
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/auth/api-key", "")
	if len(list.Data) != 1 {
		t.Errorf("%d keys after a retried create, want 1", len(list.Data))
	}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app", "", "Authorization", "Bearer "+created.Key)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range filesHolding(t, dir, created.Key) {
		t.Errorf("%s holds the key's secret", f)
	}
}
