package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald"
)

const endpointColumns = `id, app_id, uid, url, description, version, disabled, filter_types, channels, rate_limit, metadata, headers, secrets, created_at, updated_at, ordering, failing_since, sealed_headers`

// endpointArgs are an endpoint's column values, its secrets and headers
// sealed. The plaintext headers column is always written NULL (see
// migrations/0010_sealed_headers.sql).
type endpointArgs struct {
	// url is the endpoint's URL with its password, if any, masked: the
	// password is sealed with the headers.
	url                                                       string
	uid, filterTypes, channels, rateLimit, metadata, ordering any
	secrets, headers                                          []byte
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
	if a.filterTypes, err = jsonList(ep.FilterTypes); err != nil {
		return a, err
	}
	if a.channels, err = jsonList(ep.Channels); err != nil {
		return a, err
	}
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
	err = s.change(ctx, &auditTarget{"endpoint.create", herald.AuditEndpoint, ep.ID, ep.AppID}, func(ctx context.Context, db execer) error {
		_, err := db.ExecContext(ctx, `INSERT INTO endpoint (`+endpointColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)`,
			ep.ID, ep.AppID, a.uid, a.url, ep.Description, ep.Version, ep.Disabled, a.filterTypes, a.channels,
			a.rateLimit, a.metadata, a.secrets, micros(ep.CreatedAt), micros(ep.UpdatedAt), a.ordering,
			nullMicros(ep.FailingSince), a.headers)
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
	ep, err := s.scanEndpoint(s.r.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoint WHERE app_id = ? AND id = ?`, appID, ref))
	if err == sql.ErrNoRows {
		ep, err = s.scanEndpoint(s.r.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoint WHERE app_id = ? AND uid = ?`, appID, ref))
	}
	if err != nil {
		return nil, s.fail("get endpoint", notFound(err, errEndpointNotFound))
	}
	return ep, nil
}

// ListEndpoints returns a page of application appID's endpoints ordered by
// ID; an unknown application has none.
func (s *Store) ListEndpoints(ctx context.Context, appID string, opts herald.ListOptions) ([]*herald.Endpoint, error) {
	cond, order := pageClause("id", opts)
	args := make([]any, 0, 3)
	args = append(args, appID)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	args = append(args, limit(opts))
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoint WHERE app_id = ?`+cond+order+` LIMIT ?`, args...)
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
// in the same transaction, at ep.UpdatedAt.
func (s *Store) UpdateEndpoint(ctx context.Context, ep *herald.Endpoint) error {
	return s.updateEndpoint(ctx, ep, false)
}

// UpdateEndpointKeepDisabled is UpdateEndpoint keeping the stored Disabled,
// which it reads in the write transaction and sets ep.Disabled to.
func (s *Store) UpdateEndpointKeepDisabled(ctx context.Context, ep *herald.Endpoint) error {
	return s.updateEndpoint(ctx, ep, true)
}

func (s *Store) updateEndpoint(ctx context.Context, ep *herald.Endpoint, keepDisabled bool) error {
	a, err := s.encodeEndpoint(ep)
	if err != nil {
		return fmt.Errorf("update endpoint: %w", err)
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var (
			wasDisabled  bool
			failingSince sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT disabled, failing_since FROM endpoint WHERE app_id = ? AND id = ?`,
			ep.AppID, ep.ID).Scan(&wasDisabled, &failingSince)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		if keepDisabled {
			ep.Disabled = wasDisabled
		}
		return s.writeEndpoint(ctx, tx, ep, &a, wasDisabled, fromNullMicros(failingSince))
	})
	if err != nil {
		return s.fail("update endpoint", err)
	}
	return nil
}

// UpdateEndpointFunc reads the endpoint in the write transaction, lets
// update change it and writes it back there (see herald.Store).
func (s *Store) UpdateEndpointFunc(ctx context.Context, appID, ref string, update func(*herald.Endpoint) error) (*herald.Endpoint, error) {
	var out *herald.Endpoint
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ep, err := s.scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoint WHERE app_id = ? AND id = ?`, appID, ref))
		if err == sql.ErrNoRows {
			ep, err = s.scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoint WHERE app_id = ? AND uid = ?`, appID, ref))
		}
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
func (s *Store) writeEndpoint(ctx context.Context, tx *sql.Tx, ep *herald.Endpoint, a *endpointArgs, wasDisabled bool, failingSince time.Time) error {
	enabled := wasDisabled && !ep.Disabled
	_, err := tx.ExecContext(ctx, `UPDATE endpoint SET uid = ?, url = ?, description = ?, version = ?, disabled = ?,
		filter_types = ?, channels = ?, rate_limit = ?, metadata = ?, headers = NULL, sealed_headers = ?, secrets = ?, ordering = ?,
		failing_since = CASE WHEN ? THEN NULL ELSE failing_since END, updated_at = ?
		WHERE app_id = ? AND id = ?`,
		a.uid, a.url, ep.Description, ep.Version, ep.Disabled, a.filterTypes, a.channels, a.rateLimit,
		a.metadata, a.headers, a.secrets, a.ordering, enabled, micros(ep.UpdatedAt), ep.AppID, ep.ID)
	if err == nil {
		err = s.audit(ctx, tx, &auditTarget{"endpoint.update", herald.AuditEndpoint, ep.ID, ep.AppID})
	}
	if err != nil || wasDisabled == ep.Disabled {
		return err
	}
	return s.queueEvents(ctx, tx, []herald.OperationalEvent{herald.EndpointToggledEvent(ep, failingSince)})
}

// DeleteEndpoint deletes the endpoint; its deliveries and attempts go with
// it (ON DELETE CASCADE).
func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	err := s.change(ctx, &auditTarget{"endpoint.delete", herald.AuditEndpoint, id, appID}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `DELETE FROM endpoint WHERE app_id = ? AND id = ?`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(res, errEndpointNotFound)
	})
	if err != nil {
		return s.fail("delete endpoint", err)
	}
	return nil
}

// RotateEndpointSecret makes next the current secret, keeps the previous
// current one signing until graceUntil, drops secrets whose grace ended at
// now, and sets the endpoint's UpdatedAt to now; all in one transaction.
func (s *Store) RotateEndpointSecret(ctx context.Context, appID, id string, next herald.SigningSecret, graceUntil, now time.Time) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var sealed []byte
		err := tx.QueryRowContext(ctx, `SELECT secrets FROM endpoint WHERE app_id = ? AND id = ?`, appID, id).Scan(&sealed)
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
		_, err = tx.ExecContext(ctx, `UPDATE endpoint SET secrets = ?, updated_at = ? WHERE app_id = ? AND id = ?`,
			sealed, micros(now), appID, id)
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

func (s *Store) scanEndpoint(row scanner) (*herald.Endpoint, error) {
	var (
		ep                                            herald.Endpoint
		uid, filterTypes, channels, metadata, headers sql.NullString
		rateLimit, failingSince                       sql.NullInt64
		ordering                                      sql.NullString
		sealed, sealedHeaders                         []byte
		createdAt, updatedAt                          int64
	)
	err := row.Scan(&ep.ID, &ep.AppID, &uid, &ep.URL, &ep.Description, &ep.Version, &ep.Disabled, &filterTypes,
		&channels, &rateLimit, &metadata, &headers, &sealed, &createdAt, &updatedAt, &ordering, &failingSince,
		&sealedHeaders)
	if err != nil {
		return nil, err
	}
	ep.UID = uid.String
	ep.Ordering = herald.Ordering(ordering.String)
	ep.FailingSince = fromNullMicros(failingSince)
	ep.RateLimit = fromNullUint16(rateLimit)
	ep.CreatedAt = fromMicros(createdAt)
	ep.UpdatedAt = fromMicros(updatedAt)
	if ep.FilterTypes, err = parseList(filterTypes); err != nil {
		return nil, err
	}
	if ep.Channels, err = parseList(channels); err != nil {
		return nil, err
	}
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
	if headers.Valid {
		if ep.Headers, err = parseMap(headers); err != nil {
			return nil, err
		}
	}
	if ep.Secrets, err = s.openSecrets(ep.ID, sealed); err != nil {
		return nil, err
	}
	return &ep, nil
}
