package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/herald-webhooks/herald"
)

var endpointTests = []namedTest{
	{"CreateAndGet", testEndpointCreateAndGet},
	{"CreateInUnknownApp", testEndpointCreateInUnknownApp},
	{"UniqueUID", testEndpointUniqueUID},
	{"NotFound", testEndpointNotFound},
	{"Update", testEndpointUpdate},
	{"UpdateToTakenUID", testEndpointUpdateToTakenUID},
	{"List", testEndpointList},
	{"Secrets", testEndpointSecrets},
	{"BrokerURLPassword", testEndpointBrokerURLPassword},
	{"RotateSecret", testEndpointRotateSecret},
}

// secretKey returns a deterministic n-byte key that differs per seed and
// holds zero and high bytes, which a careless text encoding would mangle.
func secretKey(seed byte, n int) []byte {
	key := make([]byte, n)
	for i := range key {
		key[i] = seed*31 + byte(i*7)
	}
	key[0], key[n-1] = 0, 0xff
	return key
}

// newEndpoint returns an endpoint of appID created at(n) with one current
// secret.
func newEndpoint(appID string, n int) *herald.Endpoint {
	return &herald.Endpoint{
		ID:        id(herald.PrefixEndpoint, n),
		AppID:     appID,
		URL:       fmt.Sprintf("https://example.com/hooks/%d", n),
		Version:   1,
		Secrets:   []herald.SigningSecret{{Key: secretKey(byte(n), 24)}},
		CreatedAt: at(n),
		UpdatedAt: at(n),
	}
}

// mustCreateEndpoint stores ep and returns it.
func mustCreateEndpoint(t *testing.T, s herald.Store, ep *herald.Endpoint) *herald.Endpoint {
	t.Helper()
	mustOK(t, "CreateEndpoint "+ep.ID, s.CreateEndpoint(t.Context(), ep))
	return ep
}

// mustGetEndpoint returns the endpoint ref names in application appID.
func mustGetEndpoint(t *testing.T, s herald.Store, appID, ref string) *herald.Endpoint {
	t.Helper()
	got, err := s.GetEndpoint(t.Context(), appID, ref)
	mustOK(t, "GetEndpoint "+ref, err)
	return got
}

func testEndpointCreateAndGet(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))

	full := newEndpoint(app.ID, 10)
	full.UID = "primary"
	full.Description = "Production receiver ✓"
	full.Version = 3
	full.FilterTypes = []string{"invoice.paid", "user.created"}
	full.Channels = []string{"eu", "project-42"}
	full.RateLimit = u16(40)
	full.Metadata = map[string]string{"team": "billing"}
	full.Headers = map[string]string{"X-Api-Key": "k-123", "X-Tenant": "acme"}
	mustCreateEndpoint(t, s, full)
	disabled := newEndpoint(app.ID, 11)
	disabled.Disabled = true
	mustCreateEndpoint(t, s, disabled)

	mustEqual(t, "get by ID", full, mustGetEndpoint(t, s, app.ID, full.ID))
	mustEqual(t, "get by uid", full, mustGetEndpoint(t, s, app.ID, "primary"))
	mustEqual(t, "disabled endpoint", disabled, mustGetEndpoint(t, s, app.ID, disabled.ID))

	// An endpoint is only visible within its own application.
	_, err := s.GetEndpoint(t.Context(), other.ID, full.ID)
	mustCode(t, "get by ID in another app", err, herald.ENOTFOUND)
	_, err = s.GetEndpoint(t.Context(), other.ID, "primary")
	mustCode(t, "get by uid in another app", err, herald.ENOTFOUND)
	_, err = s.GetEndpoint(t.Context(), app.ID, "")
	mustCode(t, `get by ""`, err, herald.ENOTFOUND)
}

func testEndpointCreateInUnknownApp(t *testing.T, s herald.Store) {
	// Svix answers 404 when the application in the path does not exist.
	ep := newEndpoint(id(herald.PrefixApplication, 1), 2)
	mustCode(t, "create in unknown app", s.CreateEndpoint(t.Context(), ep), herald.ENOTFOUND)
}

func testEndpointUniqueUID(t *testing.T, s herald.Store) {
	a := mustCreateApp(t, s, newApp(1))
	b := mustCreateApp(t, s, newApp(2))

	inA := newEndpoint(a.ID, 10)
	inA.UID = "hook"
	mustCreateEndpoint(t, s, inA)
	dup := newEndpoint(a.ID, 11)
	dup.UID = "hook"
	mustCode(t, "same uid in same app", s.CreateEndpoint(t.Context(), dup), herald.ECONFLICT)
	_, err := s.GetEndpoint(t.Context(), a.ID, dup.ID)
	mustCode(t, "refused endpoint", err, herald.ENOTFOUND)

	// uids are unique per application only.
	inB := newEndpoint(b.ID, 12)
	inB.UID = "hook"
	mustCreateEndpoint(t, s, inB)
	mustEqual(t, "uid in app A", inA, mustGetEndpoint(t, s, a.ID, "hook"))
	mustEqual(t, "uid in app B", inB, mustGetEndpoint(t, s, b.ID, "hook"))

	sameID := newEndpoint(a.ID, 13)
	sameID.ID = inA.ID
	mustCode(t, "same ID", s.CreateEndpoint(t.Context(), sameID), herald.ECONFLICT)

	// Any number of endpoints may leave their uid unset.
	mustCreateEndpoint(t, s, newEndpoint(a.ID, 14))
	mustCreateEndpoint(t, s, newEndpoint(a.ID, 15))
}

func testEndpointNotFound(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	ep := newEndpoint(app.ID, 10)
	ep.UID = "hook"
	mustCreateEndpoint(t, s, ep)
	missing := newEndpoint(app.ID, 11)

	_, err := s.GetEndpoint(ctx, app.ID, missing.ID)
	mustCode(t, "get unknown ID", err, herald.ENOTFOUND)
	_, err = s.GetEndpoint(ctx, app.ID, "no-such-uid")
	mustCode(t, "get unknown uid", err, herald.ENOTFOUND)
	_, err = s.GetEndpoint(ctx, id(herald.PrefixApplication, 3), ep.ID)
	mustCode(t, "get in unknown app", err, herald.ENOTFOUND)
	mustCode(t, "update unknown", s.UpdateEndpoint(ctx, missing), herald.ENOTFOUND)
	mustCode(t, "delete unknown", s.DeleteEndpoint(ctx, app.ID, missing.ID), herald.ENOTFOUND)
	mustCode(t, "rotate unknown",
		s.RotateEndpointSecret(ctx, app.ID, missing.ID, herald.SigningSecret{Key: secretKey(9, 32)}, at(200), at(100)), herald.ENOTFOUND)
	_, err = s.GetEndpoint(ctx, app.ID, missing.ID)
	mustCode(t, "update must not create", err, herald.ENOTFOUND)

	// The right ID in the wrong application is not found and not touched.
	moved := *ep
	moved.AppID = other.ID
	moved.URL = "https://evil.example.com/"
	mustCode(t, "update in other app", s.UpdateEndpoint(ctx, &moved), herald.ENOTFOUND)
	mustCode(t, "delete in other app", s.DeleteEndpoint(ctx, other.ID, ep.ID), herald.ENOTFOUND)
	mustCode(t, "rotate in other app",
		s.RotateEndpointSecret(ctx, other.ID, ep.ID, herald.SigningSecret{Key: secretKey(9, 32)}, at(200), at(100)), herald.ENOTFOUND)
	mustEqual(t, "endpoint untouched", ep, mustGetEndpoint(t, s, app.ID, ep.ID))
}

func testEndpointUpdate(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	orig := newEndpoint(app.ID, 10)
	orig.UID = "before"
	orig.Metadata = map[string]string{"drop": "me"}
	orig.Headers = map[string]string{"X-Old": "1"}
	mustCreateEndpoint(t, s, orig)

	steps := []struct {
		name string
		edit func(ep *herald.Endpoint)
	}{
		{"change everything", func(ep *herald.Endpoint) {
			ep.UID = "after"
			ep.URL = "https://receiver.example.org/v2?x=1"
			ep.Description = "Moved"
			ep.Version = 2
			ep.Disabled = true
			ep.FilterTypes = []string{"user.created"}
			ep.Channels = []string{"ch-1", "ch-2"}
			ep.RateLimit = u16(7)
			ep.Metadata = map[string]string{"keep": "yes"}
			ep.Headers = map[string]string{"X-New": "2", "Authorization": "Bearer x"}
			ep.Secrets = []herald.SigningSecret{
				{Key: secretKey(20, 32)},
				{Key: secretKey(21, 24), ExpiresAt: at(1000)},
			}
		}},
		{"clear everything", func(ep *herald.Endpoint) {
			ep.UID = ""
			ep.Description = ""
			ep.Disabled = false
			ep.FilterTypes = nil
			ep.Channels = nil
			ep.RateLimit = nil
			ep.Metadata = nil
			ep.Headers = nil
			ep.Secrets = []herald.SigningSecret{{Key: secretKey(22, 64)}}
		}},
		{"set uid again", func(ep *herald.Endpoint) { ep.UID = "before" }},
	}
	want := *orig
	for i, step := range steps {
		upd := want
		step.edit(&upd)
		upd.UpdatedAt = at(100 + i)
		// CreatedAt is not mutable, whatever the update carries.
		upd.CreatedAt = at(500)
		mustOK(t, step.name, s.UpdateEndpoint(t.Context(), &upd))
		want = upd
		want.CreatedAt = orig.CreatedAt
		mustEqual(t, step.name, &want, mustGetEndpoint(t, s, app.ID, orig.ID))
		if want.UID != "" {
			mustEqual(t, step.name+": get by uid", &want, mustGetEndpoint(t, s, app.ID, want.UID))
		}
	}

	// "after" was released when the uid was cleared.
	_, err := s.GetEndpoint(t.Context(), app.ID, "after")
	mustCode(t, "get by released uid", err, herald.ENOTFOUND)
	reuse := newEndpoint(app.ID, 11)
	reuse.UID = "after"
	mustCreateEndpoint(t, s, reuse)
}

func testEndpointUpdateToTakenUID(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	a := newEndpoint(app.ID, 10)
	a.UID = "a"
	mustCreateEndpoint(t, s, a)
	b := newEndpoint(app.ID, 11)
	b.UID = "b"
	mustCreateEndpoint(t, s, b)

	upd := *b
	upd.UID = "a"
	upd.URL = "https://changed.example.com/"
	mustCode(t, "update to taken uid", s.UpdateEndpoint(t.Context(), &upd), herald.ECONFLICT)
	mustEqual(t, "refused update changed nothing", b, mustGetEndpoint(t, s, app.ID, b.ID))
	mustEqual(t, "uid owner unchanged", a, mustGetEndpoint(t, s, app.ID, "a"))
}

func testEndpointList(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	other := mustCreateApp(t, s, newApp(2))
	const n = 2*pageSize + 1
	eps := make([]*herald.Endpoint, n)
	want := make([]string, n)
	for i := range n {
		eps[i] = newEndpoint(app.ID, 10+i)
		want[i] = eps[i].ID
	}
	for _, i := range creationOrder {
		mustCreateEndpoint(t, s, eps[i])
		// Another application's endpoints, interleaved by ID, never show.
		mustCreateEndpoint(t, s, newEndpoint(other.ID, 10+i))
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			exp := want
			if o.order == herald.Descending {
				exp = reversed(want)
			}
			mustWalk(t, "endpoint IDs", exp, func(cursor string) ([]*herald.Endpoint, error) {
				return s.ListEndpoints(t.Context(), app.ID, herald.ListOptions{Limit: pageSize, Cursor: cursor, Order: o.order})
			}, func(ep *herald.Endpoint) string { return ep.ID })
		})
	}

	page, err := s.ListEndpoints(t.Context(), app.ID, herald.ListOptions{Limit: 2})
	mustOK(t, "list first two", err)
	mustEqual(t, "listed rows, secrets included", eps[:2], page)
}

func testEndpointSecrets(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := newEndpoint(app.ID, 10)
	ep.Secrets = []herald.SigningSecret{
		{Key: secretKey(1, 64)},
		{Key: secretKey(2, 32), ExpiresAt: at(3600).Add(123456 * time.Microsecond)},
		{Key: secretKey(3, 24), ExpiresAt: at(60)},
		{Key: secretKey(4, 64), Type: herald.SecretEd25519, ExpiresAt: at(90)},
	}
	mustCreateEndpoint(t, s, ep)
	mustEqual(t, "secrets after create", ep.Secrets, mustGetEndpoint(t, s, app.ID, ep.ID).Secrets)

	// Two endpoints may hold the same key; each keeps its own list.
	twin := newEndpoint(app.ID, 11)
	twin.Secrets = []herald.SigningSecret{{Key: secretKey(1, 64)}}
	mustCreateEndpoint(t, s, twin)
	mustEqual(t, "twin secrets", twin.Secrets, mustGetEndpoint(t, s, app.ID, twin.ID).Secrets)
	mustEqual(t, "first endpoint secrets", ep.Secrets, mustGetEndpoint(t, s, app.ID, ep.ID).Secrets)
}

func testEndpointRotateSecret(t *testing.T, s herald.Store) {
	ctx := t.Context()
	app := mustCreateApp(t, s, newApp(1))
	ep := newEndpoint(app.ID, 10)
	current := herald.SigningSecret{Key: secretKey(1, 24)}
	stillValid := herald.SigningSecret{Key: secretKey(2, 24), ExpiresAt: at(200)}
	ended := herald.SigningSecret{Key: secretKey(3, 24), ExpiresAt: at(50)}
	ep.Secrets = []herald.SigningSecret{current, stillValid, ended}
	mustCreateEndpoint(t, s, ep)
	// A bystander endpoint's secrets must not change.
	bystander := mustCreateEndpoint(t, s, newEndpoint(app.ID, 11))

	// Rotation may record its time in UpdatedAt; everything else must stay.
	ignoreUpdated := cmpopts.IgnoreFields(herald.Endpoint{}, "UpdatedAt")

	next := secretKey(4, 32)
	now := at(100)
	grace := now.Add(24 * time.Hour)
	mustOK(t, "first rotation", s.RotateEndpointSecret(ctx, app.ID, ep.ID, herald.SigningSecret{Key: next}, grace, now))
	want := *ep
	want.Secrets = []herald.SigningSecret{
		{Key: next},
		{Key: current.Key, ExpiresAt: grace},
		stillValid,
		// ended expired before now and is dropped.
	}
	mustEqual(t, "after first rotation", &want, mustGetEndpoint(t, s, app.ID, ep.ID), ignoreUpdated)

	// A second rotation after the grace period, to an ed25519 key, drops
	// the first current secret and stillValid; the HMAC one it replaces
	// keeps signing.
	next2 := herald.SigningSecret{Key: secretKey(5, 64), Type: herald.SecretEd25519}
	now2 := grace.Add(time.Hour)
	grace2 := now2.Add(24 * time.Hour)
	mustOK(t, "second rotation", s.RotateEndpointSecret(ctx, app.ID, ep.ID, next2, grace2, now2))
	want.Secrets = []herald.SigningSecret{next2, {Key: next, ExpiresAt: grace2}}
	mustEqual(t, "after second rotation", &want, mustGetEndpoint(t, s, app.ID, ep.ID), ignoreUpdated)

	// Back to HMAC inside that grace period: the ed25519 key keeps its type
	// while it overlaps, and the given ExpiresAt of next is ignored.
	next3 := secretKey(6, 24)
	now3 := now2.Add(time.Hour)
	grace3 := now3.Add(time.Hour)
	mustOK(t, "third rotation", s.RotateEndpointSecret(ctx, app.ID, ep.ID, herald.SigningSecret{Key: next3, ExpiresAt: at(1)}, grace3, now3))
	want.Secrets = []herald.SigningSecret{
		{Key: next3},
		{Key: next2.Key, Type: herald.SecretEd25519, ExpiresAt: grace3},
		{Key: next, ExpiresAt: grace2},
	}
	mustEqual(t, "after third rotation", &want, mustGetEndpoint(t, s, app.ID, ep.ID), ignoreUpdated)

	mustEqual(t, "bystander", bystander, mustGetEndpoint(t, s, app.ID, bystander.ID))
}

// testEndpointBrokerURLPassword: a broker URL's password is sealed with
// the headers and read back in the URL by every read (get, list, the
// update's read), with the headers unchanged; a URL without a password
// and an endpoint without headers round-trip as they were.
func testEndpointBrokerURLPassword(t *testing.T, s herald.Store) {
	app := mustCreateApp(t, s, newApp(1))
	ep := newEndpoint(app.ID, 20)
	ep.URL = "nats://herald:s3cr%2Ft-pw@nats.example.com:4222/orders.created"
	ep.Headers = map[string]string{"X-Tenant": "acme"}
	mustCreateEndpoint(t, s, ep)
	got := mustGetEndpoint(t, s, app.ID, ep.ID)
	mustEqual(t, "URL after create", ep.URL, got.URL)
	mustEqual(t, "headers after create", ep.Headers, got.Headers)

	bare := newEndpoint(app.ID, 21)
	bare.URL = "redis://default:pw-only@redis.example.com:6379/0?stream=events"
	bare.Headers = nil
	mustCreateEndpoint(t, s, bare)
	got = mustGetEndpoint(t, s, app.ID, bare.ID)
	mustEqual(t, "URL of an endpoint without headers", bare.URL, got.URL)
	if len(got.Headers) != 0 {
		t.Errorf("headers of an endpoint without headers: %v", got.Headers)
	}

	page, err := s.ListEndpoints(t.Context(), app.ID, herald.ListOptions{Limit: 10})
	mustOK(t, "ListEndpoints", err)
	for _, e := range page {
		if want := map[string]string{ep.ID: ep.URL, bare.ID: bare.URL}[e.ID]; e.URL != want {
			t.Errorf("listed URL of %s = %q, want %q", e.ID, e.URL, want)
		}
	}

	// An update sees the full URL and may change its path; the password
	// stays sealed.
	upd, err := s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(e *herald.Endpoint) error {
		if e.URL != ep.URL {
			t.Errorf("URL seen by the update = %q, want %q", e.URL, ep.URL)
		}
		e.URL = "nats://herald:s3cr%2Ft-pw@nats.example.com:4222/orders.updated"
		return nil
	})
	mustOK(t, "UpdateEndpointFunc", err)
	mustEqual(t, "URL after update", "nats://herald:s3cr%2Ft-pw@nats.example.com:4222/orders.updated", mustGetEndpoint(t, s, app.ID, ep.ID).URL)
	mustEqual(t, "URL the update returned", "nats://herald:s3cr%2Ft-pw@nats.example.com:4222/orders.updated", upd.URL)

	// Dropping the credentials drops the sealed password.
	_, err = s.UpdateEndpointFunc(t.Context(), app.ID, ep.ID, func(e *herald.Endpoint) error {
		e.URL = "nats://nats.example.com:4222/orders.updated"
		return nil
	})
	mustOK(t, "UpdateEndpointFunc", err)
	got = mustGetEndpoint(t, s, app.ID, ep.ID)
	mustEqual(t, "URL without credentials", "nats://nats.example.com:4222/orders.updated", got.URL)
	mustEqual(t, "headers after dropping the credentials", ep.Headers, got.Headers)
}
