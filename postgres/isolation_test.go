package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// TestFIFOAcrossNodes runs six claimers on three stores (nodes) against FIFO
// endpoints with a backlog, while a seventh goroutine resends messages that
// were already delivered (each resend becomes its endpoint's new head). No
// two deliveries of one FIFO endpoint may ever be out at once, and first
// deliveries must go out in message ID order.
func TestFIFOAcrossNodes(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	nodes := []*postgres.Store{openStore(t, schema, ring), openStore(t, schema, ring), openStore(t, schema, ring)}
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "fifo", CreatedAt: now, UpdatedAt: now}
	if err := nodes[0].CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	const endpoints, messages = 4, 60
	var eps []string
	for i := range endpoints {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: fmt.Sprintf("https://example.com/%d", i),
			Version: 1, Ordering: herald.OrderingFIFO, Secrets: []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}},
			CreatedAt: now, UpdatedAt: now}
		if err := nodes[0].CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep.ID)
	}
	var msgIDs []string
	for range 3 { // three batches, so that claiming starts on a partial backlog
		msgs := make([]*herald.Message, messages/3)
		for i := range msgs {
			msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "e",
				Payload: []byte(`{}`), CreatedAt: now}
			msgIDs = append(msgIDs, msgs[i].ID)
		}
		if _, err := nodes[1].CreateMessages(ctx, msgs, herald.Lease{Owner: "ingest", Until: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu        sync.Mutex
		inFlight  = map[string]string{}   // endpoint → delivery out now
		firstSent = map[string][]string{} // endpoint → first deliveries' message IDs, in claim order
		delivered = map[string]bool{}     // message/endpoint delivered at least once
		problems  []string
	)
	due := now.Add(time.Hour)
	var claimers, resender sync.WaitGroup
	done := make(chan struct{})
	for i := range 6 {
		s, owner := nodes[i%3], fmt.Sprintf("node-%d-%d", i%3, i)
		claimers.Go(func() {
			idle := 0
			for idle < 20 {
				claims, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: owner, Now: due, LeaseUntil: due.Add(time.Hour), Limit: 3})
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: claim: %v", owner, err))
					mu.Unlock()
					return
				}
				if len(claims) == 0 {
					idle++
					time.Sleep(2 * time.Millisecond)
					continue
				}
				idle = 0
				mu.Lock()
				for _, c := range claims {
					d := c.Delivery
					if other, busy := inFlight[d.EndpointID]; busy {
						problems = append(problems, fmt.Sprintf("%s claimed %s while %s of the same FIFO endpoint was out", owner, d.ID, other))
					}
					inFlight[d.EndpointID] = d.ID
					if d.Trigger == herald.TriggerScheduled {
						firstSent[d.EndpointID] = append(firstSent[d.EndpointID], d.MessageID)
					}
				}
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) // the send
				var outcomes []herald.AttemptOutcome
				mu.Lock()
				for _, c := range claims {
					delete(inFlight, c.Delivery.EndpointID)
					delivered[c.Delivery.MessageID+"/"+c.Delivery.EndpointID] = true
					outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: owner,
						Status: herald.DeliverySucceeded, Attempt: &herald.Attempt{URL: "https://example.com", ResponseStatus: 200,
							Status: herald.AttemptSucceeded, CreatedAt: due}})
				}
				mu.Unlock()
				if err := s.RecordAttempts(ctx, outcomes); err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s: record: %v", owner, err))
					mu.Unlock()
					return
				}
			}
		})
	}
	resender.Go(func() { // resends of delivered messages: new heads behind the current one
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			case <-time.After(3 * time.Millisecond):
			}
			mu.Lock()
			var candidates []string
			for k := range delivered {
				candidates = append(candidates, k)
			}
			mu.Unlock()
			if len(candidates) == 0 || n > 40 {
				continue
			}
			k := candidates[rand.IntN(len(candidates))]
			msgID, epID := k[:len(k)-len(eps[0])-1], k[len(k)-len(eps[0]):]
			err := nodes[n%3].ResendDelivery(ctx, app.ID, msgID, epID, due)
			if herald.ErrorCode(err) != "" && herald.ErrorCode(err) != herald.ECONFLICT {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("resend: %v", err))
				mu.Unlock()
			}
		}
	})
	// The claimers stop after 20 idle rounds; then stop the resender.
	claimers.Wait()
	close(done)
	resender.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	for _, ep := range eps {
		got := firstSent[ep]
		if len(got) != messages {
			t.Errorf("endpoint %s: %d first deliveries, want %d", ep, len(got), messages)
			continue
		}
		for i := range got {
			if got[i] != msgIDs[i] {
				t.Errorf("endpoint %s: first delivery %d is %s, want %s (message ID order)", ep, i, got[i], msgIDs[i])
				break
			}
		}
	}
}
