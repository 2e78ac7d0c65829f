package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}

func TestVerifyFreshDatabase(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "fresh.db")
	out, err := runCmd(t, "verify", "--database-url", url)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "no invariant broken") {
		t.Fatalf("want a clean report, got:\n%s", out)
	}
	if !regexp.MustCompile(`organisations\s+0\n`).MatchString(out) {
		t.Fatalf("want the counts checked, got:\n%s", out)
	}
}

// usageDB records usage through the ledger package: a grant, a register,
// single events and a run.
func usageDB(t *testing.T, url string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenMigratedWith(ctx, url, store.Options{MaxConns: testdb.MaxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := ledger.New(db)
	org, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: pool.ID, CreditType: credit.CreditOnDemand, Amount: d("100")}); err != nil {
		t.Fatal(err)
	}
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		in := engine.UsageInput{IdempotencyKey: "k" + strconv.Itoa(i), OrganizationID: org.ID, Action: "agent.run", Status: credit.StatusSucceeded}
		if _, err := svc.RecordUsage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []credit.UsageStatus{credit.StatusStarted, credit.StatusSucceeded} {
		in := engine.UsageInput{IdempotencyKey: "run-" + string(st), OrganizationID: org.ID, RunID: "run-1", Action: "agent.run", Status: st}
		if _, err := svc.RecordUsage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// More than the balance left: denied, still recorded.
	big := d("1000")
	if _, err := svc.RecordUsage(ctx, engine.UsageInput{IdempotencyKey: "too-big", OrganizationID: org.ID, Action: "agent.run", Status: credit.StatusSucceeded, Quantity: &big}); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestVerifyAfterUsage(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "usage.db")
	usageDB(t, url)
	out, err := runCmd(t, "verify", "--database-url", url)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "no invariant broken") {
		t.Fatalf("want a clean report, got:\n%s", out)
	}
	for _, want := range []string{`organisations\s+1\n`, `grants\s+1\n`, `usage events\s+8\n`, `holds\s+1\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyReportsViolations(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "broken.db")
	db := usageDB(t, url)
	// Credits appear from nowhere: remaining no longer matches the entries.
	if _, err := db.SQL.Exec(`UPDATE grants SET remaining = remaining + 1`); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "verify", "--database-url", url)
	if err == nil {
		t.Fatalf("verify of a broken ledger succeeded:\n%s", out)
	}
	if !strings.Contains(out, "violation: grant balance") || !regexp.MustCompile(`\n\d+ invariant violations?\n`).MatchString(out) {
		t.Fatalf("want each violation and their number, got:\n%s", out)
	}
	if strings.Contains(out, "no invariant broken") {
		t.Fatalf("broken ledger reported clean:\n%s", out)
	}
	t.Logf("creditd verify on a broken ledger:\n%s", out)
}

func TestLoadtestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com:8080", "http://192.168.1.1", "ftp://127.0.0.1", "http://[2001:db8::1]:8080"} {
		out, err := runCmd(t, "loadtest", "--url", u, "--key", "k", "--duration", "1s")
		if err == nil {
			t.Errorf("loadtest --url %s: want an error, got none:\n%s", u, out)
		}
	}
	for _, h := range []string{"127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1"} {
		if !isLoopbackHost(h) {
			t.Errorf("isLoopbackHost(%q) = false", h)
		}
	}
	for _, h := range []string{"10.0.0.1", "128.0.0.1", "0.0.0.0", "localhost.example.com", "::", ""} {
		if isLoopbackHost(h) {
			t.Errorf("isLoopbackHost(%q) = true", h)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix(defaultMix)
	if err != nil || m != [nOps]int{60, 10, 20, 10} {
		t.Fatalf("parseMix(default) = %v, %v", m, err)
	}
	if m, err := parseMix("balance=1"); err != nil || m != [nOps]int{0, 0, 0, 1} {
		t.Fatalf("parseMix(balance=1) = %v, %v", m, err)
	}
	for _, bad := range []string{"", "single=0", "single=-1", "nope=3", "single", "single=x"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q): want an error", bad)
		}
	}
}

// TestLoadtestEndToEnd serves the API in-process and runs the load test
// against it, then checks the ledger. It asserts outcomes (every kind ran,
// nothing failed, the ledger holds), never speed: the run is a number of
// operations, so a busy machine only makes it slower.
func TestLoadtestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("load test takes seconds")
	}
	for _, dia := range testdb.Dialects {
		t.Run(testdb.Name(dia), func(t *testing.T) {
			ctx := context.Background()
			url := testdb.NewURL(t, dia)
			db, err := store.OpenMigratedWith(ctx, url, store.Options{MaxConns: testdb.MaxConns})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			svc := ledger.New(db)
			srv := httptest.NewServer(graph.NewHandler(svc, db, graph.Options{RateLimit: -1}))
			defer srv.Close()
			_, key, err := svc.CreateKey(ctx, ledger.KeyInput{Name: "loadtest", Role: credit.RoleOperator})
			if err != nil {
				t.Fatal(err)
			}

			// 24 operations in the fixed order single, batch, run, balance,
			// ...: six of each, whatever the machine's speed.
			out, err := runCmd(t, "loadtest", "--url", srv.URL, "--key", key, "--ops", "24", "--concurrency", "4", "--orgs", "3",
				"--batch", "10", "--mix", "single=1,batch=1,run=1,balance=1")
			if err != nil {
				t.Fatalf("loadtest: %v\n%s", err, out)
			}
			t.Logf("loadtest output:\n%s", out)
			if !strings.Contains(out, "errors: none") {
				t.Errorf("want no errors:\n%s", out)
			}
			wantEvents := map[string]int{"single": 6, "batch": 60, "run": 12, "balance": 0}
			for _, kind := range opNames {
				m := regexp.MustCompile(`(?m)^\s*` + kind + `\s+(\d+)\s+(\d+)\s+\S+\s+(\d+)\s`).FindStringSubmatch(out)
				if m == nil {
					t.Errorf("no %s row in the report:\n%s", kind, out)
					continue
				}
				if m[1] != "6" || m[2] != "0" || m[3] != strconv.Itoa(wantEvents[kind]) {
					t.Errorf("%s: %s operations, %s errors, %s events; want 6, 0, %d", kind, m[1], m[2], m[3], wantEvents[kind])
				}
			}

			// A second run reuses the published register.
			out, err = runCmd(t, "loadtest", "--url", srv.URL, "--key", key, "--ops", "4", "--concurrency", "2", "--orgs", "1", "--mix", "single=1")
			if err != nil || !strings.Contains(out, "errors: none") || !strings.Contains(out, "in effect") {
				t.Fatalf("second loadtest: %v\n%s", err, out)
			}

			if v, err := svc.Verify(ctx); err != nil || len(v) > 0 {
				t.Fatalf("Verify: %v %v", v, err)
			}
			out, err = runCmd(t, "verify", "--database-url", url)
			if err != nil || !strings.Contains(out, "no invariant broken") {
				t.Fatalf("verify: %v\n%s", err, out)
			}
		})
	}
}

func TestInterleave(t *testing.T) {
	for _, c := range []struct {
		mix  [nOps]int
		want []int
	}{
		{[nOps]int{1, 1, 1, 1}, []int{opSingle, opBatch, opRun, opBalance}},
		{[nOps]int{60, 10, 20, 10}, nil}, // checked by counts below
		{[nOps]int{0, 0, 0, 5}, []int{opBalance}},
	} {
		got := interleave(c.mix)
		if c.want != nil && !slices.Equal(got, c.want) {
			t.Errorf("interleave(%v) = %v, want %v", c.mix, got, c.want)
		}
		var n [nOps]int
		for _, k := range got {
			n[k]++
		}
		g := 0
		for _, w := range c.mix {
			g = gcd(g, w)
		}
		for k, w := range c.mix {
			if n[k] != w/g {
				t.Errorf("interleave(%v): kind %s %d times, want %d", c.mix, opNames[k], n[k], w/g)
			}
		}
	}
}

func TestKPIsCommand(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "kpis.db")
	usageDB(t, url)
	day := func(n int) string { return time.Now().UTC().AddDate(0, 0, n).Format("2006-01-02") }
	out, err := runCmd(t, "kpis", "--database-url", url, "--from", day(-1), "--to", day(1), "--group-by", "organization")
	if err != nil {
		t.Fatalf("kpis: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// A header, Acme's row, the totals: 100 granted, 12 burned (5 x 2 and a run of 2).
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "month,segment,plan_id,organization_id,committed_pool_arr,burned,") ||
		!strings.HasPrefix(lines[1], ",,,1,0,12,0,100,") || !strings.HasPrefix(lines[2], "total,,,,0,12,0,100,") {
		t.Fatalf("kpis printed:\n%s", out)
	}
	if out, err := runCmd(t, "kpis", "journal", "--database-url", url, "--from", day(-1), "--to", day(1)); err != nil ||
		!strings.HasPrefix(out, "period,account,cause,debit,credit,currency\n") {
		t.Fatalf("kpis journal: %v\n%s", err, out)
	}
	for _, bad := range [][]string{{"kpis", "--to", day(1)}, {"kpis", "--from", "yesterday", "--to", day(1)},
		{"kpis", "--from", day(-1), "--to", day(1), "--group-by", "team"}} {
		if _, err := runCmd(t, append(bad, "--database-url", url)...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// The example playbook through the CLI and a server: diff plans it, apply
// applies it, a second diff finds nothing to change, export reads back.
func TestPlaybookCommand(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "playbook.db")
	db, err := store.OpenMigratedWith(ctx, url, store.Options{MaxConns: testdb.MaxConns})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := ledger.New(db)
	srv := httptest.NewServer(graph.NewHandler(svc, db, graph.Options{RateLimit: -1}))
	defer srv.Close()
	_, key, err := svc.CreateKey(ctx, ledger.KeyInput{Name: "pricing", Role: credit.RolePricing})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("..", "..", "examples", "agent-vendor.playbook.yaml")
	out, err := runCmd(t, "playbook", "diff", file, "--url", srv.URL, "--key", key)
	if err != nil || !strings.Contains(out, "REGISTER agents") || !strings.Contains(out, "planned only") {
		t.Fatalf("diff: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "playbook", "apply", file, "--url", srv.URL, "--key", key); err != nil || !strings.HasSuffix(out, "applied\n") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = runCmd(t, "playbook", "diff", file, "--url", srv.URL, "--key", key)
	if err != nil || strings.Contains(out, "CREATE") || strings.Contains(out, "NEW_VERSION") {
		t.Fatalf("a second diff: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "playbook", "export", "--url", srv.URL, "--key", key); err != nil || !strings.Contains(out, "agents-business") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "playbook", "apply", "--url", srv.URL); err == nil {
		t.Fatal("apply without a file: no error")
	}
}
