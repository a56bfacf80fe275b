package web

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	chrome "github.com/herald-webhooks/herald/internal/browser"
)

// serve runs the pages and the API behind one listener, as cmd/herald
// wires them.
func (e *env) serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	for _, p := range []string{"/console", "/console/", "/portal", "/portal/", "GET /{$}"} {
		mux.Handle(p, e.srv)
	}
	mux.Handle("/", e.api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// shots is where screenshots go: HERALD_WEB_SHOTS, or the test's
// temporary directory.
func shots(t *testing.T) string {
	if d := os.Getenv("HERALD_WEB_SHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// TestBrowserConsole signs in to the console in a real browser, reveals a
// secret in place and turns on the live log, with no script error and no
// CSP violation on the way.
func TestBrowserConsole(t *testing.T) {
	ctx := chrome.New(t)
	e := newEnv(t)
	srv := e.serve(t)
	e.call("POST", "/api/v1/event-type", map[string]any{"name": "invoice.paid", "description": "An invoice was paid"}, nil)
	appID, epID := e.newApp("Acme", "https://hooks.example.com/in")
	for range 3 {
		e.send(appID, "invoice.paid", map[string]any{"amount": 1})
	}
	e.attempt(503, "<h1>unavailable</h1>")
	e.srv.sampler.take(t.Context())
	dir := shots(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID(`token`)),
		chromedp.SendKeys(chromedp.ID(`token`), adminToken),
		chromedp.Submit(chromedp.ID(`login-form`)),
		chromedp.WaitVisible(chromedp.CSS(`.charts`)),
	); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1280, 360} {
		if err := chrome.Screenshot(ctx, filepath.Join(dir, "overview-"+itoa(w)+".png"), w); err != nil {
			t.Fatal(err)
		}
	}
	epPage := srv.URL + "/console/apps/" + appID + "/endpoints/" + epID
	if err := chromedp.Do(ctx,
		chromedp.Navigate(epPage),
		chromedp.WaitVisible(chromedp.CSS(`form[data-reveal] button`)),
		chromedp.Click(chromedp.CSS(`form[data-reveal] button`)),
		chromedp.WaitVisible(chromedp.ID(`secret-out`)),
	); err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(`secret-value`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Errorf("revealed %q", secret)
	}
	if url, err := chromedp.Run(ctx, chromedp.Location()); err != nil || url != epPage {
		t.Errorf("the reveal left the page: %s %v", url, err)
	}
	for _, w := range []int{1280, 360} {
		if err := chrome.Screenshot(ctx, filepath.Join(dir, "endpoint-"+itoa(w)+".png"), w); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.URL + "/console/apps/" + appID + "/messages"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(msgs),
		chromedp.WaitVisible(chromedp.ID(`live`)),
		chromedp.Click(chromedp.ID(`live`)),
	); err != nil {
		t.Fatal(err)
	}
	newest := e.send(appID, "invoice.paid", map[string]any{"amount": 2})
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href$="`+newest+`"]`))); err != nil {
		t.Fatalf("the live log did not show the new message: %v", err)
	}
	for _, w := range []int{1280, 360} {
		if err := chrome.Screenshot(ctx, filepath.Join(dir, "messages-"+itoa(w)+".png"), w); err != nil {
			t.Fatal(err)
		}
	}
	// At 360 px nothing but tables' own scroll boxes may overflow.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 800),
		chromedp.Navigate(epPage),
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
	); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 360 {
		t.Errorf("the endpoint page is %d px wide at 360 px", width)
	}
	chrome.NoErrors(t, ctx)
}

// TestBrowserPortal opens the portal with the link the API hands out: the
// script takes the token from the fragment, removes it and signs in.
func TestBrowserPortal(t *testing.T) {
	ctx := chrome.New(t)
	e := newEnv(t)
	srv := e.serve(t)
	appID, _ := e.newApp("Acme", "https://hooks.example.com/in")
	var access struct{ URL string }
	e.call("POST", "/api/v1/auth/app-portal-access/"+appID, map[string]any{}, &access)
	if !strings.Contains(access.URL, "/portal/login#token=appsk_") {
		t.Fatalf("portal link %q", access.URL)
	}
	link := srv.URL + access.URL[strings.Index(access.URL, "/portal/"):]
	link = strings.Replace(link, "/portal/login#", "/portal/login?accent=%23c0392b&theme=dark#", 1)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`a[href$="/endpoints/new"]`)),
	); err != nil {
		t.Fatal(err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if h1 != "Endpoints of Acme" || strings.Contains(loc, "token") {
		t.Errorf("after the link: h1 %q at %s", h1, loc)
	}
	for _, w := range []int{1280, 360} {
		if err := chrome.Screenshot(ctx, filepath.Join(shots(t), "portal-"+itoa(w)+".png"), w); err != nil {
			t.Fatal(err)
		}
	}
	chrome.NoErrors(t, ctx)
}

func itoa(n int) string { return strconv.Itoa(n) }
