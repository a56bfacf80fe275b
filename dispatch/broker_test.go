package dispatch_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/tcpproxy"
	"github.com/herald-webhooks/herald/signature"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

const (
	natsAddr  = "127.0.0.1:4222"
	redisAddr = "127.0.0.1:6379"
)

// needBroker skips the test when nothing listens at addr.
func needBroker(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Skipf("%s is not running at %s (%v): start it to run this test", name, addr, err)
	}
	c.Close()
}

// natsStream creates a fresh JetStream stream holding one fresh subject,
// deleted when the test ends, and returns the subject and the stream.
func natsStream(t *testing.T) (string, jetstream.Stream) {
	t.Helper()
	needBroker(t, "NATS (JetStream)", natsAddr)
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(herald.NewID("t"))
	name := "HERALD_TEST_" + strings.ToUpper(id)
	subject := "herald.test." + id
	s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Skipf("NATS at %s has no JetStream (%v): run nats-server -js", natsAddr, err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return subject, s
}

// redisClient connects to the local Redis and returns a fresh stream key,
// deleted when the test ends.
func redisClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	needBroker(t, "Redis", redisAddr)
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { c.Close() })
	key := "herald:test:" + herald.NewID("t")
	t.Cleanup(func() { c.Del(context.Background(), key) })
	return c, key
}

// brokerEndpoint creates an endpoint publishing to url, with a fresh
// signing secret, and the verifier of its signatures.
func brokerEndpoint(t *testing.T, e *env, url string, ordering herald.Ordering) (*herald.Endpoint, *standardwebhooks.Webhook) {
	t.Helper()
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ep := &herald.Endpoint{
		ID: herald.NewID(herald.PrefixEndpoint), AppID: e.app.ID, URL: url, Version: 1, Ordering: ordering,
		Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: now, UpdatedAt: now,
	}
	if err := e.store.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(signature.FormatSecret(key))
	if err != nil {
		t.Fatal(err)
	}
	return ep, wh
}

// storeMessages stores n messages straight into the store, in one batch,
// and returns their IDs in creation order.
func storeMessages(t *testing.T, e *env, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i += 500 {
		batch := make([]*herald.Message, min(500, n-i))
		for j := range batch {
			batch[j] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "order.created",
				Payload: fmt.Appendf(nil, `{"n":%d}`, i+j), CreatedAt: time.Now()}
			ids = append(ids, batch[j].ID)
		}
		if _, err := e.store.CreateMessages(t.Context(), batch, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	e.dispatcher.NotifyQueued()
	return ids
}

// header turns a broker's header map into an http.Header for the
// Standard Webhooks verifier.
func header(m map[string][]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	return h
}

// brokerErrors is the count of failed attempts to the brokers of kind.
func brokerErrors(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	return telemetrytest.Values(t, reg)[`herald_delivery_responses_total{class="error",destination="`+kind+`"}`]
}

// outage cuts p once count() reaches at, waits until failed attempts to
// kind have been recorded, and restores it.
func outage(t *testing.T, p *tcpproxy.Proxy, reg *prometheus.Registry, kind string, count func() int, at int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d entries before the cut", at), func() bool { return count() >= at })
	before := brokerErrors(t, reg, kind)
	p.Cut()
	eventually(t, "failed attempts during the outage", func() bool { return brokerErrors(t, reg, kind) >= before+3 })
	p.Restore()
}

// allSucceeded waits until every delivery of ids to ep succeeded.
func allSucceeded(t *testing.T, e *env, ep *herald.Endpoint, ids []string) {
	t.Helper()
	eventually(t, "every delivery succeeded", func() bool {
		for _, id := range ids {
			if e.delivery(t, id, ep.ID).Status != herald.DeliverySucceeded {
				return false
			}
		}
		return true
	})
}

// TestNATSDeliveryThroughOutage: 1,000 messages to a JetStream subject
// through a proxy cut mid-run: failed attempts and retries, then every
// message in the stream exactly once (Nats-Msg-Id de-duplicates a publish
// whose ack was lost), each verified by the Standard Webhooks library
// from the message's headers, the payload byte for byte.
func TestNATSDeliveryThroughOutage(t *testing.T) {
	const messages = 1000
	subject, stream := natsStream(t)
	proxy, err := tcpproxy.Start(natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{schedule: repeat(time.Millisecond*50, 40), breaker: dispatch.BreakerConfig{Disabled: true},
		metrics: telemetry.NewMetrics(reg, telemetry.MetricsOptions{})})
	ep, wh := brokerEndpoint(t, e, "nats://"+proxy.Addr()+"/"+subject, herald.OrderingNone)
	ids := storeMessages(t, e, messages)
	stored := func() int {
		info, err := stream.Info(context.Background())
		if err != nil {
			return 0
		}
		return int(info.State.Msgs)
	}
	outage(t, proxy, reg, "nats", stored, 300)
	allSucceeded(t, e, ep, ids)

	if n := stored(); n != messages {
		t.Fatalf("the stream holds %d messages, want %d (each once)", n, messages)
	}
	payloads := map[string]string{}
	for i, id := range ids {
		payloads[id] = fmt.Sprintf(`{"n":%d}`, i)
	}
	seen := map[string]bool{}
	for seq := uint64(1); seq <= messages; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		h := header(m.Header)
		if err := wh.Verify(m.Data, h); err != nil {
			t.Fatalf("message %d: signature: %v", seq, err)
		}
		id := h.Get("webhook-id")
		if m.Header.Get(jetstream.MsgIDHeader) != id || h.Get("svix-id") != id || h.Get("content-type") != "application/json" {
			t.Fatalf("message %d: Nats-Msg-Id %q, svix-id %q, content-type %q; want %s", seq, m.Header.Get(jetstream.MsgIDHeader), h.Get("svix-id"), h.Get("content-type"), id)
		}
		if string(m.Data) != payloads[id] || seen[id] {
			t.Fatalf("message %d (%s): payload %s, seen before %v", seq, id, m.Data, seen[id])
		}
		seen[id] = true
	}
	failed := brokerErrors(t, reg, "nats")
	if failed == 0 {
		t.Fatal("no attempt failed during the outage: the test proves nothing")
	}
	// A retried message's attempts are each recorded once: a failed one
	// with the broker's error, the last with the stream's ack.
	var retried int
	for _, id := range ids {
		as := e.attempts(t, id)
		if len(as) > 1 {
			retried++
		}
		succeeded := 0
		for _, a := range as {
			switch {
			case a.Status == herald.AttemptSucceeded && a.ResponseStatus == 200 && strings.HasPrefix(string(a.Response), "stream "):
				succeeded++
			case a.Status == herald.AttemptFailed && a.ResponseStatus == 0 && a.Error != "":
			default:
				t.Fatalf("an attempt of %s: status %v, code %d, response %q, error %q", id, a.Status, a.ResponseStatus, a.Response, a.Error)
			}
		}
		if succeeded != 1 {
			t.Fatalf("%s has %d successful attempts of %d, want 1", id, succeeded, len(as))
		}
	}
	if retried == 0 {
		t.Fatal("no message was retried")
	}
	t.Logf("%d failed attempts, %d messages retried", int(failed), retried)
}

// TestRedisDeliveryThroughOutage: 1,000 messages XADDed to a fresh
// stream through a proxy cut mid-run: every message present, its entry
// holding body and the webhook headers as fields, verified by the
// Standard Webhooks library. Redis has no de-duplication: an entry whose
// reply the cut lost is appended again by the retry, so a message may
// appear twice, never more often than attempts failed.
func TestRedisDeliveryThroughOutage(t *testing.T) {
	const messages = 1000
	rc, key := redisClient(t)
	proxy, err := tcpproxy.Start(redisAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{schedule: repeat(time.Millisecond*50, 40), breaker: dispatch.BreakerConfig{Disabled: true},
		metrics: telemetry.NewMetrics(reg, telemetry.MetricsOptions{})})
	ep, wh := brokerEndpoint(t, e, "redis://"+proxy.Addr()+"/0?stream="+key, herald.OrderingNone)
	ids := storeMessages(t, e, messages)
	length := func() int { return int(rc.XLen(context.Background(), key).Val()) }
	outage(t, proxy, reg, "redis", length, 300)
	allSucceeded(t, e, ep, ids)

	entries, err := rc.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, en := range entries {
		h := http.Header{}
		var body string
		for k, v := range en.Values {
			if k == "body" {
				body = v.(string)
				continue
			}
			h.Set(k, v.(string))
		}
		if err := wh.Verify([]byte(body), h); err != nil {
			t.Fatalf("entry %s: signature: %v", en.ID, err)
		}
		count[h.Get("webhook-id")]++
	}
	dups := len(entries) - len(count)
	for _, id := range ids {
		if count[id] == 0 {
			t.Fatalf("message %s is not in the stream", id)
		}
	}
	if len(count) != messages {
		t.Fatalf("%d distinct messages in the stream, want %d", len(count), messages)
	}
	failed := brokerErrors(t, reg, "redis")
	if failed == 0 {
		t.Fatal("no attempt failed during the outage: the test proves nothing")
	}
	if float64(dups) > failed {
		t.Fatalf("%d duplicate entries but only %v failed attempts", dups, failed)
	}
	t.Logf("%d failed attempts, %d entries appended twice (a reply lost in the cut)", int(failed), dups)
}

// TestRedisDeliveryOnce: without an outage, 1,000 messages make 1,000
// entries, one each, with approximate trimming off (no maxlen).
func TestRedisDeliveryOnce(t *testing.T) {
	const messages = 1000
	rc, key := redisClient(t)
	e := newEnv(t, envOptions{schedule: repeat(time.Millisecond*50, 5)})
	ep, wh := brokerEndpoint(t, e, "redis://"+redisAddr+"/0?stream="+key, herald.OrderingNone)
	ids := storeMessages(t, e, messages)
	allSucceeded(t, e, ep, ids)
	entries, err := rc.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, en := range entries {
		h := http.Header{}
		for k, v := range en.Values {
			h.Set(k, v.(string))
		}
		if err := wh.Verify([]byte(h.Get("body")), h); err != nil {
			t.Fatalf("entry %s: signature: %v", en.ID, err)
		}
		seen[h.Get("webhook-id")] = true
	}
	if len(entries) != messages || len(seen) != messages {
		t.Fatalf("%d entries, %d distinct messages; want %d each", len(entries), len(seen), messages)
	}
}

// TestRedisMaxLen: maxlen trims the stream approximately: it stays near
// the bound, not at the number of messages.
func TestRedisMaxLen(t *testing.T) {
	rc, key := redisClient(t)
	e := newEnv(t, envOptions{schedule: repeat(time.Millisecond*50, 5)})
	ep, _ := brokerEndpoint(t, e, "redis://"+redisAddr+"/0?stream="+key+"&maxlen=100", herald.OrderingNone)
	ids := storeMessages(t, e, 1000)
	allSucceeded(t, e, ep, ids)
	// MAXLEN ~ trims whole macro nodes (100 entries each by default).
	if n := rc.XLen(t.Context(), key).Val(); n < 100 || n >= 1000 {
		t.Fatalf("the stream holds %d entries, want about 100", n)
	}
}

// TestBrokerFIFOThroughCuts: 500 messages to a FIFO endpoint on JetStream,
// its connection cut five times: the stream holds them in creation order,
// each once.
func TestBrokerFIFOThroughCuts(t *testing.T) {
	const messages = 500
	subject, stream := natsStream(t)
	proxy, err := tcpproxy.Start(natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	reg := prometheus.NewRegistry()
	e := newEnv(t, envOptions{schedule: repeat(time.Millisecond*20, 60), breaker: dispatch.BreakerConfig{Disabled: true},
		metrics: telemetry.NewMetrics(reg, telemetry.MetricsOptions{})})
	ep, wh := brokerEndpoint(t, e, "nats://"+proxy.Addr()+"/"+subject, herald.OrderingFIFO)
	ids := storeMessages(t, e, messages)
	stored := func() int {
		info, err := stream.Info(context.Background())
		if err != nil {
			return 0
		}
		return int(info.State.Msgs)
	}
	for _, at := range []int{50, 150, 250, 350, 450} {
		outage(t, proxy, reg, "nats", stored, at)
	}
	allSucceeded(t, e, ep, ids)
	if n := stored(); n != messages {
		t.Fatalf("the stream holds %d messages, want %d", n, messages)
	}
	for seq := uint64(1); seq <= messages; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		h := header(m.Header)
		if err := wh.Verify(m.Data, h); err != nil {
			t.Fatalf("message %d: signature: %v", seq, err)
		}
		if got, want := h.Get("webhook-id"), ids[seq-1]; got != want {
			t.Fatalf("stream message %d is %s, want %s (creation order)", seq, got, want)
		}
	}
}

// TestNATSNoStream: a subject no stream holds is a failed attempt that
// says so, retried on the schedule.
func TestNATSNoStream(t *testing.T) {
	needBroker(t, "NATS (JetStream)", natsAddr)
	e := newEnv(t, envOptions{schedule: []time.Duration{time.Hour}})
	subject := "herald.nostream." + strings.ToLower(herald.NewID("t"))
	ep, _ := brokerEndpoint(t, e, "nats://"+natsAddr+"/"+subject, herald.OrderingNone)
	ids := storeMessages(t, e, 1)
	var as []*herald.Attempt
	eventually(t, "a failed attempt", func() bool { as = e.attempts(t, ids[0]); return len(as) > 0 })
	if a := as[0]; a.Status != herald.AttemptFailed || a.ResponseStatus != 0 || !strings.Contains(a.Error, "no JetStream stream holds the subject") {
		t.Fatalf("attempt: status %v, code %d, error %q", a.Status, a.ResponseStatus, a.Error)
	}
	if d := e.delivery(t, ids[0], ep.ID); d.Status != herald.DeliveryPending {
		t.Fatalf("delivery %v, want pending (retried)", d.Status)
	}
}

// TestNATSUnconfirmedIsTimeout: a subject a plain subscriber takes but no
// stream confirms is accepted and never acknowledged: the attempt times
// out.
func TestNATSUnconfirmedIsTimeout(t *testing.T) {
	needBroker(t, "NATS (JetStream)", natsAddr)
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	subject := "herald.silent." + strings.ToLower(herald.NewID("t"))
	var mu sync.Mutex
	got := 0
	sub, err := nc.Subscribe(subject, func(*nats.Msg) { mu.Lock(); got++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{schedule: []time.Duration{time.Hour}, timeout: 500 * time.Millisecond})
	brokerEndpoint(t, e, "nats://"+natsAddr+"/"+subject, herald.OrderingNone)
	ids := storeMessages(t, e, 1)
	var as []*herald.Attempt
	eventually(t, "a failed attempt", func() bool { as = e.attempts(t, ids[0]); return len(as) > 0 })
	if a := as[0]; a.Status != herald.AttemptFailed || !strings.HasPrefix(a.Error, "timed out: the broker did not confirm") {
		t.Fatalf("attempt: status %v, error %q", a.Status, a.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if got == 0 {
		t.Fatal("the subscriber got nothing: the publication was not accepted")
	}
}

// TestBrokerDialGuard: with the SSRF guard on, a broker on a loopback
// address is refused at the dial, and the attempt names the refusal.
func TestBrokerDialGuard(t *testing.T) {
	for name, target := range map[string]struct{ broker, addr, url string }{
		"nats":  {"NATS (JetStream)", natsAddr, "nats://" + natsAddr + "/herald.guard"},
		"redis": {"Redis", redisAddr, "redis://" + redisAddr + "/0?stream=herald:guard"},
	} {
		t.Run(name, func(t *testing.T) {
			needBroker(t, target.broker, target.addr)
			e := newEnv(t, envOptions{schedule: []time.Duration{time.Hour},
				publishers: destination.NewPublishers(dispatch.BrokerConfig(dispatch.SenderConfig{Timeout: 2 * time.Second}))})
			brokerEndpoint(t, e, target.url, herald.OrderingNone)
			ids := storeMessages(t, e, 1)
			var as []*herald.Attempt
			eventually(t, "a failed attempt", func() bool { as = e.attempts(t, ids[0]); return len(as) > 0 })
			if a := as[0]; a.Status != herald.AttemptFailed || !strings.Contains(a.Error, "delivery target refused") || !strings.Contains(a.Error, "loopback") {
				t.Fatalf("attempt: status %v, error %q; want a loopback refusal", a.Status, a.Error)
			}
		})
	}
}

// TestBrokerAttemptRedactsPassword: the attempt of an endpoint whose
// broker URL has a password records the URL with the password masked,
// and the broker's refusal of wrong credentials is a failed attempt.
func TestBrokerAttemptRedactsPassword(t *testing.T) {
	needBroker(t, "Redis", redisAddr)
	e := newEnv(t, envOptions{schedule: []time.Duration{time.Hour}})
	const password = "wrong-pw-5c1d"
	brokerEndpoint(t, e, "redis://nobody:"+password+"@"+redisAddr+"/0?stream=herald:auth", herald.OrderingNone)
	ids := storeMessages(t, e, 1)
	var as []*herald.Attempt
	eventually(t, "a failed attempt", func() bool { as = e.attempts(t, ids[0]); return len(as) > 0 })
	a := as[0]
	if a.Status != herald.AttemptFailed || strings.Contains(a.URL+a.Error+string(a.Response), password) {
		t.Fatalf("attempt: status %v, url %q, error %q", a.Status, a.URL, a.Error)
	}
	if want := "redis://nobody:xxxxx@" + redisAddr + "/0?stream=herald:auth"; a.URL != want {
		t.Fatalf("attempt URL %q, want %q", a.URL, want)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}
