package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// Operational-webhook endpoints (Svix's operationalWebhookEndpoint API)
// are endpoints of the internal operational application
// (herald.OperationalAppID): signed, retried, rate-limited and recorded by
// the ordinary pipeline, and each receives the operational events its
// filter types accept (see the stores' queueEvents). The endpoint that
// --operational-webhook-url configures (herald.OperationalEndpointID) is
// not shown here: its settings are the flags', written again at every
// start, so a change through the API would be silently undone.

// opEndpointOut is Svix's OperationalWebhookEndpointOut, with both names of
// the rate.
type opEndpointOut struct {
	ID           string            `json:"id"`
	UID          *string           `json:"uid,omitempty"`
	Description  string            `json:"description"`
	URL          string            `json:"url"`
	Disabled     bool              `json:"disabled"`
	FilterTypes  []string          `json:"filterTypes,omitempty"`
	RateLimit    *uint16           `json:"rateLimit,omitempty"`
	ThrottleRate *uint16           `json:"throttleRate,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"createdAt"`
	UpdatedAt    string            `json:"updatedAt"`
}

func toOpEndpointOut(ep *herald.Endpoint) opEndpointOut {
	return opEndpointOut{
		ID:           ep.ID,
		UID:          optString(ep.UID),
		Description:  ep.Description,
		URL:          ep.URL,
		Disabled:     ep.Disabled,
		FilterTypes:  ep.FilterTypes,
		RateLimit:    ep.RateLimit,
		ThrottleRate: ep.RateLimit,
		Metadata:     nonNilMap(ep.Metadata),
		CreatedAt:    formatTime(ep.CreatedAt),
		UpdatedAt:    formatTime(ep.UpdatedAt),
	}
}

// errOpEndpointHidden is what looking the flag's endpoint up through the
// API answers: the same as for an endpoint that does not exist.
var errOpEndpointHidden = herald.Errorf(herald.ENOTFOUND, "Endpoint not found.")

// decodeOpEndpoint reads an OperationalWebhookEndpointIn (withSecret) or
// OperationalWebhookEndpointUpdate into the endpoint form, ignoring the
// fields only application endpoints have (version, channels, headers,
// ordering, the old name eventTypes), as unknown fields are ignored.
func (a *API) decodeOpEndpoint(r *http.Request, withSecret bool) (*endpointIn, *herald.SigningSecret, error) {
	var in endpointIn
	var v validation
	var secret *herald.SigningSecret
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		in.Version, in.EventTypes, in.Channels, in.Headers, in.Ordering = nil, nil, nil, nil, nil
		if !withSecret {
			in.Secret = nil
		}
		in.validate(&v, true, a.allowPrivate)
		secret = v.checkSecret(in.Secret, "body", "secret")
	})
	return &in, secret, err
}

// lookupOpEndpoint resolves the path's endpoint_id (ID or uid) among the
// operational endpoints.
func (a *API) lookupOpEndpoint(r *http.Request) (*herald.Endpoint, error) {
	ep, err := a.store.GetEndpoint(r.Context(), herald.OperationalAppID, r.PathValue("endpoint_id"))
	if err == nil && ep.ID == herald.OperationalEndpointID {
		err = errOpEndpointHidden
	}
	if err != nil {
		return nil, fmt.Errorf("get operational endpoint: %w", err)
	}
	return ep, nil
}

// opScope is the application of the operational-endpoint routes.
func opScope(*http.Request) (string, error) { return herald.OperationalAppID, nil }

func (a *API) listOpEndpoints(w http.ResponseWriter, r *http.Request) error {
	p, v := parsePage(r.URL.Query(), herald.Ascending, endpointCursor)
	if err := v.err(); err != nil {
		return err
	}
	// One row more than paginate asks for, so that a page from which the
	// flag's endpoint was dropped still tells whether more rows exist.
	opts := p.options()
	opts.Limit++
	eps, err := a.store.ListEndpoints(r.Context(), herald.OperationalAppID, opts)
	if err != nil {
		return fmt.Errorf("list operational endpoints: %w", err)
	}
	for i, ep := range eps {
		if ep.ID == herald.OperationalEndpointID {
			eps = append(eps[:i], eps[i+1:]...)
			break
		}
	}
	if len(eps) > p.limit+1 {
		eps = eps[:p.limit+1]
	}
	return writeJSON(w, http.StatusOK, paginate(p, eps,
		func(ep *herald.Endpoint) string { return ep.ID }, toOpEndpointOut))
}

func (a *API) createOpEndpoint(w http.ResponseWriter, r *http.Request) error {
	in, secret, err := a.decodeOpEndpoint(r, true)
	if err != nil {
		return err
	}
	if err := a.ensureOperationalApp(r.Context()); err != nil {
		return err
	}
	ep, err := a.insertEndpoint(r, herald.OperationalAppID, in, secret, "")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, toOpEndpointOut(ep))
}

// ensureOperationalApp creates the internal operational application if it
// is missing (no --operational-webhook-url has ever been set). It is
// Herald's own doing, not the caller's change: the endpoint created next
// is recorded in the audit log, the application is not.
func (a *API) ensureOperationalApp(ctx context.Context) error {
	if h, ok := a.store.(operationalHidden); ok {
		if _, err := h.Store.GetApplication(ctx, herald.OperationalAppID); err == nil {
			return nil
		}
	}
	now := a.now().UTC()
	err := a.store.CreateApplication(herald.WithoutAuditActor(ctx), &herald.Application{ID: herald.OperationalAppID,
		Name: "Herald operational webhooks", CreatedAt: now, UpdatedAt: now})
	if err != nil && herald.ErrorCode(err) != herald.ECONFLICT {
		return fmt.Errorf("create the operational application: %w", err)
	}
	return nil
}

func (a *API) getOpEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := a.lookupOpEndpoint(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toOpEndpointOut(ep))
}

// putOpEndpoint replaces an operational endpoint's fields (not its secret
// or headers, nor disabled when the body leaves it out). Unlike an
// application endpoint's PUT it does not create: Svix's update of an
// operational endpoint answers 404 for one that does not exist.
func (a *API) putOpEndpoint(w http.ResponseWriter, r *http.Request) error {
	in, _, err := a.decodeOpEndpoint(r, false)
	if err != nil {
		return err
	}
	ep, err := a.changeEndpoint(r, herald.OperationalAppID, r.PathValue("endpoint_id"), in.Disabled != nil, func(ep *herald.Endpoint) error {
		in.applyReplace(ep)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toOpEndpointOut(ep))
}

func (a *API) deleteOpEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := a.lookupOpEndpoint(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteEndpoint(r.Context(), ep.AppID, ep.ID); err != nil {
		return fmt.Errorf("delete operational endpoint: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getOpEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	return a.writeEndpointSecret(w, r, a.lookupOpEndpoint)
}

func (a *API) rotateOpEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	return a.rotateSecret(w, r, a.lookupOpEndpoint)
}

func (a *API) getOpEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	return a.writeEndpointHeaders(w, r, a.lookupOpEndpoint)
}

func (a *API) putOpEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	return a.changeEndpointHeaders(w, r, false, opScope)
}
