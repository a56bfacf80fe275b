// Package storetest is the conformance suite every herald.Store engine must
// pass, so that the SQLite and PostgreSQL stores behave the same way behind
// the one interface.
//
// An engine runs it from its own tests with a factory that returns a fresh,
// empty store and registers the store's cleanup:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) herald.Store {
//			s, err := sqlite.Open(t.Context(), sqlite.Config{
//				Path:    filepath.Join(t.TempDir(), "herald.db"),
//				Keyring: testKeyring(t),
//			})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls the factory once per subtest and drives the store only through
// herald.Store, so a failure names the subtest and the first difference
// (via go-cmp). Where the doc comments of herald.Store leave a behaviour
// open, the suite tests what a Svix user would expect and says so in a
// comment next to the check; an engine that disagrees should change the
// contract in store.go first, not skip the subtest.
//
// Conventions the suite relies on:
//   - The caller sets every ID (herald.NewIDAt) and every CreatedAt and
//     UpdatedAt; a store keeps them as given, to the microsecond (times are
//     truncated, not rounded, to microseconds).
//   - Delivery rows are created by the store: it chooses their ID and
//     CreatedAt, and sets NextAttemptAt to the message's CreatedAt.
//   - BeginIdempotent judges whether an existing record expired at the new
//     record's CreatedAt, the caller's clock, since the verb takes no other
//     time.
package storetest
