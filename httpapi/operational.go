package httpapi

import (
	"context"

	"github.com/herald-webhooks/herald"
)

// operationalHidden is the store as the API sees it: without the internal
// application that carries Herald's operational webhooks
// (herald.OperationalAppID). The API neither lists it nor serves anything
// under it, so its endpoint, messages and attempts are out of reach of
// every route: their only settings are herald serve's flags.
type operationalHidden struct {
	herald.Store
}

// hideOperational wraps s so that the operational application is hidden.
func hideOperational(s herald.Store) herald.Store { return operationalHidden{s} }

// errOperationalHidden is what looking the operational application up
// answers: the same as for an application that does not exist.
var errOperationalHidden = herald.Errorf(herald.ENOTFOUND, "Application not found.")

// GetApplication answers not found for the operational application.
func (s operationalHidden) GetApplication(ctx context.Context, ref string) (*herald.Application, error) {
	if ref == herald.OperationalAppID {
		return nil, errOperationalHidden
	}
	app, err := s.Store.GetApplication(ctx, ref)
	if err == nil && app.ID == herald.OperationalAppID {
		return nil, errOperationalHidden
	}
	return app, err
}

// UpdateApplicationFunc answers not found for the operational
// application, changing nothing.
func (s operationalHidden) UpdateApplicationFunc(ctx context.Context, ref string, update func(*herald.Application) error) (*herald.Application, error) {
	if ref == herald.OperationalAppID {
		return nil, errOperationalHidden
	}
	return s.Store.UpdateApplicationFunc(ctx, ref, func(app *herald.Application) error {
		if app.ID == herald.OperationalAppID {
			return errOperationalHidden
		}
		return update(app)
	})
}

// ListApplications lists every application but the operational one. It
// asks for one more row than the page holds, so that a page from which the
// operational application was dropped is still full when more rows exist.
func (s operationalHidden) ListApplications(ctx context.Context, opts herald.ListOptions) ([]*herald.Application, error) {
	limit := opts.Limit
	opts.Limit++
	apps, err := s.Store.ListApplications(ctx, opts)
	if err != nil {
		return nil, err
	}
	for i, app := range apps {
		if app.ID == herald.OperationalAppID {
			apps = append(apps[:i], apps[i+1:]...)
			break
		}
	}
	if len(apps) > max(limit, 1) {
		apps = apps[:max(limit, 1)]
	}
	return apps, nil
}
