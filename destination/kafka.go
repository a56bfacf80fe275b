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

	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultDeliveryTimeout bounds how long the client keeps a record no
// broker takes when Config.Timeout is zero.
const defaultDeliveryTimeout = 30 * time.Second

// kafkaTarget is what a kafka URL selects: the seed brokers (one client
// each list) and the topic.
type kafkaTarget struct {
	seeds []string
	topic string
}

// checkKafka says what is wrong with a kafka endpoint URL, in words an API
// client can act on; nil when the URL is usable.
func checkKafka(u *url.URL) error {
	_, err := parseKafka(u)
	return err
}

func parseKafka(u *url.URL) (kafkaTarget, error) {
	var t kafkaTarget
	if u.Scheme != "kafka" {
		return t, fmt.Errorf("the scheme must be kafka, not %q", u.Scheme)
	}
	if u.Opaque != "" {
		return t, errors.New("a kafka URL is kafka://host:port[,host:port]/topic")
	}
	if u.User != nil {
		return t, errors.New("a kafka URL takes no user or password (SASL is not supported)")
	}
	if u.Host == "" {
		return t, errors.New("a kafka URL needs at least one host:port")
	}
	for _, hp := range strings.Split(u.Host, ",") {
		if hp == "" {
			return t, errors.New("the broker list has an empty entry between commas")
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			host, port = hp, "9092"
			if strings.Contains(hp, ":") {
				return t, fmt.Errorf("the broker %q is not host:port", hp)
			}
		}
		if host == "" {
			return t, fmt.Errorf("the broker %q has no host", hp)
		}
		if err := checkPort(port); err != nil {
			return t, fmt.Errorf("the broker %q: %w", hp, err)
		}
		t.seeds = append(t.seeds, net.JoinHostPort(host, port))
	}
	if u.RawQuery != "" || u.ForceQuery {
		return t, errors.New("a kafka URL takes no query parameters")
	}
	if u.Fragment != "" {
		return t, errors.New("a kafka URL has no #fragment")
	}
	topic := strings.TrimPrefix(u.EscapedPath(), "/")
	switch {
	case topic == "":
		return t, errors.New("a kafka URL needs the topic as its path: kafka://host:port/topic")
	case len(topic) > 249:
		return t, errors.New("the topic name is longer than 249 characters")
	case topic == "." || topic == "..":
		return t, errors.New(`the topic name cannot be "." or ".."`)
	}
	for _, c := range topic {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return t, errors.New("the topic name may hold only letters, digits, ., _ and - (one path segment)")
		}
	}
	t.topic = topic
	return t, nil
}

// kafkaPublisher produces to Kafka with acks from all in-sync replicas
// and the idempotent producer, one client per seed list; it is safe for
// concurrent use.
type kafkaPublisher struct {
	cfg Config

	// now is the clock of the idle sweep (time.Now; tests set their own).
	now func() time.Time
	// ctx is every record's context, canceled by Close. A publish's own
	// context only bounds its wait: the client fails a partition's
	// buffered records together when the first one's context ends, and one
	// publish's deadline must not fail another's record.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	clients   map[string]*kafkaClient
	lastSweep time.Time
	// wg owns the goroutines closing swept clients.
	wg sync.WaitGroup
}

// kafkaClient is one seed list's client and its use, guarded by
// kafkaPublisher.mu: the idle sweep closes only a client no publish holds.
type kafkaClient struct {
	cl       *kgo.Client
	inflight int
	lastUsed time.Time
}

// NewKafka returns the Publisher of kafka endpoints.
func NewKafka(cfg Config) Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	return &kafkaPublisher{cfg: cfg, now: time.Now, ctx: ctx, cancel: cancel, clients: map[string]*kafkaClient{}}
}

func (p *kafkaPublisher) Publish(ctx context.Context, pub Publication) Ack {
	start := time.Now()
	ack := p.publish(ctx, pub)
	ack.Duration = time.Since(start)
	ack.Err = scrub(ack.Err)
	return ack
}

func (p *kafkaPublisher) publish(ctx context.Context, pub Publication) Ack {
	if pub.Target == nil {
		return Ack{Err: errors.New("kafka: no target URL")}
	}
	t, err := parseKafka(pub.Target)
	if err != nil {
		return Ack{Err: fmt.Errorf("kafka URL: %w", err)}
	}
	ctx, cancel := withTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	kc, err := p.client(t)
	if err != nil {
		return Ack{Err: err}
	}
	defer p.release(kc)
	cl := kc.cl
	rec := &kgo.Record{Topic: t.topic, Key: []byte(pub.MessageID), Value: pub.Payload}
	hasType := false
	for name, value := range pub.Headers {
		hasType = hasType || name == "content-type"
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: name, Value: []byte(value)})
	}
	if !hasType && pub.ContentType != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "content-type", Value: []byte(pub.ContentType)})
	}
	done := make(chan error, 1)
	// TryProduce fails at once, rather than wait, when the client already
	// buffers MaxBufferedRecords for brokers that do not take them.
	cl.TryProduce(p.ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			return Ack{Err: fmt.Errorf("produce to topic %q: %w", t.topic, describeDial(err))}
		}
		return Ack{Response: fmt.Sprintf("topic %q partition %d offset %d", t.topic, rec.Partition, rec.Offset)}
	case <-ctx.Done():
		// The client may still write the record (an idempotent producer
		// cannot take back a sent batch): the retry that follows delivers
		// it again, keyed by the same message ID.
		return Ack{Err: fmt.Errorf("no acknowledgement from topic %q before the deadline: %w", t.topic, ctx.Err())}
	}
}

// client returns the seed list's client, made on first use.
func (p *kafkaPublisher) client(t kafkaTarget) (*kafkaClient, error) {
	key := strings.Join(t.seeds, ",")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("kafka: publisher closed")
	}
	now := p.now()
	p.sweepLocked(now)
	if kc, ok := p.clients[key]; ok {
		kc.inflight++
		kc.lastUsed = now
		return kc, nil
	}
	dial := p.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.seeds...),
		kgo.Dialer(dial),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		// A topic that does not exist fails the attempt after a metadata
		// refresh or two instead of waiting for the deadline.
		kgo.UnknownTopicRetries(2),
		// After a leader change the client learns the new leader from a
		// metadata refresh: at most a second late rather than five.
		kgo.MetadataMinAge(time.Second),
		kgo.ClientID("herald"),
	}
	// A record no broker takes is failed by the client too, so it does not
	// sit in the buffer long after the attempt gave up.
	delivery := p.cfg.Timeout
	if delivery <= 0 {
		delivery = defaultDeliveryTimeout
	}
	opts = append(opts, kgo.RecordDeliveryTimeout(delivery))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	kc := &kafkaClient{cl: cl, inflight: 1, lastUsed: now}
	p.clients[key] = kc
	return kc, nil
}

func (p *kafkaPublisher) release(kc *kafkaClient) {
	p.mu.Lock()
	kc.inflight--
	kc.lastUsed = p.now()
	p.mu.Unlock()
}

// sweepLocked closes, at most every fifth of idleTarget, the clients no
// publish used for idleTarget.
func (p *kafkaPublisher) sweepLocked(now time.Time) {
	if now.Sub(p.lastSweep) < idleTarget/5 {
		return
	}
	p.lastSweep = now
	for k, kc := range p.clients {
		if kc.inflight == 0 && now.Sub(kc.lastUsed) >= idleTarget {
			delete(p.clients, k)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				kc.cl.Close()
			}()
		}
	}
}

func (p *kafkaPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	clients := p.clients
	p.clients = map[string]*kafkaClient{}
	p.mu.Unlock()
	p.cancel()
	for _, kc := range clients {
		kc.cl.Close()
	}
	p.wg.Wait()
	return nil
}
