package telemetry

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
)

// ProfilingHandler serves net/http/pprof under /debug/pprof/ on a mux of
// its own, for a listener of its own. (Importing net/http/pprof also
// registers these on http.DefaultServeMux, which Herald never serves.)
func ProfilingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// CheckLoopback returns an error unless addr (host:port) names a loopback
// address: "localhost", or an IP in 127.0.0.0/8 or ::1. An empty host
// listens on every interface and is refused.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not a loopback address", addr)
}
