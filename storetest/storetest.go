package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-webhooks/herald"
)

// base is the fixed moment every subtest counts from, so IDs and times are
// reproducible. It lies in the past of any real clock on purpose: a store
// that consults the wall clock instead of the times it is given shows up.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the conformance suite against the stores newStore returns. Every
// subtest gets its own store.
func Run(t *testing.T, newStore func(t *testing.T) herald.Store) {
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"Ping", []namedTest{{"Answers", testPing}}},
		{"Application", applicationTests},
		{"EventType", eventTypeTests},
		{"Endpoint", endpointTests},
		{"Message", messageTests},
		{"Delete", deleteTests},
		{"Idempotency", idempotencyTests},
		{"Engine", engineTests},
		{"Attempt", attemptTests},
		{"Delivery", deliveryTests},
		{"Isolation", isolationTests},
		{"Telemetry", telemetryTests},
		{"Retention", retentionTests},
		{"Token", tokenTests},
		{"Seal", sealTests},
		{"Audit", auditTests},
		{"Patch", patchTests},
		{"Task", taskTests},
		{"Usage", usageTests},
		{"Poll", pollTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

// namedTest is one subtest of the suite.
type namedTest struct {
	name string
	fn   func(t *testing.T, s herald.Store)
}

func testPing(t *testing.T, s herald.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// at returns base plus n seconds: distinct seconds give KSUIDs a fixed order.
func at(n int) time.Time {
	return base.Add(time.Duration(n) * time.Second)
}

// id returns an ID with the given prefix whose time component is at(n), so
// IDs made with increasing n sort in that order.
func id(prefix string, n int) string {
	return herald.NewIDAt(prefix, at(n))
}

func u16(v uint16) *uint16 { return &v }

// diffOpts compares domain values: nil and empty collections are the same,
// times compare with Equal (cmp uses the method), and event type schemas
// compare as JSON values because an engine may store them as JSON (jsonb)
// and reformat the text.
var diffOpts = []cmp.Option{
	cmp.FilterPath(func(p cmp.Path) bool { return !isSchemas(p) }, cmpopts.EquateEmpty()),
	cmp.FilterPath(isSchemas, cmp.Comparer(jsonEqual)),
}

// isSchemas reports whether p leads to an EventType's Schemas field.
func isSchemas(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	return ok && sf.Name() == "Schemas"
}

// jsonEqual reports whether two JSON texts hold the same value; empty texts
// are equal to each other only.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return cmp.Equal(va, vb)
}

// mustEqual fails the test with a diff when got differs from want.
// Extra options add to diffOpts.
func mustEqual(t *testing.T, what string, want, got any, extra ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(want, got, append(slices.Clone(diffOpts), extra...)...); diff != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// mustCode fails the test unless err carries the given herald error code.
func mustCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := herald.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

// mustOK fails the test when err is not nil.
func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pageSize is the limit pagination tests use; they create more than
// 2*pageSize rows so that a full walk needs at least three pages.
const pageSize = 3

// walkPages lists every page of a listing: fetch returns the page after
// cursor ("" for the first), key names a row (its cursor value). It fails the
// test when a page is over pageSize or the walk does not end, and returns
// the keys in the order seen and the number of pages fetched.
func walkPages[T any](t *testing.T, fetch func(cursor string) ([]T, error), key func(T) string) ([]string, int) {
	t.Helper()
	var keys []string
	cursor := ""
	for pages := 1; pages <= 100; pages++ {
		page, err := fetch(cursor)
		mustOK(t, fmt.Sprintf("list page %d after %q", pages, cursor), err)
		if len(page) > pageSize {
			t.Fatalf("page %d has %d rows, limit is %d", pages, len(page), pageSize)
		}
		for _, row := range page {
			keys = append(keys, key(row))
		}
		if len(page) < pageSize {
			return keys, pages
		}
		cursor = key(page[len(page)-1])
	}
	t.Fatalf("listing did not end after 100 pages; keys so far: %v", keys)
	return nil, 0
}

// mustWalk walks a listing in pages and checks that it yields exactly want,
// in order: no row repeated, skipped or out of place. A want of two pages or
// more must take at least three fetches (the last one short or empty), which
// guards the test itself against too few rows.
func mustWalk[T any](t *testing.T, what string, want []string, fetch func(cursor string) ([]T, error), key func(T) string) {
	t.Helper()
	got, pages := walkPages(t, fetch, key)
	mustEqual(t, what, want, got)
	if len(want) >= 2*pageSize && pages < 3 {
		t.Fatalf("%s: walked %d pages, the test needs at least 3", what, pages)
	}
}

// reversed returns a reversed copy of s.
func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// orders are both list directions, named for subtests.
var orders = []struct {
	name  string
	order herald.Order
}{
	{"Ascending", herald.Ascending},
	{"Descending", herald.Descending},
}

// creationOrder is a permutation of 0..2*pageSize used to insert listing
// rows out of their sort order, so a store that lists by insertion order
// fails.
var creationOrder = []int{3, 0, 6, 1, 5, 2, 4}
