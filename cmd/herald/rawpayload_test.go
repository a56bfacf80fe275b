package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald/postgres"
)

// TestRawPayloadEndToEnd: messages built with the official Svix Go SDK's
// NewMessageInRaw reach real loopback receivers as the raw string byte for
// byte (text that is not JSON, and JSON whose spacing, key order and
// escapes a re-encode would change), with the content type given
// (application/json when none is); the Standard Webhooks library verifies
// the v1 signature over the exact bytes received, and an endpoint with an
// ed25519 key gets a v1a signature over the same bytes. On SQLite and
// PostgreSQL.
func TestRawPayloadEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRawPayloadEndToEnd(t, startTestNode(t)) })
	t.Run("postgres", func(t *testing.T) {
		dbURL, _ := pgFreshSchema(t)
		pg, err := postgres.Open(t.Context(), postgres.Config{URL: dbURL, Keyring: testRing(t)})
		if err != nil {
			t.Fatal(err)
		}
		testRawPayloadEndToEnd(t, startTestNodeOn(t, pg, ""))
	})
}

func testRawPayloadEndToEnd(t *testing.T, tn *testNode) {
	client := tn.sdk(t)
	ctx := t.Context()

	type delivery struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	got := map[string]delivery{} // by endpoint path + " " + event type
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path+" "+r.Header.Get("Herald-Event-Type")] = delivery{r.Header.Clone(), body}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hmacEp, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL + "/hmac"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := client.Endpoint.GetSecret(ctx, app.Id, hmacEp.Id)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := standardwebhooks.NewWebhook(secret.Key)
	if err != nil {
		t.Fatal(err)
	}
	edKey, edPub := newEd25519Key(t)
	if _, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL + "/ed25519", Secret: &edKey}, nil); err != nil {
		t.Fatal(err)
	}
	publicKey := "whpk_" + base64.StdEncoding.EncodeToString(edPub)

	xml := "application/xml; charset=utf-8"
	for _, tc := range []struct {
		eventType, raw string
		contentType    *string
		want           string
	}{
		{"raw.xml", "<?xml version=\"1.0\"?>\n<invoice id=\"42\">Straße &amp; Co — 日本 🚀</invoice>\r\n", &xml, xml},
		{"raw.text", "not json at all: {\"a\":", ptr("text/plain"), "text/plain"},
		{"raw.json", "{ \"z\" : 1,\n\t\"a\":[1.50e3, \"\\u00e9\"],  \"<b>\": \"&\" }  ", nil, "application/json"},
	} {
		if _, err := client.Message.Create(ctx, app.Id, *svix.NewMessageInRaw(tc.eventType, tc.raw, tc.contentType), nil); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/hmac", "/ed25519"} {
			key := path + " " + tc.eventType
			var d delivery
			waitFor(t, key+" delivered", func() bool {
				mu.Lock()
				defer mu.Unlock()
				var ok bool
				d, ok = got[key]
				return ok
			})
			if string(d.body) != tc.raw {
				t.Errorf("%s: body %q, want %q byte for byte", key, d.body, tc.raw)
			}
			if ct := d.header.Get("Content-Type"); ct != tc.want {
				t.Errorf("%s: content type %q, want %q", key, ct, tc.want)
			}
			if path == "/hmac" {
				if err := verifier.Verify(d.body, d.header); err != nil {
					t.Errorf("%s: the Standard Webhooks library refuses the signature: %v", key, err)
				}
				// The signature covers exactly these bytes: one byte more
				// and it fails.
				if verifier.Verify(append(d.body, ' '), d.header) == nil {
					t.Errorf("%s: the signature verifies over other bytes too", key)
				}
			} else if !standardWebhooksV1a(t, publicKey, d.header, d.body) {
				t.Errorf("%s: v1a does not verify over the bytes received", key)
			}
		}
	}

	// Once its content is expunged, a raw message resent goes out as {}
	// labelled JSON, not as {} labelled with the raw payload's type.
	list, err := client.Message.List(ctx, app.Id, &svix.MessageListOptions{EventTypes: &[]string{"raw.xml"}})
	if err != nil || len(list.Data) != 1 {
		t.Fatalf("list raw.xml: %v %+v", err, list)
	}
	msgID := list.Data[0].Id
	if err := client.Message.ExpungeContent(ctx, app.Id, msgID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	delete(got, "/hmac raw.xml")
	mu.Unlock()
	if _, err := client.MessageAttempt.Resend(ctx, app.Id, msgID, hmacEp.Id, nil); err != nil {
		t.Fatal(err)
	}
	var d delivery
	waitFor(t, "the expunged message resent", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var ok bool
		d, ok = got["/hmac raw.xml"]
		return ok
	})
	if string(d.body) != "{}" || d.header.Get("Content-Type") != "application/json" {
		t.Errorf("expunged raw message resent as %q (%s), want {} (application/json)", d.body, d.header.Get("Content-Type"))
	}
	if err := verifier.Verify(d.body, d.header); err != nil {
		t.Errorf("expunged raw message resent: the signature does not verify: %v", err)
	}
}
