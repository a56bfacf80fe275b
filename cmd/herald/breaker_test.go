package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/dispatch"
)

// TestServeRefusesBadBreakerFlags: the breaker flags are checked before
// anything starts, each refusal naming its flag.
func TestServeRefusesBadBreakerFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--breaker-failure-threshold", "0"}, "--breaker-failure-threshold"},
		{[]string{"--breaker-failure-ratio", "0"}, "--breaker-failure-ratio"},
		{[]string{"--breaker-failure-ratio", "1.5"}, "--breaker-failure-ratio"},
		{[]string{"--breaker-failure-ratio", "NaN"}, "--breaker-failure-ratio"},
		{[]string{"--breaker-open-time", "100ms"}, "--breaker-open-time"},
		{[]string{"--breaker-open-time", "1m", "--breaker-max-open-time", "30s"}, "--breaker-max-open-time"},
		{[]string{"--breaker-probes", "0"}, "--breaker-probes"},
		{[]string{"--breaker-probes", "101"}, "--breaker-probes"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}

// TestServeBreakerFlags: the defaults are the documented ones (and the
// dispatcher's own), the flags and their variables reach the dispatcher's
// configuration, and each of --no-breaker, --breaker=false and
// HERALD_BREAKER=false turns the breakers off.
func TestServeBreakerFlags(t *testing.T) {
	config := func(args ...string) dispatch.BreakerConfig {
		t.Helper()
		cli, _, err := parseCLI(append([]string{"serve"}, args...))
		if err != nil {
			t.Fatalf("serve %v: %v", args, err)
		}
		return cli.Serve.Breakers.config()
	}
	if got, want := config(), (dispatch.BreakerConfig{ConsecutiveFailures: 10, FailureRatio: 0.5,
		OpenFor: 10 * time.Second, MaxOpenFor: 5 * time.Minute, Probes: 5}); got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	got := config("--breaker-failure-threshold", "3", "--breaker-failure-ratio", "0.8",
		"--breaker-open-time", "2s", "--breaker-max-open-time", "1m", "--breaker-probes", "2")
	if want := (dispatch.BreakerConfig{ConsecutiveFailures: 3, FailureRatio: 0.8, OpenFor: 2 * time.Second,
		MaxOpenFor: time.Minute, Probes: 2}); got != want {
		t.Errorf("flags: %+v, want %+v", got, want)
	}
	for _, args := range [][]string{{"--no-breaker"}, {"--breaker=false"}} {
		if !config(args...).Disabled {
			t.Errorf("%v did not turn the breakers off", args)
		}
	}
	t.Setenv("HERALD_BREAKER_PROBES", "7")
	t.Setenv("HERALD_BREAKER", "false")
	if c := config(); !c.Disabled || c.Probes != 7 {
		t.Errorf("HERALD_BREAKER=false, HERALD_BREAKER_PROBES=7: %+v", c)
	}
}
