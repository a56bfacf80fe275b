package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/herald-webhooks/herald"
)

var eventTypeTests = []namedTest{
	{"CreateAndGet", testEventTypeCreateAndGet},
	{"UniqueName", testEventTypeUniqueName},
	{"NotFound", testEventTypeNotFound},
	{"Update", testEventTypeUpdate},
	{"List", testEventTypeList},
	{"Delete", testEventTypeDelete},
	{"Import", testEventTypeImport},
	{"ImportArchivesOthers", testEventTypeImportArchivesOthers},
}

// newEventType returns an event type called name, created at(n).
func newEventType(n int, name string) *herald.EventType {
	return &herald.EventType{
		Name:        name,
		Description: "Event " + name,
		CreatedAt:   at(n),
		UpdatedAt:   at(n),
	}
}

// mustCreateEventType stores et and returns it.
func mustCreateEventType(t *testing.T, s herald.Store, et *herald.EventType) *herald.EventType {
	t.Helper()
	mustOK(t, "CreateEventType "+et.Name, s.CreateEventType(t.Context(), et))
	return et
}

// mustGetEventType returns the event type called name.
func mustGetEventType(t *testing.T, s herald.Store, name string) *herald.EventType {
	t.Helper()
	got, err := s.GetEventType(t.Context(), name)
	mustOK(t, "GetEventType "+name, err)
	return got
}

func testEventTypeCreateAndGet(t *testing.T, s herald.Store) {
	full := newEventType(1, "invoice.paid")
	full.Description = "An invoice was paid — «payé»"
	full.Deprecated = true
	full.FeatureFlag = "beta-billing"
	full.Schemas = []byte(`{"1":{"type":"object","properties":{"amount":{"type":"integer"}}}}`)
	mustCreateEventType(t, s, full)
	archived := newEventType(2, "user.deleted")
	archived.Archived = true
	mustCreateEventType(t, s, archived)

	mustEqual(t, "full event type", full, mustGetEventType(t, s, "invoice.paid"))
	// An archived event type is still readable by name; only lists hide it.
	mustEqual(t, "archived event type", archived, mustGetEventType(t, s, "user.deleted"))
}

func testEventTypeUniqueName(t *testing.T, s herald.Store) {
	mustCreateEventType(t, s, newEventType(1, "user.created"))
	archived := newEventType(2, "user.old")
	archived.Archived = true
	mustCreateEventType(t, s, archived)

	mustCode(t, "duplicate name", s.CreateEventType(t.Context(), newEventType(3, "user.created")), herald.ECONFLICT)
	// An archived name is still taken (Svix unarchives by updating it).
	mustCode(t, "name of archived type", s.CreateEventType(t.Context(), newEventType(4, "user.old")), herald.ECONFLICT)
	mustEqual(t, "original kept", newEventType(1, "user.created"), mustGetEventType(t, s, "user.created"))
}

func testEventTypeNotFound(t *testing.T, s herald.Store) {
	ctx := t.Context()
	mustCreateEventType(t, s, newEventType(1, "user.created"))
	_, err := s.GetEventType(ctx, "user.missing")
	mustCode(t, "get unknown", err, herald.ENOTFOUND)
	mustCode(t, "update unknown", s.UpdateEventType(ctx, newEventType(2, "user.missing")), herald.ENOTFOUND)
	mustCode(t, "delete unknown", s.DeleteEventType(ctx, "user.missing"), herald.ENOTFOUND)
	_, err = s.GetEventType(ctx, "user.missing")
	mustCode(t, "update must not create", err, herald.ENOTFOUND)
}

func testEventTypeUpdate(t *testing.T, s herald.Store) {
	orig := newEventType(1, "invoice.paid")
	orig.Schemas = []byte(`{"1":{"type":"object"}}`)
	mustCreateEventType(t, s, orig)

	steps := []struct {
		name string
		edit func(et *herald.EventType)
	}{
		{"change everything", func(et *herald.EventType) {
			et.Description = "Paid invoices"
			et.Archived = true
			et.Deprecated = true
			et.FeatureFlag = "billing"
			et.Schemas = []byte(`{"1":{"type":"object"},"2":{"type":"object","required":["id"]}}`)
		}},
		{"clear everything", func(et *herald.EventType) {
			et.Description = ""
			et.Archived = false
			et.Deprecated = false
			et.FeatureFlag = ""
			et.Schemas = nil
		}},
	}
	want := *orig
	for i, step := range steps {
		upd := want
		step.edit(&upd)
		upd.UpdatedAt = at(100 + i)
		// CreatedAt is not mutable, whatever the update carries.
		upd.CreatedAt = at(500)
		mustOK(t, step.name, s.UpdateEventType(t.Context(), &upd))
		want = upd
		want.CreatedAt = orig.CreatedAt
		mustEqual(t, step.name, &want, mustGetEventType(t, s, orig.Name))
	}
}

func testEventTypeList(t *testing.T, s herald.Store) {
	const n = 2*pageSize + 1
	var visible, all []string
	for i := range n {
		visible = append(visible, fmt.Sprintf("evt.%02d", 2*i))
	}
	// Archived types sit between the visible ones, so cursors and limits
	// must skip them rather than count them.
	ets := make(map[string]*herald.EventType)
	for _, i := range creationOrder {
		name := visible[i]
		ets[name] = mustCreateEventType(t, s, newEventType(i, name))
		archived := newEventType(10+i, fmt.Sprintf("evt.%02d", 2*i+1))
		archived.Archived = true
		ets[archived.Name] = mustCreateEventType(t, s, archived)
	}
	for name := range ets {
		all = append(all, name)
	}
	slices.Sort(all)

	for _, tc := range []struct {
		name            string
		includeArchived bool
		want            []string
	}{
		{"WithoutArchived", false, visible},
		{"IncludeArchived", true, all},
	} {
		for _, o := range orders {
			t.Run(tc.name+"/"+o.name, func(t *testing.T) {
				exp := tc.want
				if o.order == herald.Descending {
					exp = reversed(tc.want)
				}
				mustWalk(t, "event type names", exp, func(cursor string) ([]*herald.EventType, error) {
					return s.ListEventTypes(t.Context(), herald.EventTypeListOptions{
						ListOptions:     herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order},
						IncludeArchived: tc.includeArchived,
					})
				}, func(et *herald.EventType) string { return et.Name })
			})
		}
	}

	page, err := s.ListEventTypes(t.Context(), herald.EventTypeListOptions{ListOptions: herald.ListOptions{Limit: 2}})
	mustOK(t, "list first two", err)
	mustEqual(t, "listed rows", []*herald.EventType{ets[visible[0]], ets[visible[1]]}, page)
}

func testEventTypeDelete(t *testing.T, s herald.Store) {
	mustCreateEventType(t, s, newEventType(1, "user.created"))
	kept := mustCreateEventType(t, s, newEventType(2, "user.updated"))

	// DeleteEventType removes the row; archiving is an update.
	mustOK(t, "delete", s.DeleteEventType(t.Context(), "user.created"))
	_, err := s.GetEventType(t.Context(), "user.created")
	mustCode(t, "get deleted", err, herald.ENOTFOUND)
	mustCode(t, "delete twice", s.DeleteEventType(t.Context(), "user.created"), herald.ENOTFOUND)
	mustEqual(t, "other kept", kept, mustGetEventType(t, s, "user.updated"))

	list, err := s.ListEventTypes(t.Context(), herald.EventTypeListOptions{
		ListOptions: herald.ListOptions{Limit: 10}, IncludeArchived: true,
	})
	mustOK(t, "list", err)
	mustEqual(t, "listed after delete", []*herald.EventType{kept}, list)

	// The name is free again.
	mustCreateEventType(t, s, newEventType(3, "user.created"))
}

// importedEventType returns the event type an import at(n) writes.
func importedEventType(n int, name, schema string) *herald.EventType {
	et := newEventType(n, name)
	et.Description = "Imported " + name
	et.Deprecated = true
	et.FeatureFlag = "beta"
	et.Schemas = []byte(`{"1":` + schema + `}`)
	return et
}

// An import creates the new event types and replaces the fields of the
// existing ones, unarchiving them and keeping their creation time; the
// others are left alone.
func testEventTypeImport(t *testing.T, s herald.Store) {
	old := newEventType(1, "invoice.paid")
	old.Archived = true
	old.Schemas = []byte(`{"2":{"type":"object"}}`)
	mustCreateEventType(t, s, old)
	other := mustCreateEventType(t, s, newEventType(2, "user.created"))

	imported := []*herald.EventType{
		importedEventType(10, "invoice.paid", `{"type":"object","examples":[{"a":1}]}`),
		importedEventType(10, "user.deleted", `{"type":"object"}`),
	}
	archived, err := s.ImportEventTypes(t.Context(), imported, false, at(10))
	mustOK(t, "ImportEventTypes", err)
	if len(archived) != 0 {
		t.Fatalf("ImportEventTypes without archiveOthers archived %v", archived)
	}
	want := importedEventType(10, "invoice.paid", `{"type":"object","examples":[{"a":1}]}`)
	want.CreatedAt = at(1)
	mustEqual(t, "updated event type", want, mustGetEventType(t, s, "invoice.paid"))
	mustEqual(t, "created event type", importedEventType(10, "user.deleted", `{"type":"object"}`), mustGetEventType(t, s, "user.deleted"))
	mustEqual(t, "other event type", other, mustGetEventType(t, s, "user.created"))

	// Importing the same again changes only the update time.
	again := []*herald.EventType{importedEventType(11, "user.deleted", `{"type":"object"}`)}
	_, err = s.ImportEventTypes(t.Context(), again, false, at(11))
	mustOK(t, "ImportEventTypes again", err)
	want = importedEventType(11, "user.deleted", `{"type":"object"}`)
	want.CreatedAt = at(10)
	mustEqual(t, "imported twice", want, mustGetEventType(t, s, "user.deleted"))
}

// With archiveOthers an import archives, at now, every unarchived event
// type it does not name, and returns their names in order.
func testEventTypeImportArchivesOthers(t *testing.T, s herald.Store) {
	for i, name := range []string{"b.two", "a.one", "kept"} {
		mustCreateEventType(t, s, newEventType(i, name))
	}
	gone := newEventType(3, "gone")
	gone.Archived = true
	mustCreateEventType(t, s, gone)

	archived, err := s.ImportEventTypes(t.Context(), []*herald.EventType{importedEventType(10, "kept", `{}`)}, true, at(10))
	mustOK(t, "ImportEventTypes", err)
	mustEqual(t, "archived names", []string{"a.one", "b.two"}, archived)
	for i, name := range []string{"b.two", "a.one"} {
		want := newEventType(i, name)
		want.Archived, want.UpdatedAt = true, at(10)
		mustEqual(t, "archived "+name, want, mustGetEventType(t, s, name))
	}
	mustEqual(t, "already archived", gone, mustGetEventType(t, s, "gone"))
	want := importedEventType(10, "kept", `{}`)
	want.CreatedAt = at(2)
	mustEqual(t, "imported", want, mustGetEventType(t, s, "kept"))

	// An empty import with archiveOthers archives everything.
	archived, err = s.ImportEventTypes(t.Context(), nil, true, at(11))
	mustOK(t, "ImportEventTypes empty", err)
	mustEqual(t, "archived by an empty import", []string{"kept"}, archived)
}
