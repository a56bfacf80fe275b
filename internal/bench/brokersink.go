package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/herald-webhooks/herald"
)

// openAMQPSink declares an auto-deleted direct exchange of the run's own
// and, per receiver, a queue bound with the receiver's number as routing
// key, and consumes every queue (auto-ack: a retried publication is seen
// again and counted as a duplicate). The broker is RabbitMQ's default
// guest account on addr.
func openAMQPSink(ctx context.Context, addr string, rs []*receiver) (func(), error) {
	base := "amqp://guest:guest@" + addr + "/"
	conn, err := amqp.Dial(base)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ at %s: %w", addr, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	exchange := "herald-bench-" + strings.ToLower(herald.NewID("b"))
	if err := ch.ExchangeDeclare(exchange, "direct", false, true, false, false, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("declare the exchange: %w", err)
	}
	var wg sync.WaitGroup
	closeSink := func() {
		conn.Close() // ends every consumer's delivery channel
		wg.Wait()
	}
	for i, rc := range rs {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err == nil {
			err = ch.QueueBind(q.Name, fmt.Sprint(i), exchange, false, nil)
		}
		var deliveries <-chan amqp.Delivery
		if err == nil {
			deliveries, err = ch.Consume(q.Name, "", true, true, false, false, nil)
		}
		if err != nil {
			closeSink()
			return nil, fmt.Errorf("declare the queue of endpoint %d: %w", i, err)
		}
		rc.url = fmt.Sprintf("%s?exchange=%s&routing_key=%d", base, exchange, i)
		wg.Go(func() {
			for d := range deliveries {
				h := http.Header{}
				for k, v := range d.Headers {
					if s, ok := v.(string); ok {
						h.Set(k, s)
					}
				}
				rc.accept(h, d.Body)
			}
		})
	}
	return closeSink, nil
}

// openKafkaSink gives each receiver a topic of its own on the Kafka
// cluster at addr (which must create topics on first use) and consumes
// them from the start. With no --broker-addr (no Kafka runs on this
// project's machines) it starts franz-go's kfake, an in-process
// Kafka-protocol cluster of three brokers holding the topics, one
// partition each, so the run measures Herald's side of the protocol, as
// loopback receivers do for HTTP.
func openKafkaSink(ctx context.Context, addr string, rs []*receiver) (func(), error) {
	id := strings.ToLower(herald.NewID("b"))
	topics := make([]string, len(rs))
	byTopic := make(map[string]*receiver, len(rs))
	for i, rc := range rs {
		topics[i] = fmt.Sprintf("herald-bench-%s-%d", id, i)
		byTopic[topics[i]] = rc
	}
	var cluster *kfake.Cluster
	seeds := []string{addr}
	if addr == "" {
		var err error
		if cluster, err = kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topics...)); err != nil {
			return nil, fmt.Errorf("start the in-process Kafka cluster: %w", err)
		}
		seeds = cluster.ListenAddrs()
	}
	stopCluster := func() {
		if cluster != nil {
			cluster.Close()
		}
	}
	for i, rc := range rs {
		rc.url = "kafka://" + strings.Join(seeds, ",") + "/" + topics[i]
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		stopCluster()
		return nil, fmt.Errorf("connect to Kafka at %s: %w", strings.Join(seeds, ","), err)
	}
	pollCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for pollCtx.Err() == nil {
			consumer.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) {
				rc := byTopic[r.Topic]
				if rc == nil {
					return
				}
				h := http.Header{}
				for _, kv := range r.Headers {
					h.Set(kv.Key, string(kv.Value))
				}
				rc.accept(h, r.Value)
			})
		}
	})
	return func() {
		cancel()
		wg.Wait()
		consumer.Close()
		stopCluster()
	}, nil
}
