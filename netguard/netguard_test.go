package netguard_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/netguard"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Public addresses in this table are only parsed, never dialled.
func TestForbidden(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" means allowed
	}{
		// Public, allowed.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700::1", ""},
		{"2001:4860:4860::8888", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		// Edges of refused IPv4 ranges, allowed.
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},

		// Unspecified and "this network".
		{"0.0.0.0", netguard.ReasonUnspecified},
		{"0.1.2.3", netguard.ReasonThisNetwork},
		{"::", netguard.ReasonUnspecified},
		{"::ffff:0.0.0.0", netguard.ReasonUnspecified},
		// Loopback.
		{"127.0.0.1", netguard.ReasonLoopback},
		{"127.255.255.254", netguard.ReasonLoopback},
		{"::1", netguard.ReasonLoopback},
		{"::ffff:127.0.0.1", netguard.ReasonLoopback},
		{"::ffff:7f00:2", netguard.ReasonLoopback},
		{"64:ff9b::127.0.0.1", netguard.ReasonLoopback},
		{"2002:7f00:1::", netguard.ReasonLoopback},
		// Private.
		{"10.0.0.1", netguard.ReasonPrivate},
		{"10.255.255.255", netguard.ReasonPrivate},
		{"172.16.0.1", netguard.ReasonPrivate},
		{"172.31.255.255", netguard.ReasonPrivate},
		{"192.168.1.1", netguard.ReasonPrivate},
		{"::ffff:10.1.2.3", netguard.ReasonPrivate},
		{"::ffff:192.168.0.1", netguard.ReasonPrivate},
		{"64:ff9b::10.0.0.1", netguard.ReasonPrivate},
		{"64:ff9b::c0a8:101", netguard.ReasonPrivate},
		{"2002:c0a8:101::1", netguard.ReasonPrivate},
		{"64:ff9b:1::8.8.8.8", netguard.ReasonPrivate},
		{"fc00::1", netguard.ReasonPrivate},
		{"fd12:3456:789a::1", netguard.ReasonPrivate},
		{"fec0::1", netguard.ReasonPrivate},
		// Link-local.
		{"169.254.0.1", netguard.ReasonLinkLocal},
		{"169.254.170.2", netguard.ReasonLinkLocal},
		{"fe80::1", netguard.ReasonLinkLocal},
		{"fe80::1%eth0", netguard.ReasonLinkLocal},
		{"febf:ffff::1", netguard.ReasonLinkLocal},
		{"::ffff:169.254.1.1", netguard.ReasonLinkLocal},
		// Carrier-grade NAT.
		{"100.64.0.1", netguard.ReasonCGNAT},
		{"100.127.255.255", netguard.ReasonCGNAT},
		{"100.100.100.200", netguard.ReasonCGNAT},
		{"::ffff:100.64.0.1", netguard.ReasonCGNAT},
		// Cloud metadata.
		{"169.254.169.254", netguard.ReasonMetadata},
		{"::ffff:169.254.169.254", netguard.ReasonMetadata},
		{"64:ff9b::a9fe:a9fe", netguard.ReasonMetadata},
		{"fd00:ec2::254", netguard.ReasonMetadata},
		{"168.63.129.16", netguard.ReasonMetadata},
		// Multicast and broadcast.
		{"224.0.0.1", netguard.ReasonMulticast},
		{"239.255.255.250", netguard.ReasonMulticast},
		{"ff02::1", netguard.ReasonMulticast},
		{"ff05::1:3", netguard.ReasonMulticast},
		{"::ffff:224.0.0.251", netguard.ReasonMulticast},
		{"255.255.255.255", netguard.ReasonBroadcast},
		{"::ffff:255.255.255.255", netguard.ReasonBroadcast},
		// Benchmarking.
		{"198.18.0.1", netguard.ReasonBenchmark},
		{"198.19.255.255", netguard.ReasonBenchmark},
		{"2001:2::1", netguard.ReasonBenchmark},
		{"::ffff:198.18.0.1", netguard.ReasonBenchmark},
		// Documentation.
		{"192.0.2.1", netguard.ReasonDocumentation},
		{"198.51.100.7", netguard.ReasonDocumentation},
		{"203.0.113.9", netguard.ReasonDocumentation},
		{"2001:db8::1", netguard.ReasonDocumentation},
		{"3fff::1", netguard.ReasonDocumentation},
		{"::ffff:203.0.113.9", netguard.ReasonDocumentation},
		// Reserved.
		{"240.0.0.1", netguard.ReasonReserved},
		{"192.0.0.192", netguard.ReasonReserved},
		{"192.88.99.1", netguard.ReasonReserved},
		{"::10.0.0.1", netguard.ReasonReserved},
		{"::8.8.8.8", netguard.ReasonReserved},
		{"::ffff:0:8.8.8.8", netguard.ReasonReserved},
		{"100::1", netguard.ReasonReserved},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		reason, forbidden := netguard.Forbidden(ip)
		if forbidden != (tt.reason != "") || reason != tt.reason {
			t.Errorf("Forbidden(%s) = %q, %v; want %q, %v", tt.addr, reason, forbidden, tt.reason, tt.reason != "")
		}
	}
	if reason, forbidden := netguard.Forbidden(netip.Addr{}); !forbidden || reason != netguard.ReasonInvalid {
		t.Errorf("Forbidden(zero Addr) = %q, %v; want %q, true", reason, forbidden, netguard.ReasonInvalid)
	}
}

func TestControl(t *testing.T) {
	tests := []struct {
		allowPrivate bool
		address      string
		wantReason   string // "" means allowed
	}{
		{false, "8.8.8.8:443", ""},
		{false, "[2606:4700::1]:443", ""},
		{false, "127.0.0.1:8080", netguard.ReasonLoopback},
		{false, "[::1]:8080", netguard.ReasonLoopback},
		{false, "10.0.0.1:80", netguard.ReasonPrivate},
		{false, "100.64.0.1:80", netguard.ReasonCGNAT},
		{false, "[::ffff:10.0.0.1]:80", netguard.ReasonPrivate},
		{false, "[fe80::1%lo]:80", netguard.ReasonLinkLocal},
		{false, "169.254.169.254:80", netguard.ReasonMetadata},
		{false, "localhost:80", netguard.ReasonInvalid},
		{false, "", netguard.ReasonInvalid},
		{true, "127.0.0.1:8080", ""},
		{true, "10.0.0.1:80", ""},
		{true, "100.64.0.1:80", ""},
		{true, "[fd00::1]:80", ""},
		{true, "8.8.8.8:443", ""},
		{true, "169.254.169.254:80", netguard.ReasonMetadata},
		{true, "[fd00:ec2::254]:80", netguard.ReasonMetadata},
		{true, "[::ffff:169.254.169.254]:80", netguard.ReasonMetadata},
		{true, "not an address", netguard.ReasonInvalid},
	}
	for _, tt := range tests {
		err := netguard.Control(tt.allowPrivate)("tcp", tt.address, nil)
		if tt.wantReason == "" {
			if err != nil {
				t.Errorf("Control(%v)(%q) = %v, want nil", tt.allowPrivate, tt.address, err)
			}
			continue
		}
		var blocked *netguard.BlockedError
		if !errors.As(err, &blocked) {
			t.Errorf("Control(%v)(%q) = %v, want *BlockedError", tt.allowPrivate, tt.address, err)
			continue
		}
		if blocked.Reason != tt.wantReason {
			t.Errorf("Control(%v)(%q) reason %q, want %q", tt.allowPrivate, tt.address, blocked.Reason, tt.wantReason)
		}
	}
}

// TestBlockedErrorText: the text says why, never which address: attempts
// are read by the endpoint's owner, and the addresses a host name resolved
// to would map Herald's network.
func TestBlockedErrorText(t *testing.T) {
	tests := []struct {
		err  *netguard.BlockedError
		want string
	}{
		{&netguard.BlockedError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: netguard.ReasonPrivate},
			"delivery target refused (private network address; allowed only when Herald runs with --allow-private-targets)"},
		{&netguard.BlockedError{Addr: netip.MustParseAddr("169.254.169.254"), Reason: netguard.ReasonMetadata},
			"delivery target refused (cloud metadata address; never allowed)"},
		{&netguard.BlockedError{Reason: netguard.ReasonInvalid},
			"delivery target refused (not a valid IP address)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if got := tt.err.Permanent(); got != (tt.err.Reason == netguard.ReasonMetadata) {
			t.Errorf("%s: Permanent() = %v", tt.err.Reason, got)
		}
	}
}

func TestCheckHost(t *testing.T) {
	tests := []struct {
		host         string
		allowPrivate bool
		wantReason   string // "" when allowed
	}{
		{"example.com", false, ""},
		{"hooks.example.com.", false, ""},
		{"93.184.216.34", false, ""},
		{"2606:2800:220:1:248:1893:25c8:1946", false, ""},
		{"internal.corp", false, ""}, // names are not resolved at creation
		{"127.0.0.1", false, netguard.ReasonLoopback},
		{"127.0.0.1", true, ""},
		{"::1", false, netguard.ReasonLoopback},
		{"::ffff:127.0.0.1", false, netguard.ReasonLoopback},
		{"0.0.0.0", false, netguard.ReasonUnspecified},
		{"::", false, netguard.ReasonUnspecified},
		{"10.1.2.3", false, netguard.ReasonPrivate},
		{"192.168.1.1", true, ""},
		{"fe80::1%eth0", false, netguard.ReasonLinkLocal},
		{"169.254.169.254", false, netguard.ReasonMetadata},
		{"169.254.169.254", true, netguard.ReasonMetadata},
		{"fd00:ec2::254", true, netguard.ReasonMetadata},
		{"localhost", false, netguard.ReasonLocalhost},
		{"LOCALHOST.", false, netguard.ReasonLocalhost},
		{"api.localhost", false, netguard.ReasonLocalhost},
		{"api.localhost", true, ""},
		{"notlocalhost", false, ""},
		// Numeric forms some clients read as IPv4.
		{"127.1", false, netguard.ReasonLoopback},
		{"2130706433", false, netguard.ReasonLoopback},
		{"0x7f.0.0.1", false, netguard.ReasonLoopback},
		{"0177.0.0.1", false, netguard.ReasonLoopback},
		{"0xa9fea9fe", true, netguard.ReasonMetadata},
		{"169.254.43518", true, netguard.ReasonMetadata},
		{"8.8.2056", false, ""},
		{"1.2.3.4.5", false, netguard.ReasonNumeric},
		{"256.1.1.1", false, netguard.ReasonNumeric},
		{"09.1.1.1", false, netguard.ReasonNumeric},
	}
	for _, tt := range tests {
		reason, refused := netguard.CheckHost(tt.host, tt.allowPrivate)
		if reason != tt.wantReason || refused != (tt.wantReason != "") {
			t.Errorf("CheckHost(%q, %v) = %q, %v; want %q", tt.host, tt.allowPrivate, reason, refused, tt.wantReason)
		}
	}
}

// receiver is a real HTTP server on 127.0.0.1 that counts the requests it
// gets, so a test can tell a refused dial from a failed request.
func receiver(t *testing.T) (srv *httptest.Server, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "delivered")
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

// guardedClient is an http.Client dialling through NewDialer, without any
// proxy, as the delivery engine will use it.
func guardedClient(t *testing.T, allowPrivate bool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		Proxy:       nil,
		DialContext: netguard.NewDialer(allowPrivate, 5*time.Second).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestDialerRefusesLoopback(t *testing.T) {
	srv, hits := receiver(t)
	_, err := get(guardedClient(t, false), srv.URL)
	var blocked *netguard.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("GET %s through the guard: %v, want *BlockedError", srv.URL, err)
	}
	if want := netip.MustParseAddr("127.0.0.1"); blocked.Addr != want || blocked.Reason != netguard.ReasonLoopback {
		t.Errorf("blocked %s (%s), want %s (%s)", blocked.Addr, blocked.Reason, want, netguard.ReasonLoopback)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

func TestDialerAllowsPrivateWhenAsked(t *testing.T) {
	srv, hits := receiver(t)
	body, err := get(guardedClient(t, true), srv.URL)
	if err != nil {
		t.Fatalf("GET %s with private targets allowed: %v", srv.URL, err)
	}
	if body != "delivered" || hits.Load() != 1 {
		t.Errorf("body %q after %d requests, want %q after 1", body, hits.Load(), "delivered")
	}
}

// TestDialerRefusesHostnameToLoopback checks the guard sees the resolved
// address: "localhost" is not an IP, so only a dial-time check catches it.
func TestDialerRefusesHostnameToLoopback(t *testing.T) {
	if _, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "localhost"); err != nil {
		t.Fatalf("localhost does not resolve on this machine: %v", err)
	}
	srv, hits := receiver(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort("localhost", u.Port())

	_, err = get(guardedClient(t, false), u.String())
	var blocked *netguard.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("GET %s through the guard: %v, want *BlockedError", u, err)
	}
	if !blocked.Addr.IsLoopback() || blocked.Reason != netguard.ReasonLoopback {
		t.Errorf("blocked %s (%s), want a loopback address", blocked.Addr, blocked.Reason)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}

	body, err := get(guardedClient(t, true), u.String())
	if err != nil || body != "delivered" {
		t.Errorf("GET %s with private targets allowed = %q, %v; want delivered", u, body, err)
	}
}
