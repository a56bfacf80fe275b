package dispatch_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/signature"
)

// hangingListener accepts connections on loopback and never answers,
// like a receiver whose process hangs; it counts what it accepted.
type hangingListener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newHangingListener(t *testing.T) *hangingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-h.done
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			_ = c.Close()
		}
	})
	return h
}

func (h *hangingListener) accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// TestHangingApplicationDoesNotStallAnother: 32 endpoints of application A
// accept the connection and never answer (8 requests in flight each would
// hold all 256 workers until the request timeout, ten minutes here); a
// healthy endpoint of application B receives its messages while every one
// of A's requests still hangs, because A may hold only its share of the
// workers (--app-worker-share, half of them).
func TestHangingApplicationDoesNotStallAnother(t *testing.T) {
	store := openTestStore(t)
	now := time.Now()
	appA := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "A", CreatedAt: now, UpdatedAt: now}
	appB := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "B", CreatedAt: now, UpdatedAt: now}
	for _, app := range []*herald.Application{appA, appB} {
		if err := store.CreateApplication(t.Context(), app); err != nil {
			t.Fatal(err)
		}
	}
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	var hanging []*hangingListener
	for range 32 {
		h := newHangingListener(t)
		hanging = append(hanging, h)
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: appA.ID, URL: "http://" + h.ln.Addr().String() + "/hook",
			Version: 1, Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: now, UpdatedAt: now}
		if err := store.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
	}
	healthy := newReceiver(t, nil)
	bKey, err := signature.ParseSecret(healthy.secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateEndpoint(t.Context(), &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: appB.ID,
		URL: healthy.srv.URL + "/hook", Version: 1, Secrets: []herald.SigningSecret{{Key: bKey}}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Config{
		Store:  store,
		Sender: dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: 10 * time.Minute, UserAgent: "Herald/test"}),
		Policy: backoff.Policy{Schedule: []time.Duration{time.Second}},
		// herald serve's defaults: 256 workers, 8 per endpoint, half of
		// the workers per application.
		Workers:         256,
		PerEndpoint:     8,
		RequestTimeout:  10 * time.Minute,
		PollInterval:    20 * time.Millisecond,
		ShutdownTimeout: 50 * time.Millisecond, // the hanging sends are cut when the test ends
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = d.Run(ctx)
	}()
	// Registered after the listeners' cleanups, so it runs before them:
	// the dispatcher cuts its hanging sends first.
	t.Cleanup(func() { cancel(); <-stopped })

	create := func(app *herald.Application, n int) []*herald.Message {
		msgs := make([]*herald.Message, n)
		for i := range msgs {
			msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "e",
				Payload: []byte(`{}`), CreatedAt: time.Now()}
		}
		if _, err := store.CreateMessages(t.Context(), msgs, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		return msgs
	}
	totalHanging := func() int {
		n := 0
		for _, h := range hanging {
			n += h.accepted()
		}
		return n
	}
	// 16 messages to each of A's 32 endpoints: 512 deliveries that would
	// each hold a worker for ten minutes.
	create(appA, 16)
	eventually(t, "application A to hold its share of the workers", func() bool { return totalHanging() >= 128 })

	msgs := create(appB, 20)
	eventually(t, "application B's messages", func() bool {
		got, _ := healthy.received()
		for _, m := range msgs {
			if got[m.ID] != 1 {
				return false
			}
		}
		return true
	})
	// Nothing of A's finished (the timeout is ten minutes), so B was
	// served by the workers A could not take.
	if n := totalHanging(); n != 128 {
		t.Fatalf("application A has %d requests hanging, want its share: 128 of 256 workers", n)
	}
}

// TestAppShareDeliversEverything: one application with many more endpoints
// than its share of the workers gets every delivery through: its
// endpoints wait their turn at the cap and all of them get it.
func TestAppShareDeliversEverything(t *testing.T) {
	store := openTestStore(t)
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "many", CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, nil)
	key, err := signature.ParseSecret(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := store.CreateEndpoint(t.Context(), &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID,
			URL: r.srv.URL + "/hook", Version: 1, Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dispatch.New(dispatch.Config{
		Store:  store,
		Sender: dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: 10 * time.Second, UserAgent: "Herald/test"}),
		// Two of the four workers for the application: its 20 endpoints
		// take turns at its cap.
		Workers:        4,
		PerEndpoint:    1,
		RequestTimeout: 10 * time.Second,
		PollInterval:   20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	msgs := make([]*herald.Message, 10)
	for i := range msgs {
		msgs[i] = &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "e", Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := store.CreateMessages(t.Context(), msgs, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	eventually(t, "all 200 deliveries", func() bool {
		got, _ := r.received()
		for _, m := range msgs {
			if got[m.ID] != 20 {
				return false
			}
		}
		return true
	})
}
