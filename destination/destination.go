// Package destination delivers to message brokers (NATS JetStream,
// RabbitMQ, Kafka, Redis Streams) what the dispatcher would otherwise POST
// to an HTTP endpoint: the same body, the same Standard Webhooks headers as
// the broker's message headers, one acknowledged publish per attempt. An
// endpoint's URL scheme picks the broker; each broker keeps its connections
// pooled per target and dials only through Config.Dial, so the dispatcher's
// SSRF guard judges the address really dialled.
package destination

import (
	"context"
	"net"
	"net/url"
	"time"
)

// Publication is one delivery attempt to a broker.
type Publication struct {
	// Target is the endpoint's URL, credentials included (opened from
	// their sealed form by the store): never log or return it whole.
	Target *url.URL
	// MessageID is Herald's message ID: the broker's own message ID or
	// de-duplication header where it has one, and Kafka's record key.
	MessageID string
	Payload   []byte
	// ContentType is the payload's media type ("application/json" for
	// JSON payloads).
	ContentType string
	// Headers are what an HTTP receiver of the delivery gets as headers:
	// webhook-id, webhook-timestamp, webhook-signature, their svix-*
	// twins, the endpoint's own headers; lower-case names.
	Headers map[string]string
}

// Ack is what one publish produced.
type Ack struct {
	// Response is the broker's acknowledgement in words (stream and
	// sequence, partition and offset, entry ID …), recorded as the
	// attempt's response body; empty when Err is set.
	Response string
	Duration time.Duration
	// Err is nil when the broker acknowledged the publication. A broker
	// that accepted it but did not confirm before the context's deadline
	// gives an error that errors.Is context.DeadlineExceeded.
	Err error
}

// Publisher publishes to the targets of one broker kind, keeping a pool of
// connections per target (scheme, credentials, host and the parts that
// select a connection) and reusing them; a connection the broker dropped is
// redialled on the next publish.
type Publisher interface {
	Publish(ctx context.Context, p Publication) Ack
	// Close closes every pooled connection.
	Close() error
}

// Config is what every broker's publisher needs.
type Config struct {
	// Dial opens the TCP connections (netguard's dialer in herald serve,
	// so private and metadata addresses are refused as for HTTP); a plain
	// net.Dialer when nil.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Timeout bounds one publish, connecting included, when the caller's
	// context has no earlier deadline.
	Timeout time.Duration
}
