package httpapi

import (
	"fmt"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// auditRecordOut is one record of GET /api/v1/audit-log (Herald's own).
// It names the change and who made it by identifiers only.
type auditRecordOut struct {
	ID            string  `json:"id"`
	Timestamp     string  `json:"timestamp"`
	Action        string  `json:"action"`
	ResourceType  string  `json:"resourceType"`
	ResourceID    string  `json:"resourceId"`
	AppID         *string `json:"appId"`
	TokenID       *string `json:"tokenId"`
	TokenKind     string  `json:"tokenKind"`
	TokenName     string  `json:"tokenName"`
	ParentTokenID *string `json:"parentTokenId"`
	Method        string  `json:"method"`
	Route         string  `json:"route"`
	RequestID     string  `json:"requestId"`
	ClientAddr    string  `json:"clientAddr"`
}

func toAuditRecordOut(r *herald.AuditRecord) auditRecordOut {
	kind := string(r.Actor.TokenKind)
	if kind == "" {
		kind = "admin-token"
	}
	return auditRecordOut{
		ID:            r.ID,
		Timestamp:     formatTime(r.CreatedAt),
		Action:        r.Action,
		ResourceType:  r.ResourceType,
		ResourceID:    r.ResourceID,
		AppID:         optString(r.AppID),
		TokenID:       optString(r.Actor.TokenID),
		TokenKind:     kind,
		TokenName:     r.Actor.TokenName,
		ParentTokenID: optString(r.Actor.ParentTokenID),
		Method:        r.Actor.Method,
		Route:         r.Actor.Route,
		RequestID:     r.Actor.RequestID,
		ClientAddr:    r.Actor.ClientAddr,
	}
}

// listAuditLog is GET /api/v1/audit-log, Herald's extension: the changes
// made through the API, the console, the portal and the CLI, newest
// first, filtered by application (its ID, or the uid of an application
// that still exists), token ID and a [since, until) time range.
func (a *API) listAuditLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v := parsePage(q, herald.Descending, auditCursor)
	since, until := parseTime(q, "since", v), parseTime(q, "until", v)
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		v.add("until must be after since", "query", "until")
	}
	if err := v.err(); err != nil {
		return err
	}
	appID := q.Get("app_id")
	if appID != "" {
		// A uid names its application while it exists; records keep the
		// ID, which outlives it.
		app, err := a.store.GetApplication(r.Context(), appID)
		switch {
		case err == nil:
			appID = app.ID
		case herald.ErrorCode(err) != herald.ENOTFOUND:
			return fmt.Errorf("get application: %w", err)
		}
	}
	recs, err := a.store.ListAuditRecords(r.Context(), herald.AuditListOptions{
		ListOptions: p.options(), AppID: appID, TokenID: q.Get("token_id"), Since: since, Until: until,
	})
	if err != nil {
		return fmt.Errorf("list audit records: %w", err)
	}
	return writeJSON(w, http.StatusOK, paginate(p, recs,
		func(r *herald.AuditRecord) string { return r.ID }, toAuditRecordOut))
}
