package destination

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkRedis validates redis[s]://[user:pass@]host:port/<db>?stream=<key>[&maxlen=<n>].
func checkRedis(u *url.URL) error {
	const form = "redis[s]://[user:pass@]host:port/<db>?stream=<key>[&maxlen=<n>]"
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("the path of a redis URL is a database number, not %q: %s", db, form)
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return errors.New("the query of the redis URL does not parse: " + form)
	}
	for name, values := range q {
		switch {
		case name != "stream" && name != "maxlen":
			return fmt.Errorf("unknown query parameter %q in a redis URL: %s", name, form)
		case len(values) != 1:
			return fmt.Errorf("the query parameter %q is given %d times", name, len(values))
		}
	}
	if q.Get("stream") == "" {
		return errors.New("a redis URL needs the stream's key: " + form)
	}
	if m, ok := q["maxlen"]; ok {
		if n, err := strconv.ParseInt(m[0], 10, 64); err != nil || n < 1 {
			return fmt.Errorf("maxlen is a positive whole number, not %q", m[0])
		}
	}
	return nil
}

// redisPublisher appends to Redis streams, one client (a connection pool)
// per server, credentials and database.
type redisPublisher struct {
	cfg Config

	mu      sync.Mutex
	clients map[string]*redis.Client
	closed  bool
}

// NewRedis returns the publisher of redis:// and rediss:// endpoints: an
// XADD to the URL's stream of an entry with a field body (the payload)
// and one field per webhook header, named as the header; with maxlen, the
// stream is trimmed to about that many entries (MAXLEN ~). The entry ID
// Redis answers confirms it.
func NewRedis(cfg Config) Publisher {
	return &redisPublisher{cfg: cfg, clients: map[string]*redis.Client{}}
}

func redisKey(u *url.URL) string {
	user := ""
	if u.User != nil {
		user = u.User.String()
	}
	return u.Scheme + "://" + user + "@" + u.Host + u.Path
}

func (p *redisPublisher) client(u *url.URL) (*redis.Client, error) {
	key := redisKey(u)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("the publisher is closed")
	}
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	opt, err := redis.ParseURL((&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: u.Path}).String())
	if err != nil {
		return nil, err
	}
	dial := p.cfg.dialer()
	tlsConfig := opt.TLSConfig
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil || tlsConfig == nil {
			return conn, err
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	// The client's own retries could append an entry twice when a reply
	// is lost; Herald's schedule retries, counting each attempt.
	opt.MaxRetries = -1
	opt.DialTimeout = p.cfg.timeout()
	opt.ContextTimeoutEnabled = true
	opt.ClientName = "herald"
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	p.clients[key] = c
	return c, nil
}

func (p *redisPublisher) Publish(ctx context.Context, pub Publication) Ack {
	start := time.Now()
	ctx, cancel := p.cfg.bound(ctx)
	defer cancel()
	c, err := p.client(pub.Target)
	if err != nil {
		return Ack{Err: fmt.Errorf("connect: %w", err), Duration: time.Since(start)}
	}
	q := pub.Target.Query()
	names := make([]string, 0, len(pub.Headers))
	for name := range pub.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	values := make([]any, 0, 2+2*len(names))
	values = append(values, "body", pub.Payload)
	for _, name := range names {
		values = append(values, name, pub.Headers[name])
	}
	args := &redis.XAddArgs{Stream: q.Get("stream"), Values: values}
	if m := q.Get("maxlen"); m != "" {
		args.MaxLen, _ = strconv.ParseInt(m, 10, 64)
		args.Approx = true
	}
	id, err := c.XAdd(ctx, args).Result()
	d := time.Since(start)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		return Ack{Err: err, Duration: d}
	}
	return Ack{Response: fmt.Sprintf("stream %s entry %s", args.Stream, id), Duration: d}
}

func (p *redisPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for k, c := range p.clients {
		errs = append(errs, c.Close())
		delete(p.clients, k)
	}
	return errors.Join(errs...)
}
