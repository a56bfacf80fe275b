package access

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For and
// X-Forwarded-Proto headers Herald believes (--trusted-proxies). A request
// from any other address is taken at its word: its own address is the
// client's, and it came over TLS only when it did so to Herald itself.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8, 127.0.0.1"); an empty list trusts no proxy.
func ParseProxies(list string) (*Proxies, error) {
	p := &Proxies{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", item)
			}
			p.prefixes = append(p.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", item)
		}
		p.prefixes = append(p.prefixes, prefix.Masked())
	}
	return p, nil
}

// trusts reports whether the peer at remoteAddr (host:port) is a trusted
// proxy.
func (p *Proxies) trusts(remoteAddr string) bool {
	if p == nil || len(p.prefixes) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, prefix := range p.prefixes {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// Trusts reports whether r's peer is a trusted proxy.
func (p *Proxies) Trusts(r *http.Request) bool { return p.trusts(r.RemoteAddr) }

// Secure reports whether r reached the client's side over TLS: to Herald
// itself, or to a trusted proxy that says so in X-Forwarded-Proto.
func (p *Proxies) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return p.trusts(r.RemoteAddr) && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// ClientAddr is the address of the client behind r: the peer's own, or,
// when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not itself a trusted proxy.
func (p *Proxies) ClientAddr(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if !p.trusts(r.RemoteAddr) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			return peer // a hop we cannot read: trust nothing beyond it
		}
		if !p.trusts(net.JoinHostPort(addr.String(), "0")) {
			return addr.Unmap().String()
		}
	}
	return peer
}
