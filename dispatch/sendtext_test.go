package dispatch

import (
	"bufio"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// checkNoAddress fails if the attempt text holds an IP address or the
// server's DNS resolver.
func checkNoAddress(t *testing.T, what, text string, also ...string) {
	t.Helper()
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(" \"'()[],;", r) }) {
		if _, err := netip.ParseAddr(w); err == nil {
			t.Errorf("%s: attempt text %q holds the address %s", what, text, w)
		}
		if _, err := netip.ParseAddrPort(w); err == nil {
			t.Errorf("%s: attempt text %q holds the address %s", what, text, w)
		}
	}
	for _, s := range also {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s: attempt text %q holds %q", what, text, s)
		}
	}
}

// TestAttemptTextHidesAddresses: what an attempt records about a failure
// says what happened but never the addresses a host name resolved to nor
// the server's DNS resolver, which portal users would read to map Herald's
// network. Every failure is a real one.
func TestAttemptTextHidesAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	guarded := NewSender(SenderConfig{Timeout: 5 * time.Second})
	defer guarded.Close()
	open := NewSender(SenderConfig{AllowPrivate: true, Timeout: 5 * time.Second})
	defer open.Close()

	// A name that resolves to a loopback address.
	res := guarded.Send(t.Context(), newRequest(t, "http://localhost"+port+"/hook"))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "loopback address") {
		t.Errorf("localhost: %v, want a refusal naming a loopback address", res.Err)
	} else {
		checkNoAddress(t, "localhost", res.Err.Error(), "localhost"+port)
	}

	// A name that does not resolve: Go's error names the resolver.
	res = open.Send(t.Context(), newRequest(t, "http://herald-test.invalid/hook"))
	var dnsErr *net.DNSError
	if !errors.As(res.Err, &dnsErr) || !strings.HasPrefix(res.Err.Error(), "DNS lookup failed") {
		t.Fatalf("unresolvable name: %v, want a DNS failure", res.Err)
	}
	checkNoAddress(t, "unresolvable name", res.Err.Error(), dnsErr.Server)
	if dnsErr.IsNotFound && res.Err.Error() != "DNS lookup failed: no such host" {
		t.Errorf("unresolvable name: %q", res.Err)
	}

	// A closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res = open.Send(t.Context(), newRequest(t, "http://"+closed+"/hook"))
	if res.Err == nil || res.Err.Error() != "connection refused" {
		t.Errorf("closed port: %v, want connection refused", res.Err)
	}

	// A TLS endpoint whose certificate nobody vouches for.
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	res = open.Send(t.Context(), newRequest(t, tlsSrv.URL))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "unknown authority") {
		t.Errorf("self-signed TLS: %v", res.Err)
	} else {
		checkNoAddress(t, "self-signed TLS", res.Err.Error())
	}

	// Plain HTTP where TLS was asked for.
	res = open.Send(t.Context(), newRequest(t, strings.Replace(srv.URL, "http:", "https:", 1)))
	if res.Err == nil {
		t.Error("https to a plain HTTP server succeeded")
	} else {
		checkNoAddress(t, "https to plain HTTP", res.Err.Error())
	}

	// The operator's span text keeps the transport's own words.
	if s := spanError(res.Err); !strings.Contains(s, "127.0.0.1") {
		t.Errorf("span text %q lost the transport's detail", s)
	}
}

func TestScrubAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"dial tcp 10.0.0.2:53: i/o timeout":   "dial tcp [address]: i/o timeout",
		"read tcp 127.0.0.1:5->[::1]:80: x":   "read tcp [address] -> [address]: x",
		`lookup x on 10.255.255.53:53: no`:    "lookup x on [address]: no",
		"to fe80::1%eth0 (or 192.168.1.1)":    "to [address] (or [address])",
		"malformed HTTP response \"\\x00ab\"": "malformed HTTP response \"\\x00ab\"",
	} {
		if got := scrubAddresses(in); got != want {
			t.Errorf("scrubAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}

// rawServer answers every connection with the bytes of answer, whatever
// was asked, as a hostile receiver can.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for { // the request's head; its body is not needed
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = conn.Write([]byte(answer))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestSendRefusesHugeResponseHeaders: a receiver answering with a 1 MB
// header fails the attempt with a clear text instead of being read whole
// (Go's default limit is 10 MB per response).
func TestSendRefusesHugeResponseHeaders(t *testing.T) {
	u := rawServer(t, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\nContent-Length: 0\r\n\r\n")
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 5 * time.Second})
	defer s.Close()
	res := s.Send(t.Context(), newRequest(t, u))
	if res.Succeeded() || res.StatusCode != 0 || res.Err == nil {
		t.Fatalf("1 MB header: %+v, want a failed attempt without a status", res)
	}
	if want := "response headers larger than 64 KiB: answer refused"; res.Err.Error() != want {
		t.Errorf("1 MB header: %q, want %q", res.Err, want)
	}
	// Headers just under the cap are read.
	u = rawServer(t, "HTTP/1.1 204 No Content\r\nX-Big: "+strings.Repeat("a", 60<<10)+"\r\n\r\n")
	if res := s.Send(t.Context(), newRequest(t, u)); !res.Succeeded() {
		t.Errorf("60 KiB header: %+v, want success", res)
	}
}

// TestSendRecordsRedirectLocation: a redirect is not followed, and where it
// pointed is kept, cut and quoted so a hostile Location can carry neither
// control characters nor megabytes.
func TestSendRecordsRedirectLocation(t *testing.T) {
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 5 * time.Second})
	defer s.Close()
	for _, tc := range []struct{ location, want string }{
		{"https://new.example.com/hook?a=1", `"https://new.example.com/hook?a=1"`},
		{"/a\u202eb", `"/a\u202eb"`},
		{"https://x.example/" + strings.Repeat("é", 600), `"https://x.example/` + strings.Repeat("é", (512-len("https://x.example/"))/2) + `"…`},
		{"", `""`},
	} {
		u := rawServer(t, "HTTP/1.1 302 Found\r\nLocation: "+tc.location+"\r\nContent-Length: 0\r\n\r\n")
		res := s.Send(t.Context(), newRequest(t, u))
		if res.Succeeded() || res.StatusCode != http.StatusFound || res.Location != tc.want {
			t.Errorf("Location %.40q: status %d, location %s; want 302 and %s", tc.location, res.StatusCode, res.Location, tc.want)
		}
	}
	// Control characters Go's client refuses to read: a failed attempt
	// whose text does not repeat the line.
	u := rawServer(t, "HTTP/1.1 302 Found\r\nLocation: /moved\x01\x1b[31m"+strings.Repeat("x", 10000)+"\r\nContent-Length: 0\r\n\r\n")
	res := s.Send(t.Context(), newRequest(t, u))
	if res.Succeeded() || res.Err == nil || res.Err.Error() != "the endpoint's answer is not valid HTTP (malformed status or header line)" {
		t.Errorf("Location with control characters: %+v", res)
	}
	// Other answers have none.
	u = rawServer(t, "HTTP/1.1 500 Oops\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
	if res := s.Send(t.Context(), newRequest(t, u)); res.Location != "" {
		t.Errorf("500 with a Location: location %q, want none", res.Location)
	}
}
