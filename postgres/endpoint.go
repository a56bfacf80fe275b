package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

const endpointColumns = `id, app_id, uid, url, description, version, disabled, filter_types, channels, rate_limit, metadata, headers, secrets, created_at, updated_at, ordering, failing_since, sealed_headers`

// endpointArgs are an endpoint's column values, its secrets and headers
// sealed. The plaintext headers column is always written NULL (see
// migrations/0008_sealed_headers.sql).
type endpointArgs struct {
	// url is the endpoint's URL with its password, if any, masked: the
	// password is sealed with the headers.
	url                     string
	uid, metadata, ordering *string
	rateLimit               *int32
	filterTypes, channels   []string
	secrets, headers        []byte
}

// encodeEndpoint returns ep's column values, sealing its secrets and
// headers with the endpoint ID as additional data so a sealed value cannot
// be moved to another row.
func (s *Store) encodeEndpoint(ep *herald.Endpoint) (endpointArgs, error) {
	var a endpointArgs
	var err error
	a.uid = nullString(ep.UID)
	a.rateLimit = nullUint16(ep.RateLimit)
	a.ordering = nullString(string(ep.Ordering))
	a.filterTypes = nullList(ep.FilterTypes)
	a.channels = nullList(ep.Channels)
	if a.metadata, err = jsonMap(ep.Metadata); err != nil {
		return a, err
	}
	if a.url, a.headers, err = herald.SealEndpointHeaders(s.keyring, ep); err != nil {
		return a, err
	}
	a.secrets, err = s.sealSecrets(ep.ID, ep.Secrets)
	return a, err
}

// sealSecrets seals an endpoint's secrets in the format every store keeps.
func (s *Store) sealSecrets(id string, secrets []herald.SigningSecret) ([]byte, error) {
	return herald.SealSecrets(s.keyring, id, secrets)
}

// openSecrets is the inverse of sealSecrets.
func (s *Store) openSecrets(id string, sealed []byte) ([]herald.SigningSecret, error) {
	return herald.OpenSecrets(s.keyring, id, sealed)
}

// CreateEndpoint stores ep. An unknown application is ENOTFOUND; a taken ID
// or uid (within the application) is ECONFLICT.
func (s *Store) CreateEndpoint(ctx context.Context, ep *herald.Endpoint) error {
	a, err := s.encodeEndpoint(ep)
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	err = s.change(ctx, &auditTarget{"endpoint.create", herald.AuditEndpoint, ep.ID, ep.AppID}, func(db execer) error {
		_, err := db.Exec(ctx, `INSERT INTO endpoint (`+endpointColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $15, $16, $17)`,
			ep.ID, ep.AppID, a.uid, a.url, ep.Description, ep.Version, ep.Disabled, a.filterTypes, a.channels,
			a.rateLimit, a.metadata, a.secrets, ep.CreatedAt, ep.UpdatedAt, a.ordering, nullTime(ep.FailingSince), a.headers)
		return err
	})
	if isForeignKey(err) {
		err = errAppNotFound
	}
	if err != nil {
		return s.fail("create endpoint", err)
	}
	return nil
}

// GetEndpoint returns the endpoint of application appID whose ID, or else
// uid, is ref.
func (s *Store) GetEndpoint(ctx context.Context, appID, ref string) (*herald.Endpoint, error) {
	ep, err := s.scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoint
		WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1`, appID, ref))
	if err != nil {
		return nil, s.fail("get endpoint", notFound(err, errEndpointNotFound))
	}
	return ep, nil
}

// ListEndpoints returns a page of application appID's endpoints ordered by
// ID; an unknown application has none.
func (s *Store) ListEndpoints(ctx context.Context, appID string, opts herald.ListOptions) ([]*herald.Endpoint, error) {
	var q query
	q.add(`SELECT ` + endpointColumns + ` FROM endpoint WHERE app_id = ` + q.arg(appID))
	q.add(q.page("id", opts))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, s.scanEndpoint)
	if err != nil {
		return nil, s.fail("list endpoints", err)
	}
	return out, nil
}

// UpdateEndpoint replaces every mutable field of the endpoint, headers,
// secrets and ordering included; CreatedAt and FailingSince are kept as
// stored, except that enabling a disabled endpoint clears FailingSince. A
// change of Disabled queues endpoint.disabled (manual) or endpoint.enabled
// in the same transaction, at ep.UpdatedAt. The row is locked first, so
// two updates at once report one change once.
func (s *Store) UpdateEndpoint(ctx context.Context, ep *herald.Endpoint) error {
	return s.updateEndpoint(ctx, ep, false)
}

// UpdateEndpointKeepDisabled is UpdateEndpoint keeping the stored Disabled,
// which it reads from the locked row and sets ep.Disabled to.
func (s *Store) UpdateEndpointKeepDisabled(ctx context.Context, ep *herald.Endpoint) error {
	return s.updateEndpoint(ctx, ep, true)
}

func (s *Store) updateEndpoint(ctx context.Context, ep *herald.Endpoint, keepDisabled bool) error {
	a, err := s.encodeEndpoint(ep)
	if err != nil {
		return fmt.Errorf("update endpoint: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			wasDisabled  bool
			failingSince pgtype.Timestamptz
		)
		err := tx.QueryRow(ctx, `SELECT disabled, failing_since FROM endpoint WHERE app_id = $1 AND id = $2 FOR UPDATE`,
			ep.AppID, ep.ID).Scan(&wasDisabled, &failingSince)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		if keepDisabled {
			ep.Disabled = wasDisabled
		}
		return s.writeEndpoint(ctx, tx, ep, &a, wasDisabled, fromNullTime(failingSince))
	})
	if err != nil {
		return s.fail("update endpoint", err)
	}
	return nil
}

// UpdateEndpointFunc reads the endpoint FOR UPDATE, lets update change it
// and writes it back, in one transaction (see herald.Store).
func (s *Store) UpdateEndpointFunc(ctx context.Context, appID, ref string, update func(*herald.Endpoint) error) (*herald.Endpoint, error) {
	var out *herald.Endpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ep, err := s.scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoint
			WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1 FOR UPDATE`, appID, ref))
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		stored, err := ep.ApplyUpdate(update)
		if err != nil {
			return err
		}
		a, err := s.encodeEndpoint(ep)
		if err != nil {
			return err
		}
		if err := s.writeEndpoint(ctx, tx, ep, &a, stored.Disabled, stored.FailingSince); err != nil {
			return err
		}
		if stored.Disabled && !ep.Disabled {
			ep.FailingSince = time.Time{}
		}
		out = ep
		return nil
	})
	if err != nil {
		return nil, s.fail("update endpoint", err)
	}
	return out, nil
}

// writeEndpoint writes every mutable field of ep (its column values a) in
// tx, with its audit record and, when Disabled changed from wasDisabled,
// its operational event; enabling clears failing_since, the stored
// failingSince.
func (s *Store) writeEndpoint(ctx context.Context, tx pgx.Tx, ep *herald.Endpoint, a *endpointArgs, wasDisabled bool, failingSince time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE endpoint SET uid = $1, url = $2, description = $3, version = $4, disabled = $5,
		filter_types = $6, channels = $7, rate_limit = $8, metadata = $9, headers = NULL, sealed_headers = $10, secrets = $11, ordering = $12,
		failing_since = CASE WHEN $13 THEN NULL ELSE failing_since END, updated_at = $14
		WHERE app_id = $15 AND id = $16`,
		a.uid, a.url, ep.Description, ep.Version, ep.Disabled, a.filterTypes, a.channels, a.rateLimit,
		a.metadata, a.headers, a.secrets, a.ordering, wasDisabled && !ep.Disabled, ep.UpdatedAt, ep.AppID, ep.ID)
	if err == nil {
		err = s.audit(ctx, tx, &auditTarget{"endpoint.update", herald.AuditEndpoint, ep.ID, ep.AppID})
	}
	if err != nil || wasDisabled == ep.Disabled {
		return err
	}
	return queueEvents(ctx, tx, []herald.OperationalEvent{herald.EndpointToggledEvent(ep, failingSince)})
}

// DeleteEndpoint deletes the endpoint; its deliveries and attempts go with
// it (ON DELETE CASCADE).
func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	// The endpoint's shared rate-limit bucket goes with it (see TakeTokens).
	err := s.change(ctx, &auditTarget{"endpoint.delete", herald.AuditEndpoint, id, appID}, func(db execer) error {
		tag, err := db.Exec(ctx, `WITH buckets AS (
				DELETE FROM rate_bucket WHERE key = $2 AND EXISTS (SELECT 1 FROM endpoint WHERE app_id = $1 AND id = $2))
			DELETE FROM endpoint WHERE app_id = $1 AND id = $2`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(tag, errEndpointNotFound)
	})
	if err != nil {
		return s.fail("delete endpoint", err)
	}
	return nil
}

// RotateEndpointSecret makes next the current secret, keeps the previous
// current one signing until graceUntil, drops secrets whose grace ended at
// now, and sets the endpoint's UpdatedAt to now; all in one transaction
// that locks the row, so two rotations at once never lose a secret.
func (s *Store) RotateEndpointSecret(ctx context.Context, appID, id string, next herald.SigningSecret, graceUntil, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var sealed []byte
		err := tx.QueryRow(ctx, `SELECT secrets FROM endpoint WHERE app_id = $1 AND id = $2 FOR UPDATE`, appID, id).Scan(&sealed)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		old, err := s.openSecrets(id, sealed)
		if err != nil {
			return err
		}
		rotated := make([]herald.SigningSecret, 0, len(old)+1)
		rotated = append(rotated, herald.SigningSecret{Key: next.Key, Type: next.Type})
		for _, sec := range old {
			if sec.ExpiresAt.IsZero() {
				sec.ExpiresAt = graceUntil
			}
			if now.Before(sec.ExpiresAt) {
				rotated = append(rotated, sec)
			}
		}
		if sealed, err = s.sealSecrets(id, rotated); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE endpoint SET secrets = $1, updated_at = $2 WHERE app_id = $3 AND id = $4`,
			sealed, now, appID, id)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, &auditTarget{"endpoint.secret.rotate", herald.AuditEndpoint, id, appID})
	})
	if err != nil {
		return s.fail("rotate endpoint secret", err)
	}
	return nil
}

func (s *Store) scanEndpoint(row pgx.Row) (*herald.Endpoint, error) {
	var (
		ep                    herald.Endpoint
		uid, ordering         *string
		failingSince          pgtype.Timestamptz
		rateLimit             *int32
		metadata, headers     []byte
		sealed, sealedHeaders []byte
		createdAt, updatedAt  time.Time
	)
	err := row.Scan(&ep.ID, &ep.AppID, &uid, &ep.URL, &ep.Description, &ep.Version, &ep.Disabled, &ep.FilterTypes,
		&ep.Channels, &rateLimit, &metadata, &headers, &sealed, &createdAt, &updatedAt, &ordering, &failingSince,
		&sealedHeaders)
	if err != nil {
		return nil, err
	}
	ep.UID = fromNullString(uid)
	ep.Ordering = herald.Ordering(fromNullString(ordering))
	ep.FailingSince = fromNullTime(failingSince)
	ep.RateLimit = fromNullUint16(rateLimit)
	ep.CreatedAt = createdAt.UTC()
	ep.UpdatedAt = updatedAt.UTC()
	if ep.Metadata, err = parseMap(metadata); err != nil {
		return nil, err
	}
	// Plaintext headers are newer than any sealed ones: only a Herald older
	// than header sealing writes them (during a rolling upgrade), and it
	// leaves sealed_headers as it was. ResealEndpoints seals them.
	// A broker URL's password is sealed with the headers (see
	// herald.SealEndpointHeaders).
	if ep.URL, ep.Headers, err = herald.OpenEndpointHeaders(s.keyring, ep.ID, ep.URL, sealedHeaders); err != nil {
		return nil, err
	}
	if headers != nil {
		if ep.Headers, err = parseMap(headers); err != nil {
			return nil, err
		}
	}
	if ep.Secrets, err = s.openSecrets(ep.ID, sealed); err != nil {
		return nil, err
	}
	return &ep, nil
}
