package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald/internal/browser"
)

// envScreenshots names the directory TestConsoleEndToEnd saves the
// README's screenshots in; unset, it takes none.
const envScreenshots = "HERALD_SCREENSHOTS"

// rotationWindow bounds how long after a secret's rotation a delivery
// may still be signed with the old secret alone: dispatch's endpoint cache
// TTL (2 s) and some slack.
const rotationWindow = 5 * time.Second

// hook is one request a consoleReceiver got.
type hook struct {
	id     string
	header http.Header
	body   []byte
}

// consoleReceiver is a loopback endpoint that answers every request with
// one status and body and keeps what it got.
type consoleReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hook
}

func newConsoleReceiver(t *testing.T, code int, body string) *consoleReceiver {
	t.Helper()
	r := &consoleReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, hook{id: req.Header.Get("webhook-id"), header: req.Header.Clone(), body: b})
		r.mu.Unlock()
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// of returns the requests that carried webhook-id id, in arrival order.
func (r *consoleReceiver) of(id string) []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.got {
		if h.id == id {
			out = append(out, h)
		}
	}
	return out
}

// waitHooks waits until the receiver got n requests for message id and
// returns them.
func (r *consoleReceiver) waitHooks(t *testing.T, id string, n int) []hook {
	t.Helper()
	waitFor(t, "the receiver to get "+id+" "+strconv.Itoa(n)+" times", func() bool { return len(r.of(id)) >= n })
	return r.of(id)
}

// verifyHook checks a request's Standard Webhooks signature with secret.
func verifyHook(t *testing.T, secret string, h hook) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(h.body, h.header)
}

// TestConsoleEndToEnd drives the console in a real browser against a real
// node delivering to real loopback receivers: sign in, create an
// application and endpoints through the forms, watch a message sent by the
// API arrive in the live log, resend it, rotate the secret and check the
// next delivery's signature, read a failing endpoint's response as text,
// and sign out. With HERALD_SCREENSHOTS=dir it also saves the README's
// screenshots there.
func TestConsoleEndToEnd(t *testing.T) {
	ctx := browser.New(t)
	tn := startTestNode(t)
	good := newConsoleReceiver(t, http.StatusOK, "")
	const failBody = `{"error":"<b>down</b>"}`
	down := newConsoleReceiver(t, http.StatusInternalServerError, failBody)
	dialogs := acceptDialogs(t, ctx)
	shots := screenshotDir(t)
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// 1. Sign in through the login form.
	run(
		chromedp.Navigate(tn.url+"/console/"),
		chromedp.WaitVisible(chromedp.ID(`login-form`)),
		chromedp.SendKeys(chromedp.ID(`token`), tn.token),
	)
	clickLoad(t, ctx, chromedp.CSS(`#login-form button[type=submit]`))
	run(chromedp.WaitVisible(chromedp.CSS(`.charts`)))
	if p := pagePath(t, ctx); p != "/console/" {
		t.Fatalf("after signing in: at %s", p)
	}

	// 2. An application and an endpoint, through the console's forms.
	clickLoad(t, ctx, chromedp.CSS(`nav a[href="/console/apps"]`))
	clickLoad(t, ctx, chromedp.CSS(`a[href="/console/apps/new"]`))
	run(chromedp.SendKeys(chromedp.ID(`name`), "Acme Corp"))
	clickLoad(t, ctx, chromedp.CSS(`form.stack button[type=submit]`))
	appID, found := strings.CutPrefix(pagePath(t, ctx), "/console/apps/")
	if !found || strings.Contains(appID, "/") {
		t.Fatalf("after creating the application: at %s", pagePath(t, ctx))
	}
	if got := text(`p.flash`); got != "Application created." {
		t.Errorf("flash %q", got)
	}
	epID := createEndpoint(t, ctx, appID, good.srv.URL+"/orders", "Orders service")
	epPage := tn.url + "/console/apps/" + appID + "/endpoints/" + epID

	// The secret revealed in place is the API's.
	oldSecret := revealSecret(t, ctx)
	if api := endpointSecret(t, tn, appID, epID); oldSecret != api || !strings.HasPrefix(api, "whsec_") {
		t.Fatalf("the page revealed %q, the API has %q", oldSecret, api)
	}

	// 3, 4. The live log shows a message the API sends after it opened.
	// The log is opened before the message exists; turning on "live"
	// fetches the table at once (and every 5 s after), so the row appears
	// without a reload.
	run(
		chromedp.Navigate(tn.url+"/console/apps/"+appID+"/messages"),
		chromedp.WaitVisible(chromedp.ID(`live`)),
	)
	if got := text(`#msgtable`); got != "No messages." {
		t.Errorf("the new application's log shows %q", got)
	}
	msg1 := sendMessage(t, tn, appID, map[string]any{"order": 1, "note": "first"})
	row := `#msgtable a[href="/console/apps/` + appID + `/messages/` + msg1 + `"]`
	run(
		chromedp.Click(chromedp.ID(`live`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	if loaded := pageURL(t, ctx); !strings.HasSuffix(loaded, "/messages") {
		t.Errorf("the live log left the page for %s", loaded)
	}
	first := good.waitHooks(t, msg1, 1)[0]
	waitDelivery(t, tn, appID, msg1, epID, "success", 1)

	// 5. The message's page shows the attempt; resend delivers it again
	// with the same webhook-id.
	clickLoad(t, ctx, chromedp.CSS(row))
	rows := attemptRows(t, ctx)
	if len(rows) != 1 || rows[0].HTTP != "200" || rows[0].Status != "success" || rows[0].Endpoint != epID ||
		rows[0].URL != good.srv.URL+"/orders" || rows[0].Trigger != "scheduled" {
		t.Fatalf("attempts on the message page: %+v", rows)
	}
	clickLoad(t, ctx, chromedp.CSS(`button[aria-label="Resend to `+good.srv.URL+`/orders"]`))
	if got := text(`p.flash`); got != "The message is queued for that endpoint again." {
		t.Errorf("flash after resend %q", got)
	}
	again := good.waitHooks(t, msg1, 2)
	if len(again) != 2 || !bytes.Equal(again[1].body, first.body) {
		t.Fatalf("the receiver got %d requests for %s", len(again), msg1)
	}
	waitDelivery(t, tn, appID, msg1, epID, "success", 2)
	run(chromedp.Reload())
	rows = attemptRows(t, ctx)
	if len(rows) != 2 || rows[0].HTTP != "200" || rows[0].Trigger != "manual" {
		t.Errorf("attempts after the resend: %+v", rows)
	}

	// 6. Rotate the secret (the page asks first); the next delivery is
	// signed with the new one.
	run(chromedp.Navigate(epPage), chromedp.WaitVisible(chromedp.CSS(`form[action$="/rotate"] button`)))
	clickLoad(t, ctx, chromedp.CSS(`form[action$="/rotate"] button`))
	if d := dialogs(); len(d) != 1 || !strings.HasPrefix(d[0], "Rotate the signing secret?") {
		t.Errorf("dialogs: %q", d)
	}
	if got := text(`p.flash`); !strings.HasPrefix(got, "Secret rotated") {
		t.Errorf("flash after rotating %q", got)
	}
	newSecret := revealSecret(t, ctx)
	if api := endpointSecret(t, tn, appID, epID); newSecret == oldSecret || api != newSecret {
		t.Fatalf("after rotating: page %q, API %q, old %q", newSecret, api, oldSecret)
	}

	rotatedAt := time.Now()
	// The next delivery is signed with the new secret, and with the old
	// one, which keeps signing for 24 hours. The dispatcher reuses an
	// endpoint it read for up to 2 s (dispatch's cacheTTL) and hears of no
	// rotation, so a delivery within those 2 s may still carry the old
	// secret's signature alone: receivers accept it (the old secret is
	// valid), and the test resends until the new secret signs, allowing
	// that window and no more.
	probe := sendMessage(t, tn, appID, map[string]any{"order": 2, "note": "after the rotation"})
	next := good.waitHooks(t, probe, 1)[0]
	if err := verifyHook(t, oldSecret, next); err != nil {
		t.Errorf("the first delivery after the rotation does not verify with the old secret: %v", err)
	}
	if err := verifyHook(t, oldSecret, first); err != nil {
		t.Errorf("the delivery before the rotation does not verify with the old secret: %v", err)
	}
	if err := verifyHook(t, newSecret, first); err == nil {
		t.Error("the delivery before the rotation verifies with the new secret")
	}
	signed, resends := next, 0
	for verifyHook(t, newSecret, signed) != nil {
		if time.Since(rotatedAt) > rotationWindow {
			t.Fatalf("%v after the rotation, deliveries are not signed with the new secret (%d resends; signatures %s)",
				rotationWindow, resends, signed.header.Get("webhook-signature"))
		}
		time.Sleep(200 * time.Millisecond) // pace the resends: each is an attempt on the endpoint's page
		resends++
		tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/"+appID+"/msg/"+probe+"/endpoint/"+epID+"/resend", map[string]any{})
		signed = good.waitHooks(t, probe, 1+resends)[resends]
	}
	if resends > 0 {
		t.Logf("the first delivery after the rotation was signed with the old secret alone; the new one signed %d resends and %v later",
			resends, time.Since(rotatedAt).Round(time.Millisecond))
	}
	if err := verifyHook(t, oldSecret, signed); err != nil {
		t.Errorf("a delivery signed with the new secret is not signed with the old one too: %v", err)
	}

	// 7. A second endpoint answers 500 with HTML in its body.
	downID := createEndpoint(t, ctx, appID, down.srv.URL+"/fail", "Always down")
	msg2 := sendMessage(t, tn, appID, map[string]any{"order": 3, "note": "to both endpoints"})
	good.waitHooks(t, msg2, 1)
	down.waitHooks(t, msg2, 1)
	waitDelivery(t, tn, appID, msg2, epID, "success", 1)
	waitDelivery(t, tn, appID, msg2, downID, "fail", 1)

	run(chromedp.Navigate(tn.url + "/console/apps/" + appID + "/messages/" + msg2))
	failed := 0
	for _, r := range attemptRows(t, ctx) {
		if r.Endpoint != downID {
			continue
		}
		failed++
		if r.HTTP != "500" || r.URL != down.srv.URL+"/fail" || r.Body != failBody || r.Elements != 0 {
			t.Errorf("the failing endpoint's attempt shows HTTP %q, URL %q, body %q with %d elements in it", r.HTTP, r.URL, r.Body, r.Elements)
		}
	}
	if failed == 0 {
		t.Fatal("the message page shows no attempt to the failing endpoint")
	}
	// Open the first failed attempt's response, as a reader would.
	summary := `table.attempts tbody tr:has(a[href$="/endpoints/` + downID + `"]) details summary`
	body := `table.attempts tbody tr:has(a[href$="/endpoints/` + downID + `"]) details pre.body`
	run(chromedp.Click(chromedp.CSS(summary)), chromedp.WaitVisible(chromedp.CSS(body)))
	if got := text(body); got != failBody {
		t.Errorf("the opened response reads %q, want %q", got, failBody)
	}
	noOverflow(t, ctx, 360)
	if shots != "" {
		shoot(t, ctx, shots, "console-message.png", 1280)
		shoot(t, ctx, shots, "console-message-360.png", 360)
		run(chromedp.Navigate(epPage), chromedp.WaitVisible(chromedp.ID(`attempts-h`)))
		shoot(t, ctx, shots, "console-endpoint.png", 1280)
		run(chromedp.Navigate(tn.url+"/console/"), chromedp.WaitVisible(chromedp.CSS(`.charts`)))
		shoot(t, ctx, shots, "console-overview.png", 1280)
	}

	// 8. Sign out: the console's pages lead to the login page again.
	clickLoad(t, ctx, chromedp.CSS(`form.logout button`))
	if p := pagePath(t, ctx); p != "/console/login" {
		t.Errorf("after signing out: at %s", p)
	}
	if got := text(`p.flash`); got != "You have signed out." {
		t.Errorf("flash after signing out %q", got)
	}
	for _, p := range []string{"/console/", "/console/apps/" + appID + "/messages/" + msg1, "/console/apps/" + appID + "/endpoints/" + epID} {
		run(chromedp.Navigate(tn.url+p), chromedp.WaitVisible(chromedp.ID(`login-form`)))
		if got := pagePath(t, ctx); got != "/console/login" {
			t.Errorf("%s after signing out: at %s", p, got)
		}
	}

	// The app portal, opened with the link the API hands out.
	var access struct {
		URL string `json:"url"`
	}
	decodeJSON(t, tn.mustCallRaw(t, http.StatusOK, "POST", "/api/v1/auth/app-portal-access/"+appID, map[string]any{}), &access)
	run(
		chromedp.Navigate(access.URL),
		chromedp.WaitVisible(chromedp.CSS(`form.logout`)),
	)
	if h1 := text(`h1`); h1 != "Endpoints of Acme Corp" {
		t.Errorf("portal heading %q", h1)
	}
	if loc := pageURL(t, ctx); strings.Contains(loc, "token") {
		t.Errorf("the portal token stayed in the address bar: %s", loc)
	}
	if shots != "" {
		shoot(t, ctx, shots, "portal-endpoints.png", 1280)
	}
	browser.NoErrors(t, ctx)
}

// createEndpoint creates an endpoint through the application page's "New
// endpoint" form and returns its ID, leaving the browser on its page.
func createEndpoint(t *testing.T, ctx context.Context, appID, target, description string) string {
	t.Helper()
	base := "/console/apps/" + appID
	if pagePath(t, ctx) != base {
		if err := chromedp.Do(ctx, chromedp.Navigate(pageOrigin(t, ctx)+base)); err != nil {
			t.Fatal(err)
		}
	}
	clickLoad(t, ctx, chromedp.CSS(`a[href="`+base+`/endpoints/new"]`))
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID(`url`), target),
		chromedp.SendKeys(chromedp.ID(`description`), description),
	); err != nil {
		t.Fatal(err)
	}
	clickLoad(t, ctx, chromedp.CSS(`form.stack button[type=submit]`))
	epID, ok := strings.CutPrefix(pagePath(t, ctx), base+"/endpoints/")
	if !ok || epID == "" || strings.Contains(epID, "/") {
		t.Fatalf("after creating the endpoint: at %s", pageURL(t, ctx))
	}
	if url, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`dd.url`))); err != nil || url != target {
		t.Fatalf("the endpoint page shows URL %q (%v), want %q", url, err, target)
	}
	return epID
}

// revealSecret clicks the endpoint page's "Reveal secret" and returns what
// the page shows; the script shows it in place, without leaving the page.
func revealSecret(t *testing.T, ctx context.Context) string {
	t.Helper()
	before := pageURL(t, ctx)
	// A previous reveal's value is still in the page until the new one
	// replaces it: clear it so the wait below sees the new one.
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("secret-value").textContent = ""; document.getElementById("secret-out").hidden = true`),
		chromedp.Click(chromedp.CSS(`form[data-reveal] button`)),
		chromedp.WaitVisible(chromedp.ID(`secret-out`)),
	); err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(`secret-value`)))
	if err != nil {
		t.Fatal(err)
	}
	if after := pageURL(t, ctx); after != before {
		t.Errorf("revealing the secret left %s for %s", before, after)
	}
	return secret
}

// attemptRow is a row of a message page's attempts table, as the page
// shows it: Endpoint is the ID its link leads to, URL the text it shows.
type attemptRow struct {
	Endpoint, URL, Status, HTTP, Trigger string
	// Body is the text of the response; Elements counts the HTML elements
	// inside it, which must be none: the body is text.
	Body     string
	Elements int
}

func attemptRows(t *testing.T, ctx context.Context) []attemptRow {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID(`attempts-h`))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]attemptRow](`Array.from(document.querySelectorAll("table.attempts tbody tr"), tr => {
			const cell = label => tr.querySelector('td[data-label="' + label + '"]').textContent.trim();
			const ep = tr.querySelector('td[data-label="Endpoint"] a');
			const pre = tr.querySelector("pre.body");
			return {
				Endpoint: ep.getAttribute("href").split("/").pop(), URL: ep.textContent.trim(),
				Status: cell("Status"), HTTP: cell("HTTP"), Trigger: cell("Trigger"),
				Body: pre ? pre.textContent : "", Elements: pre ? pre.querySelectorAll("*").length : 0,
			};
		})`))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// clickLoad clicks sel and waits for the page the click loads.
func clickLoad[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(sel))); err != nil {
		t.Fatalf("click %v: %v", sel, err)
	}
}

func pageURL(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// pagePath is the path of the page the browser shows.
func pagePath(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := url.Parse(pageURL(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

func pageOrigin(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := url.Parse(pageURL(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// acceptDialogs accepts every dialog the page opens (the confirm steps of
// data-confirm forms) and returns a function listing their messages.
func acceptDialogs(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu   sync.Mutex
		msgs []string
	)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	events := chromedp.Events(lctx, page.JavascriptDialogOpening)
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, ev.Message)
			mu.Unlock()
			if _, err := chromedp.Call(lctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
}

// sendMessage posts a message through the API and returns its ID.
func sendMessage(t *testing.T, tn *testNode, appID string, payload map[string]any) string {
	t.Helper()
	m := tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/"+appID+"/msg", map[string]any{"eventType": "order.created", "payload": payload})
	id, _ := m["id"].(string)
	if id == "" {
		t.Fatalf("message answer %v", m)
	}
	return id
}

func endpointSecret(t *testing.T, tn *testNode, appID, epID string) string {
	t.Helper()
	sec := tn.mustCall(t, http.StatusOK, "GET", "/api/v1/app/"+appID+"/endpoint/"+epID+"/secret", nil)
	key, _ := sec["key"].(string)
	return key
}

// waitDelivery waits until the API reports the message's delivery to the
// endpoint in state status ("success", "fail") with at least n attempts
// recorded, so the page that shows it next has it.
func waitDelivery(t *testing.T, tn *testNode, appID, msgID, epID, status string, n int) {
	t.Helper()
	waitFor(t, msgID+" to "+epID+" "+status, func() bool {
		var dels struct {
			Data []struct {
				ID         string `json:"id"`
				StatusText string `json:"statusText"`
			} `json:"data"`
		}
		decodeJSON(t, tn.mustCallRaw(t, http.StatusOK, "GET", "/api/v1/app/"+appID+"/msg/"+msgID+"/endpoint", nil), &dels)
		state := ""
		for _, d := range dels.Data {
			if d.ID == epID {
				state = d.StatusText
			}
		}
		if state != status {
			return false
		}
		var atts struct {
			Data []struct {
				EndpointID string `json:"endpointId"`
			} `json:"data"`
		}
		decodeJSON(t, tn.mustCallRaw(t, http.StatusOK, "GET", "/api/v1/app/"+appID+"/attempt/msg/"+msgID, nil), &atts)
		count := 0
		for _, a := range atts.Data {
			if a.EndpointID == epID {
				count++
			}
		}
		return count >= n
	})
}

// mustCallRaw is mustCall returning the body undecoded.
func (tn *testNode) mustCallRaw(t *testing.T, want int, method, path string, body any) []byte {
	t.Helper()
	code, b := tn.call(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	return b
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// screenshotDir is HERALD_SCREENSHOTS, created if need be, or "" when
// unset.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A screenshot over maxShotBytes is taken again cut to its top
// cutHeight pixels, which keeps the committed images small.
const (
	maxShotBytes = 250 << 10
	cutHeight    = 1100
)

// shoot saves a screenshot of the whole page as it lays out width CSS
// pixels wide, or of its top cutHeight pixels when the whole is too big.
func shoot(t *testing.T, ctx context.Context, dir, name string, width int) {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := browser.Screenshot(ctx, file, width); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= maxShotBytes {
		return
	}
	shot, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		if _, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(width), Height: cutHeight, DeviceScaleFactor: 1,
		}); err != nil {
			return nil, err
		}
		defer func() { _, _ = cdp.Call(ctx, tg, emulation.ClearDeviceMetricsOverride, cdp.Empty{}) }()
		res, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng,
			Clip:   &page.Viewport{Width: float64(width), Height: cutHeight, Scale: 1},
		})
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	})
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noOverflow fails the test when the page is wider than a width px
// viewport: only tables' own scroll boxes may overflow.
func noOverflow(t *testing.T, ctx context.Context, width int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.ResetViewport()); err != nil {
		t.Fatal(err)
	}
	if got > width {
		t.Errorf("%s is %d px wide in a %d px viewport", pagePath(t, ctx), got, width)
	}
}
