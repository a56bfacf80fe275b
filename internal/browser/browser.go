// Package browser starts a headless Chromium for the tests of the console
// and the portal, one browser per test, and records what the page reports
// (console calls, uncaught exceptions, the browser log with its CSP
// violations) so a test can assert that no script failed and nothing was
// refused. Tests drive the page with chromedp's own actions.
//
// A typical test:
//
//	ctx := browser.New(t)
//	err := chromedp.Do(ctx,
//		chromedp.Navigate(srv.URL+"/console/login"),
//		chromedp.SetValue(chromedp.ID("token"), token),
//		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
//		chromedp.WaitVisible(chromedp.CSS("h1.apps")),
//	)
//	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1.apps")))
//	err = browser.Screenshot(ctx, "../docs/console-apps.png", 1280)
//	browser.NoErrors(t, ctx)
//
// Each New starts its own Chromium (about a second here), so tests share
// no cookies or storage. Browser tests do not skip under -short: one takes
// a few seconds, start included.
//
// It is test-support code: only tests import it.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvChromium names the environment variable that points at the browser to
// use, by path or by name on PATH.
const EnvChromium = "HERALD_CHROMIUM"

// Timeout bounds the whole life of the browser that New starts, so a hung
// browser fails one test instead of hanging the suite until go test's own
// timeout.
const Timeout = 60 * time.Second

// Width and Height are the window size New starts the browser with.
const (
	Width  = 1280
	Height = 900
)

// closeTimeout bounds the graceful close at the end of a test; past it the
// browser is killed.
const closeTimeout = 5 * time.Second

// Chromium returns the path of the browser, or skips the test when the
// machine has none, so `go test ./...` passes on a laptop without it. A
// browser named by HERALD_CHROMIUM that cannot be found fails the test:
// whoever set it wants the browser tests to run.
func Chromium(t testing.TB) string {
	t.Helper()
	if name := os.Getenv(EnvChromium); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s=%s: %v", EnvChromium, name, err)
		}
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("browser tests need Chromium: install Debian's chromium package (.ci/run does)")
	return ""
}

// New starts a headless Chromium for the test and returns the context of
// its tab: pass it to chromedp.Do and chromedp.Run. The browser has a fresh
// profile under t.TempDir(), a 1280x900 window, and no network of its own
// (no background requests, updates or sync); it lives at most Timeout and
// is closed when the test ends. New skips the test when the machine has no
// Chromium.
//
// Everything the page reports is recorded from the first message of the
// tab: read it with Messages, or fail the test on any error with NoErrors.
// When the test fails, the browser's own output is logged.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Chromium(t)
	profile := filepath.Join(t.TempDir(), "profile")

	out := &syncBuffer{}
	rec := &recorder{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The machines that run the tests reach no network: without these
		// Chromium keeps trying to phone home (component updates, sync,
		// QUIC probes) and floods the closed network.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(Width, Height),
		chromedp.CombinedOutput(out),
	)

	timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithListener(rec.listen),
		chromedp.WithErrorf(out.printf),
	)
	t.Cleanup(func() {
		// Close Chromium gracefully first, so it stops its own helper
		// processes before t.TempDir's cleanup removes the profile; the
		// cancels after it kill whatever did not stop and wait for it.
		closeCtx, cancelClose := context.WithTimeout(tabCtx, closeTimeout)
		_ = chromedp.Cancel(closeCtx)
		cancelClose()
		cancelTab()
		cancelAlloc()
		cancelTimeout()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})

	// Start the browser now: a browser that cannot start fails here, with
	// its output, rather than in the test's first action.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, out.String())
	}
	return context.WithValue(tabCtx, recorderKey{}, rec)
}

// Screenshot writes a PNG of the whole page (not just the viewport) as it
// lays out in a viewport width CSS pixels wide, one image pixel per CSS
// pixel, so the image is exactly width pixels wide. Content wider than the
// viewport is cut off: check for horizontal overflow separately, e.g. with
// chromedp.Evaluate[int]("document.documentElement.scrollWidth"). The tab
// goes back to its window size afterwards.
func Screenshot(ctx context.Context, path string, width int) error {
	if width <= 0 {
		return fmt.Errorf("screenshot %s: width %d", path, width)
	}
	buf, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(width), Height: Height, DeviceScaleFactor: 1,
		}); err != nil {
			return nil, err
		}
		defer func() {
			_, _ = cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		}()
		// The layout metrics are read after the override, so the height is
		// the page's height at this width.
		metrics, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		height := float64(Height)
		if metrics.CSSContentSize != nil {
			height = max(height, math.Ceil(metrics.CSSContentSize.Height))
		}
		shot, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: new(true),
			FromSurface:           new(true),
			Clip:                  &page.Viewport{Width: float64(width), Height: height, Scale: 1},
		})
		if err != nil {
			return nil, err
		}
		return shot.Data, nil
	})
	if err != nil {
		return fmt.Errorf("screenshot %s: %w", path, err)
	}
	// Chromium answers a few edge cases (a blank surface, a clip past the
	// texture limit) with an image of another size: catch it here, not in
	// a README.
	cfg, err := png.DecodeConfig(bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("screenshot %s: decode: %w", path, err)
	}
	if cfg.Width != width {
		return fmt.Errorf("screenshot %s: image is %d px wide, want %d", path, cfg.Width, width)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

// A Message is one thing the page reported.
type Message struct {
	// Source is "console" for a call of the console API, "exception" for
	// an uncaught exception or unhandled rejection, or else the source of
	// a browser-log entry: "security" (CSP violations), "network" (failed
	// loads), "javascript", "violation", …
	Source string
	// Level is the console call's type ("log", "warning", "error",
	// "assert", …), the log entry's level ("verbose", "info", "warning",
	// "error"), or "error" for an exception.
	Level string
	Text  string
	URL   string
}

func (m Message) String() string {
	s := m.Source + " " + m.Level + ": " + m.Text
	if m.URL != "" {
		s += " (" + m.URL + ")"
	}
	return s
}

// IsError reports whether the message is an error: an exception, a
// console.error or failed console.assert, or a log entry at error level
// (which includes CSP violations and failed loads).
func (m Message) IsError() bool {
	return m.Level == "error" || (m.Source == "console" && m.Level == "assert")
}

// IsCSPViolation reports whether the message is the browser refusing
// something the page's Content-Security-Policy forbids.
func (m Message) IsCSPViolation() bool {
	return m.Source == "security" && strings.Contains(m.Text, "Content Security Policy")
}

// Messages returns what the page of ctx's tab has reported so far, in the
// order it arrived. ctx must come from New. An event reaches the record
// before the reply to any command sent after it, so after an action
// returns, the record holds what the page reported while it ran.
func Messages(ctx context.Context) []Message {
	rec, ok := ctx.Value(recorderKey{}).(*recorder)
	if !ok {
		panic("browser.Messages: the context does not come from browser.New")
	}
	return rec.messages()
}

// NoErrors fails the test for each error the page of ctx's tab has reported
// so far: exceptions, console errors, CSP violations, failed loads.
func NoErrors(t testing.TB, ctx context.Context) {
	t.Helper()
	for _, m := range Messages(ctx) {
		if m.IsError() {
			t.Errorf("page reported %s", m)
		}
	}
}

type recorderKey struct{}

// recorder keeps the messages of one tab. Its listen runs on the goroutine
// that reads the tab's messages; tests read from theirs.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) listen(ev any) {
	var m Message
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		m = Message{Source: "console", Level: string(ev.Type), Text: argsText(ev.Args)}
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			m.URL = st.CallFrames[0].URL
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		m = Message{Source: "exception", Level: "error", Text: d.Text, URL: d.URL}
		if d.Exception != nil && d.Exception.Description != "" {
			// The description is the error and its stack: keep the error.
			desc, _, _ := strings.Cut(d.Exception.Description, "\n")
			m.Text += " " + desc
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		m = Message{Source: string(e.Source), Level: string(e.Level), Text: e.Text, URL: e.URL}
	default:
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// argsText renders console arguments roughly as DevTools does: strings as
// they are, other values by their description.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		case len(a.Value) > 0:
			s = string(a.Value)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// syncBuffer collects Chromium's output and chromedp's error log, written
// from their goroutines, for the log of a failed test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) printf(format string, args ...any) {
	fmt.Fprintf(b, format+"\n", args...)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
