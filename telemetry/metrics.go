// Package telemetry is Herald's observability: Prometheus metrics on an
// injected registry, OpenTelemetry tracing configured from the standard
// OTEL_* environment variables, the structured logger, readiness checks and
// the profiling handler. It imports only the domain package, so every other
// package may report through it.
package telemetry

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric Herald defines.
const Namespace = "herald"

// NewRegistry returns a registry with the Go runtime and process collectors
// and herald_build_info for version. Each node (and each test) makes its
// own: nothing is registered globally.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   Namespace,
			Name:        "build_info",
			Help:        "Always 1; the labels say which Herald build and Go version run.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// Outcome is what became of one delivery attempt (or of a delivery that was
// canceled without one).
type Outcome int

// Delivery outcomes, as the outcome label names them.
const (
	OutcomeSucceeded Outcome = iota // the endpoint answered 2xx
	OutcomeRetrying                 // the attempt failed and another is scheduled
	OutcomeExhausted                // the attempt failed and no try is left (or 410 Gone)
	OutcomeCanceled                 // the endpoint is disabled: ended without an attempt (stored failed, so recover can requeue it)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"succeeded", "retrying", "exhausted", "canceled"}

func (o Outcome) String() string { return outcomeNames[o] }

// DeferReason says why a claimed delivery went back to the queue without an
// attempt.
type DeferReason int

// Deferral reasons, as the reason label names them.
const (
	DeferCircuitOpen DeferReason = iota // the endpoint's circuit breaker is open
	DeferRateLimited                    // the application's or endpoint's rate limit
	numDeferReasons
)

var deferNames = [numDeferReasons]string{"circuit_open", "rate_limited"}

// responseClasses label endpoint answers: 1xx to 5xx, and "error" when no
// HTTP response came back (timeout, refused, blocked address).
var responseClasses = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Destinations are the values of the attempt metrics' "destination" label:
// an HTTP endpoint, or the broker an endpoint's URL scheme selects. Fixed,
// so the label's cardinality is.
var Destinations = [...]string{"http", "nats", "redis", "amqp", "kafka"}

// destinationIndex is d's index in Destinations, 0 (http) when unknown.
func destinationIndex(d string) int {
	for i, name := range Destinations {
		if name == d {
			return i
		}
	}
	return 0
}

// MetricsOptions configure NewMetrics.
type MetricsOptions struct {
	// AppLabel adds an app_id label to herald_deliveries_total. Off by
	// default: one series per application can be many series.
	AppLabel bool
}

// Metrics are Herald's own metrics. Every method is safe for concurrent
// use and cheap enough for the delivery hot path: label children with a
// fixed set of values are resolved once, here.
type Metrics struct {
	appLabel bool

	messagesIngested prometheus.Counter
	batchSize        prometheus.Histogram

	deliveries      *prometheus.CounterVec
	outcomes        [numOutcomes]prometheus.Counter
	deferred        [numDeferReasons]prometheus.Counter
	attemptDuration [len(Destinations)]prometheus.Observer
	responses       [len(Destinations)][len(responseClasses)]prometheus.Counter
	dispatchLag     prometheus.Histogram
	deliveryLatency prometheus.Histogram
	inFlight        prometheus.Gauge
	openBreakers    atomic.Pointer[func() int]

	pending           prometheus.Gauge
	sending           prometheus.Gauge
	oldestDueAge      prometheus.Gauge
	disabledEndpoints prometheus.Gauge
	queueStatsTime    prometheus.Gauge
	ready             prometheus.Gauge
	readyChecks       *prometheus.GaugeVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge

	storeOps [numStoreOps]storeOpMetrics

	apiLimited [numAPILimits]prometheus.Counter
}

// storeOpMetrics are the resolved children of one store operation.
type storeOpMetrics struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// Latency buckets, in seconds.
var (
	// attemptBuckets cover an endpoint's answer: a few ms up to the
	// longest request timeout.
	attemptBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60}
	// lagBuckets cover a queue: a millisecond when idle, hours when far
	// behind.
	lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
	// latencyBuckets cover commit to success, retries included: the
	// default schedule's last retry comes more than a day after the first.
	latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 7200, 21600, 86400, 172800}
	// storeBuckets cover one database call, a commit's fsync included.
	storeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// apiBuckets cover one API request.
	apiBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// NewMetrics creates Herald's metrics and registers them on reg. It panics
// if reg already holds them, as prometheus.MustRegister does: each node
// gets a registry of its own.
func NewMetrics(reg prometheus.Registerer, opts MetricsOptions) *Metrics {
	m := &Metrics{appLabel: opts.AppLabel}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	}

	m.messagesIngested = counter("messages_ingested_total", "Messages committed by this node's API, with their deliveries.")
	m.batchSize = histogram("ingest_batch_size", "Messages per group commit.", prometheus.ExponentialBuckets(1, 2, 10))

	deliveryLabels := []string{"outcome"}
	if opts.AppLabel {
		deliveryLabels = append(deliveryLabels, "app_id")
	}
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "deliveries_total",
		Help: "Delivery attempts by outcome: succeeded, retrying (failed, another try scheduled), exhausted (failed for good), and canceled (its endpoint was disabled when its turn came; no request).",
	}, deliveryLabels)
	if !opts.AppLabel {
		for o := range numOutcomes {
			m.outcomes[o] = m.deliveries.WithLabelValues(o.String())
		}
	}
	deferred := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "deliveries_deferred_total",
		Help: "Claimed deliveries put back without an attempt, by reason: circuit_open or rate_limited.",
	}, []string{"reason"})
	for r := range numDeferReasons {
		m.deferred[r] = deferred.WithLabelValues(deferNames[r])
	}
	attemptDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "delivery_attempt_duration_seconds",
		Help:    "Duration of one delivery attempt: connect, send, and read the answer (or the broker's acknowledgement), by destination: http, nats, redis, amqp, kafka.",
		Buckets: attemptBuckets,
	}, []string{"destination"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "delivery_responses_total",
		Help: "Endpoint answers by HTTP status class (1xx to 5xx), or error when none came back, by destination (a broker's acknowledgement counts as 2xx).",
	}, []string{"destination", "class"})
	for d, dest := range Destinations {
		m.attemptDuration[d] = attemptDuration.WithLabelValues(dest)
		for i, class := range responseClasses {
			m.responses[d][i] = responses.WithLabelValues(dest, class)
		}
	}
	m.dispatchLag = histogram("dispatch_lag_seconds", "Time from a message's acceptance (its timestamp, taken as it joins a group commit) to the first attempt of each of its deliveries.", lagBuckets)
	m.deliveryLatency = histogram("delivery_latency_seconds", "Time from a message's acceptance to a successful delivery, retries included.", latencyBuckets)
	m.inFlight = gauge("deliveries_in_flight", "Delivery attempts being sent by this node now.")
	openBreakers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "circuit_breakers_open",
		Help: "Endpoints whose circuit breaker is open or half-open on this node.",
	}, func() float64 {
		if f := m.openBreakers.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})

	m.pending = gauge("deliveries_pending", "Deliveries waiting for an attempt, due or scheduled, across all nodes (refreshed every few seconds).")
	m.sending = gauge("deliveries_sending", "Deliveries leased to a node for sending, across all nodes (refreshed every few seconds).")
	m.oldestDueAge = gauge("oldest_due_delivery_age_seconds", "How long the pending delivery due longest ago has been due; 0 when none is due (refreshed every few seconds).")
	m.disabledEndpoints = gauge("endpoints_disabled", "Endpoints that are disabled (refreshed every few seconds).")
	m.queueStatsTime = gauge("queue_stats_timestamp_seconds", "Unix time of the last successful refresh of the queue gauges.")
	m.ready = gauge("ready", "1 while every readiness check passes (as /readyz), 0 otherwise; refreshed every few seconds.")
	m.readyChecks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "ready_check",
		Help: "1 while the named readiness check passes, 0 while it fails.",
	}, []string{"check"})

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "API requests by route pattern (method and path, as registered) and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help: "API request duration by route pattern and status code.", Buckets: apiBuckets,
	}, []string{"route", "code"})
	m.httpInFlight = gauge("http_requests_in_flight", "API requests being served now.")

	storeDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "store_operation_duration_seconds",
		Help: "Duration of database operations by Store method.", Buckets: storeBuckets,
	}, []string{"operation"})
	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "store_errors_total",
		Help: "Database operations that failed (unreachable, timed out, internal), by Store method; not-found and conflict answers are not errors.",
	}, []string{"operation"})
	for op := range numStoreOps {
		name := storeOpLabels[op]
		m.storeOps[op] = storeOpMetrics{duration: storeDuration.WithLabelValues(name), errors: storeErrors.WithLabelValues(name)}
	}

	reg.MustRegister(
		m.messagesIngested, m.batchSize,
		m.deliveries, deferred, attemptDuration, responses, m.dispatchLag, m.deliveryLatency, m.inFlight, openBreakers,
		m.pending, m.sending, m.oldestDueAge, m.disabledEndpoints, m.queueStatsTime, m.ready, m.readyChecks,
		m.httpRequests, m.httpDuration, m.httpInFlight,
		storeDuration, storeErrors,
	)
	m.apiLimited = newAPILimited(reg)
	return m
}

// Discard returns metrics registered nowhere, for components built without
// a registry (tests, tools).
func Discard() *Metrics { return NewMetrics(prometheus.NewRegistry(), MetricsOptions{}) }

// MessagesCommitted counts one group commit of batch messages, of which
// stored were committed (the others failed alone: unknown application,
// taken eventId).
func (m *Metrics) MessagesCommitted(batch, stored int) {
	m.batchSize.Observe(float64(batch))
	m.messagesIngested.Add(float64(stored))
}

// DeliveryOutcome counts one delivery outcome of application appID.
func (m *Metrics) DeliveryOutcome(o Outcome, appID string) {
	if m.appLabel {
		m.deliveries.WithLabelValues(o.String(), appID).Inc()
		return
	}
	m.outcomes[o].Inc()
}

// DeliveryDeferred counts one delivery put back without an attempt.
func (m *Metrics) DeliveryDeferred(r DeferReason) { m.deferred[r].Inc() }

// AttemptStarted marks an attempt in flight; call AttemptFinished after it.
func (m *Metrics) AttemptStarted() { m.inFlight.Inc() }

// AttemptFinished records one attempt's duration and answer to a
// destination (one of Destinations): statusCode 0 means no HTTP response
// or broker acknowledgement came back.
func (m *Metrics) AttemptFinished(destination string, statusCode int, d time.Duration) {
	m.inFlight.Dec()
	di := destinationIndex(destination)
	m.attemptDuration[di].Observe(d.Seconds())
	class := 0
	if c := statusCode / 100; c >= 1 && c <= 5 {
		class = c
	}
	m.responses[di][class].Inc()
}

// DispatchLag records the time from a message's acceptance (its
// CreatedAt) to the first attempt of one of its deliveries.
func (m *Metrics) DispatchLag(d time.Duration) { m.dispatchLag.Observe(max(d, 0).Seconds()) }

// DeliveryLatency records the time from a message's acceptance to its
// successful delivery to one endpoint.
func (m *Metrics) DeliveryLatency(d time.Duration) { m.deliveryLatency.Observe(max(d, 0).Seconds()) }

// ObserveOpenBreakers sets the function herald_circuit_breakers_open
// reads at each scrape (the dispatcher's count).
func (m *Metrics) ObserveOpenBreakers(count func() int) { m.openBreakers.Store(&count) }

// HTTPRequestStarted marks an API request in flight.
func (m *Metrics) HTTPRequestStarted() { m.httpInFlight.Inc() }

// HTTPRequestFinished records one API request: route is its pattern
// ("unmatched" when no route matched). Its series exist from the first
// request of each route and status on: at most the routes times the few
// codes each answers.
func (m *Metrics) HTTPRequestFinished(route string, code int, d time.Duration) {
	m.httpInFlight.Dec()
	c := strconv.Itoa(code)
	m.httpRequests.WithLabelValues(route, c).Inc()
	m.httpDuration.WithLabelValues(route, c).Observe(d.Seconds())
}

// AttemptCut ends an attempt cut at the shutdown deadline: it is no longer
// in flight, and its delivery goes back to the queue unrecorded.
func (m *Metrics) AttemptCut() { m.inFlight.Dec() }
