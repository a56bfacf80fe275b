// Package netguard keeps webhook deliveries from reaching the host's own
// network (server-side request forgery): loopback, private, link-local,
// carrier-grade NAT, cloud metadata and other non-public addresses are
// refused. The check runs in net.Dialer.Control on the address actually
// being connected to, after DNS resolution, so a hostname that resolves (or
// re-resolves, as in DNS rebinding) to a forbidden address is caught too.
package netguard

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reasons Forbidden gives.
const (
	ReasonInvalid       = "not a valid IP address"
	ReasonUnspecified   = "unspecified address"
	ReasonThisNetwork   = `"this network" address`
	ReasonLoopback      = "loopback address"
	ReasonPrivate       = "private network address"
	ReasonLinkLocal     = "link-local address"
	ReasonCGNAT         = "carrier-grade NAT address"
	ReasonMetadata      = "cloud metadata address"
	ReasonMulticast     = "multicast address"
	ReasonBroadcast     = "broadcast address"
	ReasonBenchmark     = "benchmarking address"
	ReasonDocumentation = "documentation address"
	ReasonReserved      = "reserved address"
)

// rule is one refused range; the first matching rule gives the reason, so
// specific addresses come before the ranges that hold them.
type rule struct {
	prefix netip.Prefix
	reason string
}

func rules(r ...string) []rule {
	out := make([]rule, 0, len(r)/2)
	for i := 0; i < len(r); i += 2 {
		out = append(out, rule{netip.MustParsePrefix(r[i]), r[i+1]})
	}
	return out
}

// v4Rules are the IPv4 ranges refused (IANA special-purpose registry).
var v4Rules = rules(
	"169.254.169.254/32", ReasonMetadata, // AWS, GCP, Azure, OpenStack, DigitalOcean…
	"168.63.129.16/32", ReasonMetadata, // Azure WireServer (a public address reachable only inside Azure)
	"255.255.255.255/32", ReasonBroadcast,
	"0.0.0.0/32", ReasonUnspecified,
	"0.0.0.0/8", ReasonThisNetwork,
	"10.0.0.0/8", ReasonPrivate,
	"100.64.0.0/10", ReasonCGNAT, // also holds Alibaba's 100.100.100.200 metadata
	"127.0.0.0/8", ReasonLoopback,
	"169.254.0.0/16", ReasonLinkLocal,
	"172.16.0.0/12", ReasonPrivate,
	"192.0.0.0/24", ReasonReserved, // IETF protocol assignments, Oracle's 192.0.0.192 metadata
	"192.0.2.0/24", ReasonDocumentation,
	"192.88.99.0/24", ReasonReserved, // deprecated 6to4 relay anycast
	"192.168.0.0/16", ReasonPrivate,
	"198.18.0.0/15", ReasonBenchmark,
	"198.51.100.0/24", ReasonDocumentation,
	"203.0.113.0/24", ReasonDocumentation,
	"224.0.0.0/4", ReasonMulticast,
	"240.0.0.0/4", ReasonReserved,
)

// v6Rules are the IPv6 ranges refused outright. Ranges that embed an IPv4
// address (mapped, NAT64, 6to4) are handled in Forbidden.
var v6Rules = rules(
	"fd00:ec2::254/128", ReasonMetadata, // AWS IMDS over IPv6
	"::/128", ReasonUnspecified,
	"::1/128", ReasonLoopback,
	"::/96", ReasonReserved, // deprecated IPv4-compatible addresses
	"::ffff:0:0:0/96", ReasonReserved, // IPv4-translated (SIIT)
	"64:ff9b:1::/48", ReasonPrivate, // local-use NAT64 (RFC 8215)
	"100::/64", ReasonReserved, // discard-only
	"2001:2::/48", ReasonBenchmark,
	"2001:db8::/32", ReasonDocumentation,
	"3fff::/20", ReasonDocumentation,
	"fc00::/7", ReasonPrivate, // unique local
	"fe80::/10", ReasonLinkLocal,
	"fec0::/10", ReasonPrivate, // deprecated site-local
	"ff00::/8", ReasonMulticast,
)

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Forbidden reports whether deliveries to ip are refused, and why. IPv6
// forms that carry an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4
// 2002::/16) are judged by the IPv4 address they reach.
func Forbidden(ip netip.Addr) (reason string, forbidden bool) {
	if !ip.IsValid() {
		return ReasonInvalid, true
	}
	ip = ip.WithZone("") // a zoned address never matches a prefix
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is4() {
		return match(v4Rules, ip)
	}
	if reason, bad := match(v6Rules, ip); bad {
		return reason, true
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return Forbidden(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return Forbidden(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return "", false
}

func match(rs []rule, ip netip.Addr) (string, bool) {
	for _, r := range rs {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	return "", false
}

// BlockedError is the error a guarded dial fails with. Find it in a
// delivery error with errors.As to record why the attempt was refused.
// Its text never names Addr: attempts are read by the endpoint's owner
// (in the app portal too), and the addresses a host name resolved to
// would map the network Herald runs in. Addr is for the operator's logs.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	if e.Reason == ReasonMetadata {
		return "delivery target refused (" + e.Reason + "; never allowed)"
	}
	if e.Reason == ReasonInvalid {
		return "delivery target refused (" + e.Reason + ")"
	}
	return "delivery target refused (" + e.Reason + "; allowed only when Herald runs with --allow-private-targets)"
}

// Permanent reports whether the target can never be allowed (a cloud
// metadata address), so retrying the delivery is pointless. Other refused
// addresses are reached through a host name a DNS change can fix, or are
// allowed once the operator sets --allow-private-targets.
func (e *BlockedError) Permanent() bool { return e.Reason == ReasonMetadata }

// Reasons CheckHost gives besides Forbidden's.
const (
	ReasonLocalhost = "loopback host name"
	ReasonNumeric   = "numeric host that is not a plain IP address"
)

// CheckHost judges an endpoint URL's literal host (url.URL.Hostname) when
// the endpoint is created or changed, so an obviously refused target is
// refused at once rather than at every attempt: IP addresses Forbidden
// refuses, "localhost" and names under .localhost (RFC 6761), and numeric
// forms some clients read as IPv4 addresses ("127.1", "2130706433",
// "0x7f.0.0.1"). Other host names are not resolved: DNS answers change,
// and the dial-time check stays the guard. With allowPrivate only cloud
// metadata addresses are refused, as at dial time.
func CheckHost(host string, allowPrivate bool) (reason string, refused bool) {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(name); err == nil {
		reason, refused = Forbidden(ip)
	} else if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		reason, refused = ReasonLocalhost, true
	} else if labels := strings.Split(name, "."); numericLabel(labels[len(labels)-1]) {
		// A URL parser following WHATWG reads a host whose last label is
		// a number as an IPv4 address, in any of inet_aton's forms.
		ip, ok := parseLooseIPv4(labels)
		if !ok {
			return ReasonNumeric, true
		}
		reason, refused = Forbidden(ip)
	}
	if !refused || allowPrivate && reason != ReasonMetadata {
		return "", false
	}
	return reason, true
}

// numericLabel reports whether a host label is a number: decimal, or hex
// with 0x.
func numericLabel(s string) bool {
	if s == "" {
		return false
	}
	if rest, hex := strings.CutPrefix(s, "0x"); hex {
		_, err := strconv.ParseUint("0"+rest, 16, 64)
		return err == nil
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// parseLooseIPv4 parses the inet_aton forms of an IPv4 address: one to four
// parts, each decimal, octal (leading 0) or hex (0x), the last filling the
// remaining bytes.
func parseLooseIPv4(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var n [4]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil || p == "" {
			return netip.Addr{}, false
		}
		n[i] = v
	}
	last := len(parts) - 1
	var out uint64
	for i := range last {
		if n[i] > 0xff {
			return netip.Addr{}, false
		}
		out |= n[i] << (8 * (3 - i))
	}
	if n[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	out |= n[last]
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

// Control returns a net.Dialer Control function that refuses forbidden
// addresses. With allowPrivate (--allow-private-targets, for tests and
// on-premise use) only cloud metadata addresses are refused: a tenant's
// endpoint URL must never fetch the host's cloud credentials. An address
// that cannot be parsed is refused, failing closed.
func Control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &BlockedError{Reason: ReasonInvalid}
		}
		reason, bad := Forbidden(ap.Addr())
		if !bad || allowPrivate && reason != ReasonMetadata {
			return nil
		}
		return &BlockedError{Addr: ap.Addr(), Reason: reason}
	}
}

// NewDialer returns a dialer with the guard installed and the given connect
// timeout. Use it as the DialContext of an http.Transport whose Proxy is
// nil: through a proxy, the guard would only see the proxy's address.
func NewDialer(allowPrivate bool, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control:   Control(allowPrivate),
	}
}
