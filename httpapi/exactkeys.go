package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// encoding/json matches an object's keys to struct fields ignoring case,
// so {"uid":"a","UID":"b"} would set uid to "b". Svix (serde) matches them
// exactly and ignores other keys. exactKeys makes the decoder do the same:
// it drops, before decoding, every member whose name matches one of the
// target struct's JSON names only when case is ignored, in nested request
// objects too. A body without such a member is returned as it is, without
// a copy, so correctly cased input decodes exactly as before; kept members
// are copied byte for byte, so payloads stay as they were sent.
//
// A JSON v2 decoder (github.com/go-json-experiment/json) matches exactly by
// default, but it is an experiment whose errors, null handling and
// embedded-field rules differ from encoding/json's, which every error
// message of the API is built on; this pre-pass changes nothing else.

// keyRules say what to check in a JSON value decoded into one Go type.
type keyRules struct {
	// fields, for a struct, maps its exact JSON names to the rules of
	// their values (nil when nothing inside needs checking).
	fields map[string]*keyRules
	// elem, for a slice, array or map, is the rules of its elements.
	elem *keyRules
}

var keyRulesCache sync.Map // reflect.Type → *keyRules (nil when none)

// rulesFor returns the rules for values decoded into t, or nil when no
// value of t holds a struct to check.
func rulesFor(t reflect.Type) *keyRules {
	if r, ok := keyRulesCache.Load(t); ok {
		return r.(*keyRules)
	}
	r := buildRules(t, map[reflect.Type]bool{})
	keyRulesCache.Store(t, r)
	return r
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func buildRules(t reflect.Type, visiting map[reflect.Type]bool) *keyRules {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that decodes itself reads its keys as it likes; a recursive
	// type is checked down to its first repetition (no request type is).
	if visiting[t] || reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	switch t.Kind() {
	case reflect.Struct:
		r := &keyRules{fields: map[string]*keyRules{}}
		addFields(r.fields, t, visiting)
		return r
	case reflect.Slice, reflect.Array, reflect.Map:
		if elem := buildRules(t.Elem(), visiting); elem != nil {
			return &keyRules{elem: elem}
		}
	}
	return nil
}

// addFields adds the JSON names of t's fields as encoding/json sees them:
// the tag's name or the field's, embedded structs' fields promoted.
func addFields(fields map[string]*keyRules, t reflect.Type, visiting map[reflect.Type]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			addFields(fields, ft, visiting)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = buildRules(f.Type, visiting)
	}
}

// exactKeys returns body without the members encoding/json would match to
// a field of v's type only by ignoring case. Invalid JSON is returned as
// it is, for the decoder to report.
func exactKeys(body []byte, v any) []byte {
	rules := rulesFor(reflect.TypeOf(v))
	if rules == nil {
		return body
	}
	start := skipSpace(body, 0)
	if start >= len(body) {
		return body
	}
	out, end, ok := rules.clean(body, start)
	if !ok || out == nil {
		return body
	}
	cleaned := make([]byte, 0, start+len(out)+len(body)-end)
	cleaned = append(cleaned, body[:start]...)
	cleaned = append(cleaned, out...)
	return append(cleaned, body[end:]...)
}

// clean reads the value starting at b[i] (not a space) and returns its end
// and, when some member was dropped inside it, its new text; out is nil
// when the value stays as it is. ok is false when the value is not valid
// JSON as far as clean can tell.
func (k *keyRules) clean(b []byte, i int) (out []byte, end int, ok bool) {
	switch {
	case k == nil:
		end, ok = skipValue(b, i)
		return nil, end, ok
	case b[i] == '{' && (k.fields != nil || k.elem != nil):
		return k.cleanObject(b, i)
	case b[i] == '[' && k.elem != nil:
		return k.cleanArray(b, i)
	}
	// Anything else (null, or a value of the wrong type) is left to the
	// decoder.
	end, ok = skipValue(b, i)
	return nil, end, ok
}

// cleanObject reads an object: a struct's (members matched to its fields)
// or a map's (every member's value read with elem).
func (k *keyRules) cleanObject(b []byte, i int) (out []byte, end int, ok bool) {
	var buf []byte // nil until the object changes
	kept := false  // whether a member is kept before the current one
	keptEnd := i + 1
	j := skipSpace(b, i+1)
	if j < len(b) && b[j] == '}' {
		return nil, j + 1, true
	}
	for {
		if j >= len(b) || b[j] != '"' {
			return nil, 0, false
		}
		ks := j
		ke := stringEnd(b, ks+1)
		if ke >= len(b) {
			return nil, 0, false
		}
		key := b[ks+1 : ke]
		if bytes.IndexByte(key, '\\') >= 0 {
			var unquoted string
			if json.Unmarshal(b[ks:ke+1], &unquoted) != nil {
				return nil, 0, false
			}
			key = []byte(unquoted)
		}
		j = skipSpace(b, ke+1)
		if j >= len(b) || b[j] != ':' {
			return nil, 0, false
		}
		vs := skipSpace(b, j+1)
		if vs >= len(b) {
			return nil, 0, false
		}
		var val []byte
		var ve int
		drop := false
		if k.fields != nil {
			child, exact := k.fields[string(key)] // no copy made for the lookup
			if exact {
				val, ve, ok = child.clean(b, vs)
			} else {
				ve, ok = skipValue(b, vs)
				// A dropped member must have been valid JSON, or the
				// decoder would no longer see the error.
				drop = ok && k.foldMatch(key) && json.Valid(b[ks:ke+1]) && json.Valid(b[vs:ve])
			}
		} else {
			val, ve, ok = k.elem.clean(b, vs)
		}
		if !ok {
			return nil, 0, false
		}
		if buf == nil && (drop || val != nil) {
			buf = append(make([]byte, 0, len(b)-i), b[i:keptEnd]...)
		}
		switch {
		case drop:
		case buf == nil:
			kept, keptEnd = true, ve
		default:
			if kept {
				buf = append(buf, ',')
			}
			if val != nil {
				buf = append(append(buf, b[ks:vs]...), val...)
			} else {
				buf = append(buf, b[ks:ve]...)
			}
			kept = true
		}
		j = skipSpace(b, ve)
		if j >= len(b) {
			return nil, 0, false
		}
		switch b[j] {
		case ',':
			j = skipSpace(b, j+1)
		case '}':
			if buf == nil {
				return nil, j + 1, true
			}
			return append(buf, '}'), j + 1, true
		default:
			return nil, 0, false
		}
	}
}

// cleanArray reads an array whose elements are read with elem.
func (k *keyRules) cleanArray(b []byte, i int) (out []byte, end int, ok bool) {
	var buf []byte
	copied := i
	j := skipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return nil, j + 1, true
	}
	for {
		if j >= len(b) {
			return nil, 0, false
		}
		val, ve, ok := k.elem.clean(b, j)
		if !ok {
			return nil, 0, false
		}
		if val != nil {
			buf = append(append(buf, b[copied:j]...), val...)
			copied = ve
		}
		j = skipSpace(b, ve)
		if j >= len(b) {
			return nil, 0, false
		}
		switch b[j] {
		case ',':
			j = skipSpace(b, j+1)
		case ']':
			if buf == nil {
				return nil, j + 1, true
			}
			return append(buf, b[copied:j+1]...), j + 1, true
		default:
			return nil, 0, false
		}
	}
}

// foldMatch reports whether key matches a field's name when case is
// ignored, as encoding/json would match it (its folding is
// bytes.EqualFold's).
func (k *keyRules) foldMatch(key []byte) bool {
	for name := range k.fields {
		if strings.EqualFold(name, string(key)) {
			return true
		}
	}
	return false
}

// skipValue returns the end of the JSON value starting at b[i]. It finds
// where the value ends, without checking all of it: the decoder does.
func skipValue(b []byte, i int) (end int, ok bool) {
	switch b[i] {
	case '"':
		e := stringEnd(b, i+1)
		return e + 1, e < len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			for j < len(b) && !structural[b[j]] {
				j++
			}
			if j == len(b) {
				break
			}
			switch b[j] {
			case '"':
				j = stringEnd(b, j+1)
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}]: \t\r\n\"{[", rune(b[j])) {
		j++
	}
	return j, j > i
}

// structural marks the bytes skipValue stops at inside an object or array.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
