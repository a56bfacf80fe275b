package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// TestKillDashNineLosesNoAcceptedMessage posts messages from several clients,
// kills herald with SIGKILL in the middle, then opens the database file
// directly: every message that got a 202 is there with its deliveries, and a
// request refused with an error left nothing behind.
func TestKillDashNineLosesNoAcceptedMessage(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, "--db", db)
	token := readToken(t, dir)

	code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"})
	if code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	for _, ep := range []map[string]any{
		{"url": "https://a.example.com/hook", "uid": "all"},
		{"url": "https://b.example.com/hook", "uid": "orders", "filterTypes": []string{"order.paid"}},
	} {
		if code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token, ep); code != http.StatusCreated {
			t.Fatalf("create endpoint = %d %s", code, body)
		}
	}
	// Refused requests must leave nothing: a payload that is not an object.
	if code, _ := request(t, "POST", p.url+"/api/v1/app/acme/msg", token, map[string]any{
		"eventType": "order.paid", "eventId": "refused-1", "payload": []int{1, 2},
	}); code != http.StatusUnprocessableEntity {
		t.Fatalf("message with array payload = %d, want 422", code)
	}

	var (
		mu       sync.Mutex
		accepted = map[string]string{} // message ID → event type
		sent     atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				eventType := "user.created"
				if i%2 == 0 {
					eventType = "order.paid"
				}
				payload := fmt.Sprintf(`{"eventType":%q,"eventId":"w%d-%d","payload":{"n":%d,"text":"héllo"}}`, eventType, w, i, i)
				req, _ := http.NewRequest("POST", p.url+"/api/v1/app/acme/msg", strings.NewReader(payload))
				req.Header.Set("authorization", "Bearer "+token)
				req.Header.Set("content-type", "application/json")
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					continue // killed mid-request: it may or may not have committed
				}
				var out struct{ ID string }
				decodeErr := json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted && decodeErr == nil {
					mu.Lock()
					accepted[out.ID] = eventType
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once a good number is accepted, while the clients keep posting.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatalf("no message was accepted before the kill:\n%s", p.stderr)
	}

	store := openDataDir(t, dir, db)
	defer store.Close()
	ctx := context.Background()
	app, err := store.GetApplication(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for id, eventType := range accepted {
		msg, err := store.GetMessage(ctx, app.ID, id)
		if err != nil {
			t.Fatalf("accepted message %s is missing after kill -9: %v", id, err)
		}
		if !json.Valid(msg.Payload) || !strings.Contains(string(msg.Payload), "héllo") {
			t.Fatalf("message %s payload = %q", id, msg.Payload)
		}
		deliveries, err := store.ListMessageDeliveries(ctx, app.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if eventType == "order.paid" {
			want = 2
		}
		if len(deliveries) != want {
			t.Fatalf("message %s (%s) has %d deliveries, want %d", id, eventType, len(deliveries), want)
		}
		for _, d := range deliveries {
			// The endpoints' hosts do not resolve here, so no delivery can
			// have succeeded: each is queued (pending) or was leased to the
			// killed node (sending) and comes back when its lease expires.
			if d.Status != herald.DeliveryPending && d.Status != herald.DeliverySending {
				t.Fatalf("delivery %s status = %s, want pending or sending", d.ID, d.Status)
			}
		}
	}
	if _, err := store.GetMessage(ctx, app.ID, "refused-1"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("refused message: GetMessage = %v, want not found", err)
	}
	t.Logf("%d requests sent, %d accepted before SIGKILL, all %d found with their deliveries", sent.Load(), len(accepted), len(accepted))
}
