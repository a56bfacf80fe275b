package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HealthcheckCmd asks a Herald whether it is healthy and exits 0 or 1: the
// container image's HEALTHCHECK, which has no shell and no curl.
type HealthcheckCmd struct {
	URL     string        `name:"url" env:"HERALD_HEALTHCHECK_URL" default:"http://127.0.0.1:8040/healthz" help:"URL to GET: /healthz (the process serves HTTP) or /readyz (and its database answers)."`
	Timeout time.Duration `name:"timeout" env:"HERALD_HEALTHCHECK_TIMEOUT" default:"5s" help:"How long to wait for the answer."`
}

// Run GETs the URL; any status but 200 is a failure.
func (c *HealthcheckCmd) Run(env *Env) error {
	ctx, cancel := context.WithTimeout(env.Ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("user-agent", "Herald-healthcheck/"+Version())
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", c.URL, resp.Status, body)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s: %s\n", c.URL, resp.Status)
	return err
}
