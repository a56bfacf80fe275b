package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/netguard"
	"github.com/herald-webhooks/herald/signature"
)

// drainLimit is how much of a response beyond MaxResponseBody the sender
// reads and discards so the connection can be reused; a larger response
// closes the connection instead.
const drainLimit = 256 << 10

// SenderConfig configures the HTTP sender.
type SenderConfig struct {
	// Timeout bounds one attempt: connect, send, and read the response.
	Timeout time.Duration
	// AllowPrivate turns off the SSRF guard (tests and on-premise use).
	AllowPrivate bool
	// UserAgent is sent with every delivery.
	UserAgent string
}

// Sender posts signed deliveries over one shared, pooled HTTP transport.
type Sender struct {
	client    *http.Client
	userAgent string
}

// NewSender returns a sender whose transport dials only addresses the
// netguard allows, follows no redirects and keeps connections alive.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	dialer := netguard.NewDialer(cfg.AllowPrivate, min(cfg.Timeout, 10*time.Second))
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the target from the SSRF guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		DisableCompression:    true,
	}
	return &Sender{
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is a failed attempt, never followed
			},
		},
		userAgent: cfg.UserAgent,
	}
}

// Close releases idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Request is one delivery attempt to send.
type Request struct {
	URL       string
	MessageID string
	Payload   []byte
	// ContentType is "" for JSON payloads.
	ContentType string
	// EventType is sent as Herald-Event-Type, for receivers that route on it.
	EventType string
	Headers   map[string]string
	// Keys are the endpoint's active signing secrets, current first, of
	// either kind: each signs ("v1" or "v1a") while it is active.
	Keys []signature.Key
	// Timestamp is the moment the attempt is signed; fresh on every try.
	Timestamp time.Time
}

// Result is what one attempt produced.
type Result struct {
	StatusCode int
	// Body is the start of the response body, at most MaxResponseBody.
	Body []byte
	// RetryAfter is the endpoint's Retry-After header, "" when absent.
	RetryAfter string
	Duration   time.Duration
	// Err is set when no HTTP response came back (timeout, refused, blocked).
	Err error
}

// Succeeded reports whether the endpoint accepted the delivery (any 2xx).
func (r Result) Succeeded() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Send makes one signed POST and reads at most MaxResponseBody of the
// answer. When ctx holds a valid span context, it goes out as the
// traceparent (and tracestate) header.
func (s *Sender) Send(ctx context.Context, req Request) Result {
	start := time.Now()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Payload))
	if err != nil {
		return Result{Err: fmt.Errorf("build request: %w", err)}
	}
	h := httpReq.Header
	for name, value := range req.Headers {
		if !herald.ReservedHeader(name) {
			h[textproto.CanonicalMIMEHeaderKey(name)] = []string{value}
		}
	}
	contentType := req.ContentType
	if contentType == "" {
		contentType = "application/json"
	}
	ts := strconv.FormatInt(req.Timestamp.Unix(), 10)
	signer, err := signature.NewKeySigner(req.Keys)
	if err != nil {
		return Result{Err: fmt.Errorf("sign: %w", err)}
	}
	sig := signer.Header(req.MessageID, req.Timestamp, req.Payload)
	h["Content-Type"] = []string{contentType}
	h["User-Agent"] = []string{s.userAgent}
	h["Webhook-Id"] = []string{req.MessageID}
	h["Webhook-Timestamp"] = []string{ts}
	h["Webhook-Signature"] = []string{sig}
	h["Svix-Id"] = []string{req.MessageID}
	h["Svix-Timestamp"] = []string{ts}
	h["Svix-Signature"] = []string{sig}
	if req.EventType != "" {
		h["Herald-Event-Type"] = []string{req.EventType}
	}
	// The attempt's span context (or the message's stored one) as the W3C
	// traceparent header: the receiver continues the sender's trace.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))

	resp, err := s.client.Do(httpReq)
	if err != nil {
		return Result{Err: describe(err), Duration: time.Since(start)}
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, herald.MaxResponseBody))
	// Drain a bounded remainder so the connection returns to the pool.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
	res := Result{
		StatusCode: resp.StatusCode,
		Body:       body,
		RetryAfter: resp.Header.Get("Retry-After"),
		Duration:   time.Since(start),
	}
	if readErr != nil && !res.Succeeded() {
		res.Err = describe(readErr)
	}
	return res
}

// describe turns transport errors into a short text for the attempt log.
func describe(err error) error {
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return blocked
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}
