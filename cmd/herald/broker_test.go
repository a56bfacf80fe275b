package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// TestServeBrokerCredentialsNeverShown: `herald serve` delivers to a
// Redis stream whose URL carries an ACL user's password (a fresh user on
// the local Redis): every entry arrives with a signature the Standard
// Webhooks library verifies; the password is in no API answer (endpoint
// create, get, list, attempts), no line of the binary's log (debug level,
// with a failing endpoint whose wrong password Redis refuses) and not in
// /metrics, which counts the attempts under destination="redis".
func TestServeBrokerCredentialsNeverShown(t *testing.T) {
	const addr = "127.0.0.1:6379"
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err != nil {
		t.Skipf("Redis is not running at %s (%v): start it to run this test", addr, err)
	} else {
		c.Close()
	}
	admin := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { admin.Close() })
	suffix := strings.ToLower(herald.NewID("t"))
	user, password, wrong := "herald-"+suffix, "pw-"+suffix+"-right", "pw-"+suffix+"-wrong"
	key := "herald:serve:" + suffix
	if err := admin.Do(t.Context(), "ACL", "SETUSER", user, "on", ">"+password, "~*", "+@all").Err(); err != nil {
		t.Skipf("cannot add an ACL user to the local Redis: %v", err)
	}
	t.Cleanup(func() {
		admin.Do(context.Background(), "ACL", "DELUSER", user)
		admin.Del(context.Background(), key)
	})

	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"), "--allow-private-targets", "--log-level", "debug", "--retry-schedule", "20ms,20ms")
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	var answers []string
	create := func(url string) string {
		code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token, map[string]any{"url": url})
		if code != http.StatusCreated {
			t.Fatalf("create endpoint: %d %s", code, body)
		}
		answers = append(answers, string(body))
		var ep struct{ ID, URL string }
		if err := json.Unmarshal(body, &ep); err != nil {
			t.Fatal(err)
		}
		if want := strings.Replace(url, ":"+password+"@", ":xxxxx@", 1); !strings.Contains(url, wrong) && ep.URL != want {
			t.Fatalf("endpoint URL answered %q, want %q", ep.URL, want)
		}
		return ep.ID
	}
	good := create(fmt.Sprintf("redis://%s:%s@%s/0?stream=%s", user, password, addr, key))
	bad := create(fmt.Sprintf("redis://%s:%s@%s/0?stream=%s", user, wrong, addr, key))
	const messages = 20
	for i := range messages {
		if code, body := request(t, "POST", p.url+"/api/v1/app/acme/msg", token, map[string]any{"eventType": "order.created", "payload": map[string]any{"n": i}}); code != http.StatusAccepted {
			t.Fatalf("send: %d %s", code, body)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for admin.XLen(t.Context(), key).Val() < messages {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d entries after 60 s\n%s", admin.XLen(t.Context(), key).Val(), messages, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := request(t, "GET", p.url+"/api/v1/app/acme/endpoint/"+good+"/secret", token, nil)
	if code != http.StatusOK {
		t.Fatalf("secret: %d %s", code, body)
	}
	var sec struct{ Key string }
	if err := json.Unmarshal(body, &sec); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(sec.Key)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := admin.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != messages {
		t.Fatalf("%d entries, want %d", len(entries), messages)
	}
	for _, en := range entries {
		h := http.Header{}
		for k, v := range en.Values {
			h.Set(k, v.(string))
		}
		if err := wh.Verify([]byte(h.Get("body")), h); err != nil {
			t.Fatalf("entry %s: %v", en.ID, err)
		}
	}
	// The failing endpoint's attempts are recorded (and logged).
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, body := request(t, "GET", p.url+"/api/v1/app/acme/attempt/endpoint/"+bad, token, nil)
		if code == http.StatusOK && strings.Contains(string(body), `"responseStatusCode":0`) {
			answers = append(answers, string(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt of the endpoint with the wrong password: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, path := range []string{"/endpoint", "/endpoint/" + good, "/endpoint/" + bad, "/attempt/endpoint/" + good} {
		code, body := request(t, "GET", p.url+"/api/v1/app/acme"+path, token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		answers = append(answers, string(body))
	}
	for i, a := range answers {
		if strings.Contains(a, password) || strings.Contains(a, wrong) {
			t.Errorf("API answer %d holds a password: %s", i, a)
		}
	}
	if !strings.Contains(answers[len(answers)-1], `:xxxxx@`) {
		t.Errorf("the attempts do not show the masked URL: %s", answers[len(answers)-1])
	}
	scrape := telemetrytest.Scrape(t, bearerClient(token), p.url+"/metrics")
	if got := scrape[`herald_delivery_responses_total{class="2xx",destination="redis"}`]; got != messages {
		t.Errorf("2xx attempts to redis in /metrics = %v, want %d", got, messages)
	}
	if got := scrape[`herald_delivery_responses_total{class="error",destination="redis"}`]; got == 0 {
		t.Error("no failed attempt to redis in /metrics")
	}
	code, raw := request(t, "GET", p.url+"/metrics", token, nil)
	if code != http.StatusOK || strings.Contains(string(raw), password) || strings.Contains(string(raw), wrong) {
		t.Errorf("/metrics: %d, holds a password: %v", code, strings.Contains(string(raw), password) || strings.Contains(string(raw), wrong))
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"attempt"`) {
		t.Fatalf("the debug log has no attempt lines: the grep proves nothing\n%s", logs)
	}
	if strings.Contains(logs, password) || strings.Contains(logs, wrong) {
		t.Errorf("the log holds a password:\n%s", logs)
	}
}
