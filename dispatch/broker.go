package dispatch

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/netguard"
)

// BrokerConfig is what the broker publishers need from the sender's
// settings: the same guard and timeout as HTTP.
func BrokerConfig(cfg SenderConfig) destination.Config {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	dialer := netguard.NewDialer(cfg.AllowPrivate, min(cfg.Timeout, 10*time.Second))
	return destination.Config{Dial: dialer.DialContext, Timeout: cfg.Timeout}
}

// destinationOf names the destination kind of an endpoint URL, for the
// attempt metrics: http, or the broker its scheme selects.
func destinationOf(rawURL string) string {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "http"
	}
	return destination.Kind(strings.ToLower(scheme))
}

// send makes one attempt: a POST through the Sender, or a publication
// through the broker publishers when the URL's scheme is a broker's. A
// broker's acknowledgement is the attempt's answer: status 200 with the
// acknowledgement in words as the response body; a failed or unconfirmed
// publication is status 0 with the error as its text, as an HTTP attempt
// that got no response is.
func (d *Dispatcher) send(ctx context.Context, req Request) Result {
	u, err := url.Parse(req.URL)
	if err != nil || !destination.IsBroker(u.Scheme) {
		return d.cfg.Sender.Send(ctx, req)
	}
	if d.cfg.Publishers == nil {
		return Result{Err: errors.New("broker destinations are not enabled on this node")}
	}
	headers, err := req.headers()
	if err != nil {
		return Result{Err: err}
	}
	// The attempt's span context as the traceparent header, as for HTTP.
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(headers))
	ack := d.cfg.Publishers.Publish(ctx, destination.Publication{
		Target:      u,
		MessageID:   req.MessageID,
		Payload:     req.Payload,
		ContentType: headers["content-type"],
		Headers:     headers,
	})
	if ack.Err != nil {
		return Result{Err: describeBroker(ack.Err), Duration: ack.Duration}
	}
	return Result{StatusCode: 200, Body: []byte(ack.Response), Duration: ack.Duration}
}

// describeBroker turns a publisher's error into an attemptError: a
// publication the broker did not confirm in time is a timeout, network
// failures read as HTTP's do, and the broker's own words keep no address.
func describeBroker(err error) error {
	var blocked *netguard.BlockedError
	switch {
	case errors.As(err, &blocked):
		return describe(err)
	case errors.Is(err, context.DeadlineExceeded):
		return &attemptError{text: "timed out: the broker did not confirm the publication within the request timeout", err: err}
	}
	text := describeText(err)
	text = strings.TrimPrefix(text, "request failed: ")
	text = strings.ReplaceAll(text, "the endpoint", "the broker")
	return &attemptError{text: "broker: " + text, err: err}
}
