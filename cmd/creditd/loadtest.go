package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// The load test drives the HTTP GraphQL API of a running creditd with a
// weighted mix of operations and reports throughput, latency percentiles and
// errors. It only ever talks to loopback addresses.

const (
	loadAction   = "load.call"
	loadRegister = "default"
	loadGrant    = "1000000000"
	hotShare     = 0.10 // share of operations sent to the hot organisation
)

// Operation kinds, in report order.
const (
	opSingle = iota
	opBatch
	opRun
	opBalance
	nOps
)

var opNames = [nOps]string{"single", "batch", "run", "balance"}

const defaultMix = "single=60,batch=10,run=20,balance=10"

type loadConfig struct {
	url         *url.URL
	key         string
	duration    time.Duration
	ops         int // stop after this many operations (0: run for duration)
	concurrency int
	orgs        int
	mix         [nOps]int
	batch       int
	setup       bool
}

func loadtest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "the server (loopback only: 127.0.0.0/8, localhost or ::1); /graphql is added when no path is given")
	key := fs.String("key", os.Getenv("CREDITD_ADMIN_KEY"), "an OPERATOR API key (default $CREDITD_ADMIN_KEY)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send load (with --ops: at most this long; default then 24h)")
	ops := fs.Int("ops", 0, "stop after this many operations instead of after --duration; the kinds then follow the mix in a fixed interleaved order, so every weighted kind runs within one cycle of the mix")
	concurrency := fs.Int("concurrency", 16, "concurrent workers")
	orgs := fs.Int("orgs", 50, "organisations to spread the load over (plus one hot organisation)")
	mix := fs.String("mix", defaultMix, "weights of the operation kinds: single, batch, run, balance")
	batch := fs.Int("batch", 100, "events per recordUsageBatch")
	setup := fs.Bool("setup", true, "create the organisations, pools, grants and the \"default\" register first; with --setup=false, organisations 1..orgs+1 are used, the last one hot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	u, err := loopbackURL(*rawURL)
	if err != nil {
		return err
	}
	cfg := loadConfig{url: u, key: *key, duration: *duration, ops: *ops, concurrency: *concurrency, orgs: *orgs, batch: *batch, setup: *setup}
	if cfg.ops > 0 {
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "duration" })
		if !explicit {
			cfg.duration = 24 * time.Hour
		}
	}
	if cfg.mix, err = parseMix(*mix); err != nil {
		return err
	}
	switch {
	case cfg.key == "":
		return errors.New("loadtest: --key (an OPERATOR API key) is required, or set CREDITD_ADMIN_KEY")
	case cfg.duration <= 0 || cfg.duration > 24*time.Hour:
		return fmt.Errorf("loadtest: --duration must be in (0, 24h], got %s", cfg.duration)
	case cfg.ops < 0:
		return fmt.Errorf("loadtest: --ops must not be negative, got %d", cfg.ops)
	case cfg.concurrency < 1 || cfg.concurrency > 1024:
		return fmt.Errorf("loadtest: --concurrency must be 1..1024, got %d", cfg.concurrency)
	case cfg.orgs < 1 || cfg.orgs > 10000:
		return fmt.Errorf("loadtest: --orgs must be 1..10000, got %d", cfg.orgs)
	case cfg.batch < 1 || cfg.batch > 10000:
		return fmt.Errorf("loadtest: --batch must be 1..10000, got %d", cfg.batch)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runLoad(ctx, cfg, stdout)
}

// loopbackURL parses the target and refuses any host that is not loopback.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("loadtest: --url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("loadtest: --url %q: want http:// or https://", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("loadtest: refusing --url %q: only loopback targets are allowed (127.0.0.0/8, localhost, ::1)", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/graphql"
	}
	u.User = nil
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// parseMix reads "single=60,batch=10,run=20,balance=10"; kinds left out
// weigh 0.
func parseMix(s string) ([nOps]int, error) {
	var mix [nOps]int
	total := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		i := slices.Index(opNames[:], strings.TrimSpace(name))
		if !ok || i < 0 {
			return mix, fmt.Errorf("loadtest: --mix: %q is not kind=weight with kind one of %s", part, strings.Join(opNames[:], ", "))
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 || w > 1000000 {
			return mix, fmt.Errorf("loadtest: --mix: weight of %s must be an integer 0..1000000, got %q", name, val)
		}
		mix[i] = w
		total += w
	}
	if total == 0 {
		return mix, errors.New("loadtest: --mix: the weights sum to zero")
	}
	return mix, nil
}

// loopbackClient is an HTTP client with timeouts that connects to loopback
// addresses only (whatever a name resolves to), uses no proxy and follows
// no redirect.
func loopbackClient(conns int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				c.Close()
				return nil, fmt.Errorf("refusing to talk to %s: not a loopback address", c.RemoteAddr())
			}
			return c, nil
		},
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   35 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}
}

// gql is a minimal GraphQL-over-HTTP client.
type gql struct {
	http *http.Client
	url  string
	key  string
}

// apiError is a failed call: the first GraphQL error's extensions.code, or
// what went wrong below GraphQL.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func codeOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return "CLIENT"
}

// do posts a query and decodes data into out; any GraphQL error fails the
// call.
func (c *gql) do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		code := "HTTP"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = "HTTP_TIMEOUT"
		}
		return &apiError{code, err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &apiError{"HTTP", err.Error()}
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return &apiError{fmt.Sprintf("HTTP_%d", resp.StatusCode), fmt.Sprintf("undecodable response: %.200s", raw)}
	}
	if len(r.Errors) > 0 {
		code, _ := r.Errors[0].Extensions["code"].(string)
		if code == "" {
			code = "UNKNOWN"
		}
		return &apiError{code, r.Errors[0].Message}
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{fmt.Sprintf("HTTP_%d", resp.StatusCode), http.StatusText(resp.StatusCode)}
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return &apiError{"DECODE", err.Error()}
		}
	}
	return nil
}

// target is an organisation under load and the ACCOUNT pool it draws on.
type target struct {
	org  string
	pool string
}

func runLoad(ctx context.Context, cfg loadConfig, stdout io.Writer) error {
	c := &gql{http: loopbackClient(cfg.concurrency + 4), url: cfg.url.String(), key: cfg.key}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)

	var (
		targets []target
		hot     target
		err     error
	)
	setupStart := time.Now()
	if cfg.setup {
		var note string
		if note, err = ensureLoadRegister(ctx, c); err != nil {
			return fmt.Errorf("loadtest setup: %w", err)
		}
		if targets, err = createTargets(ctx, c, tag, cfg.orgs+1); err != nil {
			return fmt.Errorf("loadtest setup: %w", err)
		}
		fmt.Fprintf(stdout, "setup: %s; %d organisations + 1 hot, each an ACCOUNT pool with a grant of %s, in %s\n",
			note, cfg.orgs, loadGrant, time.Since(setupStart).Round(time.Millisecond))
	} else {
		if targets, err = existingTargets(ctx, c, cfg.orgs+1); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		fmt.Fprintf(stdout, "setup: skipped; using organisations %s..%s, %s hot\n", targets[0].org, targets[cfg.orgs].org, targets[cfg.orgs].org)
	}
	hot, targets = targets[len(targets)-1], targets[:len(targets)-1]

	mixParts := make([]string, 0, nOps)
	for i, w := range cfg.mix {
		mixParts = append(mixParts, fmt.Sprintf("%s=%d", opNames[i], w))
	}
	length := cfg.duration.String()
	if cfg.ops > 0 {
		length = fmt.Sprintf("%d operations (at most %s)", cfg.ops, cfg.duration)
	}
	fmt.Fprintf(stdout, "load: %s for %s, %d workers, mix %s, batch %d, %d%% of operations on the hot organisation\n",
		cfg.url, length, cfg.concurrency, strings.Join(mixParts, ","), cfg.batch, int(hotShare*100))
	var tickets *opTickets
	if cfg.ops > 0 {
		tickets = &opTickets{limit: cfg.ops, schedule: interleave(cfg.mix)}
	}

	stats := make([]*workerStats, cfg.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for w := range cfg.concurrency {
		st := newWorkerStats()
		stats[w] = st
		wg.Go(func() {
			lw := &loadWorker{c: c, cfg: &cfg, targets: targets, hot: hot, st: st, tickets: tickets,
				prefix: fmt.Sprintf("lt-%s-w%d", tag, w), rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))}
			lw.loop(ctx, deadline)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	report(stdout, merge(stats), elapsed, ctx.Err() != nil)
	return nil
}

// ensureLoadRegister makes sure the register "default" in effect prices
// load.call: it publishes one (load.call weighs 1) when none is in effect.
func ensureLoadRegister(ctx context.Context, c *gql) (string, error) {
	var cur struct {
		WeightRegister *struct {
			Version       int        `json:"version"`
			Status        string     `json:"status"`
			EffectiveFrom *time.Time `json:"effectiveFrom"`
			Weights       []struct {
				Action string `json:"action"`
			} `json:"weights"`
		} `json:"weightRegister"`
	}
	if err := c.do(ctx, `query($name: String!) { weightRegister(name: $name) { version status effectiveFrom weights { action } } }`,
		map[string]any{"name": loadRegister}, &cur); err != nil {
		return "", fmt.Errorf("read register %q: %w", loadRegister, err)
	}
	if r := cur.WeightRegister; r != nil && r.Status == "PUBLISHED" && r.EffectiveFrom != nil && !r.EffectiveFrom.After(time.Now()) {
		for _, w := range r.Weights {
			if w.Action == loadAction {
				return fmt.Sprintf("register %q version %d in effect", loadRegister, r.Version), nil
			}
		}
		return "", fmt.Errorf("register %q version %d is in effect but has no weight for %q; load test a fresh database, or publish a version that prices it", loadRegister, r.Version, loadAction)
	}
	var draft struct {
		Save struct {
			Version int `json:"version"`
		} `json:"saveWeightRegisterDraft"`
	}
	if err := c.do(ctx, `mutation($name: String!, $weights: [WeightInput!]!) { saveWeightRegisterDraft(name: $name, weights: $weights) { version } }`,
		map[string]any{"name": loadRegister, "weights": []map[string]any{{"action": loadAction, "credits": "1"}}}, &draft); err != nil {
		return "", fmt.Errorf("save register draft: %w", err)
	}
	err := c.do(ctx, `mutation($name: String!, $version: Int!) { publishWeightRegister(name: $name, version: $version) { version } }`,
		map[string]any{"name": loadRegister, "version": draft.Save.Version}, nil)
	if err != nil && codeOf(err) != "CONFLICT" { // CONFLICT: someone published it first
		return "", fmt.Errorf("publish register: %w", err)
	}
	return fmt.Sprintf("published register %q version %d (%s weighs 1)", loadRegister, draft.Save.Version, loadAction), nil
}

// createTargets creates n organisations, each with an ACCOUNT pool and a
// big grant.
func createTargets(ctx context.Context, c *gql, tag string, n int) ([]target, error) {
	out := make([]target, 0, n)
	for i := range n {
		name := fmt.Sprintf("loadtest %s org %d", tag, i+1)
		if i == n-1 {
			name = fmt.Sprintf("loadtest %s hot org", tag)
		}
		var org struct {
			Org struct {
				ID string `json:"id"`
			} `json:"createOrganization"`
		}
		if err := c.do(ctx, `mutation($name: String!) { createOrganization(name: $name, segment: "loadtest") { id } }`,
			map[string]any{"name": name}, &org); err != nil {
			return nil, fmt.Errorf("create organisation: %w", err)
		}
		var pool struct {
			Pool struct {
				ID string `json:"id"`
			} `json:"createPool"`
		}
		if err := c.do(ctx, `mutation($org: ID!, $name: String!) { createPool(organizationId: $org, kind: ACCOUNT, name: $name) { id } }`,
			map[string]any{"org": org.Org.ID, "name": name + " account"}, &pool); err != nil {
			return nil, fmt.Errorf("create pool: %w", err)
		}
		if err := c.do(ctx, `mutation($in: GrantInput!) { grantCredits(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"poolId": pool.Pool.ID, "creditType": "ON_DEMAND", "amount": loadGrant, "memo": "loadtest"}}, nil); err != nil {
			return nil, fmt.Errorf("grant credits: %w", err)
		}
		out = append(out, target{org: org.Org.ID, pool: pool.Pool.ID})
	}
	return out, nil
}

// existingTargets uses organisations 1..n and their first ACCOUNT pools.
func existingTargets(ctx context.Context, c *gql, n int) ([]target, error) {
	out := make([]target, 0, n)
	for id := 1; id <= n; id++ {
		var r struct {
			Org *struct {
				ID    string `json:"id"`
				Pools []struct {
					ID   string `json:"id"`
					Kind string `json:"kind"`
				} `json:"pools"`
			} `json:"organization"`
		}
		if err := c.do(ctx, `query($id: ID!) { organization(id: $id) { id pools { id kind } } }`, map[string]any{"id": strconv.Itoa(id)}, &r); err != nil {
			return nil, fmt.Errorf("organisation %d: %w (run with --setup to create organisations)", id, err)
		}
		if r.Org == nil {
			return nil, fmt.Errorf("organisation %d does not exist (run with --setup, or lower --orgs)", id)
		}
		t := target{org: r.Org.ID}
		for _, p := range r.Org.Pools {
			if p.Kind == "ACCOUNT" {
				t.pool = p.ID
				break
			}
		}
		if t.pool == "" {
			return nil, fmt.Errorf("organisation %d has no ACCOUNT pool", id)
		}
		out = append(out, t)
	}
	return out, nil
}

type workerStats struct {
	lat    [nOps][]time.Duration // of successful operations
	ops    [nOps]int
	errs   [nOps]int
	events [nOps]int
	codes  map[string]int
}

func newWorkerStats() *workerStats { return &workerStats{codes: map[string]int{}} }

func merge(all []*workerStats) *workerStats {
	out := newWorkerStats()
	for _, s := range all {
		for k := range nOps {
			out.lat[k] = append(out.lat[k], s.lat[k]...)
			out.ops[k] += s.ops[k]
			out.errs[k] += s.errs[k]
			out.events[k] += s.events[k]
		}
		for code, n := range s.codes {
			out.codes[code] += n
		}
	}
	return out
}

type loadWorker struct {
	c       *gql
	cfg     *loadConfig
	targets []target
	hot     target
	st      *workerStats
	prefix  string
	seq     int
	rng     *rand.Rand
	tickets *opTickets // with --ops: the shared count and order of operations
}

// opTickets hands out the operations of an --ops run: n-th operation, n-th
// kind of the interleaved schedule, until the limit.
type opTickets struct {
	mu       sync.Mutex
	next     int
	limit    int
	schedule []int
}

func (t *opTickets) take() (kind int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next >= t.limit {
		return 0, false
	}
	kind = t.schedule[t.next%len(t.schedule)]
	t.next++
	return kind, true
}

// interleave spreads the kinds over one cycle of the mix, each as often as
// its weight (divided by the weights' common divisor) and as evenly as it
// can (smooth weighted round robin): 60/10/20/10 gives a cycle of 10.
func interleave(mix [nOps]int) []int {
	g := 0
	for _, w := range mix {
		g = gcd(g, w)
	}
	var weights [nOps]int
	total := 0
	for k, w := range mix {
		weights[k] = w / g
		total += weights[k]
	}
	out := make([]int, 0, total)
	var current [nOps]int
	for range total {
		best := -1
		for k := range nOps {
			current[k] += weights[k]
			if weights[k] > 0 && (best < 0 || current[k] > current[best]) {
				best = k
			}
		}
		current[best] -= total
		out = append(out, best)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

const (
	usageMutation = `mutation($in: UsageInput!) { recordUsage(input: $in) { decision reasonCode duplicate } }`
	batchMutation = `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { decision reasonCode duplicate } }`
	balanceQuery  = `query($id: ID!) { pool(id: $id) { balance { available } } }`
)

type usageResult struct {
	Decision   string  `json:"decision"`
	ReasonCode *string `json:"reasonCode"`
	Duplicate  bool    `json:"duplicate"`
}

func (w *loadWorker) loop(ctx context.Context, deadline time.Time) {
	total := 0
	for _, m := range w.cfg.mix {
		total += m
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		kind := 0
		if w.tickets != nil {
			k, ok := w.tickets.take()
			if !ok {
				return
			}
			kind = k
		} else {
			r := w.rng.IntN(total)
			for r >= w.cfg.mix[kind] {
				r -= w.cfg.mix[kind]
				kind++
			}
		}
		t := w.hot
		if w.rng.Float64() >= hotShare {
			t = w.targets[w.rng.IntN(len(w.targets))]
		}
		w.seq++
		t0 := time.Now()
		events, err := w.op(ctx, kind, t)
		d := time.Since(t0)
		if ctx.Err() != nil {
			return // interrupted: the operation in flight does not count
		}
		w.st.ops[kind]++
		w.st.events[kind] += events
		if err != nil {
			w.st.errs[kind]++
			w.st.codes[codeOf(err)]++
			continue
		}
		w.st.lat[kind] = append(w.st.lat[kind], d)
	}
}

func (w *loadWorker) usage(t target, key, status, runID string) map[string]any {
	in := map[string]any{"idempotencyKey": key, "organizationId": t.org, "poolId": t.pool, "action": loadAction, "status": status}
	if runID != "" {
		in["runId"] = runID
	}
	return in
}

// checked turns a decision that charged nothing into an error: every
// organisation has credits enough, so a denial is a fault worth counting.
func checked(rs ...usageResult) error {
	for _, r := range rs {
		if r.Decision == "DENIED" {
			code := "DENIED"
			if r.ReasonCode != nil {
				code += ":" + *r.ReasonCode
			}
			return &apiError{code, "usage denied"}
		}
		if r.Duplicate {
			return &apiError{"DUPLICATE", "an idempotency key was already used"}
		}
	}
	return nil
}

// op runs one operation and returns the usage events it recorded.
func (w *loadWorker) op(ctx context.Context, kind int, t target) (int, error) {
	id := fmt.Sprintf("%s-%d", w.prefix, w.seq)
	switch kind {
	case opSingle:
		var r struct {
			R usageResult `json:"recordUsage"`
		}
		if err := w.c.do(ctx, usageMutation, map[string]any{"in": w.usage(t, id, "SUCCEEDED", "")}, &r); err != nil {
			return 0, err
		}
		return 1, checked(r.R)
	case opBatch:
		ins := make([]map[string]any, w.cfg.batch)
		for i := range ins {
			ins[i] = w.usage(t, fmt.Sprintf("%s-%d", id, i), "SUCCEEDED", "")
		}
		var r struct {
			R []usageResult `json:"recordUsageBatch"`
		}
		if err := w.c.do(ctx, batchMutation, map[string]any{"ins": ins}, &r); err != nil {
			return 0, err
		}
		return len(r.R), checked(r.R...)
	case opRun:
		var started, done struct {
			R usageResult `json:"recordUsage"`
		}
		if err := w.c.do(ctx, usageMutation, map[string]any{"in": w.usage(t, id+"-start", "STARTED", id)}, &started); err != nil {
			return 0, err
		}
		if err := checked(started.R); err != nil {
			return 1, err
		}
		if err := w.c.do(ctx, usageMutation, map[string]any{"in": w.usage(t, id+"-end", "SUCCEEDED", id)}, &done); err != nil {
			return 1, err
		}
		return 2, checked(done.R)
	default:
		var r struct {
			Pool *struct {
				Balance struct {
					Available string `json:"available"`
				} `json:"balance"`
			} `json:"pool"`
		}
		if err := w.c.do(ctx, balanceQuery, map[string]any{"id": t.pool}, &r); err != nil {
			return 0, err
		}
		if r.Pool == nil {
			return 0, &apiError{"NOT_FOUND", "pool " + t.pool}
		}
		return 0, nil
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func report(w io.Writer, st *workerStats, elapsed time.Duration, interrupted bool) {
	secs := elapsed.Seconds()
	if interrupted {
		fmt.Fprintln(w, "interrupted: the figures cover the time until then")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind    \tops\terrors\tops/s\tevents\tevents/s\tp50\tp99\tp999\t")
	var all []time.Duration
	var ops, errs, events int
	for k := range nOps {
		lat := slices.Clone(st.lat[k])
		slices.Sort(lat)
		all = append(all, lat...)
		ops, errs, events = ops+st.ops[k], errs+st.errs[k], events+st.events[k]
		fmt.Fprintf(tw, "%-8s\t%d\t%d\t%.1f\t%d\t%.1f\t%s\t%s\t%s\t\n", opNames[k], st.ops[k], st.errs[k],
			float64(st.ops[k])/secs, st.events[k], float64(st.events[k])/secs,
			ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(percentile(lat, 0.999)))
	}
	slices.Sort(all)
	fmt.Fprintf(tw, "%-8s\t%d\t%d\t%.1f\t%d\t%.1f\t%s\t%s\t%s\t\n", "total", ops, errs, float64(ops)/secs, events, float64(events)/secs,
		ms(percentile(all, 0.50)), ms(percentile(all, 0.99)), ms(percentile(all, 0.999)))
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "elapsed %s: %.1f operations/s, %.1f events/s (latency of successful operations; a run is its STARTED and SUCCEEDED calls)\n",
		elapsed.Round(time.Millisecond), float64(ops)/secs, float64(events)/secs)
	if len(st.codes) == 0 {
		fmt.Fprintln(w, "errors: none")
		return
	}
	codes := make([]string, 0, len(st.codes))
	for c := range st.codes {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if st.codes[codes[i]] != st.codes[codes[j]] {
			return st.codes[codes[i]] > st.codes[codes[j]]
		}
		return codes[i] < codes[j]
	})
	fmt.Fprintf(w, "errors: %d\n", errs)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  code\tcount")
	for _, c := range codes {
		fmt.Fprintf(tw, "  %s\t%d\n", c, st.codes[c])
	}
	tw.Flush()
}
