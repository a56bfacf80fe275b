package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target (GOGC) of serve and
// of bench's in-process Herald when the environment does not set GOGC.
// Herald's live heap is small (tens of MiB) and it allocates for every
// request and delivery, so Go's default of 100 collects often: at 200 a
// one-to-one run used 14 % less CPU and delivered 4–8 % more relative to
// its baseline, for 14–20 MiB more peak RSS (BENCHMARKS.md). GOGC, and
// GOMEMLIMIT for a hard cap, still apply as usual when set.
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
