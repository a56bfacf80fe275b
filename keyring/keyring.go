// Package keyring encrypts secrets at rest with AES-256-GCM. A keyring holds
// one or more 32-byte keys: the first encrypts, any of them decrypts, so an
// operator rotates by putting a new key first and keeping the old ones until
// every secret was rewritten.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change.
const version = 1

// Keyring seals and opens secrets. It is safe for concurrent use.
type Keyring struct {
	aeads []cipher.AEAD
	ids   [][4]byte
}

// New returns a keyring over the given 32-byte keys, the first of which
// encrypts.
func New(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: no key")
	}
	k := &Keyring{}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("keyring: key %d is %d bytes, want %d", i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i+1, err)
		}
		k.aeads = append(k.aeads, aead)
		k.ids = append(k.ids, keyID(key))
	}
	return k, nil
}

// Parse reads a comma-separated list of base64 (standard or URL, padded or
// not) or 64-character hex keys, the first of which encrypts.
func Parse(s string) (*Keyring, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i+1, err)
		}
		keys = append(keys, key)
	}
	return New(keys...)
}

// NewKey returns a fresh random key encoded as Parse reads it.
func NewKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("keyring: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	if len(s) == 2*KeySize {
		b := make([]byte, KeySize)
		ok := true
		for i := 0; i < KeySize && ok; i++ {
			_, err := fmt.Sscanf(s[2*i:2*i+2], "%02x", &b[i])
			ok = err == nil
		}
		if ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as base64 or hex", KeySize)
}

// keyID names a key without revealing it, so Open picks the right key
// at once.
func keyID(key []byte) [4]byte {
	sum := sha256.Sum256(append([]byte("herald-keyring-id:"), key...))
	return [4]byte(sum[:4])
}

// Seal encrypts plaintext with the first key. The output is
// version ‖ key ID ‖ nonce ‖ ciphertext; additional is authenticated but
// not stored (bind a secret to its row by passing the row's ID).
func (k *Keyring) Seal(plaintext, additional []byte) ([]byte, error) {
	aead := k.aeads[0]
	out := make([]byte, 1+4+aead.NonceSize(), 1+4+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	copy(out[1:5], k.ids[0][:])
	if _, err := rand.Read(out[5:]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return aead.Seal(out, out[5:], plaintext, additional), nil
}

// Open decrypts a value made by Seal with any key of the keyring.
func (k *Keyring) Open(sealed, additional []byte) ([]byte, error) {
	if len(sealed) < 5 || sealed[0] != version {
		return nil, errors.New("keyring: not a sealed value")
	}
	for i, id := range k.ids {
		if [4]byte(sealed[1:5]) != id {
			continue
		}
		aead := k.aeads[i]
		if len(sealed) < 5+aead.NonceSize() {
			return nil, errors.New("keyring: sealed value too short")
		}
		nonce := sealed[5 : 5+aead.NonceSize()]
		plain, err := aead.Open(nil, nonce, sealed[5+aead.NonceSize():], additional)
		if err != nil {
			return nil, fmt.Errorf("keyring: decrypt: %w", err)
		}
		return plain, nil
	}
	return nil, errors.New("keyring: sealed with a key this keyring does not hold")
}

// Current reports whether sealed was sealed by the first key, the one Seal
// uses: a value for which it is false (an older key, or not a sealed value)
// is what a key rotation still has to rewrite. It only reads the key ID,
// so it is cheap and proves nothing about the value's integrity.
func (k *Keyring) Current(sealed []byte) bool {
	return len(sealed) >= 5 && sealed[0] == version && [4]byte(sealed[1:5]) == k.ids[0]
}
