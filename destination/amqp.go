package destination

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// idleTarget is how long a target's connection (or client) stays open
// with no publish: an endpoint deleted, disabled or given new credentials
// leaves no connection behind for longer.
const idleTarget = 5 * time.Minute

// maxIdleChannels bounds the idle channels kept per AMQP connection; a
// burst wider than that opens channels and closes the extra ones after.
const maxIdleChannels = 64

// amqpTarget is what an amqp[s] URL selects: the connection (scheme,
// credentials, host and port, vhost) and the exchange and routing key each
// publish names.
type amqpTarget struct {
	tls        bool
	user, pass string
	host, port string
	vhost      string
	exchange   string
	routingKey string
}

// key selects the pooled connection: every part but exchange and routing
// key, which travel with each publish. It holds the password: a map key,
// never printed.
func (t amqpTarget) key() string {
	return strings.Join([]string{strconv.FormatBool(t.tls), t.user, t.pass, t.host, t.port, t.vhost}, "\x00")
}

// checkAMQP says what is wrong with an amqp or amqps endpoint URL, in words
// an API client can act on; nil when the URL is usable.
func checkAMQP(u *url.URL) error {
	_, err := parseAMQP(u)
	return err
}

func parseAMQP(u *url.URL) (amqpTarget, error) {
	var t amqpTarget
	switch u.Scheme {
	case "amqp":
	case "amqps":
		t.tls = true
	default:
		return t, fmt.Errorf("the scheme must be amqp or amqps, not %q", u.Scheme)
	}
	if u.Opaque != "" {
		return t, errors.New("an amqp URL is amqp[s]://user:pass@host:port/vhost?exchange=name&routing_key=key")
	}
	if u.User == nil || u.User.Username() == "" {
		return t, errors.New("an amqp URL needs user:pass@ before the host")
	}
	pass, ok := u.User.Password()
	if !ok {
		return t, errors.New("an amqp URL needs a password after the user name (user:pass@)")
	}
	t.user, t.pass = u.User.Username(), pass
	t.host = u.Hostname()
	if t.host == "" {
		return t, errors.New("an amqp URL needs a host")
	}
	t.port = u.Port()
	if t.port == "" {
		t.port = "5672"
		if t.tls {
			t.port = "5671"
		}
	} else if err := checkPort(t.port); err != nil {
		return t, err
	}
	vhost := strings.TrimPrefix(u.EscapedPath(), "/")
	if strings.Contains(vhost, "/") {
		return t, errors.New("the vhost is one path segment: write a / inside it as %2F")
	}
	vhost, err := url.PathUnescape(vhost)
	if err != nil {
		return t, errors.New("the vhost is not a valid escaped path segment")
	}
	if vhost == "" {
		vhost = "/"
	}
	if len(vhost) > 255 {
		return t, errors.New("the vhost is longer than 255 bytes")
	}
	t.vhost = vhost
	if u.Fragment != "" {
		return t, errors.New("an amqp URL has no #fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return t, errors.New("the query string is not valid: use ?exchange=name&routing_key=key")
	}
	for name, values := range q {
		if name != "exchange" && name != "routing_key" {
			return t, fmt.Errorf("unknown query parameter %q: an amqp URL takes exchange and routing_key", name)
		}
		if len(values) > 1 {
			return t, fmt.Errorf("the query parameter %s is given more than once", name)
		}
	}
	t.exchange, t.routingKey = q.Get("exchange"), q.Get("routing_key")
	if t.exchange == "" && t.routingKey == "" {
		return t, errors.New("an amqp URL needs ?exchange=name, or ?routing_key=queue for the default exchange")
	}
	if len(t.exchange) > 255 {
		return t, errors.New("the exchange name is longer than 255 bytes")
	}
	for _, c := range t.exchange {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return t, errors.New("the exchange name may hold only letters, digits, hyphens, underscores, periods and colons")
		}
	}
	if strings.HasPrefix(t.exchange, "amq.") && t.exchange != "amq.direct" && t.exchange != "amq.topic" &&
		t.exchange != "amq.fanout" && t.exchange != "amq.headers" && t.exchange != "amq.match" {
		return t, errors.New("exchange names starting with amq. are reserved to RabbitMQ's own exchanges")
	}
	if len(t.routingKey) > 255 {
		return t, errors.New("the routing key is longer than 255 bytes")
	}
	return t, nil
}

// checkPort says what is wrong with a URL's port.
func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("the port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// amqpPublisher publishes to RabbitMQ (AMQP 0-9-1) with publisher confirms
// and the mandatory flag. It keeps one connection per target and a pool of
// confirm-mode channels on it, each used by one publish at a time; it is
// safe for concurrent use.
type amqpPublisher struct {
	cfg Config
	// rootCAs verifies amqps brokers; nil for the system's roots (tests
	// set their own CA).
	rootCAs *x509.CertPool

	// now is the clock of the idle sweep (time.Now; tests set their own).
	now func() time.Time

	mu        sync.Mutex
	closed    bool
	targets   map[string]*amqpConn
	lastSweep time.Time
	// wg owns the goroutines that finish what an abandoned publish left
	// (closing a discarded channel, pooling a channel opened too late).
	wg sync.WaitGroup
}

// NewAMQP returns the Publisher of amqp and amqps endpoints.
func NewAMQP(cfg Config) Publisher {
	return &amqpPublisher{cfg: cfg, now: time.Now, targets: map[string]*amqpConn{}}
}

// amqpConn is one target's connection and its idle channels.
type amqpConn struct {
	// inflight and lastUsed are guarded by amqpPublisher.mu: the idle
	// sweep closes only a connection no publish holds.
	inflight int
	lastUsed time.Time

	// dialing is held by the publish that (re)dials, so a waiting publish
	// can give up when its context ends.
	dialing chan struct{}

	mu   sync.Mutex
	conn *amqp.Connection
	idle []*amqpChannel
}

// amqpChannel is a channel in confirm mode with its return and close
// notifications. A publish owns it until it goes back to the pool.
type amqpChannel struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	closes  chan *amqp.Error
}

func (p *amqpPublisher) Publish(ctx context.Context, pub Publication) Ack {
	start := time.Now()
	ack := p.publish(ctx, pub)
	ack.Duration = time.Since(start)
	ack.Err = scrub(ack.Err)
	return ack
}

func (p *amqpPublisher) publish(ctx context.Context, pub Publication) Ack {
	if pub.Target == nil {
		return Ack{Err: errors.New("amqp: no target URL")}
	}
	t, err := parseAMQP(pub.Target)
	if err != nil {
		return Ack{Err: fmt.Errorf("amqp URL: %w", err)}
	}
	ctx, cancel := withTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	target, err := p.target(t)
	if err != nil {
		return Ack{Err: err}
	}
	defer p.release(target)
	ch, err := p.channel(ctx, target, t)
	if err != nil {
		return Ack{Err: err}
	}
	msg := amqp.Publishing{
		Headers:      amqp.Table{},
		ContentType:  pub.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    pub.MessageID,
		Timestamp:    publicationTime(pub),
		Body:         pub.Payload,
	}
	for name, value := range pub.Headers {
		msg.Headers[name] = value
	}
	confirm, err := ch.ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, t.routingKey, true, false, msg)
	if err != nil {
		p.discard(ch)
		return Ack{Err: fmt.Errorf("publish to exchange %q: %w", t.exchange, describeAMQP(err, ch))}
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		// The confirm may still come: the channel goes, so it can never be
		// taken for the confirm of another publish.
		p.discard(ch)
		return Ack{Err: fmt.Errorf("no confirm from the broker for exchange %q before the deadline: %w", t.exchange, err)}
	}
	if !acked {
		p.discard(ch)
		return Ack{Err: fmt.Errorf("exchange %q: %w", t.exchange, nackReason(ch))}
	}
	// RabbitMQ sends basic.return before the basic.ack of the same message,
	// and the library hands it over before it reads the ack.
	select {
	case ret, ok := <-ch.returns:
		if !ok {
			// The connection died after the ack: the channel closed its
			// return notifications, and no return came before the ack.
			break
		}
		target.put(ch)
		return Ack{Err: fmt.Errorf("returned unroutable by exchange %q with routing key %q: %s (%d)",
			t.exchange, t.routingKey, ret.ReplyText, ret.ReplyCode)}
	default:
	}
	target.put(ch)
	if t.exchange == "" {
		return Ack{Response: fmt.Sprintf("confirmed by the default exchange, routed to queue %q", t.routingKey)}
	}
	return Ack{Response: fmt.Sprintf("confirmed by exchange %q with routing key %q", t.exchange, t.routingKey)}
}

var errNacked = errors.New("the broker refused the message (basic.nack)")

// describeAMQP says why a publish could not be written: the channel's
// end when it closed, else the library's error.
func describeAMQP(err error, ch *amqpChannel) error {
	select {
	case e, ok := <-ch.closes:
		if ok && e != nil {
			return closeReason(e)
		}
	default:
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return &textError{text: fmt.Sprintf("%s (%d)", ae.Reason, ae.Code), err: err}
	}
	return err
}

// nackReason says why a publish was not confirmed: the broker's nack, or
// the channel's end (the library nacks what was waiting when it closes).
func nackReason(ch *amqpChannel) error {
	select {
	case e, ok := <-ch.closes:
		if ok && e != nil {
			return closeReason(e)
		}
	default:
	}
	return errNacked
}

// closeReason is a channel's or connection's end in words.
func closeReason(e *amqp.Error) error {
	if e.Server {
		return &textError{text: fmt.Sprintf("the broker closed the channel: %s (%d)", e.Reason, e.Code), err: e}
	}
	return &textError{text: "the connection to the broker dropped: " + e.Reason, err: e}
}

// publicationTime is the webhook-timestamp the signature covers, or now.
func publicationTime(pub Publication) time.Time {
	if s, ok := pub.Headers["webhook-timestamp"]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return time.Now()
}

// withTimeout bounds ctx by d unless it ends earlier already.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func (p *amqpPublisher) target(t amqpTarget) (*amqpConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("amqp: publisher closed")
	}
	now := p.now()
	p.sweepLocked(now)
	k := t.key()
	c, ok := p.targets[k]
	if !ok {
		c = &amqpConn{dialing: make(chan struct{}, 1)}
		p.targets[k] = c
	}
	c.inflight++
	c.lastUsed = now
	return c, nil
}

func (p *amqpPublisher) release(c *amqpConn) {
	p.mu.Lock()
	c.inflight--
	c.lastUsed = p.now()
	p.mu.Unlock()
}

// sweepLocked closes, at most every fifth of idleTarget, the connections
// no publish used for idleTarget.
func (p *amqpPublisher) sweepLocked(now time.Time) {
	if now.Sub(p.lastSweep) < idleTarget/5 {
		return
	}
	p.lastSweep = now
	for k, c := range p.targets {
		if c.inflight == 0 && now.Sub(c.lastUsed) >= idleTarget {
			delete(p.targets, k)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				c.close()
			}()
		}
	}
}

// close closes the connection (its channels with it).
func (c *amqpConn) close() {
	c.mu.Lock()
	conn := c.conn
	c.conn, c.idle = nil, nil
	c.mu.Unlock()
	if conn != nil {
		// A broker that stopped answering must not hold Close.
		_ = conn.CloseDeadline(time.Now().Add(5 * time.Second))
	}
}

// channel takes an idle channel of the target's live connection, or opens
// one, dialling the connection first when it is missing or dropped.
func (p *amqpPublisher) channel(ctx context.Context, c *amqpConn, t amqpTarget) (*amqpChannel, error) {
	conn, ch := c.get()
	if ch != nil {
		return ch, nil
	}
	if conn == nil {
		var err error
		if conn, err = p.connect(ctx, c, t); err != nil {
			return nil, err
		}
	}
	// Channel.Open waits for the broker without a context: it runs aside,
	// and a channel it opens after this publish gave up joins the pool.
	type opened struct {
		ch  *amqpChannel
		err error
	}
	done := make(chan opened, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ch, err := openChannel(conn)
		done <- opened{ch, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, fmt.Errorf("open a channel: %w", o.err)
		}
		return o.ch, nil
	case <-ctx.Done():
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if o := <-done; o.err == nil {
				c.put(o.ch)
			}
		}()
		return nil, fmt.Errorf("open a channel before the deadline: %w", ctx.Err())
	}
}

func openChannel(conn *amqp.Connection) (*amqpChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	return &amqpChannel{
		conn:    conn,
		ch:      ch,
		returns: ch.NotifyReturn(make(chan amqp.Return, 1)),
		closes:  ch.NotifyClose(make(chan *amqp.Error, 1)),
	}, nil
}

// get returns an idle channel of the live connection, or the live
// connection with no idle channel, or neither when it must be dialled.
func (c *amqpConn) get() (*amqp.Connection, *amqpChannel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		c.dropLocked()
		return nil, nil
	}
	for len(c.idle) > 0 {
		ch := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if !ch.ch.IsClosed() {
			return c.conn, ch
		}
	}
	return c.conn, nil
}

// put returns a channel to the pool, or closes it when it belongs to an
// older connection or the pool is full.
func (c *amqpConn) put(ch *amqpChannel) {
	c.mu.Lock()
	if ch.conn == c.conn && !ch.ch.IsClosed() && len(c.idle) < maxIdleChannels {
		c.idle = append(c.idle, ch)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	ch.ch.Close()
}

// dropLocked forgets a dropped connection and its channels.
func (c *amqpConn) dropLocked() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.idle = nil, nil
}

// discard closes a channel a publish cannot hand back: a confirm or a
// return may still arrive on it. The close waits for the broker, so it
// runs aside.
func (p *amqpPublisher) discard(ch *amqpChannel) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ch.ch.Close()
	}()
}

// connect dials the target's connection unless another publish did so
// meanwhile.
func (p *amqpPublisher) connect(ctx context.Context, c *amqpConn, t amqpTarget) (*amqp.Connection, error) {
	select {
	case c.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("connect to the broker before the deadline: %w", ctx.Err())
	}
	defer func() { <-c.dialing }()
	c.mu.Lock()
	if c.conn != nil && !c.conn.IsClosed() {
		conn := c.conn
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()
	conn, err := p.dial(ctx, t)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		conn.Close()
		return nil, errors.New("amqp: publisher closed")
	}
	c.dropLocked()
	c.conn = conn
	return conn, nil
}

// dial opens a TCP connection through Config.Dial, TLS on it for amqps,
// and the AMQP handshake, all bounded by ctx.
func (p *amqpPublisher) dial(ctx context.Context, t amqpTarget) (*amqp.Connection, error) {
	addr := net.JoinHostPort(t.host, t.port)
	raw, err := dialContext(ctx, p.cfg.Dial, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the broker: %w", describeDial(err))
	}
	netConn := raw
	if t.tls {
		tc := tls.Client(raw, &tls.Config{ServerName: t.host, MinVersion: tls.VersionTLS12, RootCAs: p.rootCAs})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with the broker: %w", describeDial(err))
		}
		netConn = tc
	}
	// The AMQP handshake has no context: the deadline bounds it, and the
	// library clears it once the connection is open.
	if dl, ok := ctx.Deadline(); ok {
		_ = netConn.SetDeadline(dl)
	}
	conn, err := amqp.Open(netConn, amqp.Config{
		SASL:      []amqp.Authentication{&amqp.PlainAuth{Username: t.user, Password: t.pass}},
		Vhost:     t.vhost,
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Properties: amqp.Table{
			"product":         "Herald",
			"connection_name": "herald",
		},
	})
	if err != nil {
		netConn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("AMQP handshake before the deadline: %w", ctx.Err())
		}
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.FrameError {
			// The library's code for a broken socket, not the broker's.
			return nil, &textError{text: "AMQP handshake: " + ae.Reason, err: err}
		}
		if errors.As(err, &ae) {
			return nil, &textError{text: fmt.Sprintf("AMQP handshake: %s (%d)", ae.Reason, ae.Code), err: err}
		}
		return nil, fmt.Errorf("AMQP handshake: %w", describeDial(err))
	}
	return conn, nil
}

// dialContext dials through dial, or a plain net.Dialer when nil.
func dialContext(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return dial(ctx, "tcp", addr)
}

// textError is an error in other words (a dial's without the addresses it
// names: attempts are read by endpoint owners, and the addresses a
// broker's host resolved to would map the network Herald runs in). Unwrap
// gives the original error.
type textError struct {
	text string
	err  error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.err }

// addrs matches the addresses the net package writes in its errors
// ("read tcp 10.0.0.5:40000->10.1.2.3:5672: ").
var addrs = regexp.MustCompile(`\b(tcp[46]?|udp[46]?) [^\s]+?: `)

// scrub removes from err's text the socket addresses the broker's client
// library copied there, for the reason describeDial gives; Unwrap keeps
// the original.
func scrub(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if clean := addrs.ReplaceAllString(text, "$1: "); clean != text {
		return &textError{text: clean, err: err}
	}
	return err
}

func describeDial(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		text := "no such host"
		if !dns.IsNotFound {
			text = "DNS lookup failed"
		}
		return &textError{text: text, err: err}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return &textError{text: op.Op + ": " + op.Err.Error(), err: err}
	}
	return err
}

func (p *amqpPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	targets := p.targets
	p.targets = map[string]*amqpConn{}
	p.mu.Unlock()
	for _, c := range targets {
		c.close()
	}
	p.wg.Wait()
	return nil
}
