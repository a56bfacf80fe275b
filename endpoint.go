package herald

import (
	"slices"
	"strings"
	"time"
)

// Endpoint is a URL of an application's that receives its messages.
type Endpoint struct {
	ID          string
	AppID       string
	UID         string // "" when unset
	URL         string
	Description string
	Version     int
	Disabled    bool
	// FilterTypes, when not empty, limits the endpoint to these event types.
	FilterTypes []string
	// Channels, when not empty, limits the endpoint to messages that share
	// at least one channel with it.
	Channels []string
	// RateLimit caps deliveries per second to this endpoint; nil is unlimited.
	RateLimit *uint16
	// Poller marks a polling endpoint when a store read only its routing
	// data, without the URL (see IsPoller).
	Poller bool
	// Ordering is OrderingFIFO for an endpoint that receives its messages
	// one at a time in creation order, "" otherwise.
	Ordering Ordering
	Metadata map[string]string
	// Headers are sent with every delivery to this endpoint.
	Headers map[string]string
	// Secrets holds the signing secrets, the current one first. Older ones
	// keep signing until their ExpiresAt so receivers can rotate smoothly.
	// Stores keep them encrypted at rest.
	Secrets []SigningSecret
	// FailingSince is when the endpoint's current run of failed attempts
	// began: the first failed attempt after a success, zero while its last
	// attempt succeeded. Stores maintain it from recorded attempts (and clear
	// it when a disabled endpoint is enabled again); UpdateEndpoint does not
	// write it.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Ordering is how an endpoint's deliveries are ordered.
type Ordering string

const (
	// OrderingNone sends deliveries concurrently, in no promised order.
	OrderingNone Ordering = ""
	// OrderingFIFO sends one delivery at a time, in message creation (ID)
	// order: a delivery waits until every earlier one of the endpoint has
	// succeeded or failed for good.
	OrderingFIFO Ordering = "fifo"
)

// SigningSecret is one signing key of an endpoint: an HMAC key, or an
// ed25519 private key (its 64 bytes: seed, then public key) when Type is
// SecretEd25519.
type SigningSecret struct {
	Key []byte
	// Type is the key's scheme; the zero value is HMAC, so secrets sealed
	// before there were types read as what they are.
	Type SecretType `json:",omitempty"`
	// ExpiresAt is zero for the current secret and the end of the grace
	// period for a rotated one.
	ExpiresAt time.Time
}

// SecretType is the signature scheme of a SigningSecret.
type SecretType string

const (
	// SecretHMAC signs with HMAC-SHA256: "v1," signatures, "whsec_" form.
	SecretHMAC SecretType = ""
	// SecretEd25519 signs with ed25519: "v1a," signatures, "whsk_" form,
	// verified with the public key ("whpk_").
	SecretEd25519 SecretType = "ed25519"
)

// ActiveSecrets returns the secrets that still sign at time now, the current
// one first.
func (e *Endpoint) ActiveSecrets(now time.Time) []SigningSecret {
	out := make([]SigningSecret, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// Accepts reports whether the endpoint should receive a message of the given
// event type and channels: it is enabled, its FilterTypes is empty or holds
// the event type, and its Channels is empty or shares one with the message.
// A polling endpoint accepts nothing: its consumers pull (see PollerURL).
func (e *Endpoint) Accepts(eventType string, channels []string) bool {
	if e.Disabled || e.IsPoller() {
		return false
	}
	if len(e.FilterTypes) > 0 && !slices.Contains(e.FilterTypes, eventType) {
		return false
	}
	if len(e.Channels) == 0 {
		return true
	}
	for _, c := range channels {
		if slices.Contains(e.Channels, c) {
			return true
		}
	}
	return false
}

// ReservedHeader reports whether a custom endpoint header would override one
// Herald sets on every delivery (signature, content and transport headers).
// Such names are refused by the API and skipped by the sender.
func ReservedHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "content-type", "content-length", "user-agent", "host", "connection", "transfer-encoding", "traceparent":
		return true
	}
	return strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "svix-") || strings.HasPrefix(n, "herald-")
}

// ApplyUpdate runs update on ep, the endpoint as stored, and puts back what
// no update may change (ID, application, creation time, and FailingSince,
// which only attempts and enabling move). It returns the endpoint as it was
// stored. Both stores' UpdateEndpointFunc use it inside their write
// transaction.
func (ep *Endpoint) ApplyUpdate(update func(*Endpoint) error) (stored Endpoint, err error) {
	stored = *ep
	if err := update(ep); err != nil {
		return stored, err
	}
	ep.ID, ep.AppID, ep.CreatedAt, ep.FailingSince = stored.ID, stored.AppID, stored.CreatedAt, stored.FailingSince
	return stored, nil
}
