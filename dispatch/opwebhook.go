package dispatch

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald"
)

// OperationalStore is what ConfigureOperational needs of the store.
type OperationalStore interface {
	GetApplication(ctx context.Context, ref string) (*herald.Application, error)
	CreateApplication(ctx context.Context, app *herald.Application) error
	GetEndpoint(ctx context.Context, appID, ref string) (*herald.Endpoint, error)
	CreateEndpoint(ctx context.Context, ep *herald.Endpoint) error
	UpdateEndpoint(ctx context.Context, ep *herald.Endpoint) error
}

// ConfigureOperational points Herald's operational webhooks at url, signed
// with secret: it creates or updates the internal application and endpoint
// (herald.OperationalAppID, herald.OperationalEndpointID) through which the
// stores queue their events and the dispatcher delivers them, retried like
// any delivery. An empty url turns them off: the endpoint is disabled, so
// stores queue no more events and the dispatcher fails the undelivered
// ones. Every node runs it at start; on a shared database the last node to
// start wins, so give every node the same settings.
func ConfigureOperational(ctx context.Context, s OperationalStore, url string, secret []byte, now time.Time) error {
	now = now.UTC()
	if url != "" {
		if err := ensureOperationalApp(ctx, s, now); err != nil {
			return err
		}
	}
	ep, err := s.GetEndpoint(ctx, herald.OperationalAppID, herald.OperationalEndpointID)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND && url == "":
		return nil // never configured
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		ep = &herald.Endpoint{
			ID: herald.OperationalEndpointID, AppID: herald.OperationalAppID, URL: url, Version: 1,
			Description: "Herald operational webhooks", Secrets: []herald.SigningSecret{{Key: secret}},
			CreatedAt: now, UpdatedAt: now,
		}
		err = s.CreateEndpoint(ctx, ep)
		if herald.ErrorCode(err) != herald.ECONFLICT { // a node starting with us created it: update it below
			if err != nil {
				return fmt.Errorf("create the operational endpoint: %w", err)
			}
			return nil
		}
		if ep, err = s.GetEndpoint(ctx, herald.OperationalAppID, herald.OperationalEndpointID); err != nil {
			return fmt.Errorf("read the operational endpoint: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read the operational endpoint: %w", err)
	}
	if url == "" {
		if ep.Disabled {
			return nil
		}
		ep.Disabled, ep.UpdatedAt = true, now
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			return fmt.Errorf("disable the operational endpoint: %w", err)
		}
		return nil
	}
	if !ep.Disabled && ep.URL == url && len(ep.Secrets) == 1 && bytes.Equal(ep.Secrets[0].Key, secret) {
		return nil
	}
	ep.URL, ep.Disabled, ep.UpdatedAt = url, false, now
	ep.Secrets = []herald.SigningSecret{{Key: secret}}
	if err := s.UpdateEndpoint(ctx, ep); err != nil {
		return fmt.Errorf("update the operational endpoint: %w", err)
	}
	return nil
}

// ensureOperationalApp creates the operational application if it is
// missing.
func ensureOperationalApp(ctx context.Context, s OperationalStore, now time.Time) error {
	_, err := s.GetApplication(ctx, herald.OperationalAppID)
	if herald.ErrorCode(err) != herald.ENOTFOUND {
		if err != nil {
			return fmt.Errorf("read the operational application: %w", err)
		}
		return nil
	}
	err = s.CreateApplication(ctx, &herald.Application{ID: herald.OperationalAppID, Name: "Herald operational webhooks",
		CreatedAt: now, UpdatedAt: now})
	if err != nil && herald.ErrorCode(err) != herald.ECONFLICT {
		return fmt.Errorf("create the operational application: %w", err)
	}
	return nil
}
