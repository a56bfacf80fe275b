package bench

import (
	"context"
	"errors"
	"fmt"
	randv2 "math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/signature"
)

// sink is a broker the benchmark's endpoints publish to instead of HTTP
// receivers: open points each receiver at a fresh target on the broker at
// addr (a stream, subject or key of the run's own) and consumes it,
// handing each message to the receiver as its POST would be.
type sink struct {
	// addr is the broker's default host:port.
	addr string
	open func(ctx context.Context, addr string, rs []*receiver) (closeSink func(), err error)
}

// sinks are the brokers `herald bench --destination` can measure, by
// destination kind (destination.Kinds).
var sinks = map[string]sink{
	"nats":  {addr: "127.0.0.1:4222", open: openNATSSink},
	"redis": {addr: "127.0.0.1:6379", open: openRedisSink},
	"amqp":  {addr: "127.0.0.1:5672", open: openAMQPSink},
	// No default address: kfake in process unless --broker-addr names a
	// Kafka cluster.
	"kafka": {open: openKafkaSink},
}

// destinations lists what --destination takes: http, and every broker
// kind the destination package registers that has a sink here.
func destinations() []string {
	d := []string{"http"}
	for _, k := range destination.Kinds() {
		if _, ok := sinks[k]; ok {
			d = append(d, k)
		}
	}
	return d
}

// validateDestination checks --destination and the flags it excludes.
func (c *Command) validateDestination() error {
	if c.Destination == "" || c.Destination == "http" {
		if c.BrokerAddr != "" {
			return errors.New("--broker-addr needs a broker --destination")
		}
		return nil
	}
	if !slices.Contains(destinations(), c.Destination) {
		return fmt.Errorf("--destination must be one of %s", strings.Join(destinations(), ", "))
	}
	if c.FailRatio > 0 || c.HangRatio > 0 || c.HangingEndpoints > 0 {
		return errors.New("--fail-ratio, --hang-ratio and --hanging-endpoints need --destination http: a broker's endpoints are all healthy")
	}
	return nil
}

// startSink points the receivers at the broker of c.Destination, or does
// nothing for http.
func (c *Command) startSink(ctx context.Context, rs []*receiver) (func(), error) {
	s, ok := sinks[c.Destination]
	if !ok {
		return func() {}, nil
	}
	addr := c.BrokerAddr
	if addr == "" {
		addr = s.addr
	}
	return s.open(ctx, addr, rs)
}

// accept is a receiver's handling of one delivered message (verify a
// sample of signatures, record the first receipt), whatever carried it.
func (rc *receiver) accept(h http.Header, body []byte) {
	at := time.Since(rc.start)
	if rc.verifyRatio > 0 && randFloat() < rc.verifyRatio {
		if err := verifySignature(rc.keys, h, body); err != nil {
			rc.tally.badSignatures.Add(1)
			msg := err.Error()
			rc.tally.sigErr.CompareAndSwap(nil, &msg)
		} else {
			rc.tally.verified.Add(1)
		}
	}
	if rc.record(h.Get("webhook-id"), at) {
		rc.tally.delivered.Add(1)
		rc.tally.noteReceipt(at)
	} else {
		rc.tally.duplicates.Add(1)
	}
}

// openNATSSink creates a memory stream holding one subject per receiver
// and subscribes to each (a plain subscription sees every publication the
// stream takes, and a retried one again: bench counts it a duplicate).
func openNATSSink(ctx context.Context, addr string, rs []*receiver) (func(), error) {
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", addr, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	id := strings.ToLower(herald.NewID("b"))
	name := "HERALD_BENCH_" + strings.ToUpper(id)
	prefix := "herald.bench." + id
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("create the JetStream stream (is JetStream on?): %w", err)
	}
	closeSink := func() {
		_ = js.DeleteStream(context.Background(), name)
		nc.Close()
	}
	for i, rc := range rs {
		subject := fmt.Sprintf("%s.%d", prefix, i)
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
			h := http.Header{}
			for k, v := range m.Header {
				h[textproto.CanonicalMIMEHeaderKey(k)] = v
			}
			rc.accept(h, m.Data)
		}); err != nil {
			closeSink()
			return nil, err
		}
		rc.url = "nats://" + addr + "/" + subject
	}
	if err := nc.Flush(); err != nil {
		closeSink()
		return nil, err
	}
	return closeSink, nil
}

// openRedisSink gives each receiver a stream key of its own and reads it
// with XREAD from the start, deleting the keys at the end.
func openRedisSink(ctx context.Context, addr string, rs []*receiver) (func(), error) {
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: len(rs) + 4})
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", addr, err)
	}
	id := herald.NewID("b")
	readCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	keys := make([]string, len(rs))
	for i, rc := range rs {
		key := fmt.Sprintf("herald:bench:%s:%d", id, i)
		keys[i] = key
		rc.url = "redis://" + addr + "/0?stream=" + key
		wg.Go(func() {
			last := "0"
			for readCtx.Err() == nil {
				res, err := client.XRead(readCtx, &redis.XReadArgs{Streams: []string{key, last}, Count: 1000, Block: 500 * time.Millisecond}).Result()
				if err != nil {
					if !errors.Is(err, redis.Nil) && readCtx.Err() == nil {
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				for _, st := range res {
					for _, m := range st.Messages {
						last = m.ID
						h := http.Header{}
						var body []byte
						for k, v := range m.Values {
							s, _ := v.(string)
							if k == "body" {
								body = []byte(s)
								continue
							}
							h.Set(k, s)
						}
						rc.accept(h, body)
					}
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
		client.Del(context.Background(), keys...)
		client.Close()
	}, nil
}

func randFloat() float64 { return randv2.Float64() }

// verifySignature checks a delivery's Standard Webhooks signature.
func verifySignature(keys [][]byte, h http.Header, body []byte) error {
	return signature.Verify(keys, h, body, time.Now(), 0)
}
