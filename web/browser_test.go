package web

import (
	"context"
	"encoding/json"
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

// signIn opens start, which must lead to the console's sign-in form,
// signs in with the admin token and waits for the overview.
func signIn(t *testing.T, ctx context.Context, start string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(start),
		chromedp.WaitVisible(chromedp.ID(`token`)),
		chromedp.SendKeys(chromedp.ID(`token`), adminToken),
		chromedp.Submit(chromedp.ID(`login-form`)),
		chromedp.WaitVisible(chromedp.CSS(`.charts`)),
	); err != nil {
		t.Fatalf("sign in from %s: %v", start, err)
	}
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

	// The bare root leads to the sign-in page.
	signIn(t, ctx, srv.URL+"/")
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
	// The script posted the link's theme options with the token, and the
	// sign-in remembered them.
	mode, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.className`))
	if err != nil || mode != "dark" {
		t.Errorf("the portal after a link with theme=dark has class %q (%v)", mode, err)
	}
	for _, w := range []int{1280, 360} {
		if err := chrome.Screenshot(ctx, filepath.Join(shots(t), "portal-"+itoa(w)+".png"), w); err != nil {
			t.Fatal(err)
		}
	}
	chrome.NoErrors(t, ctx)
}

// cellBox is where an attempts table's cell is laid out.
type cellBox struct {
	Name                     string
	Left, Right, Top, Bottom float64
	Text, Label              string // the cell's text and its ::before content
}

// attemptBoxes lays out each row of the page's attempts table: the cells
// named (by their column's header) in names.
const attemptBoxes = `((names) => {
	const table = document.querySelector("table.attempts");
	const heads = Array.from(table.tHead.rows[0].cells, th => th.textContent.trim());
	return Array.from(table.tBodies[0].rows, tr => names.map(name => {
		const td = tr.cells[heads.indexOf(name)];
		const r = td.getBoundingClientRect();
		return {Name: name, Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom,
			Text: td.innerText.trim(), Label: getComputedStyle(td, "::before").content};
	}));
})`

// TestBrowserAttemptCards checks the attempts of a message's and of an
// endpoint's page on a phone: at 360 px each attempt is a card whose
// status, HTTP code and time come first, with nothing to scroll sideways;
// on a wide screen they stay a table.
func TestBrowserAttemptCards(t *testing.T) {
	ctx := chrome.New(t)
	e := newEnv(t)
	srv := e.serve(t)
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": "Acme"}, &app)
	var down, ok endpointOut
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": "https://failing-customer.example.com/webhooks/herald/orders/v2/receive"}, &down)
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": "https://ok.example.com/in"}, &ok)
	msgID := e.send(app.ID, "invoice.paid", map[string]any{"amount": 1})
	e.attempt(500, `{"error":"<b>down</b>","detail":"`+strings.Repeat("x", 300)+`"}`)
	base := srv.URL + "/console/apps/" + app.ID
	signIn(t, ctx, srv.URL+"/console/login")
	for _, pg := range []struct{ name, url, target string }{
		{"message", base + "/messages/" + msgID, "Endpoint"},
		{"endpoint", base + "/endpoints/" + down.ID, "Message"},
	} {
		names := []string{"Status", "HTTP", "Time", pg.target, "Response"}
		js := attemptBoxes + `(` + jsonString(t, names) + `)`
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(360, 800),
			chromedp.Navigate(pg.url),
			chromedp.WaitVisible(chromedp.ID(`attempts-h`)),
		); err != nil {
			t.Fatal(err)
		}
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]cellBox](js))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("%s page: no attempt rows", pg.name)
		}
		for _, row := range rows {
			status, code, at, target, resp := row[0], row[1], row[2], row[3], row[4]
			for _, c := range row {
				if c.Left < 0 || c.Right > 360 || c.Right <= c.Left {
					t.Errorf("%s page at 360 px: the %s cell is at x %.0f to %.0f", pg.name, c.Name, c.Left, c.Right)
				}
			}
			if status.Text != "fail" || !strings.Contains(code.Text, "500") || !strings.Contains(at.Text, "UTC") {
				t.Errorf("%s page at 360 px: status %q, HTTP %q, time %q", pg.name, status.Text, code.Text, at.Text)
			}
			if first := max(status.Bottom, code.Bottom, at.Bottom); first > target.Top+1 || first > resp.Top+1 {
				t.Errorf("%s page at 360 px: status, HTTP and time (down to y %.0f) do not come before the %s (y %.0f) and the response (y %.0f)",
					pg.name, first, pg.target, target.Top, resp.Top)
			}
			if !strings.Contains(code.Label, "HTTP") || !strings.Contains(target.Label, pg.target) {
				t.Errorf("%s page at 360 px: labels %q, %q", pg.name, code.Label, target.Label)
			}
		}
		over, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Math.max(document.documentElement.scrollWidth - innerWidth,
			...Array.from(document.querySelectorAll("table.attempts"), t => t.closest(".scroll").scrollWidth - t.closest(".scroll").clientWidth))`))
		if err != nil {
			t.Fatal(err)
		}
		if over > 0 {
			t.Errorf("%s page at 360 px: the attempts scroll %d px sideways", pg.name, over)
		}
		if err := chrome.Screenshot(ctx, filepath.Join(shots(t), pg.name+"-attempts-360.png"), 360); err != nil {
			t.Fatal(err)
		}

		// Wide, it is a table: one line of cells per attempt, headers shown.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`table.attempts thead th`))); err != nil {
			t.Fatal(err)
		}
		rows, err = chromedp.Run(ctx, chromedp.Evaluate[[][]cellBox](js))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			for _, c := range row {
				if c.Top != row[0].Top || c.Label != "none" {
					t.Errorf("%s page at 1280 px: the %s cell is at y %.0f (the row's first at %.0f), label %q", pg.name, c.Name, c.Top, row[0].Top, c.Label)
				}
			}
		}
	}
	chrome.NoErrors(t, ctx)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestBrowserXSS: an application name, an endpoint description and header
// value, a payload and a receiver's response body that hold markup and
// scripts are shown as text on the console's pages in a real browser: no
// script of theirs runs, no element of theirs is made, and the CSP has
// nothing to block.
func TestBrowserXSS(t *testing.T) {
	ctx := chrome.New(t)
	e := newEnv(t)
	srv := e.serve(t)
	const xss = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": "Evil " + xss}, &app)
	var ep endpointOut
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{
		"url": "https://hooks.example.com/in", "description": xss, "headers": map[string]string{"X-Note": xss},
	}, &ep)
	msgID := e.send(app.ID, "invoice.paid", map[string]any{"note": xss})
	e.attempt(500, xss)

	base := srv.URL + "/console/apps/" + app.ID
	signIn(t, ctx, srv.URL+"/console/login")
	for _, page := range []string{srv.URL + "/console/apps", base, base + "/endpoints/" + ep.ID, base + "/messages", base + "/messages/" + msgID} {
		if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		// Open every collapsed response body, so its text is in the page.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("details").forEach(d => d.open = true)`)); err != nil {
			t.Fatal(err)
		}
		ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__xss !== undefined`))
		if err != nil || ran {
			t.Errorf("%s: a script of the data ran (%v)", page, err)
		}
		made, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img[src=x]").length`))
		if err != nil || made != 0 {
			t.Errorf("%s: %d elements made from the data (%v)", page, made, err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "<script>window.__xss=1</script>") {
			t.Errorf("%s: the data is not shown as text", page)
		}
	}
	chrome.NoErrors(t, ctx)
}
