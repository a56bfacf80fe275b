package keyring

import (
	"bytes"
	"strings"
	"testing"
)

func mustKeyring(t *testing.T, keys ...string) *Keyring {
	t.Helper()
	k, err := Parse(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	a, _ := NewKey()
	k := mustKeyring(t, a)
	sealed, err := k.Seal([]byte("whsec_secret"), []byte("ep_1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("whsec_secret")) {
		t.Fatal("sealed value holds the plaintext")
	}
	got, err := k.Open(sealed, []byte("ep_1"))
	if err != nil || string(got) != "whsec_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k.Open(sealed, []byte("ep_2")); err == nil {
		t.Fatal("Open with other additional data succeeded")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open(sealed, []byte("ep_1")); err == nil {
		t.Fatal("Open of a tampered value succeeded")
	}
}

func TestRotation(t *testing.T) {
	oldKey, _ := NewKey()
	newKey, _ := NewKey()
	old := mustKeyring(t, oldKey)
	sealed, _ := old.Seal([]byte("s"), nil)

	rotated := mustKeyring(t, newKey, oldKey)
	if got, err := rotated.Open(sealed, nil); err != nil || string(got) != "s" {
		t.Fatalf("rotated keyring cannot open old value: %q, %v", got, err)
	}
	if !old.Current(sealed) || rotated.Current(sealed) {
		t.Fatal("Current does not say which key is first")
	}
	resealed, _ := rotated.Seal([]byte("s"), nil)
	if !rotated.Current(resealed) || rotated.Current(nil) || rotated.Current([]byte{1, 2}) {
		t.Fatal("Current is wrong about a new or a short value")
	}
	if _, err := old.Open(resealed, nil); err == nil {
		t.Fatal("old keyring opened a value sealed with the new key")
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "short", strings.Repeat("z", 64), "AAAA"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	hex := strings.Repeat("ab", 32)
	if _, err := Parse(hex); err != nil {
		t.Errorf("Parse(hex) = %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	key, _ := NewKey()
	k, _ := Parse(key)
	sealed, _ := k.Seal([]byte("x"), nil)
	f.Add(sealed)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = k.Open(b, nil) // must not panic
	})
}
