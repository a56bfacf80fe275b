// Package signature signs and verifies webhooks as the Standard Webhooks
// specification (and Svix) define them: an HMAC-SHA256 over
// "<msg id>.<unix seconds>.<body>", sent as "v1,<base64>" in the
// webhook-signature header, or an ed25519 signature of the same content sent
// as "v1a,<base64>"; several space-separated while a rotated secret still
// overlaps with the new one.
package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every secret Herald shows: "whsec_" + base64.
const SecretPrefix = "whsec_"

// Secret sizes in bytes. Svix generates 24-byte secrets and accepts
// user-supplied ones of 24 to 64 bytes.
const (
	MinSecretSize = 24
	MaxSecretSize = 64
	NewSecretSize = 24
)

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock, in either direction, before Verify refuses it (replay protection).
const DefaultTolerance = 5 * time.Minute

// Signature versions: version is the symmetric HMAC-SHA256 scheme,
// versionAsymmetric the ed25519 one.
const (
	version           = "v1"
	versionAsymmetric = "v1a"
)

// Verification failures. Verify wraps them, so test with errors.Is.
var (
	ErrMissingHeaders   = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp = errors.New("invalid webhook-timestamp header")
	ErrTooOld           = errors.New("webhook timestamp too old")
	ErrTooNew           = errors.New("webhook timestamp too new")
	ErrNoMatch          = errors.New("no matching signature")
	ErrNoKey            = errors.New("no signing key")
)

var b64 = base64.StdEncoding

// ParseSecret decodes a signing secret: optional "whsec_" prefix, then
// standard padded base64 (what the Svix and Standard Webhooks verifiers
// decode) of 24 to 64 bytes. Whitespace and any other character are refused.
func ParseSecret(s string) ([]byte, error) {
	enc := strings.TrimPrefix(s, SecretPrefix)
	for i := 0; i < len(enc); i++ {
		if !isBase64Char(enc[i]) {
			return nil, fmt.Errorf("parse secret: invalid character at offset %d", len(s)-len(enc)+i)
		}
	}
	key, err := b64.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("parse secret: %w", err)
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return nil, fmt.Errorf("parse secret: %d bytes, want %d to %d", len(key), MinSecretSize, MaxSecretSize)
	}
	return key, nil
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// FormatSecret writes a key the way Svix shows it: "whsec_" + base64.
func FormatSecret(key []byte) string {
	return SecretPrefix + b64.EncodeToString(key)
}

// NewSecret returns a fresh random 24-byte signing key.
func NewSecret() ([]byte, error) {
	key := make([]byte, NewSecretSize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("new secret: %w", err)
	}
	return key, nil
}

// Sign returns the "v1,<base64>" signature of one message attempt under key.
// It builds a fresh HMAC each call; the delivery path should use a Signer.
func Sign(key []byte, msgID string, ts time.Time, body []byte) string {
	return NewSigner([][]byte{key}).Header(msgID, ts, body)
}

// Header returns the webhook-signature header value: one v1 signature per
// key, space-separated, in the order of keys (current secret first, then
// secrets still inside their rotation grace period).
func Header(keys [][]byte, msgID string, ts time.Time, body []byte) string {
	return NewSigner(keys).Header(msgID, ts, body)
}

// Signer signs with a fixed set of keys, keeping one HMAC state per
// symmetric key and a scratch buffer so that signing with symmetric keys
// allocates only the returned string. A Signer is not safe for concurrent
// use; give each worker its own.
type Signer struct {
	macs   []hash.Hash          // per key; nil for an ed25519 key
	privs  []ed25519.PrivateKey // per key; nil for an HMAC key
	prefix []byte               // scratch for "id.ts."
	sum    []byte               // scratch for HMAC output
	msg    []byte               // scratch for "id.ts.body", which ed25519 signs whole
	out    []byte               // scratch for the header being built
}

// NewSigner returns a Signer over HMAC keys, in header order.
func NewSigner(keys [][]byte) *Signer {
	s := &Signer{
		macs:  make([]hash.Hash, len(keys)),
		privs: make([]ed25519.PrivateKey, len(keys)),
		sum:   make([]byte, 0, sha256.Size),
	}
	for i, k := range keys {
		s.macs[i] = hmac.New(sha256.New, k)
	}
	return s
}

// NewKeySigner returns a Signer over keys of either kind, in header order:
// a symmetric key signs "v1", an ed25519 one "v1a". Each key must be
// symmetric or hold a private ed25519 key; a public key alone cannot sign.
func NewKeySigner(keys []Key) (*Signer, error) {
	s := &Signer{
		macs:  make([]hash.Hash, len(keys)),
		privs: make([]ed25519.PrivateKey, len(keys)),
		sum:   make([]byte, 0, sha256.Size),
	}
	for i, k := range keys {
		switch {
		case k.Private != nil:
			if len(k.Private) != ed25519.PrivateKeySize {
				return nil, fmt.Errorf("new signer: key %d: ed25519 private key of %d bytes, want %d", i, len(k.Private), ed25519.PrivateKeySize)
			}
			s.privs[i] = k.Private
		case k.Secret != nil:
			s.macs[i] = hmac.New(sha256.New, k.Secret)
		default:
			return nil, fmt.Errorf("new signer: key %d: %w", i, ErrNoKey)
		}
	}
	return s, nil
}

// Header returns the space-separated signatures of the message attempt,
// one per key of the Signer ("v1" or "v1a" by the key's kind).
func (s *Signer) Header(msgID string, ts time.Time, body []byte) string {
	s.out = s.AppendHeader(s.out[:0], msgID, ts, body)
	return string(s.out)
}

// AppendHeader appends the header value Header returns to dst, for callers
// that keep their own buffer.
func (s *Signer) AppendHeader(dst []byte, msgID string, ts time.Time, body []byte) []byte {
	s.prefix = appendPrefix(s.prefix[:0], msgID, ts.Unix())
	s.msg = s.msg[:0]
	for i, mac := range s.macs {
		if i > 0 {
			dst = append(dst, ' ')
		}
		if priv := s.privs[i]; priv != nil {
			if len(s.msg) == 0 {
				s.msg = append(append(s.msg, s.prefix...), body...)
			}
			dst = append(dst, versionAsymmetric...)
			dst = append(dst, ',')
			dst = b64.AppendEncode(dst, ed25519.Sign(priv, s.msg))
			continue
		}
		dst = append(dst, version...)
		dst = append(dst, ',')
		s.sum = sum(mac, s.sum[:0], s.prefix, body)
		dst = b64.AppendEncode(dst, s.sum)
	}
	return dst
}

// appendPrefix appends "id.ts.", the part of the signed content before
// the body.
func appendPrefix(dst []byte, msgID string, ts int64) []byte {
	dst = append(dst, msgID...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '.')
}

// sum appends to dst the HMAC of prefix followed by body, which is the
// Standard Webhooks signed content "id.ts.body" without concatenating it.
func sum(mac hash.Hash, dst, prefix, body []byte) []byte {
	mac.Reset()
	mac.Write(prefix)
	mac.Write(body)
	return mac.Sum(dst)
}

// Verify checks a received webhook the way a consumer would: it reads
// webhook-id, webhook-timestamp and webhook-signature, or svix-id,
// svix-timestamp and svix-signature when the former are incomplete; refuses
// a timestamp more than tolerance away from now (DefaultTolerance when
// tolerance is not positive); and passes when any v1 signature in the
// space-separated list matches any of keys. Other versions (such as the
// asymmetric v1a) are ignored. Comparison is in constant time.
func Verify(keys [][]byte, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	all := make([]Key, len(keys))
	for i, k := range keys {
		all[i] = Key{Secret: k}
	}
	return VerifyKeys(all, headers, body, now, tolerance)
}

// VerifyKeys is Verify with keys of either kind: a "v1" signature passes
// when it matches a symmetric key, a "v1a" one when it verifies under the
// public half of an ed25519 key (Public, or the one Private holds).
func VerifyKeys(keys []Key, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(keys) == 0 {
		return fmt.Errorf("verify webhook: %w", ErrNoKey)
	}
	id, tsText, sigs, ok := readHeaders(headers)
	if !ok {
		return fmt.Errorf("verify webhook: %w", ErrMissingHeaders)
	}
	ts, err := parseTimestamp(tsText)
	if err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	if err := checkTimestamp(ts, now, tolerance); err != nil {
		return fmt.Errorf("verify webhook: %w", err)
	}
	var expected [][]byte
	var publics []ed25519.PublicKey
	prefix := appendPrefix(nil, id, ts)
	for _, k := range keys {
		if k.Asymmetric() {
			if pub := k.public(); pub != nil {
				publics = append(publics, pub)
			}
		} else if k.Secret != nil {
			mac := hmac.New(sha256.New, k.Secret)
			expected = append(expected, b64.AppendEncode(nil, sum(mac, nil, prefix, body)))
		}
	}
	var msg []byte // "id.ts.body", built for the first v1a candidate
	for _, candidate := range strings.Split(sigs, " ") {
		v, sig, found := strings.Cut(candidate, ",")
		switch {
		case !found:
		case v == version:
			for _, want := range expected {
				if hmac.Equal([]byte(sig), want) {
					return nil
				}
			}
		case v == versionAsymmetric && len(publics) > 0:
			raw, err := b64.DecodeString(sig)
			if err != nil || len(raw) != ed25519.SignatureSize {
				continue
			}
			if msg == nil {
				msg = append(append(make([]byte, 0, len(prefix)+len(body)), prefix...), body...)
			}
			for _, pub := range publics {
				if ed25519.Verify(pub, msg, raw) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("verify webhook: %w", ErrNoMatch)
}

// readHeaders returns the webhook-* triple when complete, else the svix-*
// one; ok is false when neither is complete.
func readHeaders(h http.Header) (id, ts, sigs string, ok bool) {
	for _, prefix := range []string{"Webhook-", "Svix-"} {
		id, ts, sigs = h.Get(prefix+"Id"), h.Get(prefix+"Timestamp"), h.Get(prefix+"Signature")
		if id != "" && ts != "" && sigs != "" {
			return id, ts, sigs, true
		}
	}
	return "", "", "", false
}

// parseTimestamp reads unix seconds written as plain decimal digits.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, ErrInvalidTimestamp
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrInvalidTimestamp
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ErrInvalidTimestamp
	}
	return ts, nil
}

// checkTimestamp refuses a timestamp more than tolerance away from now.
func checkTimestamp(ts int64, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	diff := now.Sub(time.Unix(ts, 0)) // saturates instead of overflowing
	switch {
	case diff > tolerance:
		return ErrTooOld
	case diff < -tolerance:
		return ErrTooNew
	}
	return nil
}
