package httpapi

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/signature"
)

// Svix's ed25519 test key (svix-server e2e_endpoint.rs) and its public key.
const (
	svixSecretKey = "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
	svixPublicKey = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
)

// TestEndpointEd25519Secret: the official Svix SDK gives an endpoint a
// whsk_ key at creation and by rotation, unchanged; Herald stores it as an
// ed25519 key, and GET …/secret answers its public key (whpk_), as Svix
// does, never the private key. The rotate body's keyType (Herald's
// extension) generates one.
func TestEndpointEd25519Secret(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	ctx := t.Context()
	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "App", Uid: ptr("app-1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(epID string) []herald.SigningSecret {
		t.Helper()
		ep, err := ts.Store.GetEndpoint(ctx, app.Id, epID)
		if err != nil {
			t.Fatal(err)
		}
		return ep.Secrets
	}
	secretOf := func(epID string) string {
		t.Helper()
		out, err := client.Endpoint.GetSecret(ctx, app.Id, epID)
		if err != nil {
			t.Fatal(err)
		}
		return out.Key
	}
	vector, err := signature.ParseSecretKey(svixSecretKey)
	if err != nil {
		t.Fatal(err)
	}

	// Created with a whsk_ key.
	ep, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook", Secret: ptr(svixSecretKey)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stored(ep.Id); len(got) != 1 || got[0].Type != herald.SecretEd25519 || !bytes.Equal(got[0].Key, vector) {
		t.Fatalf("stored secrets %+v, want the ed25519 key", got)
	}
	if got := secretOf(ep.Id); got != svixPublicKey {
		t.Fatalf("GET secret = %q, want the public key %q", got, svixPublicKey)
	}

	// HMAC → ed25519 by rotation: both kinds kept for the grace period.
	hmacEp, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldHMAC := secretOf(hmacEp.Id)
	if err := client.Endpoint.RotateSecret(ctx, app.Id, hmacEp.Id, models.EndpointSecretRotateIn{Key: ptr(svixSecretKey)}, nil); err != nil {
		t.Fatal(err)
	}
	got := stored(hmacEp.Id)
	if len(got) != 2 || got[0].Type != herald.SecretEd25519 || got[1].Type != herald.SecretHMAC ||
		signature.FormatSecret(got[1].Key) != oldHMAC || !got[1].ExpiresAt.Equal(ts.Clock.Now().Add(24*time.Hour)) {
		t.Fatalf("secrets after rotating to ed25519: %+v", got)
	}
	if got := secretOf(hmacEp.Id); got != svixPublicKey {
		t.Fatalf("GET secret after rotation = %q", got)
	}

	// ed25519 → HMAC: a rotation without a key generates an HMAC key, as
	// Svix does by default.
	if err := client.Endpoint.RotateSecret(ctx, app.Id, ep.Id, models.EndpointSecretRotateIn{}, nil); err != nil {
		t.Fatal(err)
	}
	got = stored(ep.Id)
	if len(got) != 2 || got[0].Type != herald.SecretHMAC || got[1].Type != herald.SecretEd25519 || !bytes.Equal(got[1].Key, vector) {
		t.Fatalf("secrets after rotating to HMAC: %+v", got)
	}
	if _, err := signature.ParseSecret(secretOf(ep.Id)); err != nil {
		t.Fatalf("GET secret after rotating to HMAC: %v", err)
	}

	// keyType "ed25519" generates a fresh ed25519 key; "hmac" an HMAC one.
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/app/app-1/endpoint/"+ep.Id+"/secret/rotate", `{"keyType":"ed25519","gracePeriodSeconds":0}`)
	// With no grace the HMAC key it replaces stops at once; the vector key
	// keeps the grace of its own rotation.
	got = stored(ep.Id)
	if len(got) != 2 || got[0].Type != herald.SecretEd25519 || len(got[0].Key) != ed25519.PrivateKeySize ||
		bytes.Equal(got[0].Key, vector) || !bytes.Equal(got[1].Key, vector) {
		t.Fatalf("secrets after a generated ed25519 rotation with no grace: %+v", got)
	}
	want := signature.FormatPublicKey(ed25519.PrivateKey(got[0].Key).Public().(ed25519.PublicKey))
	if pub := secretOf(ep.Id); pub != want {
		t.Fatalf("GET secret = %q, want %q", pub, want)
	}
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/app/app-1/endpoint/"+ep.Id+"/secret/rotate", `{"keyType":"hmac"}`)
	if got = stored(ep.Id); len(got) != 3 || got[0].Type != herald.SecretHMAC || len(got[0].Key) != signature.NewSecretSize {
		t.Fatalf("secrets after a generated HMAC rotation: %+v", got)
	}

	// PATCH with a whsk_ secret replaces the current secret at once.
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/app-1/endpoint/"+ep.Id, fmt.Sprintf(`{"secret":%q}`, svixSecretKey))
	if got = stored(ep.Id); len(got) != 1 || got[0].Type != herald.SecretEd25519 || !bytes.Equal(got[0].Key, vector) {
		t.Fatalf("secrets after PATCH: %+v", got)
	}
}

// TestEndpointEd25519SecretRefused: a public key, a damaged whsk_ key, an
// unknown keyType or a keyType beside a key are 422s naming the field, and
// change nothing.
func TestEndpointEd25519SecretRefused(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"App","uid":"app-1"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/app-1/endpoint", `{"url":"https://example.com/hook"}`)
	before, err := ts.Store.GetEndpoint(t.Context(), appIDOf(t, ts, "app-1"), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The public half of Svix's key changed: Svix refuses it too.
	mismatched := "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlaaaaaaaaaaAJ6p9lMicMFs6Kvg=="
	truncated := svixSecretKey[:len(svixSecretKey)-4]
	for _, tc := range []struct {
		method, path, body string
		loc                []string
	}{
		{"POST", "/api/v1/app/app-1/endpoint", fmt.Sprintf(`{"url":"https://example.com","secret":%q}`, svixPublicKey), []string{"body", "secret"}},
		{"POST", "/api/v1/app/app-1/endpoint", fmt.Sprintf(`{"url":"https://example.com","secret":%q}`, mismatched), []string{"body", "secret"}},
		{"POST", "/api/v1/app/app-1/endpoint", fmt.Sprintf(`{"url":"https://example.com","secret":%q}`, truncated), []string{"body", "secret"}},
		{"PATCH", "/api/v1/app/app-1/endpoint/" + ep.ID, fmt.Sprintf(`{"secret":%q}`, svixPublicKey), []string{"body", "secret"}},
		{"POST", "/api/v1/app/app-1/endpoint/" + ep.ID + "/secret/rotate", fmt.Sprintf(`{"key":%q}`, svixPublicKey), []string{"body", "key"}},
		{"POST", "/api/v1/app/app-1/endpoint/" + ep.ID + "/secret/rotate", fmt.Sprintf(`{"key":%q}`, mismatched), []string{"body", "key"}},
		{"POST", "/api/v1/app/app-1/endpoint/" + ep.ID + "/secret/rotate", `{"keyType":"rsa"}`, []string{"body", "keyType"}},
		{"POST", "/api/v1/app/app-1/endpoint/" + ep.ID + "/secret/rotate", fmt.Sprintf(`{"keyType":"ed25519","key":%q}`, svixSecretKey), []string{"body", "keyType"}},
	} {
		items := validationOut(t, ts.call(t, tc.method, tc.path, tc.body))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, tc.loc) {
			t.Errorf("%s %s %s: %+v, want one problem at %v", tc.method, tc.path, tc.body, items, tc.loc)
		}
	}
	after, err := ts.Store.GetEndpoint(t.Context(), appIDOf(t, ts, "app-1"), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(before, after) {
		t.Errorf("a refused request changed the endpoint:\n%s", cmp.Diff(before, after))
	}
	eps, err := ts.Store.ListEndpoints(t.Context(), appIDOf(t, ts, "app-1"), herald.ListOptions{Limit: 10})
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints after refused creations: %d, %v", len(eps), err)
	}
}
