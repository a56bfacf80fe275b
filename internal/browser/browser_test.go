package browser_test

import (
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald/internal/browser"
)

// TestMain checks that New's cleanup stops every goroutine chromedp starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>browser self-test</title>
<script src="/app.js" defer></script>
</head>
<body>
<h1>Self-test</h1>
<p id="external">external script did not run</p>
<p id="inline">inline script blocked</p>
<script>document.getElementById("inline").textContent = "inline script ran";</script>
<form>
<input id="name" name="name">
<button id="greet" type="button">Greet</button>
<button id="fail" type="button">Fail</button>
</form>
<p id="greeting" hidden></p>
</body>
</html>
`

const script = `"use strict";
document.getElementById("external").textContent = "external script ran";
document.getElementById("greet").addEventListener("click", () => {
	const p = document.getElementById("greeting");
	p.textContent = "Hello, " + document.getElementById("name").value;
	p.hidden = false;
});
document.getElementById("fail").addEventListener("click", () => {
	throw new Error("boom");
});
console.log("app.js loaded");
`

// serve serves the self-test page with a CSP that allows only same-origin
// scripts, so the inline script must be refused.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write([]byte(script))
	})
	// A page taller than the window, for the full-page screenshot (no CSP:
	// the height is an inline style).
	mux.HandleFunc("GET /tall", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>tall</title><div style="height:2000px">tall</div>`))
	})
	// Chromium asks for a favicon; answer without an error in the log.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowser(t *testing.T) {
	srv := serve(t)
	start := time.Now()
	ctx := browser.New(t)
	t.Logf("browser start: %v", time.Since(start).Round(time.Millisecond))

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("external")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("external"))); err != nil || got != "external script ran" {
		t.Errorf("#external = %q, %v; want the text app.js writes", got, err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("inline"))); err != nil || got != "inline script blocked" {
		t.Errorf("#inline = %q, %v; the CSP should have blocked the inline script", got, err)
	}

	// A form, as the console's tests will drive one.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("name"), "Ada"),
		chromedp.Click(chromedp.ID("greet")),
		chromedp.WaitVisible(chromedp.ID("greeting")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("greeting"))); err != nil || got != "Hello, Ada" {
		t.Errorf("#greeting = %q, %v; want %q", got, err, "Hello, Ada")
	}

	msgs := browser.Messages(ctx)
	var sawCSP, sawLog bool
	for _, m := range msgs {
		t.Logf("recorded: %s", m)
		sawCSP = sawCSP || (m.IsCSPViolation() && m.IsError() && strings.Contains(m.Text, "inline script"))
		sawLog = sawLog || (m.Source == "console" && m.Level == "log" && m.Text == "app.js loaded")
	}
	if !sawCSP {
		t.Error("no CSP violation recorded for the inline script")
	}
	if !sawLog {
		t.Error("app.js's console.log was not recorded")
	}
	for _, m := range msgs {
		if m.IsError() && !m.IsCSPViolation() {
			t.Errorf("unexpected error: %s", m)
		}
	}

	// An uncaught exception in a handler is recorded too.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("fail"))); err != nil {
		t.Fatal(err)
	}
	if !recorded(ctx, func(m browser.Message) bool {
		return m.Source == "exception" && m.IsError() && strings.Contains(m.Text, "boom")
	}) {
		t.Errorf("the exception was not recorded: %v", browser.Messages(ctx))
	}
}

func TestScreenshot(t *testing.T) {
	srv := serve(t)
	ctx := browser.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, width := range []int{360, browser.Width} {
		path := filepath.Join(dir, "page.png")
		start := time.Now()
		if err := browser.Screenshot(ctx, path, width); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot at %d px: %v", width, time.Since(start).Round(time.Millisecond))
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if b := img.Bounds(); b.Dx() != width || b.Dy() < browser.Height {
			t.Errorf("screenshot at %d px is %dx%d, want %d wide and at least %d high", width, b.Dx(), b.Dy(), width, browser.Height)
		}
	}
	// The whole page, not just the window.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/tall")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tall.png")
	if err := browser.Screenshot(ctx, path, 360); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width != 360 || cfg.Height < 2000 {
		t.Errorf("tall page screenshot is %dx%d, %v; want 360 wide and at least 2000 high", cfg.Width, cfg.Height, err)
	}

	// The screenshot leaves the tab at its window size.
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.innerWidth")); err != nil || got != browser.Width {
		t.Errorf("window.innerWidth after Screenshot = %d, %v; want %d", got, err, browser.Width)
	}
}

// recorded reports whether the tab records a message that matches within a
// second: an exception thrown by an input event's handler can arrive just
// after the click's reply.
func recorded(ctx context.Context, match func(browser.Message) bool) bool {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, m := range browser.Messages(ctx) {
			if match(m) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
