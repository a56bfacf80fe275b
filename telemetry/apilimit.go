package telemetry

import "github.com/prometheus/client_golang/prometheus"

// APILimit says which of the API's rate limits refused a request.
type APILimit int

// The API's rate limits, as the limit label names them.
const (
	APILimitKey          APILimit = iota // the credential's own token bucket (--api-rate-limit)
	APILimitAuthFailures                 // the client address's failed authentications
	numAPILimits
)

var apiLimitNames = [numAPILimits]string{"key", "auth_failures"}

func (l APILimit) String() string { return apiLimitNames[l] }

// newAPILimited registers herald_api_rate_limited_total on reg and returns
// its children, one per limit (a fixed set: never a key ID or an address).
func newAPILimited(reg prometheus.Registerer) [numAPILimits]prometheus.Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "api_rate_limited_total",
		Help: "API requests refused with 429 by a rate limit: key (a credential over --api-rate-limit) or auth_failures (a client address after too many failed authentications).",
	}, []string{"limit"})
	var out [numAPILimits]prometheus.Counter
	for l := range numAPILimits {
		out[l] = vec.WithLabelValues(apiLimitNames[l])
	}
	reg.MustRegister(vec)
	return out
}

// APIRateLimited counts one request refused by limit l.
func (m *Metrics) APIRateLimited(l APILimit) { m.apiLimited[l].Inc() }
