package main

import (
	"context"
	"os"

	"github.com/herald-webhooks/herald/internal/bench"
)

// BenchCmd is `herald bench`: its flags and the run are package bench's;
// this file only starts the in-process node the way serve does.
type BenchCmd struct {
	bench.Command
}

// Run runs the benchmark with an in-process node started by startNode
// (unless --url names a running Herald).
func (c *BenchCmd) Run(env *Env) error {
	if c.URL == "" {
		// The in-process Herald runs as serve would.
		applyGCDefault(os.Getenv)
	}
	return c.Command.Run(bench.Env{
		Ctx:       env.Ctx,
		Stdout:    env.Stdout,
		Stderr:    env.Stderr,
		Terminal:  isTerminal(env.Stdout),
		StartNode: startBenchNode,
	})
}

// startBenchNode starts a node from bench's settings: serve's defaults for
// the rest, and /metrics on the API, which bench scrapes.
func startBenchNode(ctx context.Context, cfg bench.NodeConfig) (*bench.Node, error) {
	sender := cfg.Sender
	sender.UserAgent = "Herald/" + Version()
	n, err := startNode(ctx, nodeConfig{
		Store:          cfg.Store,
		Logger:         cfg.Logger,
		Sender:         sender,
		Dispatch:       cfg.Dispatch,
		AdminTokenHash: cfg.AdminTokenHash,
		ServeMetrics:   true,
	})
	if err != nil {
		return nil, err
	}
	return &bench.Node{Handler: n.api, Stop: n.stop}, nil
}
