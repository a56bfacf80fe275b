package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/signature"
	"github.com/herald-webhooks/herald/sqlite"
)

// Command holds the flags of `herald bench`; cmd/herald embeds it in its
// command and calls Run.
type Command struct {
	URL   string `name:"url" env:"HERALD_URL" help:"Benchmark a running Herald at this base URL instead of an in-process one. It must allow private targets: the receivers listen on 127.0.0.1. Several nodes on one PostgreSQL: comma-separated URLs; messages are posted to them in turn."`
	Token string `name:"token" env:"HERALD_TOKEN" help:"API token of the server at --url."`

	Messages     int           `name:"messages" env:"HERALD_BENCH_MESSAGES" default:"20000" help:"Messages to post (ignored with --duration)."`
	Duration     time.Duration `name:"duration" env:"HERALD_BENCH_DURATION" help:"Post messages for this long instead of a fixed number."`
	Endpoints    int           `name:"endpoints" env:"HERALD_BENCH_ENDPOINTS" default:"1" help:"Endpoints (loopback receivers) of the benchmark application."`
	Fanout       int           `name:"fanout" env:"HERALD_BENCH_FANOUT" help:"Endpoints each message goes to. Default: all of them."`
	PayloadSize  int           `name:"payload-size" env:"HERALD_BENCH_PAYLOAD_SIZE" default:"512" help:"Size of each message payload, in bytes."`
	Concurrency  int           `name:"concurrency" env:"HERALD_BENCH_CONCURRENCY" default:"64" help:"HTTP clients posting messages at once."`
	Rate         float64       `name:"rate" env:"HERALD_BENCH_RATE" help:"Post at this steady rate (messages per second) instead of as fast as the clients can: an open-loop load, whose ingest latency counts from when each message was due, so a server that falls behind shows it. 0: as fast as possible."`
	FailRatio    float64       `name:"fail-ratio" env:"HERALD_BENCH_FAIL_RATIO" help:"Fraction of endpoints that answer 500."`
	Destination  string        `name:"destination" env:"HERALD_BENCH_DESTINATION" default:"http" help:"Where the endpoints deliver: http (loopback receivers) or a broker (nats, redis …) on --broker-addr, each endpoint to a stream of its own that the benchmark consumes."`
	BrokerAddr   string        `name:"broker-addr" env:"HERALD_BENCH_BROKER_ADDR" help:"host:port of the --destination broker; default its usual port on 127.0.0.1."`
	HangRatio    float64       `name:"hang-ratio" env:"HERALD_BENCH_HANG_RATIO" help:"Fraction of endpoints that never answer (until the request timeout)."`
	VerifyRatio  float64       `name:"verify-ratio" env:"HERALD_BENCH_VERIFY_RATIO" default:"0.01" help:"Fraction of deliveries whose signature the receivers verify."`
	Timeout      time.Duration `name:"timeout" env:"HERALD_BENCH_TIMEOUT" default:"5m" help:"Give up (and exit non-zero) when the deliveries have not all arrived by then."`
	Baseline     time.Duration `name:"baseline" env:"HERALD_BENCH_BASELINE" default:"3s" help:"How long to measure the plain Go loopback HTTP ceiling first; 0 skips it."`
	JSON         bool          `name:"json" help:"Print the report as JSON."`
	CPUProfile   string        `name:"cpuprofile" help:"Write a CPU profile of the load phase (not the baseline) to this file."`
	Trace        string        `name:"trace" help:"Write a runtime execution trace of the load phase to this file (read it with go tool trace)."`
	BlockProfile string        `name:"blockprofile" help:"Write a profile of where goroutines blocked (channels, locks, the database connection) during the load phase to this file."`
	MutexProfile string        `name:"mutexprofile" help:"Write a profile of mutex contention during the load phase to this file."`
	MemProfile   string        `name:"memprofile" help:"Write a profile of the allocations made during the load phase (sampled every 512 KiB; not the baseline's nor the setup's) to this file."`

	// In-process server only.
	Backlog             int           `name:"backlog" env:"HERALD_BENCH_BACKLOG" help:"Pending deliveries stored before the run, directly through the store in large batches (in-process only)."`
	BacklogDelay        time.Duration `name:"backlog-delay" env:"HERALD_BENCH_BACKLOG_DELAY" default:"24h" help:"How far in the future the backlog is due: by default it only sits in the queue (like retries of failing endpoints); 0 makes it due at once, so the dispatcher drains it during the run."`
	DB                  string        `name:"db" env:"HERALD_BENCH_DB" help:"Run the in-process server on this PostgreSQL database (postgres:// URL), in a fresh schema dropped afterwards. Default: a temporary SQLite database."`
	Dir                 string        `name:"dir" env:"HERALD_BENCH_DIR" help:"Directory for the temporary database (removed afterwards). Default: the system temporary directory."`
	SQLiteSynchronous   string        `name:"sqlite-synchronous" env:"HERALD_SQLITE_SYNCHRONOUS" default:"FULL" enum:"FULL,NORMAL" help:"SQLite durability of the in-process server."`
	Workers             int           `name:"workers" env:"HERALD_WORKERS" default:"256" help:"Most deliveries in flight at once."`
	EndpointConcurrency int           `name:"endpoint-concurrency" env:"HERALD_ENDPOINT_CONCURRENCY" default:"8" help:"Most deliveries in flight to one endpoint."`
	RequestTimeout      time.Duration `name:"request-timeout" env:"HERALD_REQUEST_TIMEOUT" default:"15s" help:"Timeout of one delivery attempt; hanging endpoints hold a worker this long."`
	AppWorkerShare      float64       `name:"app-worker-share" env:"HERALD_APP_WORKER_SHARE" default:"0.5" help:"Share of --workers one application's endpoints may hold at once (serve's flag); 1 turns it off."`

	// HangingEndpoints is the noisy-neighbour scenario (see hang.go).
	HangingEndpoints int `name:"hanging-endpoints" env:"HERALD_BENCH_HANGING_ENDPOINTS" help:"Before the run, give a second application this many endpoints that accept connections and never answer, and post it enough messages to want more workers than there are; the report shows how the benchmark application fares beside it."`

	// Soak mode (see soak.go).
	SampleEvery time.Duration `name:"sample-every" env:"HERALD_BENCH_SAMPLE_EVERY" help:"Soak mode: while a --duration run posts, read the server's RSS, heap, goroutines, open files, WAL and database size, queue depth and in-flight deliveries from its /metrics this often, print them over time and say which still grow after a warm-up third. 0: off."`
	SamplesCSV  string        `name:"samples-csv" help:"Soak mode: also write the samples to this CSV file."`
}

// Validate checks the flags that kong cannot.
func (c *Command) Validate() error {
	switch {
	case c.Duration < 0:
		return errors.New("--duration must not be negative")
	case c.Duration == 0 && c.Messages < 1:
		return errors.New("--messages must be at least 1")
	case c.Endpoints < 1:
		return errors.New("--endpoints must be at least 1")
	case c.Fanout < 0 || c.Fanout > c.Endpoints:
		return errors.New("--fanout must be between 1 and --endpoints")
	case c.PayloadSize < minPayloadSize || c.PayloadSize > 512<<10:
		return fmt.Errorf("--payload-size must be between %d and %d bytes", minPayloadSize, 512<<10)
	case c.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case c.Rate < 0 || c.Rate > 0 && c.Rate < minRate || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return fmt.Errorf("--rate must be at least %g messages per second, or 0", minRate)
	case !isFraction(c.FailRatio) || !isFraction(c.HangRatio) || !isFraction(c.VerifyRatio):
		return errors.New("--fail-ratio, --hang-ratio and --verify-ratio must be between 0 and 1")
	case c.Timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.Baseline < 0:
		return errors.New("--baseline must not be negative")
	case c.Backlog < 0 || c.BacklogDelay < 0:
		return errors.New("--backlog and --backlog-delay must not be negative")
	case c.Workers < 1 || c.EndpointConcurrency < 1:
		return errors.New("--workers and --endpoint-concurrency must be at least 1")
	case c.RequestTimeout < time.Second:
		return errors.New("--request-timeout must be at least 1s")
	case c.AppWorkerShare <= 0 || c.AppWorkerShare > 1:
		return errors.New("--app-worker-share must be above 0 and at most 1")
	case c.HangingEndpoints < 0 || c.HangingEndpoints > maxHangingEndpoints:
		return fmt.Errorf("--hanging-endpoints must be between 0 and %d", maxHangingEndpoints)
	}
	if err := c.validateSoak(); err != nil {
		return err
	}
	if err := c.validateDestination(); err != nil {
		return err
	}
	if c.URL != "" && c.Token == "" {
		return errors.New("--url needs --token")
	}
	if c.URL != "" && c.Backlog > 0 {
		return errors.New("--backlog needs the in-process server: it writes through the store")
	}
	if c.Fanout == 0 {
		c.Fanout = c.Endpoints
	}
	failing, hanging := c.unhealthy()
	if failing+hanging >= c.Endpoints {
		return errors.New("--fail-ratio and --hang-ratio leave no healthy endpoint")
	}
	if n, _ := c.scheduled(); c.Rate > 0 && float64(n)/c.Rate >= c.Timeout.Seconds() {
		return fmt.Errorf("--rate %g posts %d messages in %.0fs, not within --timeout %v: lower --messages or set --duration", c.Rate, n, float64(n)/c.Rate, c.Timeout)
	}
	return nil
}

func isFraction(f float64) bool { return f >= 0 && f <= 1 }

// minRate is the lowest --rate: one message every 100 s.
const minRate = 0.01

// scheduled returns how many messages the run posts when that is fixed in
// advance: --messages, or with --rate and --duration the messages due
// within the duration (message j is due at j/rate). Without --rate, a
// --duration run posts until the time is up.
func (c *Command) scheduled() (n int64, ok bool) {
	switch {
	case c.Duration == 0:
		return int64(c.Messages), true
	case c.Rate > 0:
		return int64(math.Ceil(c.Rate * c.Duration.Seconds())), true
	}
	return 0, false
}

// unhealthy returns how many endpoints fail and how many hang.
func (c *Command) unhealthy() (failing, hanging int) {
	n := float64(c.Endpoints)
	return int(math.Round(n * c.FailRatio)), int(math.Round(n * c.HangRatio))
}

// Env is what a run gets from the binary: where to write, a context that
// ends the run, and how to start an in-process node.
type Env struct {
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
	// Terminal says Stdout is a terminal: progress lines are drawn there
	// only then.
	Terminal bool
	// StartNode starts the in-process Herald (without --url), wired as
	// `herald serve` would be.
	StartNode func(context.Context, NodeConfig) (*Node, error)
}

// Store is what the in-process node needs of either engine.
type Store interface {
	herald.Store
	SchemaVersion(ctx context.Context) (int, error)
	CheckSchema(ctx context.Context) error
}

// NodeConfig is what bench sets of the in-process node; the rest is
// serve's defaults.
type NodeConfig struct {
	Store          Store
	Logger         *slog.Logger
	Sender         dispatch.SenderConfig // UserAgent is left to StartNode
	Dispatch       dispatch.Config
	AdminTokenHash [32]byte
}

// Node is a started in-process node: its API (with /metrics) and how to
// stop it once no request is in flight.
type Node struct {
	Handler http.Handler
	Stop    func()
}

// Run measures the loopback ceiling, starts (or connects to) Herald and
// the receivers, posts the messages, waits for every delivery to a healthy
// endpoint and prints the report.
func (c *Command) Run(env Env) error {
	ctx := env.Ctx
	if c.MemProfile != "" {
		// Sample no allocations from here until the load phase starts
		// (not the baseline's, not the setup's; those made before this
		// command ran stay in the profile, and Go records one more on each
		// processor when the rate changes); startWaitProfiles turns it on.
		runtime.MemProfileRate = 0
	}
	payload := benchPayload(c.PayloadSize)
	progress := io.Discard
	if env.Terminal {
		progress = env.Stdout
	}

	var base *baselineReport
	if c.Baseline > 0 {
		fmt.Fprintf(progress, "measuring the loopback HTTP ceiling for %v…", c.Baseline)
		b, err := measureBaseline(ctx, payload, c.Concurrency, c.Baseline)
		if err != nil {
			return err
		}
		base = &b
		fmt.Fprint(progress, "\r\033[K")
	}

	// Teardown runs in reverse: release the hanging receivers' requests,
	// stop Herald (its sends end, its idle connections close), then stop
	// the receivers, which then have no connection left to wait for.
	plan := newRoutePlan(c)
	stop := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stop) }) }
	recv, err := startReceivers(plan, c.VerifyRatio, time.Now(), stop)
	if err != nil {
		return err
	}
	defer recv.close(release)
	closeSink, err := c.startSink(ctx, recv.servers)
	if err != nil {
		return err
	}
	defer closeSink()

	target := newServerTarget(c.URL, c.Token)
	var local *localHerald
	if c.URL == "" {
		local, err = c.startHerald(ctx, env.StartNode, env.Stderr)
		if err != nil {
			return err
		}
		defer local.close()
		target = newServerTarget(local.url, local.token)
	}
	defer release()

	client := newBenchClient(c.Concurrency)
	defer client.CloseIdleConnections()
	appID, err := setupApp(ctx, client, target, "herald-bench", plan, recv.servers)
	if err != nil {
		return err
	}
	if c.Backlog > 0 {
		fmt.Fprintf(progress, "storing a backlog of %d deliveries…", c.Backlog)
		closeSink, err := c.fillBacklog(ctx, client, target, local.store, payload)
		if err != nil {
			return err
		}
		defer closeSink()
		fmt.Fprint(progress, "\r\033[K")
	}
	var hanging *hangingApp
	if c.HangingEndpoints > 0 {
		fmt.Fprintf(progress, "starting an application with %d hanging endpoints…", c.HangingEndpoints)
		hanging, err = c.startHangingApp(ctx, client, target, stop)
		if err != nil {
			return err
		}
		defer hanging.close(release)
		fmt.Fprint(progress, "\r\033[K")
	}

	soak, err := c.newSoakSampler(target)
	if err != nil {
		return err
	}
	defer soak.close()

	// The CPU profile and the execution trace record the load phase; they
	// stop before the report (below) or, on an early return, here.
	for _, r := range []struct {
		path, what string
		start      func(io.Writer) error
		stop       func()
	}{
		{c.CPUProfile, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{c.Trace, "trace", trace.Start, trace.Stop},
	} {
		if r.path == "" {
			continue
		}
		f, err := os.Create(r.path)
		if err != nil {
			return fmt.Errorf("%s: %w", r.what, err)
		}
		defer f.Close()
		if err := r.start(f); err != nil {
			return fmt.Errorf("%s: %w", r.what, err)
		}
		defer r.stop()
	}
	stopProfiles, err := c.startWaitProfiles()
	if err != nil {
		return err
	}
	cpuBefore := cpuSeconds()
	load := &loadRun{
		cmd: c, plan: plan, recv: recv, client: client, target: target,
		appID: appID, bodies: messageBodies(plan, payload), progress: progress,
	}
	histBefore, histErr := scrapeServerHistograms(ctx, client, target)
	var soakSamples chan []soakSample
	soakCtx, stopSoak := context.WithCancel(ctx)
	defer stopSoak()
	if soak != nil {
		soakSamples = make(chan []soakSample, 1)
		start := time.Now()
		go func() { soakSamples <- soak.run(soakCtx, start) }()
	}
	rep := load.run(ctx)
	var soakErr error // a CSV file that could not be written: the report still prints
	if soak != nil {
		if rep.TimedOut { // it may have ended before its duration
			stopSoak()
		}
		rep.Soak, soakErr = soak.report(<-soakSamples)
	}
	if histErr == nil {
		var histAfter serverHistograms
		if histAfter, histErr = scrapeServerHistograms(ctx, client, target); histErr == nil {
			var lagErr, ingestErr error
			if rep.DispatchLag, lagErr = dispatchLag(histBefore.dispatchLag, histAfter.dispatchLag); lagErr != nil {
				rep.DispatchLagError = lagErr.Error()
			}
			if rep.ServerIngest, ingestErr = serverIngest(histBefore.ingest, histAfter.ingest); ingestErr != nil {
				rep.ServerIngestError = ingestErr.Error()
			}
		}
	}
	if histErr != nil { // Herald's /metrics could not be read: neither figure
		rep.DispatchLagError = histErr.Error()
		rep.ServerIngestError = histErr.Error()
	}
	pprof.StopCPUProfile()
	trace.Stop()
	if err := stopProfiles(); err != nil {
		return err
	}
	if hanging != nil {
		rep.HangingApp = hanging.report()
	}
	rep.CPUSeconds = cpuSeconds() - cpuBefore
	rep.PeakRSSMiB = peakRSSMiB()
	rep.Machine = describeMachine()
	rep.Config = c.config()
	rep.Baseline = base
	if base != nil && base.Rate > 0 {
		rep.DeliveryVsBaseline = rep.DeliveryRate / base.Rate
	}
	if err := rep.print(env.Stdout, c.JSON); err != nil {
		return err
	}
	return errors.Join(soakErr, rep.verdict())
}

// minPayloadSize fits the smallest JSON object benchPayload writes.
const minPayloadSize = 16

// benchPayload returns a JSON object of exactly size bytes.
func benchPayload(size int) []byte {
	const head, tail = `{"bench":true,"pad":"`, `"}`
	b := make([]byte, 0, size)
	if size < len(head)+len(tail) {
		b = append(b, `{"p":"`...)
		b = append(b, bytes.Repeat([]byte("x"), size-len(`{"p":""}`))...)
		return append(b, `"}`...)
	}
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte("x"), size-len(head)-len(tail))...)
	return append(b, tail...)
}

// role is how a receiver answers.
type role int

const (
	roleHealthy role = iota // 204 at once
	roleFailing             // 500 at once
	roleHanging             // no answer until the sender gives up
)

func (r role) String() string {
	return [...]string{"healthy", "failing", "hanging"}[r]
}

// routePlan decides which endpoints each message goes to. With fanout equal
// to the endpoint count every message has one event type and no endpoint
// filters. Otherwise there are as many event types as endpoints: a message
// of type k goes to endpoints k … k+fanout-1 (mod endpoints), which each
// list type k in their filterTypes.
type routePlan struct {
	roles   []role
	types   []string   // event type k
	filters [][]string // filterTypes of endpoint i; nil is every type
	// healthy[k] is how many healthy endpoints a message of type k reaches.
	healthy []int
	fanout  int
}

func newRoutePlan(c *Command) *routePlan {
	n := c.Endpoints
	failing, hanging := c.unhealthy()
	p := &routePlan{roles: make([]role, n), filters: make([][]string, n), fanout: c.Fanout}
	for i := n - failing - hanging; i < n-hanging; i++ {
		p.roles[i] = roleFailing
	}
	for i := n - hanging; i < n; i++ {
		p.roles[i] = roleHanging
	}
	if c.Fanout == n {
		p.types = []string{"bench.event"}
		p.healthy = []int{n - failing - hanging}
		return p
	}
	p.types = make([]string, n)
	p.healthy = make([]int, n)
	for k := range n {
		p.types[k] = fmt.Sprintf("bench.t%d", k)
	}
	for k := range n {
		for _, i := range p.targets(k) {
			p.filters[i] = append(p.filters[i], p.types[k])
			if p.roles[i] == roleHealthy {
				p.healthy[k]++
			}
		}
	}
	return p
}

// targets returns the endpoints a message of type k goes to.
func (p *routePlan) targets(k int) []int {
	n := len(p.roles)
	out := make([]int, p.fanout)
	for m := range p.fanout {
		out[m] = (k + m) % n
	}
	return out
}

// messageBodies returns the MessageIn body of each event type.
func messageBodies(p *routePlan, payload []byte) [][]byte {
	bodies := make([][]byte, len(p.types))
	for k, t := range p.types {
		bodies[k] = fmt.Appendf(nil, `{"eventType":%q,"payload":%s}`, t, payload)
	}
	return bodies
}

// tally counts what every receiver saw.
type tally struct {
	delivered     atomic.Int64 // first receipts at healthy endpoints
	duplicates    atomic.Int64 // further receipts of one message at one healthy endpoint
	verified      atomic.Int64
	badSignatures atomic.Int64
	failAnswers   atomic.Int64 // 500s given by failing endpoints
	hangs         atomic.Int64 // requests held by hanging endpoints
	lastReceipt   atomic.Int64 // offset from start of the latest first receipt, ns
	sigErr        atomic.Pointer[string]
}

// noteReceipt raises lastReceipt to at.
func (t *tally) noteReceipt(at time.Duration) {
	for {
		cur := t.lastReceipt.Load()
		if int64(at) <= cur || t.lastReceipt.CompareAndSwap(cur, int64(at)) {
			return
		}
	}
}

// receiver is one endpoint's loopback server. Receipt times are offsets
// from the run's start (monotonic clock), keyed by webhook-id, in shards
// so concurrent deliveries rarely share a lock.
type receiver struct {
	role        role
	keys        [][]byte
	verifyRatio float64
	start       time.Time
	stop        <-chan struct{}
	tally       *tally
	shards      [16]receiptShard
	url         string
	srv         *http.Server
}

type receiptShard struct {
	mu sync.Mutex
	at map[string]time.Duration
}

func (rc *receiver) shard(id string) *receiptShard {
	if id == "" {
		return &rc.shards[0]
	}
	return &rc.shards[id[len(id)-1]%uint8(len(rc.shards))]
}

// record stores the first receipt of id and reports whether it was the
// first.
func (rc *receiver) record(id string, at time.Duration) bool {
	s := rc.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.at[id]; dup {
		return false
	}
	s.at[id] = at
	return true
}

// receivedAt returns when id first arrived.
func (rc *receiver) receivedAt(id string) (time.Duration, bool) {
	s := rc.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.at[id]
	return at, ok
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch rc.role {
	case roleFailing:
		rc.tally.failAnswers.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	case roleHanging:
		rc.tally.hangs.Add(1)
		select {
		case <-r.Context().Done():
		case <-rc.stop:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.accept(r.Header, body)
	w.WriteHeader(http.StatusNoContent)
}

// receivers are every endpoint's servers, indexed like the plan's roles.
type receivers struct {
	servers []*receiver
	tally   *tally
	wg      sync.WaitGroup
}

// startReceivers starts one server per endpoint on 127.0.0.1, each with a
// fresh signing secret.
func startReceivers(p *routePlan, verifyRatio float64, start time.Time, stop <-chan struct{}) (*receivers, error) {
	rs := &receivers{tally: &tally{}}
	for _, ro := range p.roles {
		key, err := signature.NewSecret()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			rs.close(func() {})
			return nil, fmt.Errorf("start receiver: %w", err)
		}
		rc := &receiver{role: ro, keys: [][]byte{key}, verifyRatio: verifyRatio, start: start, stop: stop, tally: rs.tally, url: "http://" + ln.Addr().String() + "/webhook"}
		for i := range rc.shards {
			rc.shards[i].at = make(map[string]time.Duration)
		}
		rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog()}
		rs.servers = append(rs.servers, rc)
		rs.wg.Go(func() { _ = rc.srv.Serve(ln) })
	}
	return rs, nil
}

// close releases hanging handlers and stops every server. A server still
// holding connections after a short grace (a remote Herald's idle ones) is
// closed hard: the run is over.
func (rs *receivers) close(release func()) {
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, rc := range rs.servers {
		if err := rc.srv.Shutdown(ctx); err != nil {
			rc.srv.Close()
		}
	}
	rs.wg.Wait()
}

// discardLog silences net/http's server log (clients that go away).
func discardLog() *log.Logger { return slog.NewLogLogger(slog.DiscardHandler, slog.LevelError) }

// serverTarget is the Herald the clients talk to: url for setup and
// checks, and every node of nodes (url first) for posting messages.
type serverTarget struct {
	url, token string
	nodes      []string
}

// newServerTarget parses a comma-separated list of node URLs.
func newServerTarget(urls, token string) serverTarget {
	t := serverTarget{token: token}
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			t.nodes = append(t.nodes, u)
		}
	}
	if len(t.nodes) > 0 {
		t.url = t.nodes[0]
	}
	return t
}

// newBenchClient returns an HTTP client that keeps a connection per
// concurrent poster.
func newBenchClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// call makes one JSON API request and decodes a 2xx answer into out.
func call(ctx context.Context, client *http.Client, t serverTarget, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, t.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: herald answered %s: %s", method, path, resp.Status, bytes.TrimSpace(answer))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer, out)
}

// setupApp creates an application with one endpoint per receiver, carrying
// the receiver's secret and the plan's filter types, and returns its ID.
func setupApp(ctx context.Context, client *http.Client, t serverTarget, name string, p *routePlan, rs []*receiver) (string, error) {
	var app struct {
		ID string `json:"id"`
	}
	if err := call(ctx, client, t, http.MethodPost, "/api/v1/app", map[string]any{"name": name}, &app); err != nil {
		return "", fmt.Errorf("create application: %w", err)
	}
	for i, rc := range rs {
		in := map[string]any{
			"url":         rc.url,
			"secret":      signature.FormatSecret(rc.keys[0]),
			"description": fmt.Sprintf("bench endpoint %d (%s)", i, rc.role),
		}
		if p != nil && p.filters[i] != nil {
			in["filterTypes"] = p.filters[i]
		}
		if err := call(ctx, client, t, http.MethodPost, "/api/v1/app/"+app.ID+"/endpoint", in, nil); err != nil {
			return "", fmt.Errorf("create endpoint: %w", err)
		}
	}
	return app.ID, nil
}

// backlogEndpoints is how many endpoints the backlog application has: each
// backlog message makes that many deliveries.
const backlogEndpoints = 10

// fillBacklog stores at least c.Backlog pending deliveries, due after
// c.BacklogDelay, for an application of their own whose endpoints answer
// 204 and count nothing, so the measured deliveries stay apart.
// It returns the function that stops their receiver.
func (c *Command) fillBacklog(ctx context.Context, client *http.Client, t serverTarget, store Store, payload []byte) (closeSink func(), err error) {
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), ErrorLog: discardLog()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backlog receiver: %w", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = sink.Serve(ln)
	}()
	closeSink = func() {
		sink.Close()
		<-served
	}
	defer func() {
		if err != nil {
			closeSink()
		}
	}()
	sinks := make([]*receiver, backlogEndpoints)
	for i := range sinks {
		key, err := signature.NewSecret()
		if err != nil {
			return nil, err
		}
		sinks[i] = &receiver{url: fmt.Sprintf("http://%s/backlog/%d", ln.Addr(), i), keys: [][]byte{key}}
	}
	appID, err := setupApp(ctx, client, t, "herald-bench-backlog", nil, sinks)
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	const batch = 1000 // messages per transaction: 10,000 deliveries
	due := time.Now().Add(c.BacklogDelay).UTC()
	remaining := (c.Backlog + backlogEndpoints - 1) / backlogEndpoints
	for remaining > 0 {
		n := min(batch, remaining)
		msgs := make([]*herald.Message, n)
		for i := range msgs {
			msgs[i] = &herald.Message{
				ID: herald.NewID(herald.PrefixMessage), AppID: appID, EventType: "bench.backlog",
				Payload: payload, CreatedAt: due,
			}
		}
		results, err := store.CreateMessages(ctx, msgs, herald.Lease{})
		if err != nil {
			return nil, fmt.Errorf("store backlog: %w", err)
		}
		for _, res := range results {
			if res.Err != nil {
				return nil, fmt.Errorf("store backlog: %w", res.Err)
			}
		}
		remaining -= n
	}
	return closeSink, nil
}

// ack is one message the API accepted.
type ack struct {
	id   string
	kind int           // event type index
	at   time.Duration // when the 202 arrived, from the run's start
	took time.Duration // request to 202
}

// loadRun posts the messages and waits for their deliveries.
type loadRun struct {
	cmd      *Command
	plan     *routePlan
	recv     *receivers
	client   *http.Client
	target   serverTarget
	appID    string
	bodies   [][]byte
	progress io.Writer

	start    time.Time
	begin    time.Duration // when posting began, from start
	next     atomic.Int64  // next message index
	acked    atomic.Int64
	expected atomic.Int64 // healthy deliveries of acked messages
	errs     atomic.Int64
	firstErr atomic.Pointer[string]
}

// run posts with cmd.Concurrency clients, then waits until every healthy
// delivery of every accepted message arrived or the timeout passed.
func (l *loadRun) run(ctx context.Context) *Report {
	ctx, cancel := context.WithTimeout(ctx, l.cmd.Timeout)
	defer cancel()
	l.start = l.recv.servers[0].start
	begin := time.Since(l.start)
	l.begin = begin

	perWorker := make([][]ack, l.cmd.Concurrency)
	var posters sync.WaitGroup
	for w := range perWorker {
		posters.Go(func() { perWorker[w] = l.post(ctx) })
	}
	postingDone := make(chan struct{})
	go func() {
		posters.Wait()
		close(postingDone)
	}()

	var acks []ack
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	lastPrint, lastDelivered, lastAcked := time.Duration(0), int64(0), int64(0)
	var timedOut bool
	for done := false; !done; {
		select {
		case <-ctx.Done():
			timedOut = true
			done = true
			continue
		case <-ticker.C:
		}
		if now := time.Since(l.start); now-lastPrint >= 500*time.Millisecond {
			d, a := l.recv.tally.delivered.Load(), l.acked.Load()
			secs := (now - lastPrint).Seconds()
			fmt.Fprintf(l.progress, "\r\033[K%6.1fs  ingest %7.0f msg/s  delivery %7.0f/s  queued %7d  accepted %d  errors %d",
				(now - begin).Seconds(), float64(a-lastAcked)/secs, float64(d-lastDelivered)/secs,
				l.expected.Load()-d, a, l.errs.Load())
			lastPrint, lastDelivered, lastAcked = now, d, a
		}
		select {
		case <-postingDone:
		default:
			continue
		}
		if acks == nil {
			acks = mergeAcks(perWorker)
		}
		if l.recv.tally.delivered.Load() >= l.expected.Load() && l.missing(acks) == 0 {
			done = true
		}
	}
	fmt.Fprint(l.progress, "\r\033[K")
	cancel()
	<-postingDone // posters stop at once when the timeout ended the run
	if acks == nil {
		acks = mergeAcks(perWorker)
	}
	return l.report(acks, begin, timedOut)
}

func mergeAcks(perWorker [][]ack) []ack {
	var all []ack
	for _, a := range perWorker {
		all = append(all, a...)
	}
	return all
}

// post is one client: it posts until the messages or the duration run out.
func (l *loadRun) post(ctx context.Context) []ack {
	var acks []ack
	for ctx.Err() == nil {
		j := l.next.Add(1) - 1
		// With --rate, message j is due at a fixed offset from the run's
		// start, and its latency counts from then: a client still busy
		// with an earlier request makes it late, and that shows.
		var due time.Duration
		if l.cmd.Rate > 0 {
			due = l.begin + time.Duration(float64(j)/l.cmd.Rate*float64(time.Second))
		}
		if n, scheduled := l.cmd.scheduled(); scheduled {
			if j >= n {
				return acks
			}
		} else if time.Since(l.start)-l.begin >= l.cmd.Duration {
			return acks
		}
		if wait := due - time.Since(l.start); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return acks
			case <-t.C:
			}
		}
		kind := int(j % int64(len(l.bodies)))
		node := l.target.nodes[j%int64(len(l.target.nodes))]
		begin := time.Since(l.start)
		if l.cmd.Rate > 0 {
			begin = due
		}
		id, err := l.postOne(ctx, node, l.bodies[kind])
		end := time.Since(l.start)
		if err != nil {
			if ctx.Err() != nil {
				return acks
			}
			l.errs.Add(1)
			msg := err.Error()
			l.firstErr.CompareAndSwap(nil, &msg)
			continue
		}
		acks = append(acks, ack{id: id, kind: kind, at: end, took: end - begin})
		l.expected.Add(int64(l.plan.healthy[kind]))
		l.acked.Add(1)
	}
	return acks
}

// postOne posts one message to the node at base and returns its ID from
// the 202.
func (l *loadRun) postOne(ctx context.Context, base string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/app/"+l.appID+"/msg", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header["Authorization"] = []string{"Bearer " + l.target.token}
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := l.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("herald answered %s: %s", resp.Status, bytes.TrimSpace(answer))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(answer, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("read 202 answer: %q", answer)
	}
	return out.ID, nil
}

// missing counts the healthy deliveries of acks that have not arrived.
func (l *loadRun) missing(acks []ack) int {
	n := 0
	l.eachDelivery(acks, func(_ ack, _ time.Duration, ok bool) {
		if !ok {
			n++
		}
	})
	return n
}

// eachDelivery calls fn for every expected healthy delivery of acks with
// its receipt time, if it arrived.
func (l *loadRun) eachDelivery(acks []ack, fn func(a ack, at time.Duration, ok bool)) {
	targets := make([][]int, len(l.plan.types))
	for k := range targets {
		targets[k] = l.plan.targets(k)
	}
	for _, a := range acks {
		for _, i := range targets[a.kind] {
			rc := l.recv.servers[i]
			if rc.role != roleHealthy {
				continue
			}
			at, ok := rc.receivedAt(a.id)
			fn(a, at, ok)
		}
	}
}

// report computes the figures of a finished (or timed-out) run.
func (l *loadRun) report(acks []ack, begin time.Duration, timedOut bool) *Report {
	t := l.recv.tally
	var e2e, ingestLat []time.Duration
	var lastAck time.Duration
	for _, a := range acks {
		ingestLat = append(ingestLat, a.took)
		lastAck = max(lastAck, a.at)
	}
	delivered, missing := 0, 0
	l.eachDelivery(acks, func(a ack, at time.Duration, ok bool) {
		if !ok {
			missing++
			return
		}
		delivered++
		// From when the sender's POST began (with --rate, when it was
		// due) to the receipt: durable ingest, queueing and the delivery.
		// The receipt may come before the sender has read its 202, since
		// the dispatcher starts on a batch as soon as it commits.
		e2e = append(e2e, max(0, at-(a.at-a.took)))
	})
	rep := &Report{
		Messages:           len(acks),
		Errors:             l.errs.Load(),
		ExpectedDeliveries: delivered + missing,
		Delivered:          delivered,
		Missing:            missing,
		Duplicates:         t.duplicates.Load(),
		VerifiedSignatures: t.verified.Load(),
		BadSignatures:      t.badSignatures.Load(),
		FailingAnswers:     t.failAnswers.Load(),
		HangingRequests:    t.hangs.Load(),
		TimedOut:           timedOut,
		IngestLatency:      percentiles(ingestLat),
		EndToEndLatency:    percentiles(e2e),
	}
	if p := l.firstErr.Load(); p != nil {
		rep.FirstError = *p
	}
	if p := t.sigErr.Load(); p != nil {
		rep.FirstSignatureError = *p
	}
	if s := (lastAck - begin).Seconds(); s > 0 {
		rep.IngestRate = float64(len(acks)) / s
	}
	end := time.Duration(t.lastReceipt.Load())
	if timedOut {
		end = time.Since(l.start)
	}
	rep.ElapsedSeconds = (end - begin).Seconds()
	if rep.ElapsedSeconds > 0 {
		rep.DeliveryRate = float64(delivered) / rep.ElapsedSeconds
	}
	return rep
}

// Latencies are percentiles in milliseconds.
type Latencies struct {
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func percentiles(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return ms(d[max(0, min(i, len(d)-1))])
	}
	return Latencies{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Report is the outcome of a run, printed as a table or JSON.
type Report struct {
	Machine  machineInfo     `json:"machine"`
	Config   benchConfig     `json:"config"`
	Baseline *baselineReport `json:"baseline,omitempty"`

	Messages            int       `json:"messages"`
	Errors              int64     `json:"errors"`
	FirstError          string    `json:"firstError,omitempty"`
	IngestRate          float64   `json:"ingestRate"`
	DeliveryRate        float64   `json:"deliveryRate"`
	DeliveryVsBaseline  float64   `json:"deliveryVsBaseline,omitempty"`
	ExpectedDeliveries  int       `json:"expectedDeliveries"`
	Delivered           int       `json:"delivered"`
	Missing             int       `json:"missing"`
	Duplicates          int64     `json:"duplicates"`
	VerifiedSignatures  int64     `json:"verifiedSignatures"`
	BadSignatures       int64     `json:"badSignatures"`
	FirstSignatureError string    `json:"firstSignatureError,omitempty"`
	FailingAnswers      int64     `json:"failingEndpointAnswers"`
	HangingRequests     int64     `json:"hangingEndpointRequests"`
	EndToEndLatency     Latencies `json:"endToEndLatency"`
	IngestLatency       Latencies `json:"ingestLatency"`
	// ServerIngest and DispatchLag are from Herald's own histograms (its
	// /metrics), when the API serves them; ServerIngestError and
	// DispatchLagError say why one is missing.
	ServerIngest      *serverIngestReport `json:"serverIngestLatency,omitempty"`
	ServerIngestError string              `json:"serverIngestLatencyError,omitempty"`
	DispatchLag       *lagReport          `json:"dispatchLag,omitempty"`
	DispatchLagError  string              `json:"dispatchLagError,omitempty"`
	ElapsedSeconds    float64             `json:"elapsedSeconds"`
	CPUSeconds        float64             `json:"cpuSeconds"`
	PeakRSSMiB        float64             `json:"peakRssMiB"`
	TimedOut          bool                `json:"timedOut"`
	// HangingApp is the noisy neighbour of --hanging-endpoints.
	HangingApp *hangingAppReport `json:"hangingApp,omitempty"`
	// Soak is the samples over time of --sample-every.
	Soak *soakReport `json:"soak,omitempty"`
}

// benchConfig echoes the flags that shape a run.
type benchConfig struct {
	Server              string  `json:"server"`
	Destination         string  `json:"destination"`
	Messages            int     `json:"messages,omitempty"`
	Duration            string  `json:"duration,omitempty"`
	Endpoints           int     `json:"endpoints"`
	Fanout              int     `json:"fanout"`
	PayloadSize         int     `json:"payloadSize"`
	Concurrency         int     `json:"concurrency"`
	Rate                float64 `json:"rate,omitempty"`
	FailRatio           float64 `json:"failRatio"`
	HangRatio           float64 `json:"hangRatio"`
	Backlog             int     `json:"backlog"`
	Database            string  `json:"database,omitempty"`
	SQLiteSynchronous   string  `json:"sqliteSynchronous,omitempty"`
	Workers             int     `json:"workers,omitempty"`
	EndpointConcurrency int     `json:"endpointConcurrency,omitempty"`
	AppWorkerShare      float64 `json:"appWorkerShare,omitempty"`
	HangingEndpoints    int     `json:"hangingEndpoints,omitempty"`
}

func (c *Command) config() benchConfig {
	cfg := benchConfig{
		Server: "in-process", Destination: cmp.Or(c.Destination, "http"), Endpoints: c.Endpoints, Fanout: c.Fanout, PayloadSize: c.PayloadSize,
		Concurrency: c.Concurrency, Rate: c.Rate, FailRatio: c.FailRatio, HangRatio: c.HangRatio, Backlog: c.Backlog,
		SQLiteSynchronous: c.SQLiteSynchronous, Workers: c.Workers, EndpointConcurrency: c.EndpointConcurrency,
	}
	cfg.AppWorkerShare, cfg.HangingEndpoints = c.AppWorkerShare, c.HangingEndpoints
	if c.Duration > 0 {
		cfg.Duration = c.Duration.String()
	} else {
		cfg.Messages = c.Messages
	}
	cfg.Database = "sqlite"
	if c.DB != "" {
		cfg.Database, cfg.SQLiteSynchronous = "postgresql", ""
	}
	if c.URL != "" {
		cfg.Server = c.URL
		cfg.Database, cfg.SQLiteSynchronous, cfg.Workers, cfg.EndpointConcurrency = "", "", 0, 0
		cfg.AppWorkerShare = 0
	}
	return cfg
}

// verdict is the run's error: a timeout, lost or duplicated deliveries,
// failed requests or bad signatures make the command exit non-zero.
func (r *Report) verdict() error {
	var problems []string
	if r.TimedOut {
		problems = append(problems, fmt.Sprintf("timed out with %d of %d deliveries missing", r.Missing, r.ExpectedDeliveries))
	} else if r.Missing > 0 {
		problems = append(problems, fmt.Sprintf("%d deliveries missing", r.Missing))
	}
	if r.Errors > 0 {
		problems = append(problems, fmt.Sprintf("%d messages not accepted (first: %s)", r.Errors, r.FirstError))
	}
	if r.Duplicates > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicate deliveries", r.Duplicates))
	}
	if r.BadSignatures > 0 {
		problems = append(problems, fmt.Sprintf("%d bad signatures (first: %s)", r.BadSignatures, r.FirstSignatureError))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("bench: " + strings.Join(problems, "; "))
}

func (r *Report) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	m, c := r.Machine, r.Config
	row("machine", "%d CPUs (%s), GOMAXPROCS %d, %s %s/%s", m.CPUs, m.CPUModel, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	pace := "as fast as possible"
	if c.Rate > 0 {
		pace = fmt.Sprintf("%g msgs/s", c.Rate)
	}
	row("destination", "%s", c.Destination)
	row("run", "%s server, %d endpoints, fanout %d, payload %d B, concurrency %d (%s), fail %.2f, hang %.2f, backlog %d",
		c.Server, c.Endpoints, c.Fanout, c.PayloadSize, c.Concurrency, pace, c.FailRatio, c.HangRatio, c.Backlog)
	if c.Server == "in-process" {
		db := "SQLite synchronous=" + c.SQLiteSynchronous
		if c.Database == "postgresql" {
			db = "PostgreSQL"
		}
		row("herald", "%s, %d workers, %d per endpoint", db, c.Workers, c.EndpointConcurrency)
		if c.AppWorkerShare > 0 {
			row("app worker share", "%.2f of the workers per application", c.AppWorkerShare)
		}
	}
	if b := r.Baseline; b != nil {
		row("baseline", "%.0f plain Go POSTs/s (%d in %.1fs, %d errors)", b.Rate, b.Requests, b.Seconds, b.Errors)
	}
	row("messages", "%d accepted, %d errors", r.Messages, r.Errors)
	row("ingest rate", "%.0f msgs/s", r.IngestRate)
	ratio := ""
	if r.DeliveryVsBaseline > 0 {
		ratio = fmt.Sprintf(" (%.1f%% of the baseline)", 100*r.DeliveryVsBaseline)
	}
	row("delivery rate", "%.0f deliveries/s to healthy endpoints%s", r.DeliveryRate, ratio)
	row("deliveries", "%d of %d arrived, %d missing, %d duplicates", r.Delivered, r.ExpectedDeliveries, r.Missing, r.Duplicates)
	row("signatures", "%d verified, %d bad", r.VerifiedSignatures, r.BadSignatures)
	if r.FailingAnswers > 0 || r.HangingRequests > 0 {
		row("unhealthy endpoints", "%d answers 500, %d requests hung", r.FailingAnswers, r.HangingRequests)
	}
	if h := r.HangingApp; h != nil {
		row("hanging application", "%d endpoints, %d deliveries posted: %d requests hanging when the run began, %d by its end", h.Endpoints, h.Deliveries, h.HeldAtStart, h.HeldAtEnd)
	}
	e, i := r.EndToEndLatency, r.IngestLatency
	row("end-to-end latency", "p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms", e.P50, e.P95, e.P99, e.Max)
	row("ingest latency", "p50 %.1f ms  p99 %.1f ms", i.P50, i.P99)
	switch {
	case r.ServerIngest != nil:
		row("ingest (server)", "%s", r.ServerIngest)
	case r.ServerIngestError != "":
		row("ingest (server)", "unavailable: %s", r.ServerIngestError)
	}
	switch {
	case r.DispatchLag != nil:
		row("dispatch lag", "%s", r.DispatchLag)
	case r.DispatchLagError != "":
		row("dispatch lag", "unavailable: %s", r.DispatchLagError)
	default:
		row("dispatch lag", "no first attempt during the run")
	}
	row("elapsed", "%.2fs", r.ElapsedSeconds)
	row("resources", "%.1f CPU seconds, peak RSS %.0f MiB (the whole bench process)", r.CPUSeconds, r.PeakRSSMiB)
	if r.TimedOut {
		row("TIMED OUT", "%d deliveries had not arrived", r.Missing)
	}
	if err := tw.Flush(); err != nil || r.Soak == nil {
		return err
	}
	return r.Soak.print(w)
}

// machineInfo describes where the run happened.
type machineInfo struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpuModel"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

func describeMachine() machineInfo {
	m := machineInfo{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUModel: "unknown",
	}
	if v, ok := procField("/proc/cpuinfo", "model name"); ok {
		m.CPUModel = v
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 where /proc is
// missing.
func peakRSSMiB() float64 {
	v, ok := procField("/proc/self/status", "VmHWM")
	if !ok {
		return 0
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 64)
	if err != nil {
		return 0
	}
	return kb / 1024
}

// cpuSeconds is the user plus system CPU time the process used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// baselineReport is the plain loopback HTTP ceiling: a Go client posting
// the payload to a Go server that discards it and answers 204.
type baselineReport struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"`
}

// measureBaseline posts payload with concurrency clients to a plain
// net/http server on 127.0.0.1 for duration d.
func measureBaseline(ctx context.Context, payload []byte, concurrency int, d time.Duration) (baselineReport, error) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), ErrorLog: discardLog()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return baselineReport{}, fmt.Errorf("baseline: %w", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	client := newBenchClient(concurrency)
	target := "http://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var requests, errs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
				if err != nil {
					errs.Add(1)
					return
				}
				req.Header["Content-Type"] = []string{"application/json"}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				requests.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	client.CloseIdleConnections()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	<-served
	return baselineReport{Requests: requests.Load(), Errors: errs.Load(), Seconds: elapsed, Rate: float64(requests.Load()) / elapsed}, nil
}

// localHerald is an in-process Herald wired like `herald serve`, on a
// temporary database.
type localHerald struct {
	url, token string
	store      Store
	close      func()
}

// startHerald starts Herald on 127.0.0.1 with a fresh database in a
// temporary directory, private targets allowed (the receivers are on
// loopback). Its warnings go to logOut.
func (c *Command) startHerald(ctx context.Context, startNode func(context.Context, NodeConfig) (*Node, error), logOut io.Writer) (*localHerald, error) {
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp(c.Dir, "herald-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	var cleanups []func()
	cleanup := func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	fail := func(err error) (*localHerald, error) {
		cleanup()
		return nil, err
	}

	key, err := keyring.NewKey()
	if err != nil {
		return fail(err)
	}
	ring, err := keyring.Parse(key)
	if err != nil {
		return fail(err)
	}
	var store Store
	if c.DB != "" {
		var drop func()
		store, drop, err = openBenchPostgres(ctx, c.DB, ring)
		if err != nil {
			return fail(fmt.Errorf("open database: %w", err))
		}
		cleanups = append(cleanups, drop)
	} else {
		store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "herald.db"), Synchronous: c.SQLiteSynchronous, Keyring: ring,
			FanOutInlineMax: herald.DefaultFanOutInlineMax})
		if err != nil {
			return fail(fmt.Errorf("open database: %w", err))
		}
	}
	cleanups = append(cleanups, func() { store.Close() })

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fail(err)
	}
	token := "hk_" + base64.RawURLEncoding.EncodeToString(raw)

	n, err := startNode(ctx, NodeConfig{
		Store:  store,
		Logger: logger,
		Sender: dispatch.SenderConfig{Timeout: c.RequestTimeout, AllowPrivate: true},
		Dispatch: dispatch.Config{
			Policy:          backoff.Policy{Schedule: backoff.DefaultSchedule, Jitter: backoff.DefaultJitter},
			Workers:         c.Workers,
			PerEndpoint:     c.EndpointConcurrency,
			AppWorkerShare:  c.AppWorkerShare,
			RequestTimeout:  c.RequestTimeout,
			ShutdownTimeout: 5 * time.Second,
		},
		AdminTokenHash: sha256.Sum256([]byte(token)),
	})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, n.Stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	srv := &http.Server{
		Handler:           n.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	cleanups = append(cleanups, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
		<-served
	})
	return &localHerald{url: "http://" + ln.Addr().String(), token: token, store: store, close: cleanup}, nil
}

// openBenchPostgres opens a store in a fresh schema of the database at url;
// drop removes the schema.
func openBenchPostgres(ctx context.Context, url string, ring *keyring.Keyring) (Store, func(), error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	schema := "herald_bench_" + hex.EncodeToString(b[:])
	s, err := postgres.Open(ctx, postgres.Config{URL: url, Keyring: ring, Schema: schema, FanOutInlineMax: herald.DefaultFanOutInlineMax})
	if err != nil {
		return nil, nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}
	return s, drop, nil
}

// startWaitProfiles creates the files of the block, mutex and allocation
// profiles asked for (so that a path that cannot be written fails before
// the run, not after it) and turns the profiles on; the returned function
// writes them and turns them off again.
func (c *Command) startWaitProfiles() (stop func() error, err error) {
	type profile struct {
		name string
		file *os.File
	}
	var profiles []profile
	for _, p := range []struct{ name, path string }{{"block", c.BlockProfile}, {"mutex", c.MutexProfile}, {"allocs", c.MemProfile}} {
		if p.path == "" {
			continue
		}
		f, err := os.Create(p.path)
		if err != nil {
			for _, p := range profiles {
				p.file.Close()
			}
			return nil, fmt.Errorf("%s profile: %w", p.name, err)
		}
		profiles = append(profiles, profile{p.name, f})
	}
	if c.MemProfile != "" {
		runtime.MemProfileRate = 512 * 1024 // Go's default
	}
	if c.BlockProfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond)) // sample waits of about 10 µs and more
	}
	if c.MutexProfile != "" {
		runtime.SetMutexProfileFraction(10)
	}
	return func() error {
		if c.MemProfile != "" {
			runtime.GC() // the profile reports allocations as of the last GC
		}
		var errs []error
		for _, p := range profiles {
			werr := pprof.Lookup(p.name).WriteTo(p.file, 0)
			if err := errors.Join(werr, p.file.Close()); err != nil {
				errs = append(errs, fmt.Errorf("%s profile: %w", p.name, err))
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
		if c.MemProfile != "" {
			runtime.MemProfileRate = 0
		}
		return errors.Join(errs...)
	}, nil
}
