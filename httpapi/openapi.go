package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

//go:generate go test -run TestAPIReferenceUpToDate -update .

// The OpenAPI document at GET /api/v1/openapi.json is built at run time
// from the route table and the documentation rows of openapiOps: what the
// server serves is what the document says, and a route without a row fails
// TestOpenAPIRoutesBothWays. JSON Schemas come from the Go request and
// response types by reflection (schemaReflector): the types are the
// encoders' own, so a field added to an answer is in the document at once.

// op documents one route of the table.
type op struct {
	// id is the operationId: Svix's where Svix has the operation.
	id      string
	summary string
	// ext marks Herald's extensions: operations Svix has not.
	ext bool
	// query is a struct whose fields, tagged `query:"name"`, are the
	// query parameters; nil when there are none.
	query any
	// in is the request body's type; nil when the route reads none.
	in any
	// status is the success status; out its body's type (nil: no body).
	status int
	out    any
	// text marks a success body in text/plain (the Prometheus scrape).
	text bool
	// alt is another success status with the same body (a PUT that
	// creates answers 201, a get-or-create 200); none when 0.
	alt int
	// errs are the route's error statuses beyond those every route of its
	// kind has (see responses).
	errs []int
}

// pageQuery is the query of every list: Svix's limit, iterator and order.
type pageQuery struct {
	Limit    int    `query:"limit" minimum:"1" maximum:"250" doc:"Rows per page (default 50)."`
	Iterator string `query:"iterator" doc:"The iterator or prevIterator of a page; a leading \"-\" pages backwards."`
	Order    string `query:"order" enum:"ascending,descending"`
}

// messageFilterQuery is parseMessageFilter's query.
type messageFilterQuery struct {
	EventTypes []string  `query:"event_types" doc:"Event type names, repeated or comma-separated."`
	Channel    string    `query:"channel"`
	Tag        string    `query:"tag"`
	Before     time.Time `query:"before"`
	After      time.Time `query:"after"`
}

// messageListQuery is the query of the message lists.
type messageListQuery struct {
	pageQuery
	messageFilterQuery
	WithContent bool `query:"with_content" doc:"Include payloads (default true)."`
}

// endpointMessageListQuery adds the delivery status filter.
type endpointMessageListQuery struct {
	messageListQuery
	Status int `query:"status" enum:"0,1,2,3" doc:"Svix's MessageStatus: 0 success, 1 pending, 2 fail, 3 sending."`
}

// attemptListQuery is parseAttemptQuery's query.
type attemptListQuery struct {
	endpointMessageListQuery
	StatusCodeClass int  `query:"status_code_class" enum:"0,100,200,300,400,500"`
	WithMsg         bool `query:"with_msg" doc:"Include each attempt's message."`
}

// attemptByMessageQuery adds the endpoint filter of the list by message.
type attemptByMessageQuery struct {
	attemptListQuery
	EndpointID string `query:"endpoint_id"`
}

// Doc-only types: the answers whose JSON is assembled by hand (encode
// splices payloads in verbatim), described with the fields they really
// have. The reflector drops the "Doc" of their names.
type (
	messageOutDoc struct {
		messageOut
		Payload map[string]any `json:"payload"`
	}
	endpointMessageOutDoc struct {
		messageOutDoc
		deliveryState
	}
	attemptOutDoc struct {
		attemptOut
		Msg *messageOutDoc `json:"msg,omitempty"`
	}
	precheckOut struct {
		Active bool `json:"active"`
	}
	// emptyOut is Svix's EmptyResponse.
	emptyOut struct{}
)

// openapiDoc serves the document; it is built once, on first use, from
// this server's route table (the scrape route is in it only when served).
func (a *API) openapiDoc(w http.ResponseWriter, r *http.Request) error {
	a.openapiOnce.Do(func() {
		a.openapiJSON, a.openapiErr = json.Marshal(a.OpenAPI())
	})
	if a.openapiErr != nil {
		return fmt.Errorf("encode openapi: %w", a.openapiErr)
	}
	writeRaw(w, http.StatusOK, a.openapiJSON)
	return nil
}

// OpenAPI returns the OpenAPI 3.1 document of the routes this API serves.
// A route without a row in openapiOps is still in it, with its path
// parameters and generic answers, and marked x-herald-undocumented.
func (a *API) OpenAPI() map[string]any {
	sr := newSchemaReflector()
	paths := map[string]map[string]any{}
	for _, rt := range a.routes {
		o, documented := openapiOps[rt.Method+" "+rt.Pattern]
		item := paths[rt.Pattern]
		if item == nil {
			item = map[string]any{}
			paths[rt.Pattern] = item
		}
		item[strings.ToLower(rt.Method)] = operation(sr, rt, o, documented)
	}
	return map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"info": map[string]any{
			"title":       "Herald API",
			"version":     a.versionOrDev(),
			"description": "Herald's Svix-compatible webhook API, with Herald's extensions marked x-herald-extension. Built at run time from the route table of this server.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": sr.components,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "The admin token, an API key or an app-portal token."},
			},
		},
	}
}

func (a *API) versionOrDev() string {
	if a.version == "" {
		return "dev"
	}
	return a.version
}

// pathParam matches the {name} parameters of a route pattern.
var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// operation describes one route.
func operation(sr *schemaReflector, rt Route, o op, documented bool) map[string]any {
	out := map[string]any{
		"operationId": o.id,
		"summary":     o.summary,
		"tags":        []string{tagOf(rt.Pattern)},
	}
	if !documented {
		out["operationId"] = strings.ToLower(rt.Method) + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(rt.Pattern)
		out["summary"] = rt.Method + " " + rt.Pattern
		out["x-herald-undocumented"] = true
	}
	if o.ext {
		out["x-herald-extension"] = true
	}
	if rt.Public {
		out["security"] = []any{}
	} else {
		out["security"] = []any{map[string]any{"bearer": []string{}}}
	}
	out["x-herald-access"] = rt.Access.String()
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.Pattern, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"schema": map[string]any{"type": "string"}})
	}
	if o.query != nil {
		params = append(params, queryParams(sr, reflect.TypeOf(o.query))...)
	}
	if rt.Method == http.MethodPost {
		params = append(params, map[string]any{"name": "idempotency-key", "in": "header", "required": false,
			"description": "A retried POST with the same key gets the first answer again.",
			"schema":      map[string]any{"type": "string"}})
	}
	if len(params) > 0 {
		out["parameters"] = params
	}
	if o.in != nil {
		out["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": sr.schema(reflect.TypeOf(o.in), true)}}}
	}
	out["responses"] = responses(sr, rt, o)
	return out
}

// tagOf groups operations by the resource their path names.
func tagOf(pattern string) string {
	parts := strings.Split(strings.TrimPrefix(pattern, "/api/v1/"), "/")
	tag := parts[0]
	for _, p := range parts[1:] {
		if !strings.HasPrefix(p, "{") {
			tag = p
			if p == "attempt" || p == "msg" || p == "endpoint" || p == "api-key" || p == "poller" {
				break
			}
		}
	}
	for _, group := range []string{"auth", "operational-webhook", "stats"} {
		if strings.HasPrefix(pattern, "/api/v1/"+group+"/") {
			return group
		}
	}
	return strings.TrimPrefix(tag, "/")
}

// responses lists the success answer and the errors a route can give:
// 401, 403 and 429 on authenticated routes, 404 where the path names
// something, 400, 413 and 415 where there is a body, 422 (the validation
// shape) where there is input, and Svix's error shape by default (500,
// 503 with Retry-After).
func responses(sr *schemaReflector, rt Route, o op) map[string]any {
	out := map[string]any{}
	status := o.status
	if status == 0 {
		status = http.StatusOK
	}
	success := map[string]any{"description": http.StatusText(status)}
	if o.text {
		success["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
	}
	if o.out != nil {
		success["content"] = map[string]any{"application/json": map[string]any{"schema": sr.schema(reflect.TypeOf(o.out), false)}}
	}
	out[strconv.Itoa(status)] = success
	if o.alt != 0 {
		alt := maps.Clone(success)
		alt["description"] = http.StatusText(o.alt)
		out[strconv.Itoa(o.alt)] = alt
	}
	errorRef := sr.schema(reflect.TypeOf(errorBody{}), false)
	errs := slices.Clone(o.errs)
	if !rt.Public {
		errs = append(errs, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	}
	if strings.Contains(rt.Pattern, "{") {
		errs = append(errs, http.StatusNotFound)
	}
	if o.in != nil {
		errs = append(errs, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if o.in != nil || o.query != nil || strings.Contains(rt.Pattern, "{") {
		out["422"] = map[string]any{"description": "Validation error: each problem with its location.",
			"content": map[string]any{"application/json": map[string]any{"schema": sr.schema(reflect.TypeOf(validationBody{}), false)}}}
	}
	if rt.Method == http.MethodPost {
		errs = append(errs, http.StatusConflict) // an idempotency key in use
	}
	for _, s := range errs {
		key := strconv.Itoa(s)
		if _, ok := out[key]; !ok {
			out[key] = map[string]any{"description": http.StatusText(s),
				"content": map[string]any{"application/json": map[string]any{"schema": errorRef}}}
		}
	}
	out["default"] = map[string]any{"description": "Any other error: 500, or 503 (with Retry-After) while the database is unreachable.",
		"content": map[string]any{"application/json": map[string]any{"schema": errorRef}}}
	return out
}

// queryParams describes the query parameters of a query struct (t), its
// embedded structs' included.
func queryParams(sr *schemaReflector, t reflect.Type) []any {
	var out []any
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, queryParams(sr, f.Type)...)
			continue
		}
		name := f.Tag.Get("query")
		if name == "" {
			continue
		}
		s := sr.schema(f.Type, true)
		if enum := f.Tag.Get("enum"); enum != "" {
			var values []any
			for v := range strings.SplitSeq(enum, ",") {
				if n, err := strconv.Atoi(v); err == nil && s["type"] == "integer" {
					values = append(values, n)
				} else {
					values = append(values, v)
				}
			}
			s["enum"] = values
		}
		for _, k := range []string{"minimum", "maximum"} {
			if v := f.Tag.Get(k); v != "" {
				n, _ := strconv.Atoi(v)
				s[k] = n
			}
		}
		p := map[string]any{"name": name, "in": "query", "required": false, "schema": s}
		if d := f.Tag.Get("doc"); d != "" {
			p["description"] = d
		}
		if f.Type.Kind() == reflect.Slice {
			p["style"], p["explode"] = "form", true
		}
		out = append(out, p)
	}
	return out
}

// schemaReflector turns Go types into JSON Schemas (draft 2020-12, as
// OpenAPI 3.1 has them) the way encoding/json writes and reads them. Named
// struct types become components referred to by $ref. A small reflector
// of our own rather than a library: it has to know Herald's rules (a
// pointer without omitempty may be null; an input has no required fields,
// since a missing one is answered with a 422 naming it, as Svix does;
// fields tagged openapi:"extension" are Herald's), and it adds no
// dependency to the binary.
type schemaReflector struct {
	components map[string]any
}

func newSchemaReflector() *schemaReflector {
	return &schemaReflector{components: map[string]any{}}
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schema returns the schema of t; input says whether t is read (no field
// required) or written.
func (sr *schemaReflector) schema(t reflect.Type, input bool) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{} // any JSON value
	}
	switch t.Kind() {
	case reflect.Pointer:
		return sr.schema(t.Elem(), input)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s := map[string]any{"type": "integer", "minimum": 0}
		if t.Kind() == reflect.Uint16 {
			s["maximum"] = 65535
		}
		return s
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": sr.nullable(t.Elem(), input)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sr.nullable(t.Elem(), input)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" {
			return sr.object(t, input)
		}
		name := componentName(t)
		if input {
			name += "Input"
			if strings.HasSuffix(name, "InInput") {
				name = strings.TrimSuffix(name, "Input")
			}
		}
		if _, ok := sr.components[name]; !ok {
			sr.components[name] = map[string]any{} // breaks cycles
			sr.components[name] = sr.object(t, input)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic("openapi: no schema for " + t.String())
}

// nullable is the schema of a value of t that may be null: a pointer's.
func (sr *schemaReflector) nullable(t reflect.Type, input bool) map[string]any {
	if t.Kind() != reflect.Pointer {
		return sr.schema(t, input)
	}
	s := sr.schema(t, input)
	if typ, ok := s["type"].(string); ok {
		s["type"] = []string{typ, "null"}
		return s
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// object is a struct's schema: its JSON fields as encoding/json sees them
// (embedded structs' fields promoted, the shallower field winning).
func (sr *schemaReflector) object(t reflect.Type, input bool) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range jsonFields(t) {
		var s map[string]any
		switch {
		case input && (f.typ.Kind() == reflect.Pointer || f.typ.Kind() == reflect.Slice || f.typ.Kind() == reflect.Map):
			// A pointer, list or map of an input may be null: it reads
			// as absent.
			s = orNull(sr.schema(f.typ, input))
		case f.omitempty || input:
			s = sr.schema(f.typ, input)
		default:
			s = sr.nullable(f.typ, input)
		}
		if f.extension {
			s = map[string]any{"allOf": []any{s}, "x-herald-extension": true}
		}
		props[f.name] = s
		if !input && !f.omitempty {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}

// orNull lets a schema also accept null.
func orNull(s map[string]any) map[string]any {
	if len(s) == 0 {
		return s // any value, null included
	}
	if typ, ok := s["type"].(string); ok {
		s["type"] = []string{typ, "null"}
		return s
	}
	if _, ok := s["type"].([]string); ok {
		return s
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// jsonField is a field as encoding/json names it.
type jsonField struct {
	name      string
	typ       reflect.Type
	omitempty bool
	extension bool
	depth     int
}

// jsonFields lists t's JSON fields in order, embedded structs' promoted.
func jsonFields(t reflect.Type) []jsonField {
	var all []jsonField
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			all = append(all, jsonField{name: name, typ: f.Type, omitempty: strings.Contains(opts, "omitempty"),
				extension: f.Tag.Get("openapi") == "extension", depth: depth})
		}
	}
	walk(t, 0)
	var out []jsonField
	for _, f := range all {
		i := slices.IndexFunc(out, func(g jsonField) bool { return g.name == f.name })
		switch {
		case i < 0:
			out = append(out, f)
		case f.depth < out[i].depth:
			out[i] = f
		}
	}
	return out
}

// componentName names a struct's component as Svix names its schemas:
// applicationOut is ApplicationOut, listResponse[endpointOut]
// ListResponseEndpointOut, messageOutDoc MessageOut.
func componentName(t reflect.Type) string {
	name := t.Name()
	if base, args, ok := strings.Cut(name, "["); ok {
		arg := strings.TrimSuffix(args, "]")
		arg = arg[strings.LastIndex(arg, ".")+1:]
		name = base + upperFirst(strings.TrimSuffix(arg, "Doc"))
	}
	return upperFirst(strings.TrimSuffix(name, "Doc"))
}

func upperFirst(s string) string {
	r := []rune(s)
	if len(r) == 0 {
		return s
	}
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}
