package access

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestProxies(t *testing.T) {
	p, err := ParseProxies("10.0.0.0/8, 127.0.0.1 ,::1")
	if err != nil {
		t.Fatal(err)
	}
	req := func(remote, xff, proto string) *http.Request {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if proto != "" {
			r.Header.Set("X-Forwarded-Proto", proto)
		}
		return r
	}
	for _, c := range []struct {
		remote, xff, proto string
		secure             bool
		client             string
	}{
		{"203.0.113.9:5000", "", "", false, "203.0.113.9"},
		// An untrusted peer's headers are ignored.
		{"203.0.113.9:5000", "1.2.3.4", "https", false, "203.0.113.9"},
		{"127.0.0.1:5000", "198.51.100.7", "https", true, "198.51.100.7"},
		{"[::1]:5000", "198.51.100.7", "HTTPS", true, "198.51.100.7"},
		// The nearest untrusted hop is the client; a spoofed first hop is not.
		{"10.1.2.3:80", "6.6.6.6, 198.51.100.7, 10.9.9.9", "http", false, "198.51.100.7"},
		{"10.1.2.3:80", "garbage", "", false, "10.1.2.3"},
		{"10.1.2.3:80", "", "", false, "10.1.2.3"},
	} {
		r := req(c.remote, c.xff, c.proto)
		if got := p.Secure(r); got != c.secure {
			t.Errorf("%+v: Secure = %v", c, got)
		}
		if got := p.ClientAddr(r); got != c.client {
			t.Errorf("%+v: ClientAddr = %q, want %q", c, got, c.client)
		}
	}
	tlsReq := req("203.0.113.9:5000", "", "")
	tlsReq.TLS = &tls.ConnectionState{}
	if !p.Secure(tlsReq) {
		t.Error("a TLS request is secure")
	}
	var none *Proxies
	if none.Secure(req("127.0.0.1:1", "", "https")) || none.ClientAddr(req("127.0.0.1:1", "9.9.9.9", "")) != "127.0.0.1" {
		t.Error("no proxies: headers must be ignored")
	}
	for _, bad := range []string{"10.0.0.0/99", "example.com", "1.2.3"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}
