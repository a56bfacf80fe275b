// Package webhookspec reads the webhooks of an OpenAPI 3 document into
// event types, as Svix's event-type import does: each entry of the
// document's webhooks (or x-webhooks) is an event type of the entry's name,
// whose schema is the JSON schema of its POST operation's request body,
// with every $ref inside the document written out, since an event type's
// schema stands alone.
package webhookspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds on what one document may expand to. A document within the body
// limit can still name a schema that refers to another twice, and that one
// to a third twice, and so on: writing out the references doubles the size
// at each step, so the import counts what it writes.
const (
	// MaxValues bounds the JSON values written out over all the schemas
	// of one document.
	MaxValues = 200_000
	// MaxBytes bounds the text (keys and strings) written out over all the
	// schemas of one document.
	MaxBytes = 8 << 20
	// MaxDepth bounds the nesting of a schema, references written out.
	MaxDepth = 64
	// MaxEventTypes bounds the webhooks of one document: they are written
	// in one transaction, which holds SQLite's single writer.
	MaxEventTypes = 1000
)

// budget counts the values and text written out from one document.
type budget struct{ values, bytes int }

// spend counts v (not what it holds) and reports a problem at path when
// the document has expanded beyond the bounds.
func (b *budget) spend(v any, key string, path []string) error {
	b.values++
	b.bytes += len(key)
	if s, ok := v.(string); ok {
		b.bytes += len(s)
	}
	switch {
	case b.values > MaxValues:
		return problem(path, "the document expands to more than %d values", MaxValues)
	case b.bytes > MaxBytes:
		return problem(path, "the document expands to more than %d bytes of text", MaxBytes)
	}
	return nil
}

// EventType is one event type the document defines.
type EventType struct {
	// Path is where the webhook is: webhooks or x-webhooks, then Name.
	Path        []string
	Name        string
	Description string
	Deprecated  bool
	// FeatureFlag is the operation's x-svix-feature-flag.
	FeatureFlag string
	// Schema is the request body's JSON schema (nil when the webhook has
	// none), with the media type's example and examples appended to its
	// examples.
	Schema map[string]any
}

// Error is a problem of the document, at Path (keys from its root).
type Error struct {
	Path []string
	Msg  string
}

// Error writes the path as a JSON pointer (~1 for /, ~0 for ~).
func (e *Error) Error() string {
	return "#/" + strings.Join(e.Pointer(), "/") + ": " + e.Msg
}

// Pointer returns the path's keys escaped as in a JSON pointer.
func (e *Error) Pointer() []string {
	out := make([]string, len(e.Path))
	for i, k := range e.Path {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
	}
	return out
}

func problem(path []string, format string, args ...any) *Error {
	return &Error{Path: slices.Clone(path), Msg: fmt.Sprintf(format, args...)}
}

// Decode reads a document written as JSON or YAML (JSON is YAML, but is
// read as JSON so its numbers keep their text).
func Decode(raw []byte) (map[string]any, error) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		return DecodeJSON(t)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, &Error{Msg: "not a valid YAML or JSON document: " + err.Error()}
	}
	var b budget
	v, err := fromYAML(doc, "", nil, &b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Msg: "the document is not an object"}
	}
	return m, nil
}

// DecodeJSON reads a JSON document, numbers as json.Number.
func DecodeJSON(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, &Error{Msg: "not a valid JSON document: " + err.Error()}
	}
	if d.More() {
		return nil, &Error{Msg: "not a valid JSON document: data after the document"}
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, &Error{Msg: "the document is not an object"}
	}
	return m, nil
}

// fromYAML turns what YAML decoded into what JSON would have: objects keyed
// by strings only, and times as text. It counts the values, because YAML
// aliases can repeat a node many times.
func fromYAML(v any, key string, path []string, b *budget) (any, error) {
	if err := b.spend(v, key, path); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := fromYAML(e, k, append(path, k), b)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		return nil, problem(path, "an object's keys must be strings")
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := fromYAML(e, "", append(path, strconv.Itoa(i)), b)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case nil, string, bool, int, int64, uint64, float64:
		return v, nil
	default:
		// Timestamps and binary: JSON has only their text.
		return fmt.Sprint(v), nil
	}
}

// EventTypes returns the event types of doc in name order.
func EventTypes(doc map[string]any) ([]EventType, error) {
	version, ok := doc["openapi"].(string)
	if !ok || !strings.HasPrefix(version, "3.") {
		return nil, problem([]string{"openapi"}, "an OpenAPI 3 document is needed (openapi: 3.0.x or 3.1.x)")
	}
	r := &resolver{doc: doc}
	byName := map[string][]string{} // name → path of its path item
	for _, section := range []string{"webhooks", "x-webhooks"} {
		v, ok := doc[section]
		if !ok {
			continue
		}
		hooks, ok := v.(map[string]any)
		if !ok {
			return nil, problem([]string{section}, "must be an object")
		}
		for name := range hooks {
			if _, dup := byName[name]; dup {
				return nil, problem([]string{section, name}, "is in webhooks too")
			}
			byName[name] = []string{section, name}
		}
	}
	if len(byName) == 0 {
		return nil, problem([]string{"webhooks"}, "the document defines no webhooks")
	}
	if len(byName) > MaxEventTypes {
		return nil, problem([]string{"webhooks"}, "the document defines %d webhooks, more than %d", len(byName), MaxEventTypes)
	}
	names := slices.Sorted(maps.Keys(byName))
	out := make([]EventType, 0, len(names))
	for _, name := range names {
		et, err := r.eventType(name, byName[name])
		if err != nil {
			return nil, err
		}
		out = append(out, et)
	}
	return out, nil
}

// resolver follows $refs inside one document, counting what it writes.
type resolver struct {
	doc    map[string]any
	budget budget
}

// eventType reads the path item at path.
func (r *resolver) eventType(name string, at []string) (EventType, error) {
	item, path, err := r.object(at)
	if err != nil {
		return EventType{}, err
	}
	op, ok := item["post"]
	if !ok {
		return EventType{}, problem(path, "a webhook needs a post operation")
	}
	operation, opPath, err := r.deref(op, append(path, "post"))
	if err != nil {
		return EventType{}, err
	}
	et := EventType{Path: slices.Clone(at), Name: name}
	if et.Description, err = optString(operation, "description", opPath); err != nil {
		return et, err
	}
	if et.Description == "" {
		if et.Description, err = optString(operation, "summary", opPath); err != nil {
			return et, err
		}
	}
	if d, ok := operation["deprecated"]; ok {
		if et.Deprecated, ok = d.(bool); !ok {
			return et, problem(append(opPath, "deprecated"), "must be a boolean")
		}
	}
	if et.FeatureFlag, err = optString(operation, "x-svix-feature-flag", opPath); err != nil {
		return et, err
	}
	body, ok := operation["requestBody"]
	if !ok {
		return et, nil
	}
	requestBody, bodyPath, err := r.deref(body, append(opPath, "requestBody"))
	if err != nil {
		return et, err
	}
	content, ok := requestBody["content"].(map[string]any)
	if !ok {
		return et, problem(append(bodyPath, "content"), "must be an object")
	}
	mediaPath := append(bodyPath, "content", "application/json")
	raw, ok := content["application/json"]
	if !ok {
		// application/json first; else a JSON media type
		// (application/vnd.x+json), the first in name order.
		for _, k := range slices.Sorted(maps.Keys(content)) {
			if strings.HasSuffix(strings.ToLower(strings.TrimSpace(strings.SplitN(k, ";", 2)[0])), "json") {
				raw, ok, mediaPath = content[k], true, append(bodyPath, "content", k)
				break
			}
		}
	}
	if !ok {
		return et, nil
	}
	media, mediaPath, err := r.deref(raw, mediaPath)
	if err != nil {
		return et, err
	}
	s, ok := media["schema"]
	if !ok {
		return et, nil
	}
	schema, err := r.expand(s, append(mediaPath, "schema"), nil, 0)
	if err != nil {
		return et, err
	}
	obj, ok := schema.(map[string]any)
	if !ok {
		return et, problem(append(mediaPath, "schema"), "must be an object")
	}
	examples, err := r.examples(media, mediaPath)
	if err != nil {
		return et, err
	}
	if len(examples) > 0 {
		own, _ := obj["examples"].([]any)
		obj["examples"] = append(slices.Clone(own), examples...)
	}
	et.Schema = obj
	return et, nil
}

// examples returns a media type's example, then the values of its examples
// in name order (JSON objects have no order once decoded).
func (r *resolver) examples(media map[string]any, path []string) ([]any, error) {
	var out []any
	if e, ok := media["example"]; ok {
		v, err := r.expand(e, append(path, "example"), nil, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	raw, ok := media["examples"]
	if !ok {
		return out, nil
	}
	named, ok := raw.(map[string]any)
	if !ok {
		return nil, problem(append(path, "examples"), "must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(named)) {
		ex, exPath, err := r.deref(named[k], append(path, "examples", k))
		if err != nil {
			return nil, err
		}
		value, ok := ex["value"]
		if !ok {
			// An externalValue is not fetched.
			continue
		}
		v, err := r.expand(value, append(exPath, "value"), nil, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// object returns the object at path from the root, following a $ref.
func (r *resolver) object(path []string) (map[string]any, []string, error) {
	var v any = r.doc
	for _, k := range path {
		v = v.(map[string]any)[k]
	}
	return r.deref(v, path)
}

// deref returns v, an object, or the object its $ref names (following
// chains of references), and where it is.
func (r *resolver) deref(v any, path []string) (map[string]any, []string, error) {
	for hops := 0; ; hops++ {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, nil, problem(path, "must be an object")
		}
		ref, ok := obj["$ref"]
		if !ok {
			return obj, slices.Clone(path), nil
		}
		if hops == MaxDepth {
			return nil, nil, problem(path, "more than %d references in a row", MaxDepth)
		}
		var err error
		if v, path, err = r.lookup(ref, path); err != nil {
			return nil, nil, err
		}
	}
}

// lookup returns the value a $ref names, and its path.
func (r *resolver) lookup(ref any, at []string) (any, []string, error) {
	refPath := append(slices.Clone(at), "$ref")
	s, ok := ref.(string)
	if !ok {
		return nil, nil, problem(refPath, "must be a string")
	}
	if !strings.HasPrefix(s, "#") {
		return nil, nil, problem(refPath, "%q: only references inside the document (#/…) are followed", s)
	}
	var v any = r.doc
	var path []string
	if p := strings.TrimPrefix(s, "#"); p != "" {
		if !strings.HasPrefix(p, "/") {
			return nil, nil, problem(refPath, "%q is not a JSON pointer", s)
		}
		for _, tok := range strings.Split(p[1:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			path = append(path, tok)
			var found bool
			switch c := v.(type) {
			case map[string]any:
				v, found = c[tok]
			case []any:
				if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
					v, found = c[i], true
				}
			}
			if !found {
				return nil, nil, problem(refPath, "%q names nothing in the document", s)
			}
		}
	}
	return v, path, nil
}

// expand returns a copy of the value at path with every $ref written out.
// refs holds the references being written out around it, to refuse a
// schema that contains itself.
func (r *resolver) expand(v any, path []string, refs []string, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, problem(path, "nested more than %d deep", MaxDepth)
	}
	key := ""
	if len(path) > 0 {
		key = path[len(path)-1]
	}
	if err := r.budget.spend(v, key, path); err != nil {
		return nil, err
	}
	switch c := v.(type) {
	case map[string]any:
		if ref, ok := c["$ref"]; ok {
			s, _ := ref.(string)
			if slices.Contains(refs, s) {
				return nil, problem(append(slices.Clone(path), "$ref"), "%q refers to itself: a recursive schema cannot be written out", s)
			}
			target, targetPath, err := r.lookup(ref, path)
			if err != nil {
				return nil, err
			}
			resolved, err := r.expand(target, targetPath, append(refs, s), depth+1)
			if err != nil {
				return nil, err
			}
			if len(c) == 1 {
				return resolved, nil
			}
			// OpenAPI 3.1 keeps keywords beside a $ref (a description):
			// they win over the referenced schema's.
			obj, ok := resolved.(map[string]any)
			if !ok {
				return nil, problem(path, "a $ref with other keywords must name an object")
			}
			for k, e := range c {
				if k == "$ref" {
					continue
				}
				x, err := r.expand(e, append(path, k), refs, depth+1)
				if err != nil {
					return nil, err
				}
				obj[k] = x
			}
			return obj, nil
		}
		out := make(map[string]any, len(c))
		for k, e := range c {
			x, err := r.expand(e, append(path, k), refs, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			x, err := r.expand(e, append(path, strconv.Itoa(i)), refs, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	default:
		return v, nil
	}
}

func optString(obj map[string]any, key string, path []string) (string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", problem(append(slices.Clone(path), key), "must be a string")
	}
	return s, nil
}

// AsError returns err as an *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
