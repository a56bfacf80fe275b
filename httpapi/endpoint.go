package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// endpointIn is Svix's EndpointIn, EndpointUpdate and EndpointPatch. Both
// generations of names are read: filterTypes/eventTypes and
// rateLimit/throttleRate.
type endpointIn struct {
	URL          *string            `json:"url"`
	Description  *string            `json:"description"`
	UID          *string            `json:"uid"`
	Version      *int               `json:"version"`
	Disabled     *bool              `json:"disabled"`
	FilterTypes  []string           `json:"filterTypes"`
	EventTypes   []string           `json:"eventTypes"`
	Channels     []string           `json:"channels"`
	RateLimit    *uint16            `json:"rateLimit"`
	ThrottleRate *uint16            `json:"throttleRate"`
	Metadata     map[string]string  `json:"metadata"`
	Secret       *string            `json:"secret"`
	Headers      map[string]*string `json:"headers"`
}

// endpointOut is Svix's EndpointOut, with both names of renamed fields.
type endpointOut struct {
	ID           string            `json:"id"`
	URL          string            `json:"url"`
	Description  string            `json:"description"`
	UID          *string           `json:"uid,omitempty"`
	Version      int               `json:"version"`
	Disabled     bool              `json:"disabled"`
	FilterTypes  []string          `json:"filterTypes,omitempty"`
	EventTypes   []string          `json:"eventTypes,omitempty"`
	Channels     []string          `json:"channels,omitempty"`
	RateLimit    *uint16           `json:"rateLimit,omitempty"`
	ThrottleRate *uint16           `json:"throttleRate,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"createdAt"`
	UpdatedAt    string            `json:"updatedAt"`
}

func toEndpointOut(ep *herald.Endpoint) endpointOut {
	return endpointOut{
		ID:           ep.ID,
		URL:          ep.URL,
		Description:  ep.Description,
		UID:          optString(ep.UID),
		Version:      ep.Version,
		Disabled:     ep.Disabled,
		FilterTypes:  ep.FilterTypes,
		EventTypes:   ep.FilterTypes,
		Channels:     ep.Channels,
		RateLimit:    ep.RateLimit,
		ThrottleRate: ep.RateLimit,
		Metadata:     nonNilMap(ep.Metadata),
		CreatedAt:    formatTime(ep.CreatedAt),
		UpdatedAt:    formatTime(ep.UpdatedAt),
	}
}

// filterTypes returns the filter types under either name, filterTypes first.
func (in *endpointIn) filterTypes() []string {
	if in.FilterTypes != nil {
		return in.FilterTypes
	}
	return in.EventTypes
}

// validate checks the fields present; requireURL is set for POST and PUT.
func (in *endpointIn) validate(v *validation, requireURL bool) {
	if in.URL != nil || requireURL {
		v.checkURL(derefString(in.URL), "body", "url")
	}
	v.checkOptionalName(in.UID, "body", "uid")
	v.checkVersion(in.Version, "body", "version")
	v.checkNames(in.FilterTypes, "body", "filterTypes")
	v.checkNames(in.EventTypes, "body", "eventTypes")
	v.checkChannels(in.Channels, "body", "channels")
	checkRate(v, in.RateLimit, 0, []string{"body", "rateLimit"})
	checkRate(v, in.ThrottleRate, 0, []string{"body", "throttleRate"})
	v.checkHeaders(in.Headers, false, "body", "headers")
}

// applyReplace sets every field a POST or PUT replaces.
func (in *endpointIn) applyReplace(ep *herald.Endpoint) {
	ep.URL = *in.URL
	ep.Description = derefString(in.Description)
	if in.UID != nil {
		ep.UID = *in.UID
	}
	ep.Version = 1
	if in.Version != nil {
		ep.Version = *in.Version
	}
	ep.Disabled = in.Disabled != nil && *in.Disabled
	ep.FilterTypes = emptyToNil(in.filterTypes())
	ep.Channels = emptyToNil(in.Channels)
	ep.RateLimit = pickRate(in.RateLimit, in.ThrottleRate)
	ep.Metadata = nonNilMap(in.Metadata)
}

func emptyToNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// newEndpoint builds an endpoint from a validated EndpointIn, with the
// given secret or a random one.
func (a *API) newEndpoint(appID string, in *endpointIn, secret []byte, uid string) (*herald.Endpoint, error) {
	if secret == nil {
		var err error
		if secret, err = newSecret(); err != nil {
			return nil, err
		}
	}
	now := a.now().UTC()
	ep := &herald.Endpoint{
		ID:        herald.NewIDAt(herald.PrefixEndpoint, now),
		AppID:     appID,
		UID:       uid,
		Secrets:   []herald.SigningSecret{{Key: secret}},
		Headers:   map[string]string{},
		CreatedAt: now,
		UpdatedAt: now,
	}
	in.applyReplace(ep)
	for name, value := range in.Headers {
		ep.Headers[name] = *value
	}
	return ep, nil
}

// lookupApp resolves the path's app_id (an ID or uid).
func (a *API) lookupApp(r *http.Request) (*herald.Application, error) {
	app, err := a.store.GetApplication(r.Context(), r.PathValue("app_id"))
	if err != nil {
		return nil, fmt.Errorf("get application: %w", err)
	}
	return app, nil
}

// lookupEndpoint resolves the path's app_id and endpoint_id.
func (a *API) lookupEndpoint(r *http.Request) (*herald.Endpoint, error) {
	app, err := a.lookupApp(r)
	if err != nil {
		return nil, err
	}
	ep, err := a.store.GetEndpoint(r.Context(), app.ID, r.PathValue("endpoint_id"))
	if err != nil {
		return nil, fmt.Errorf("get endpoint: %w", err)
	}
	return ep, nil
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request) {
	p, v := parsePage(r.URL.Query(), herald.Ascending)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.lookupApp(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eps, err := a.store.ListEndpoints(r.Context(), app.ID, p.options())
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list endpoints: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, paginate(p, eps,
		func(ep *herald.Endpoint) string { return ep.ID }, toEndpointOut))
}

func (a *API) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var in endpointIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	in.validate(&v, true)
	secret := v.checkSecret(in.Secret, "body", "secret")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.lookupApp(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ep, err := a.newEndpoint(app.ID, &in, secret, "")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.store.CreateEndpoint(r.Context(), ep); err != nil {
		a.writeError(w, r, fmt.Errorf("create endpoint: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, toEndpointOut(ep))
}

func (a *API) getEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toEndpointOut(ep))
}

// putEndpoint replaces an endpoint's fields (not its secret or headers), or
// creates it (201) with the path's endpoint_id as its uid.
func (a *API) putEndpoint(w http.ResponseWriter, r *http.Request) {
	var in endpointIn
	if _, err := decodeJSON(r, &in, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	in.Headers, in.Secret = nil, nil // not part of EndpointUpdate
	var v validation
	in.validate(&v, true)
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	app, err := a.lookupApp(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ref := r.PathValue("endpoint_id")
	ep, err := a.store.GetEndpoint(r.Context(), app.ID, ref)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		a.createEndpointAt(w, r, app.ID, ref, &in)
		return
	case err != nil:
		a.writeError(w, r, fmt.Errorf("get endpoint: %w", err))
		return
	}
	in.applyReplace(ep)
	ep.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateEndpoint(r.Context(), ep); err != nil {
		a.writeError(w, r, fmt.Errorf("update endpoint: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toEndpointOut(ep))
}

// createEndpointAt is PUT's create branch: the path's ref becomes the uid.
func (a *API) createEndpointAt(w http.ResponseWriter, r *http.Request, appID, ref string, in *endpointIn) {
	uid := ref
	if in.UID != nil {
		uid = *in.UID
	} else {
		var pv validation
		pv.checkName(ref, "path", "endpoint_id")
		if err := pv.err(); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	ep, err := a.newEndpoint(appID, in, nil, uid)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.store.CreateEndpoint(r.Context(), ep); err != nil {
		a.writeError(w, r, fmt.Errorf("create endpoint: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, toEndpointOut(ep))
}

// patchEndpoint changes only the fields present; null clears uid, filter
// types, channels and the rate. A given secret replaces the current one at
// once (use rotate for a grace period).
func (a *API) patchEndpoint(w http.ResponseWriter, r *http.Request) {
	var in endpointIn
	fields, err := decodeJSON(r, &in, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	in.Headers = nil // not part of EndpointPatch
	var v validation
	if present(fields, "url") && in.URL == nil {
		v.add("value is not a valid URL", "body", "url")
	}
	in.validate(&v, false)
	secret := v.checkSecret(in.Secret, "body", "secret")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	in.applyPatch(ep, fields)
	if secret != nil {
		ep.Secrets = []herald.SigningSecret{{Key: secret}}
	}
	ep.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateEndpoint(r.Context(), ep); err != nil {
		a.writeError(w, r, fmt.Errorf("update endpoint: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, toEndpointOut(ep))
}

// applyPatch sets the fields present in a PATCH body.
func (in *endpointIn) applyPatch(ep *herald.Endpoint, fields map[string]json.RawMessage) {
	if in.URL != nil {
		ep.URL = *in.URL
	}
	if in.Description != nil {
		ep.Description = *in.Description
	}
	if present(fields, "uid") {
		ep.UID = derefString(in.UID)
	}
	if in.Version != nil {
		ep.Version = *in.Version
	}
	if in.Disabled != nil {
		ep.Disabled = *in.Disabled
	}
	if present(fields, "filterTypes") || present(fields, "eventTypes") {
		ep.FilterTypes = emptyToNil(in.filterTypes())
	}
	if present(fields, "channels") {
		ep.Channels = emptyToNil(in.Channels)
	}
	if present(fields, "throttleRate") {
		ep.RateLimit = in.ThrottleRate
	} else if present(fields, "rateLimit") {
		ep.RateLimit = in.RateLimit
	}
	if in.Metadata != nil {
		ep.Metadata = in.Metadata
	}
}

func (a *API) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.store.DeleteEndpoint(r.Context(), ep.AppID, ep.ID); err != nil {
		a.writeError(w, r, fmt.Errorf("delete endpoint: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type endpointSecretOut struct {
	Key string `json:"key"`
}

func (a *API) getEndpointSecret(w http.ResponseWriter, r *http.Request) {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(ep.Secrets) == 0 {
		a.writeError(w, r, fmt.Errorf("endpoint %s has no secret", ep.ID))
		return
	}
	writeJSON(w, http.StatusOK, endpointSecretOut{Key: formatSecret(ep.Secrets[0].Key)})
}

// Secret rotation grace period bounds, in seconds.
const (
	defaultGraceSeconds = 24 * 60 * 60
	maxGraceSeconds     = 7 * 24 * 60 * 60
)

type secretRotateIn struct {
	Key                *string `json:"key"`
	GracePeriodSeconds *int64  `json:"gracePeriodSeconds"`
}

// rotateEndpointSecret makes the given (or a new) key current; the old one
// keeps signing for the grace period.
func (a *API) rotateEndpointSecret(w http.ResponseWriter, r *http.Request) {
	var in secretRotateIn
	if _, err := decodeJSON(r, &in, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	next := v.checkSecret(in.Key, "body", "key")
	grace := int64(defaultGraceSeconds)
	if in.GracePeriodSeconds != nil {
		grace = *in.GracePeriodSeconds
		if grace < 0 || grace > maxGraceSeconds {
			v.add("ensure this value is between 0 and 604800", "body", "gracePeriodSeconds")
		}
	}
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if next == nil {
		if next, err = newSecret(); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	now := a.now().UTC()
	graceUntil := now.Add(time.Duration(grace) * time.Second)
	if err := a.store.RotateEndpointSecret(r.Context(), ep.AppID, ep.ID, next, graceUntil, now); err != nil {
		a.writeError(w, r, fmt.Errorf("rotate endpoint secret: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type endpointHeadersOut struct {
	Headers   map[string]string `json:"headers"`
	Sensitive []string          `json:"sensitive"`
}

type endpointHeadersIn struct {
	Headers       map[string]*string `json:"headers"`
	DeleteHeaders []string           `json:"deleteHeaders"`
}

// getEndpointHeaders shows the custom headers, withholding the values of
// sensitive ones and listing their names instead.
func (a *API) getEndpointHeaders(w http.ResponseWriter, r *http.Request) {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := endpointHeadersOut{Headers: map[string]string{}, Sensitive: []string{}}
	for name, value := range ep.Headers {
		if sensitiveHeader(name) {
			out.Sensitive = append(out.Sensitive, name)
		} else {
			out.Headers[name] = value
		}
	}
	slices.Sort(out.Sensitive)
	writeJSON(w, http.StatusOK, out)
}

// putEndpointHeaders replaces every custom header.
func (a *API) putEndpointHeaders(w http.ResponseWriter, r *http.Request) {
	a.changeEndpointHeaders(w, r, false)
}

// patchEndpointHeaders merges headers: a null value (or a name in
// deleteHeaders) removes a header, names match case-insensitively.
func (a *API) patchEndpointHeaders(w http.ResponseWriter, r *http.Request) {
	a.changeEndpointHeaders(w, r, true)
}

func (a *API) changeEndpointHeaders(w http.ResponseWriter, r *http.Request, merge bool) {
	var in endpointHeadersIn
	fields, err := decodeJSON(r, &in, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var v validation
	if !present(fields, "headers") || isNull(fields["headers"]) {
		v.add("field required", "body", "headers")
	}
	v.checkHeaders(in.Headers, merge, "body", "headers")
	if err := v.err(); err != nil {
		a.writeError(w, r, err)
		return
	}
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	headers := map[string]string{}
	if merge {
		for name, value := range ep.Headers {
			headers[name] = value
		}
	}
	for _, name := range in.DeleteHeaders {
		deleteHeader(headers, name)
	}
	for name, value := range in.Headers {
		deleteHeader(headers, name)
		if value != nil {
			headers[name] = *value
		}
	}
	ep.Headers = headers
	ep.UpdatedAt = a.now().UTC()
	if err := a.store.UpdateEndpoint(r.Context(), ep); err != nil {
		a.writeError(w, r, fmt.Errorf("update endpoint headers: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteHeader removes name from headers, ignoring case.
func deleteHeader(headers map[string]string, name string) {
	for existing := range headers {
		if strings.EqualFold(existing, name) {
			delete(headers, existing)
		}
	}
}
