package httpapi

import (
	"fmt"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// nodeOut is a node as GET /api/v1/node lists it (Herald's extension).
type nodeOut struct {
	Name          string  `json:"name"`
	Version       string  `json:"version"`
	Host          string  `json:"host"`
	PID           int     `json:"pid"`
	StartedAt     string  `json:"startedAt"`
	LastHeartbeat string  `json:"lastHeartbeat"`
	State         string  `json:"state"`
	TakenOverAt   *string `json:"takenOverAt"`
	TakenOverBy   *string `json:"takenOverBy"`
}

// listNodes lists the nodes serving this database, newest start first, in
// one page: alive, presumed dead (heartbeat older than the node timeout,
// not yet taken over) or taken over (kept a day).
func (a *API) listNodes(w http.ResponseWriter, r *http.Request) error {
	if a.nodes == nil {
		return herald.Errorf(herald.ENOTFOUND, "This server does not list nodes.")
	}
	nodes, now, err := a.nodes(r.Context())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	out := listResponse[nodeOut]{Data: make([]nodeOut, 0, len(nodes)), Done: true}
	for _, n := range nodes {
		o := nodeOut{
			Name: n.Name, Version: n.Version, Host: n.Host, PID: n.PID,
			StartedAt: formatTime(n.StartedAt), LastHeartbeat: formatTime(n.HeartbeatAt),
			State: n.State(now, a.nodeTimeout),
		}
		if !n.TakenOverAt.IsZero() {
			at, by := formatTime(n.TakenOverAt), n.TakenOverBy
			o.TakenOverAt, o.TakenOverBy = &at, &by
		}
		out.Data = append(out.Data, o)
	}
	return writeJSON(w, http.StatusOK, out)
}
