package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target (GOGC) of serve and
// of bench's in-process Herald when the environment does not set GOGC.
// Herald's live heap is small and it allocates for every request and
// delivery, so Go's default of 100 collects often; 200 trades a little RSS
// for less CPU (BENCHMARKS.md, "Fifth session figures"). GOGC, and
// GOMEMLIMIT for a soft cap, still apply as usual when set.
const defaultGCPercent = 200

// applyGCDefault sets the collector's target to defaultGCPercent unless
// getenv("GOGC") is set, and returns the target in force.
func applyGCDefault(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}
