package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target (GOGC) of serve and
// of bench's in-process Herald when the environment does not set GOGC.
// Herald's live heap is small (tens of MiB) and it allocates for every
// request and delivery, so Go's default of 100 collects often: at 200 a
// one-to-one herald bench run used 11–16 % less CPU and delivered 16–17 %
// more, for about 15 MiB more peak RSS (35 MiB on a 1→50 burst;
// BENCHMARKS.md). GOGC, and GOMEMLIMIT for a soft cap, still apply as
// usual when set.
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
