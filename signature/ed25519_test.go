package signature_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/signature"
)

// Svix's published ed25519 vector (svix-server worker.rs
// test_asymmetric_key_signing and e2e_endpoint.rs
// test_custom_endpoint_secret): the same message as the v1 vector, signed
// with this key. Ed25519 signatures are deterministic, so the exact string
// is the check.
const (
	vectorSecretKey = "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
	vectorPublicKey = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
	vectorSigV1a    = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)

func mustSecretKey(t testing.TB, s string) ed25519.PrivateKey {
	t.Helper()
	priv, err := signature.ParseSecretKey(s)
	if err != nil {
		t.Fatalf("ParseSecretKey(%q): %v", s, err)
	}
	return priv
}

func mustKeySigner(t testing.TB, keys ...signature.Key) *signature.Signer {
	t.Helper()
	s, err := signature.NewKeySigner(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyV1a is the receiving side written from the Standard Webhooks
// specification with nothing of this package but the header parsing a
// receiver does itself: split the list on spaces, take the "v1a," ones,
// decode base64 and check with crypto/ed25519 over "id.timestamp.body".
func verifyV1a(pub ed25519.PublicKey, id, ts, header string, body []byte) bool {
	signed := []byte(id + "." + ts + "." + string(body))
	for _, part := range strings.Split(header, " ") {
		sig, ok := strings.CutPrefix(part, "v1a,")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && ed25519.Verify(pub, signed, raw) {
			return true
		}
	}
	return false
}

func TestSignEd25519KnownVector(t *testing.T) {
	priv := mustSecretKey(t, vectorSecretKey)
	if got := signature.FormatSecretKey(priv); got != vectorSecretKey {
		t.Errorf("FormatSecretKey = %q, want %q", got, vectorSecretKey)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if got := signature.FormatPublicKey(pub); got != vectorPublicKey {
		t.Errorf("FormatPublicKey = %q, want %q", got, vectorPublicKey)
	}
	ts := time.Unix(vectorTS, 0)
	s := mustKeySigner(t, signature.Key{Private: priv})
	for i := range 2 { // the scratch message must be rebuilt each call
		if got := s.Header(vectorID, ts, []byte(vectorBody)); got != vectorSigV1a {
			t.Errorf("Signer.Header #%d = %q, want %q", i, got, vectorSigV1a)
		}
	}
	if !verifyV1a(pub, vectorID, strconv.Itoa(vectorTS), vectorSigV1a, []byte(vectorBody)) {
		t.Error("the published signature does not verify with crypto/ed25519")
	}
	pubKey, err := signature.ParsePublicKey(vectorPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []signature.Key{{Public: pubKey}, {Private: priv}} {
		if err := signature.VerifyKeys([]signature.Key{k}, headers(vectorID, ts, vectorSigV1a), []byte(vectorBody), ts, 0); err != nil {
			t.Errorf("VerifyKeys(vector, %v): %v", k.Public != nil, err)
		}
	}
}

func TestParseSecretKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"svix vector", vectorSecretKey, true},
		// Svix's own refusals (test_endpoint_secret_deserialization and
		// test_endpoint_secret_validation).
		{"truncated", strings.TrimSuffix(vectorSecretKey, "g=="), false},
		{"public half not of the seed", "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlaaaaaaaaaaAJ6p9lMicMFs6Kvg==", false},
		{"public key", vectorPublicKey, false},
		{"no prefix", strings.TrimPrefix(vectorSecretKey, "whsk_"), false},
		{"symmetric", vectorSecret, false},
		{"unpadded", strings.TrimSuffix(vectorSecretKey, "=="), false},
		{"url alphabet", strings.ReplaceAll(vectorSecretKey, "/", "_"), false},
		{"space", vectorSecretKey + " ", false},
		{"seed only", "whsk_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), false},
		{"empty", "whsk_", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv, err := signature.ParseSecretKey(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseSecretKey(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && signature.FormatSecretKey(priv) != tt.in {
				t.Errorf("round trip = %q", signature.FormatSecretKey(priv))
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{vectorPublicKey, true},
		{strings.TrimPrefix(vectorPublicKey, "whpk_"), false},
		{vectorSecretKey, false},
		{"whpk_" + base64.StdEncoding.EncodeToString(make([]byte, 31)), false},
		{"whpk_" + base64.StdEncoding.EncodeToString(make([]byte, 33)), false},
		{"whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4", false},
		{"whsec_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=", false},
	} {
		pub, err := signature.ParsePublicKey(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePublicKey(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
		if tt.ok && signature.FormatPublicKey(pub) != tt.in {
			t.Errorf("round trip = %q", signature.FormatPublicKey(pub))
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, tt := range []struct {
		in               string
		secret, priv, pb bool
	}{
		{vectorSecret, true, false, false},
		{strings.TrimPrefix(vectorSecret, "whsec_"), true, false, false},
		{vectorSecretKey, false, true, false},
		{vectorPublicKey, false, false, true},
	} {
		k, err := signature.ParseKey(tt.in)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", tt.in, err)
		}
		if (k.Secret != nil) != tt.secret || (k.Private != nil) != tt.priv || (k.Public != nil) != tt.pb {
			t.Errorf("ParseKey(%q) = %+v", tt.in, k)
		}
		if k.Asymmetric() == tt.secret {
			t.Errorf("ParseKey(%q).Asymmetric() = %v", tt.in, k.Asymmetric())
		}
	}
	for _, bad := range []string{"whsk_AAAA", "whpk_AAAA", "whsec_AAAA", ""} {
		if _, err := signature.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestNewSecretKey(t *testing.T) {
	a, err := signature.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := signature.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.Equal(b) {
		t.Error("two new keys are equal")
	}
	if back := mustSecretKey(t, signature.FormatSecretKey(a)); !back.Equal(a) {
		t.Error("a new key does not survive FormatSecretKey and ParseSecretKey")
	}
}

// TestMixedRotation is the overlap rule across kinds: during a rotation's
// grace period every active key signs, whatever its kind, in key order, and
// a receiver holding any one of them verifies the delivery.
func TestMixedRotation(t *testing.T) {
	hmacKey := mustNewSecret(t)
	priv, err := signature.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	ts := time.Unix(vectorTS, 0)
	body := []byte(vectorBody)
	tsText := strconv.Itoa(vectorTS)
	for _, tt := range []struct {
		name string
		keys []signature.Key
	}{
		{"symmetric to asymmetric", []signature.Key{{Private: priv}, {Secret: hmacKey}}},
		{"asymmetric to symmetric", []signature.Key{{Secret: hmacKey}, {Private: priv}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := mustKeySigner(t, tt.keys...).Header(vectorID, ts, body)
			parts := strings.Split(header, " ")
			if len(parts) != 2 {
				t.Fatalf("header %q: want two signatures", header)
			}
			for i, k := range tt.keys {
				want := "v1,"
				if k.Private != nil {
					want = "v1a,"
				}
				if !strings.HasPrefix(parts[i], want) {
					t.Errorf("signature %d = %q, want %s…", i, parts[i], want)
				}
			}
			if !strings.Contains(header, signature.Sign(hmacKey, vectorID, ts, body)) {
				t.Errorf("header %q lacks the v1 signature", header)
			}
			if !verifyV1a(pub, vectorID, tsText, header, body) {
				t.Errorf("header %q: v1a does not verify with crypto/ed25519", header)
			}
			h := headers(vectorID, ts, header)
			if err := signature.Verify([][]byte{hmacKey}, h, body, ts, 0); err != nil {
				t.Errorf("v1 receiver: %v", err)
			}
			if err := signature.VerifyKeys([]signature.Key{{Public: pub}}, h, body, ts, 0); err != nil {
				t.Errorf("v1a receiver: %v", err)
			}
			for _, v := range verifiers() { // the libraries skip v1a and find v1
				if err := v.verify(signature.FormatSecret(hmacKey), body, headers(vectorID, time.Now(), mustKeySigner(t, tt.keys...).Header(vectorID, time.Now(), body))); err != nil {
					t.Errorf("%s on a mixed header: %v", v.name, err)
				}
			}
		})
	}
}

func TestVerifyKeys(t *testing.T) {
	priv := mustSecretKey(t, vectorSecretKey)
	pub := priv.Public().(ed25519.PublicKey)
	otherPriv, err := signature.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	otherPub := otherPriv.Public().(ed25519.PublicKey)
	hmacKey := mustNewSecret(t)
	ts := time.Unix(vectorTS, 0)
	body := []byte(vectorBody)
	sig := strings.TrimPrefix(vectorSigV1a, "v1a,")
	for _, tt := range []struct {
		name   string
		keys   []signature.Key
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"public key", []signature.Key{{Public: pub}}, vectorSigV1a, body, ts, nil},
		{"second of two keys", []signature.Key{{Public: otherPub}, {Public: pub}}, vectorSigV1a, body, ts, nil},
		{"after a v1", []signature.Key{{Public: pub}}, signature.Sign(hmacKey, vectorID, ts, body) + " " + vectorSigV1a, body, ts, nil},
		{"wrong public key", []signature.Key{{Public: otherPub}}, vectorSigV1a, body, ts, signature.ErrNoMatch},
		{"tampered body", []signature.Key{{Public: pub}}, vectorSigV1a, []byte(`{"test": 2432232315}`), ts, signature.ErrNoMatch},
		{"v1 label on an ed25519 signature", []signature.Key{{Public: pub}}, "v1," + sig, body, ts, signature.ErrNoMatch},
		{"v1a label on an HMAC signature", []signature.Key{{Secret: hmacKey}}, "v1a," + strings.TrimPrefix(signature.Sign(hmacKey, vectorID, ts, body), "v1,"), body, ts, signature.ErrNoMatch},
		{"HMAC key ignores v1a", []signature.Key{{Secret: hmacKey}}, vectorSigV1a, body, ts, signature.ErrNoMatch},
		{"truncated", []signature.Key{{Public: pub}}, vectorSigV1a[:len(vectorSigV1a)-4], body, ts, signature.ErrNoMatch},
		{"not base64", []signature.Key{{Public: pub}}, "v1a,!!!!", body, ts, signature.ErrNoMatch},
		{"too old", []signature.Key{{Public: pub}}, vectorSigV1a, body, ts.Add(5*time.Minute + time.Second), signature.ErrTooOld},
		{"no keys", nil, vectorSigV1a, body, ts, signature.ErrNoKey},
		{"short public key", []signature.Key{{Public: pub[:31]}}, vectorSigV1a, body, ts, signature.ErrNoMatch},
		{"short private key", []signature.Key{{Private: priv[:63]}}, vectorSigV1a, body, ts, signature.ErrNoMatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.VerifyKeys(tt.keys, headers(vectorID, ts, tt.header), tt.body, tt.now, 0)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyKeys = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewKeySignerRefuses(t *testing.T) {
	pub := mustSecretKey(t, vectorSecretKey).Public().(ed25519.PublicKey)
	for _, keys := range [][]signature.Key{
		{{Public: pub}},
		{{}},
		{{Private: ed25519.PrivateKey(make([]byte, 32))}},
	} {
		if _, err := signature.NewKeySigner(keys); err == nil {
			t.Errorf("NewKeySigner(%+v) accepted", keys)
		}
	}
}

func TestKeySignerAllocationsSymmetric(t *testing.T) {
	s := mustKeySigner(t, signature.Key{Secret: mustNewSecret(t)}, signature.Key{Secret: mustNewSecret(t)})
	body := bytes.Repeat([]byte("x"), 1024)
	ts := time.Unix(vectorTS, 0)
	var buf []byte
	if allocs := testing.AllocsPerRun(100, func() { buf = s.AppendHeader(buf[:0], vectorID, ts, body) }); allocs != 0 {
		t.Errorf("AppendHeader over symmetric keys allocates %v times per call, want 0", allocs)
	}
}

func FuzzParseSecretKey(f *testing.F) {
	f.Add(vectorSecretKey)
	f.Add(vectorPublicKey)
	f.Add("whsk_")
	f.Add("whsk_====")
	f.Fuzz(func(t *testing.T, s string) {
		priv, err := signature.ParseSecretKey(s)
		if err != nil {
			return
		}
		if len(priv) != ed25519.PrivateKeySize {
			t.Fatalf("accepted %q as a key of %d bytes", s, len(priv))
		}
		if got := signature.FormatSecretKey(priv); got != s {
			t.Fatalf("accepted %q, which formats back as %q", s, got)
		}
		if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
			t.Fatalf("accepted %q whose public half is not its seed's", s)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(vectorPublicKey)
	f.Add(vectorSecretKey)
	f.Add("whpk_")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := signature.ParsePublicKey(s)
		if err != nil {
			return
		}
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("accepted %q as a key of %d bytes", s, len(pub))
		}
		if got := signature.FormatPublicKey(pub); got != s {
			t.Fatalf("accepted %q, which formats back as %q", s, got)
		}
	})
}

// FuzzVerifyKeys checks that a public key accepts only a v1a signature
// that crypto/ed25519 verifies over the exact id.timestamp.body.
func FuzzVerifyKeys(f *testing.F) {
	priv, err := signature.ParseSecretKey(vectorSecretKey)
	if err != nil {
		f.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	now := time.Unix(vectorTS, 0)
	f.Add(vectorID, strconv.Itoa(vectorTS), vectorSigV1a, []byte(vectorBody))
	f.Add(vectorID, strconv.Itoa(vectorTS), "v1,AAAA "+vectorSigV1a, []byte(vectorBody))
	f.Add("msg_x", "1614265330", "v1a,abc v1a,, ,v1a", []byte("{}"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := headers(id, now, sig)
		h.Set("webhook-timestamp", ts)
		h.Set("svix-timestamp", ts)
		if err := signature.VerifyKeys([]signature.Key{{Public: pub}}, h, body, now, 0); err != nil {
			return
		}
		if !verifyV1a(pub, id, ts, sig, body) {
			t.Fatalf("accepted %q for id %q ts %q body %q, which crypto/ed25519 refuses", sig, id, ts, body)
		}
	})
}
