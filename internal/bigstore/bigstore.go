// Package bigstore builds, for benchmarks, a store of the size the console
// must stay fast on: an application with 1,000,000 messages over 30 days,
// 3,000,000 deliveries and 3,000,000 attempts, on SQLite or PostgreSQL.
//
// The store's own write path would take hours for that. The fixture opens
// the store with the real Open (so the schema is the migrations' own),
// creates applications, event types and endpoints through the store's verbs
// (endpoint secrets are sealed by the store's keyring), then writes the
// messages, deliveries and attempts with set-based INSERT … SELECT
// statements over a row counter (a recursive CTE on SQLite, generate_series
// on PostgreSQL), one chunk of messages per transaction. IDs are KSUIDs made
// the way herald.NewIDAt makes them and increase with creation time, as the
// stores' paging expects; they are made in Go and handed to each statement
// packed in one parameter, since SQL cannot make a KSUID.
//
// A built fixture is kept between runs: on SQLite as a file in the
// temporary directory, on PostgreSQL as a schema of the test database, each
// named by a hash of the engine's migrations, this builder's source and the
// shape, so a change to any of them builds a new one.
package bigstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/ksuid"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

// EnvEnable names the environment variable that must be "1" for a fixture
// to be built or opened: `go test ./...` never builds one.
const EnvEnable = "HERALD_BIGSTORE"

// Shape is the size of a fixture.
type Shape struct {
	// Messages is how many messages the main application has.
	Messages int
	// Span is the time from the main application's oldest message to its
	// newest, which is about when the fixture was built.
	Span time.Duration
	// Chunk is how many messages (with their deliveries and attempts) one
	// transaction writes.
	Chunk int
	// OtherMessages is how many messages each of the two other
	// applications has; they have no deliveries.
	OtherMessages int
}

// Big is the shape the console's pages are measured on.
var Big = Shape{Messages: 1_000_000, Span: 30 * 24 * time.Hour, Chunk: 20_000, OtherMessages: 5_000}

// The fixed parts of every shape.
const (
	// Endpoints is how many endpoints the main application has.
	Endpoints = 20
	// Delivering is how many of them have a delivery of every message: the
	// oldest three. The others were created after the newest message.
	Delivering = 3
	// otherEndpoints is how many endpoints each other application has.
	otherEndpoints = 2
	// MainUID is the main application's uid; the others are "bigstore-1"
	// and "bigstore-2".
	MainUID = "bigstore-main"
)

// Share is a value and the share of messages that have it, in thousandths.
type Share struct {
	Name       string
	Thousandth int
}

// EventTypes are the messages' event types, most frequent first. Message k
// has the type whose cumulative share covers (k × 7919) mod 1000.
var EventTypes = []Share{
	{"invoice.paid", 350},
	{"invoice.created", 250},
	{"customer.updated", 150},
	{"subscription.renewed", 120},
	{"payment.failed", 80},
	{"user.signup", 40},
	{"account.deleted", 9},
	{"account.locked", 1},
}

// Channels: message k is in channel "project-(k mod 10)" when k mod 10 < 8
// (10 % of messages each, 20 % in none of them), and also in ChannelRare
// when k mod 47 = 3 (2.1 %). Its tags are the same: TagCommon on 10 % of
// the messages, TagRare on 2.1 % (message_tag is filled by the schema's
// trigger).
const (
	ChannelCommon = "project-3"
	ChannelRare   = "vip"
	TagCommon     = ChannelCommon
	TagRare       = ChannelRare
)

// outcome is what became of a share of the deliveries: their status and
// the response status of each attempt (0: no response, a timeout).
type outcome struct {
	upTo   int // the outcome of deliveries whose draw is below upTo (of 100)
	status herald.DeliveryStatus
	codes  []int
}

// outcomes: a delivery of message k to delivering endpoint e draws
// (k × 6007 + e × 3571) mod 100. Every delivery has at most two attempts,
// and there are exactly as many attempts as deliveries.
var outcomes = []outcome{
	{92, herald.DeliverySucceeded, []int{200}},
	{94, herald.DeliverySucceeded, []int{500, 200}},
	{96, herald.DeliveryFailed, []int{503, 0}},
	{98, herald.DeliveryPending, nil},
	{100, herald.DeliveryCanceled, nil},
}

// slots is the most attempts a delivery has: attempt IDs and times are
// made for every slot, used or not, so that SQL finds them by position.
const slots = 2

// Checked at start-up, so that a change to the tables cannot silently
// break the packing.
func init() {
	total := 0
	for _, et := range EventTypes {
		total += et.Thousandth
	}
	if total != 1000 {
		panic("bigstore: event type shares do not add up to 1000")
	}
	for _, o := range outcomes {
		if len(o.codes) > slots {
			panic("bigstore: an outcome has more attempts than slots")
		}
	}
}

// ksuidLen is the length of a KSUID's string form.
const ksuidLen = 27

// idGen makes KSUIDs the way herald.NewIDAt does: one ksuid.Sequence per
// second, counting up from a random seed. Each table has its own, so that
// IDs made for one table never reseed another's run: the IDs of a table
// made in time order increase.
type idGen struct {
	second int64
	seq    *ksuid.Sequence
}

// appendID appends the next KSUID for t to buf.
func (g *idGen) appendID(buf []byte, t time.Time) []byte {
	if g.seq == nil || g.second != t.Unix() {
		var payload [16]byte
		_, _ = rand.Read(payload[:])
		seed, err := ksuid.FromParts(t, payload[:])
		if err != nil {
			panic(err)
		}
		g.second, g.seq = t.Unix(), &ksuid.Sequence{Seed: seed}
	}
	id, err := g.seq.Next()
	if err != nil { // 65,536 IDs in one second: no shape comes close
		panic(err)
	}
	return id.Append(buf)
}

// layout places a shape's messages in time.
type layout struct {
	shape Shape
	start time.Time // the oldest main-application message
}

// burst is how many messages arrive together (within a few milliseconds).
const burst = 4

// offset returns how long after the oldest message message i of the main
// application was created: bursts of four messages 1 ms apart, the bursts
// evenly spread over the span. Every message has its own microsecond.
func (l layout) offset(i int) time.Duration {
	bursts := (l.shape.Messages + burst - 1) / burst
	step := (l.shape.Span / time.Duration(max(bursts-1, 1))).Truncate(time.Microsecond)
	return time.Duration(i/burst)*step + time.Duration(i%burst)*time.Millisecond
}

// msgTime returns when main-application message i was created.
func (l layout) msgTime(i int) time.Time { return l.start.Add(l.offset(i)) }

// otherTime returns when message i of another application was created.
func (l layout) otherTime(i int) time.Time {
	step := l.shape.Span / time.Duration(max(l.shape.OtherMessages, 1))
	return l.start.Add(time.Duration(i)*step + 777*time.Microsecond)
}

// attemptTime returns when attempt slot s of the delivery of a message
// created at t to delivering endpoint e was made: the first within half a
// second, the retry five seconds later.
func attemptTime(t time.Time, e, s int) time.Time {
	return t.Add(time.Duration(150*(e+1))*time.Millisecond + time.Duration(s)*5*time.Second)
}

// chunk is one transaction's rows, as the insert statements read them:
// KSUIDs packed ksuidLen bytes each, times in unix microseconds. Message n
// of the chunk is message base+n of its application; its deliveries are
// 3n…3n+2 (one per delivering endpoint), and delivery j's attempt slots
// are slots·j… .
type chunk struct {
	base, n  int
	msgIDs   []byte
	msgTimes []int64
	dlvIDs   []byte
	atmIDs   []byte
	atmTimes []int64
}

// gens are the ID generators of one build.
type gens struct {
	msg, dlv, atm idGen
}

// mainChunk returns the rows of main-application messages base…base+n-1.
func (g *gens) mainChunk(l layout, base, n int) *chunk {
	c := &chunk{base: base, n: n,
		msgIDs: make([]byte, 0, n*ksuidLen), msgTimes: make([]int64, 0, n),
		dlvIDs: make([]byte, 0, n*Delivering*ksuidLen),
		atmIDs: make([]byte, 0, n*Delivering*slots*ksuidLen), atmTimes: make([]int64, 0, n*Delivering*slots)}
	for i := base; i < base+n; i++ {
		t := l.msgTime(i)
		c.msgIDs = g.msg.appendID(c.msgIDs, t)
		c.msgTimes = append(c.msgTimes, t.UnixMicro())
		for range Delivering {
			c.dlvIDs = g.dlv.appendID(c.dlvIDs, t)
		}
	}
	// Attempt IDs come after: a retry is made seconds after its first
	// attempt, so their times do not increase in this order, and a run of
	// the attempt generator may be reseeded for a second it used before.
	// Attempts page by ID, which only needs them unique and of the right
	// second.
	for i := base; i < base+n; i++ {
		t := l.msgTime(i)
		for e := range Delivering {
			for s := range slots {
				at := attemptTime(t, e, s)
				c.atmIDs = g.atm.appendID(c.atmIDs, at)
				c.atmTimes = append(c.atmTimes, at.UnixMicro())
			}
		}
	}
	return c
}

// otherChunk returns the rows of messages base…base+n-1 of another
// application (messages only).
func otherChunk(g *idGen, l layout, base, n int) *chunk {
	c := &chunk{base: base, n: n, msgIDs: make([]byte, 0, n*ksuidLen), msgTimes: make([]int64, 0, n)}
	for i := base; i < base+n; i++ {
		t := l.otherTime(i)
		c.msgIDs = g.appendID(c.msgIDs, t)
		c.msgTimes = append(c.msgTimes, t.UnixMicro())
	}
	return c
}

// The SQL below is standard enough for both engines: k is a message's
// index in its application, kk a delivery's draw, s an attempt slot.

// eventTypeSQL returns the event type of message k.
func eventTypeSQL(k string) string {
	var q strings.Builder
	q.WriteString("CASE")
	v := "((" + k + ") * 7919 % 1000)"
	sum := 0
	for _, et := range EventTypes[:len(EventTypes)-1] {
		sum += et.Thousandth
		fmt.Fprintf(&q, " WHEN %s < %d THEN '%s'", v, sum, et.Name)
	}
	fmt.Fprintf(&q, " ELSE '%s' END", EventTypes[len(EventTypes)-1].Name)
	return q.String()
}

// drawSQL returns the outcome draw of the delivery of message k to
// delivering endpoint e.
func drawSQL(k, e string) string {
	return "((" + k + ") * 6007 + (" + e + ") * 3571) % 100"
}

// outcomeSQL returns a CASE over draw kk with one value per outcome.
func outcomeSQL(kk string, value func(o outcome) string) string {
	var q strings.Builder
	q.WriteString("CASE")
	for _, o := range outcomes[:len(outcomes)-1] {
		fmt.Fprintf(&q, " WHEN %s < %d THEN %s", kk, o.upTo, value(o))
	}
	fmt.Fprintf(&q, " ELSE %s END", value(outcomes[len(outcomes)-1]))
	return q.String()
}

func statusSQL(kk string) string {
	return outcomeSQL(kk, func(o outcome) string { return "'" + string(o.status) + "'" })
}

func attemptsSQL(kk string) string {
	return outcomeSQL(kk, func(o outcome) string { return strconv.Itoa(len(o.codes)) })
}

// codeSQL returns the response status of attempt slot s (a used one).
func codeSQL(kk, s string) string {
	return outcomeSQL(kk, func(o outcome) string {
		if len(o.codes) == 0 {
			return "0"
		}
		var q strings.Builder
		q.WriteString("CASE " + s)
		for i, c := range o.codes {
			fmt.Fprintf(&q, " WHEN %d THEN %d", i, c)
		}
		q.WriteString(" ELSE 0 END")
		return q.String()
	})
}

// responseSQL returns the attempt's status, body and error from its
// response status code (an expression).
func responseSQL(code string) (status, body, errText string) {
	status = "CASE WHEN " + code + " BETWEEN 200 AND 299 THEN " + strconv.Itoa(int(herald.AttemptSucceeded)) +
		" ELSE " + strconv.Itoa(int(herald.AttemptFailed)) + " END"
	body = "CASE " + code + ` WHEN 200 THEN '{"ok":true}' WHEN 500 THEN 'internal server error' WHEN 503 THEN 'service unavailable' END`
	errText = "CASE " + code + " WHEN 0 THEN 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)' END"
	return status, body, errText
}

// durationSQL returns an attempt's duration in microseconds.
func durationSQL(k, code string) string {
	return "CASE " + code + " WHEN 0 THEN 15000000 ELSE 20000 + (" + k + ") * 131 % 480000 END"
}

// fixtureKeyring is the keyring of every fixture, the same in every run so
// that a kept fixture's sealed secrets open. It protects test data only.
func fixtureKeyring() *keyring.Keyring {
	key := sha256.Sum256([]byte("herald bigstore fixture key: test data only"))
	ring, err := keyring.New(key[:])
	if err != nil {
		panic(err)
	}
	return ring
}

// enabled skips tb unless fixtures were asked for.
func enabled(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("bigstore: no 1,000,000-message fixture in -short mode")
	}
	if os.Getenv(EnvEnable) != "1" {
		tb.Skip("bigstore: set " + EnvEnable + "=1 to build or open the 1,000,000-message fixture")
	}
}

// unversioned is the key of a fixture whose builder's source cannot be
// read (a test binary built with -trimpath, or moved): such a fixture is
// built afresh in every run, since nothing tells whether a kept one is
// current.
const unversioned = "unversioned"

// keyOf returns fixtureKey, or unversioned and false when the builder's
// source cannot be read.
func keyOf(tb testing.TB, schema string, shape Shape) (key string, versioned bool) {
	tb.Helper()
	key, err := fixtureKey(schema, shape)
	if err != nil {
		tb.Logf("%v: the fixture is built afresh", err)
		return unversioned, false
	}
	return key, true
}

// fixtureKey returns a hash of schema (a description of the schema this
// binary's migrations make, read from a freshly migrated store: a
// migration edited in place changes it too), this package's source and
// the shape: a fixture built from other ones is not this one.
func fixtureKey(schema string, shape Shape) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("bigstore: cannot find its own source")
	}
	own, err := filepath.Glob(filepath.Join(filepath.Dir(self), "*.go"))
	if err != nil || len(own) == 0 {
		return "", fmt.Errorf("bigstore: its source is not beside %s", self)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%+v\n%s\n", shape, schema)
	for _, f := range own {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("bigstore: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Fixture is a built store, open.
type Fixture struct {
	// Engine is "sqlite" or "postgres".
	Engine string
	Shape  Shape
	Store  herald.Store
	// App is the main application; Endpoints its endpoints in ID order,
	// the first Delivering of which have a delivery of every message.
	App       *herald.Application
	Endpoints []*herald.Endpoint
	// Built is how long this run spent building the fixture; zero when a
	// kept one was opened.
	Built time.Duration
	// Where names the fixture: its file or schema.
	Where string

	first  time.Time
	layout layout
	lookup func(tb testing.TB, at time.Time) string
}

// Time returns when message i of the main application (0 the oldest) was
// created.
func (f *Fixture) Time(i int) time.Time {
	return f.first.Add(f.layout.offset(i))
}

// MessageID returns the ID of message i of the main application (0 the
// oldest, Shape.Messages-1 the newest), found by its creation time.
func (f *Fixture) MessageID(tb testing.TB, i int) string {
	tb.Helper()
	return f.lookup(tb, f.Time(i))
}

// setup is what a build creates through the store's verbs.
type setup struct {
	start     time.Time
	mainApp   *herald.Application
	delivered []*herald.Endpoint // the main application's delivering endpoints
	others    []*herald.Application
}

// newSetup returns the applications, event types and endpoints of a
// fixture whose oldest message is at start, to be created in the store.
func newSetup(shape Shape, start time.Time) (*setup, []*herald.EventType, []*herald.Endpoint) {
	born := start.Add(-48 * time.Hour)
	end := start.Add(shape.Span)
	app := func(uid, name string) *herald.Application {
		return &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, born), UID: uid, Name: name,
			CreatedAt: born, UpdatedAt: born}
	}
	st := &setup{start: start, mainApp: app(MainUID, "Big store")}
	var types []*herald.EventType
	for _, et := range EventTypes {
		types = append(types, &herald.EventType{Name: et.Name, Description: "Sent when " + et.Name + ".",
			CreatedAt: born, UpdatedAt: born})
	}
	endpoint := func(appID string, n int, created time.Time) *herald.Endpoint {
		key := sha256.Sum256([]byte(fmt.Sprintf("bigstore %s %d", appID, n)))
		return &herald.Endpoint{
			ID: herald.NewIDAt(herald.PrefixEndpoint, created), AppID: appID, UID: fmt.Sprintf("ep-%02d", n),
			URL:         fmt.Sprintf("https://receiver-%02d.example.invalid/webhooks", n),
			Description: fmt.Sprintf("Receiver %d", n), Version: 1,
			Secrets:   []herald.SigningSecret{{Key: key[:24]}},
			CreatedAt: created, UpdatedAt: created,
		}
	}
	var eps []*herald.Endpoint
	for n := range Endpoints {
		created := end.Add(time.Hour + time.Duration(n)*time.Minute) // after the newest message
		if n < Delivering {
			created = start.Add(-24*time.Hour + time.Duration(n)*time.Minute)
		}
		ep := endpoint(st.mainApp.ID, n, created)
		if n >= Delivering && n%4 == 0 {
			ep.FilterTypes = []string{EventTypes[n%len(EventTypes)].Name}
		}
		if n < Delivering {
			st.delivered = append(st.delivered, ep)
		}
		eps = append(eps, ep)
	}
	for a := 1; a <= 2; a++ {
		other := app(fmt.Sprintf("bigstore-%d", a), fmt.Sprintf("Small store %d", a))
		st.others = append(st.others, other)
		for n := range otherEndpoints {
			eps = append(eps, endpoint(other.ID, n, born))
		}
	}
	return st, types, eps
}

// buildStart returns the oldest message's time for a build starting now:
// the newest message is about now.
func buildStart(shape Shape) time.Time {
	return time.Now().UTC().Truncate(time.Second).Add(-shape.Span)
}

// progress logs how a build goes, with the time since it began.
type progress struct {
	tb    testing.TB
	began time.Time
}

func (p progress) logf(format string, args ...any) {
	p.tb.Helper()
	p.tb.Logf("bigstore: %6.1fs "+format, append([]any{time.Since(p.began).Seconds()}, args...)...)
}

// ReportLatencies reports the median, the 99th percentile (the console's
// target) and the maximum of one request's times as p50-ms, p99-ms and
// max-ms; times is sorted in place. With fewer than 100 times, p99 is the
// maximum.
func ReportLatencies(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	at := func(q float64) float64 {
		i := int(float64(len(times))*q+0.999999) - 1
		return float64(times[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(at(1), "max-ms")
}
