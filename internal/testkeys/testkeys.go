// Package testkeys gives tests the keyring a store needs to seal endpoint
// secrets.
package testkeys

import (
	"testing"

	"github.com/herald-webhooks/herald/keyring"
)

// Ring returns a keyring with one fresh key.
func Ring(t testing.TB) *keyring.Keyring {
	t.Helper()
	key, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
