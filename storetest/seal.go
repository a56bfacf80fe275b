package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

var sealTests = []namedTest{
	{"CountAndBatches", testSealCountAndBatches},
}

// sealedEndpoints creates an application with n endpoints, every one but
// the first with a custom header, and returns the endpoints.
func sealedEndpoints(t *testing.T, s herald.Store, n int) []*herald.Endpoint {
	t.Helper()
	app := mustCreateApp(t, s, newApp(1))
	eps := make([]*herald.Endpoint, n)
	for i := range eps {
		ep := newEndpoint(app.ID, 10+i)
		if i > 0 {
			ep.Headers = map[string]string{"Authorization": fmt.Sprintf("Bearer receiver-token-%d", i)}
		}
		eps[i] = mustCreateEndpoint(t, s, ep)
	}
	return eps
}

// testSealCountAndBatches: on a store whose values are all sealed by its
// first key, CountSealed finds nothing stale and ResealEndpoints walks the
// endpoints in ID order, batch by batch, rewriting none.
func testSealCountAndBatches(t *testing.T, s herald.Store) {
	eps := sealedEndpoints(t, s, 5)
	c, err := s.CountSealed(t.Context())
	mustOK(t, "CountSealed", err)
	mustEqual(t, "count", herald.SealCount{Endpoints: 5, Values: 9}, c)

	var got []herald.ResealBatch
	after := ""
	for range 10 {
		b, err := s.ResealEndpoints(t.Context(), after, 2)
		mustOK(t, "ResealEndpoints after "+after, err)
		got = append(got, b)
		if b.Last == "" {
			break
		}
		after = b.Last
	}
	mustEqual(t, "batches", []herald.ResealBatch{
		{Last: eps[1].ID, Endpoints: 2}, {Last: eps[3].ID, Endpoints: 2}, {Last: eps[4].ID, Endpoints: 1}, {},
	}, got)
	for _, ep := range eps {
		mustEqual(t, "endpoint after a reseal with nothing to do", ep, mustGetEndpoint(t, s, ep.AppID, ep.ID))
	}
}

// Opener opens one database, the same every call, with the given keyring;
// the store is closed when the test ends.
type Opener func(t *testing.T, ring *keyring.Keyring) herald.Store

// RunRotation runs the encryption-key rotation tests, which need one
// database opened with several keyrings: newDB makes a new, empty database
// and returns its Opener.
func RunRotation(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Run("ResumesAfterStop", func(t *testing.T) { testRotationResumes(t, newDB(t)) })
	t.Run("ConcurrentUpdateKept", func(t *testing.T) { testRotationConcurrentUpdate(t, newDB(t)) })
}

// rings returns a keyring of the old key, one of the new key first with the
// old one still held (a node during the rotation), and one of the new key
// alone (after it).
func rings(t *testing.T) (old, both, onlyNew *keyring.Keyring) {
	t.Helper()
	oldKey, err := keyring.NewKey()
	mustOK(t, "NewKey", err)
	newKey, err := keyring.NewKey()
	mustOK(t, "NewKey", err)
	for _, r := range []struct {
		ring **keyring.Keyring
		keys string
	}{{&old, oldKey}, {&both, newKey + "," + oldKey}, {&onlyNew, newKey}} {
		*r.ring, err = keyring.Parse(r.keys)
		mustOK(t, "Parse", err)
	}
	return old, both, onlyNew
}

// testRotationResumes: a rotation stopped after its first batch leaves the
// rest sealed by the old key; run again, it finishes, and a keyring of the
// new key alone then reads every secret and header unchanged.
func testRotationResumes(t *testing.T, open Opener) {
	old, both, onlyNew := rings(t)
	eps := sealedEndpoints(t, open(t, old), 7)
	const values = 7 + 6

	s := open(t, both)
	c, err := s.CountSealed(t.Context())
	mustOK(t, "CountSealed before", err)
	mustEqual(t, "count before", herald.SealCount{Endpoints: 7, Values: values, Stale: values}, c)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var reports []herald.ResealProgress
	_, err = herald.ResealAll(ctx, s, 3, func(p herald.ResealProgress) {
		reports = append(reports, p)
		cancel() // stopped here, as by a crash after the first commit
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped rotation: err = %v, want context.Canceled", err)
	}
	mustEqual(t, "progress of the stopped run", []herald.ResealProgress{{Done: 3, Total: 7, Resealed: 3}}, reports)
	c, err = s.CountSealed(t.Context())
	mustOK(t, "CountSealed half way", err)
	mustEqual(t, "count half way", herald.SealCount{Endpoints: 7, Values: values, Stale: values - 5}, c)
	newOnly := open(t, onlyNew)
	if _, err := newOnly.GetEndpoint(t.Context(), eps[6].AppID, eps[6].ID); err == nil {
		t.Fatal("the new key alone opened an endpoint the stopped rotation had not reached")
	}

	reports = nil
	p, err := herald.ResealAll(t.Context(), s, 3, func(p herald.ResealProgress) { reports = append(reports, p) })
	mustOK(t, "ResealAll again", err)
	mustEqual(t, "second run", herald.ResealProgress{Done: 7, Total: 7, Resealed: 4}, p)
	mustEqual(t, "progress of the second run", []herald.ResealProgress{
		{Done: 3, Total: 7}, {Done: 6, Total: 7, Resealed: 3}, {Done: 7, Total: 7, Resealed: 4},
	}, reports)
	c, err = newOnly.CountSealed(t.Context())
	mustOK(t, "CountSealed after", err)
	mustEqual(t, "count after", herald.SealCount{Endpoints: 7, Values: values}, c)
	for _, ep := range eps {
		mustEqual(t, "endpoint read with the new key alone", ep, mustGetEndpoint(t, newOnly, ep.AppID, ep.ID))
	}
}

// testRotationConcurrentUpdate: endpoints updated by another node while a
// rotation runs keep their update; the rotation never writes back a value
// it read before the update.
func testRotationConcurrentUpdate(t *testing.T, open Opener) {
	old, both, onlyNew := rings(t)
	const n = 24
	eps := sealedEndpoints(t, open(t, old), n)
	rotator, api := open(t, both), open(t, both)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, ep := range eps {
			next := *ep
			next.Headers = map[string]string{"Authorization": fmt.Sprintf("Bearer updated-%d", i)}
			next.UpdatedAt = ep.UpdatedAt.Add(time.Microsecond)
			if err := api.UpdateEndpointKeepDisabled(t.Context(), &next); err != nil {
				errs <- err
			}
			eps[i] = &next
		}
	}()
	_, err := herald.ResealAll(t.Context(), rotator, 1, nil)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("update during the rotation: %v", err)
	}
	mustOK(t, "ResealAll", err)
	// The updates sealed with the new key: nothing is left for the old one.
	newOnly := open(t, onlyNew)
	c, err := newOnly.CountSealed(t.Context())
	mustOK(t, "CountSealed", err)
	mustEqual(t, "count", herald.SealCount{Endpoints: n, Values: 2 * n}, c)
	for _, ep := range eps {
		mustEqual(t, "endpoint updated during the rotation", ep, mustGetEndpoint(t, newOnly, ep.AppID, ep.ID))
	}
}
