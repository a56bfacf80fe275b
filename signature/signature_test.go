package signature_test

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-webhooks/herald/signature"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"
)

// The Standard Webhooks / Svix published test vector.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustParse(t testing.TB, s string) []byte {
	t.Helper()
	key, err := signature.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return key
}

func mustNewSecret(t testing.TB) []byte {
	t.Helper()
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// headers builds the header set Herald sends: webhook-* and svix-*.
func headers(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	tsText := strconv.FormatInt(ts.Unix(), 10)
	for _, p := range []string{"webhook-", "svix-"} {
		h.Set(p+"id", id)
		h.Set(p+"timestamp", tsText)
		h.Set(p+"signature", sig)
	}
	return h
}

func TestSignKnownVector(t *testing.T) {
	key := mustParse(t, vectorSecret)
	ts := time.Unix(vectorTS, 0)
	if got := signature.Sign(key, vectorID, ts, []byte(vectorBody)); got != vectorSig {
		t.Errorf("Sign = %q, want %q", got, vectorSig)
	}
	s := signature.NewSigner([][]byte{key})
	for i := range 3 { // the cached HMAC must reset between uses
		if got := s.Header(vectorID, ts, []byte(vectorBody)); got != vectorSig {
			t.Errorf("Signer.Header #%d = %q, want %q", i, got, vectorSig)
		}
	}
	if err := signature.Verify([][]byte{key}, headers(vectorID, ts, vectorSig), []byte(vectorBody), ts, 0); err != nil {
		t.Errorf("Verify(vector): %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	key24 := bytes.Repeat([]byte{0xab}, 24)
	key64 := bytes.Repeat([]byte{0x5c}, 64)
	enc := func(b []byte) string { return strings.TrimPrefix(signature.FormatSecret(b), "whsec_") }
	tests := []struct {
		name string
		in   string
		want []byte // nil means an error is expected
	}{
		{"vector", vectorSecret, []byte{0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4, 0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0}},
		{"24 bytes prefixed", "whsec_" + enc(key24), key24},
		{"24 bytes bare", enc(key24), key24},
		{"64 bytes", "whsec_" + enc(key64), key64},
		{"23 bytes", "whsec_" + enc(key24[:23]), nil},
		{"65 bytes", "whsec_" + enc(append(key64, 1)), nil},
		{"empty", "", nil},
		{"prefix only", "whsec_", nil},
		{"url alphabet", "whsec_" + strings.Repeat("-_", 16), nil},
		{"newline inside", "whsec_" + enc(key24)[:10] + "\n" + enc(key24)[10:], nil},
		{"trailing space", "whsec_" + enc(key24) + " ", nil},
		{"missing padding", "whsec_" + strings.TrimRight(enc(key24[:23]), "="), nil},
		{"double prefix", "whsec_whsec_" + enc(key24), nil},
		{"garbage", "not a secret at all, really not", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := signature.ParseSecret(tt.in)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("ParseSecret(%q) = %x, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSecret(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := mustNewSecret(t), mustNewSecret(t)
	if len(a) != 24 {
		t.Errorf("len(NewSecret()) = %d, want 24", len(a))
	}
	if bytes.Equal(a, b) {
		t.Errorf("two NewSecret calls returned the same key %x", a)
	}
	formatted := signature.FormatSecret(a)
	if !strings.HasPrefix(formatted, "whsec_") {
		t.Errorf("FormatSecret = %q, want whsec_ prefix", formatted)
	}
	if diff := cmp.Diff(a, mustParse(t, formatted)); diff != "" {
		t.Errorf("ParseSecret(FormatSecret(k)) (-want +got):\n%s", diff)
	}
	// Both reference verifiers accept the secret as Herald shows it.
	if _, err := svix.NewWebhook(formatted); err != nil {
		t.Errorf("svix.NewWebhook(%q): %v", formatted, err)
	}
	if _, err := standardwebhooks.NewWebhook(formatted); err != nil {
		t.Errorf("standardwebhooks.NewWebhook(%q): %v", formatted, err)
	}
}

func TestHeaderRotation(t *testing.T) {
	k1, k2 := mustNewSecret(t), mustNewSecret(t)
	ts := time.Unix(vectorTS, 0)
	body := []byte(vectorBody)
	want := signature.Sign(k1, vectorID, ts, body) + " " + signature.Sign(k2, vectorID, ts, body)
	if got := signature.Header([][]byte{k1, k2}, vectorID, ts, body); got != want {
		t.Errorf("Header = %q, want %q", got, want)
	}
	if got := signature.NewSigner([][]byte{k1, k2}).Header(vectorID, ts, body); got != want {
		t.Errorf("Signer.Header = %q, want %q", got, want)
	}
	if signature.Sign(k1, vectorID, ts, body) == signature.Sign(k2, vectorID, ts, body) {
		t.Error("different keys produced the same signature")
	}
}

// verifier is a third-party receiver library checking our deliveries.
type verifier struct {
	name   string
	verify func(secret string, body []byte, h http.Header) error
	sign   func(secret, id string, ts time.Time, body []byte) (string, error)
}

func verifiers() []verifier {
	return []verifier{
		{
			name: "standard-webhooks",
			verify: func(secret string, body []byte, h http.Header) error {
				wh, err := standardwebhooks.NewWebhook(secret)
				if err != nil {
					return err
				}
				return wh.Verify(body, h)
			},
			sign: func(secret, id string, ts time.Time, body []byte) (string, error) {
				wh, err := standardwebhooks.NewWebhook(secret)
				if err != nil {
					return "", err
				}
				return wh.Sign(id, ts, body)
			},
		},
		{
			name: "svix",
			verify: func(secret string, body []byte, h http.Header) error {
				wh, err := svix.NewWebhook(secret)
				if err != nil {
					return err
				}
				return wh.Verify(body, h)
			},
			sign: func(secret, id string, ts time.Time, body []byte) (string, error) {
				wh, err := svix.NewWebhook(secret)
				if err != nil {
					return "", err
				}
				return wh.Sign(id, ts, body)
			},
		},
	}
}

// TestOursPassTheirs sends what Herald sends to the reference verifiers,
// including a rotation header where only the second key is the receiver's.
// The libraries check the timestamp against the real clock, so the
// timestamp is the current time.
func TestOursPassTheirs(t *testing.T) {
	oldKey, receiverKey := mustNewSecret(t), mustNewSecret(t)
	secret := signature.FormatSecret(receiverKey)
	body := []byte(`{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}`)
	id := "msg_2aUyqjCzLgtWKWThkrs8yEX6HbN"
	now := time.Now()
	sig := signature.Header([][]byte{oldKey, receiverKey}, id, now, body)
	if !strings.Contains(sig, " ") {
		t.Fatalf("rotation header %q has one signature", sig)
	}
	for _, v := range verifiers() {
		t.Run(v.name, func(t *testing.T) {
			if err := v.verify(secret, body, headers(id, now, sig)); err != nil {
				t.Errorf("valid delivery refused: %v", err)
			}
			if err := v.verify(signature.FormatSecret(receiverKey), body, headers(id, now, signature.Sign(oldKey, id, now, body))); err == nil {
				t.Error("signature by the other key only was accepted")
			}
			tampered := []struct {
				name string
				body []byte
				h    http.Header
			}{
				{"body", append(append([]byte{}, body...), ' '), headers(id, now, sig)},
				{"id", body, headers(id+"x", now, sig)},
				{"timestamp", body, headers(id, now.Add(time.Second), sig)},
			}
			for _, tc := range tampered {
				if err := v.verify(secret, tc.body, tc.h); err == nil {
					t.Errorf("tampered %s accepted", tc.name)
				}
			}
		})
	}
}

// TestTheirsPassOurs checks that signatures made by the reference libraries
// pass Verify, alone and as the second of two.
func TestTheirsPassOurs(t *testing.T) {
	otherKey, receiverKey := mustNewSecret(t), mustNewSecret(t)
	secret := signature.FormatSecret(receiverKey)
	body := []byte(`{"hello":"world","n":[1,2,3]}`)
	id := "msg_theirs"
	ts := time.Unix(1700000000, 0)
	for _, v := range verifiers() {
		t.Run(v.name, func(t *testing.T) {
			theirs, err := v.sign(secret, id, ts, body)
			if err != nil {
				t.Fatal(err)
			}
			if ours := signature.Sign(receiverKey, id, ts, body); theirs != ours {
				t.Errorf("their signature %q, ours %q", theirs, ours)
			}
			keys := [][]byte{otherKey, receiverKey}
			for _, sig := range []string{theirs, signature.Sign(otherKey, id, ts, body) + " " + theirs, "v1a,AAAA " + theirs} {
				if err := signature.Verify(keys, headers(id, ts, sig), body, ts, 0); err != nil {
					t.Errorf("Verify(%q): %v", sig, err)
				}
			}
			if err := signature.Verify([][]byte{otherKey}, headers(id, ts, theirs), body, ts, 0); !errors.Is(err, signature.ErrNoMatch) {
				t.Errorf("Verify with the wrong key: %v, want ErrNoMatch", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	key, other := mustNewSecret(t), mustNewSecret(t)
	id := "msg_verify"
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	good := signature.Sign(key, id, ts, body)
	goodSig := strings.TrimPrefix(good, "v1,")

	only := func(prefix string, h http.Header) http.Header {
		out := http.Header{}
		for k, v := range h {
			if strings.HasPrefix(strings.ToLower(k), prefix) {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name      string
		keys      [][]byte
		h         http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil means pass
	}{
		{"valid", [][]byte{key}, headers(id, ts, good), body, ts, 0, nil},
		{"second key matches", [][]byte{other, key}, headers(id, ts, good), body, ts, 0, nil},
		{"second signature matches", [][]byte{key}, headers(id, ts, signature.Sign(other, id, ts, body)+" "+good), body, ts, 0, nil},
		{"webhook headers only", [][]byte{key}, only("webhook-", headers(id, ts, good)), body, ts, 0, nil},
		{"svix headers only", [][]byte{key}, only("svix-", headers(id, ts, good)), body, ts, 0, nil},
		{"tampered body", [][]byte{key}, headers(id, ts, good), []byte(`{"a":2}`), ts, 0, signature.ErrNoMatch},
		{"empty body", [][]byte{key}, headers(id, ts, good), nil, ts, 0, signature.ErrNoMatch},
		{"tampered id", [][]byte{key}, headers("msg_other", ts, good), body, ts, 0, signature.ErrNoMatch},
		{"tampered timestamp", [][]byte{key}, headers(id, ts.Add(time.Second), good), body, ts, 0, signature.ErrNoMatch},
		{"wrong key", [][]byte{other}, headers(id, ts, good), body, ts, 0, signature.ErrNoMatch},
		{"no keys", nil, headers(id, ts, good), body, ts, 0, signature.ErrNoKey},
		{"v1a ignored", [][]byte{key}, headers(id, ts, "v1a,"+goodSig), body, ts, 0, signature.ErrNoMatch},
		{"v2 ignored", [][]byte{key}, headers(id, ts, "v2,"+goodSig), body, ts, 0, signature.ErrNoMatch},
		{"no version", [][]byte{key}, headers(id, ts, goodSig), body, ts, 0, signature.ErrNoMatch},
		{"truncated signature", [][]byte{key}, headers(id, ts, good[:len(good)-1]), body, ts, 0, signature.ErrNoMatch},
		{"signature with trailing data", [][]byte{key}, headers(id, ts, good+"A"), body, ts, 0, signature.ErrNoMatch},
		{"at old edge", [][]byte{key}, headers(id, ts, good), body, ts.Add(5 * time.Minute), 0, nil},
		{"too old", [][]byte{key}, headers(id, ts, good), body, ts.Add(5*time.Minute + time.Second), 0, signature.ErrTooOld},
		{"at new edge", [][]byte{key}, headers(id, ts, good), body, ts.Add(-5 * time.Minute), 0, nil},
		{"too new", [][]byte{key}, headers(id, ts, good), body, ts.Add(-5*time.Minute - time.Second), 0, signature.ErrTooNew},
		{"custom tolerance", [][]byte{key}, headers(id, ts, good), body, ts.Add(time.Hour), 2 * time.Hour, nil},
		{"custom tolerance exceeded", [][]byte{key}, headers(id, ts, good), body, ts.Add(time.Minute), 30 * time.Second, signature.ErrTooOld},
		{"missing headers", [][]byte{key}, http.Header{}, body, ts, 0, signature.ErrMissingHeaders},
		{"missing signature", [][]byte{key}, only("webhook-", headers(id, ts, "")), body, ts, 0, signature.ErrMissingHeaders},
	}
	badTimestamps := []string{"", "abc", "+1700000000", "-1700000000", " 1700000000", "1700000000.0", "1.7e9", "99999999999999999999999"}
	for _, bad := range badTimestamps[1:] {
		h := headers(id, ts, good)
		h.Set("webhook-timestamp", bad)
		h.Set("svix-timestamp", bad)
		tests = append(tests, struct {
			name      string
			keys      [][]byte
			h         http.Header
			body      []byte
			now       time.Time
			tolerance time.Duration
			want      error
		}{"timestamp " + strconv.Quote(bad), [][]byte{key}, h, body, ts, 0, signature.ErrInvalidTimestamp})
	}
	// webhook-* wins when complete, so a wrong webhook-signature is not
	// rescued by a right svix-signature.
	mixed := headers(id, ts, good)
	mixed.Set("webhook-signature", signature.Sign(other, id, ts, body))
	tests = append(tests, struct {
		name      string
		keys      [][]byte
		h         http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{"webhook headers take precedence", [][]byte{key}, mixed, body, ts, 0, signature.ErrNoMatch})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.Verify(tt.keys, tt.h, tt.body, tt.now, tt.tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignerAllocations(t *testing.T) {
	s := signature.NewSigner([][]byte{mustNewSecret(t), mustNewSecret(t)})
	body := bytes.Repeat([]byte("x"), 1024)
	ts := time.Unix(vectorTS, 0)
	var buf []byte
	allocs := testing.AllocsPerRun(100, func() {
		buf = s.AppendHeader(buf[:0], vectorID, ts, body)
	})
	if allocs != 0 {
		t.Errorf("Signer.AppendHeader allocates %v times per call, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		_ = s.Header(vectorID, ts, body)
	})
	if allocs > 1 {
		t.Errorf("Signer.Header allocates %v times per call, want at most 1 (the string)", allocs)
	}
}

// FuzzVerify feeds arbitrary headers and bodies to Verify under a fixed key
// and checks it never panics and only accepts when the signature list holds
// the exact signature that key makes.
func FuzzVerify(f *testing.F) {
	key := []byte("fuzz-key-0123456789abcdef")
	now := time.Unix(vectorTS, 0)
	f.Add(vectorID, strconv.Itoa(vectorTS), signature.Sign(key, vectorID, now, []byte(vectorBody)), []byte(vectorBody), false)
	f.Add(vectorID, strconv.Itoa(vectorTS), "v1,AAAA "+signature.Sign(key, vectorID, now, []byte(vectorBody)), []byte(vectorBody), true)
	f.Add("msg_x", strconv.Itoa(vectorTS-60), signature.Sign(key, "msg_x", now.Add(-time.Minute), nil), []byte(nil), true)
	f.Add("msg_x", "1614265330", "v1a,abc v1,, ,v1", []byte("{}"), false)
	f.Add("", "", "", []byte{}, false)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, svixHeaders bool) {
		h := http.Header{}
		prefix := "webhook-"
		if svixHeaders {
			prefix = "svix-"
		}
		h.Set(prefix+"id", id)
		h.Set(prefix+"timestamp", ts)
		h.Set(prefix+"signature", sig)
		if err := signature.Verify([][]byte{key}, h, body, now, 0); err != nil {
			return
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			t.Fatalf("accepted unparsable timestamp %q", ts)
		}
		want := signature.Sign(key, id, time.Unix(sec, 0), body)
		if !strings.Contains(" "+sig+" ", " "+want+" ") {
			t.Fatalf("accepted %q for id %q ts %q body %q; the real signature is %q", sig, id, ts, body, want)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	key := mustParse(b, vectorSecret)
	body := bytes.Repeat([]byte(`{"k":"v"},`), 103)[:1024]
	ts := time.Unix(vectorTS, 0)
	b.Run("Signer", func(b *testing.B) {
		s := signature.NewSigner([][]byte{key})
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_ = s.Header(vectorID, ts, body)
		}
	})
	b.Run("Sign", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_ = signature.Sign(key, vectorID, ts, body)
		}
	})
}
