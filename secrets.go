package herald

import (
	"encoding/json"
	"fmt"
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
