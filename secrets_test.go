package herald_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

func ring(t *testing.T, keys ...string) *keyring.Keyring {
	t.Helper()
	r, err := keyring.Parse(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newKey(t *testing.T) string {
	t.Helper()
	k, err := keyring.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealedHeadersBoundToEndpoint: sealed headers open only for their own
// endpoint and only as headers: neither another endpoint's row nor the
// signing-secrets column can take them.
func TestSealedHeadersBoundToEndpoint(t *testing.T) {
	k := ring(t, newKey(t))
	headers := map[string]string{"Authorization": "Bearer receiver-secret"}
	sealed, err := herald.SealHeaders(k, "ep_1", headers)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("receiver-secret")) {
		t.Fatal("sealed headers hold the value in clear")
	}
	got, err := herald.OpenHeaders(k, "ep_1", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(headers, got); diff != "" {
		t.Errorf("opened headers (-want +got):\n%s", diff)
	}
	if _, err := herald.OpenHeaders(k, "ep_2", sealed); err == nil {
		t.Error("headers sealed for ep_1 opened for ep_2")
	}
	if _, err := herald.OpenSecrets(k, "ep_1", sealed); err == nil {
		t.Error("sealed headers opened as the endpoint's signing secrets")
	}
	secrets, err := herald.SealSecrets(k, "ep_1", []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := herald.OpenHeaders(k, "ep_1", secrets); err == nil {
		t.Error("sealed signing secrets opened as the endpoint's headers")
	}
	if none, err := herald.SealHeaders(k, "ep_1", nil); none != nil || err != nil {
		t.Errorf("SealHeaders(nil) = %v, %v; want nil (NULL)", none, err)
	}
	if none, err := herald.OpenHeaders(k, "ep_1", nil); none != nil || err != nil {
		t.Errorf("OpenHeaders(nil) = %v, %v; want no headers", none, err)
	}
}

// TestResealEndpoint: values sealed by an older key, and plaintext headers,
// come back sealed by the first key with the same content; values the
// first key sealed are left as they are.
func TestResealEndpoint(t *testing.T) {
	oldKey, nextKey := newKey(t), newKey(t)
	old, both, onlyNew := ring(t, oldKey), ring(t, nextKey, oldKey), ring(t, nextKey)
	secrets := []herald.SigningSecret{{Key: []byte("0123456789abcdef01234567")}}
	headers := map[string]string{"X-Api-Key": "k-1"}
	sealedSecrets, _ := herald.SealSecrets(old, "ep_1", secrets)
	sealedHeaders, _ := herald.SealHeaders(old, "ep_1", headers)

	s, h, changed, err := herald.ResealEndpoint(both, "ep_1", sealedSecrets, sealedHeaders, nil)
	if err != nil || !changed {
		t.Fatalf("ResealEndpoint = changed %v, %v", changed, err)
	}
	gotSecrets, err := herald.OpenSecrets(onlyNew, "ep_1", s)
	if err != nil || !cmp.Equal(secrets, gotSecrets) {
		t.Errorf("resealed secrets with the new key alone = %v, %v", gotSecrets, err)
	}
	gotHeaders, err := herald.OpenHeaders(onlyNew, "ep_1", h)
	if err != nil || !cmp.Equal(headers, gotHeaders) {
		t.Errorf("resealed headers with the new key alone = %v, %v", gotHeaders, err)
	}
	if s2, h2, changed, err := herald.ResealEndpoint(both, "ep_1", s, h, nil); err != nil || changed || !bytes.Equal(s2, s) || !bytes.Equal(h2, h) {
		t.Errorf("ResealEndpoint of current values changed them (%v, %v)", changed, err)
	}

	// Plaintext headers (an older Herald's) replace the sealed ones.
	_, h, changed, err = herald.ResealEndpoint(both, "ep_1", s, h, []byte(`{"X-Api-Key":"k-2"}`))
	if err != nil || !changed {
		t.Fatalf("ResealEndpoint with plaintext headers = changed %v, %v", changed, err)
	}
	if got, err := herald.OpenHeaders(onlyNew, "ep_1", h); err != nil || got["X-Api-Key"] != "k-2" {
		t.Errorf("sealed plaintext headers = %v, %v", got, err)
	}

	// A value sealed by a key the keyring lacks stops the rotation.
	if _, _, _, err := herald.ResealEndpoint(onlyNew, "ep_1", sealedSecrets, nil, nil); err == nil {
		t.Error("ResealEndpoint opened a value without its key")
	}
}
