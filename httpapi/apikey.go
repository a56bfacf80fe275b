package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// API keys are Herald's own extension (Svix's keys live in its dashboard):
// bearer tokens of kind key, admin scope or one application's, read-only
// or not, with an optional expiry. Only the hash of a key is stored; the
// key itself is in the answer that creates it, and nowhere else.

// apiKeyIn is the body of POST /api/v1/auth/api-key.
type apiKeyIn struct {
	Name      *string `json:"name"`
	Scope     *string `json:"scope"`
	ReadOnly  *bool   `json:"readOnly"`
	ExpiresAt *string `json:"expiresAt"`
}

// apiKeyOut is an API key as the API shows it.
type apiKeyOut struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// AppID is the application of an "app:" scope; null for admin.
	AppID      *string `json:"appId"`
	ReadOnly   bool    `json:"readOnly"`
	CreatedAt  string  `json:"createdAt"`
	ExpiresAt  *string `json:"expiresAt"`
	LastUsedAt *string `json:"lastUsedAt"`
	RevokedAt  *string `json:"revokedAt"`
}

// apiKeyCreatedOut is the answer of a create: the key and, this once, its
// secret.
type apiKeyCreatedOut struct {
	apiKeyOut
	Key string `json:"key"`
}

func toAPIKeyOut(t *herald.Token) apiKeyOut {
	out := apiKeyOut{
		ID:         t.ID,
		Name:       t.Name,
		Scope:      access.Scope(t),
		AppID:      optString(t.AppID),
		ReadOnly:   t.ReadOnly,
		CreatedAt:  formatTime(t.CreatedAt),
		LastUsedAt: optTime(t.LastUsedAt),
		RevokedAt:  optTime(t.RevokedAt),
	}
	if access.Expires(t) {
		out.ExpiresAt = optTime(t.ExpiresAt)
	}
	return out
}

// optTime returns nil for the zero time, so unset times are null.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// validate checks the body; it returns the expiry asked for (zero for
// none) and the application reference of an "app:" scope.
func (in *apiKeyIn) validate(v *validation, now time.Time) (expires time.Time, appRef string) {
	switch {
	case in.Name == nil:
		v.add("field required", "body", "name")
	case *in.Name == "" || len(*in.Name) > maxNameLen:
		v.add("ensure this value has between 1 and 256 characters", "body", "name")
	case strings.ContainsFunc(*in.Name, isControl):
		v.add("names cannot contain control characters", "body", "name")
	}
	if in.Scope == nil {
		v.add("field required", "body", "scope")
	} else if ref, ok := access.ParseScope(*in.Scope); !ok {
		v.add(`scope must be "admin" or "app:" followed by an application's ID or uid`, "body", "scope")
	} else {
		appRef = ref
	}
	if in.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.ExpiresAt)
		switch {
		case err != nil:
			v.add("value is not a valid RFC 3339 date-time", "body", "expiresAt")
		case !t.After(now):
			v.add("expiresAt must be in the future", "body", "expiresAt")
		case !t.Before(herald.NeverExpires):
			v.add("expiresAt must be before 9999-12-31: send null for a key that does not expire", "body", "expiresAt")
		default:
			expires = t.UTC()
		}
	}
	return expires, appRef
}

// createAPIKey is POST /api/v1/auth/api-key: a new API key, whose secret
// is in this answer only. An "app:" scope names the application by ID or
// uid; the key keeps its ID, so a later change of uid does not move it.
//
// With an idempotency key, a retry gets the same key without its secret:
// answers are kept in the database for a day, and a secret kept there
// would be a key anyone reading the database (or a backup) could use.
// A client that lost the first answer revokes the key and makes another.
func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var in apiKeyIn
	var v validation
	now := a.now().UTC()
	var expires time.Time
	var appRef string
	if _, err := decodeValid(r, &v, &in, false, func(map[string]json.RawMessage) { expires, appRef = in.validate(&v, now) }); err != nil {
		return err
	}
	t := &herald.Token{
		Kind:      herald.TokenKey,
		Name:      *in.Name,
		ReadOnly:  in.ReadOnly != nil && *in.ReadOnly,
		ExpiresAt: herald.NeverExpires,
	}
	if !expires.IsZero() {
		t.ExpiresAt = expires
	}
	if appRef != "" {
		app, err := a.store.GetApplication(r.Context(), appRef)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return invalid("no application has this ID or uid", "body", "scope")
		} else if err != nil {
			return fmt.Errorf("get application: %w", err)
		}
		t.AppID = app.ID
	}
	secret, err := a.auth.Issue(r.Context(), t, access.PrefixKey)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		// The application was deleted between the lookup and the insert.
		return invalid("no application has this ID or uid", "body", "scope")
	} else if err != nil {
		return fmt.Errorf("issue API key: %w", err)
	}
	out := toAPIKeyOut(t)
	replay, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	withholdFromReplay(w, replay)
	return writeJSON(w, http.StatusCreated, apiKeyCreatedOut{apiKeyOut: out, Key: secret})
}

// listAPIKeys is GET /api/v1/auth/api-key: the API keys, newest first,
// those in force only unless include_revoked=true (which adds the keys
// revoked or expired within the last day; older ones are swept).
func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending, tokenCursor)
	all := parseBool(q, "include_revoked", false, v)
	if err := v.err(); err != nil {
		return err
	}
	now := a.now()
	opts := herald.TokenListOptions{Kind: herald.TokenKey, ListOptions: p.options()}
	want := opts.Limit
	var keys []*herald.Token
	// Ended keys are skipped here rather than in the store: they are few
	// (swept a day after they end), so a page rarely needs a second read.
	for {
		rows, err := a.store.ListTokens(r.Context(), opts)
		if err != nil {
			return fmt.Errorf("list API keys: %w", err)
		}
		for _, t := range rows {
			if all || t.Active(now) {
				keys = append(keys, t)
			}
		}
		if len(keys) >= want || len(rows) < opts.Limit {
			break
		}
		opts.Cursor = rows[len(rows)-1].ID
	}
	if len(keys) > want {
		keys = keys[:want]
	}
	return writeJSON(w, http.StatusOK, paginate(p, keys,
		func(t *herald.Token) string { return t.ID }, toAPIKeyOut))
}

// getAPIKey is GET /api/v1/auth/api-key/{key_id}.
func (a *API) getAPIKey(w http.ResponseWriter, r *http.Request) error {
	t, err := a.lookupAPIKey(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toAPIKeyOut(t))
}

// revokeAPIKey is DELETE /api/v1/auth/api-key/{key_id}: the key, and the
// sessions opened with it, stop working on every node at their next
// request (tokens are looked up per request, never cached). Revoking a
// revoked key keeps its first revocation time.
func (a *API) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	t, err := a.lookupAPIKey(r)
	if err != nil {
		return err
	}
	if err := a.auth.Revoke(r.Context(), t.ID); err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// errAPIKeyNotFound answers for an unknown ID and for the ID of a token
// that is not an API key (an app-portal token, a session) alike.
var errAPIKeyNotFound = herald.Errorf(herald.ENOTFOUND, "API key not found.")

// lookupAPIKey returns the API key the path names.
func (a *API) lookupAPIKey(r *http.Request) (*herald.Token, error) {
	t, err := a.store.GetToken(r.Context(), r.PathValue("key_id"))
	if herald.ErrorCode(err) == herald.ENOTFOUND || (err == nil && t.Kind != herald.TokenKey) {
		return nil, errAPIKeyNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get API key: %w", err)
	}
	return t, nil
}
