package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/herald-webhooks/herald/signature"
)

// ListenCmd is a local webhook receiver for development: it verifies each
// delivery's signature and prints it.
type ListenCmd struct {
	Listen    string        `name:"listen" env:"HERALD_LISTEN_ADDR" default:"127.0.0.1:8050" help:"Address to receive webhooks on."`
	Secret    []string      `name:"secret" env:"HERALD_LISTEN_SECRET" help:"Endpoint secret(s) (whsec_...) or, for an ed25519 endpoint, its public key (whpk_...) or secret key (whsk_...) to verify signatures with; repeat for several. Without one, deliveries are printed unverified."`
	Tolerance time.Duration `name:"tolerance" default:"5m" help:"How far a webhook-timestamp may be from now."`
	MaxBody   int64         `name:"max-body" default:"1048576" help:"Largest body accepted, in bytes."`
}

// Run receives until interrupted. A delivery whose signature does not verify
// is answered 401, so Herald records a failed attempt; a verified one 204.
func (c *ListenCmd) Run(env *Env) error {
	var keys []signature.Key
	for _, s := range c.Secret {
		key, err := signature.ParseKey(s)
		if err != nil {
			return fmt.Errorf("--secret: %w", err)
		}
		keys = append(keys, key)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var mu sync.Mutex // one printed delivery at a time
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.MaxBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		verdict, status := "unverified (no --secret)", http.StatusNoContent
		if len(keys) > 0 {
			if err := signature.VerifyKeys(keys, r.Header, body, time.Now(), c.Tolerance); err != nil {
				verdict, status = "INVALID SIGNATURE: "+err.Error(), http.StatusUnauthorized
			} else {
				verdict = "verified"
			}
		}
		mu.Lock()
		fmt.Fprintf(env.Stdout, "%s  %s  %s  %s\n%s\n\n", time.Now().UTC().Format(time.RFC3339),
			headerOr(r.Header, "webhook-id", "svix-id"), headerOr(r.Header, "herald-event-type", ""), verdict, printable(body))
		mu.Unlock()
		w.WriteHeader(status)
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(env.Stderr, "herald listen: receiving webhooks on http://%s/ (Ctrl-C to stop)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-env.Ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func headerOr(h http.Header, name, fallback string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if fallback != "" && h.Get(fallback) != "" {
		return h.Get(fallback)
	}
	return "-"
}

// printable indents JSON bodies and passes other bodies through.
func printable(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) == nil {
		if b, err := json.MarshalIndent(v, "", "  "); err == nil {
			return string(b)
		}
	}
	return string(body)
}
