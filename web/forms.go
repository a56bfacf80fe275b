package web

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Helpers that turn form fields into API bodies and API values back into
// form fields. A field that does not parse becomes a 422 of the form's own
// (invalidForm), shown next to the field like the API's.

// parseRate reads an optional rate limit: nil when empty.
func parseRate(field, s string) (*uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return nil, invalidForm(field, "enter a whole number from 0 to 65535, or nothing for no limit")
	}
	v := uint16(n)
	return &v, nil
}

// formatRate16 writes an optional rate for a form field.
func formatRate16(r *uint16) string {
	if r == nil {
		return ""
	}
	return strconv.Itoa(int(*r))
}

// parseMetadata reads "key=value" lines.
func parseMetadata(field, s string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, invalidForm(field, fmt.Sprintf("line %d: write key=value", i+1))
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// formatMetadata writes metadata as sorted "key=value" lines.
func formatMetadata(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k + "=" + m[k] + "\n")
	}
	return b.String()
}

// headerLine is one "Name: value" line of the headers field; Value is nil
// for "Name:" with nothing after it (remove the header).
type headerLine struct {
	Name  string
	Value *string
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(field, s string) ([]headerLine, error) {
	var out []headerLine
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, invalidForm(field, fmt.Sprintf("line %d: write Name: value", i+1))
		}
		h := headerLine{Name: name}
		if v := strings.TrimSpace(value); v != "" {
			h.Value = &v
		}
		out = append(out, h)
	}
	return out, nil
}

// formatHeaders writes headers as sorted "Name: value" lines.
func formatHeaders(h map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b.WriteString(k + ": " + h[k] + "\n")
	}
	return b.String()
}

// splitWords reads a list typed with commas or spaces.
func splitWords(s string) []string {
	return append([]string{}, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })...)
}

// localInputLayout is the value of a datetime-local input; the pages show
// and read every time in UTC.
const localInputLayout = "2006-01-02T15:04"

// parseLocalTime reads a datetime-local value (UTC) as RFC 3339; "" when
// empty.
func parseLocalTime(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	for _, layout := range []string{localInputLayout, "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339), nil
		}
	}
	return "", invalidForm(field, "enter a date and time like 2025-03-01T12:00 (UTC)")
}

// pager computes the links to the previous and next pages of a list. cur
// is the iterator the page was asked with ("" for the first page; a "-"
// prefix pages backwards).
func pager(base string, q url.Values, cur string, iterator, prevIterator *string, done bool) (prev, next string) {
	backward := strings.HasPrefix(cur, "-")
	link := func(it string) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "iterator" && k != "flash" && k != "fragment" {
				v[k] = vs
			}
		}
		v.Set("iterator", it)
		return base + "?" + v.Encode()
	}
	if cur != "" && !(backward && done) && prevIterator != nil {
		prev = link(*prevIterator)
	}
	if (backward || !done) && iterator != nil {
		next = link(*iterator)
	}
	return prev, next
}

// deref returns *s or "".
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
