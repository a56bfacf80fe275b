package destination

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// kind is one broker: how its URLs are checked and how its publisher is
// made. Several schemes may name one kind (redis and rediss).
type kind struct {
	// name is the kind's name in metrics, the bench flag and the pool:
	// nats, redis, amqp, kafka.
	name  string
	check func(u *url.URL) error
	new   func(cfg Config) Publisher
}

// registry maps a URL scheme to its broker.
var registry = map[string]kind{
	"nats":   {name: "nats", check: checkNATS, new: NewNATS},
	"redis":  {name: "redis", check: checkRedis, new: NewRedis},
	"rediss": {name: "redis", check: checkRedis, new: NewRedis},
	"amqp":   {name: "amqp", check: checkAMQP, new: NewAMQP},
	"amqps":  {name: "amqp", check: checkAMQP, new: NewAMQP},
	"kafka":  {name: "kafka", check: checkKafka, new: NewKafka},
}

// IsBroker reports whether scheme (lower case, as url.Parse gives it) is
// a broker's: an endpoint with such a URL is published to, not POSTed to.
func IsBroker(scheme string) bool {
	_, ok := registry[scheme]
	return ok
}

// Kind names the broker a scheme selects ("nats", "redis", …), "http" for
// anything else: the fixed set of a metric's "destination" label.
func Kind(scheme string) string {
	if k, ok := registry[scheme]; ok {
		return k.name
	}
	return "http"
}

// Kinds lists every broker kind, sorted: what `herald bench
// --destination` accepts besides http.
func Kinds() []string {
	var names []string
	for _, k := range registry {
		if !slices.Contains(names, k.name) {
			names = append(names, k.name)
		}
	}
	slices.Sort(names)
	return names
}

// Schemes lists every broker URL scheme, sorted.
func Schemes() []string {
	var s []string
	for scheme := range registry {
		s = append(s, scheme)
	}
	slices.Sort(s)
	return s
}

// Check validates a broker URL as an endpoint's: a registered scheme, a
// host and port, and what the broker needs (subject, stream …). Its error
// is the detail of a 422 at body.url. The SSRF check of the host is the
// caller's (netguard.CheckHost), as for HTTP URLs.
func Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	k, ok := registry[u.Scheme]
	if !ok {
		return fmt.Errorf("unknown URL scheme %q: http, https or a broker's (%s)", u.Scheme, strings.Join(Schemes(), ", "))
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("a %s URL needs a host: %s://host:port/…", u.Scheme, u.Scheme)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("a %s URL has no fragment (#…)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("the port %q is not in 1-65535", p)
		}
	}
	return k.check(u)
}

// Hosts lists the host names a broker URL dials, as written (not
// resolved): its host, or each seed of a Kafka list ("h1:9092,h2:9092"),
// so that the API's host check judges every one.
func Hosts(u *url.URL) []string {
	var hosts []string
	for _, seed := range strings.Split(u.Host, ",") {
		hosts = append(hosts, (&url.URL{Host: seed}).Hostname())
	}
	return hosts
}
