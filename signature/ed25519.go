package signature

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
)

// Prefixes of the asymmetric key forms Svix and the Standard Webhooks
// specification use: "whsk_" + base64 of the 64-byte ed25519 private key
// (seed then public key, as Go's ed25519.PrivateKey and Svix hold it), and
// "whpk_" + base64 of the 32-byte public key.
const (
	SecretKeyPrefix = "whsk_"
	PublicKeyPrefix = "whpk_"
)

// Key is one key of either scheme: a symmetric HMAC-SHA256 secret, which
// signs and verifies "v1", or an ed25519 key, whose Private half signs
// "v1a" and whose Public half verifies it. Exactly one of Secret, Private
// and Public is set; Private implies its public half.
type Key struct {
	Secret  []byte
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
}

// Asymmetric reports whether k is an ed25519 key.
func (k Key) Asymmetric() bool { return k.Private != nil || k.Public != nil }

// public returns the key's ed25519 public half, nil for a symmetric key or
// one of the wrong size (which ed25519.Verify would panic on).
func (k Key) public() ed25519.PublicKey {
	switch {
	case k.Public != nil:
		if len(k.Public) == ed25519.PublicKeySize {
			return k.Public
		}
	case k.Private != nil:
		if len(k.Private) == ed25519.PrivateKeySize {
			return k.Private.Public().(ed25519.PublicKey)
		}
	}
	return nil
}

// ParseKey reads any of the three forms a receiver may be given: "whsk_…"
// (an ed25519 private key), "whpk_…" (an ed25519 public key, which can only
// verify) or a symmetric secret as ParseSecret reads it.
func ParseKey(s string) (Key, error) {
	switch {
	case strings.HasPrefix(s, SecretKeyPrefix):
		priv, err := ParseSecretKey(s)
		return Key{Private: priv}, err
	case strings.HasPrefix(s, PublicKeyPrefix):
		pub, err := ParsePublicKey(s)
		return Key{Public: pub}, err
	}
	secret, err := ParseSecret(s)
	return Key{Secret: secret}, err
}

// ParseSecretKey decodes "whsk_" + standard padded base64 of a 64-byte
// ed25519 private key. The prefix is required (without it the form cannot
// be told from a symmetric secret), and the key's second half must be the
// public key its seed derives, which is what Svix checks by signing a test
// message.
func ParseSecretKey(s string) (ed25519.PrivateKey, error) {
	raw, err := decodePrefixed(s, SecretKeyPrefix, ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("parse secret key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
		return nil, fmt.Errorf("parse secret key: the public half does not match the seed")
	}
	return priv, nil
}

// ParsePublicKey decodes "whpk_" + standard padded base64 of a 32-byte
// ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := decodePrefixed(s, PublicKeyPrefix, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return ed25519.PublicKey(raw), nil
}

// decodePrefixed checks prefix, then decodes strict padded base64 of
// exactly size bytes.
func decodePrefixed(s, prefix string, size int) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, fmt.Errorf("want the %s prefix", prefix)
	}
	for i := 0; i < len(enc); i++ {
		if !isBase64Char(enc[i]) {
			return nil, fmt.Errorf("invalid character at offset %d", len(prefix)+i)
		}
	}
	raw, err := b64.Strict().DecodeString(enc)
	if err != nil {
		return nil, err
	}
	if len(raw) != size {
		return nil, fmt.Errorf("%d bytes, want %d", len(raw), size)
	}
	return raw, nil
}

// FormatSecretKey writes an ed25519 private key as Svix shows it:
// "whsk_" + base64 of its 64 bytes.
func FormatSecretKey(priv ed25519.PrivateKey) string {
	return SecretKeyPrefix + b64.EncodeToString(priv)
}

// FormatPublicKey writes an ed25519 public key as Svix shows it:
// "whpk_" + base64 of its 32 bytes.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + b64.EncodeToString(pub)
}

// NewSecretKey returns a fresh ed25519 private key.
func NewSecretKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new secret key: %w", err)
	}
	return priv, nil
}
