package storetest

import (
	"fmt"
	"testing"

	"github.com/herald-webhooks/herald"
)

var applicationTests = []namedTest{
	{"CreateAndGet", testApplicationCreateAndGet},
	{"IDBeforeUID", testApplicationIDBeforeUID},
	{"UniqueUID", testApplicationUniqueUID},
	{"NotFound", testApplicationNotFound},
	{"Update", testApplicationUpdate},
	{"UpdateToTakenUID", testApplicationUpdateToTakenUID},
	{"List", testApplicationList},
	{"ListLimitBelowOne", testApplicationListLimitBelowOne},
	{"Delete", testApplicationDelete},
}

// newApp returns an application created at(n) with an ID of that moment.
func newApp(n int) *herald.Application {
	return &herald.Application{
		ID:        id(herald.PrefixApplication, n),
		Name:      fmt.Sprintf("App %d", n),
		CreatedAt: at(n),
		UpdatedAt: at(n),
	}
}

// mustCreateApp stores app and returns it.
func mustCreateApp(t *testing.T, s herald.Store, app *herald.Application) *herald.Application {
	t.Helper()
	mustOK(t, "CreateApplication "+app.ID, s.CreateApplication(t.Context(), app))
	return app
}

// mustGetApp returns the application ref names.
func mustGetApp(t *testing.T, s herald.Store, ref string) *herald.Application {
	t.Helper()
	got, err := s.GetApplication(t.Context(), ref)
	mustOK(t, "GetApplication "+ref, err)
	return got
}

func testApplicationCreateAndGet(t *testing.T, s herald.Store) {
	full := newApp(1)
	full.UID = "customer-1"
	full.RateLimit = u16(250)
	full.Metadata = map[string]string{"plan": "pro", "région": "eu-west"}
	mustCreateApp(t, s, full)
	bare := mustCreateApp(t, s, newApp(2))

	mustEqual(t, "get by ID", full, mustGetApp(t, s, full.ID))
	mustEqual(t, "get by UID", full, mustGetApp(t, s, "customer-1"))
	mustEqual(t, "get app without uid", bare, mustGetApp(t, s, bare.ID))

	// An unset uid is not the empty string: nothing is found by "".
	_, err := s.GetApplication(t.Context(), "")
	mustCode(t, `GetApplication("")`, err, herald.ENOTFOUND)
}

func testApplicationIDBeforeUID(t *testing.T, s herald.Store) {
	// A ref is looked up as an ID first, so a uid that happens to be another
	// application's ID cannot shadow that application.
	target := mustCreateApp(t, s, newApp(1))
	squatter := newApp(2)
	squatter.UID = target.ID
	mustCreateApp(t, s, squatter)
	mustEqual(t, "get by ID", target, mustGetApp(t, s, target.ID))
	mustEqual(t, "squatter by its ID", squatter, mustGetApp(t, s, squatter.ID))
}

func testApplicationUniqueUID(t *testing.T, s herald.Store) {
	first := newApp(1)
	first.UID = "taken"
	mustCreateApp(t, s, first)

	dup := newApp(2)
	dup.UID = "taken"
	mustCode(t, "create with taken uid", s.CreateApplication(t.Context(), dup), herald.ECONFLICT)
	_, err := s.GetApplication(t.Context(), dup.ID)
	mustCode(t, "get refused app", err, herald.ENOTFOUND)

	// The same ID twice is a conflict too.
	again := newApp(3)
	again.ID = first.ID
	mustCode(t, "create with taken ID", s.CreateApplication(t.Context(), again), herald.ECONFLICT)

	// Any number of applications may leave their uid unset.
	mustCreateApp(t, s, newApp(4))
	mustCreateApp(t, s, newApp(5))
	mustEqual(t, "uid owner unchanged", first, mustGetApp(t, s, "taken"))
}

func testApplicationNotFound(t *testing.T, s herald.Store) {
	ctx := t.Context()
	mustCreateApp(t, s, newApp(1))
	missing := newApp(2)
	missing.UID = "missing"

	_, err := s.GetApplication(ctx, missing.ID)
	mustCode(t, "get unknown ID", err, herald.ENOTFOUND)
	_, err = s.GetApplication(ctx, "missing")
	mustCode(t, "get unknown uid", err, herald.ENOTFOUND)
	mustCode(t, "update unknown", s.UpdateApplication(ctx, missing), herald.ENOTFOUND)
	mustCode(t, "delete unknown", s.DeleteApplication(ctx, missing.ID), herald.ENOTFOUND)
	_, err = s.GetApplication(ctx, missing.ID)
	mustCode(t, "update must not create", err, herald.ENOTFOUND)
}

func testApplicationUpdate(t *testing.T, s herald.Store) {
	orig := newApp(1)
	orig.UID = "before"
	orig.RateLimit = u16(10)
	orig.Metadata = map[string]string{"keep": "no", "drop": "me"}
	mustCreateApp(t, s, orig)

	steps := []struct {
		name string
		edit func(a *herald.Application)
	}{
		{"change everything", func(a *herald.Application) {
			a.UID = "after"
			a.Name = "Renamed"
			a.RateLimit = nil
			a.Metadata = map[string]string{"keep": "yes", "new": "1"}
		}},
		{"set rate limit, clear metadata", func(a *herald.Application) {
			a.RateLimit = u16(65535)
			a.Metadata = nil
		}},
		{"clear uid", func(a *herald.Application) { a.UID = "" }},
		{"set uid again", func(a *herald.Application) { a.UID = "before" }},
	}
	want := *orig
	for i, step := range steps {
		upd := want
		step.edit(&upd)
		upd.UpdatedAt = at(100 + i)
		// CreatedAt is not mutable: a Svix client never sees it change, even
		// when an update carries another value.
		upd.CreatedAt = at(500)
		mustOK(t, step.name, s.UpdateApplication(t.Context(), &upd))
		want = upd
		want.CreatedAt = orig.CreatedAt
		mustEqual(t, step.name, &want, mustGetApp(t, s, orig.ID))
		if want.UID != "" {
			mustEqual(t, step.name+": get by new uid", &want, mustGetApp(t, s, want.UID))
		}
	}

	// "after" was given up when the uid was cleared: it finds nothing and
	// another application may take it.
	_, err := s.GetApplication(t.Context(), "after")
	mustCode(t, "get by released uid", err, herald.ENOTFOUND)
	other := newApp(2)
	other.UID = "after"
	mustCreateApp(t, s, other)
	mustEqual(t, "released uid reused", other, mustGetApp(t, s, "after"))
}

func testApplicationUpdateToTakenUID(t *testing.T, s herald.Store) {
	a := newApp(1)
	a.UID = "a"
	mustCreateApp(t, s, a)
	b := newApp(2)
	b.UID = "b"
	mustCreateApp(t, s, b)

	upd := *b
	upd.UID = "a"
	upd.Name = "B renamed"
	mustCode(t, "update to taken uid", s.UpdateApplication(t.Context(), &upd), herald.ECONFLICT)
	mustEqual(t, "refused update changed nothing", b, mustGetApp(t, s, b.ID))
	mustEqual(t, "uid owner unchanged", a, mustGetApp(t, s, "a"))

	// Keeping one's own uid is no conflict.
	upd = *a
	upd.Name = "A renamed"
	mustOK(t, "update keeping own uid", s.UpdateApplication(t.Context(), &upd))
	mustEqual(t, "update keeping own uid", &upd, mustGetApp(t, s, "a"))
}

func testApplicationList(t *testing.T, s herald.Store) {
	const n = 2*pageSize + 1
	// Created out of ID order, so a store that lists by insertion order fails.
	apps := make([]*herald.Application, n)
	want := make([]string, n)
	for i := range n {
		apps[i] = newApp(i)
		want[i] = apps[i].ID
	}
	for _, i := range creationOrder {
		mustCreateApp(t, s, apps[i])
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			exp := want
			if o.order == herald.Descending {
				exp = reversed(want)
			}
			mustWalk(t, "application IDs", exp, func(cursor string) ([]*herald.Application, error) {
				return s.ListApplications(t.Context(), herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order})
			}, func(a *herald.Application) string { return a.ID })
		})
	}

	// Rows come back whole, not just their IDs.
	page, err := s.ListApplications(t.Context(), herald.ListOptions{Limit: 1})
	mustOK(t, "list first", err)
	mustEqual(t, "listed row", apps[:1], page)
}

func testApplicationListLimitBelowOne(t *testing.T, s herald.Store) {
	for i := range 3 {
		mustCreateApp(t, s, newApp(i))
	}
	for _, limit := range []int{0, -5} {
		page, err := s.ListApplications(t.Context(), herald.ListOptions{Limit: limit})
		mustOK(t, "list", err)
		if len(page) != 1 {
			t.Errorf("Limit %d returned %d rows, want 1 (values below 1 count as 1)", limit, len(page))
		}
	}
}

func testApplicationDelete(t *testing.T, s herald.Store) {
	gone := newApp(1)
	gone.UID = "gone"
	mustCreateApp(t, s, gone)
	kept := mustCreateApp(t, s, newApp(2))

	mustOK(t, "delete", s.DeleteApplication(t.Context(), gone.ID))
	_, err := s.GetApplication(t.Context(), gone.ID)
	mustCode(t, "get deleted by ID", err, herald.ENOTFOUND)
	_, err = s.GetApplication(t.Context(), "gone")
	mustCode(t, "get deleted by uid", err, herald.ENOTFOUND)
	mustCode(t, "delete twice", s.DeleteApplication(t.Context(), gone.ID), herald.ENOTFOUND)
	mustEqual(t, "other app kept", kept, mustGetApp(t, s, kept.ID))

	list, err := s.ListApplications(t.Context(), herald.ListOptions{Limit: 10})
	mustOK(t, "list", err)
	mustEqual(t, "listed after delete", []*herald.Application{kept}, list)

	// The uid of a deleted application is free again.
	again := newApp(3)
	again.UID = "gone"
	mustCreateApp(t, s, again)
}
