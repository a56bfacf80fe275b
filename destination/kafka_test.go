package destination

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaCluster is an in-process three-broker Kafka with a three-partition
// topic.
func kafkaCluster(t *testing.T, topic string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaURL(t *testing.T, c *kfake.Cluster, topic string) *url.URL {
	t.Helper()
	u, err := url.Parse("kafka://" + strings.Join(c.ListenAddrs(), ",") + "/" + topic)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// consumeAll reads the topic from the start until a sentinel written to
// every partition after the publications comes back, so it has seen all
// that was written, and returns how many times each key came, after
// verifying each record's signature over its headers.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, s *akSigner) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for p := range int32(3) {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Key: []byte("sentinel")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := map[string]int{}
	sentinels := map[int32]bool{}
	for len(sentinels) < 3 {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d keys and %d sentinels: %v", len(got), len(sentinels), err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "sentinel" {
				sentinels[r.Partition] = true
				return
			}
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			id, err := s.verify(headers, r.Value)
			if err != nil {
				t.Fatalf("record %s: Standard Webhooks verification: %v", r.Key, err)
			}
			if string(r.Key) != id || headers["content-type"] != "application/json" {
				t.Fatalf("record key %q, webhook-id %q, content-type %q", r.Key, id, headers["content-type"])
			}
			got[id]++
		})
	}
	return got
}

func TestKafkaThousandPublicationsWithLeaderChange(t *testing.T) {
	akNoLeaks(t)
	const topic = "herald-events"
	c := kafkaCluster(t, topic)
	// Which broker got a produce for which partition, before and after
	// the leaders move; observed without intercepting.
	type produce struct {
		node, partition int32
		afterMove       bool
	}
	var (
		seenMu    sync.Mutex
		seen      []produce
		afterMove atomic.Bool
	)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		seenMu.Lock()
		defer seenMu.Unlock()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				seen = append(seen, produce{c.CurrentNode(), rp.Partition, afterMove.Load()})
			}
		}
		return nil, nil, false
	})
	var dials atomic.Int64
	p := NewKafka(Config{Timeout: 10 * time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
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
	target := kafkaURL(t, c, topic)
	pubs := make([]Publication, 1000)
	for i := range pubs {
		pubs[i] = s.publication(t, target, i)
	}
	var (
		acked   atomic.Int64
		moveErr error
		moved   = map[int32]int32{} // partition → its new leader
	)
	retried, failures := publishAll(t, p, pubs, 16, func(int) {
		if acked.Add(1) != 300 {
			return
		}
		for part := range int32(3) {
			to := (c.LeaderFor(topic, part) + 1) % 3
			if err := c.MoveTopicPartition(topic, part, to); err != nil {
				moveErr = err
			}
			moved[part] = to
		}
		afterMove.Store(true)
	})
	if moveErr != nil {
		t.Fatal(moveErr)
	}
	for part, to := range moved {
		if got := c.LeaderFor(topic, part); got != to {
			t.Fatalf("partition %d led by %d, moved to %d", part, got, to)
		}
	}
	for _, err := range failures {
		t.Logf("failed attempt during the leader change: %v", err)
	}
	if dials.Load() == 0 {
		t.Error("the client did not dial through Config.Dial")
	}
	got := consumeAll(t, c, topic, s)
	for _, pub := range pubs {
		n := got[pub.MessageID]
		switch {
		case n == 0:
			t.Errorf("%s was acknowledged but is not in the topic", pub.MessageID)
		case n > 1 && !retried[pub.MessageID]:
			t.Errorf("%s was published once and is in the topic %d times", pub.MessageID, n)
		}
	}
	if len(got) != len(pubs) {
		t.Errorf("topic holds %d distinct keys, published %d", len(got), len(pubs))
	}
	// Each partition took produces at its new leader after the move: the
	// producer followed the change mid-run.
	seenMu.Lock()
	defer seenMu.Unlock()
	for part, to := range moved {
		n := 0
		for _, pr := range seen {
			if pr.afterMove && pr.partition == part && pr.node == to {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no produce reached partition %d's new leader %d after the move", part, to)
		}
	}
}

// produceError answers produce requests with code for every partition.
func produceError(req kmsg.Request, code int16) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range pr.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func TestKafkaNoLeaderThenRecovers(t *testing.T) {
	akNoLeaks(t)
	const topic = "herald-events"
	c := kafkaCluster(t, topic)
	var noLeader atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !noLeader.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		return produceError(req, kerr.NotLeaderForPartition.Code), nil, true
	})
	p := NewKafka(Config{Timeout: 30 * time.Second})
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)
	target := kafkaURL(t, c, topic)
	ctx := context.Background()

	if ack := p.Publish(ctx, s.publication(t, target, 0)); ack.Err != nil {
		t.Fatal(ack.Err)
	}
	noLeader.Store(true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	ack := p.Publish(short, s.publication(t, target, 1))
	cancel()
	if !errors.Is(ack.Err, context.DeadlineExceeded) || ack.Response != "" || !strings.Contains(ack.Err.Error(), `"herald-events"`) {
		t.Fatalf("publish with no leader: %+v", ack)
	}
	noLeader.Store(false)
	last := s.publication(t, target, 2)
	ack = p.Publish(ctx, last)
	if ack.Err != nil || !strings.HasPrefix(ack.Response, `topic "herald-events" partition `) || !strings.Contains(ack.Response, " offset ") {
		t.Fatalf("publish after the leader is back: %+v", ack)
	}
	if got := consumeAll(t, c, topic, s); got[last.MessageID] != 1 {
		t.Fatalf("topic holds %v", got)
	}
}

func TestKafkaProduceError(t *testing.T) {
	akNoLeaks(t)
	const topic = "herald-events"
	c := kafkaCluster(t, topic)
	// One produce request is refused for good (not a retriable error).
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		return produceError(req, kerr.TopicAuthorizationFailed.Code), nil, true
	})
	p := NewKafka(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	s := newAKSigner(t)
	ack := p.Publish(context.Background(), s.publication(t, kafkaURL(t, c, topic), 0))
	if ack.Err == nil || !errors.Is(ack.Err, kerr.TopicAuthorizationFailed) || errors.Is(ack.Err, context.DeadlineExceeded) {
		t.Fatalf("publish refused by the broker: %+v", ack)
	}
	if ack := p.Publish(context.Background(), s.publication(t, kafkaURL(t, c, topic), 1)); ack.Err != nil {
		t.Fatalf("publish after the refusal: %v", ack.Err)
	}
}

func TestKafkaRefusedDial(t *testing.T) {
	akNoLeaks(t)
	blocked := errors.New("address blocked by policy")
	p := NewKafka(Config{Timeout: time.Second, Dial: func(context.Context, string, string) (net.Conn, error) { return nil, blocked }})
	t.Cleanup(func() { p.Close() })
	u, _ := url.Parse("kafka://broker.example:9092/events")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if ack := p.Publish(ctx, Publication{Target: u, MessageID: "msg_1", Payload: []byte("{}")}); ack.Err == nil {
		t.Fatalf("publish through a refusing dialer: %+v", ack)
	}
	u, _ = url.Parse("kafka://user:s3cret@broker.example:9092/events")
	ack := p.Publish(ctx, Publication{Target: u, MessageID: "msg_1", Payload: []byte("{}")})
	if ack.Err == nil || strings.Contains(ack.Err.Error(), "s3cret") {
		t.Fatalf("publish to a URL with credentials: %+v", ack)
	}
}

func TestCheckKafka(t *testing.T) {
	for _, tc := range []struct {
		url    string
		detail string // "" when valid
	}{
		{"kafka://localhost:9092/events", ""},
		{"kafka://k1.example:9092,k2.example:9093/herald.events-v1_x", ""},
		{"kafka://k1.example/events", ""},
		{"kafka://[::1]:9092/events", ""},
		{"http://localhost:9092/events", `the scheme must be kafka, not "http"`},
		{"kafka:events", "a kafka URL is kafka://host:port[,host:port]/topic"},
		{"kafka://u:p@localhost:9092/events", "a kafka URL takes no user or password (SASL is not supported)"},
		{"kafka:///events", "a kafka URL needs at least one host:port"},
		{"kafka://k1:9092,,k2:9092/events", "the broker list has an empty entry between commas"},
		{"kafka://:9092/events", `the broker ":9092" has no host`},
		{"kafka://k1:0/events", `the broker "k1:0": the port "0" is not a number from 1 to 65535`},
		{"kafka://k1:9092,k2:/events", `the broker "k2:": the port "" is not a number from 1 to 65535`},
		{"kafka://k1:9092/events?acks=1", "a kafka URL takes no query parameters"},
		{"kafka://k1:9092/events?", "a kafka URL takes no query parameters"},
		{"kafka://k1:9092/events#x", "a kafka URL has no #fragment"},
		{"kafka://k1:9092/", "a kafka URL needs the topic as its path: kafka://host:port/topic"},
		{"kafka://k1:9092", "a kafka URL needs the topic as its path: kafka://host:port/topic"},
		{"kafka://k1:9092/" + strings.Repeat("t", 250), "the topic name is longer than 249 characters"},
		{"kafka://k1:9092/..", `the topic name cannot be "." or ".."`},
		{"kafka://k1:9092/a/b", "the topic name may hold only letters, digits, ., _ and - (one path segment)"},
		{"kafka://k1:9092/a%20b", "the topic name may hold only letters, digits, ., _ and - (one path segment)"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		err = checkKafka(u)
		switch {
		case tc.detail == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.detail != "" && (err == nil || err.Error() != tc.detail):
			t.Errorf("%s:\n got %v\nwant %s", tc.url, err, tc.detail)
		}
	}
}

func FuzzCheckKafka(f *testing.F) {
	f.Add("kafka://localhost:9092/events")
	f.Add("kafka://k1:9092,k2/a.b_c-d")
	f.Add("kafka://k1:9092,,k2:x/..?q#f")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		tgt, err := parseKafka(u)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty detail")
			}
			return
		}
		if len(tgt.seeds) == 0 || tgt.topic == "" || strings.ContainsAny(tgt.topic, "/%?#") {
			t.Fatalf("%q accepted as %+v", s, tgt)
		}
		for _, seed := range tgt.seeds {
			host, port, err := net.SplitHostPort(seed)
			if err != nil || host == "" || checkPort(port) != nil {
				t.Fatalf("%q accepted with the seed %q", s, seed)
			}
		}
	})
}

func BenchmarkKafkaPublish(b *testing.B) {
	const topic = "herald-bench"
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchPublish(b, NewKafka(Config{Timeout: 10 * time.Second}), "kafka://"+strings.Join(c.ListenAddrs(), ",")+"/"+topic)
}

func TestKafkaClosesIdleClients(t *testing.T) {
	akNoLeaks(t)
	const topic = "herald-events"
	c := kafkaCluster(t, topic)
	p := NewKafka(Config{Timeout: 10 * time.Second})
	t.Cleanup(func() { p.Close() })
	pool := p.(*kafkaPublisher)
	var clock testClock
	pool.now = clock.now
	s := newAKSigner(t)
	addrs := c.ListenAddrs()
	a, _ := url.Parse("kafka://" + addrs[0] + "/" + topic)
	b, _ := url.Parse("kafka://" + addrs[1] + "," + addrs[2] + "/" + topic)
	publish := func(u *url.URL) {
		t.Helper()
		if ack := p.Publish(context.Background(), s.publication(t, u, 0)); ack.Err != nil {
			t.Fatal(ack.Err)
		}
	}
	client := func(u *url.URL) *kgo.Client {
		t.Helper()
		tgt, _ := parseKafka(u)
		pool.mu.Lock()
		defer pool.mu.Unlock()
		if kc := pool.clients[strings.Join(tgt.seeds, ",")]; kc != nil {
			return kc.cl
		}
		return nil
	}
	publish(a)
	clA := client(a)
	clock.advance(idleTarget / 2)
	publish(b)
	clock.advance(idleTarget / 2)
	publish(b) // a has been idle for idleTarget: swept now
	pool.wg.Wait()
	if client(a) != nil {
		t.Fatal("the idle seed list's client is still pooled")
	}
	err := clA.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kgo.ErrClientClosed) {
		t.Fatalf("the swept client still produces: %v", err)
	}
	if client(b) == nil {
		t.Fatal("the busy seed list's client was closed")
	}
	publish(a)
	if client(a) == nil || client(a) == clA {
		t.Fatal("the swept seed list has no new client")
	}
}
