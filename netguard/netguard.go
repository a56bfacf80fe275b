// Package netguard keeps webhook deliveries from reaching the host's own
// network (server-side request forgery): loopback, private, link-local,
// carrier-grade NAT, cloud metadata and other non-public addresses are
// refused. The check runs in net.Dialer.Control on the address actually
// being connected to, after DNS resolution, so a hostname that resolves (or
// re-resolves, as in DNS rebinding) to a forbidden address is caught too.
package netguard

import (
	"fmt"
	"net"
	"net/netip"
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
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return "delivery target refused: " + e.Reason
	}
	if e.Reason == ReasonMetadata {
		return fmt.Sprintf("delivery target %s refused: %s (never allowed)", e.Addr, e.Reason)
	}
	return fmt.Sprintf("delivery target %s refused: %s (start herald with --allow-private-targets to allow)", e.Addr, e.Reason)
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
