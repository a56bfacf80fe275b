package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// deliveryFixture is an application with two endpoints and messages whose
// deliveries went through the real store verbs: committed by the API, then
// claimed and recorded as a dispatcher would.
type deliveryFixture struct {
	ts       *testServer
	queued   *atomic.Int64
	appID    string
	ep1, ep2 endpointOut // ep1 fails (500 then no response), ep2 succeeds
	msgs     []messageOut
	// attempts of each message, oldest first.
	attempts map[string][]*herald.Attempt
}

// newDeliveryFixture creates app "acme" with endpoints ep-one and ep-two and
// n messages (event types "order.created" and, for odd i, "order.paid" on
// channel "eu"), then records one attempt per delivery: ep-one answers
// 500 (and, for message 0, a second attempt gets no response and the
// delivery fails for good), ep-two answers 200.
func newDeliveryFixture(t *testing.T, n int) *deliveryFixture {
	t.Helper()
	return newDeliveryFixtureOn(t, n, func(opts ...func(*Config)) *testServer { return newTestServer(t, opts...) })
}

// newDeliveryFixtureOn is newDeliveryFixture on the server newServer
// starts (with the options given), e.g. on PostgreSQL.
func newDeliveryFixtureOn(t *testing.T, n int, newServer func(opts ...func(*Config)) *testServer) *deliveryFixture {
	t.Helper()
	f := &deliveryFixture{queued: &atomic.Int64{}, attempts: map[string][]*herald.Attempt{}}
	f.ts = newServer(func(c *Config) { c.OnQueued = func() { f.queued.Add(1) } })
	f.appID = createApp(t, f.ts, `{"name":"Acme","uid":"acme"}`)
	f.ts.mustCall(t, http.StatusCreated, &f.ep1, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://one.example/hook","uid":"ep-one"}`)
	f.ts.mustCall(t, http.StatusCreated, &f.ep2, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://two.example/hook","uid":"ep-two"}`)
	for i := range n {
		f.ts.Clock.Add(time.Second)
		body := fmt.Sprintf(`{"eventType":"order.created","payload":{"i": %d}}`, i)
		if i%2 == 1 {
			body = fmt.Sprintf(`{"eventType":"order.paid","payload":{"i": %d},"channels":["eu"]}`, i)
		}
		var m messageOut
		f.ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/acme/msg", body)
		f.msgs = append(f.msgs, m)
	}
	f.ts.Clock.Add(time.Second)
	f.record(t, func(c herald.Claim, at *herald.Attempt) herald.DeliveryStatus {
		if c.Delivery.EndpointID == f.ep2.ID {
			at.ResponseStatus, at.Response, at.Status = 200, []byte(`{"ok":true}`), herald.AttemptSucceeded
			return herald.DeliverySucceeded
		}
		at.ResponseStatus, at.Response, at.Status = 500, []byte("oops"), herald.AttemptFailed
		return herald.DeliveryPending
	})
	// ep-one's delivery of message 0 is retried once, gets no response and
	// fails for good; its other deliveries stay pending.
	if n > 0 {
		f.ts.Clock.Add(time.Second)
		f.record(t, func(c herald.Claim, at *herald.Attempt) herald.DeliveryStatus {
			at.Error, at.Status = "connection refused", herald.AttemptFailed
			return herald.DeliveryFailed
		}, f.msgs[0].ID)
	}
	return f
}

// record claims the deliveries due within the hour (of msgIDs only, when
// given, releasing the others) and records one attempt for each, made now;
// outcome fills the attempt in and returns the delivery's new status.
func (f *deliveryFixture) record(t *testing.T, outcome func(herald.Claim, *herald.Attempt) herald.DeliveryStatus, msgIDs ...string) {
	t.Helper()
	ctx := t.Context()
	now := f.ts.Clock.Now()
	// Claim as if retries were due already; the attempts are made now.
	claims, err := f.ts.Store.ClaimDue(ctx, herald.ClaimOptions{
		Owner: "test-node", Now: now.Add(time.Hour), LeaseUntil: now.Add(2 * time.Hour), Limit: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []herald.AttemptOutcome
	var release []herald.LeaseRef
	for _, c := range claims {
		if len(msgIDs) > 0 && !slices.Contains(msgIDs, c.Delivery.MessageID) {
			release = append(release, herald.LeaseRef{DeliveryID: c.Delivery.ID, Until: c.Delivery.LeaseExpiresAt})
			continue
		}
		now = now.Add(time.Millisecond)
		at := &herald.Attempt{
			ID:         herald.NewIDAt(herald.PrefixAttempt, now),
			DeliveryID: c.Delivery.ID,
			AppID:      c.Delivery.AppID,
			MessageID:  c.Delivery.MessageID,
			EndpointID: c.Delivery.EndpointID,
			URL:        "https://endpoint.example/" + c.Delivery.EndpointID,
			Duration:   1234 * time.Millisecond,
			Trigger:    c.Delivery.Trigger,
			CreatedAt:  now,
		}
		status := outcome(c, at)
		o := herald.AttemptOutcome{DeliveryID: c.Delivery.ID, Attempt: at, LeaseOwner: "test-node", Status: status}
		if status == herald.DeliveryPending {
			o.NextAttemptAt = now.Add(5 * time.Minute)
		}
		outcomes = append(outcomes, o)
		f.attempts[at.MessageID] = append(f.attempts[at.MessageID], at)
	}
	if err := f.ts.Store.RecordAttempts(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	if len(release) > 0 {
		if err := f.ts.Store.ReleaseDeliveries(ctx, "test-node", release, f.ts.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// attemptIDs returns the IDs of a list answer's items.
func attemptIDs(list []models.MessageAttemptOut) []string {
	var ids []string
	for _, a := range list {
		ids = append(ids, a.Id)
	}
	return ids
}

func TestSDKAttempts(t *testing.T) {
	f := newDeliveryFixture(t, 3)
	client := f.ts.sdk(t, f.ts.Token)
	ctx := t.Context()
	m0 := f.msgs[0]

	// By message: three attempts, newest first.
	byMsg, err := client.MessageAttempt.ListByMsg(ctx, "acme", m0.ID, nil)
	mustNoErr(t, "list by msg", err)
	var recorded []string
	for _, at := range f.attempts[m0.ID] {
		recorded = append(recorded, at.ID)
	}
	// Newest first is by ID, whose time part has one-second resolution.
	slices.Sort(recorded)
	if got := attemptIDs(byMsg.Data); len(got) != 3 || !cmp.Equal(got, reversed(recorded)) || !byMsg.Done {
		t.Fatalf("attempts of message 0: %v, want newest first of %v", got, recorded)
	}
	want := f.attempt(t, m0.ID, f.ep1.ID, 500)
	i := slices.IndexFunc(byMsg.Data, func(a models.MessageAttemptOut) bool { return a.Id == want.ID })
	if i < 0 {
		t.Fatalf("attempt %s not listed", want.ID)
	}
	first := byMsg.Data[i]
	if first.EndpointId != f.ep1.ID || first.MsgId != m0.ID || first.ResponseStatusCode != 500 ||
		first.Response != "oops" || first.ResponseDurationMs != 1234 || first.Status != models.MESSAGESTATUS_FAIL ||
		first.StatusText != models.MESSAGESTATUSTEXT_FAIL || first.TriggerType != models.MESSAGEATTEMPTTRIGGERTYPE_SCHEDULED ||
		first.Url != want.URL || !first.Timestamp.Equal(want.CreatedAt.Truncate(time.Microsecond)) || first.Msg != nil {
		t.Fatalf("first attempt %+v, want %+v", first, want)
	}
	if noResponse := byMsg.Data[0]; noResponse.ResponseStatusCode != 0 || noResponse.Response != "connection refused" {
		t.Fatalf("attempt without a response %+v", noResponse)
	}

	// By message, filtered by endpoint (ID or uid) and status.
	onlyTwo, err := client.MessageAttempt.ListByMsg(ctx, "acme", m0.ID, &svix.MessageAttemptListByMsgOptions{EndpointId: ptr("ep-two")})
	mustNoErr(t, "list by msg and endpoint", err)
	if len(onlyTwo.Data) != 1 || onlyTwo.Data[0].EndpointId != f.ep2.ID || onlyTwo.Data[0].Status != models.MESSAGESTATUS_SUCCESS {
		t.Fatalf("ep-two's attempts of message 0: %+v", onlyTwo.Data)
	}
	failed, err := client.MessageAttempt.ListByMsg(ctx, "acme", m0.ID, &svix.MessageAttemptListByMsgOptions{Status: ptr(models.MESSAGESTATUS_FAIL)})
	mustNoErr(t, "list by msg and status", err)
	if len(failed.Data) != 2 {
		t.Fatalf("failed attempts of message 0: %+v", failed.Data)
	}

	// By endpoint, with the message.
	byEp, err := client.MessageAttempt.ListByEndpoint(ctx, "acme", "ep-two", &svix.MessageAttemptListByEndpointOptions{WithMsg: ptr(true)})
	mustNoErr(t, "list by endpoint", err)
	if len(byEp.Data) != 3 {
		t.Fatalf("ep-two's attempts: %+v", byEp.Data)
	}
	seen := map[string]bool{}
	for i, a := range byEp.Data {
		n := slices.IndexFunc(f.msgs, func(m messageOut) bool { return m.ID == a.MsgId })
		if n < 0 || seen[a.MsgId] || a.EndpointId != f.ep2.ID || a.Msg == nil || a.Msg.Id != a.MsgId || a.Msg.Payload["i"] != float64(n) {
			t.Fatalf("ep-two's attempt %d: %+v (msg %+v)", i, a, a.Msg)
		}
		seen[a.MsgId] = true
	}

	// Get and expunge.
	got, err := client.MessageAttempt.Get(ctx, "acme", m0.ID, first.Id, nil)
	mustNoErr(t, "get", err)
	if diff := cmp.Diff(&first, got); diff != "" {
		t.Fatalf("get (-listed +got):\n%s", diff)
	}
	mustNoErr(t, "expunge", client.MessageAttempt.ExpungeContent(ctx, "acme", m0.ID, first.Id))
	got, err = client.MessageAttempt.Get(ctx, "acme", m0.ID, first.Id, nil)
	mustNoErr(t, "get after expunge", err)
	if got.Response != "" || got.ResponseStatusCode != 500 {
		t.Fatalf("after expunge %+v", got)
	}
	_, err = client.MessageAttempt.Get(ctx, "acme", f.msgs[1].ID, first.Id, nil)
	wantSDKError(t, "attempt of another message", err, http.StatusNotFound, herald.ENOTFOUND)
}

func TestSDKDeliveryState(t *testing.T) {
	f := newDeliveryFixture(t, 2)
	client := f.ts.sdk(t, f.ts.Token)
	ctx := t.Context()

	// Message 0 went to both endpoints: ep-one failed for good, ep-two
	// succeeded. Message 1: ep-one waits for a retry.
	dests, err := client.MessageAttempt.ListAttemptedDestinations(ctx, "acme", f.msgs[0].ID, nil)
	mustNoErr(t, "attempted destinations", err)
	if len(dests.Data) != 2 {
		t.Fatalf("destinations %+v", dests.Data)
	}
	byID := map[string]models.MessageEndpointOut{}
	for _, d := range dests.Data {
		byID[d.Id] = d
	}
	if d := byID[f.ep1.ID]; d.Status != models.MESSAGESTATUS_FAIL || d.Url != f.ep1.URL || *d.Uid != "ep-one" || d.NextAttempt != nil {
		t.Fatalf("ep-one for message 0: %+v", d)
	}
	if d := byID[f.ep2.ID]; d.Status != models.MESSAGESTATUS_SUCCESS || d.StatusText != models.MESSAGESTATUSTEXT_SUCCESS {
		t.Fatalf("ep-two for message 0: %+v", d)
	}
	dests, err = client.MessageAttempt.ListAttemptedDestinations(ctx, "acme", f.msgs[1].ID, nil)
	mustNoErr(t, "attempted destinations of message 1", err)
	for _, d := range dests.Data {
		if d.Id == f.ep1.ID && (d.Status != models.MESSAGESTATUS_PENDING || d.NextAttempt == nil) {
			t.Fatalf("ep-one for message 1: %+v", d)
		}
	}

	msgs, err := client.MessageAttempt.ListAttemptedMessages(ctx, "acme", "ep-one", nil)
	mustNoErr(t, "attempted messages", err)
	if len(msgs.Data) != 2 || msgs.Data[0].Id != f.msgs[1].ID || msgs.Data[0].Status != models.MESSAGESTATUS_PENDING ||
		msgs.Data[1].Id != f.msgs[0].ID || msgs.Data[1].Status != models.MESSAGESTATUS_FAIL ||
		msgs.Data[1].Payload["i"] != float64(0) || msgs.Data[1].EventType != "order.created" {
		t.Fatalf("ep-one's messages %+v", msgs.Data)
	}
	failedOnly, err := client.MessageAttempt.ListAttemptedMessages(ctx, "acme", "ep-one",
		&svix.MessageAttemptListAttemptedMessagesOptions{Status: ptr(models.MESSAGESTATUS_FAIL)})
	mustNoErr(t, "attempted messages that failed", err)
	if len(failedOnly.Data) != 1 || failedOnly.Data[0].Id != f.msgs[0].ID {
		t.Fatalf("ep-one's failed messages %+v", failedOnly.Data)
	}

	stats, err := client.Endpoint.GetStats(ctx, "acme", "ep-one", nil)
	mustNoErr(t, "stats", err)
	if diff := cmp.Diff(&models.EndpointStats{Fail: 1, Pending: 1}, stats); diff != "" {
		t.Fatalf("ep-one's stats (-want +got):\n%s", diff)
	}
	since := f.ts.Clock.Now().Add(time.Hour)
	stats, err = client.Endpoint.GetStats(ctx, "acme", "ep-two", &svix.EndpointGetStatsOptions{Since: &since})
	mustNoErr(t, "stats since later", err)
	if diff := cmp.Diff(&models.EndpointStats{}, stats); diff != "" {
		t.Fatalf("ep-two's stats of later messages (-want +got):\n%s", diff)
	}

	// A canceled delivery (its endpoint was disabled) shows as fail.
	var m2 messageOut
	f.ts.mustCall(t, http.StatusAccepted, &m2, "POST", "/api/v1/app/acme/msg", `{"eventType":"order.created","payload":{}}`)
	now := f.ts.Clock.Now()
	claims, err := f.ts.Store.ClaimDue(ctx, herald.ClaimOptions{Owner: "canceler", Now: now.Add(time.Hour), LeaseUntil: now.Add(2 * time.Hour), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []herald.AttemptOutcome
	for _, c := range claims {
		status := herald.DeliveryPending
		if c.Delivery.MessageID == m2.ID && c.Delivery.EndpointID == f.ep1.ID {
			status = herald.DeliveryCanceled
		}
		outcomes = append(outcomes, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: "canceler", Status: status, NextAttemptAt: now})
	}
	if err := f.ts.Store.RecordAttempts(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	dests, err = client.MessageAttempt.ListAttemptedDestinations(ctx, "acme", m2.ID, nil)
	mustNoErr(t, "attempted destinations of a canceled delivery", err)
	for _, d := range dests.Data {
		if d.Id == f.ep1.ID && (d.Status != models.MESSAGESTATUS_FAIL || d.StatusText != models.MESSAGESTATUSTEXT_FAIL) {
			t.Fatalf("canceled delivery to ep-one: %+v", d)
		}
	}
}

func TestSDKResendRecoverReplay(t *testing.T) {
	f := newDeliveryFixture(t, 2)
	client := f.ts.sdk(t, f.ts.Token)
	ctx := t.Context()
	since := f.ts.Clock.Now().Add(-time.Hour)

	// Resend message 0 to ep-two (it succeeded): pending again, manual.
	_, err := client.MessageAttempt.Resend(ctx, "acme", f.msgs[0].ID, "ep-two", nil)
	mustNoErr(t, "resend", err)
	if n := f.queued.Load(); n != 1 {
		t.Fatalf("OnQueued called %d times after resend, want 1", n)
	}
	dlv := deliveryOf(t, f.ts, f.appID, f.msgs[0].ID, f.ep2.ID)
	if dlv.Status != herald.DeliveryPending || dlv.Trigger != herald.TriggerManual {
		t.Fatalf("resent delivery %+v", dlv)
	}

	// Recover ep-one: its failed delivery (message 0) is pending again.
	rec, err := client.Endpoint.Recover(ctx, "acme", "ep-one", models.RecoverIn{Since: since}, nil)
	mustNoErr(t, "recover", err)
	if rec.Status != models.BACKGROUNDTASKSTATUS_RUNNING || rec.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER ||
		len(rec.Id) <= len("qtask_") || rec.Id[:6] != "qtask_" || rec.UpdatedAt.IsZero() {
		t.Fatalf("recover answer %+v", rec)
	}
	if done := waitTask(t, client, rec.Id); done.Status != models.BACKGROUNDTASKSTATUS_FINISHED || done.Data["deliveriesQueued"] != float64(1) {
		t.Fatalf("recover task %+v", done)
	}
	if n := f.queued.Load(); n != 2 {
		t.Fatalf("OnQueued called %d times after recover, want 2", n)
	}
	if dlv := deliveryOf(t, f.ts, f.appID, f.msgs[0].ID, f.ep1.ID); dlv.Status != herald.DeliveryPending || dlv.Trigger != herald.TriggerManual {
		t.Fatalf("recovered delivery %+v", dlv)
	}

	// A third endpoint added now gets the old messages by replay-missing.
	var ep3 endpointOut
	f.ts.mustCall(t, http.StatusCreated, &ep3, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://three.example/hook","uid":"ep-three"}`)
	replay, err := client.Endpoint.ReplayMissing(ctx, "acme", "ep-three", models.ReplayIn{Since: since}, nil)
	mustNoErr(t, "replay missing", err)
	if replay.Status != models.BACKGROUNDTASKSTATUS_RUNNING || replay.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_REPLAY || replay.Id == rec.Id {
		t.Fatalf("replay answer %+v", replay)
	}
	if done := waitTask(t, client, replay.Id); done.Status != models.BACKGROUNDTASKSTATUS_FINISHED || done.Data["deliveriesQueued"] != float64(2) {
		t.Fatalf("replay task %+v", done)
	}
	if n := f.queued.Load(); n != 3 {
		t.Fatalf("OnQueued called %d times after replay, want 3", n)
	}
	msgs, err := client.MessageAttempt.ListAttemptedMessages(ctx, "acme", "ep-three", nil)
	mustNoErr(t, "ep-three's messages", err)
	if len(msgs.Data) != 2 || msgs.Data[0].Status != models.MESSAGESTATUS_PENDING {
		t.Fatalf("ep-three's messages after replay %+v", msgs.Data)
	}

	// Resend while the delivery is being sent is a conflict.
	now := f.ts.Clock.Now()
	claims, err := f.ts.Store.ClaimDue(ctx, herald.ClaimOptions{Owner: "busy", Now: now, LeaseUntil: now.Add(time.Hour), Limit: 100})
	if err != nil || len(claims) == 0 {
		t.Fatalf("claim: %d claims, %v", len(claims), err)
	}
	c := claims[0].Delivery
	_, err = client.MessageAttempt.Resend(ctx, "acme", c.MessageID, c.EndpointID, nil)
	wantSDKError(t, "resend while sending", err, http.StatusConflict, herald.ECONFLICT)
	if n := f.queued.Load(); n != 3 {
		t.Fatalf("OnQueued called %d times after a refused resend, want 3", n)
	}
}

// deliveryOf returns the delivery of a message to an endpoint.
func deliveryOf(t *testing.T, ts *testServer, appID, msgID, endpointID string) *herald.Delivery {
	t.Helper()
	ds, err := ts.Store.ListMessageDeliveries(t.Context(), appID, msgID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.EndpointID == endpointID {
			return d
		}
	}
	t.Fatalf("no delivery of %s to %s", msgID, endpointID)
	return nil
}

func TestSDKSendExample(t *testing.T) {
	f := newDeliveryFixture(t, 0)
	client := f.ts.sdk(t, f.ts.Token)
	ctx := t.Context()
	schemas := `{"1":{"type":"object","examples":[{"id":1,"kind":"first"},{"id":2,"kind":"second"}]},` +
		`"2":{"type":"object","example":{"id":3}}}`
	f.ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"invoice.paid","schemas":`+schemas+`}`)
	f.ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"only.v2","schemas":{"2":{"example":{"v":2}}}}`)
	f.ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"no.example","schemas":{"1":{"type":"object"}}}`)
	// ep-one only takes another event type: send-example reaches it anyway,
	// and only it.
	f.ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/acme/endpoint/ep-one", `{"filterTypes":["user.signup"]}`)

	m, err := client.Endpoint.SendExample(ctx, "acme", "ep-one", models.EventExampleIn{EventType: "invoice.paid", ExampleIndex: ptr(uint64(1))}, nil)
	mustNoErr(t, "send example", err)
	if m.EventType != "invoice.paid" || m.Payload["kind"] != "second" || m.Id == "" {
		t.Fatalf("example message %+v", m)
	}
	if n := f.queued.Load(); n != 1 {
		t.Fatalf("OnQueued called %d times after send-example, want 1", n)
	}
	ds, err := f.ts.Store.ListMessageDeliveries(ctx, f.appID, m.Id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EndpointID != f.ep1.ID || ds[0].Status != herald.DeliveryPending {
		t.Fatalf("deliveries of the example: %+v", ds)
	}

	for _, tc := range []struct {
		eventType string
		index     *uint64
		want      map[string]any
	}{
		{"invoice.paid", nil, map[string]any{"id": float64(1), "kind": "first"}},
		{"only.v2", nil, map[string]any{"v": float64(2)}},
		{"svix.ping", nil, map[string]any{"success": true}},
	} {
		m, err := client.Endpoint.SendExample(ctx, "acme", "ep-two", models.EventExampleIn{EventType: tc.eventType, ExampleIndex: tc.index}, nil)
		mustNoErr(t, "send example "+tc.eventType, err)
		if diff := cmp.Diff(tc.want, m.Payload); diff != "" {
			t.Errorf("%s payload (-want +got):\n%s", tc.eventType, diff)
		}
	}

	_, err = client.Endpoint.SendExample(ctx, "acme", "ep-two", models.EventExampleIn{EventType: "no.such.type"}, nil)
	wantSDKError(t, "unknown event type", err, http.StatusNotFound, herald.ENOTFOUND)
	before := f.queued.Load()
	for _, tc := range []struct {
		body string
		loc  []string
	}{
		{`{"eventType":"no.example"}`, []string{"body", "eventType"}},
		{`{"eventType":"invoice.paid","exampleIndex":2}`, []string{"body", "exampleIndex"}},
		{`{"eventType":"invoice.paid","exampleIndex":-1}`, []string{"body", "exampleIndex"}},
		{`{}`, []string{"body", "eventType"}},
	} {
		items := validationOut(t, f.ts.call(t, "POST", "/api/v1/app/acme/endpoint/ep-two/send-example", tc.body))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, tc.loc) {
			t.Errorf("send-example %s: %+v, want one item at %v", tc.body, items, tc.loc)
		}
	}
	if n := f.queued.Load(); n != before {
		t.Fatalf("OnQueued called after refused send-examples")
	}
}

// rawJSON decodes an answer into generic JSON, so field names and types
// are checked as a client in any language sees them.
func rawJSON(t *testing.T, res response) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("decode %s: %v", res.Body, err)
	}
	return out
}

func TestDeliveryShapes(t *testing.T) {
	f := newDeliveryFixture(t, 1)
	ts := f.ts
	m0 := f.msgs[0]
	at := f.attempt(t, m0.ID, f.ep1.ID, 500)

	got := rawJSON(t, ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/msg/"+m0.ID+"/attempt/"+at.ID, ""))
	want := map[string]any{
		"id": at.ID, "msgId": m0.ID, "endpointId": at.EndpointID, "url": at.URL,
		"response": "oops", "responseStatusCode": float64(500), "responseDurationMs": float64(1234),
		"status": float64(2), "statusText": "fail", "triggerType": float64(0), "timestamp": formatTime(at.CreatedAt),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("attempt (-want +got):\n%s", diff)
	}

	// with_msg includes the message with its payload byte for byte.
	res := ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/attempt/endpoint/ep-one?with_msg=true", "")
	var list struct {
		Data []struct {
			Msg json.RawMessage `json:"msg"`
		} `json:"data"`
	}
	if err := json.Unmarshal(res.Body, &list); err != nil || len(list.Data) != 2 {
		t.Fatalf("attempts with msg %s: %v", res.Body, err)
	}
	var msg messageOut
	if err := json.Unmarshal(list.Data[0].Msg, &msg); err != nil || msg.ID != m0.ID || string(msg.Payload) != `{"i": 0}` {
		t.Fatalf("attempt's msg %s: %v", list.Data[0].Msg, err)
	}
	// with_content=false leaves the response and the payload out.
	res = ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/attempt/endpoint/ep-one?with_msg=true&with_content=false", "")
	if err := json.Unmarshal(res.Body, &list); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(list.Data[0].Msg, &msg); err != nil || string(msg.Payload) != "{}" {
		t.Fatalf("msg without content %s", list.Data[0].Msg)
	}
	for _, item := range rawJSON(t, res)["data"].([]any) {
		if r := item.(map[string]any)["response"]; r != "" {
			t.Fatalf("response without content: %q", r)
		}
	}

	// Message endpoints: the endpoint's fields plus the delivery state.
	dests := rawJSON(t, ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/msg/"+m0.ID+"/endpoint", ""))
	first := dests["data"].([]any)[0].(map[string]any)
	for _, field := range []string{"id", "url", "description", "version", "disabled", "createdAt", "updatedAt", "status", "statusText"} {
		if _, ok := first[field]; !ok {
			t.Errorf("message endpoint lacks %q: %v", field, first)
		}
	}

	// Endpoint messages: the message's fields plus the delivery state, the
	// payload verbatim.
	res = ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/endpoint/ep-two/msg", "")
	em := rawJSON(t, res)["data"].([]any)[0].(map[string]any)
	if em["id"] != m0.ID || em["status"] != float64(0) || em["statusText"] != "success" || em["eventType"] != "order.created" {
		t.Fatalf("endpoint message %v", em)
	}
	if !json.Valid(res.Body) || !strings.Contains(string(res.Body), `"payload":{"i": 0}`) {
		t.Fatalf("endpoint message payload not verbatim: %s", res.Body)
	}

	stats := rawJSON(t, ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme/endpoint/ep-two/stats", ""))
	if diff := cmp.Diff(map[string]any{"success": float64(1), "pending": float64(0), "sending": float64(0),
		"fail": float64(0), "canceled": float64(0)}, stats); diff != "" {
		t.Fatalf("stats (-want +got):\n%s", diff)
	}

	// Resend answers 202 with an empty object.
	res = ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/acme/msg/"+m0.ID+"/endpoint/ep-two/resend", "")
	if string(res.Body) != "{}" {
		t.Fatalf("resend body %s", res.Body)
	}
	rec := rawJSON(t, ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/acme/endpoint/ep-one/recover",
		`{"since":"2025-03-01T00:00:00Z","until":"2025-03-02T00:00:00Z"}`))
	if rec["status"] != "running" || rec["task"] != "endpoint.recover" {
		t.Fatalf("recover %v", rec)
	}
}

func TestAttemptFiltersAndPages(t *testing.T) {
	f := newDeliveryFixture(t, 4)
	ts := f.ts
	list := func(path string) []string {
		t.Helper()
		ids, _ := pageOf(t, ts, path)
		return ids
	}
	all := list("/api/v1/app/acme/attempt/endpoint/ep-one")
	if len(all) != 5 { // 4 first tries, 1 retry of message 0
		t.Fatalf("ep-one's attempts %v", all)
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	if !cmp.Equal(all, reversed(sorted)) {
		t.Fatalf("attempts not newest first: %v", all)
	}

	// Pages of two, forwards and back.
	p1, r1 := pageOf(t, ts, "/api/v1/app/acme/attempt/endpoint/ep-one?limit=2")
	p2, r2 := pageOf(t, ts, "/api/v1/app/acme/attempt/endpoint/ep-one?limit=2&iterator="+url.QueryEscape(*r1.Iterator))
	p3, r3 := pageOf(t, ts, "/api/v1/app/acme/attempt/endpoint/ep-one?limit=2&iterator="+url.QueryEscape(*r2.Iterator))
	if !cmp.Equal(slices.Concat(p1, p2, p3), all) || r1.Done || r2.Done || !r3.Done {
		t.Fatalf("pages %v %v %v of %v", p1, p2, p3, all)
	}
	back, _ := pageOf(t, ts, "/api/v1/app/acme/attempt/endpoint/ep-one?limit=2&iterator="+url.QueryEscape(*r3.PrevIterator))
	if !cmp.Equal(back, p2) {
		t.Fatalf("back from page 3: %v, want %v", back, p2)
	}
	if asc := list("/api/v1/app/acme/attempt/endpoint/ep-one?order=ascending"); !cmp.Equal(asc, reversed(all)) {
		t.Fatalf("ascending %v", asc)
	}

	count := func(path string) int { return len(list(path)) }
	for path, want := range map[string]int{
		"/api/v1/app/acme/attempt/endpoint/ep-one?status=2":                      5,
		"/api/v1/app/acme/attempt/endpoint/ep-two?status=0":                      4,
		"/api/v1/app/acme/attempt/endpoint/ep-one?status=0":                      0,
		"/api/v1/app/acme/attempt/endpoint/ep-one?status_code_class=500":         4,
		"/api/v1/app/acme/attempt/endpoint/ep-one?status_code_class=0":           1,
		"/api/v1/app/acme/attempt/endpoint/ep-two?status_code_class=200":         4,
		"/api/v1/app/acme/attempt/endpoint/ep-one?event_types=order.paid":        2,
		"/api/v1/app/acme/attempt/endpoint/ep-one?channel=eu":                    2,
		"/api/v1/app/acme/attempt/msg/" + f.msgs[0].ID:                           3,
		"/api/v1/app/acme/attempt/msg/" + f.msgs[0].ID + "?endpoint_id=ep-one":   2,
		"/api/v1/app/acme/attempt/msg/" + f.msgs[0].ID + "?status_code_class=0":  1,
		"/api/v1/app/acme/endpoint/ep-one/msg":                                   4,
		"/api/v1/app/acme/endpoint/ep-one/msg?status=1":                          3,
		"/api/v1/app/acme/endpoint/ep-one/msg?status=2":                          1,
		"/api/v1/app/acme/endpoint/ep-one/msg?event_types=order.created":         2,
		"/api/v1/app/acme/endpoint/ep-one/msg?channel=eu":                        2,
		"/api/v1/app/acme/endpoint/ep-one/msg?after=2025-03-01T12:00:02Z":        2,
		"/api/v1/app/acme/endpoint/ep-one/msg?before=2025-03-01T12:00:02Z":       1,
		"/api/v1/app/acme/attempt/endpoint/ep-one?after=2025-03-01T12:00:05.5Z":  1,
		"/api/v1/app/acme/attempt/endpoint/ep-one?before=2025-03-01T12:00:05.5Z": 4,
	} {
		if got := count(path); got != want {
			t.Errorf("GET %s: %d items, want %d", path, got, want)
		}
	}

	// Message endpoints page in memory, by endpoint ID.
	d1, r := pageOf(t, ts, "/api/v1/app/acme/msg/"+f.msgs[0].ID+"/endpoint?limit=1")
	d2, rr := pageOf(t, ts, "/api/v1/app/acme/msg/"+f.msgs[0].ID+"/endpoint?limit=1&iterator="+*r.Iterator)
	wantEps := []string{f.ep1.ID, f.ep2.ID}
	slices.Sort(wantEps)
	if !cmp.Equal(slices.Concat(d1, d2), wantEps) || r.Done || !rr.Done {
		t.Fatalf("message endpoints by page: %v %v (%+v %+v), want %v", d1, d2, r, rr, wantEps)
	}
}

func TestDeliveryRouteErrors(t *testing.T) {
	f := newDeliveryFixture(t, 1)
	ts := f.ts
	m0 := f.msgs[0].ID
	at := f.attempt(t, m0, f.ep1.ID, 500).ID
	for _, path := range []string{
		"/api/v1/app/nope/attempt/msg/" + m0,
		"/api/v1/app/acme/attempt/msg/msg_missing",
		"/api/v1/app/acme/attempt/msg/" + m0 + "?endpoint_id=ep-missing",
		"/api/v1/app/acme/attempt/endpoint/ep-missing",
		"/api/v1/app/acme/msg/" + m0 + "/attempt/atmpt_missing",
		"/api/v1/app/acme/msg/msg_missing/attempt/" + at,
		"/api/v1/app/acme/msg/msg_missing/endpoint",
		"/api/v1/app/acme/endpoint/ep-missing/msg",
		"/api/v1/app/acme/endpoint/ep-missing/stats",
	} {
		res := ts.call(t, "GET", path, "")
		if res.Status != http.StatusNotFound || errorOut(t, res).Code != herald.ENOTFOUND {
			t.Errorf("GET %s: %d %s, want 404", path, res.Status, res.Body)
		}
	}
	for _, path := range []string{
		"/api/v1/app/acme/msg/msg_missing/endpoint/ep-one/resend",
		"/api/v1/app/acme/msg/" + m0 + "/endpoint/ep-missing/resend",
		"/api/v1/app/acme/endpoint/ep-missing/recover",
		"/api/v1/app/acme/endpoint/ep-missing/replay-missing",
		"/api/v1/app/acme/endpoint/ep-missing/send-example",
	} {
		body := `{"since":"2025-03-01T00:00:00Z","eventType":"svix.ping"}`
		if res := ts.call(t, "POST", path, body); res.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d %s, want 404", path, res.Status, res.Body)
		}
	}
	if res := ts.call(t, "DELETE", "/api/v1/app/acme/msg/"+m0+"/attempt/atmpt_missing/content", ""); res.Status != http.StatusNotFound {
		t.Errorf("expunge a missing attempt: %d", res.Status)
	}

	for _, tc := range []struct {
		method, path, body string
		loc                []string
	}{
		{"GET", "/api/v1/app/acme/attempt/endpoint/ep-one?status=4", "", []string{"query", "status"}},
		{"GET", "/api/v1/app/acme/attempt/endpoint/ep-one?status=fail", "", []string{"query", "status"}},
		{"GET", "/api/v1/app/acme/attempt/msg/" + m0 + "?status_code_class=250", "", []string{"query", "status_code_class"}},
		{"GET", "/api/v1/app/acme/attempt/msg/" + m0 + "?before=yesterday", "", []string{"query", "before"}},
		{"GET", "/api/v1/app/acme/attempt/msg/" + m0 + "?with_msg=maybe", "", []string{"query", "with_msg"}},
		{"GET", "/api/v1/app/acme/endpoint/ep-one/msg?status=9", "", []string{"query", "status"}},
		{"GET", "/api/v1/app/acme/endpoint/ep-one/stats?since=2025-13-01", "", []string{"query", "since"}},
		{"GET", "/api/v1/app/acme/msg/" + m0 + "/endpoint?limit=0", "", []string{"query", "limit"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/recover", `{"since":"last week"}`, []string{"body", "since"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/recover", `{}`, []string{"body", "since"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/recover", `{"since":"2025-03-02T00:00:00Z","until":"2025-03-01T00:00:00Z"}`, []string{"body", "until"}},
		{"POST", "/api/v1/app/acme/endpoint/ep-one/replay-missing", `{"since":"2025-03-01"}`, []string{"body", "since"}},
	} {
		items := validationOut(t, ts.call(t, tc.method, tc.path, tc.body))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, tc.loc) {
			t.Errorf("%s %s %s: %+v, want one item at %v", tc.method, tc.path, tc.body, items, tc.loc)
		}
	}
	if n := f.queued.Load(); n != 0 {
		t.Fatalf("OnQueued called %d times by refused requests", n)
	}
}

// reversed returns a reversed copy of s.
func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// attempt returns the attempt the fixture recorded for a message at an
// endpoint with the given response status.
func (f *deliveryFixture) attempt(t *testing.T, msgID, endpointID string, status int) *herald.Attempt {
	t.Helper()
	for _, at := range f.attempts[msgID] {
		if at.EndpointID == endpointID && at.ResponseStatus == status {
			return at
		}
	}
	t.Fatalf("no attempt of %s at %s with status %d", msgID, endpointID, status)
	return nil
}
