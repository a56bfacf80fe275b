package destination

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// checkNATS validates nats://[user:pass@]host:port/<subject>.
func checkNATS(u *url.URL) error {
	if u.RawQuery != "" {
		return errors.New("a nats URL takes no query: nats://[user:pass@]host:port/<subject>")
	}
	subject := strings.TrimPrefix(u.Path, "/")
	if subject == "" {
		return errors.New("a nats URL needs a subject as its path: nats://[user:pass@]host:port/<subject>")
	}
	if err := natsSubject(subject); err != nil {
		return err
	}
	return nil
}

// natsSubject checks a publish subject: dot-separated non-empty tokens, no
// wildcards, no white space.
func natsSubject(s string) error {
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("the subject %q has an empty token (a leading, trailing or doubled dot)", s)
		case tok == "*" || tok == ">":
			return fmt.Errorf("the subject %q has a wildcard: a publish subject names one subject", s)
		case strings.ContainsAny(tok, " \t\r\n*>"):
			return fmt.Errorf("the subject %q has white space or a wildcard character", s)
		}
	}
	return nil
}

// natsPublisher publishes to JetStream, one connection per server and
// credentials.
type natsPublisher struct {
	cfg Config

	mu     sync.Mutex
	conns  map[string]*natsConn
	closed bool
}

type natsConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// NewNATS returns the publisher of nats:// endpoints: a JetStream publish
// of the payload to the URL's subject, the webhook headers as the
// message's headers and Nats-Msg-Id set to the message ID, so the stream
// drops a retried duplicate within its duplicate window. The ack of the
// stream holding the subject confirms it; no stream is a failed attempt.
func NewNATS(cfg Config) Publisher {
	return &natsPublisher{cfg: cfg, conns: map[string]*natsConn{}}
}

// natsKey selects a connection: server and credentials.
func natsKey(u *url.URL) string {
	user := ""
	if u.User != nil {
		user = u.User.String()
	}
	return user + "@" + u.Host
}

// natsDialer dials through Config.Dial.
type natsDialer struct {
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	timeout time.Duration
}

func (d natsDialer) Dial(network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	return d.dial(ctx, network, address)
}

func (p *natsPublisher) conn(u *url.URL) (*natsConn, error) {
	key := natsKey(u)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("the publisher is closed")
	}
	if c, ok := p.conns[key]; ok {
		if !c.nc.IsClosed() {
			return c, nil
		}
		delete(p.conns, key)
	}
	server := &url.URL{Scheme: "nats", User: u.User, Host: u.Host}
	timeout := p.cfg.timeout()
	nc, err := nats.Connect(server.String(),
		nats.SetCustomDialer(natsDialer{dial: p.cfg.dialer(), timeout: timeout}),
		nats.Timeout(timeout),
		nats.Name("herald"),
		// Only the URL's server: a server's gossip of its cluster's other
		// addresses is not dialled (the SSRF guard would judge them, but
		// the endpoint's owner did not name them).
		nats.IgnoreDiscoveredServers(),
		nats.DontRandomize(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// No buffering while reconnecting: a publish then fails at once
		// and is retried on the endpoint's schedule, rather than waiting
		// for an ack that may never come.
		nats.ReconnectBufSize(-1),
		nats.NoCallbacksAfterClientClose(),
	)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &natsConn{nc: nc, js: js}
	p.conns[key] = c
	return c, nil
}

func (p *natsPublisher) Publish(ctx context.Context, pub Publication) Ack {
	start := time.Now()
	ctx, cancel := p.cfg.bound(ctx)
	defer cancel()
	c, err := p.conn(pub.Target)
	if err != nil {
		return Ack{Err: fmt.Errorf("connect: %w", err), Duration: time.Since(start)}
	}
	subject := strings.TrimPrefix(pub.Target.Path, "/")
	msg := nats.NewMsg(subject)
	msg.Data = pub.Payload
	for name, value := range pub.Headers {
		msg.Header.Set(name, value)
	}
	msg.Header.Set(jetstream.MsgIDHeader, pub.MessageID)
	ack, err := c.js.PublishMsg(ctx, msg)
	d := time.Since(start)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return Ack{Err: fmt.Errorf("no JetStream stream holds the subject %q: %w", subject, err), Duration: d}
		}
		if errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		return Ack{Err: err, Duration: d}
	}
	text := fmt.Sprintf("stream %s sequence %d", ack.Stream, ack.Sequence)
	if ack.Duplicate {
		text += " (duplicate: the stream already held this message ID)"
	}
	return Ack{Response: text, Duration: d}
}

func (p *natsPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, c := range p.conns {
		c.nc.Close()
		delete(p.conns, k)
	}
	return nil
}
