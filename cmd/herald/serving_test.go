package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: "Herald test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate for 127.0.0.1 and localhost with the
// given serial, and its key, to certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "herald.test"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	// A later modification time than any earlier pair's, whatever the
	// file system's timestamp granularity: the reloader compares them.
	at := time.Now().Add(time.Duration(serial) * time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pool returns a certificate pool holding only the CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsClient is a client trusting only ca, on a transport of its own (its
// own keep-alive connections).
func tlsClient(ca *testCA, maxVersion uint16) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), MaxVersion: maxVersion}}}
}

// servedSerial GETs url with client and returns the serial number of the
// certificate the connection was made with.
func servedSerial(t *testing.T, client *http.Client, url string) int64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET %s: not over TLS", url)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("GET %s: TLS version %x", url, resp.TLS.Version)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestCertReload: the server's certificate is replaced, for new
// connections, when the files change (poll) and when asked (the SIGHUP
// path), while a keep-alive connection opened before goes on working
// with its certificate; a pair that does not load keeps the old one and
// logs an error; a TLS 1.1 client is refused.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(t, 1, certFile, keyFile)
	var logs syncBuffer
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: r.tlsConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + ln.Addr().String() + "/"

	old := tlsClient(ca, 0)
	if got := servedSerial(t, old, url); got != 1 {
		t.Fatalf("served serial %d, want 1", got)
	}
	r.poll() // nothing changed: nothing to do
	if strings.Count(logs.String(), "TLS certificate loaded") != 1 {
		t.Errorf("a poll of unchanged files reloaded:\n%s", logs.String())
	}

	// The files change: the next poll loads them.
	ca.issue(t, 2, certFile, keyFile)
	r.poll()
	if got := servedSerial(t, tlsClient(ca, 0), url); got != 2 {
		t.Errorf("after the files changed, a new connection got serial %d, want 2", got)
	}
	if got := servedSerial(t, old, url); got != 1 {
		t.Errorf("the keep-alive connection opened before the reload answered with serial %d: it was not kept", got)
	}

	// A broken certificate file keeps the one served.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.poll()
	if got := servedSerial(t, tlsClient(ca, 0), url); got != 2 {
		t.Errorf("after a broken certificate file, serial %d, want the previous 2", got)
	}
	if !strings.Contains(logs.String(), "TLS certificate not reloaded") {
		t.Errorf("the failed reload was not logged as an error:\n%s", logs.String())
	}

	// The SIGHUP path reloads whether or not the files look changed.
	ca.issue(t, 3, certFile, keyFile)
	r.reloadLogged("SIGHUP")
	if got := servedSerial(t, tlsClient(ca, 0), url); got != 3 {
		t.Errorf("after a reload, serial %d, want 3", got)
	}

	if _, err := tlsClient(ca, tls.VersionTLS11).Get(url); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

// TestPlainHTTPWarning: serving plain HTTP on anything but loopback is
// warned about.
func TestPlainHTTPWarning(t *testing.T) {
	for addr, warn := range map[string]bool{
		"127.0.0.1:8040": false, "[::1]:8040": false, "localhost:8040": false, "127.0.0.2:8040": false,
		"0.0.0.0:8040": true, "[::]:8040": true, ":8040": true, "10.1.2.3:8040": true, "herald.internal:8040": true,
	} {
		got := plainHTTPWarning(addr)
		if (got != "") != warn {
			t.Errorf("plainHTTPWarning(%s) = %q, want a warning: %v", addr, got, warn)
		}
		if warn && (!strings.Contains(got, "--tls-cert") || !strings.Contains(got, "--trusted-proxies") || !strings.Contains(got, addr)) {
			t.Errorf("plainHTTPWarning(%s) = %q: it should name the address and the way out", addr, got)
		}
	}
}

// TestServeTLS runs herald serve with --tls-cert and --tls-key: the API is
// served over HTTPS only to clients that trust the CA, TLS 1.1 is
// refused, /metrics wants the admin token, the console's cookies are
// Secure, herald send (--ca-file) and herald healthcheck (--ca-file, or
// HERALD_TLS_CERT's pin on a loopback http URL) work against it, and
// SIGHUP loads a new certificate.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(t, 11, certFile, keyFile)
	const token = "hk_tls_test_token_0123456789"
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"), "--admin-token", token, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.url, "https://127.0.0.1:") {
		t.Fatalf("herald reports %s, want an https URL", p.url)
	}
	if strings.Contains(p.stderr.String(), "serving plain HTTP") {
		t.Errorf("a plain-HTTP warning with TLS on:\n%s", p.stderr)
	}
	client := tlsClient(ca, 0)
	if got := servedSerial(t, client, p.url+"/healthz"); got != 11 {
		t.Fatalf("served serial %d, want 11", got)
	}
	if _, err := http.Get(p.url + "/healthz"); err == nil {
		t.Error("a client that does not trust the CA was served")
	}
	if _, err := tlsClient(ca, tls.VersionTLS11).Get(p.url + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	plain := strings.Replace(p.url, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/api/v1/app"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP on the TLS port was served")
		}
	}

	call := func(method, path, tok string, body string) (int, []byte, *http.Response) {
		t.Helper()
		req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp
	}
	if code, b, _ := call("POST", "/api/v1/app", token, `{"name":"Acme","uid":"acme"}`); code != http.StatusCreated {
		t.Fatalf("create app over TLS = %d %s", code, b)
	}
	if code, _, _ := call("GET", "/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d, want 401", code)
	}
	if code, b, _ := call("GET", "/metrics", token, ""); code != http.StatusOK || !bytes.Contains(b, []byte("herald_")) {
		t.Errorf("/metrics with the admin token = %d %.100s", code, b)
	}

	// The console's sign-in over TLS: every cookie it sets is Secure.
	_, _, form := call("GET", "/console/login", "", "")
	var csrf *http.Cookie
	for _, c := range form.Cookies() {
		if len(c.Value) >= 32 {
			csrf = c
		}
		if !c.Secure {
			t.Errorf("cookie %s set over TLS without Secure", c.Name)
		}
	}
	if csrf == nil {
		t.Fatalf("the login form set no CSRF cookie: %v", form.Header["Set-Cookie"])
	}
	req, err := http.NewRequest("POST", p.url+"/console/login", strings.NewReader(url.Values{"token": {token}, "_csrf": {csrf.Value}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	noRedirect := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("console sign-in = %s, cookies %v", resp.Status, resp.Header["Set-Cookie"])
	}
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("session cookie %s set over TLS without Secure", c.Name)
		}
	}

	// herald send and herald healthcheck against the TLS listener.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"send", "--url", p.url, "--token", token, "--ca-file", ca.file, "--app", "acme", "--event-type", "a.b", `{"x":1}`}, &out, &errOut); code != 0 {
		t.Errorf("send --ca-file = %d: %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"send", "--url", p.url, "--token", token, "--app", "acme", "--event-type", "a.b", `{"x":1}`}, &out, &errOut); code == 0 {
		t.Error("send without --ca-file trusted the test CA")
	}
	port := p.url[strings.LastIndex(p.url, ":")+1:]
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--url", p.url + "/readyz", "--ca-file", ca.file}, true},
		{[]string{"--url", p.url + "/readyz"}, false},
		// The image's HEALTHCHECK (http://127.0.0.1) with HERALD_TLS_CERT set.
		{[]string{"--url", "http://127.0.0.1:" + port + "/readyz", "--tls-cert", certFile}, true},
		// A certificate other than the one served is no pin.
		{[]string{"--url", "http://127.0.0.1:" + port + "/readyz", "--tls-cert", ca.file}, false},
	} {
		out.Reset()
		errOut.Reset()
		code := run(context.Background(), append([]string{"healthcheck", "--timeout", "10s"}, tc.args...), &out, &errOut)
		if (code == 0) != tc.ok {
			t.Errorf("healthcheck %v = %d (%s%s), want success %v", tc.args, code, out.String(), errOut.String(), tc.ok)
		}
	}

	// SIGHUP: a new certificate for new connections.
	ca.issue(t, 12, certFile, keyFile)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), `"trigger":"SIGHUP"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged after SIGHUP:\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := servedSerial(t, tlsClient(ca, 0), p.url+"/healthz"); got != 12 {
		t.Errorf("after SIGHUP, serial %d, want 12", got)
	}
	if strings.Contains(p.stderr.String(), token) {
		t.Error("the admin token is in the log")
	}
}

// TestServeRefusesHalfTLS: --tls-cert without --tls-key (or the reverse)
// is refused before anything starts, naming both flags; so are
// --admin-token with --admin-token-file, and a token file too short.
func TestServeRefusesHalfTLS(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", filepath.Join(dir, "tls.crt")}, "--tls-key"},
		{[]string{"--tls-key", filepath.Join(dir, "tls.key")}, "--tls-cert"},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.crt"), "--tls-key", filepath.Join(dir, "missing.key")}, "--tls-cert"},
		{[]string{"--admin-token", "hk_0123456789abcdef", "--admin-token-file", short}, "--admin-token-file"},
		{[]string{"--admin-token-file", short}, "fewer than 16"},
		{[]string{"--admin-token-file", filepath.Join(dir, "absent")}, "--admin-token-file"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.want)
		}
	}
}

// TestServeAdminTokenFile: --admin-token-file's token (its trailing newline
// ignored) is the admin token, never logged; a file others may read is
// served with a warning. Plain HTTP on a non-loopback address is warned
// about, and --metrics-public serves /metrics without a token.
func TestServeAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token.secret")
	const token = "hk_from_a_file_0123456789"
	if err := os.WriteFile(file, []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startHerald(t, "--db", filepath.Join(dir, "data", "herald.db"), "--admin-token-file", file, "--listen", "0.0.0.0:0", "--metrics-public")
	logs := p.stderr.String()
	if strings.Contains(logs, token) {
		t.Fatal("the admin token is in the log")
	}
	if !strings.Contains(logs, "admin token file is readable by other users") || !strings.Contains(logs, file) {
		t.Errorf("no warning about the 0644 token file:\n%s", logs)
	}
	if !strings.Contains(logs, `"level":"WARN","msg":"serving plain HTTP on 0.0.0.0:`) {
		t.Errorf("no plain-HTTP warning on 0.0.0.0:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "admin-token")); err == nil {
		t.Error("an admin-token file was generated beside the database although --admin-token-file was given")
	}
	_, port, _ := net.SplitHostPort(p.url[strings.LastIndex(p.url, "/")+1:])
	base := "http://127.0.0.1:" + port
	if code, b := request(t, "POST", base+"/api/v1/app", token, map[string]any{"name": "Acme"}); code != http.StatusCreated {
		t.Fatalf("create app with the file's token = %d %s", code, b)
	}
	if code, _ := request(t, "GET", base+"/metrics", "", nil); code != http.StatusOK {
		t.Errorf("/metrics without a token with --metrics-public = %d, want 200", code)
	}

	// Loopback, without --metrics-public: no warning, /metrics wants a token.
	dir2 := t.TempDir()
	file2 := filepath.Join(dir2, "token")
	if err := os.WriteFile(file2, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := startHerald(t, "--db", filepath.Join(dir2, "herald.db"), "--admin-token-file", file2)
	if logs := p2.stderr.String(); strings.Contains(logs, "serving plain HTTP") || strings.Contains(logs, "readable by other users") {
		t.Errorf("warnings for a loopback listener and a 0600 token file:\n%s", logs)
	}
	if code, _ := request(t, "GET", p2.url+"/metrics", "", nil); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d, want 401", code)
	}
	if code, _ := request(t, "GET", p2.url+"/metrics", token, nil); code != http.StatusOK {
		t.Errorf("/metrics with the file's token = %d, want 200", code)
	}
}

// bearerClient is a client that sends token with every request.
func bearerClient(token string) *http.Client {
	return &http.Client{Transport: bearerRoundTripper(token)}
}

type bearerRoundTripper string

func (b bearerRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}
