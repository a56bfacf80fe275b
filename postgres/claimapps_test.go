package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// TestClaimAppsPlan checks, on a queue with statistics, that the claim in
// applications' turns hops between applications and seeks each one's due
// deliveries through delivery_app_due, never walking the due deliveries of
// all applications (delivery_claim): its cost must not grow with one
// application's backlog.
func TestClaimAppsPlan(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, testKeyring(t))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	var apps []*herald.Application
	for i := range 3 {
		app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: fmt.Sprint("app ", i), CreatedAt: now, UpdatedAt: now}
		if err := s.CreateApplication(ctx, app); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app)
		for range 20 {
			ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook",
				Version: 1, Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}}, CreatedAt: now, UpdatedAt: now}
			if err := s.CreateEndpoint(ctx, ep); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first application's backlog: 200 messages to 20 endpoints.
	for b := range 4 {
		msgs := make([]*herald.Message, 50)
		for i := range msgs {
			msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: apps[0].ID, EventType: "e",
				Payload: []byte(`{}`), CreatedAt: now.Add(time.Duration(b*50+i) * time.Millisecond)}
		}
		if _, err := s.CreateMessages(ctx, msgs, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	// The second application's one message, to its 20 endpoints.
	if _, err := s.CreateMessages(ctx, []*herald.Message{{ID: herald.NewID(herald.PrefixMessage), AppID: apps[1].ID,
		EventType: "e", Payload: []byte(`{}`), CreatedAt: now.Add(time.Second)}}, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t).Exec(ctx, "ANALYZE "+schema+".delivery"); err != nil {
		t.Fatal(err)
	}
	plan, err := postgres.ExplainClaimApps(ctx, s, "node", now.Add(time.Minute), now.Add(time.Hour), 64, []string{"ep_none"},
		256, 8, []string{apps[0].ID}, 64)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", text)
	if strings.Contains(text, "delivery_claim") {
		t.Error("the claim in applications' turns walks delivery_claim, every application's due rows")
	}
	// The first application, the hop to the next, each one's due rows.
	if n := strings.Count(text, " delivery_app_due "); n != 3 {
		t.Errorf("delivery_app_due is searched %d times in the plan, want 3: the first application, the hop to the next, each one's seek", n)
	}
}
