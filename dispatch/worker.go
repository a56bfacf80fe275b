package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/netguard"
	"github.com/herald-webhooks/herald/signature"
	"github.com/herald-webhooks/herald/telemetry"
)

// leaseMargin is the lease a delivery must have left, beyond one request
// timeout, for a worker to start sending it; with less, another node may
// take it over mid-send, so it is released instead.
const leaseMargin = 5 * time.Second

// maxRecordBatch is the most outcomes written in one transaction.
const maxRecordBatch = 512

// recordLinger is how long the recorder waits for more outcomes before it
// writes a batch smaller than maxRecordBatch. Each batch costs a
// transaction, and on SQLite every transaction rewrites one page of each
// per-endpoint index for every endpoint it touches: one to one across 16
// endpoints, batches taken as they came held 19 outcomes on average, 85
// with the wait: 6 % more messages/s for 3.5 % less CPU per message
// (BENCHMARKS.md). A FIFO endpoint's next delivery waits for the write,
// so the recorder does not wait while one does. Otherwise an outcome
// written later shows in the API as much later (a resend is refused as
// long as the delivery is still sending), and widens by as much the window
// in which a crash sends its delivery again.
const recordLinger = 10 * time.Millisecond

// A worker whose delivery needs a row the store cannot read now (the
// database is away: an outage, a failover, a partition) waits for it,
// storeRetryMin at first, doubling up to storeRetryMax, instead of
// releasing the delivery: the release would fail too, and the delivery
// would stay leased to this node for its whole lease (90 s by default)
// although the database may be back in seconds. Waiting also sends
// nothing whose outcome could not be recorded.
const (
	storeRetryMin = 100 * time.Millisecond
	storeRetryMax = time.Second
)

// awaitStore sleeps the next wait before another read of the store. It
// reports false, and the worker gives the delivery up, when the lease no
// longer leaves room for a send, the dispatcher is stopping, or the node
// was taken over.
func (d *Dispatcher) awaitStore(ctx context.Context, dl *herald.Delivery, wait *time.Duration) bool {
	*wait = min(max(2**wait, storeRetryMin), storeRetryMax)
	sleep(ctx, *wait)
	if ctx.Err() != nil || d.sched.isClosed() || d.live.isGone() {
		return false
	}
	return dl.LeaseExpiresAt.Sub(d.cfg.Now()) >= d.cfg.RequestTimeout+leaseMargin
}

// work takes jobs from the scheduler until it closes.
func (d *Dispatcher) work(ctx context.Context) {
	for {
		j, ok := d.sched.next()
		if !ok {
			return
		}
		start := time.Now()
		d.deliver(ctx, j.claim)
		d.sched.done(j, time.Since(start))
		// Running low: claim more now rather than at the next poll, so a
		// backlog stored pending drains at the workers' pace.
		if d.sched.len() < d.cfg.Workers {
			d.Notify()
		}
	}
}

// deliver makes one attempt of a claimed delivery and queues its outcome.
func (d *Dispatcher) deliver(ctx context.Context, c herald.Claim) {
	dl := c.Delivery
	now := d.cfg.Now()
	if dl.LeaseExpiresAt.Sub(now) < d.cfg.RequestTimeout+leaseMargin {
		// Too little lease left for one request, or none: give it back.
		// The release names this claim, so if the lease expired and the
		// delivery was rescued and claimed again, the new claim stays.
		d.release([]herald.Claim{c})
		return
	}
	ep, err := d.endpoint(ctx, dl.AppID, dl.EndpointID)
	var wait time.Duration
	for herald.ErrorCode(err) == herald.EUNAVAILABLE && d.awaitStore(ctx, dl, &wait) {
		ep, err = d.endpoint(ctx, dl.AppID, dl.EndpointID)
	}
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return // the endpoint was deleted, and its deliveries with it
	} else if err != nil {
		d.logDelivery(ctx, slog.LevelWarn, "load endpoint; delivery released", dl, slog.Any("err", err))
		d.release([]herald.Claim{c})
		return
	}
	if ep.Disabled {
		// Failed, not canceled: once the endpoint is enabled again,
		// recover queues it again like the deliveries the store failed
		// when it disabled the endpoint.
		d.cfg.Metrics.DeliveryOutcome(telemetry.OutcomeCanceled, dl.AppID)
		if ep.Ordering == herald.OrderingFIFO {
			d.fifo.add(dl.ID)
		}
		d.outcomes <- herald.AttemptOutcome{DeliveryID: dl.ID, LeaseOwner: d.cfg.Owner, LeaseUntil: dl.LeaseExpiresAt, Status: herald.DeliveryFailed}
		return
	}
	if wait > 0 {
		now = d.cfg.Now()
	}
	delay, ok, err := d.rateWait(ctx, ep, now)
	for herald.ErrorCode(err) == herald.EUNAVAILABLE && d.awaitStore(ctx, dl, &wait) {
		now = d.cfg.Now()
		delay, ok, err = d.rateWait(ctx, ep, now)
	}
	if err != nil {
		d.logDelivery(ctx, slog.LevelWarn, "load application; delivery released", dl, slog.Any("err", err))
		d.release([]herald.Claim{c})
		return
	} else if !ok {
		d.cfg.Metrics.DeliveryDeferred(telemetry.DeferRateLimited)
		d.deferTo(c, now.Add(delay))
		return
	} else if delay > 0 {
		sleep(ctx, delay)
		if ctx.Err() != nil { // cut at the shutdown deadline
			d.release([]herald.Claim{c})
			return
		}
		now = d.cfg.Now()
	}
	if !d.live.await(ctx) {
		// Taken over: the delivery is another node's now, leave it. Or
		// cut at the shutdown deadline while waiting for a heartbeat.
		if !d.live.isGone() {
			d.release([]herald.Claim{c})
		}
		return
	}
	// The breaker comes last: a probe it lets through is always sent.
	ok, until, probe := d.breakers.allow(ep.ID)
	if !ok {
		d.cfg.Metrics.DeliveryDeferred(telemetry.DeferCircuitOpen)
		d.deferTo(c, until)
		return
	}
	secrets := ep.ActiveSecrets(now)
	keys := make([]signature.Key, len(secrets))
	for i, s := range secrets {
		if s.Type == herald.SecretEd25519 {
			keys[i] = signature.Key{Private: s.Key}
		} else {
			keys[i] = signature.Key{Secret: s.Key}
		}
	}
	payload, contentType := c.Message.Payload, c.Message.ContentType
	if payload == nil {
		// The content was expunged after the message was accepted: {} goes
		// out as JSON, whatever the raw payload it replaces was.
		payload, contentType = []byte("{}"), ""
	}
	if dl.Attempts == 0 && dl.Trigger == herald.TriggerScheduled {
		d.cfg.Metrics.DispatchLag(now.Sub(c.Message.CreatedAt))
	}
	ctx, span := d.startAttempt(ctx, c, ep)
	d.cfg.Metrics.AttemptStarted()
	res := d.send(ctx, Request{
		URL:         ep.URL,
		MessageID:   c.Message.ID,
		Payload:     payload,
		ContentType: contentType,
		EventType:   c.Message.EventType,
		Headers:     ep.Headers,
		Keys:        keys,
		Timestamp:   now,
	})
	if ctx.Err() != nil {
		// Cut at the shutdown deadline: not the endpoint's failure. Return
		// it to the queue; if even that fails, its lease expires.
		d.cfg.Metrics.AttemptCut()
		span.End()
		d.release([]herald.Claim{c})
		return
	}
	d.cfg.Metrics.AttemptFinished(destinationOf(ep.URL), res.StatusCode, res.Duration)
	d.adapt(ep.ID, res)
	out := d.outcome(c, ep, res, now)
	d.countOutcome(c, out)
	endAttempt(span, res, out)
	if d.breakers.record(ep.ID, d.breakers.classify(res), probe) {
		d.logDelivery(ctx, slog.LevelWarn, "circuit breaker opened: deferring the endpoint's deliveries", dl)
		for _, queued := range d.sched.take(ep.ID) {
			_, until, _ := d.breakers.allow(ep.ID)
			d.deferTo(queued, until)
		}
	}
	if d.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{slog.Int("status_code", res.StatusCode),
			slog.String("outcome", string(out.Status)), slog.Duration("duration", res.Duration)}
		if res.Err != nil {
			// The transport's own words, addresses included: this log is
			// the operator's, unlike the attempt's text.
			text := spanError(res.Err)
			if len(text) > maxErrorText {
				text = strings.ToValidUTF8(text[:maxErrorText], "") + "…"
			}
			attrs = append(attrs, slog.String("error", text))
		}
		d.logDelivery(ctx, slog.LevelDebug, "attempt", dl, attrs...)
	}
	if ep.Ordering == herald.OrderingFIFO {
		d.fifo.add(dl.ID)
	}
	d.outcomes <- out
}

// adapt adjusts the endpoint's concurrency to an attempt's result: a
// timeout or a connection failure halves it, a success raises it by one,
// an HTTP error answer leaves it (see adaptive). An address the guard
// refused says nothing about the endpoint's capacity.
func (d *Dispatcher) adapt(endpointID string, res Result) {
	var blocked *netguard.BlockedError
	switch {
	case res.Succeeded():
		d.adaptive.grow(endpointID)
	case res.Err != nil && res.StatusCode == 0 && !errors.As(res.Err, &blocked):
		d.adaptive.cut(endpointID)
	}
}

// logDelivery logs one line about a delivery, with the fields every
// dispatch line about one carries: app_id, msg_id, endpoint_id and attempt
// (the number of the attempt being made).
func (d *Dispatcher) logDelivery(ctx context.Context, level slog.Level, msg string, dl *herald.Delivery, attrs ...slog.Attr) {
	all := make([]slog.Attr, 0, 4+len(attrs))
	all = append(all, slog.String("app_id", dl.AppID), slog.String("msg_id", dl.MessageID),
		slog.String("endpoint_id", dl.EndpointID), slog.Int("attempt", dl.Attempts+1))
	d.log.LogAttrs(ctx, level, msg, append(all, attrs...)...)
}

// traceParent carries a message's stored traceparent to the propagator.
type traceParent string

func (t traceParent) Get(key string) string {
	if key == "traceparent" {
		return string(t)
	}
	return ""
}
func (traceParent) Set(string, string) {}
func (traceParent) Keys() []string     { return []string{"traceparent"} }

// startAttempt starts the span of one attempt: a client span, child of the
// span that created the message when it had a traceparent. The sender
// sends the span's own context as the traceparent header, so the receiver
// continues the sender's trace; with tracing off, the stored traceparent
// itself is sent on.
func (d *Dispatcher) startAttempt(ctx context.Context, c herald.Claim, ep *herald.Endpoint) (context.Context, trace.Span) {
	if tp := c.Message.TraceParent; tp != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, traceParent(tp))
	}
	ctx, span := d.cfg.Tracer.Start(ctx, "herald.delivery.attempt", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		dl := c.Delivery
		attrs := []attribute.KeyValue{
			attribute.String("herald.app_id", dl.AppID),
			attribute.String("herald.msg_id", dl.MessageID),
			attribute.String("herald.endpoint_id", dl.EndpointID),
			attribute.String("herald.delivery_id", dl.ID),
			attribute.Int("herald.attempt", dl.Attempts+1),
		}
		if kind := destinationOf(ep.URL); kind != "http" {
			attrs = append(attrs, attribute.String("messaging.system", kind))
		} else {
			attrs = append(attrs, attribute.String("http.request.method", http.MethodPost))
		}
		// Only the host: a URL's path or query may hold a customer's token.
		if u, err := url.Parse(ep.URL); err == nil {
			attrs = append(attrs, attribute.String("server.address", u.Hostname()))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endAttempt records an attempt's answer on its span and ends it.
func endAttempt(span trace.Span, res Result, out herald.AttemptOutcome) {
	if span.IsRecording() {
		if res.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
		}
		span.SetAttributes(attribute.String("herald.outcome", string(out.Status)))
		if !res.Succeeded() {
			desc := "endpoint answered " + http.StatusText(res.StatusCode)
			if res.Err != nil {
				desc = spanError(res.Err)
			}
			span.SetStatus(codes.Error, desc)
		}
	}
	span.End()
}

// spanError is err's text for an attempt span, with the endpoint URL that
// net/http quotes in its errors cut to the host, as the span's attributes
// are: a URL's path or query may hold a customer's token, and spans leave
// for a collector.
func spanError(err error) string {
	text := err.Error()
	var ue *url.Error
	if !errors.As(err, &ue) {
		return text
	}
	host := ""
	if u, perr := url.Parse(ue.URL); perr == nil {
		host = u.Host
	}
	if quoted := strconv.Quote(ue.URL); strings.Contains(text, quoted) {
		return strings.ReplaceAll(text, quoted, strconv.Quote(host))
	}
	return ue.Op + " " + strconv.Quote(host) + ": " + ue.Err.Error()
}

// countOutcome counts an attempt's outcome and, for a scheduled delivery
// that succeeded, its latency from the message's commit.
func (d *Dispatcher) countOutcome(c herald.Claim, out herald.AttemptOutcome) {
	switch out.Status {
	case herald.DeliverySucceeded:
		d.cfg.Metrics.DeliveryOutcome(telemetry.OutcomeSucceeded, c.Delivery.AppID)
		if c.Delivery.Trigger == herald.TriggerScheduled {
			d.cfg.Metrics.DeliveryLatency(d.cfg.Now().Sub(c.Message.CreatedAt))
		}
	case herald.DeliveryPending:
		d.cfg.Metrics.DeliveryOutcome(telemetry.OutcomeRetrying, c.Delivery.AppID)
	case herald.DeliveryFailed:
		d.cfg.Metrics.DeliveryOutcome(telemetry.OutcomeExhausted, c.Delivery.AppID)
	}
}

// deferTo returns a delivery to pending, due at until, without an attempt:
// its endpoint's circuit breaker is open. The recorder batches these with
// the outcomes.
func (d *Dispatcher) deferTo(c herald.Claim, until time.Time) {
	d.outcomes <- herald.AttemptOutcome{
		DeliveryID: c.Delivery.ID, LeaseOwner: d.cfg.Owner, LeaseUntil: c.Delivery.LeaseExpiresAt,
		Status: herald.DeliveryPending, NextAttemptAt: until,
	}
}

// outcome turns one attempt's result into the delivery's next state.
func (d *Dispatcher) outcome(c herald.Claim, ep *herald.Endpoint, res Result, started time.Time) herald.AttemptOutcome {
	dl := c.Delivery
	a := &herald.Attempt{
		ID:             herald.NewID(herald.PrefixAttempt),
		DeliveryID:     dl.ID,
		AppID:          dl.AppID,
		MessageID:      dl.MessageID,
		EndpointID:     dl.EndpointID,
		URL:            destination.Redact(ep.URL),
		ResponseStatus: res.StatusCode,
		Response:       res.Body,
		Duration:       res.Duration,
		Trigger:        dl.Trigger,
		CreatedAt:      started,
	}
	var blocked *netguard.BlockedError
	permanent := errors.As(res.Err, &blocked) && blocked.Permanent()
	switch {
	case permanent:
		a.Error = res.Err.Error() + ": the delivery is not retried"
	case res.Err != nil:
		a.Error = res.Err.Error()
	case res.Location != "":
		a.Error = "redirected to " + res.Location + ": redirects are not followed"
	}
	out := herald.AttemptOutcome{Attempt: a, DeliveryID: dl.ID, LeaseOwner: d.cfg.Owner, LeaseUntil: dl.LeaseExpiresAt}
	if !res.Succeeded() && ep.AppID != herald.OperationalAppID {
		out.DisableAfter = d.cfg.DisableAfter
	}
	switch {
	case res.Succeeded():
		a.Status = herald.AttemptSucceeded
		out.Status = herald.DeliverySucceeded
	case res.StatusCode == http.StatusGone:
		a.Status = herald.AttemptFailed
		out.Status = herald.DeliveryFailed
		out.DisableEndpoint = true
	case permanent:
		// A cloud metadata address is never allowed: retrying through the
		// schedule would only repeat the refusal. Other refused addresses
		// are retried, as any failure is: a host name is a DNS change away
		// from a public address, and the operator may allow private ones.
		a.Status = herald.AttemptFailed
		out.Status = herald.DeliveryFailed
	default:
		a.Status = herald.AttemptFailed
		delay, ok := d.cfg.Policy.Next(dl.Attempts + 1)
		if !ok {
			out.Status = herald.DeliveryFailed
			break
		}
		switch res.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if ra, ok := backoff.ParseRetryAfter(res.RetryAfter, started); ok {
				delay = backoff.CapRetryAfter(ra, delay)
			}
		}
		out.Status = herald.DeliveryPending
		out.NextAttemptAt = started.Add(delay)
	}
	return out
}

// endpoint returns the endpoint, from a short-lived cache.
func (d *Dispatcher) endpoint(ctx context.Context, appID, id string) (*herald.Endpoint, error) {
	return d.endpoints.Get(id, func() (*herald.Endpoint, error) { return d.cfg.Store.GetEndpoint(ctx, appID, id) })
}

// rateWait applies the application's and the endpoint's rate limits: it
// returns how long to wait before sending, or ok false when the delivery
// should rather be deferred by delay.
func (d *Dispatcher) rateWait(ctx context.Context, ep *herald.Endpoint, now time.Time) (delay time.Duration, ok bool, err error) {
	app, err := d.apps.Get(ep.AppID, func() (*herald.Application, error) { return d.cfg.Store.GetApplication(ctx, ep.AppID) })
	if err != nil {
		return 0, false, err
	}
	if app.RateLimit == nil && ep.RateLimit == nil {
		return 0, true, nil
	}
	delay, ok = d.limits.wait(ctx, now, []string{app.ID, ep.ID}, []*uint16{app.RateLimit, ep.RateLimit})
	return delay, ok, nil
}

// record writes outcomes in batches: from the first outcome it collects
// every outcome that arrives within recordLinger (or until a FIFO endpoint
// waits for one, or the batch is full) and writes them in one transaction.
func (d *Dispatcher) record() {
	batch := make([]herald.AttemptOutcome, 0, maxRecordBatch)
	linger := time.NewTimer(d.linger)
	linger.Stop()
	for o := range d.outcomes {
		batch = append(batch[:0], o)
		linger.Reset(d.linger)
	collect:
		for len(batch) < maxRecordBatch && d.fifo.n.Load() == 0 {
			select {
			case o, ok := <-d.outcomes:
				if !ok {
					break collect
				}
				batch = append(batch, o)
			case <-linger.C:
				break collect
			}
		}
		linger.Stop()
		// Whatever is queued already joins the batch.
	drain:
		for len(batch) < maxRecordBatch {
			select {
			case o, ok := <-d.outcomes:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		d.write(batch)
	}
}

// write stores a batch of outcomes, retrying. While the database is away
// (an outage, a failover) it keeps retrying as long as one of the batch's
// leases holds and the dispatcher runs: the deliveries were sent, and
// recording them when the database is back spares the receivers a second
// copy when the leases expire. Otherwise, after a few tries, the outcomes
// are dropped: the deliveries keep their leases, which expire, and they
// are sent again (at least once, never lost).
func (d *Dispatcher) write(batch []herald.AttemptOutcome) {
	if d.live.isGone() {
		// Taken over: these deliveries are other nodes' now. (The store
		// would skip them anyway: their leases are gone.)
		return
	}
	defer func() {
		// A FIFO endpoint's next delivery is claimable now.
		if d.fifo.written(batch) {
			d.NotifyQueued()
		}
	}()
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := d.cfg.Store.RecordAttempts(ctx, batch)
		cancel()
		if err == nil {
			if try > 5 {
				d.log.Info("recorded attempts after the database came back", "count", len(batch), "tries", try)
			}
			return
		}
		if try >= 5 && !d.keepRecording(batch, err) {
			d.log.Error("record attempts failed; these deliveries will be retried when their lease expires", "count", len(batch), "err", err)
			return
		}
		if try <= 5 {
			d.log.Warn("record attempts", "count", len(batch), "try", try, "err", err)
		}
		time.Sleep(min(time.Duration(try)*200*time.Millisecond, storeRetryMax))
	}
}

// keepRecording reports whether a batch whose write failed with err is
// worth another try: the database is unavailable (not refusing the
// batch), the dispatcher runs, the node was not taken over, and one of the
// batch's leases has not expired.
func (d *Dispatcher) keepRecording(batch []herald.AttemptOutcome, err error) bool {
	if herald.ErrorCode(err) != herald.EUNAVAILABLE || d.sched.isClosed() || d.live.isGone() {
		return false
	}
	now := d.cfg.Now()
	for _, o := range batch {
		if o.LeaseUntil.After(now) {
			return true
		}
	}
	return false
}
