package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/ksuid"

	"github.com/herald-webhooks/herald"
)

// readBody reads the whole request body, enforcing the content type (JSON
// or none), the size limit and UTF-8. An empty body reads as "{}" when
// allowEmpty is set.
func readBody(r *http.Request, allowEmpty bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &unsupportedMediaType{}
		}
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyReadError(err)
		}
		body = b
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return []byte("{}"), nil
		}
		return nil, herald.Errorf(herald.EBADREQUEST, "Request body is empty.")
	}
	if !utf8.Valid(body) {
		return nil, herald.Errorf(herald.EBADREQUEST, "Request body is not valid UTF-8.")
	}
	return body, nil
}

// unsupportedMediaType is answered with 415; it has no domain code because
// only the HTTP layer knows about content types.
type unsupportedMediaType struct{}

func (*unsupportedMediaType) Error() string { return "unsupported media type" }

// decodeJSON reads the body into v. Keys match field names exactly (see
// exactKeys); unknown fields are ignored; a field of the wrong type is a
// 422 naming it, a syntax error a 400. It also returns the top-level fields
// present, so PATCH handlers can tell absent from null.
func decodeJSON(r *http.Request, v any, allowEmpty bool) (fields map[string]json.RawMessage, err error) {
	body, err := readBody(r, allowEmpty)
	if err != nil {
		return nil, err
	}
	body = exactKeys(body, v)
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, jsonError(err)
	}
	if fields == nil { // the body is JSON null
		return nil, invalid("value is not a valid JSON object", "body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, jsonError(err)
	}
	return fields, nil
}

// decodeObject reads the body, a JSON object, into v like decodeJSON but
// with one pass of encoding/json instead of two, for handlers that need
// not tell an absent field from null. Its errors are decodeJSON's.
func decodeObject(r *http.Request, v any, allowEmpty bool) error {
	body, err := readBody(r, allowEmpty)
	if err != nil {
		return err
	}
	body = exactKeys(body, v)
	err = json.Unmarshal(body, v)
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return jsonError(err)
	}
	// The body is valid JSON. Whatever Unmarshal made of a value other than
	// an object (null into a struct is no error), decodeJSON's fields map
	// refuses it with this error.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return invalid("value is not a valid JSON object", "body")
	}
	if err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError maps an encoding/json error to a 422 (wrong type) or 400.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return invalid("value is not a valid JSON object", "body")
		}
		loc := append([]string{"body"}, strings.Split(typeErr.Field, ".")...)
		return invalid("value is not a valid "+jsonTypeName(typeErr), loc...)
	}
	var vErr *validationError
	if errors.As(err, &vErr) {
		return vErr
	}
	return herald.Errorf(herald.EBADREQUEST, "Invalid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonTypeName(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer in range"
	case "float32", "float64":
		return "number"
	case "slice", "array":
		return "list"
	case "map", "struct":
		return "object"
	}
	return e.Type.String()
}

// isNull reports whether a present field is JSON null.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// present reports whether the field was in the body (null included).
func present(fields map[string]json.RawMessage, name string) bool {
	_, ok := fields[name]
	return ok
}

// List defaults and bounds.
const (
	defaultLimit = 50
	maxLimit     = 250
)

// page is a parsed ?limit=&iterator=&order= query.
type page struct {
	limit    int
	iterator string // without the "-" of a backwards iterator
	backward bool
	order    herald.Order
}

// cursor is what a list's iterators are: the keys of its rows. An iterator
// that cannot be one names no position in the list, so it is refused
// rather than answered with an empty page that reads as the list's end.
type cursor struct {
	what  string // e.g. "application IDs (app_…)", for the error message
	valid func(string) bool
}

// idCursor is the cursor of a list keyed by IDs with prefix: the prefix
// and a KSUID.
func idCursor(what, prefix string) cursor {
	return cursor{what: what + " IDs (" + prefix + "…)", valid: func(s string) bool {
		k, ok := strings.CutPrefix(s, prefix)
		if !ok {
			return false
		}
		_, err := ksuid.Parse(k)
		return err == nil
	}}
}

// The cursors of the lists.
var (
	appCursor      = idCursor("application", herald.PrefixApplication)
	endpointCursor = idCursor("endpoint", herald.PrefixEndpoint)
	messageCursor  = idCursor("message", herald.PrefixMessage)
	attemptCursor  = idCursor("attempt", herald.PrefixAttempt)
	tokenCursor    = idCursor("API key", herald.PrefixToken)
	auditCursor    = idCursor("audit record", herald.PrefixAudit)
	taskCursor     = idCursor("background task", herald.PrefixTask)
	// Event types are listed by name.
	eventTypeCursor = cursor{what: "event type names", valid: func(s string) bool {
		return len(s) <= maxNameLen && idPattern.MatchString(s)
	}}
)

// parsePage reads the list parameters; def is the default order and c
// says what the list's iterators are.
func parsePage(q url.Values, def herald.Order, c cursor) (page, *validation) {
	var v validation
	p := page{limit: defaultLimit, order: def}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			v.add("limit must be an integer between 1 and 250", "query", "limit")
		} else {
			p.limit = n
		}
	}
	switch q.Get("order") {
	case "":
	case "ascending":
		p.order = herald.Ascending
	case "descending":
		p.order = herald.Descending
	default:
		v.add("order must be ascending or descending", "query", "order")
	}
	it := q.Get("iterator")
	if strings.HasPrefix(it, "-") {
		p.backward = true
		it = it[1:]
	}
	if (it != "" || p.backward) && !c.valid(it) {
		v.add("value is not a valid iterator: this list's iterators are "+c.what+
			", with a leading \"-\" for the page before", "query", "iterator")
	}
	p.iterator = it
	return p, &v
}

// options returns the store options for the page: one more row than the
// limit, to learn whether there is more, and the opposite order when paging
// backwards.
func (p page) options() herald.ListOptions {
	order := p.order
	if p.backward {
		order = 1 - order
	}
	return herald.ListOptions{Limit: p.limit + 1, Cursor: p.iterator, Order: order}
}

// listResponse is Svix's ListResponse* shape.
type listResponse[T any] struct {
	Data         []T     `json:"data"`
	Iterator     *string `json:"iterator"`
	PrevIterator *string `json:"prevIterator"`
	Done         bool    `json:"done"`
}

// paginate trims the rows fetched with p.options() to one page in p.order
// and computes the iterators; key gives a row's cursor value.
func paginate[R any, T any](p page, rows []R, key func(R) string, out func(R) T) listResponse[T] {
	more := len(rows) > p.limit
	if more {
		rows = rows[:p.limit]
	}
	if p.backward {
		slices.Reverse(rows)
	}
	resp := listResponse[T]{Data: make([]T, 0, len(rows)), Done: !more}
	for _, row := range rows {
		resp.Data = append(resp.Data, out(row))
	}
	if len(rows) > 0 {
		last, prev := key(rows[len(rows)-1]), "-"+key(rows[0])
		resp.Iterator, resp.PrevIterator = &last, &prev
	} else if p.iterator != "" {
		// An empty page keeps the caller's position so it can poll again.
		it := p.iterator
		if p.backward {
			it = "-" + it
		}
		resp.Iterator = &it
	}
	return resp
}

// parseBool reads an optional boolean query parameter.
func parseBool(q url.Values, name string, def bool, v *validation) bool {
	s := q.Get(name)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		v.add("value is not a valid boolean", "query", name)
		return def
	}
	return b
}

// parseTime reads an optional RFC 3339 query parameter.
func parseTime(q url.Values, name string, v *validation) time.Time {
	s := q.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v.add("value is not a valid RFC 3339 date-time", "query", name)
	}
	return t
}

// timeFormat is how times are written: RFC 3339 in UTC with microseconds.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string {
	return t.UTC().Format(timeFormat)
}

// decodeValid reads the JSON body into in, then lets check add the body's
// problems to v (which may already hold the query's). It returns the
// top-level fields present, and a 422 when v holds any problem.
func decodeValid(r *http.Request, v *validation, in any, allowEmpty bool, check func(fields map[string]json.RawMessage)) (map[string]json.RawMessage, error) {
	fields, err := decodeJSON(r, in, allowEmpty)
	if err != nil {
		return nil, err
	}
	check(fields)
	return fields, v.err()
}

// checkPathRef validates a path parameter that a PUT turns into the new
// resource's uid or name.
func checkPathRef(ref, param string) error {
	var v validation
	v.checkName(ref, "path", param)
	return v.err()
}
