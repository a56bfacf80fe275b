package destination

import (
	"context"
	"net"
	"time"
)

// dialer is cfg.Dial, or a plain dialer's.
func (cfg Config) dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	if cfg.Dial != nil {
		return cfg.Dial
	}
	var d net.Dialer
	return d.DialContext
}

// timeout is cfg.Timeout, 15 s when unset.
func (cfg Config) timeout() time.Duration {
	if cfg.Timeout > 0 {
		return cfg.Timeout
	}
	return 15 * time.Second
}

// bound bounds ctx by cfg.Timeout unless it ends sooner already.
func (cfg Config) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	t := cfg.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= t {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, t)
}
