package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// HealthcheckCmd asks a Herald whether it is healthy and exits 0 or 1: the
// container image's HEALTHCHECK, which has no shell and no curl.
type HealthcheckCmd struct {
	URL     string        `name:"url" env:"HERALD_HEALTHCHECK_URL" default:"http://127.0.0.1:8040/healthz" help:"URL to GET: /healthz (the process serves HTTP) or /readyz (and its database answers)."`
	Timeout time.Duration `name:"timeout" env:"HERALD_HEALTHCHECK_TIMEOUT" default:"5s" help:"How long to wait for the answer."`
	CAFile  string        `name:"ca-file" env:"HERALD_HEALTHCHECK_CA_FILE" help:"PEM certificates of the authorities to trust for an https URL, besides the system's."`
	TLSCert string        `name:"tls-cert" env:"HERALD_TLS_CERT" help:"The certificate file herald serve uses (--tls-cert; the same variable): a loopback URL is then asked over https, and the server must present exactly this certificate (its name is not checked: a loopback address is on no certificate)."`
}

// Run GETs the URL; any status but 200 is a failure.
func (c *HealthcheckCmd) Run(env *Env) error {
	ctx, cancel := context.WithTimeout(env.Ctx, c.Timeout)
	defer cancel()
	target, tlsConf, err := c.target()
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("user-agent", "Herald-healthcheck/"+Version())
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: tlsConf},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", target, resp.Status, body)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s: %s\n", target, resp.Status)
	return err
}

// target returns the URL to ask and the TLS configuration to ask it with.
// With --tls-cert and a loopback URL, http becomes https and the server's
// certificate is pinned to the file's: the image's HEALTHCHECK keeps
// working when HERALD_TLS_CERT turns TLS on.
func (c *HealthcheckCmd) target() (string, *tls.Config, error) {
	conf, err := clientTLS(c.CAFile)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(c.URL)
	if err != nil || c.TLSCert == "" || !loopbackHost(u.Hostname()) {
		return c.URL, conf, nil // a bad URL is the request's error to report
	}
	pin, err := leafOf(c.TLSCert)
	if err != nil {
		return "", nil, fmt.Errorf("--tls-cert: %w", err)
	}
	if u.Scheme == "http" {
		u.Scheme = "https"
	}
	conf.InsecureSkipVerify = true // replaced by the pin below
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pin) {
			return errors.New("the server's certificate is not the one in --tls-cert")
		}
		return nil
	}
	return u.String(), conf, nil
}

// clientTLS is the TLS configuration of Herald's own clients (healthcheck,
// send): the system's roots plus those in caFile, when given.
func clientTLS(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// leafOf returns the DER bytes of the first certificate in a PEM file.
func leafOf(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("%s holds no PEM certificate", file)
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}

// loopbackHost reports whether host names the loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
