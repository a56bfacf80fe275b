package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/signature"
)

// OperationalFlags configure auto-disable and the operational webhooks.
type OperationalFlags struct {
	DisableAfter             time.Duration `name:"disable-after" env:"HERALD_DISABLE_AFTER" default:"120h" help:"Disable an endpoint whose every attempt has failed for this long (default 5 days); its pending deliveries become failed, and POST …/recover queues them again once it is enabled. 0 never disables."`
	OperationalWebhookURL    string        `name:"operational-webhook-url" env:"HERALD_OPERATIONAL_WEBHOOK_URL" help:"URL that receives every one of Herald's operational webhooks (endpoint.disabled, endpoint.enabled, message.attempt.exhausted, message.attempt.failing), signed and retried like any delivery: one operational endpoint beside those of /api/v1/operational-webhook/endpoint, not shown by the API. Unset: this one is off."`
	OperationalWebhookSecret string        `name:"operational-webhook-secret" env:"HERALD_OPERATIONAL_WEBHOOK_SECRET" help:"Signing secret (whsec_…) of the operational webhooks. Default on SQLite: the file operational-webhook-secret beside the database, generated on first use. Required on PostgreSQL with --operational-webhook-url."`

	opSecret []byte // parsed OperationalWebhookSecret
}

// validate checks the flags that kong cannot.
func (f *OperationalFlags) validate() error {
	if f.DisableAfter < 0 {
		return errors.New("--disable-after must not be negative (0 never disables)")
	}
	if f.DisableAfter > 0 && f.DisableAfter < time.Minute {
		return errors.New("--disable-after must be at least 1m (or 0, never)")
	}
	if f.OperationalWebhookURL != "" {
		u, err := url.Parse(f.OperationalWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("--operational-webhook-url must be an http:// or https:// URL")
		}
	}
	if f.OperationalWebhookSecret != "" {
		key, err := signature.ParseSecret(f.OperationalWebhookSecret)
		if err != nil {
			return fmt.Errorf("--operational-webhook-secret: %w", err)
		}
		f.opSecret = key
	}
	return nil
}

// configureOperational points the operational webhooks at the flags'
// URL, or turns them off, before the node starts. dataDir is where the
// generated secret lives ("" on PostgreSQL, which needs the flag).
func (f *OperationalFlags) configureOperational(ctx context.Context, s dispatch.OperationalStore, dataDir string, logger *slog.Logger) error {
	secret := f.opSecret
	if f.OperationalWebhookURL != "" && secret == nil {
		if dataDir == "" {
			return errors.New("--operational-webhook-secret (or HERALD_OPERATIONAL_WEBHOOK_SECRET) is required with PostgreSQL and --operational-webhook-url: every node must sign with the same secret")
		}
		var err error
		if secret, err = operationalSecretFile(filepath.Join(dataDir, "operational-webhook-secret"), logger); err != nil {
			return err
		}
	}
	if err := dispatch.ConfigureOperational(ctx, s, f.OperationalWebhookURL, secret, time.Now()); err != nil {
		return fmt.Errorf("configure operational webhooks: %w", err)
	}
	if f.OperationalWebhookURL != "" {
		logger.Info("operational webhooks on", "url", redactURL(f.OperationalWebhookURL))
	}
	return nil
}

// operationalSecretFile reads the operational webhook secret from path,
// generating it (mode 0600) on first use.
func operationalSecretFile(path string, logger *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := signature.NewSecret()
		if err != nil {
			return nil, fmt.Errorf("generate the operational webhook secret: %w", err)
		}
		if err := writeSecretFile(path, signature.FormatSecret(key)); err != nil {
			return nil, fmt.Errorf("save the operational webhook secret: %w", err)
		}
		logger.Info("generated the signing secret of the operational webhooks; verify them with it", "file", path)
		return key, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the operational webhook secret: %w", err)
	}
	key, err := signature.ParseSecret(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("operational webhook secret file %s: %w", path, err)
	}
	return key, nil
}

// redactURL drops a URL's credentials and query for logging.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
