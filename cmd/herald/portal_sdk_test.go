package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald/internal/browser"
)

// jsSDKDir holds the pinned Svix JS SDK (package.json, package-lock.json);
// .ci/run installs it with npm ci.
const jsSDKDir = "testdata/jssdk"

// jsAppPortalAccess runs the official Svix JS SDK's appPortalAccess
// against url and returns its answer. It skips when Node.js or the SDK is
// missing.
func jsAppPortalAccess(t *testing.T, server, token, app string) models.AppPortalAccessOut {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("the JS SDK test needs Node.js")
	}
	if _, err := os.Stat(filepath.Join(jsSDKDir, "node_modules", "svix")); err != nil {
		t.Skipf("the JS SDK test needs the Svix JS SDK: npm ci --prefix cmd/herald/%s (.ci/run does)", jsSDKDir)
	}
	cmd := exec.CommandContext(t.Context(), node, "portal.mjs", server, token, app)
	cmd.Dir = jsSDKDir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node portal.mjs: %v\n%s", err, stderr)
	}
	var access models.AppPortalAccessOut
	if err := json.Unmarshal(out, &access); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return access
}

// openPortal opens an app-portal link in a real browser and returns the
// text of the page it lands on: the portal of that application.
func openPortal(t *testing.T, link string) string {
	t.Helper()
	ctx := browser.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(link),
		// The login page's script exchanges the token and moves on.
		chromedp.WaitVisible(chromedp.CSS(`form.logout`)),
	); err != nil {
		t.Fatalf("open %s: %v", link, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, "token=") {
		t.Errorf("the token stayed in the address bar: %s", loc)
	}
	browser.NoErrors(t, ctx)
	return text
}

// TestSDKPortalLinks: the official Go and JS SDKs' appPortalAccess return a
// link that opens the portal of that application, in a real browser, and
// of no other.
func TestSDKPortalLinks(t *testing.T) {
	tn := startTestNode(t)
	client := tn.sdk(t)
	ctx := t.Context()
	if _, err := client.Application.Create(ctx, models.ApplicationIn{Name: "Other Corp", Uid: ptr("other")}, nil); err != nil {
		t.Fatal(err)
	}
	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "Acme Portal", Uid: ptr("acme")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	goOut, err := client.Authentication.AppPortalAccess(ctx, app.Id, models.AppPortalAccessIn{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]models.AppPortalAccessOut{
		"Go SDK": *goOut,
		"JS SDK": jsAppPortalAccess(t, tn.url, tn.token, "acme"),
	} {
		if !strings.HasPrefix(out.Url, tn.url+"/portal/login#") {
			t.Errorf("%s: url %q", name, out.Url)
		}
		// The link's page itself carries no secret: it is in the fragment.
		res, err := http.Get(strings.SplitN(out.Url, "#", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET the link: %d", name, res.StatusCode)
		}
		text := openPortal(t, out.Url)
		if !strings.Contains(text, "Acme Portal") || strings.Contains(text, "Other Corp") {
			t.Errorf("%s: the portal page shows:\n%s", name, text)
		}
	}
}

func ptr[T any](v T) *T { return &v }
