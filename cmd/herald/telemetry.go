package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/herald-webhooks/herald/telemetry"
)

// TelemetryFlags configure where metrics and profiles are served. Tracing
// has no flags: it is configured by the standard OTEL_* variables.
type TelemetryFlags struct {
	MetricsAddr      string `name:"metrics-addr" env:"HERALD_METRICS_ADDR" help:"Serve /metrics on this address (for example 127.0.0.1:9040), without a token, instead of on the API listener: put it on a private interface. Default: /metrics on the API listener, for an admin token or key only (see --metrics-public)."`
	MetricsPublic    bool   `name:"metrics-public" env:"HERALD_METRICS_PUBLIC" help:"Serve /metrics on the API listener without a token. Default: only with an admin-scope token (the admin token or an admin API key, read-only is enough)."`
	MetricsAppLabel  bool   `name:"metrics-app-label" env:"HERALD_METRICS_APP_LABEL" help:"Label herald_deliveries_total with app_id: one series per application and outcome, so mind the number of applications."`
	Pprof            string `name:"pprof" env:"HERALD_PPROF" placeholder:"ADDR" help:"Serve net/http/pprof at /debug/pprof/ on this loopback address (for example 127.0.0.1:6060). Off by default."`
	PprofAllowRemote bool   `name:"pprof-allow-remote" env:"HERALD_PPROF_ALLOW_REMOTE" help:"Allow --pprof on an address that is not loopback. Profiles show the process's internals: only on a network you trust."`
}

// validate checks the addresses.
func (f *TelemetryFlags) validate() error {
	if f.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	if f.Pprof != "" && !f.PprofAllowRemote {
		if err := telemetry.CheckLoopback(f.Pprof); err != nil {
			return fmt.Errorf("--pprof: %w; profiles show the process's internals, so listen on 127.0.0.1 or [::1], or add --pprof-allow-remote", err)
		}
	}
	return nil
}

// sideListener is an HTTP server beside the API: metrics or profiles.
type sideListener struct {
	name string
	srv  *http.Server
	done chan error
	log  *slog.Logger
}

// startSide listens on addr and serves h; it logs the URL under name.
func startSide(ctx context.Context, name, addr, path string, h http.Handler, logger *slog.Logger) (*sideListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s: %w", name, err)
	}
	s := &sideListener{name: name, done: make(chan error, 1), log: logger, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A CPU profile or an execution trace takes as long as asked.
		WriteTimeout: 5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}}
	go func() { s.done <- s.srv.Serve(ln) }()
	logger.Info(name+" listening", "url", "http://"+ln.Addr().String()+path)
	return s, nil
}

// stop closes the listener; scrapes and profiles are not worth waiting for.
func (s *sideListener) stop() {
	if s == nil {
		return
	}
	_ = s.srv.Close()
	if err := <-s.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("stop "+s.name, "err", err)
	}
}

// start opens the metrics and profiling listeners the flags ask for and
// returns what stops them.
func (f *TelemetryFlags) start(ctx context.Context, n *node, logger *slog.Logger) (stop func(), err error) {
	var sides []*sideListener
	stop = func() {
		for _, s := range sides {
			s.stop()
		}
	}
	if f.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", n.metricsHandler(logger))
		s, err := startSide(ctx, "metrics", f.MetricsAddr, "/metrics", mux, logger)
		if err != nil {
			return stop, err
		}
		sides = append(sides, s)
	}
	if f.Pprof != "" {
		s, err := startSide(ctx, "pprof", f.Pprof, "/debug/pprof/", telemetry.ProfilingHandler(), logger)
		if err != nil {
			stop()
			return func() {}, err
		}
		sides = append(sides, s)
	}
	return stop, nil
}

// startTracing sets tracing up from the OTEL_* environment variables.
func startTracing(ctx context.Context, env *Env, logger *slog.Logger) (*telemetry.Tracing, error) {
	tracing, err := telemetry.TracingFromEnv(ctx, Version(), env.Stdout)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if tracing.Enabled {
		telemetry.LogErrorsTo(logger)
		logger.Info("tracing on", "exporter", tracing.Exporter)
	}
	return tracing, nil
}

// stopTracing exports the spans still buffered, waiting a few seconds at
// most for the collector.
func stopTracing(tracing *telemetry.Tracing, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tracing.Shutdown(ctx); err != nil {
		logger.Warn("flush traces", "err", err)
	}
}
