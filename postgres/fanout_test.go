package postgres_test

import (
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/storetest"
)

// openFanOut opens a store on schema whose ingest defers fan-outs over
// inlineMax.
func openFanOut(t *testing.T, schema string, ring *keyring.Keyring, inlineMax int) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: ring, Schema: schema, MaxConns: 6, FanOutInlineMax: inlineMax})
	if err != nil {
		t.Fatalf("Open schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFanOutConformance(t *testing.T) {
	testURL(t)
	storetest.RunFanOut(t, func(t *testing.T, inlineMax int) herald.Store {
		return openFanOut(t, freshSchema(t), testKeyring(t), inlineMax)
	})
}

// TestFanOutContinuedByAnotherNode: a node that stopped between two
// chunks (its connections closed, as a crash closes them) leaves the
// marker to any other node, which continues it from its cursor.
func TestFanOutContinuedByAnotherNode(t *testing.T) {
	schema, ring := freshSchema(t), testKeyring(t)
	storetest.RunFanOutRestart(t,
		func(t *testing.T) herald.Store { return openFanOut(t, schema, ring, 2) },
		func(t *testing.T) herald.Store { return openFanOut(t, schema, ring, 0) })
}

func TestOpenRefusesNegativeFanOutInlineMax(t *testing.T) {
	_, err := postgres.Open(t.Context(), postgres.Config{URL: testURL(t), Keyring: testKeyring(t), Schema: freshSchema(t), FanOutInlineMax: -1})
	if err == nil {
		t.Fatal("Open with FanOutInlineMax -1 succeeded")
	}
}
