package httpapi

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/signature"
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
	// Ordering is Herald's extra field: "fifo" or "none".
	Ordering *string `json:"ordering" openapi:"extension"`
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
	// Ordering is Herald's extra field: "fifo" or "none".
	Ordering string `json:"ordering" openapi:"extension"`
}

// Values of the ordering field.
const (
	orderingFIFO = "fifo"
	orderingNone = "none"
)

func toEndpointOut(ep *herald.Endpoint) endpointOut {
	ordering := orderingNone
	if ep.Ordering == herald.OrderingFIFO {
		ordering = orderingFIFO
	}
	return endpointOut{
		ID:           ep.ID,
		URL:          destination.Redact(ep.URL),
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
		Ordering:     ordering,
	}
}

// ordering returns the ordering the field asks for; nil (absent or null)
// is none.
func (in *endpointIn) ordering() herald.Ordering {
	if in.Ordering != nil && *in.Ordering == orderingFIFO {
		return herald.OrderingFIFO
	}
	return herald.OrderingNone
}

// filterTypes returns the filter types under either name, filterTypes first.
func (in *endpointIn) filterTypes() []string {
	if in.FilterTypes != nil {
		return in.FilterTypes
	}
	return in.EventTypes
}

// validate checks the fields present; requireURL is set for POST and PUT,
// allowPrivate is Config.AllowPrivateTargets.
func (in *endpointIn) validate(v *validation, requireURL, allowPrivate bool) {
	// poller:// makes a polling endpoint (Herald's extension, see
	// poller.go); any other URL must be one Herald can deliver to.
	if (in.URL != nil || requireURL) && derefString(in.URL) != herald.PollerURL {
		v.checkURL(derefString(in.URL), allowPrivate, "body", "url")
	}
	v.checkOptionalName(in.UID, "body", "uid")
	v.checkVersion(in.Version, "body", "version")
	v.checkNames(in.FilterTypes, "body", "filterTypes")
	v.checkNames(in.EventTypes, "body", "eventTypes")
	v.checkChannels(in.Channels, "body", "channels")
	checkRate(v, in.RateLimit, 0, []string{"body", "rateLimit"})
	checkRate(v, in.ThrottleRate, 0, []string{"body", "throttleRate"})
	v.checkHeaders(in.Headers, false, "body", "headers")
	if in.Ordering != nil && *in.Ordering != orderingFIFO && *in.Ordering != orderingNone {
		v.add("value is not a valid enumeration member; permitted: 'fifo', 'none'", "body", "ordering")
	}
}

// applyReplace sets every field a POST or PUT replaces.
func (in *endpointIn) applyReplace(ep *herald.Endpoint) {
	ep.URL = destination.Unredact(*in.URL, ep.URL)
	ep.Description = derefString(in.Description)
	if in.UID != nil {
		ep.UID = *in.UID
	}
	ep.Version = 1
	if in.Version != nil {
		ep.Version = *in.Version
	}
	// Without disabled a PUT keeps the stored state (a new endpoint is
	// enabled), so it never re-enables an endpoint the dispatcher disabled.
	if in.Disabled != nil {
		ep.Disabled = *in.Disabled
	}
	ep.FilterTypes = emptyToNil(in.filterTypes())
	ep.Channels = emptyToNil(in.Channels)
	ep.RateLimit = pickRate(in.RateLimit, in.ThrottleRate)
	ep.Metadata = nonNilMap(in.Metadata)
	// Svix clients do not know ordering: a PUT without it keeps it.
	if in.Ordering != nil {
		ep.Ordering = in.ordering()
	}
}

func emptyToNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// newEndpoint builds an endpoint from a validated EndpointIn, with the
// given secret or a random HMAC one.
func (a *API) newEndpoint(appID string, in *endpointIn, secret *herald.SigningSecret, uid string) (*herald.Endpoint, error) {
	if secret == nil {
		key, err := signature.NewSecret()
		if err != nil {
			return nil, err
		}
		secret = &herald.SigningSecret{Key: key}
	}
	now := a.now().UTC()
	ep := &herald.Endpoint{
		ID:        herald.NewIDAt(herald.PrefixEndpoint, now),
		AppID:     appID,
		UID:       uid,
		Secrets:   []herald.SigningSecret{*secret},
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

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	p, v := parsePage(r.URL.Query(), herald.Ascending, endpointCursor)
	if err := v.err(); err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	eps, err := a.store.ListEndpoints(r.Context(), app.ID, p.options())
	if err != nil {
		return fmt.Errorf("list endpoints: %w", err)
	}
	return writeJSON(w, http.StatusOK, paginate(p, eps,
		func(ep *herald.Endpoint) string { return ep.ID }, toEndpointOut))
}

func (a *API) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in endpointIn
	var v validation
	var secret *herald.SigningSecret
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		in.validate(&v, true, a.allowPrivate)
		secret = v.checkSecret(in.Secret, "body", "secret")
	})
	if err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	return a.storeNewEndpoint(w, r, app.ID, &in, secret, "")
}

// storeNewEndpoint creates an endpoint from a validated EndpointIn and
// answers 201.
func (a *API) storeNewEndpoint(w http.ResponseWriter, r *http.Request, appID string, in *endpointIn, secret *herald.SigningSecret, uid string) error {
	ep, err := a.insertEndpoint(r, appID, in, secret, uid)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, toEndpointOut(ep))
}

// insertEndpoint creates an endpoint of appID from a validated EndpointIn,
// within the endpoint limit.
func (a *API) insertEndpoint(r *http.Request, appID string, in *endpointIn, secret *herald.SigningSecret, uid string) (*herald.Endpoint, error) {
	ep, err := a.newEndpoint(appID, in, secret, uid)
	if err != nil {
		return nil, err
	}
	if err := a.checkEndpointLimit(r, appID); err != nil {
		return nil, err
	}
	if err := a.store.CreateEndpoint(r.Context(), ep); err != nil {
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	return ep, nil
}

// checkEndpointLimit refuses a new endpoint (422, body.url) when the
// application already has Config.MaxEndpointsPerApp. The count and the
// insert are two statements: creates racing at the limit may pass it by
// as many as run at once, which bounds a fan-out as well.
func (a *API) checkEndpointLimit(r *http.Request, appID string) error {
	if a.maxEndpoints <= 0 {
		return nil
	}
	eps, err := a.store.ListEndpoints(r.Context(), appID, herald.ListOptions{Limit: a.maxEndpoints})
	if err != nil {
		return fmt.Errorf("count endpoints: %w", err)
	}
	if len(eps) >= a.maxEndpoints {
		return invalid(fmt.Sprintf("the application has reached the limit of %d endpoints (--max-endpoints-per-app): delete one, or ask the operator to raise the limit", a.maxEndpoints), "body", "url")
	}
	return nil
}

func (a *API) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toEndpointOut(ep))
}

// putEndpoint replaces an endpoint's fields (not its secret or headers, nor
// disabled or ordering when the body leaves them out), or creates it (201)
// with the path's endpoint_id as its uid.
func (a *API) putEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in endpointIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) {
		in.Headers, in.Secret = nil, nil // not part of EndpointUpdate
		in.validate(&v, true, a.allowPrivate)
	})
	if err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	ref := r.PathValue("endpoint_id")
	err = a.updateEndpoint(w, r, app.ID, ref, in.Disabled != nil, func(ep *herald.Endpoint) error {
		in.applyReplace(ep)
		return nil
	})
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return a.createEndpointAt(w, r, app.ID, ref, &in)
	}
	return err
}

// createEndpointAt is PUT's create branch: the path's ref becomes the uid
// unless the body has one.
func (a *API) createEndpointAt(w http.ResponseWriter, r *http.Request, appID, ref string, in *endpointIn) error {
	uid := ref
	if in.UID != nil {
		uid = *in.UID
	} else if err := checkPathRef(ref, "endpoint_id"); err != nil {
		return err
	}
	return a.storeNewEndpoint(w, r, appID, in, nil, uid)
}

// patchEndpoint changes only the fields present; null clears uid, filter
// types, channels and the rate. A given secret replaces the current one at
// once (use rotate for a grace period).
func (a *API) patchEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in endpointIn
	var v validation
	var secret *herald.SigningSecret
	fields, err := decodeValid(r, &v, &in, false, func(fields map[string]json.RawMessage) {
		in.Headers = nil // not part of EndpointPatch
		if present(fields, "url") && in.URL == nil {
			v.add("value is not a valid URL", "body", "url")
		}
		in.validate(&v, false, a.allowPrivate)
		secret = v.checkSecret(in.Secret, "body", "secret")
	})
	if err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	return a.updateEndpoint(w, r, app.ID, r.PathValue("endpoint_id"), in.Disabled != nil, func(ep *herald.Endpoint) error {
		in.applyPatch(ep, fields)
		if secret != nil {
			ep.Secrets = []herald.SigningSecret{*secret}
		}
		return nil
	})
}

// updateEndpoint applies change to the endpoint of appID that ref names,
// as stored at the write: the store reads, changes and writes it in one
// transaction, so a concurrent change of other fields (or a disable by
// the dispatcher, when the request does not set disabled) is kept. It
// answers with the result. Disabling or enabling the endpoint queues an
// operational event, so a request that sets disabled wakes the
// dispatcher: whether the state changed is only known in the store's
// transaction, and a needless wake costs one claim.
func (a *API) updateEndpoint(w http.ResponseWriter, r *http.Request, appID, ref string, setDisabled bool, change func(*herald.Endpoint) error) error {
	ep, err := a.changeEndpoint(r, appID, ref, setDisabled, change)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toEndpointOut(ep))
}

// changeEndpoint is updateEndpoint without the answer. The endpoint of
// --operational-webhook-url is never changed through the API: it answers
// not found, as GET does.
func (a *API) changeEndpoint(r *http.Request, appID, ref string, setDisabled bool, change func(*herald.Endpoint) error) (*herald.Endpoint, error) {
	now := a.now().UTC()
	var hidden, switched bool
	ep, err := a.store.UpdateEndpointFunc(r.Context(), appID, ref, func(ep *herald.Endpoint) error {
		if ep.ID == herald.OperationalEndpointID {
			hidden = true
			return errOpEndpointHidden
		}
		wasPoller := ep.IsPoller()
		if err := change(ep); err != nil {
			return err
		}
		if ep.IsPoller() != wasPoller {
			// A domain error crosses the store as is; the 422 names the
			// field once out.
			switched = true
			return herald.Errorf(herald.EINVALID, "endpoint kind change")
		}
		ep.UpdatedAt = now
		return nil
	})
	if hidden {
		return nil, errOpEndpointHidden
	}
	if switched {
		return nil, errPollerSwitch
	}
	if err != nil {
		return nil, fmt.Errorf("update endpoint: %w", err)
	}
	if setDisabled {
		a.onQueued()
	}
	return ep, nil
}

// applyPatch sets the fields present in a PATCH body.
func (in *endpointIn) applyPatch(ep *herald.Endpoint, fields map[string]json.RawMessage) {
	if in.URL != nil {
		ep.URL = destination.Unredact(*in.URL, ep.URL)
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
	if present(fields, "ordering") {
		ep.Ordering = in.ordering()
	}
}

func (a *API) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := a.lookupEndpoint(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteEndpoint(r.Context(), ep.AppID, ep.ID); err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type endpointSecretOut struct {
	Key string `json:"key"`
}

// getEndpointSecret answers what a receiver verifies with, as Svix does:
// the "whsec_…" secret of an HMAC endpoint, the "whpk_…" public key of an
// ed25519 one (its private key never leaves Herald).
func (a *API) getEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	return a.writeEndpointSecret(w, r, a.lookupEndpoint)
}

// writeEndpointSecret answers the secret of the endpoint lookup finds.
func (a *API) writeEndpointSecret(w http.ResponseWriter, r *http.Request, lookup func(*http.Request) (*herald.Endpoint, error)) error {
	ep, err := lookup(r)
	if err != nil {
		return err
	}
	if len(ep.Secrets) == 0 {
		return fmt.Errorf("endpoint %s has no secret", ep.ID)
	}
	return writeJSON(w, http.StatusOK, endpointSecretOut{Key: verifyingKey(ep.Secrets[0])})
}

// verifyingKey is the form of a secret a receiver verifies with.
func verifyingKey(s herald.SigningSecret) string {
	if s.Type == herald.SecretEd25519 {
		return signature.FormatPublicKey(ed25519.PrivateKey(s.Key).Public().(ed25519.PublicKey))
	}
	return signature.FormatSecret(s.Key)
}

// Secret rotation grace period bounds, in seconds.
const (
	defaultGraceSeconds = 24 * 60 * 60
	maxGraceSeconds     = 7 * 24 * 60 * 60
)

type secretRotateIn struct {
	Key                *string `json:"key"`
	GracePeriodSeconds *int64  `json:"gracePeriodSeconds"`
	// KeyType is Herald's extra field: without a key, "ed25519" makes
	// Herald generate an ed25519 key, "hmac" (the default) an HMAC one.
	KeyType *string `json:"keyType" openapi:"extension"`
}

// Values of the rotate body's keyType field.
const (
	keyTypeHMAC    = "hmac"
	keyTypeEd25519 = "ed25519"
)

// rotateEndpointSecret makes the given (or a new) key current; the old one
// keeps signing for the grace period, whatever the kinds of the two.
func (a *API) rotateEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	return a.rotateSecret(w, r, a.lookupEndpoint)
}

// rotateSecret rotates the secret of the endpoint lookup finds.
func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, lookup func(*http.Request) (*herald.Endpoint, error)) error {
	var in secretRotateIn
	var v validation
	var next *herald.SigningSecret
	grace := int64(defaultGraceSeconds)
	_, err := decodeValid(r, &v, &in, true, func(map[string]json.RawMessage) {
		next = v.checkSecret(in.Key, "body", "key")
		if in.KeyType != nil {
			switch {
			case *in.KeyType != keyTypeHMAC && *in.KeyType != keyTypeEd25519:
				v.add("value is not a valid enumeration member; permitted: 'hmac', 'ed25519'", "body", "keyType")
			case in.Key != nil:
				v.add("give either key or keyType, not both", "body", "keyType")
			}
		}
		if in.GracePeriodSeconds != nil {
			grace = *in.GracePeriodSeconds
			if grace < 0 || grace > maxGraceSeconds {
				v.add("ensure this value is between 0 and 604800", "body", "gracePeriodSeconds")
			}
		}
	})
	if err != nil {
		return err
	}
	ep, err := lookup(r)
	if err != nil {
		return err
	}
	if next == nil {
		if next, err = newSecret(in.KeyType); err != nil {
			return err
		}
	}
	now := a.now().UTC()
	graceUntil := now.Add(time.Duration(grace) * time.Second)
	if err := a.store.RotateEndpointSecret(r.Context(), ep.AppID, ep.ID, *next, graceUntil, now); err != nil {
		return fmt.Errorf("rotate endpoint secret: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newSecret generates a secret of the rotate body's keyType: HMAC when nil.
func newSecret(keyType *string) (*herald.SigningSecret, error) {
	if keyType != nil && *keyType == keyTypeEd25519 {
		priv, err := signature.NewSecretKey()
		if err != nil {
			return nil, err
		}
		return &herald.SigningSecret{Key: priv, Type: herald.SecretEd25519}, nil
	}
	key, err := signature.NewSecret()
	if err != nil {
		return nil, err
	}
	return &herald.SigningSecret{Key: key}, nil
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
func (a *API) getEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	return a.writeEndpointHeaders(w, r, a.lookupEndpoint)
}

// writeEndpointHeaders answers the headers of the endpoint lookup finds.
func (a *API) writeEndpointHeaders(w http.ResponseWriter, r *http.Request, lookup func(*http.Request) (*herald.Endpoint, error)) error {
	ep, err := lookup(r)
	if err != nil {
		return err
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
	return writeJSON(w, http.StatusOK, out)
}

// putEndpointHeaders replaces every custom header.
func (a *API) putEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	return a.changeEndpointHeaders(w, r, false, a.appScope)
}

// patchEndpointHeaders merges headers: a null value (or a name in
// deleteHeaders) removes a header, names match case-insensitively.
func (a *API) patchEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	return a.changeEndpointHeaders(w, r, true, a.appScope)
}

// appScope is the application of the path's app_id.
func (a *API) appScope(r *http.Request) (string, error) {
	app, err := a.lookupApp(r)
	if err != nil {
		return "", err
	}
	return app.ID, nil
}

// changeEndpointHeaders replaces (or, with merge, patches) the headers of
// the path's endpoint_id among the endpoints of the application scope
// names.
func (a *API) changeEndpointHeaders(w http.ResponseWriter, r *http.Request, merge bool, scope func(*http.Request) (string, error)) error {
	var in endpointHeadersIn
	var v validation
	_, err := decodeValid(r, &v, &in, false, func(fields map[string]json.RawMessage) {
		if !present(fields, "headers") || isNull(fields["headers"]) {
			v.add("field required", "body", "headers")
		}
		v.checkHeaders(in.Headers, merge, "body", "headers")
	})
	if err != nil {
		return err
	}
	appID, err := scope(r)
	if err != nil {
		return err
	}
	// The merge applies to the headers stored at the write, in the store's
	// transaction: a concurrent change of another header is kept.
	now := a.now().UTC()
	var refused error // the callback's 422, which the store hands back wrapped
	_, err = a.store.UpdateEndpointFunc(r.Context(), appID, r.PathValue("endpoint_id"), func(ep *herald.Endpoint) error {
		if ep.ID == herald.OperationalEndpointID {
			refused = errOpEndpointHidden
			return refused
		}
		headers := map[string]string{}
		if merge {
			maps.Copy(headers, ep.Headers)
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
		if len(headers) > maxHeaders {
			refused = invalid(fmt.Sprintf("ensure this object has at most %d headers", maxHeaders), "body", "headers")
			return refused
		}
		ep.Headers = headers
		ep.UpdatedAt = now
		return nil
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("update endpoint headers: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteHeader removes name from headers, ignoring case.
func deleteHeader(headers map[string]string, name string) {
	for existing := range headers {
		if strings.EqualFold(existing, name) {
			delete(headers, existing)
		}
	}
}
