package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// Portal token lifetimes, as Svix allows them.
const (
	minPortalExpiry     = time.Hour
	maxPortalExpiry     = 7 * 24 * time.Hour
	defaultPortalExpiry = maxPortalExpiry
	// maxExpireAllDelay bounds expire-all's grace period.
	maxExpireAllDelay = 7 * 24 * time.Hour
)

// Svix's AppPortalCapability values, which the route table requires of
// app-portal tokens (see needs), and capUnlimited, which no app-portal
// token holds.
const (
	capViewBase        = "ViewBase"
	capViewSecret      = "ViewEndpointSecret"
	capManageSecret    = "ManageEndpointSecret"
	capTransformations = "ManageTransformations"
	capCreateAttempts  = "CreateAttempts"
	capManageEndpoint  = "ManageEndpoint"
	capUnlimited       = "herald:unlimited"
)

// portalCapabilities are every capability a portal token may hold; a
// token asked for without a list gets them all.
var portalCapabilities = []string{
	capViewBase, capViewSecret, capManageSecret, capTransformations, capCreateAttempts, capManageEndpoint,
}

// writeCapabilities are the capabilities that let a portal change things:
// a token with none of them is read-only.
var writeCapabilities = []string{capManageSecret, capTransformations, capCreateAttempts, capManageEndpoint}

// appPortalAccessIn is Svix's AppPortalAccessIn.
type appPortalAccessIn struct {
	Application  *applicationIn `json:"application"`
	Capabilities []string       `json:"capabilities"`
	Expiry       *int64         `json:"expiry"`
	FeatureFlags []string       `json:"featureFlags"`
	ReadOnly     *bool          `json:"readOnly"`
	SessionID    *string        `json:"sessionId"`
}

// appPortalAccessOut is Svix's AppPortalAccessOut.
type appPortalAccessOut struct {
	Token string `json:"token"`
	URL   string `json:"url"`
}

func (in *appPortalAccessIn) validate(v *validation) {
	if in.Application != nil {
		in.Application.validate(v, "body", "application")
	}
	for i, c := range in.Capabilities {
		if !slices.Contains(portalCapabilities, c) {
			v.add("value is not a valid enumeration member; permitted: "+fmt.Sprint(portalCapabilities), "body", "capabilities", fmt.Sprint(i))
		}
	}
	if in.Expiry != nil {
		if d := time.Duration(*in.Expiry) * time.Second; *in.Expiry < 0 || d < minPortalExpiry || d > maxPortalExpiry {
			v.add(fmt.Sprintf("ensure this value is between %d and %d", int64(minPortalExpiry.Seconds()), int64(maxPortalExpiry.Seconds())), "body", "expiry")
		}
	}
	v.checkNames(in.FeatureFlags, "body", "featureFlags")
	if in.SessionID != nil && (len(*in.SessionID) == 0 || len(*in.SessionID) > 256) {
		v.add("ensure this value has between 1 and 256 characters", "body", "sessionId")
	}
}

// capabilities returns the capabilities the token asked for holds: those
// listed (ViewBase always among them, as Svix requires), only ViewBase for
// a read-only token asked for without a list, all of them otherwise.
func (in *appPortalAccessIn) capabilities() []string {
	switch {
	case in.Capabilities != nil:
		caps := []string{capViewBase}
		for _, c := range in.Capabilities {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
		return caps
	case in.ReadOnly != nil && *in.ReadOnly:
		return []string{capViewBase}
	}
	return slices.Clone(portalCapabilities)
}

// readOnly reports whether the token asked for may only read.
func (in *appPortalAccessIn) readOnly() bool {
	if in.ReadOnly != nil && *in.ReadOnly {
		return true
	}
	if in.Capabilities == nil {
		return false // no capabilities named: all of them
	}
	return !slices.ContainsFunc(in.Capabilities, func(c string) bool { return slices.Contains(writeCapabilities, c) })
}

// appPortalAccess is POST /api/v1/auth/app-portal-access/{app_id}: a
// portal token for one application, and the link that opens the portal
// with it. The token travels in the link's fragment, which browsers never
// send to a server or put in a Referer; the portal's login page reads it
// and exchanges it for a session cookie. The application is created first
// when the path names none and the body brings one.
func (a *API) appPortalAccess(w http.ResponseWriter, r *http.Request) error {
	var in appPortalAccessIn
	var v validation
	if _, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) { in.validate(&v) }); err != nil {
		return err
	}
	ref := r.PathValue("app_id")
	app, err := a.store.GetApplication(r.Context(), ref)
	if herald.ErrorCode(err) == herald.ENOTFOUND && in.Application != nil {
		if in.Application.UID == nil {
			if err := checkPathRef(ref, "app_id"); err != nil {
				return err
			}
		}
		app = a.newApplication(in.Application, ref)
		err = a.store.CreateApplication(r.Context(), app)
	}
	if err != nil {
		return fmt.Errorf("get application: %w", err)
	}
	expiry := defaultPortalExpiry
	if in.Expiry != nil {
		expiry = time.Duration(*in.Expiry) * time.Second
	}
	name := "app-portal"
	if in.SessionID != nil {
		name += " " + *in.SessionID
	}
	t := &herald.Token{
		Kind:         herald.TokenPortal,
		Name:         name,
		AppID:        app.ID,
		ReadOnly:     in.readOnly(),
		Capabilities: in.capabilities(),
		SessionID:    derefString(in.SessionID),
		ExpiresAt:    a.now().UTC().Add(expiry),
	}
	secret, err := a.auth.Issue(r.Context(), t, access.PrefixPortal)
	if err != nil {
		return fmt.Errorf("issue portal token: %w", err)
	}
	link := a.publicURL(r) + "/portal/login#token=" + url.QueryEscape(secret)
	return writeJSON(w, http.StatusOK, appPortalAccessOut{Token: secret, URL: link})
}

// publicURL is the base URL of links Herald hands out.
func (a *API) publicURL(r *http.Request) string {
	if a.baseURL != "" {
		return a.baseURL
	}
	scheme := "http"
	if a.proxies.Secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// logout is POST /api/v1/auth/logout: it revokes the app-portal token it
// is called with, and every portal session opened with it.
func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	p, _ := access.FromContext(r.Context())
	if p.Kind != herald.TokenPortal {
		return herald.Errorf(herald.EFORBIDDEN, "Only app-portal tokens can be logged out.")
	}
	if err := a.auth.Revoke(r.Context(), p.TokenID); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// applicationTokenExpireIn is Svix's ApplicationTokenExpireIn.
type applicationTokenExpireIn struct {
	Expiry     *int64   `json:"expiry"`
	SessionIDs []string `json:"sessionIds"`
}

// expireAllTokens is POST /api/v1/auth/app/{app_id}/expire-all: the
// application's portal tokens (those of the given session IDs, when any)
// and their sessions expire after expiry seconds (at once by default).
func (a *API) expireAllTokens(w http.ResponseWriter, r *http.Request) error {
	var in applicationTokenExpireIn
	var v validation
	if _, err := decodeValid(r, &v, &in, true, func(map[string]json.RawMessage) {
		if in.Expiry != nil && (*in.Expiry < 0 || time.Duration(*in.Expiry)*time.Second > maxExpireAllDelay) {
			v.add(fmt.Sprintf("ensure this value is between 0 and %d", int64(maxExpireAllDelay.Seconds())), "body", "expiry")
		}
		for i, id := range in.SessionIDs {
			if id == "" || len(id) > 256 {
				v.add("ensure this value has between 1 and 256 characters", "body", "sessionIds", fmt.Sprint(i))
			}
		}
	}); err != nil {
		return err
	}
	app, err := a.lookupApp(r)
	if err != nil {
		return err
	}
	at := a.now().UTC()
	if in.Expiry != nil {
		at = at.Add(time.Duration(*in.Expiry) * time.Second)
	}
	if _, err := a.store.ExpireAppTokens(r.Context(), app.ID, in.SessionIDs, at); err != nil {
		return fmt.Errorf("expire tokens: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
