package destination

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald/internal/tcpproxy"
	"github.com/herald-webhooks/herald/signature"
)

// rabbitAddr is the RabbitMQ this machine runs for the tests (guest/guest).
const rabbitAddr = "127.0.0.1:5672"

// akNoLeaks fails the test when goroutines it started outlive it; call it
// first, so its check runs after every other cleanup (publishers' Close
// included).
func akNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// akSigner signs publications the way dispatch.Sender signs a webhook.
type akSigner struct {
	key      signature.Key
	verifier *standardwebhooks.Webhook
}

func newAKSigner(t *testing.T) *akSigner {
	t.Helper()
	secret, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	v, err := standardwebhooks.NewWebhook(signature.FormatSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	return &akSigner{key: signature.Key{Secret: secret}, verifier: v}
}

// publication is message n to target, signed now, with the headers an
// HTTP receiver would get (an endpoint header among them).
func (s *akSigner) publication(t *testing.T, target *url.URL, n int) Publication {
	t.Helper()
	id := fmt.Sprintf("msg_%06d_%s", n, akRandom(t))
	payload := []byte(fmt.Sprintf(`{"type":"invoice.paid","data":{"n":%d}}`, n))
	now := time.Now()
	signer, err := signature.NewKeySigner([]signature.Key{s.key})
	if err != nil {
		t.Fatal(err)
	}
	sig := signer.Header(id, now, payload)
	ts := strconv.FormatInt(now.Unix(), 10)
	return Publication{
		Target:      target,
		MessageID:   id,
		Payload:     payload,
		ContentType: "application/json",
		Headers: map[string]string{
			"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig,
			"svix-id": id, "svix-timestamp": ts, "svix-signature": sig,
			"x-tenant": "acme",
		},
	}
}

// verify checks a received message as a Standard Webhooks receiver does
// and returns its webhook-id.
func (s *akSigner) verify(headers map[string]string, body []byte) (string, error) {
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	if err := s.verifier.Verify(body, h); err != nil {
		return "", err
	}
	if h.Get("x-tenant") != "acme" {
		return "", fmt.Errorf("endpoint header x-tenant = %q", h.Get("x-tenant"))
	}
	return h.Get("webhook-id"), nil
}

func akRandom(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// rabbit connects to the local RabbitMQ for declaring and consuming, or
// skips the test when it is not running.
func rabbit(t *testing.T) *amqp.Connection {
	t.Helper()
	c, err := net.DialTimeout("tcp", rabbitAddr, 2*time.Second)
	if err != nil {
		t.Skipf("RabbitMQ is not running on %s (%v): the AMQP publisher tests need it", rabbitAddr, err)
	}
	c.Close()
	conn, err := amqp.Dial("amqp://guest:guest@" + rabbitAddr + "/")
	if err != nil {
		t.Skipf("RabbitMQ on %s refused guest/guest (%v): the AMQP publisher tests need it", rabbitAddr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// topology is a fresh exchange with a queue bound by routing key "rk".
type topology struct {
	exchange, queue string
	ch              *amqp.Channel
}

func declare(t *testing.T, conn *amqp.Connection) topology {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	suffix := akRandom(t)
	top := topology{exchange: "herald-test-x-" + suffix, queue: "herald-test-q-" + suffix, ch: ch}
	if err := ch.ExchangeDeclare(top.exchange, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(top.queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(top.queue, "rk", top.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.QueueDelete(top.queue, false, false, false)
		ch.ExchangeDelete(top.exchange, false, false)
		ch.Close()
	})
	return top
}

func (top topology) url(t *testing.T, hostport string) *url.URL {
	t.Helper()
	u, err := url.Parse("amqp://guest:guest@" + hostport + "/?exchange=" + top.exchange + "&routing_key=rk")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// depth is the number of messages ready in the queue.
func (top topology) depth(t *testing.T) int {
	t.Helper()
	q, err := top.ch.QueueDeclarePassive(top.queue, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// drain takes every message of the queue (basic.get until empty) and
// returns how many times each webhook-id came, after verifying each
// signature and the AMQP properties.
func (top topology) drain(t *testing.T, s *akSigner) map[string]int {
	t.Helper()
	got := map[string]int{}
	for {
		d, ok, err := top.ch.Get(top.queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
		headers := map[string]string{}
		for k, v := range d.Headers {
			str, isStr := v.(string)
			if !isStr {
				t.Fatalf("header %s is a %T, not a string", k, v)
			}
			headers[k] = str
		}
		id, err := s.verify(headers, d.Body)
		if err != nil {
			t.Fatalf("message %s: Standard Webhooks verification: %v", d.MessageId, err)
		}
		if d.MessageId != id || d.ContentType != "application/json" || d.DeliveryMode != amqp.Persistent {
			t.Fatalf("properties: message_id %q (webhook-id %q), content_type %q, delivery_mode %d",
				d.MessageId, id, d.ContentType, d.DeliveryMode)
		}
		if ts, _ := strconv.ParseInt(headers["webhook-timestamp"], 10, 64); d.Timestamp.Unix() != ts {
			t.Fatalf("timestamp property %v, webhook-timestamp %d", d.Timestamp, ts)
		}
		got[id]++
	}
}

// publishAll publishes pubs from workers goroutines, each retrying its
// publication until acked (as the dispatcher's retries would), and
// returns the IDs that had at least one failed attempt and every failure.
func publishAll(t *testing.T, p Publisher, pubs []Publication, workers int, acked func(int)) (retried map[string]bool, failures []error) {
	t.Helper()
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	retried = map[string]bool{}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(pubs) {
					return
				}
				for try := 0; ; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					ack := p.Publish(ctx, pubs[i])
					cancel()
					if ack.Err == nil {
						if ack.Response == "" || ack.Duration <= 0 {
							t.Errorf("ack without response or duration: %+v", ack)
						}
						acked(i)
						break
					}
					mu.Lock()
					retried[pubs[i].MessageID] = true
					failures = append(failures, ack.Err)
					mu.Unlock()
					if try > 2000 {
						t.Errorf("publication %d never acked: %v", i, ack.Err)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return retried, failures
}

func TestAMQPThousandPublications(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	var dials atomic.Int64
	p := NewAMQP(Config{Timeout: 10 * time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	s := newAKSigner(t)
	target := top.url(t, rabbitAddr)
	pubs := make([]Publication, 1000)
	for i := range pubs {
		pubs[i] = s.publication(t, target, i)
	}
	_, failures := publishAll(t, p, pubs, 16, func(int) {})
	if len(failures) > 0 {
		t.Fatalf("%d failed attempts against a healthy broker, first: %v", len(failures), failures[0])
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dialled %d times through Config.Dial, want one pooled connection", n)
	}
	if d := top.depth(t); d != len(pubs) {
		t.Fatalf("queue holds %d messages after %d confirms", d, len(pubs))
	}
	got := top.drain(t, s)
	for _, pub := range pubs {
		if got[pub.MessageID] != 1 {
			t.Errorf("%s received %d times", pub.MessageID, got[pub.MessageID])
		}
	}
	if len(got) != len(pubs) {
		t.Errorf("received %d distinct messages, published %d", len(got), len(pubs))
	}
}

func TestAMQPReconnectsAfterCut(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	proxy, err := tcpproxy.Start(rabbitAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := NewAMQP(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)
	target := top.url(t, proxy.Addr())
	pubs := make([]Publication, 600)
	for i := range pubs {
		pubs[i] = s.publication(t, target, i)
	}
	// Cut after 150 confirms; restore once 20 attempts failed.
	var (
		confirmed atomic.Int64
		cutOnce   sync.Once
		cut       = make(chan struct{})
	)
	var failedSinceCut atomic.Int64
	restored := make(chan struct{})
	go func() {
		<-cut
		for failedSinceCut.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		proxy.Restore()
		close(restored)
	}()
	counting := &countingPublisher{Publisher: p, afterCut: cut, failed: &failedSinceCut}
	retried, failures := publishAll(t, counting, pubs, 8, func(int) {
		if confirmed.Add(1) == 150 {
			cutOnce.Do(func() {
				proxy.Cut()
				close(cut)
			})
		}
	})
	<-restored
	if len(failures) < 20 {
		t.Fatalf("%d failed attempts while the connection was cut, want at least 20", len(failures))
	}
	for _, err := range failures {
		if strings.Contains(err.Error(), "guest:guest") || strings.Contains(err.Error(), target.String()) {
			t.Fatalf("an error shows the credentials: %v", err)
		}
		if strings.Contains(err.Error(), "127.0.0.1") {
			t.Fatalf("an error shows a socket address: %v", err)
		}
		if strings.Contains(err.Error(), "(0)") {
			t.Fatalf("an error without a reason: %v", err)
		}
	}
	got := top.drain(t, s)
	for _, pub := range pubs {
		n := got[pub.MessageID]
		switch {
		case n == 0:
			t.Errorf("%s was confirmed but never reached the queue", pub.MessageID)
		case n > 1 && !retried[pub.MessageID]:
			t.Errorf("%s was published once and received %d times", pub.MessageID, n)
		}
	}
	if len(got) != len(pubs) {
		t.Errorf("received %d distinct messages, published %d", len(got), len(pubs))
	}
	t.Logf("%d failed attempts during the cut; %d publications retried", len(failures), len(retried))
	kinds := map[string]bool{}
	for _, err := range failures {
		if !kinds[err.Error()] && len(kinds) < 6 {
			kinds[err.Error()] = true
			t.Logf("failed attempt: %v", err)
		}
	}
}

// countingPublisher counts the failed publishes that began after the cut.
type countingPublisher struct {
	Publisher
	afterCut <-chan struct{}
	failed   *atomic.Int64
}

func (c *countingPublisher) Publish(ctx context.Context, p Publication) Ack {
	select {
	case <-c.afterCut:
		ack := c.Publisher.Publish(ctx, p)
		if ack.Err != nil {
			c.failed.Add(1)
		}
		return ack
	default:
		return c.Publisher.Publish(ctx, p)
	}
}

func TestAMQPUnroutableAndMissingExchange(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	p := NewAMQP(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)
	ctx := context.Background()

	unroutable, _ := url.Parse("amqp://guest:guest@" + rabbitAddr + "/?exchange=" + top.exchange + "&routing_key=nobody")
	ack := p.Publish(ctx, s.publication(t, unroutable, 1))
	if ack.Err == nil || !strings.Contains(ack.Err.Error(), "NO_ROUTE") || !strings.Contains(ack.Err.Error(), "312") ||
		!strings.Contains(ack.Err.Error(), `"nobody"`) {
		t.Fatalf("unroutable publish: %+v", ack)
	}
	if ack.Response != "" {
		t.Errorf("a failed attempt has the response %q", ack.Response)
	}

	missing, _ := url.Parse("amqp://guest:guest@" + rabbitAddr + "/?exchange=herald-test-none-" + akRandom(t) + "&routing_key=rk")
	ack = p.Publish(ctx, s.publication(t, missing, 2))
	if ack.Err == nil || !strings.Contains(ack.Err.Error(), "404") || !strings.Contains(ack.Err.Error(), "no exchange") {
		t.Fatalf("publish to a missing exchange: %+v", ack)
	}

	queue, _ := url.Parse("amqp://guest:guest@" + rabbitAddr + "/?routing_key=" + top.queue)
	viaDefault := s.publication(t, queue, 5)
	ack = p.Publish(ctx, viaDefault)
	if ack.Err != nil || ack.Response != fmt.Sprintf("confirmed by the default exchange, routed to queue %q", top.queue) {
		t.Fatalf("publish through the default exchange: %+v", ack)
	}
	noQueue, _ := url.Parse("amqp://guest:guest@" + rabbitAddr + "/?routing_key=herald-test-none-" + akRandom(t))
	ack = p.Publish(ctx, s.publication(t, noQueue, 6))
	if ack.Err == nil || !strings.Contains(ack.Err.Error(), "NO_ROUTE") {
		t.Fatalf("publish through the default exchange to no queue: %+v", ack)
	}

	// The channels those closed or returned on do not spoil the next.
	good := s.publication(t, top.url(t, rabbitAddr), 3)
	ack = p.Publish(ctx, good)
	if ack.Err != nil || ack.Response != fmt.Sprintf("confirmed by exchange %q with routing key %q", top.exchange, "rk") {
		t.Fatalf("publish after the failures: %+v", ack)
	}
	if got := top.drain(t, s); len(got) != 2 || got[good.MessageID] != 1 || got[viaDefault.MessageID] != 1 {
		t.Fatalf("queue got %v", got)
	}

	bad, _ := url.Parse("amqp://guest:wrong-secret-pw@" + rabbitAddr + "/?exchange=" + top.exchange + "&routing_key=rk")
	ack = p.Publish(ctx, s.publication(t, bad, 4))
	if ack.Err == nil || strings.Contains(ack.Err.Error(), "wrong-secret-pw") || !strings.Contains(ack.Err.Error(), "403") {
		t.Fatalf("publish with a wrong password: %+v", ack)
	}
}

func TestAMQPRefusedDial(t *testing.T) {
	akNoLeaks(t)
	blocked := errors.New("address blocked by policy")
	p := NewAMQP(Config{Dial: func(context.Context, string, string) (net.Conn, error) { return nil, blocked }})
	t.Cleanup(func() { p.Close() })
	u, _ := url.Parse("amqps://user:s3cret@broker.example/?exchange=x")
	ack := p.Publish(context.Background(), Publication{Target: u, MessageID: "msg_1", Payload: []byte("{}")})
	if !errors.Is(ack.Err, blocked) || strings.Contains(ack.Err.Error(), "s3cret") {
		t.Fatalf("publish through a refusing dialer: %+v", ack)
	}
	u, _ = url.Parse("amqp://user:s3cret@broker.example/?exchange=x&heartbeat=1")
	ack = p.Publish(context.Background(), Publication{Target: u, MessageID: "msg_1", Payload: []byte("{}")})
	if ack.Err == nil || !strings.Contains(ack.Err.Error(), "heartbeat") || strings.Contains(ack.Err.Error(), "s3cret") {
		t.Fatalf("publish to an invalid URL: %+v", ack)
	}
}

// pauseProxy forwards to a server and, while paused, holds what the client
// sends: the broker sees nothing and confirms nothing, yet the connection
// stays open.
type pauseProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	paused bool
	resume chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startPauseProxy(t *testing.T, target string) *pauseProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pp := &pauseProxy{ln: ln, target: target, resume: make(chan struct{})}
	close(pp.resume)
	pp.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pp.mu.Lock()
			pp.conns = append(pp.conns, c, s)
			pp.mu.Unlock()
			pp.wg.Go(func() { pp.pipe(s, c, true) })
			pp.wg.Go(func() { pp.pipe(c, s, false) })
		}
	})
	t.Cleanup(func() {
		pp.Resume()
		ln.Close()
		pp.mu.Lock()
		for _, c := range pp.conns {
			c.Close()
		}
		pp.mu.Unlock()
		pp.wg.Wait()
	})
	return pp
}

func (pp *pauseProxy) pipe(dst, src net.Conn, gated bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && gated {
			pp.mu.Lock()
			resume := pp.resume
			pp.mu.Unlock()
			<-resume
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

func (pp *pauseProxy) Pause() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if !pp.paused {
		pp.paused, pp.resume = true, make(chan struct{})
	}
}

func (pp *pauseProxy) Resume() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.paused {
		pp.paused = false
		close(pp.resume)
	}
}

func TestAMQPNoConfirmIsATimeout(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	pp := startPauseProxy(t, rabbitAddr)
	p := NewAMQP(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)
	target := top.url(t, pp.ln.Addr().String())
	ctx := context.Background()

	first := s.publication(t, target, 1)
	if ack := p.Publish(ctx, first); ack.Err != nil {
		t.Fatal(ack.Err)
	}
	pp.Pause()
	late := s.publication(t, target, 2)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	ack := p.Publish(short, late)
	cancel()
	if !errors.Is(ack.Err, context.DeadlineExceeded) || ack.Response != "" {
		t.Fatalf("publish to a broker that does not confirm: %+v", ack)
	}
	// The channel that waited is gone from the pool: its confirm, when it
	// comes, has nobody to mislead.
	pool := p.(*amqpPublisher)
	pool.mu.Lock()
	for _, c := range pool.targets {
		c.mu.Lock()
		if len(c.idle) != 0 {
			t.Errorf("%d idle channels after the timed-out publish, want 0", len(c.idle))
		}
		c.mu.Unlock()
	}
	pool.mu.Unlock()

	pp.Resume()
	third := s.publication(t, target, 3)
	if ack := p.Publish(ctx, third); ack.Err != nil {
		t.Fatalf("publish after the broker answers again: %v", ack.Err)
	}
	// The late message arrived after all (at least once), but only the
	// publishes that were confirmed said so.
	got := top.drain(t, s)
	if got[first.MessageID] != 1 || got[third.MessageID] != 1 || got[late.MessageID] > 1 {
		t.Fatalf("queue got %v", got)
	}
}

func TestCheckAMQP(t *testing.T) {
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		url    string
		detail string // "" when valid
	}{
		{"amqp://guest:guest@localhost:5672/?exchange=events&routing_key=rk", ""},
		{"amqps://u:p@rabbit.example.com/prod?exchange=events", ""},
		{"amqp://u:p@rabbit.example.com/%2F?routing_key=queue", ""},
		{"amqp://u:@rabbit.example.com/?exchange=amq.topic&routing_key=a.b", ""},
		{"amqp://u:p@[::1]:5672/v?exchange=e:x.y-z_1", ""},
		{"http://u:p@host/?exchange=x", `the scheme must be amqp or amqps, not "http"`},
		{"amqp:opaque", "an amqp URL is amqp[s]://user:pass@host:port/vhost?exchange=name&routing_key=key"},
		{"amqp://host/?exchange=x", "an amqp URL needs user:pass@ before the host"},
		{"amqp://:p@host/?exchange=x", "an amqp URL needs user:pass@ before the host"},
		{"amqp://u@host/?exchange=x", "an amqp URL needs a password after the user name (user:pass@)"},
		{"amqp://u:p@/?exchange=x", "an amqp URL needs a host"},
		{"amqp://u:p@host:0/?exchange=x", `the port "0" is not a number from 1 to 65535`},
		{"amqp://u:p@host:70000/?exchange=x", `the port "70000" is not a number from 1 to 65535`},
		{"amqp://u:p@host/a/b?exchange=x", "the vhost is one path segment: write a / inside it as %2F"},
		{"amqp://u:p@host/" + long + "?exchange=x", "the vhost is longer than 255 bytes"},
		{"amqp://u:p@host/?exchange=x#frag", "an amqp URL has no #fragment"},
		{"amqp://u:p@host/?exchange=x&heartbeat=5", `unknown query parameter "heartbeat": an amqp URL takes exchange and routing_key`},
		{"amqp://u:p@host/?exchange=x&exchange=y", "the query parameter exchange is given more than once"},
		{"amqp://u:p@host/?exchange=%zz", "the query string is not valid: use ?exchange=name&routing_key=key"},
		{"amqp://u:p@host/", "an amqp URL needs ?exchange=name, or ?routing_key=queue for the default exchange"},
		{"amqp://u:p@host/?exchange=" + long, "the exchange name is longer than 255 bytes"},
		{"amqp://u:p@host/?exchange=a%20b", "the exchange name may hold only letters, digits, hyphens, underscores, periods and colons"},
		{"amqp://u:p@host/?exchange=amq.mine", "exchange names starting with amq. are reserved to RabbitMQ's own exchanges"},
		{"amqp://u:p@host/?exchange=x&routing_key=" + long, "the routing key is longer than 255 bytes"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		err = checkAMQP(u)
		switch {
		case tc.detail == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.detail != "" && (err == nil || err.Error() != tc.detail):
			t.Errorf("%s:\n got %v\nwant %s", tc.url, err, tc.detail)
		}
		if err != nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) > 1 && strings.Contains(err.Error(), pw) {
				t.Errorf("%s: the detail shows the password: %v", tc.url, err)
			}
		}
	}
}

func FuzzCheckAMQP(f *testing.F) {
	f.Add("amqp://guest:guest@localhost:5672/?exchange=events&routing_key=rk")
	f.Add("amqps://u:p@h/%2F?routing_key=q")
	f.Add("amqp://u:p@h/a/b?exchange=x&exchange=y#f")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tgt, err := parseAMQP(u)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty detail")
			}
			return
		}
		if tgt.user == "" || tgt.host == "" || tgt.vhost == "" || checkPort(tgt.port) != nil ||
			(tgt.exchange == "" && tgt.routingKey == "") || (u.Scheme == "amqps") != tgt.tls {
			t.Fatalf("%q accepted as %+v", s, tgt)
		}
	})
}

// benchPublish publishes signed 1 KiB-ish publications to target from
// GOMAXPROCS×4 goroutines (b.SetParallelism), as dispatcher workers would.
func benchPublish(b *testing.B, p Publisher, target string) {
	defer p.Close()
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"type":"invoice.paid","data":{"id":"` + strings.Repeat("x", 1000) + `"}}`)
	var n atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "msg_" + strconv.FormatInt(n.Add(1), 10)
			ack := p.Publish(context.Background(), Publication{
				Target: u, MessageID: id, Payload: payload, ContentType: "application/json",
				Headers: map[string]string{"webhook-id": id, "webhook-timestamp": "1700000000", "webhook-signature": "v1,sig"},
			})
			if ack.Err != nil {
				b.Error(ack.Err)
				return
			}
		}
	})
}

func BenchmarkAMQPPublish(b *testing.B) {
	c, err := net.DialTimeout("tcp", rabbitAddr, 2*time.Second)
	if err != nil {
		b.Skipf("RabbitMQ is not running on %s (%v)", rabbitAddr, err)
	}
	c.Close()
	conn, err := amqp.Dial("amqp://guest:guest@" + rabbitAddr + "/")
	if err != nil {
		b.Skipf("RabbitMQ on %s refused guest/guest (%v)", rabbitAddr, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q := "herald-bench-" + akRandom(b)
	// A queue bounded in length, so a long run does not fill the broker.
	if _, err := ch.QueueDeclare(q, false, true, false, false, amqp.Table{"x-max-length": int32(10000)}); err != nil {
		b.Fatal(err)
	}
	defer ch.QueueDelete(q, false, false, false)
	benchPublish(b, NewAMQP(Config{Timeout: 10 * time.Second}), "amqp://guest:guest@"+rabbitAddr+"/?routing_key="+q)
}

// tlsFront terminates TLS with a certificate for name and forwards to
// RabbitMQ; it returns its port and the pool that trusts the certificate.
func tlsFront(t *testing.T, name string) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", rabbitAddr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
				wg.Go(func() {
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				})
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, pool
}

func TestAMQPSOverConfigDial(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	port, pool := tlsFront(t, "rabbit.test")
	var (
		mu     sync.Mutex
		dialed []string
	)
	p := NewAMQP(Config{Timeout: 10 * time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, "127.0.0.1:"+port)
	}})
	p.(*amqpPublisher).rootCAs = pool
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)

	u, _ := url.Parse("amqps://guest:guest@rabbit.test:" + port + "/?exchange=" + top.exchange + "&routing_key=rk")
	pub := s.publication(t, u, 1)
	if ack := p.Publish(context.Background(), pub); ack.Err != nil {
		t.Fatalf("publish over TLS: %v", ack.Err)
	}
	if got := top.drain(t, s); got[pub.MessageID] != 1 {
		t.Fatalf("queue got %v", got)
	}
	// The server name is the URL's host: a certificate for another name is
	// refused.
	other, _ := url.Parse("amqps://guest:guest@other.test:" + port + "/?exchange=" + top.exchange + "&routing_key=rk")
	ack := p.Publish(context.Background(), s.publication(t, other, 2))
	var certErr *tls.CertificateVerificationError
	if !errors.As(ack.Err, &certErr) || !strings.Contains(ack.Err.Error(), "TLS handshake") {
		t.Fatalf("publish to a host the certificate does not name: %+v", ack)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"rabbit.test:" + port, "other.test:" + port}; strings.Join(dialed, " ") != strings.Join(want, " ") {
		t.Fatalf("Config.Dial got %v, want %v (the host as written, for the SSRF guard to resolve)", dialed, want)
	}
}

// testClock is a clock the test moves.
type testClock struct{ off atomic.Int64 }

var clockBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *testClock) now() time.Time          { return clockBase.Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestAMQPClosesIdleConnections(t *testing.T) {
	akNoLeaks(t)
	top := declare(t, rabbit(t))
	proxy, err := tcpproxy.Start(rabbitAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := NewAMQP(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	pool := p.(*amqpPublisher)
	var clock testClock
	pool.now = clock.now
	s := newAKSigner(t)
	a, b := top.url(t, rabbitAddr), top.url(t, proxy.Addr())
	publish := func(u *url.URL) {
		t.Helper()
		if ack := p.Publish(context.Background(), s.publication(t, u, 0)); ack.Err != nil {
			t.Fatal(ack.Err)
		}
	}
	conn := func(u *url.URL) *amqp.Connection {
		t.Helper()
		tgt, _ := parseAMQP(u)
		pool.mu.Lock()
		defer pool.mu.Unlock()
		if c := pool.targets[tgt.key()]; c != nil {
			return c.conn
		}
		return nil
	}
	publish(a)
	connA := conn(a)
	clock.advance(idleTarget / 2)
	publish(b)
	clock.advance(idleTarget / 2)
	publish(b) // a has been idle for idleTarget: swept now
	pool.wg.Wait()
	if conn(a) != nil || !connA.IsClosed() {
		t.Fatalf("the idle target's connection is still pooled (%v) or open (%v)", conn(a) != nil, !connA.IsClosed())
	}
	if conn(b) == nil || conn(b).IsClosed() {
		t.Fatal("the busy target's connection was closed")
	}
	publish(a)
	if conn(a) == nil || conn(a) == connA {
		t.Fatal("the swept target was not dialled again")
	}
	if got := top.drain(t, s); len(got) != 4 {
		t.Fatalf("queue got %v", got)
	}
}
