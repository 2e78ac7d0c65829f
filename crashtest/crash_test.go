package crashtest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const (
	workers          = 8      // concurrent clients
	kills            = 3      // SIGKILLs per database
	grantAmount      = 100000 // credits granted; each call costs 1
	maxKeysPerWorker = 6000   // keeps workers*max well under grantAmount: no call is ever denied
	terminations     = 3      // pg_terminate_backend rounds (PostgreSQL)
	serverConns      = 6      // each server's --db-max-conns: the shared PostgreSQL serves other tests too
	testConns        = 2      // the test's own handle on a database
	requestTimeout   = 10 * time.Second
	startTimeout     = 30 * time.Second
	stopTimeout      = 25 * time.Second // the server drains for at most 20 s
	action           = "crash.call"
)

// The admin secret: 30+ printable characters, no spaces.
const adminKey = "crashtest-admin-key-0123456789-abcdefghijklmnop"

const qRecord = `mutation($in: UsageInput!) {
  recordUsage(input: $in) { duplicate decision credits event { id idempotencyKey credits } } }`

// TestCrashRestart kills the real server with SIGKILL under concurrent
// recordUsage load, restarts it on the same database, retries every call
// whose outcome was lost, and checks exactly-once accounting in the
// database itself. On PostgreSQL it also terminates the server's database
// connections under load.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-and-restart test builds and kills the real server; skipped with -short")
	}
	seed := testSeed(t)
	bin := buildServer(t)
	for i, d := range testdb.Dialects {
		t.Run(testdb.Name(d), func(t *testing.T) {
			newRun(t, bin, d, testdb.NewURL(t, d), seed, uint64(i)).test()
		})
	}
}

// testSeed is $CRASHTEST_SEED, else a fresh seed; it is logged so that a
// run's random moments can be replayed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CRASHTEST_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CRASHTEST_SEED=%q: %v", v, err)
		}
		seed = s
	}
	t.Logf("seed %d (replay the random moments with CRASHTEST_SEED=%d)", seed, seed)
	return seed
}

// The server binary, built once for the whole test binary (the tests here
// share it) into binDir, which TestMain removes.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildServer builds cmd/creditd from the module root the first time a test
// asks, and returns the binary.
func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		binPath, buildErr = build()
		if buildErr == nil {
			t.Logf("built %s in %v", binPath, time.Since(start).Round(time.Millisecond))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func build() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD = %q: not inside the creditd module", gomod)
	}
	if binDir, err = os.MkdirTemp("", "crashtest-bin-"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "creditd")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/creditd")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/creditd: %v\n%s", err, out)
	}
	return bin, nil
}

// ---------------------------------------------------------------------------
// The server process.

type server struct {
	cmd     *exec.Cmd
	addr    string
	log     string
	done    chan struct{}
	waitErr error
}

func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs `creditd serve` on the run's database and waits until /healthz
// answers. It reuses the previous address (a restarted server comes back
// where its clients expect it) unless that fails.
func (r *run) start() *server {
	t := r.t
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		if r.addr == "" || attempt > 0 {
			r.addr = freeAddr(t)
		}
		r.starts++
		s := &server{addr: r.addr, log: filepath.Join(r.logDir, fmt.Sprintf("server-%d.log", r.starts)), done: make(chan struct{})}
		f, err := os.Create(s.log)
		if err != nil {
			t.Fatal(err)
		}
		s.cmd = exec.Command(r.bin, "serve", "--addr", s.addr, "--database-url", r.url,
			"--db-max-conns", strconv.Itoa(serverConns), "--rate-limit", "-1", "--period-close-every", r.closeEvery.String(), "--no-playground")
		s.cmd.Env = append(os.Environ(), "CREDITD_ADMIN_KEY="+adminKey, "CREDITD_DATABASE_URL=")
		s.cmd.Stdout, s.cmd.Stderr = f, f
		if err := s.cmd.Start(); err != nil {
			f.Close()
			t.Fatalf("start creditd: %v", err)
		}
		f.Close()
		go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() {
			if s.running() {
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		})
		if r.waitHealthy(s) {
			r.srv = s
			return s
		}
		// It exited during start-up; a lost race for the port is retried.
		logText := tail(s.log, 4000)
		if !strings.Contains(logText, "address already in use") {
			t.Fatalf("creditd exited during start-up (%v); log:\n%s", s.waitErr, logText)
		}
		t.Logf("port %s was taken; retrying on another", s.addr)
	}
	t.Fatalf("could not start creditd")
	return nil
}

// waitHealthy polls /healthz until it answers 200; false when the process
// exited first. It fails the test on timeout.
func (r *run) waitHealthy(s *server) bool {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if !s.running() {
			return false
		}
		ctx, cancel := context.WithTimeout(r.t.Context(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/healthz", nil)
		resp, err := r.http().Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			if !strings.Contains(tail(s.log, 1<<20), "creditd listening on "+s.addr) {
				r.t.Errorf("creditd answers /healthz but never printed \"creditd listening on %s\"", s.addr)
			}
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	r.t.Fatalf("creditd did not answer /healthz within %v; log:\n%s", startTimeout, tail(s.log, 4000))
	return false
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *run) kill(s *server) {
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("SIGKILL: %v", err)
	}
	<-s.done
}

// stop sends SIGTERM and requires a clean exit after the drain.
func (r *run) stop(s *server) {
	t := r.t
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("creditd did not exit within %v of SIGTERM; log:\n%s", stopTimeout, tail(s.log, 4000))
	}
	if s.waitErr != nil {
		t.Errorf("creditd exited with %v after SIGTERM, want a clean exit; log:\n%s", s.waitErr, tail(s.log, 4000))
	}
	if !strings.Contains(tail(s.log, 1<<20), "draining in-flight requests") {
		t.Errorf("creditd did not log that it drained on SIGTERM; log:\n%s", tail(s.log, 4000))
	}
	t.Logf("SIGTERM: clean exit in %v", time.Since(start).Round(time.Millisecond))
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// The client.

var (
	clientOnce sync.Once
	client     *http.Client
)

func (r *run) http() *http.Client {
	clientOnce.Do(func() {
		client = &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				MaxIdleConns:        4 * workers,
				MaxIdleConnsPerHost: 4 * workers,
				IdleConnTimeout:     30 * time.Second,
			},
		}
	})
	return client
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string { c, _ := e.Extensions["code"].(string); return c }

// callError is a call that did not answer with data: a transport error, a
// non-200 status or GraphQL errors.
type callError struct {
	status int
	errs   []gqlError
	err    error
}

func (e *callError) Error() string {
	switch {
	case e.err != nil:
		return e.err.Error()
	case len(e.errs) > 0:
		var b strings.Builder
		fmt.Fprintf(&b, "HTTP %d:", e.status)
		for _, g := range e.errs {
			fmt.Fprintf(&b, " [%s] %s;", g.code(), g.Message)
		}
		return b.String()
	}
	return fmt.Sprintf("HTTP %d without data", e.status)
}

func (e *callError) hasCode(c string) bool {
	for _, g := range e.errs {
		if g.code() == c {
			return true
		}
	}
	return false
}

// call posts one GraphQL request to the current server and decodes data
// into out. Anything but HTTP 200 with data and no errors is a *callError.
func (r *run) call(query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(r.t.Context(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.srv.addr+"/graphql", bytes.NewReader(body))
	if err != nil {
		return &callError{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := r.http().Do(req)
	if err != nil {
		return &callError{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return &callError{status: resp.StatusCode, err: fmt.Errorf("read response: %w", err)}
	}
	var g struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return &callError{status: resp.StatusCode, err: fmt.Errorf("HTTP %d, undecodable body %.200q: %v", resp.StatusCode, raw, err)}
	}
	if resp.StatusCode != http.StatusOK || len(g.Errors) > 0 || len(g.Data) == 0 || string(g.Data) == "null" {
		return &callError{status: resp.StatusCode, errs: g.Errors}
	}
	if err := json.Unmarshal(g.Data, out); err != nil {
		return fmt.Errorf("decode data %.300s: %w", g.Data, err)
	}
	return nil
}

// must is call for set-up steps: any error fails the test.
func (r *run) must(query string, vars map[string]any, out any) {
	r.t.Helper()
	if err := r.call(query, vars, out); err != nil {
		r.t.Fatalf("%s: %v", strings.Fields(query)[1], err)
	}
}

// ---------------------------------------------------------------------------
// The run: one database, its server restarts and what clients observed.

// newRun is a run of the real server binary bin on the database at url,
// its random moments drawn from stream of seed.
func newRun(t *testing.T, bin, dialect, url string, seed, stream uint64) *run {
	return &run{t: t, bin: bin, dialect: dialect, url: url, rng: rand.New(rand.NewPCG(seed, stream)),
		sent: map[string]int{}, acked: map[string]int{}, unknown: map[string]bool{}, disturbanceErrors: map[string]int{},
		logDir: t.TempDir()}
}

type run struct {
	t       *testing.T
	bin     string
	dialect string
	url     string
	rng     *rand.Rand
	logDir  string
	addr    string
	srv     *server
	starts  int
	// failPause is how long a worker waits after a failed call before its
	// next one (0: none); it keeps a database outage from turning into a
	// flood of fresh keys.
	failPause time.Duration
	// closeEvery is the server's --period-close-every (0: the lifecycle
	// jobs never run on their own).
	closeEvery time.Duration

	org, pool, grant int

	mu         sync.Mutex
	sent       map[string]int // key -> attempts
	acked      map[string]int // key -> event id of its acknowledged answer
	unknown    map[string]bool
	unexpected []string
	// figures
	freshAcks, retriedNew, retriedDup, replays int
	disturbedFailures                          int
	disturbanceErrors                          map[string]int
	killed, terminated, backends               int
}

// phase is one stretch of load against one server process. Failures are
// expected only once the phase is disturbed (the server is being killed or
// its database connections terminated).
type phase struct {
	stop      chan struct{}
	disturbed atomic.Bool
	failures  atomic.Int64
	acks      atomic.Int64
}

func newPhase() *phase { return &phase{stop: make(chan struct{})} }

func (p *phase) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

type worker struct {
	id      int
	next    int
	pending []string // keys whose outcome is unknown, to retry with the same payload
}

func key(w, n int) string { return fmt.Sprintf("crash-w%d-%05d", w, n) }

func (r *run) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unexpected = append(r.unexpected, fmt.Sprintf(format, args...))
}

// attempt sends recordUsage for key once and books the outcome. It reports
// whether the key is now acknowledged.
func (r *run) attempt(ph *phase, k string, retry bool) bool {
	r.mu.Lock()
	r.sent[k]++
	r.mu.Unlock()
	var out struct {
		R *struct {
			Duplicate bool   `json:"duplicate"`
			Decision  string `json:"decision"`
			Credits   string `json:"credits"`
			Event     struct {
				ID             string `json:"id"`
				IdempotencyKey string `json:"idempotencyKey"`
				Credits        string `json:"credits"`
			} `json:"event"`
		} `json:"recordUsage"`
	}
	err := r.call(qRecord, map[string]any{"in": map[string]any{
		"idempotencyKey": k, "organizationId": strconv.Itoa(r.org), "action": action, "quantity": "1",
	}}, &out)
	if err != nil {
		var ce *callError
		if errors.As(err, &ce) && ce.hasCode(string(credit.CodeIdempotencyConflict)) {
			r.failf("key %s (retry %v): the same payload answered IDEMPOTENCY_CONFLICT: %v", k, retry, err)
			return false
		}
		if ph.disturbed.Load() {
			ph.failures.Add(1)
			msg := err.Error()
			if i := strings.Index(msg, "127.0.0.1:"); i >= 0 { // one bucket per kind, not per port
				msg = msg[:i] + "127.0.0.1:…"
			}
			r.mu.Lock()
			r.disturbedFailures++
			r.disturbanceErrors[msg]++
			r.unknown[k] = true
			r.mu.Unlock()
		} else {
			r.failf("key %s (retry %v) failed while the server was undisturbed: %v", k, retry, err)
			r.mu.Lock()
			r.unknown[k] = true
			r.mu.Unlock()
		}
		return false
	}
	res := out.R
	if res == nil {
		r.failf("key %s: recordUsage answered no result", k)
		return false
	}
	id, _ := strconv.Atoi(res.Event.ID)
	switch {
	case res.Event.IdempotencyKey != k || id == 0:
		r.failf("key %s: answer names event %q of key %q", k, res.Event.ID, res.Event.IdempotencyKey)
		return false
	case res.Decision != "ALLOWED" || !decEq(res.Credits, 1) || !decEq(res.Event.Credits, 1):
		r.failf("key %s: decision %s credits %s (event %s), want ALLOWED charging 1", k, res.Decision, res.Credits, res.Event.Credits)
	}
	ph.acks.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, seen := r.acked[k]
	switch {
	case seen && prev != id:
		r.unexpected = append(r.unexpected, fmt.Sprintf("key %s: acknowledged as event %d, later as event %d", k, prev, id))
	case seen && !res.Duplicate:
		r.unexpected = append(r.unexpected, fmt.Sprintf("key %s: acknowledged as event %d, replay answered duplicate:false (charged twice?)", k, id))
	case seen:
		r.replays++
	case retry && res.Duplicate:
		r.retriedDup++ // the lost call had committed before the crash
	case retry:
		r.retriedNew++ // the lost call had not committed
	case res.Duplicate:
		r.unexpected = append(r.unexpected, fmt.Sprintf("key %s: first ever call answered duplicate:true (event %d)", k, id))
	default:
		r.freshAcks++
	}
	if !seen {
		r.acked[k] = id
	}
	delete(r.unknown, k)
	return true
}

func decEq(s string, n int64) bool {
	d, err := decimal.NewFromString(s)
	return err == nil && d.Equal(decimal.NewFromInt(n))
}

// load runs every worker until ph stops: first the keys it has pending
// (same payload, after the restart), then fresh keys; fresh < 0 means
// unlimited. It returns when every worker has returned.
func (r *run) load(ph *phase, ws []*worker, fresh int) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			pend := w.pending
			w.pending = nil
			for i, k := range pend {
				if ph.stopped() {
					w.pending = append(w.pending, pend[i:]...)
					return
				}
				if !r.attempt(ph, k, true) {
					w.pending = append(w.pending, k)
					time.Sleep(r.failPause)
				}
			}
			for n := 0; fresh < 0 || n < fresh; n++ {
				if ph.stopped() || w.next >= maxKeysPerWorker {
					return
				}
				k := key(w.id, w.next)
				w.next++
				if !r.attempt(ph, k, false) {
					w.pending = append(w.pending, k)
					time.Sleep(r.failPause)
				}
			}
		})
	}
	wg.Wait()
}

func pendingCount(ws []*worker) int {
	n := 0
	for _, w := range ws {
		n += len(w.pending)
	}
	return n
}

// ---------------------------------------------------------------------------
// The test proper.

func (r *run) test() {
	t := r.t
	began := time.Now()
	r.start()
	r.setup()

	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = &worker{id: i}
	}

	// 1. Load, SIGKILL at a random moment, restart; kills times.
	for k := 1; k <= kills; k++ {
		ph := newPhase()
		after := time.Duration(300+r.rng.IntN(1201)) * time.Millisecond
		retries := pendingCount(ws)
		done := make(chan struct{})
		go func() { r.load(ph, ws, -1); close(done) }()
		time.Sleep(after)
		ph.disturbed.Store(true)
		acksBefore := ph.acks.Load()
		r.kill(r.srv)
		close(ph.stop)
		<-done
		r.killed++
		lost := pendingCount(ws)
		t.Logf("SIGKILL %d/%d after %v: %d calls acknowledged in the phase (%d unknown keys retried first), %d outcomes unknown", k, kills, after, acksBefore, retries, lost)
		r.start()
	}

	// 2. After the last restart, every unknown key is retried with its
	// payload: each records once or answers duplicate:true.
	r.settle(ws)

	// 3. PostgreSQL: terminate the server's connections under load.
	if r.dialect == dialect.Postgres {
		r.terminateUnderLoad(ws)
	}

	// 4. Replays of acknowledged keys answer duplicate:true with the same event.
	r.replay()

	// 5. A clean stop, then the database itself.
	r.stop(r.srv)
	r.report()
	r.checkDatabase()

	t.Logf("figures: %d keys sent, %d acknowledged (%d first time, %d unknown keys retried and recorded then, %d unknown keys found committed before the crash: duplicate:true), %d replays answered duplicate; %d SIGKILLs survived, %d connection-termination rounds (%d backends) survived; %d calls failed while disturbed; %v",
		len(r.sent), len(r.acked), r.freshAcks, r.retriedNew, r.retriedDup, r.replays, r.killed, r.terminated, r.backends, r.disturbedFailures, time.Since(began).Round(time.Millisecond))
}

// setup creates, through the API, an organisation, its ACCOUNT pool, a
// grant and a published default register pricing the action at 1.
func (r *run) setup() {
	t := r.t
	var o struct {
		R struct{ ID string } `json:"createOrganization"`
	}
	r.must(`mutation($name: String!) { createOrganization(name: $name) { id registerName } }`,
		map[string]any{"name": "crash-" + testdb.Name(r.dialect)}, &o)
	var p struct {
		R struct{ ID string } `json:"createPool"`
	}
	r.must(`mutation($org: ID!) { createPool(organizationId: $org, kind: ACCOUNT, name: "crash account") { id } }`,
		map[string]any{"org": o.R.ID}, &p)
	var g struct {
		R struct{ ID, Remaining string } `json:"grantCredits"`
	}
	r.must(`mutation($in: GrantInput!) { grantCredits(input: $in) { id remaining } }`,
		map[string]any{"in": map[string]any{"poolId": p.R.ID, "creditType": "SUBSCRIPTION", "amount": strconv.Itoa(grantAmount)}}, &g)
	var d struct {
		R struct{ Version int } `json:"saveWeightRegisterDraft"`
	}
	r.must(`mutation($w: [WeightInput!]!) { saveWeightRegisterDraft(name: "default", weights: $w) { version } }`,
		map[string]any{"w": []map[string]any{{"action": action, "credits": "1"}}}, &d)
	var pub struct {
		R struct{ Status string } `json:"publishWeightRegister"`
	}
	r.must(`mutation($v: Int!) { publishWeightRegister(name: "default", version: $v) { status } }`,
		map[string]any{"v": d.R.Version}, &pub)
	if pub.R.Status != "PUBLISHED" || !decEq(g.R.Remaining, grantAmount) {
		t.Fatalf("setup: register %s, grant remaining %s; want PUBLISHED and %d", pub.R.Status, g.R.Remaining, grantAmount)
	}
	var err error
	for _, x := range []struct {
		s string
		p *int
	}{{o.R.ID, &r.org}, {p.R.ID, &r.pool}, {g.R.ID, &r.grant}} {
		if *x.p, err = strconv.Atoi(x.s); err != nil {
			t.Fatalf("setup: id %q: %v", x.s, err)
		}
	}
	t.Logf("setup: organization %d, pool %d, grant %d of %d, register default v%d", r.org, r.pool, r.grant, grantAmount, d.R.Version)
}

// settle retries every pending key against the running server until each
// is acknowledged (bounded).
func (r *run) settle(ws []*worker) {
	deadline := time.Now().Add(15 * time.Second)
	for pendingCount(ws) > 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d keys still unknown after retrying for 15 s", pendingCount(ws))
		}
		r.load(newPhase(), ws, 0)
	}
}

// terminateUnderLoad runs load while terminating every connection the
// server holds to its database, several times; the server must recover by
// itself: the same process answers again, and afterwards calls succeed.
func (r *run) terminateUnderLoad(ws []*worker) {
	t := r.t
	admin, err := sql.Open("postgres", testdb.AdminURL())
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	defer admin.Close()
	admin.SetMaxOpenConns(1)
	dbName := r.url[strings.LastIndex(r.url, "/")+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}
	pid := r.srv.cmd.Process.Pid

	ph := newPhase()
	done := make(chan struct{})
	go func() { r.load(ph, ws, -1); close(done) }()
	time.Sleep(300 * time.Millisecond)
	ph.disturbed.Store(true)
	var lastTerm time.Time
	for i := 1; i <= terminations; i++ {
		var n int
		err := admin.QueryRowContext(t.Context(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName).Scan(&n)
		if err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		if n == 0 {
			t.Errorf("termination %d found no connection of the server to %s", i, dbName)
		}
		lastTerm = time.Now()
		r.terminated++
		r.backends += n
		t.Logf("pg_terminate_backend round %d/%d: %d server connections terminated", i, terminations, n)
		time.Sleep(time.Duration(200+r.rng.IntN(400)) * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond)
	close(ph.stop)
	<-done
	t.Logf("connection terminations: %d calls acknowledged in the phase, %d failed during the blips", ph.acks.Load(), ph.failures.Load())

	if !r.srv.running() || r.srv.cmd.Process.Pid != pid {
		t.Fatalf("creditd exited after its connections were terminated: %v; log:\n%s", r.srv.waitErr, tail(r.srv.log, 4000))
	}
	// Recovery, without a restart: the failed keys are retried and then
	// fresh load succeeds call after call (any failure now is unexpected).
	recovered := time.Now()
	r.settle(ws)
	steady := newPhase()
	r.load(steady, ws, 25)
	if got := steady.acks.Load(); got != 25*workers {
		t.Errorf("after the terminations: %d of %d fresh calls acknowledged", got, 25*workers)
	}
	t.Logf("recovered: lost calls retried and %d fresh calls succeeded %v after the last termination (%v of retries)",
		steady.acks.Load(), time.Since(lastTerm).Round(time.Millisecond), time.Since(recovered).Round(time.Millisecond))
	if !r.srv.running() {
		t.Fatalf("creditd exited: %v", r.srv.waitErr)
	}
}

// replay sends again every key that was ever unknown and a sample of the
// others: each must answer duplicate:true naming the same event.
func (r *run) replay() {
	r.mu.Lock()
	var keys []string
	for k, n := range r.sent {
		if n > 1 || r.rng.IntN(20) == 0 {
			keys = append(keys, k)
		}
	}
	r.mu.Unlock()
	sort.Strings(keys)
	if len(keys) > 600 {
		r.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		keys = keys[:600]
	}
	ph := newPhase()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				r.attempt(ph, keys[i], true)
			}
		})
	}
	wg.Wait()
	r.t.Logf("replayed %d keys", len(keys))
}

func (r *run) report() {
	t := r.t
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, u := range r.unexpected {
		if i == 20 {
			t.Errorf("... and %d more unexpected answers", len(r.unexpected)-20)
			break
		}
		t.Error(u)
	}
	if len(r.unknown) > 0 {
		t.Errorf("%d keys were never acknowledged", len(r.unknown))
	}
	var kinds []string
	for m, n := range r.disturbanceErrors {
		kinds = append(kinds, fmt.Sprintf("%5d × %s", n, m))
	}
	sort.Strings(kinds)
	t.Logf("failures while disturbed (expected), by kind:\n  %s", strings.Join(kinds, "\n  "))
}

// checkDatabase opens the database directly once the server is gone.
func (r *run) checkDatabase() {
	t := r.t
	ctx := t.Context()
	db, err := store.OpenWith(ctx, r.url, store.Options{MaxConns: testConns})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	defer db.Close()

	events, err := db.Client.UsageEvent.Query().All(ctx)
	if err != nil {
		t.Fatalf("usage events: %v", err)
	}
	byKey := map[string][]int{}
	charged := decimal.Zero
	for _, e := range events {
		byKey[e.IdempotencyKey] = append(byKey[e.IdempotencyKey], e.ID)
		charged = charged.Add(e.Credits)
		if _, ok := r.sent[e.IdempotencyKey]; !ok {
			t.Errorf("phantom usage event %d: key %q was never sent", e.ID, e.IdempotencyKey)
		}
		if e.OrganizationID != r.org || e.PoolID != r.pool || e.Action != action || e.Decision != credit.DecisionAllowed || !e.Credits.Equal(decimal.NewFromInt(1)) {
			t.Errorf("event %d (%s): organization %d pool %d action %q decision %s credits %s; want %d, %d, %q, ALLOWED, 1",
				e.ID, e.IdempotencyKey, e.OrganizationID, e.PoolID, e.Action, e.Decision, e.Credits, r.org, r.pool, action)
		}
	}
	for k, ids := range byKey {
		if len(ids) != 1 {
			t.Errorf("key %s has %d usage events %v, want exactly one", k, len(ids), ids)
		}
	}
	missing := 0
	for k, id := range r.acked {
		ids := byKey[k]
		switch {
		case len(ids) == 0:
			if missing++; missing <= 20 {
				t.Errorf("acknowledged key %s (event %d) has no usage event: lost", k, id)
			}
		case ids[0] != id:
			t.Errorf("acknowledged key %s answered event %d, the database holds %v", k, id, ids)
		}
	}
	if missing > 20 {
		t.Errorf("... %d acknowledged keys lost in all", missing)
	}
	if len(events) != len(r.acked) {
		t.Errorf("%d usage events in the database, %d keys acknowledged; every sent key was retried until acknowledged, so they must match", len(events), len(r.acked))
	}

	g, err := db.Client.Grant.Get(ctx, r.grant)
	if err != nil {
		t.Fatalf("grant %d: %v", r.grant, err)
	}
	want := decimal.NewFromInt(grantAmount - int64(len(events)))
	if !g.Remaining.Equal(want) {
		t.Errorf("grant %d remaining %s, want %d - %d events = %s", g.ID, g.Remaining, grantAmount, len(events), want)
	}
	if !charged.Equal(decimal.NewFromInt(int64(len(events)))) {
		t.Errorf("events charged %s in all, want %d", charged, len(events))
	}
	violations, err := ledger.New(db).Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, v := range violations {
		t.Errorf("ledger invariant broken: %s", v)
	}
	t.Logf("database: %d usage events, grant remaining %s, %d invariant violations", len(events), g.Remaining, len(violations))
}
