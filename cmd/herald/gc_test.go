package main

import (
	"runtime/debug"
	"testing"
)

// TestGCDefault: without GOGC Herald runs at defaultGCPercent; with GOGC
// set, Go's own setting stays.
func TestGCDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	current := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}

	if got := applyGCDefault(func(string) string { return "" }); got != defaultGCPercent || current() != defaultGCPercent {
		t.Errorf("GOGC unset: applyGCDefault = %d, in force %d; want %d", got, current(), defaultGCPercent)
	}

	debug.SetGCPercent(50) // as GOGC=50 would have set it at start
	env := func(name string) string {
		if name == "GOGC" {
			return "50"
		}
		return ""
	}
	if got := applyGCDefault(env); got != 50 || current() != 50 {
		t.Errorf("GOGC=50: applyGCDefault = %d, in force %d; want 50 kept", got, current())
	}
}
