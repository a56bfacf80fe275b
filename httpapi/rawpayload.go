package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"slices"
	"strings"
)

// Raw payloads, as the Svix SDKs' messageInRaw sends them: payload {} and
// transformationsParams {rawPayload: "<body>", headers: {"content-type":
// "<type>"}}. The body is delivered and signed byte for byte.

// defaultRawContentType is a raw payload's content type when the message
// gives none, as Svix sends it. Stored explicitly: a stored content type
// is what marks a message's payload as raw (herald.Message.ContentType).
const defaultRawContentType = "application/json"

// maxContentTypeLen bounds the content type a raw payload may give.
const maxContentTypeLen = 256

// rawParams is what a message's transformationsParams set: the raw body and
// its content type, "" when not given.
type rawParams struct {
	payload     []byte // nil unless rawPayload was given
	contentType string
}

// body is a message's body as endpoints receive it: the raw payload when
// there is one (payload, {} from the SDKs, is then ignored as Svix ignores
// it), else the JSON payload as sent.
func (p rawParams) body(payload json.RawMessage) []byte {
	if p.payload != nil {
		return p.payload
	}
	return []byte(payload)
}

// checkTransformationsParams validates a MessageIn's transformationsParams
// and returns what they set. Herald runs no transformations, so a key it
// does not know is refused rather than ignored: ignoring a misspelt
// rawPayload would deliver {} to every endpoint.
func (v *validation) checkTransformationsParams(params map[string]json.RawMessage) rawParams {
	var out rawParams
	loc := []string{"body", "transformationsParams"}
	for _, key := range slices.Sorted(maps.Keys(params)) {
		value := params[key]
		switch key {
		case "rawPayload":
			if isNull(value) {
				continue
			}
			var s string
			if err := json.Unmarshal(value, &s); err != nil {
				v.add("value is not a valid string", at(loc, key)...)
				continue
			}
			if s == "" {
				// An empty body cannot be told from expunged content.
				v.add("ensure this value has at least 1 character", at(loc, key)...)
				continue
			}
			out.payload = []byte(s)
		case "headers":
			if isNull(value) {
				continue
			}
			out.contentType = v.checkRawHeaders(value, at(loc, key))
		default:
			v.add("Herald runs no transformations: only rawPayload and headers (content-type) are accepted here", at(loc, key)...)
		}
	}
	if out.payload != nil && out.contentType == "" {
		out.contentType = defaultRawContentType
	}
	return out
}

// checkRawHeaders validates transformationsParams.headers, an object of
// strings of which content-type (any case) is the one Herald honours, and
// returns its content type. Other headers are refused: they would be
// dropped silently (an endpoint's own headers are set on the endpoint).
func (v *validation) checkRawHeaders(raw json.RawMessage, loc []string) string {
	var headers map[string]json.RawMessage
	if err := json.Unmarshal(raw, &headers); err != nil {
		v.add("value is not a valid object", loc...)
		return ""
	}
	var contentType string
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		nameLoc := at(loc, name)
		if !strings.EqualFold(name, "content-type") {
			v.add("only content-type can be set here; an endpoint's own headers are set on the endpoint", nameLoc...)
			continue
		}
		var s string
		if err := json.Unmarshal(headers[name], &s); err != nil {
			v.add("value is not a valid string", nameLoc...)
			continue
		}
		if contentType != "" {
			v.add("header names are case-insensitive: content-type is given twice", nameLoc...)
			continue
		}
		if !validContentType(s) {
			v.add("value is not a valid media type (type/subtype with optional parameters, at most 256 characters, no control characters)", nameLoc...)
			continue
		}
		contentType = s
	}
	return contentType
}

// validContentType reports whether s can go out as a Content-Type header:
// a media type Go parses, with no control character (Go's HTTP client
// refuses to send those, so every attempt would fail).
func validContentType(s string) bool {
	if len(s) > maxContentTypeLen || !validHeaderValue(s) {
		return false
	}
	mt, _, err := mime.ParseMediaType(s)
	return err == nil && strings.Contains(mt, "/")
}

// shownPayload is what a MessageOut shows of a stored raw payload: the
// bytes themselves when they are a JSON object the SDKs can read (as Svix
// shows a raw payload that parses as JSON), else {} as for a payload that
// is not there.
func shownPayload(raw []byte) json.RawMessage {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) && numbersFitFloat64(trimmed) {
		return raw
	}
	return emptyPayload
}
