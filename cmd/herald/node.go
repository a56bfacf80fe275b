package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/ingest"
)

// nodeConfig is what a Herald node is built from; serve and bench fill it
// from their flags.
type nodeConfig struct {
	Store          store
	Logger         *slog.Logger
	Sender         dispatch.SenderConfig
	Dispatch       dispatch.Config // Store, Sender and Logger are set by startNode
	AdminTokenHash [32]byte
	MaxBodyBytes   int64
}

// node is a running Herald over one store: the dispatcher (and, on
// PostgreSQL, its LISTEN connection), the group committer and the API.
type node struct {
	api          *httpapi.API
	dispatcher   *dispatch.Dispatcher
	sender       *dispatch.Sender
	committer    *ingest.Committer
	logger       *slog.Logger
	stopListen   func()
	stopDispatch context.CancelFunc
	dispatchDone chan error
	stopOnce     sync.Once
}

// startNode wires and starts a node. Its HTTP server is the caller's: serve
// it with node.api, then call node.stop once no request is in flight.
func startNode(ctx context.Context, cfg nodeConfig) (*node, error) {
	dcfg := cfg.Dispatch
	dcfg.Store = cfg.Store
	sender := dispatch.NewSender(cfg.Sender)
	dcfg.Sender = sender
	dcfg.Logger = cfg.Logger
	dispatcher, err := dispatch.New(dcfg)
	if err != nil {
		return nil, err
	}
	n := &node{dispatcher: dispatcher, sender: sender, logger: cfg.Logger, dispatchDone: make(chan error, 1)}
	committer := ingest.New(cfg.Store, ingest.Config{Logger: cfg.Logger, Lease: dispatcher.Lease, OnCommit: dispatcher.Enqueue})
	api, err := httpapi.New(httpapi.Config{
		Store:          cfg.Store,
		Messages:       committer,
		AdminTokenHash: cfg.AdminTokenHash,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Logger:         cfg.Logger,
		Version:        Version(),
		OnQueued:       dispatcher.Notify,
		CircuitState:   dispatcher.EndpointState,
	})
	if err != nil {
		committer.Close()
		return nil, err
	}
	n.api, n.committer = api, committer
	var dispatchCtx context.Context
	dispatchCtx, n.stopDispatch = context.WithCancel(context.WithoutCancel(ctx))
	go func() { n.dispatchDone <- dispatcher.Run(dispatchCtx) }()
	n.stopListen = listenForWork(ctx, cfg.Store, dispatcher.Notify, cfg.Logger)
	return n, nil
}

// stop commits what ingest has queued, then stops the dispatcher, which
// releases what it has not started and waits (up to its ShutdownTimeout)
// for deliveries in flight. The store stays open: it is the caller's.
// Calls after the first do nothing.
func (n *node) stop() { n.stopOnce.Do(n.shutdown) }

func (n *node) shutdown() {
	if err := n.committer.Close(); err != nil {
		n.logger.Warn("close ingest", "err", err)
	}
	n.stopListen()
	n.stopDispatch()
	if err := <-n.dispatchDone; err != nil {
		n.logger.Warn("stop dispatcher", "err", err)
	}
	n.sender.Close()
}
