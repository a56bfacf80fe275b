package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
)

// Sealer encrypts and decrypts with additional authenticated data;
// keyring.Keyring is one.
type Sealer interface {
	Seal(plaintext, additional []byte) ([]byte, error)
	Open(sealed, additional []byte) ([]byte, error)
}

// SealSecrets encodes an endpoint's signing secrets as JSON and seals them
// bound to the endpoint's ID. Every store keeps this one format, so a
// database can move between engines with the same keys.
func SealSecrets(s Sealer, endpointID string, secrets []SigningSecret) ([]byte, error) {
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encode secrets: %w", err)
	}
	sealed, err := s.Seal(plain, []byte(endpointID))
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("seal secrets: %w", err)
	}
	return sealed, nil
}

// OpenSecrets is the inverse of SealSecrets.
func OpenSecrets(s Sealer, endpointID string, sealed []byte) ([]SigningSecret, error) {
	plain, err := s.Open(sealed, []byte(endpointID))
	if err != nil {
		return nil, fmt.Errorf("open secrets of endpoint %s: %w", endpointID, err)
	}
	var secrets []SigningSecret
	err = json.Unmarshal(plain, &secrets)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("decode secrets of endpoint %s: %w", endpointID, err)
	}
	return secrets, nil
}

// headersAAD is the additional data that binds an endpoint's sealed custom
// headers to it. The prefix keeps it apart from the signing secrets' (the
// bare endpoint ID), so neither sealed value can stand in for the other.
func headersAAD(endpointID string) []byte {
	return []byte("headers:" + endpointID)
}

// SealHeaders encodes an endpoint's custom headers as a JSON object and
// seals them bound to the endpoint's ID: their values are often
// credentials for the customer's receiver (an Authorization header), so
// they are kept like signing secrets. No headers seal to nil (NULL).
func SealHeaders(s Sealer, endpointID string, headers map[string]string) ([]byte, error) {
	if len(headers) == 0 {
		return nil, nil
	}
	plain, err := json.Marshal(headers)
	if err != nil {
		return nil, fmt.Errorf("encode headers: %w", err)
	}
	sealed, err := s.Seal(plain, headersAAD(endpointID))
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("seal headers: %w", err)
	}
	return sealed, nil
}

// OpenHeaders is the inverse of SealHeaders; nil opens to no headers.
func OpenHeaders(s Sealer, endpointID string, sealed []byte) (map[string]string, error) {
	if sealed == nil {
		return nil, nil
	}
	plain, err := s.Open(sealed, headersAAD(endpointID))
	if err != nil {
		return nil, fmt.Errorf("open headers of endpoint %s: %w", endpointID, err)
	}
	var headers map[string]string
	err = json.Unmarshal(plain, &headers)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("decode headers of endpoint %s: %w", endpointID, err)
	}
	return headers, nil
}

// SealStore is what an encryption-key rotation needs of a store: the
// sealed values are every endpoint's signing secrets and custom headers.
type SealStore interface {
	// ResealEndpoints rewrites, with the first key of the store's keyring,
	// every sealed value not sealed by that key of up to limit endpoints
	// whose IDs follow after ("" for the first), in ID order, in one short
	// write transaction that reads the rows it rewrites, so a concurrent
	// update of an endpoint is never lost. Custom headers an older Herald
	// stored in plaintext are sealed too. The endpoints' UpdatedAt is kept.
	// Last in the result is the cursor for the next batch; "" means there
	// were no more endpoints.
	ResealEndpoints(ctx context.Context, after string, limit int) (ResealBatch, error)
	// CountSealed counts the sealed values and those an encryption-key
	// rotation has yet to rewrite.
	CountSealed(ctx context.Context) (SealCount, error)
}

// ResealBatch is what one ResealEndpoints call did.
type ResealBatch struct {
	Last      string // the ID of the last endpoint looked at; "" when none was
	Endpoints int    // endpoints looked at
	Resealed  int    // endpoints rewritten (some value was sealed by an older key or in plaintext)
}

// SealCount counts an engine's sealed values.
type SealCount struct {
	Endpoints int // every endpoint
	Values    int // sealed values (signing-secret sets and header sets)
	// Stale counts the values sealed by a key other than the first:
	// the keyring's older keys cannot be dropped while it is above zero.
	Stale int
	// Plaintext counts endpoints whose custom headers are stored in
	// plaintext: written by a Herald older than header sealing (during a
	// rolling upgrade) and sealed by the next ResealEndpoints.
	Plaintext int
}

// Resealer is a Sealer that tells whether a value was sealed by the key it
// seals with now; keyring.Keyring is one.
type Resealer interface {
	Sealer
	Current(sealed []byte) bool
}

// ResealEndpoint returns an endpoint's sealed signing secrets and headers
// as they must be stored after a key rotation: a value sealed by an older
// key is opened and sealed again by the first, and plaintext headers (a
// JSON object an older Herald stored; nil when none) are sealed, replacing
// sealedHeaders. changed is false when both values can stay as they are.
// Every engine stores the values in these formats, so they share this.
func ResealEndpoint(k Resealer, endpointID string, secrets, sealedHeaders, plaintextHeaders []byte) (newSecrets, newHeaders []byte, changed bool, err error) {
	newSecrets, newHeaders = secrets, sealedHeaders
	if !k.Current(secrets) {
		if newSecrets, err = reseal(k, secrets, []byte(endpointID)); err != nil {
			return nil, nil, false, fmt.Errorf("reseal secrets of endpoint %s: %w", endpointID, err)
		}
		changed = true
	}
	switch {
	case plaintextHeaders != nil:
		var headers map[string]string
		if err := json.Unmarshal(plaintextHeaders, &headers); err != nil {
			return nil, nil, false, fmt.Errorf("decode plaintext headers of endpoint %s: %w", endpointID, err)
		}
		if newHeaders, err = SealHeaders(k, endpointID, headers); err != nil {
			return nil, nil, false, err
		}
		changed = true
	case sealedHeaders != nil && !k.Current(sealedHeaders):
		if newHeaders, err = reseal(k, sealedHeaders, headersAAD(endpointID)); err != nil {
			return nil, nil, false, fmt.Errorf("reseal headers of endpoint %s: %w", endpointID, err)
		}
		changed = true
	}
	return newSecrets, newHeaders, changed, nil
}

// reseal opens sealed and seals its plaintext again with the first key.
func reseal(k Sealer, sealed, additional []byte) ([]byte, error) {
	plain, err := k.Open(sealed, additional)
	if err != nil {
		return nil, err
	}
	out, err := k.Seal(plain, additional)
	clear(plain)
	return out, err
}

// Add counts one endpoint's stored values into c.
func (c *SealCount) Add(k Resealer, secrets, sealedHeaders []byte, plaintextHeaders bool) {
	c.Endpoints++
	for _, v := range [][]byte{secrets, sealedHeaders} {
		if v == nil {
			continue
		}
		c.Values++
		if !k.Current(v) {
			c.Stale++
		}
	}
	if plaintextHeaders {
		c.Plaintext++
	}
}

// ResealProgress is how far ResealAll got.
type ResealProgress struct {
	Done     int // endpoints looked at
	Total    int // endpoints when the run began (or Done, if more were created since)
	Resealed int // endpoints rewritten
}

// ResealAll re-seals every sealed value of s with the first key, batch
// endpoints per short write transaction in ID order, and calls progress
// after each batch. It always starts from the first endpoint, so a run
// stopped half way (a crash, a cancelled context) is finished by running
// it again, which passes over what the first key already sealed.
func ResealAll(ctx context.Context, s SealStore, batch int, progress func(ResealProgress)) (ResealProgress, error) {
	c, err := s.CountSealed(ctx)
	if err != nil {
		return ResealProgress{}, err
	}
	p := ResealProgress{Total: c.Endpoints}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		b, err := s.ResealEndpoints(ctx, after, batch)
		if err != nil {
			return p, err
		}
		if b.Last == "" {
			return p, nil
		}
		after = b.Last
		p.Done += b.Endpoints
		p.Resealed += b.Resealed
		p.Total = max(p.Total, p.Done)
		if progress != nil {
			progress(p)
		}
	}
}

// urlPasswordKey is the name under which an endpoint URL's password is
// sealed with the endpoint's headers: no header can have it (a header
// name is a token, without NUL), and sealing it there has key rotation
// (ResealEndpoint) and the sealed-value counts cover it too.
const urlPasswordKey = "\x00url-password"

// URLPasswordMask replaces the password of a broker endpoint's URL in the
// url column, and wherever the URL is shown.
const URLPasswordMask = "xxxxx"

// SealEndpointHeaders seals ep's headers as SealHeaders does and, when
// ep.URL carries a password (a broker's credentials), that password with
// them. It returns the URL to store in the clear: ep.URL with the password
// replaced by URLPasswordMask.
func SealEndpointHeaders(s Sealer, ep *Endpoint) (storedURL string, sealed []byte, err error) {
	u, perr := url.Parse(ep.URL)
	if perr != nil || u.User == nil {
		sealed, err = SealHeaders(s, ep.ID, ep.Headers)
		return ep.URL, sealed, err
	}
	password, has := u.User.Password()
	if !has {
		sealed, err = SealHeaders(s, ep.ID, ep.Headers)
		return ep.URL, sealed, err
	}
	headers := make(map[string]string, len(ep.Headers)+1)
	maps.Copy(headers, ep.Headers)
	headers[urlPasswordKey] = password
	u.User = url.UserPassword(u.User.Username(), URLPasswordMask)
	sealed, err = SealHeaders(s, ep.ID, headers)
	return u.String(), sealed, err
}

// OpenEndpointHeaders is the inverse of SealEndpointHeaders: the headers,
// and storedURL with its sealed password put back.
func OpenEndpointHeaders(s Sealer, endpointID, storedURL string, sealed []byte) (fullURL string, headers map[string]string, err error) {
	headers, err = OpenHeaders(s, endpointID, sealed)
	if err != nil {
		return "", nil, err
	}
	password, ok := headers[urlPasswordKey]
	if !ok {
		return storedURL, headers, nil
	}
	delete(headers, urlPasswordKey)
	if len(headers) == 0 {
		headers = nil
	}
	u, err := url.Parse(storedURL)
	if err != nil || u.User == nil {
		return storedURL, headers, nil
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), headers, nil
}
