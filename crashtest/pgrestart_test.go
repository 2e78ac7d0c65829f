package crashtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
)

const (
	pgCtlTimeout   = 30 * time.Second // one initdb or pg_ctl command
	recoverTimeout = 15 * time.Second // PostgreSQL is back: the server must answer by then
	restartPause   = 1500 * time.Millisecond
)

// TestPostgresRestart restarts PostgreSQL itself under concurrent
// recordUsage load while the same creditd process keeps running: a fast
// restart, an immediate one (crash-like: WAL recovery at start) and a stop,
// a pause and a start. After each, the server must answer again by itself;
// every call whose outcome was lost is retried with the same payload, fresh
// calls must all succeed, and at the end the database is checked directly.
//
// The cluster is private (initdb into a temporary directory, on a free
// loopback port): the shared PostgreSQL other packages test against is
// never restarted.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL restart test runs a private cluster and the real server; skipped with -short")
	}
	began := time.Now()
	c := newCluster(t)
	seed := testSeed(t)
	bin := buildServer(t)
	c.createDatabase("creditd")

	r := newRun(t, bin, dialect.Postgres, c.url("creditd"), seed, 7)
	r.failPause = 20 * time.Millisecond
	r.start()
	r.setup()
	pid := r.srv.cmd.Process.Pid

	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = &worker{id: i}
	}
	restarts := []struct {
		name string
		do   func() error
	}{
		{"pg_ctl restart -m fast", func() error { return c.ctl("restart", "-m", "fast") }},
		{"pg_ctl restart -m immediate (crash recovery)", func() error { return c.ctl("restart", "-m", "immediate") }},
		{fmt.Sprintf("pg_ctl stop -m fast, %v down, pg_ctl start", restartPause), func() error {
			if err := c.ctl("stop", "-m", "fast"); err != nil {
				return err
			}
			time.Sleep(restartPause)
			return c.ctl("start")
		}},
	}
	var survived int
	var recoveries []string
	for i, rs := range restarts {
		rec := r.restartUnderLoad(ws, i+1, len(restarts), rs.name, rs.do)
		if r.srv.cmd.Process.Pid != pid || !r.srv.running() {
			t.Fatalf("the creditd process changed or exited (%v): it must survive a PostgreSQL restart", r.srv.waitErr)
		}
		survived++
		recoveries = append(recoveries, rec.Round(time.Millisecond).String())
	}

	r.replay()
	r.stop(r.srv)
	r.report()
	r.checkDatabase()

	t.Logf("figures: %d PostgreSQL restarts survived by creditd pid %d without a restart of its own (recovery %s after PostgreSQL was back); %d keys sent, %d acknowledged (%d first time, %d unknown keys retried and recorded then, %d unknown keys found committed before the restart: duplicate:true), %d replays answered duplicate; %d calls failed while PostgreSQL was restarting; %v",
		survived, pid, strings.Join(recoveries, ", "), len(r.sent), len(r.acked), r.freshAcks, r.retriedNew, r.retriedDup, r.replays, r.disturbedFailures, time.Since(began).Round(time.Millisecond))
}

// restartUnderLoad runs load, restarts PostgreSQL with do, and proves the
// same server process recovers: calls are acknowledged again within
// recoverTimeout of PostgreSQL accepting connections, every call whose
// outcome was lost is retried with its payload until acknowledged, and then
// fresh calls all succeed. It returns the recovery time.
func (r *run) restartUnderLoad(ws []*worker, n, of int, name string, do func() error) time.Duration {
	t := r.t
	ph := newPhase()
	done := make(chan struct{})
	go func() { r.load(ph, ws, -1); close(done) }()
	time.Sleep(time.Duration(300+r.rng.IntN(500)) * time.Millisecond)
	ph.disturbed.Store(true)
	acksBefore := ph.acks.Load()
	failsBefore := r.disturbedFailureKinds()

	began := time.Now()
	err := do()
	ready := time.Now()
	if err != nil {
		close(ph.stop)
		<-done
		t.Fatalf("restart %d/%d (%s): %v", n, of, name, err)
	}
	// PostgreSQL accepts connections again. Recovery: every worker's worth
	// of calls acknowledged after this moment.
	acksAtReady, failsAtReady := ph.acks.Load(), ph.failures.Load()
	deadline := ready.Add(recoverTimeout)
	for ph.acks.Load()-acksAtReady < workers {
		if !r.srv.running() || time.Now().After(deadline) {
			close(ph.stop)
			<-done
			t.Fatalf("creditd did NOT recover by itself after %s: %d calls acknowledged in the %v since PostgreSQL accepted connections again (process running: %v).\nFailures since the restart, by kind:\n  %s\ncreditd log:\n%s",
				name, ph.acks.Load()-acksAtReady, time.Since(ready).Round(time.Millisecond), r.srv.running(),
				strings.Join(diffKinds(failsBefore, r.disturbedFailureKinds()), "\n  "), tail(r.srv.log, 4000))
		}
		time.Sleep(2 * time.Millisecond)
	}
	recovery := time.Since(ready)
	failsAfterReady := ph.failures.Load() - failsAtReady
	time.Sleep(400 * time.Millisecond) // load on the recovered server
	close(ph.stop)
	<-done
	lost := pendingCount(ws)
	t.Logf("restart %d/%d, %s: %d calls acknowledged before it, PostgreSQL down %v, creditd answering again %v later; %d calls acknowledged in the phase, %d failed (%d of them once PostgreSQL was back), %d outcomes unknown; failures by kind:\n  %s",
		n, of, name, acksBefore, ready.Sub(began).Round(time.Millisecond), recovery.Round(time.Millisecond),
		ph.acks.Load(), ph.failures.Load(), failsAfterReady, lost, strings.Join(diffKinds(failsBefore, r.disturbedFailureKinds()), "\n  "))

	// The lost calls, again with the same payload and key; then fresh calls,
	// every one of which must succeed (any failure now is unexpected).
	retried := time.Now()
	newBefore, dupBefore := r.retriedNew, r.retriedDup
	r.settle(ws)
	steady := newPhase()
	r.load(steady, ws, 25)
	if got := steady.acks.Load(); got != 25*workers {
		t.Errorf("after %s: %d of %d fresh calls acknowledged", name, got, 25*workers)
	}
	t.Logf("restart %d/%d recovered: %d unknown keys retried (%d recorded then, %d had committed: duplicate:true) and %d fresh calls succeeded, %v after PostgreSQL was back (%v of retries)",
		n, of, lost, r.retriedNew-newBefore, r.retriedDup-dupBefore, steady.acks.Load(),
		time.Since(ready).Round(time.Millisecond), time.Since(retried).Round(time.Millisecond))
	return recovery
}

// disturbedFailureKinds copies the count of failures by kind.
func (r *run) disturbedFailureKinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.disturbanceErrors))
	for k, v := range r.disturbanceErrors {
		m[k] = v
	}
	return m
}

// diffKinds lists the failures of after that are not in before.
func diffKinds(before, after map[string]int) []string {
	var out []string
	for m, n := range after {
		if d := n - before[m]; d > 0 {
			out = append(out, fmt.Sprintf("%5d × %s", d, m))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = []string{"(none)"}
	}
	return out
}

// ---------------------------------------------------------------------------
// A private PostgreSQL cluster.

type cluster struct {
	t       *testing.T
	bin     string // directory of initdb, pg_ctl and postgres
	version string
	dir     string // owned by the cluster's OS user: data/, the socket, the log
	data    string
	log     string
	port    int
	cred    *syscall.Credential // run as this user (when the test runs as root)
}

// unavailable skips (loudly) or, under CI=true, fails.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL restart test needs a private cluster under CI=true: %s", msg)
	}
	t.Skipf("SKIPPING the PostgreSQL restart test: %s. Install the PostgreSQL server binaries (initdb, pg_ctl, postgres) or set CREDITD_TEST_PG_BIN. Under CI=true this fails.", msg)
}

// findPostgresBin returns the directory holding initdb, pg_ctl and
// postgres: $CREDITD_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin,
// else the directory of pg_ctl on $PATH.
func findPostgresBin() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("CREDITD_TEST_PG_BIN"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("CREDITD_TEST_PG_BIN=%s lacks initdb, pg_ctl or postgres", d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { // newest major version first
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb, pg_ctl and postgres under /usr/lib/postgresql/*/bin or on $PATH")
}

// newCluster initdbs a cluster into a fresh temporary directory and starts
// it on a free loopback port. It is stopped (immediate) and removed when the
// test ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin, err := findPostgresBin()
	if err != nil {
		unavailable(t, "%v", err)
	}
	c := &cluster{t: t, bin: bin}
	if out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output(); err == nil {
		c.version = strings.TrimSpace(string(out))
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "running as root and there is no postgres OS user to run PostgreSQL as (%v)", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is private (0700) to the test's user. The
	// cluster's user must be able to reach its directory.
	c.dir, err = os.MkdirTemp("", "creditd-pg-")
	if err != nil {
		t.Fatalf("cluster directory: %v", err)
	}
	t.Cleanup(c.cleanup)
	if c.cred != nil {
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatalf("chown %s to postgres: %v", c.dir, err)
		}
		for d := filepath.Dir(c.dir); ; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
				t.Fatalf("%s is not traversable by the postgres user (mode %v, %v): set TMPDIR to a directory it can reach", d, fi.Mode(), err)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	c.data = filepath.Join(c.dir, "data")
	c.log = filepath.Join(c.dir, "postgres.log")

	start := time.Now()
	if out, err := c.output("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb (%s): %v\n%s", c.version, err, out)
	}
	conf := fmt.Sprintf(`
# crashtest: a private cluster, restarted under load
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 16MB
max_connections = 100
log_min_messages = warning
`, c.dir)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("postgresql.conf: %v", err)
	}
	// A free port, retried if another process takes it first.
	for attempt := 1; ; attempt++ {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		c.port, _ = strconv.Atoi(p)
		err := c.ctl("start")
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(tail(c.log, 4000), "could not bind") {
			t.Fatalf("start the private PostgreSQL: %v", err)
		}
	}
	t.Logf("private PostgreSQL (%s) in %s on 127.0.0.1:%d, up in %v", c.version, c.dir, c.port, time.Since(start).Round(time.Millisecond))
	return c
}

// output runs one of the cluster's programs as its OS user and returns
// its combined output.
func (c *cluster) output(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgCtlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.WaitDelay = 5 * time.Second // the postmaster writes to -l, never to our pipe
	env := []string{"LC_ALL=C", "TZ=UTC", "HOME=" + c.dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// ctl runs pg_ctl action (start, stop, restart) on the cluster, waiting for
// it to complete.
func (c *cluster) ctl(action string, args ...string) error {
	all := []string{action, "-D", c.data, "-l", c.log, "-w", "-t", strconv.Itoa(int(pgCtlTimeout/time.Second) - 5)}
	if action == "start" {
		all = append(all, "-o", "-p "+strconv.Itoa(c.port))
	}
	all = append(all, args...)
	if out, err := c.output("pg_ctl", all...); err != nil {
		return fmt.Errorf("pg_ctl %s: %v\n%s\nPostgreSQL log:\n%s", strings.Join(all, " "), err, out, tail(c.log, 3000))
	}
	return nil
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *cluster) createDatabase(name string) {
	t := c.t
	admin, err := sql.Open("postgres", c.url("postgres"))
	if err != nil {
		t.Fatalf("private PostgreSQL: %v", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
}

// cleanup stops the cluster (immediate: nothing of it needs to last),
// killing the postmaster if pg_ctl cannot, and removes its directory.
func (c *cluster) cleanup() {
	t := c.t
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		if out, err := c.output("pg_ctl", "stop", "-D", c.data, "-m", "immediate", "-w", "-t", "20"); err != nil {
			t.Errorf("pg_ctl stop -m immediate: %v\n%s", err, out)
			if b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil && pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("private PostgreSQL log (tail):\n%s", tail(c.log, 3000))
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("remove %s: %v", c.dir, err)
	}
}
