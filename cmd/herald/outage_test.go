package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards loopback connections to a target address and can cut
// the link: cut closes every open connection and makes new ones close at
// once (the port stays bound, so clients see their connections reset, as
// when the database host goes away); restore forwards again.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

// startProxy listens on a loopback port, forwarding to target, and stops
// when the test ends.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward copies both ways between c and a new connection to the target
// until either side closes or the link is cut.
func (p *tcpProxy) forward(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

// track registers an open connection, or reports false when the link is
// cut.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// restore forwards new connections again.
func (p *tcpProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// proxiedURL returns dbURL pointed at a new proxy to its host, with a 2 s
// connect timeout and the application name app, and the proxy.
func proxiedURL(t *testing.T, dbURL, app string) (string, *tcpProxy) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := startProxy(t, target)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	if app != "" {
		q.Set("application_name", app)
	}
	u.RawQuery = q.Encode()
	return u.String(), proxy
}

// timedRequest is request with a client timeout, returning the headers too:
// a request the server does not answer in time fails the test.
func timedRequest(t *testing.T, timeout time.Duration, method, url, token string, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestDatabaseOutage runs herald serve on PostgreSQL behind a proxy that
// the test cuts and restores. While the database is unreachable, message
// creation answers 503 service_unavailable with Retry-After (promptly:
// within the pool's connect timeout, not hanging) and /readyz answers 503;
// after the restore the same requests succeed without a restart, the
// messages accepted before the cut are all delivered, and every stored
// message has its delivery (nothing half-written).
func TestDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes")
	}
	dbURL, _ := pgFreshSchema(t)
	proxied, proxy := proxiedURL(t, dbURL, "")

	rc := &recorder{hold: 50 * time.Millisecond}
	recv := httptest.NewServer(rc)
	defer recv.Close()

	token := "outage-admin-token-0123456789abc"
	p := startHerald(t, "--db", proxied, "--encryption-key", newEncryptionKey(t), "--admin-token", token,
		"--allow-private-targets", "--request-timeout", "1s", "--delivery-lease", "7s",
		"--pg-statement-timeout", "5s", "--pg-max-conns", "4")
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "a"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/a/endpoint", token, map[string]any{
		"url": recv.URL + "/hook/e", "uid": "e",
	}); code != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", code, body)
	}

	const answerWithin = 20 * time.Second // far above the 2 s connect timeout and 5 s statement timeout
	var mu sync.Mutex
	accepted := map[string]bool{}
	post := func(n int) (int, http.Header, []byte) {
		code, h, body := timedRequest(t, answerWithin, "POST", p.url+"/api/v1/app/a/msg", token,
			fmt.Sprintf(`{"eventType":"order.created","payload":{"n":%d}}`, n))
		if code == http.StatusAccepted {
			var out struct{ ID string }
			if err := json.Unmarshal(body, &out); err != nil || out.ID == "" {
				t.Fatalf("202 without an ID: %s", body)
			}
			mu.Lock()
			accepted[out.ID] = true
			mu.Unlock()
		}
		return code, h, body
	}
	// Messages before the cut, posted concurrently: the receiver holds
	// each for 50 ms and takes 8 at a time, so most are still queued or in
	// flight when the link goes.
	var wg sync.WaitGroup
	codes := make([]int, 400)
	for w := range 16 {
		wg.Go(func() {
			for n := w; n < len(codes); n += 16 {
				codes[n], _, _ = post(n)
			}
		})
	}
	wg.Wait()
	for n, code := range codes {
		if code != http.StatusAccepted {
			t.Fatalf("post %d before the cut: %d", n, code)
		}
	}
	before := len(rc.receptions())

	proxy.cut()
	t.Logf("link cut with %d of %d messages delivered", before, len(accepted))
	for n := range 5 {
		code, h, body := post(1000 + n)
		var e struct{ Code string }
		_ = json.Unmarshal(body, &e)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || e.Code != "service_unavailable" {
			t.Errorf("post while cut = %d Retry-After %q %s; want 503 with Retry-After and code service_unavailable", code, h.Get("Retry-After"), body)
		}
	}
	if code, h, body := timedRequest(t, answerWithin, "GET", p.url+"/readyz", "", ""); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("/readyz while cut = %d %s; want 503 with Retry-After", code, body)
	}
	if code, _, _ := timedRequest(t, answerWithin, "GET", p.url+"/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz while cut = %d; the process itself is alive", code)
	}

	// Stay down long enough for the dispatcher's claims and its retries of
	// recording outcomes to fail, so that resuming is really tested.
	time.Sleep(3 * time.Second)
	delivered := len(rc.receptions())
	proxy.restore()
	t.Logf("link restored; %d receptions during the cut", delivered-before)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := timedRequest(t, answerWithin, "GET", p.url+"/readyz", "", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 30 s after the restore:\n%s", code, tail(p.stderr.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for n := range 50 {
		if code, _, body := post(2000 + n); code != http.StatusAccepted {
			t.Fatalf("post after the restore: %d %s", code, body)
		}
	}

	stats := waitDrained(t, p.url, token, []string{"e"}, 60*time.Second)
	if stats["e"].Fail != 0 {
		t.Errorf("%d deliveries failed for good", stats["e"].Fail)
	}
	got := map[string]int{}
	for _, r := range rc.receptions() {
		got[r.msg]++
	}
	missing, duplicates := 0, 0
	for id := range accepted {
		if got[id] == 0 {
			missing++
		}
	}
	for _, n := range got {
		duplicates += n - 1
	}

	conn := pgConnect(t, dbURL)
	var stored, orphans int
	err := conn.QueryRow(context.Background(), `SELECT count(*),
		count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id))
		FROM message m`).Scan(&stored, &orphans)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages accepted, %d stored, %d delivered, %d duplicates (sent again after the cut lost their outcome), %d without a delivery",
		len(accepted), stored, len(got), duplicates, orphans)
	if missing != 0 {
		t.Errorf("%d accepted messages were never delivered", missing)
	}
	if orphans != 0 {
		t.Errorf("%d stored messages have no delivery: a half-written message", orphans)
	}
	if stored < len(accepted) {
		t.Errorf("%d messages stored, fewer than the %d accepted", stored, len(accepted))
	}
	// The LISTEN connection went with the others and came back by itself.
	if !strings.Contains(p.stderr.String(), "listen for work: connection lost") {
		t.Errorf("the log does not show the work listener losing its connection")
	}
	if t.Failed() {
		t.Logf("herald log tail:\n%s", tail(p.stderr.String(), 6000))
	}
}
