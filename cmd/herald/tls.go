package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// certPollInterval is how often serve looks at the certificate files for a
// change (their modification time and size).
const certPollInterval = 5 * time.Second

// certReloader holds the certificate of --tls-cert and --tls-key and
// replaces it when asked (SIGHUP) or when the files change. New TLS
// handshakes get the current certificate (tls.Config.GetCertificate);
// connections already open keep theirs. A new pair that does not load
// leaves the old one in place.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string // the files' sizes and modification times at the last load
}

// newCertReloader loads the pair once; an error there stops the start.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.reload("start"); err != nil {
		return nil, err
	}
	return c, nil
}

// fileStamp sums up what poll compares: each file's size and modification
// time.
func (c *certReloader) fileStamp() (string, error) {
	var b bytes.Buffer
	for _, f := range []string{c.certFile, c.keyFile} {
		info, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d:%d;", info.Size(), info.ModTime().UnixNano())
	}
	return b.String(), nil
}

// reload loads the pair from the files and makes it the one served; why
// (start, SIGHUP, file change) is logged. On an error the served
// certificate stays as it was.
func (c *certReloader) reload(why string) error {
	stamp, _ := c.fileStamp()
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.mu.Lock()
		c.stamp = stamp // one error per change of the files, not one per poll
		c.mu.Unlock()
		return fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("--tls-cert %s: %w", c.certFile, err)
		}
		cert.Leaf = leaf
	}
	c.mu.Lock()
	c.cert, c.stamp = &cert, stamp
	c.mu.Unlock()
	c.logger.Info("TLS certificate loaded", "trigger", why, "file", c.certFile, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if time.Now().After(leaf.NotAfter) {
		c.logger.Warn("the TLS certificate has expired", "file", c.certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// reloadLogged reloads and logs a failure (the old certificate is kept).
func (c *certReloader) reloadLogged(why string) {
	if err := c.reload(why); err != nil {
		c.logger.Error("TLS certificate not reloaded; still serving the previous one", "trigger", why, "err", err)
	}
}

// poll reloads when the files' sizes or modification times differ from
// those of the last load.
func (c *certReloader) poll() {
	stamp, err := c.fileStamp()
	c.mu.Lock()
	changed := err == nil && stamp != c.stamp
	c.mu.Unlock()
	if changed {
		c.reloadLogged("file change")
	}
}

// getCertificate is tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or newer, the
// current certificate on every handshake.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.getCertificate,
	}
}

// run reloads on SIGHUP and on a change of the files (looked at every
// interval) until ctx ends.
func (c *certReloader) run(ctx context.Context, interval time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			c.reloadLogged("SIGHUP")
		case <-tick.C:
			c.poll()
		}
	}
}

// plainHTTPWarning is the warning logged when serve listens on addr
// without TLS, or "" when addr is loopback only: anything else sends
// tokens and payloads in the clear unless a proxy terminates TLS.
func plainHTTPWarning(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return ""
	}
	return "serving plain HTTP on " + addr + ": tokens and payloads cross the network in the clear; use --tls-cert/--tls-key, or a TLS-terminating proxy (and name it in --trusted-proxies)"
}

// errTLSPair answers one of --tls-cert and --tls-key without the other.
var errTLSPair = errors.New("--tls-cert and --tls-key go together: give both (HTTPS) or neither (plain HTTP)")
