package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/netguard"
	"github.com/herald-webhooks/herald/signature"
)

// Field rules shared by the resources, from the Svix API.
var (
	idPattern  = regexp.MustCompile(`^[a-zA-Z0-9\-_.]+$`)
	tagPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_./\\#]+$`)
)

const (
	maxNameLen    = 256
	maxURLLen     = 65536
	maxChannels   = 10
	maxChannelLen = 128
	maxTags       = 5
	maxTagLen     = 128
	// maxHeaders bounds an endpoint's custom headers, which go out with
	// every delivery attempt.
	maxHeaders = 100
)

// checkName validates a uid, eventId, event type name or filter type.
func (v *validation) checkName(s string, loc ...string) {
	switch {
	case s == "":
		v.add("ensure this value has at least 1 characters", loc...)
	case len(s) > maxNameLen:
		v.add("ensure this value has at most 256 characters", loc...)
	case !idPattern.MatchString(s):
		v.add(`string does not match the pattern "^[a-zA-Z0-9\-_.]+$"`, loc...)
	}
}

// checkOptionalName validates a name that may be absent (nil).
func (v *validation) checkOptionalName(s *string, loc ...string) {
	if s != nil {
		v.checkName(*s, loc...)
	}
}

// checkRequiredName validates a name that must be given.
func (v *validation) checkRequiredName(s *string, loc ...string) {
	if s == nil {
		v.add("field required", loc...)
		return
	}
	v.checkName(*s, loc...)
}

// checkNames validates a list of names: each valid and all distinct.
func (v *validation) checkNames(list []string, loc ...string) {
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		v.checkName(s, at(loc, fmt.Sprint(i))...)
		if seen[s] {
			v.add("the list has duplicated items", loc...)
			return
		}
		seen[s] = true
	}
}

// checkChannels validates channels: at most 10, each valid and distinct.
func (v *validation) checkChannels(list []string, loc ...string) {
	v.checkItems(list, maxChannels, channelProblem, loc...)
}

// channelProblem says what is wrong with a channel name, "" when nothing.
func channelProblem(s string) string {
	switch {
	case s == "" || !idPattern.MatchString(s):
		return `string does not match the pattern "^[a-zA-Z0-9\-_.]+$"`
	case len(s) > maxChannelLen:
		return fmt.Sprintf("ensure this value has at most %d characters", maxChannelLen)
	}
	return ""
}

// checkChannel validates one channel (a query filter).
func (v *validation) checkChannel(s string, loc ...string) {
	if msg := channelProblem(s); msg != "" {
		v.add(msg, loc...)
	}
}

// checkTags validates message tags: at most 5, each valid and distinct.
func (v *validation) checkTags(list []string, loc ...string) {
	v.checkItems(list, maxTags, tagProblem, loc...)
}

// checkTag validates one tag (the ?tag= filter).
func (v *validation) checkTag(s string, loc ...string) {
	if msg := tagProblem(s); msg != "" {
		v.add(msg, loc...)
	}
}

// tagProblem says what is wrong with a tag, or "".
func tagProblem(s string) string {
	if s == "" || len(s) > maxTagLen || !tagPattern.MatchString(s) {
		return "tags are 1 to 128 characters of letters, digits and -_./\\#"
	}
	return ""
}

// checkItems validates a list of at most maxItems distinct strings; problem
// returns what is wrong with one item, or "".
func (v *validation) checkItems(list []string, maxItems int, problem func(string) string, loc ...string) {
	if len(list) > maxItems {
		v.add(fmt.Sprintf("ensure this list has at most %d items", maxItems), loc...)
		return
	}
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		if msg := problem(s); msg != "" {
			v.add(msg, at(loc, fmt.Sprint(i))...)
		} else if seen[s] {
			v.add("the list has duplicated items", loc...)
		}
		seen[s] = true
	}
}

// checkURL validates an endpoint URL: absolute http(s), or a broker's URL
// that destination.Check accepts (Herald extension: nats, redis, rediss
// …), with a host that is not refused as it is written
// (netguard.CheckHost; with allowPrivate, only cloud metadata addresses
// are).
func (v *validation) checkURL(s string, allowPrivate bool, loc ...string) {
	if s == "" {
		v.add("field required", loc...)
		return
	}
	if len(s) > maxURLLen {
		v.add("ensure this value has at most 65536 characters", loc...)
		return
	}
	u, err := url.Parse(s)
	broker := err == nil && destination.IsBroker(u.Scheme)
	switch {
	case broker && strings.Contains(s, " "):
		v.add("URLs cannot contain spaces: percent-encode them as %20", loc...)
	case broker:
		// A broker's credentials belong in its URL: they are sealed at
		// rest and every read shows the URL with the password redacted.
		if err := destination.Check(s); err != nil {
			v.add(err.Error(), loc...)
			return
		}
		for _, host := range destination.Hosts(u) {
			if reason, refused := netguard.CheckHost(host, allowPrivate); refused {
				v.add(refusedHostDetail(reason), loc...)
				return
			}
		}
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		v.add("invalid or missing URL scheme or host: an absolute http or https URL is required, or a broker's ("+strings.Join(destination.Schemes(), ", ")+")", loc...)
	case strings.Contains(s, " "):
		// url.Parse lets a space through in the path, but it is not a URI
		// character (Svix's format: uri); the sender would have to guess.
		v.add("URLs cannot contain spaces: percent-encode them as %20", loc...)
	case u.User != nil:
		// The URL is shown back by every endpoint read; a
		// credential belongs in a custom header, which reads withhold.
		v.add("credentials in the URL are not allowed: send them in a custom header such as Authorization", loc...)
	default:
		if reason, refused := netguard.CheckHost(u.Hostname(), allowPrivate); refused {
			v.add(refusedHostDetail(reason), loc...)
		}
	}
}

// refusedHostDetail says why an endpoint URL's host is refused.
func refusedHostDetail(reason string) string {
	if reason == netguard.ReasonMetadata {
		return "the URL's host is a cloud metadata address: deliveries to it are never allowed"
	}
	return "the URL's host is a " + reason + ": deliveries to it are refused unless Herald runs with --allow-private-targets"
}

// checkPayload requires a JSON object whose numbers fit in a float64: a
// number like 1e400 is valid JSON, but no SDK could decode the message (nor
// would a receiver's JSON library, most likely), so it is refused up front.
// raw must be valid JSON, as a json.RawMessage filled by encoding/json is.
func (v *validation) checkPayload(raw json.RawMessage, loc ...string) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		v.add("field required", loc...)
	case trimmed[0] != '{':
		v.add("value is not a valid JSON object", loc...)
	case !numbersFitFloat64(trimmed):
		v.add("payload numbers must fit in a 64-bit float", loc...)
	}
}

// numbersFitFloat64 reports whether every number in the valid JSON text b
// parses as a float64. For valid JSON that is the one way decoding into an
// any can fail (strconv.ParseFloat's ErrRange on an overflow; an underflow
// to zero is no error), and checking only that spares building the decoded
// tree of maps and strings. Strings are skipped, not checked.
func numbersFitFloat64(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			i = stringEnd(b, i+1)
		case c == '-' || '0' <= c && c <= '9':
			j := i + 1
			for j < len(b) && isNumberByte(b[j]) {
				j++
			}
			if _, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// stringEnd returns the index of the quote that closes the JSON string
// whose contents start at b[i], or len(b) when there is none. A quote is
// escaped when an odd number of backslashes precedes it.
func stringEnd(b []byte, i int) int {
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		q += i
		n := 0
		for n < q-i && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// isNumberByte reports whether c can continue a JSON number literal.
func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// checkVersion validates an endpoint version (at least 1).
func (v *validation) checkVersion(n *int, loc ...string) {
	if n != nil && (*n < 1 || *n > 65535) {
		v.add("ensure this value is between 1 and 65535", loc...)
	}
}

// checkHeaders validates custom endpoint headers; null values are allowed
// only when allowNull is set (PATCH removes those headers). Header names
// are case-insensitive, so two names that differ only in case are refused:
// only one of them could be sent.
func (v *validation) checkHeaders(headers map[string]*string, allowNull bool, loc ...string) {
	if len(headers) > maxHeaders {
		v.add(fmt.Sprintf("ensure this object has at most %d headers", maxHeaders), loc...)
		return
	}
	seen := make(map[string]string, len(headers)) // lower case → name
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		value := headers[name]
		nameLoc := at(loc, name)
		first, dup := seen[strings.ToLower(name)]
		switch {
		case !validHeaderName(name):
			v.add("invalid header name", nameLoc...)
		case herald.ReservedHeader(name):
			v.add("this header is set by Herald and cannot be overridden", nameLoc...)
		case dup:
			v.add(fmt.Sprintf("header names are case-insensitive: this one repeats %q", first), nameLoc...)
		case value == nil && !allowNull:
			v.add("value is not a valid string", nameLoc...)
		case value != nil && !validHeaderValue(*value):
			v.add("header values cannot contain control characters (CR, LF, NUL and the others; tab is allowed)", nameLoc...)
		}
		seen[strings.ToLower(name)] = name
	}
}

// validHeaderValue reports whether s is a field value as RFC 9110 has it:
// no control character but horizontal tab (DEL included). Go's HTTP client
// refuses to send any other, so every delivery would fail.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// sensitiveHeader reports whether a header's value must not be shown back.
func sensitiveHeader(name string) bool {
	lower := strings.ToLower(name)
	switch lower {
	case "authorization", "cookie", "proxy-authorization", "set-cookie":
		return true
	}
	for _, word := range []string{"secret", "token", "key", "password"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// checkSecret validates an optional given secret and returns it, nil when
// absent: "whsec_…" (or bare base64) is an HMAC key, "whsk_…" an ed25519
// private key, as Svix reads them. A public key ("whpk_…") cannot sign and
// is refused.
func (v *validation) checkSecret(s *string, loc ...string) *herald.SigningSecret {
	if s == nil {
		return nil
	}
	if strings.HasPrefix(*s, signature.SecretKeyPrefix) {
		priv, err := signature.ParseSecretKey(*s)
		if err != nil {
			v.add("secret key must be whsk_ followed by the base64 of a 64-byte ed25519 private key (seed, then its public key)", loc...)
			return nil
		}
		return &herald.SigningSecret{Key: priv, Type: herald.SecretEd25519}
	}
	key, err := signature.ParseSecret(*s)
	if err != nil {
		v.add("secret must be whsec_ followed by the base64 of 24 to 64 bytes, or whsk_ followed by the base64 of an ed25519 private key", loc...)
		return nil
	}
	return &herald.SigningSecret{Key: key}
}

// at returns a copy of loc with more appended, so sibling locations never
// share a backing array.
func at(loc []string, more ...string) []string {
	return append(append(make([]string, 0, len(loc)+len(more)), loc...), more...)
}
