package dispatch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/netguard"
	"github.com/herald-webhooks/herald/signature"
)

// MaxResponseHeaderBytes caps the response headers read from an endpoint
// (Go's default is 10 MB: 32 receivers answering with 10 MB headers took
// Herald from 43 MB to 408 MB). An endpoint that sends more fails the
// attempt.
const MaxResponseHeaderBytes = 64 << 10

// maxLocation caps the Location of a redirect an attempt records.
const maxLocation = 512

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
	transport.MaxResponseHeaderBytes = MaxResponseHeaderBytes // HTTP/2 too
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
	// Location is where a redirect (3xx) pointed, cut to 512 bytes and
	// quoted (control characters escaped); "" for other answers. Redirects
	// are never followed.
	Location string
	Duration time.Duration
	// Err is set when no HTTP response came back (timeout, refused, blocked).
	Err error
}

// Succeeded reports whether the endpoint accepted the delivery (any 2xx).
func (r Result) Succeeded() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// headers returns what a delivery carries besides the payload, by
// lower-case name: the endpoint's own headers (less the reserved ones),
// content-type, the Standard Webhooks headers webhook-id,
// webhook-timestamp and webhook-signature with their svix-* twins, and
// herald-event-type. An HTTP POST sends them as its headers, a broker
// publication as its message's: one signature, byte for byte.
func (req Request) headers() (map[string]string, error) {
	h := make(map[string]string, len(req.Headers)+8)
	for name, value := range req.Headers {
		if !herald.ReservedHeader(name) {
			h[strings.ToLower(name)] = value
		}
	}
	contentType := req.ContentType
	if contentType == "" {
		contentType = "application/json"
	}
	ts := strconv.FormatInt(req.Timestamp.Unix(), 10)
	signer, err := signature.NewKeySigner(req.Keys)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sig := signer.Header(req.MessageID, req.Timestamp, req.Payload)
	h["content-type"] = contentType
	h["webhook-id"] = req.MessageID
	h["webhook-timestamp"] = ts
	h["webhook-signature"] = sig
	h["svix-id"] = req.MessageID
	h["svix-timestamp"] = ts
	h["svix-signature"] = sig
	if req.EventType != "" {
		h["herald-event-type"] = req.EventType
	}
	return h, nil
}

// Send makes one signed POST and reads at most MaxResponseBody of the
// answer. When ctx holds a valid span context, it goes out as the
// traceparent (and tracestate) header.
func (s *Sender) Send(ctx context.Context, req Request) Result {
	start := time.Now()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Payload))
	if err != nil {
		return Result{Err: fmt.Errorf("build request: %w", err)}
	}
	headers, err := req.headers()
	if err != nil {
		return Result{Err: err}
	}
	h := httpReq.Header
	for name, value := range headers {
		h[textproto.CanonicalMIMEHeaderKey(name)] = []string{value}
	}
	h["User-Agent"] = []string{s.userAgent}
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
	if resp.StatusCode/100 == 3 {
		res.Location = quoteLocation(resp.Header.Get("Location"))
	}
	if readErr != nil && !res.Succeeded() {
		res.Err = describe(readErr)
	}
	return res
}

// quoteLocation returns a redirect's Location for the attempt log: cut to
// maxLocation bytes on a character boundary and quoted, so a hostile
// endpoint can put neither control characters nor megabytes in it.
func quoteLocation(loc string) string {
	if loc == "" {
		return `""`
	}
	cut := false
	if len(loc) > maxLocation {
		i := maxLocation
		for i > 0 && !utf8.RuneStart(loc[i]) {
			i--
		}
		loc, cut = loc[:i], true
	}
	q := strconv.Quote(loc)
	if cut {
		q += "…"
	}
	return q
}

// attemptError is a failed attempt's error as the attempt log shows it:
// what happened, in words. It leaves out the URL (the attempt has it), the
// addresses the endpoint's host resolved to and the address of Herald's DNS
// resolver: attempts are read by endpoint owners, in the app portal too,
// and those would map the network Herald runs in. Unwrap gives the
// transport's own error, for errors.As and the operator's spans.
type attemptError struct {
	text string
	err  error
}

func (e *attemptError) Error() string { return e.text }
func (e *attemptError) Unwrap() error { return e.err }

// describe turns a transport error into an attemptError.
func describe(err error) error {
	return &attemptError{text: describeText(err), err: err}
}

func describeText(err error) string {
	var (
		blocked  *netguard.BlockedError
		dnsErr   *net.DNSError
		netErr   net.Error
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "DNS lookup failed: no such host"
		case dnsErr.IsTimeout:
			return "DNS lookup failed: timed out"
		}
		return "DNS lookup failed: the resolver gave no answer"
	case strings.Contains(err.Error(), "server response headers exceeded"),
		strings.Contains(err.Error(), "response header list larger than"):
		// net/http has no error value for it (HTTP/1 and HTTP/2), only
		// these texts.
		return fmt.Sprintf("response headers larger than %d KiB: answer refused", MaxResponseHeaderBytes>>10)
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out: no complete answer within the request timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the endpoint"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &unknown):
		return "TLS: the certificate is signed by an unknown authority"
	case errors.As(err, &hostname):
		return "TLS: the certificate is not valid for the URL's host"
	case errors.As(err, &invalid):
		return "TLS: invalid certificate: " + certProblem(invalid.Reason)
	case errors.As(err, &record):
		return "TLS handshake failed: the endpoint did not answer in TLS"
	case errors.As(err, &alert):
		return "TLS handshake failed: the endpoint sent alert " + alert.Error()
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint before a complete answer"
	case strings.Contains(err.Error(), "malformed"):
		// net/http quotes the offending line, up to the header limit.
		return "the endpoint's answer is not valid HTTP (malformed status or header line)"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	text := scrubAddresses(err.Error())
	if len(text) > maxErrorText {
		i := maxErrorText
		for i > 0 && !utf8.RuneStart(text[i]) {
			i--
		}
		text = text[:i] + "…"
	}
	return "request failed: " + text
}

// maxErrorText caps the transport's words in an attempt's text.
const maxErrorText = 300

// certProblem names an x509 invalid-certificate reason.
func certProblem(r x509.InvalidReason) string {
	switch r {
	case x509.Expired:
		return "expired or not yet valid"
	case x509.NotAuthorizedToSign:
		return "signed by a certificate that may not sign"
	case x509.IncompatibleUsage:
		return "not valid for server authentication"
	}
	return "rejected by verification"
}

// scrubAddresses replaces every IP address (with or without a port) in an
// error text nothing above recognised, so no resolved or internal address
// reaches the attempt log.
func scrubAddresses(s string) string {
	words := strings.Fields(strings.ReplaceAll(s, "->", " -> "))
	for i, w := range words {
		core := strings.TrimRight(strings.TrimLeft(w, `"'(`), `"'),;:`)
		_, addrErr := netip.ParseAddr(strings.Trim(core, "[]"))
		_, portErr := netip.ParseAddrPort(core)
		if core != "" && (addrErr == nil || portErr == nil) {
			words[i] = strings.Replace(w, core, "[address]", 1)
		}
	}
	return strings.Join(words, " ")
}
