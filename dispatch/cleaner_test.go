package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/sqlite"
)

// retentionFixture is a store holding, for one application and endpoint,
// old delivered messages (each with an attempt), old undelivered ones and
// recent delivered ones.
type retentionFixture struct {
	store                    *sqlite.Store
	app                      *herald.Application
	old, undelivered, recent []*herald.Message
}

func newRetentionFixture(t *testing.T, now time.Time, old, undelivered, recent int) retentionFixture {
	t.Helper()
	s := openTestStore(t)
	long := now.Add(-100 * 24 * time.Hour)
	f := retentionFixture{store: s, app: &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, long), Name: "a", CreatedAt: long, UpdatedAt: long}}
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateApplication(ctx, f.app))
	ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, long), AppID: f.app.ID, URL: "https://example.com/hook", Version: 1,
		Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}}, CreatedAt: long, UpdatedAt: long}
	must(s.CreateEndpoint(ctx, ep))
	// create makes n messages at t and, when deliver, claims and records
	// one successful attempt for each at t.
	create := func(n int, at time.Time, deliver bool) []*herald.Message {
		msgs := make([]*herald.Message, n)
		for i := range msgs {
			msgs[i] = &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, at), AppID: f.app.ID, EventType: "e",
				Payload: fmt.Appendf(nil, `{"i":%d}`, i), CreatedAt: at}
		}
		_, err := s.CreateMessages(ctx, msgs, herald.Lease{})
		must(err)
		if !deliver {
			return msgs
		}
		claims, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "n", Now: at, LeaseUntil: at.Add(time.Minute), Limit: n})
		must(err)
		var outs []herald.AttemptOutcome
		for _, c := range claims {
			outs = append(outs, herald.AttemptOutcome{DeliveryID: c.Delivery.ID, LeaseOwner: "n", Status: herald.DeliverySucceeded,
				Attempt: &herald.Attempt{ID: herald.NewIDAt(herald.PrefixAttempt, at), DeliveryID: c.Delivery.ID, AppID: f.app.ID,
					MessageID: c.Delivery.MessageID, EndpointID: ep.ID, URL: ep.URL, ResponseStatus: 200,
					Status: herald.AttemptSucceeded, CreatedAt: at}})
		}
		must(s.RecordAttempts(ctx, outs))
		return msgs
	}
	f.old = create(old, long, true)
	f.recent = create(recent, now.Add(-time.Hour), true)
	f.undelivered = create(undelivered, long.Add(time.Second), false) // last: no claim above takes them
	return f
}

// countMessages returns how many of msgs the store still has.
func (f retentionFixture) countMessages(t *testing.T, msgs []*herald.Message) int {
	t.Helper()
	n := 0
	for _, m := range msgs {
		if _, err := f.store.GetMessage(t.Context(), f.app.ID, m.ID); err == nil {
			n++
		} else if herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatal(err)
		}
	}
	return n
}

func TestCleanerPass(t *testing.T) {
	now := time.Now().UTC()
	f := newRetentionFixture(t, now, 7, 3, 4)
	ctx := t.Context()
	// An expired idempotency key and a live one.
	for i, exp := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour)} {
		rec := &herald.IdempotencyRecord{Key: fmt.Sprint("k", i), CreatedAt: now.Add(-24 * time.Hour), ExpiresAt: exp}
		if _, err := f.store.BeginIdempotent(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, Retention: 90 * 24 * time.Hour, BatchSize: 2,
		Pause: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Batches of two walk through all seven old messages and attempts.
	if want := (dispatch.CleanerCounts{Attempts: 7, Messages: 7, IdempotencyKeys: 1}); counts != want {
		t.Fatalf("pass removed %+v, want %+v", counts, want)
	}
	if n := f.countMessages(t, f.old); n != 0 {
		t.Errorf("%d old delivered messages left, want 0", n)
	}
	if n := f.countMessages(t, f.undelivered); n != len(f.undelivered) {
		t.Errorf("%d of %d old undelivered messages left: retention dropped undelivered work", n, len(f.undelivered))
	}
	if n := f.countMessages(t, f.recent); n != len(f.recent) {
		t.Errorf("%d of %d recent messages left", n, len(f.recent))
	}
	atts, err := f.store.ListAttempts(ctx, f.app.ID, herald.AttemptListOptions{ListOptions: herald.ListOptions{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != len(f.recent) {
		t.Errorf("%d attempts left, want the %d recent ones", len(atts), len(f.recent))
	}
	again, err := c.Pass(ctx)
	if err != nil || again != (dispatch.CleanerCounts{}) {
		t.Errorf("second pass removed %+v (err %v), want nothing", again, err)
	}
}

// Tokens are swept whatever the retention, a day after they expired or
// were revoked; a swept token's sessions go with it.
func TestCleanerSweepsTokens(t *testing.T) {
	now := time.Now().UTC()
	f := newRetentionFixture(t, now, 0, 0, 0)
	ctx := t.Context()
	n := 0
	token := func(kind herald.TokenKind, expires, revoked time.Time, parent string) *herald.Token {
		t.Helper()
		n++
		tok := &herald.Token{ID: herald.NewIDAt(herald.PrefixToken, now.Add(-time.Duration(n)*time.Hour)), Kind: kind,
			Hash: fmt.Appendf(nil, "%032d", n), Name: fmt.Sprint("token ", n), AppID: f.app.ID, Parent: parent,
			CreatedAt: now.Add(-72 * time.Hour), ExpiresAt: expires, RevokedAt: revoked}
		if err := f.store.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	longAgo := now.Add(-dispatch.TokenGrace - time.Minute)
	lately := now.Add(-dispatch.TokenGrace + time.Minute)
	later := now.Add(time.Hour)
	expiredPortal := token(herald.TokenPortal, longAgo, time.Time{}, "")
	swept := []*herald.Token{
		expiredPortal,
		token(herald.TokenKey, longAgo, time.Time{}, ""),
		token(herald.TokenKey, longAgo.Add(-time.Hour), time.Time{}, ""),
		token(herald.TokenKey, longAgo.Add(-2*time.Hour), time.Time{}, ""),
		token(herald.TokenKey, later, longAgo, ""),
		// Live, but its portal token is gone: it goes too, uncounted.
		token(herald.TokenSession, later, time.Time{}, expiredPortal.ID),
	}
	kept := []*herald.Token{
		token(herald.TokenKey, lately, time.Time{}, ""),
		token(herald.TokenKey, later, lately, ""),
		token(herald.TokenPortal, later, time.Time{}, ""),
	}
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, BatchSize: 2, Pause: time.Millisecond,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Batches of two walk through the five expired or revoked tokens.
	if want := (dispatch.CleanerCounts{Tokens: 5}); counts != want {
		t.Fatalf("pass removed %+v, want %+v", counts, want)
	}
	for _, tok := range swept {
		if _, err := f.store.GetTokenByHash(ctx, tok.Hash); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("%s: GetTokenByHash = %v, want ENOTFOUND", tok.Name, err)
		}
	}
	for _, tok := range kept {
		if _, err := f.store.GetTokenByHash(ctx, tok.Hash); err != nil {
			t.Errorf("%s: %v; want it kept for a day", tok.Name, err)
		}
	}
	again, err := c.Pass(ctx)
	if err != nil || again != (dispatch.CleanerCounts{}) {
		t.Errorf("second pass removed %+v (err %v), want nothing", again, err)
	}
}

// Audit records older than AuditRetention go, in batches, as the clock
// moves on; without AuditRetention they stay.
func TestCleanerSweepsAuditRecords(t *testing.T) {
	clock := testclock.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	f := newRetentionFixture(t, clock.Now(), 0, 0, 0)
	ctx := t.Context()
	const retention = 365 * 24 * time.Hour
	ages := []time.Duration{400 * 24 * time.Hour, 390 * 24 * time.Hour, 366 * 24 * time.Hour, retention - time.Hour, time.Hour}
	for i, age := range ages {
		actor := herald.AuditActor{TokenID: fmt.Sprint("tok_", i), TokenKind: herald.TokenKey, TokenName: "k",
			Method: "PATCH", Route: "PATCH /api/v1/app/{app_id}", At: clock.Now().Add(-age)}
		if err := f.store.UpdateApplication(herald.WithAuditActor(ctx, actor), f.app); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		t.Helper()
		recs, err := f.store.ListAuditRecords(ctx, herald.AuditListOptions{ListOptions: herald.ListOptions{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	forever, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if counts, err := forever.Pass(ctx); err != nil || counts != (dispatch.CleanerCounts{}) {
		t.Fatalf("pass without audit retention removed %+v (err %v), want nothing", counts, err)
	}
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, AuditRetention: retention, BatchSize: 2,
		Pause: time.Millisecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Batches of two walk through the three records past a year.
	if counts, err := c.Pass(ctx); err != nil || counts != (dispatch.CleanerCounts{AuditRecords: 3}) {
		t.Fatalf("pass removed %+v (err %v), want 3 audit records", counts, err)
	}
	if n := left(); n != 2 {
		t.Fatalf("%d audit records left, want 2", n)
	}
	clock.Add(2 * time.Hour) // the record an hour short of a year is now past it
	if counts, err := c.Pass(ctx); err != nil || counts != (dispatch.CleanerCounts{AuditRecords: 1}) {
		t.Fatalf("pass two hours later removed %+v (err %v), want 1 audit record", counts, err)
	}
	if n := left(); n != 1 {
		t.Fatalf("%d audit records left, want 1", n)
	}
}

func TestCleanerKeepsForeverWithoutRetention(t *testing.T) {
	now := time.Now().UTC()
	f := newRetentionFixture(t, now, 3, 0, 1)
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := c.Pass(t.Context())
	if err != nil || counts != (dispatch.CleanerCounts{}) {
		t.Fatalf("pass without retention removed %+v (err %v), want nothing", counts, err)
	}
	if n := f.countMessages(t, f.old); n != 3 {
		t.Fatalf("%d of 3 old messages left without retention", n)
	}
}

// syncBuffer is a log destination safe for the cleaner's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A pass that fails (the database closed under it) is logged and retried;
// Run keeps going until its context ends.
func TestCleanerRunSurvivesStoreErrors(t *testing.T) {
	now := time.Now().UTC()
	f := newRetentionFixture(t, now, 1, 0, 0)
	f.store.Close()
	var logs syncBuffer
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, Retention: time.Hour, Interval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for strings.Count(logs.String(), "retention pass failed") < 2 {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v after a failed pass; want it to retry", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancel, want nil", err)
	}
}

func TestCleanerConfigErrors(t *testing.T) {
	if _, err := dispatch.NewCleaner(dispatch.CleanerConfig{}); err == nil {
		t.Error("NewCleaner without a store succeeded")
	}
	f := newRetentionFixture(t, time.Now(), 0, 0, 0)
	if _, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, Retention: -time.Hour}); err == nil {
		t.Error("NewCleaner with a negative retention succeeded")
	}
	if _, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: f.store, AuditRetention: -time.Hour}); err == nil {
		t.Error("NewCleaner with a negative audit retention succeeded")
	}
}

// Finished and failed background tasks go with the message retention,
// after their last update; a running task stays however old, and no
// retention keeps them all.
func TestCleanerSweepsTasks(t *testing.T) {
	now := time.Now().UTC()
	long := now.Add(-100 * 24 * time.Hour)
	s := openTestStore(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, long), Name: "a", CreatedAt: long, UpdatedAt: long}
	must(s.CreateApplication(ctx, app))
	ep := &herald.Endpoint{ID: herald.NewIDAt(herald.PrefixEndpoint, long), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
		Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{7}, 24)}}, CreatedAt: long, UpdatedAt: long}
	must(s.CreateEndpoint(ctx, ep))
	// run creates a task at at and runs it to its end there.
	run := func(task *herald.Task, at time.Time, status herald.TaskStatus) *herald.Task {
		t.Helper()
		must(s.CreateTask(ctx, task, at))
		claimed, err := s.ClaimTask(ctx, "n", at, at.Add(time.Minute))
		must(err)
		if claimed == nil || claimed.ID != task.ID {
			t.Fatalf("claimed %+v, want task %s", claimed, task.ID)
		}
		for task.Status != status {
			if task, err = s.RunTaskSlice(ctx, task.ID, "n", 100, at, at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if task.Status != herald.TaskRunning && task.Status != status {
				t.Fatalf("task %+v, want %s", task, status)
			}
		}
		return task
	}
	finished := run(&herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, long, herald.TaskFinished)
	replay := &herald.Task{Kind: herald.TaskReplay, AppID: app.ID, EndpointID: ep.ID}
	must(s.CreateTask(ctx, replay, long.Add(time.Second)))
	must(s.DeleteEndpoint(ctx, app.ID, ep.ID))
	if claimed, err := s.ClaimTask(ctx, "n", long, long.Add(time.Minute)); err != nil || claimed == nil || claimed.ID != replay.ID {
		t.Fatalf("claimed %+v (err %v), want the replay", claimed, err)
	}
	failed, err := s.RunTaskSlice(ctx, replay.ID, "n", 100, long.Add(time.Second), long.Add(time.Minute))
	must(err)
	if failed.Status != herald.TaskFailed {
		t.Fatalf("replay of a deleted endpoint %+v, want failed", failed)
	}
	recent := run(&herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}, now.Add(-time.Hour), herald.TaskFinished)
	running := &herald.Task{Kind: herald.TaskPurgeContent, AppID: app.ID}
	must(s.CreateTask(ctx, running, long.Add(2*time.Second)))
	exists := func(task *herald.Task) bool {
		t.Helper()
		_, err := s.GetTask(ctx, task.ID)
		if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatal(err)
		}
		return err == nil
	}

	forever, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: s, Now: func() time.Time { return now }})
	must(err)
	if counts, err := forever.Pass(ctx); err != nil || counts != (dispatch.CleanerCounts{}) {
		t.Fatalf("pass without retention removed %+v (err %v), want nothing", counts, err)
	}
	if !exists(finished) || !exists(failed) {
		t.Fatal("a pass without retention deleted a finished task")
	}

	var logs syncBuffer
	c, err := dispatch.NewCleaner(dispatch.CleanerConfig{Store: s, Retention: 90 * 24 * time.Hour, BatchSize: 1,
		Pause: time.Millisecond, Interval: time.Hour, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	must(err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for !strings.Contains(logs.String(), "retention pass") {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v before its first pass was logged", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	must(<-done)
	if line := logs.String(); !strings.Contains(line, "tasks=2") {
		t.Errorf("log %q does not count the two tasks", line)
	}
	for name, task := range map[string]*herald.Task{"finished": finished, "failed": failed} {
		if exists(task) {
			t.Errorf("the old %s task %s is still there", name, task.ID)
		}
	}
	for name, task := range map[string]*herald.Task{"recent": recent, "running": running} {
		if !exists(task) {
			t.Errorf("the %s task %s was deleted", name, task.ID)
		}
	}
	if counts, err := c.Pass(ctx); err != nil || counts != (dispatch.CleanerCounts{}) {
		t.Errorf("second pass removed %+v (err %v), want nothing", counts, err)
	}
}
