package crashtest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/subscription"
	"github.com/creditd/creditd/ent/subscriptionperiod"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// The period-close crash test: a backlog of due subscription periods, the
// real server catching up on it, SIGKILLed at random moments.
const (
	pcPlan       = "crash-daily"
	pcIncluded   = 10 // credits allocated per period
	pcRolloverCp = 15 // CAPPED rollover: at most this many credits roll into a period
	pcFee        = "5"
	pcDays       = 40 // periods 0..pcDays are due at start: period 0 opens at subscribe
	pcKills      = 3  // SIGKILLs of a lone server
	pcCloseEvery = 200 * time.Millisecond
	pcCatchUp    = 60 * time.Second // the whole backlog must be opened by then
	pcPoll       = 5 * time.Millisecond
)

// pcOrgs is the number of subscribed organisations per dialect, sized so
// that a catch-up takes a few seconds (measured: ~650 periods/s on
// PostgreSQL, ~1700 on SQLite) and each kill lands mid-work.
var pcOrgs = map[string]int{dialect.Postgres: 200, dialect.SQLite: 200}

// TestPeriodCloseCrash proves the period-close job exactly-once under
// SIGKILL: organisations subscribed pcDays days ago to a daily plan leave a
// backlog of due periods; the real server (--period-close-every 200ms)
// catches up on it and is SIGKILLed at random moments of the catch-up and
// restarted on the same database, and on PostgreSQL two servers race on
// the backlog and one is killed. Once nothing is due, the database must
// hold every period exactly once, with its allocation, rollover, expiry and
// platform fee exactly once, and the ledger invariants must hold.
func TestPeriodCloseCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("period-close crash test builds and kills the real server; skipped with -short")
	}
	seed := testSeed(t)
	bin := buildServer(t)
	for i, d := range testdb.Dialects {
		t.Run(testdb.Name(d), func(t *testing.T) {
			pc := &periodCloseRun{run: newRun(t, bin, d, testdb.NewURL(t, d), seed, 100+uint64(i)), orgs: pcOrgs[d], days: pcDays}
			pc.closeEvery = pcCloseEvery
			pc.test()
		})
	}
}

type periodCloseRun struct {
	*run
	orgs, days int
	planID     int
	mon        *store.DB // the test's own handle to watch progress; nil when closed

	servers []*pcServer
}

// pcServer is one server process of the run: when it started and, if it was
// SIGKILLed, when, and how many periods the test saw opened then.
type pcServer struct {
	label   string
	srv     *server
	started time.Time
	killed  time.Time // zero: not killed
	alone   bool      // the only server running when it was killed
	polled  int       // periods opened at the last poll before the kill
	opened  int       // periods this process opened (counted at the end)
	total   int       // periods opened in all by the kill (counted at the end when alone)
}

func (pc *periodCloseRun) total() int { return pc.orgs * (pc.days + 1) }

// model is what the plan's rules give, period by period, for a pool that
// uses nothing: the credits rolled into period n and those expiring at its
// start (CAPPED: every ending SUBSCRIPTION and ROLLOVER credit rolls, up to
// the cap in all).
func model(n int) (rolled, expired decimal.Decimal) {
	r := decimal.Zero
	e := decimal.Zero
	for k := 1; k <= n; k++ {
		ending := r.Add(decimal.NewFromInt(pcIncluded))
		r = decimal.Min(ending, decimal.NewFromInt(pcRolloverCp))
		e = ending.Sub(r)
	}
	return r, e
}

func (pc *periodCloseRun) test() {
	t := pc.t
	began := time.Now()
	pc.setup()

	t.Cleanup(pc.closeMon)
	nKills := pcKills
	if pc.dialect == dialect.Postgres {
		nKills++ // one of the two racing replicas
	}

	// 1. A lone server, killed mid catch-up and restarted, pcKills times.
	catchUp := time.Now()
	for k := 1; k <= pcKills; k++ {
		s := pc.startServer(fmt.Sprintf("lone server %d", k))
		pc.killAfterProgress(fmt.Sprintf("SIGKILL %d/%d", k, nKills), s)
	}

	// 2. PostgreSQL: two replicas race on the same subscriptions; one is
	// killed mid-work, the other carries on to the end.
	var last *pcServer
	if pc.dialect == dialect.Postgres {
		a := pc.startServer("replica A")
		b := pc.startServer("replica B")
		victim, survivor := a, b
		if pc.rng.IntN(2) == 1 {
			victim, survivor = b, a
		}
		pc.killAfterProgress(fmt.Sprintf("SIGKILL %d/%d (%s, racing %s)", nKills, nKills, victim.label, survivor.label), victim)
		if !survivor.srv.running() {
			t.Fatalf("%s exited: %v; log:\n%s", survivor.label, survivor.srv.waitErr, tail(survivor.srv.log, 4000))
		}
		last = survivor
	} else {
		last = pc.startServer("last server")
	}

	// 3. The last server catches up; a few more ticks change nothing.
	pc.waitCaughtUp(last.srv)
	caughtUp := time.Since(catchUp)
	before := pc.openedNow()
	time.Sleep(3 * pcCloseEvery)
	if after := pc.openedNow(); after != before {
		t.Errorf("after the catch-up, more ticks opened %d more periods (%d -> %d)", after-before, before, after)
	}
	pc.closeMon()
	pc.stop(last.srv)

	// 4. The database itself.
	pc.checkDatabase()

	var by, at []string
	kills := 0
	for _, s := range pc.servers {
		by = append(by, fmt.Sprintf("%s %d", s.label, s.opened))
		if !s.killed.IsZero() {
			kills++
			if s.alone {
				at = append(at, fmt.Sprintf("%d", s.total))
			} else {
				at = append(at, fmt.Sprintf("≥%d", s.total))
			}
		}
	}
	t.Logf("figures: %d organisations × %d daily periods = %d periods (%d opened at subscribe, %d due: opened by the servers: %s); %d SIGKILLs survived, periods opened by each kill: %s of %d; %d server starts; caught up %v after the first start; %v in all",
		pc.orgs, pc.days+1, pc.total(), pc.orgs, pc.orgs*pc.days, strings.Join(by, ", "), kills, strings.Join(at, ", "), pc.total(), len(pc.servers),
		caughtUp.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// setup creates, in-process and before any server runs, the register, the
// daily plan and the subscribed organisations, started pcDays days ago
// (and a minute): periods 1..pcDays of each are due, period 0 opened at
// subscribe.
func (pc *periodCloseRun) setup() {
	t := pc.t
	ctx := t.Context()
	began := time.Now()
	db, err := store.OpenMigratedWith(ctx, pc.url, store.Options{MaxConns: testdb.MaxConns})
	if err != nil {
		t.Fatalf("store.OpenMigrated: %v", err)
	}
	defer db.Close()
	svc := ledger.New(db)
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: action, Credits: decimal.NewFromInt(1)}})
	if err != nil {
		t.Fatalf("register draft: %v", err)
	}
	if _, err := svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		t.Fatalf("publish register: %v", err)
	}
	cp := decimal.NewFromInt(pcRolloverCp)
	p, err := svc.CreatePlan(ctx, ledger.PlanInput{Name: pcPlan, Period: credit.PeriodDay,
		IncludedCredits: decimal.NewFromInt(pcIncluded), PricePerCredit: decimal.RequireFromString("0.01"),
		PlatformFee: decimal.RequireFromString(pcFee), RegisterName: "default", OverageMode: credit.OverageHard,
		RolloverMode: credit.RolloverCapped, RolloverCap: &cp})
	if err != nil {
		t.Fatalf("create plan: %v", err)
	}
	pc.planID = p.ID
	start := time.Now().UTC().AddDate(0, 0, -pc.days).Add(-time.Minute)

	workers := 1
	if pc.dialect == dialect.Postgres {
		workers = 8
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				err := func() error {
					o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: fmt.Sprintf("period-crash-%03d", i), Segment: "smb"})
					if err != nil {
						return err
					}
					if _, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "account"}); err != nil {
						return err
					}
					_, err = svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: o.ID, PlanID: p.ID, StartsAt: start, Backfill: true})
					return err
				}()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("organisation %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range pc.orgs {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatalf("setup: %v", first)
	}
	opened, err := db.Client.SubscriptionPeriod.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	due, err := db.Client.Subscription.Query().Where(subscription.NextPeriodAtLTE(time.Now().UTC())).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if opened != pc.orgs || due != pc.orgs {
		t.Fatalf("setup: %d periods opened and %d subscriptions due, want %d and %d", opened, due, pc.orgs, pc.orgs)
	}
	t.Logf("setup: plan %q (DAY, %d included, fee %s, CAPPED rollover %d, HARD), %d organisations subscribed from %s: period 0 open, %d periods due, in %v",
		pcPlan, pcIncluded, pcFee, pcRolloverCp, pc.orgs, start.Format(time.RFC3339), pc.orgs*pc.days, time.Since(began).Round(time.Millisecond))
}

// startServer starts a server on a fresh port (two may run at once).
func (pc *periodCloseRun) startServer(label string) *pcServer {
	ps := &pcServer{label: label, started: time.Now()}
	pc.addr = ""
	ps.srv = pc.start()
	pc.servers = append(pc.servers, ps)
	return ps
}

// monitor is the test's handle on the database, opened on demand. On
// SQLite it is closed before each SIGKILL, so that the restarted server
// is the first to open the file after the crash and recovers its WAL.
func (pc *periodCloseRun) monitor() *store.DB {
	if pc.mon == nil {
		db, err := store.OpenWith(pc.t.Context(), pc.url, store.Options{MaxConns: testConns})
		if err != nil {
			pc.t.Fatalf("open the database to watch it: %v", err)
		}
		pc.mon = db
	}
	return pc.mon
}

func (pc *periodCloseRun) closeMon() {
	if pc.mon != nil {
		pc.mon.Close()
		pc.mon = nil
	}
}

func (pc *periodCloseRun) openedNow() int {
	n, err := pc.monitor().Client.SubscriptionPeriod.Query().Count(pc.t.Context())
	if err != nil {
		pc.t.Fatalf("count subscription periods: %v", err)
	}
	return n
}

func (pc *periodCloseRun) dueNow() int {
	n, err := pc.monitor().Client.Subscription.Query().Where(subscription.NextPeriodAtLTE(time.Now().UTC())).Count(pc.t.Context())
	if err != nil {
		pc.t.Fatalf("count due subscriptions: %v", err)
	}
	return n
}

// killAfterProgress waits until the running server(s) have opened a random
// share (10-30 %) of the periods still due, then a random few milliseconds
// more, and SIGKILLs ps.
func (pc *periodCloseRun) killAfterProgress(what string, ps *pcServer) {
	t := pc.t
	s := ps.srv
	cur := pc.openedNow()
	left := pc.total() - cur
	if left < pc.total()/10 {
		t.Fatalf("%s: only %d of %d periods left to open when the server answered: the backlog is too small for the kill to land mid-work", what, left, pc.total())
	}
	target := cur + left*(10+pc.rng.IntN(21))/100
	jitter := time.Duration(pc.rng.IntN(15)) * time.Millisecond
	deadline := time.Now().Add(pcCatchUp)
	polled := cur
	for polled < target {
		if !s.running() {
			t.Fatalf("%s: creditd exited before the kill (%v); log:\n%s", what, s.waitErr, tail(s.log, 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d periods opened after %v, waiting for %d; log:\n%s", what, polled, pc.total(), pcCatchUp, target, tail(s.log, 4000))
		}
		time.Sleep(pcPoll)
		polled = pc.openedNow()
	}
	if pc.dialect == dialect.SQLite {
		pc.closeMon()
	}
	time.Sleep(jitter)
	ps.killed = time.Now()
	pc.kill(s)
	ps.polled, ps.total = polled, polled
	ps.alone = true
	for _, o := range pc.servers {
		if o != ps && o.srv.running() {
			ps.alone = false
		}
	}
	t.Logf("%s: %s up %v, %d periods opened when it answered /healthz, %d at the last poll (target %d) + %v",
		what, ps.label, ps.killed.Sub(ps.started).Round(time.Millisecond), cur, polled, target, jitter)
}

// waitCaughtUp polls until no subscription is due, bounded.
func (pc *periodCloseRun) waitCaughtUp(s *server) {
	t := pc.t
	deadline := time.Now().Add(pcCatchUp)
	for {
		if !s.running() {
			t.Fatalf("creditd exited during the catch-up (%v); log:\n%s", s.waitErr, tail(s.log, 4000))
		}
		due := pc.dueNow()
		if due == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions still due %v after the last start (%d of %d periods opened); log:\n%s",
				due, pcCatchUp, pc.openedNow(), pc.total(), tail(s.log, 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDatabase checks, with every server gone, that each subscription's
// periods were opened exactly once with exactly their effects.
func (pc *periodCloseRun) checkDatabase() {
	t := pc.t
	ctx := t.Context()
	db, err := store.OpenWith(ctx, pc.url, store.Options{MaxConns: testConns})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	defer db.Close()
	now := time.Now().UTC()
	c := db.Client

	p, err := c.Plan.Get(ctx, pc.planID)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := c.Subscription.Query().Order(ent.Asc(subscription.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	periods, err := c.SubscriptionPeriod.Query().Order(ent.Asc(subscriptionperiod.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	grants, err := c.Grant.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := c.LedgerEntry.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	charges, err := c.Charge.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != pc.orgs {
		t.Fatalf("%d subscriptions, want %d", len(subs), pc.orgs)
	}

	bySub := map[int][]*ent.SubscriptionPeriod{}
	for _, sp := range periods {
		bySub[sp.SubscriptionID] = append(bySub[sp.SubscriptionID], sp)
	}
	type poolSums struct {
		grants                map[credit.CreditType]map[int64][]*ent.Grant // by type, then effective_at (µs)
		entries               map[credit.EntryKind][]*ent.LedgerEntry
		closeByMemo           map[string]decimal.Decimal // EXPIRE + ROLLOVER_OUT by "period n close"
		remaining, entriesSum decimal.Decimal
	}
	pools := map[int]*poolSums{}
	pool := func(id int) *poolSums {
		ps := pools[id]
		if ps == nil {
			ps = &poolSums{grants: map[credit.CreditType]map[int64][]*ent.Grant{}, entries: map[credit.EntryKind][]*ent.LedgerEntry{},
				closeByMemo: map[string]decimal.Decimal{}, remaining: decimal.Zero, entriesSum: decimal.Zero}
			pools[id] = ps
		}
		return ps
	}
	for _, g := range grants {
		ps := pool(g.PoolID)
		if ps.grants[g.CreditType] == nil {
			ps.grants[g.CreditType] = map[int64][]*ent.Grant{}
		}
		at := g.EffectiveAt.UnixMicro()
		ps.grants[g.CreditType][at] = append(ps.grants[g.CreditType][at], g)
		ps.remaining = ps.remaining.Add(g.Remaining)
	}
	for _, e := range entries {
		ps := pool(e.PoolID)
		ps.entries[e.Kind] = append(ps.entries[e.Kind], e)
		ps.entriesSum = ps.entriesSum.Add(e.Amount)
		if e.Kind == credit.EntryExpire || e.Kind == credit.EntryRolloverOut {
			ps.closeByMemo[e.Memo] = ps.closeByMemo[e.Memo].Add(e.Amount)
		}
	}
	type feeKey struct {
		sub int
		at  int64 // µs
	}
	fees := map[feeKey][]*ent.Charge{}
	for _, ch := range charges {
		if ch.Kind != "PLATFORM_FEE" || ch.SubscriptionID == nil || ch.PeriodStart == nil {
			t.Errorf("charge %d: kind %s subscription %v period %v: the period close writes PLATFORM_FEE charges only", ch.ID, ch.Kind, ch.SubscriptionID, ch.PeriodStart)
			continue
		}
		k := feeKey{*ch.SubscriptionID, ch.PeriodStart.UnixMicro()}
		fees[k] = append(fees[k], ch)
	}

	fee := decimal.RequireFromString(pcFee)
	included := decimal.NewFromInt(pcIncluded)
	errs := 0
	errorf := func(format string, args ...any) {
		if errs++; errs <= 30 {
			t.Errorf(format, args...)
		}
	}
	var wantAll, sumAllocated, sumRolled, sumExpired int64
	for _, sub := range subs {
		sched := engine.Schedule{Start: sub.StartsAt, Period: p.Period, Location: time.UTC}
		want := sched.Index(now) + 1 // periods 0..Index(now) have started
		if want != pc.days+1 {
			t.Fatalf("subscription %d: the schedule gives %d started periods, the test set up %d", sub.ID, want, pc.days+1)
		}
		wantAll += int64(want)
		if sub.NextPeriod != want || sub.NextPeriodAt == nil || !sub.NextPeriodAt.Equal(sched.Boundary(want)) || !sub.NextPeriodAt.After(now) {
			errorf("subscription %d: next period %d at %v, want %d at %v (in the future)", sub.ID, sub.NextPeriod, sub.NextPeriodAt, want, sched.Boundary(want))
		}
		// Periods 0..want-1, each exactly once, with the model's amounts.
		seen := map[int]int{}
		for _, sp := range bySub[sub.ID] {
			seen[sp.PeriodIndex]++
			n := sp.PeriodIndex
			if n < 0 || n >= want {
				errorf("subscription %d: period %d opened, only 0..%d have started", sub.ID, n, want-1)
				continue
			}
			s, e := sched.Bounds(n)
			rolled, expired := model(n)
			if !sp.StartsAt.Equal(s) || !sp.EndsAt.Equal(e) || !sp.Allocated.Equal(included) || !sp.RolledOver.Equal(rolled) || !sp.Expired.Equal(expired) {
				errorf("subscription %d period %d: [%v, %v) allocated %s rolled %s expired %s; want [%v, %v) %d %s %s",
					sub.ID, n, sp.StartsAt, sp.EndsAt, sp.Allocated, sp.RolledOver, sp.Expired, s, e, pcIncluded, rolled, expired)
			}
			sumAllocated += sp.Allocated.IntPart()
			sumRolled += sp.RolledOver.IntPart()
			sumExpired += sp.Expired.IntPart()
		}
		for n := 0; n < want; n++ {
			if seen[n] != 1 {
				errorf("subscription %d: period %d opened %d times, want once", sub.ID, n, seen[n])
			}
		}

		// The pool: one allocation and one rollover grant per period, each
		// with its one opening entry; the close entries of each period once.
		ps := pool(sub.PoolID)
		for n := 0; n < want; n++ {
			s, e := sched.Bounds(n)
			rolled, _ := model(n)
			alloc := ps.grants[credit.CreditSubscription][s.UnixMicro()]
			if len(alloc) != 1 || !alloc[0].Amount.Equal(included) || alloc[0].ExpiresAt == nil || !alloc[0].ExpiresAt.Equal(e) {
				errorf("pool %d period %d: %d allocation grants %s, want one of %d expiring %v", sub.PoolID, n, len(alloc), grantList(alloc), pcIncluded, e)
			}
			roll := ps.grants[credit.CreditRollover][s.UnixMicro()]
			switch {
			case rolled.IsZero() && len(roll) != 0:
				errorf("pool %d period %d: rollover grants %s, want none", sub.PoolID, n, grantList(roll))
			case rolled.IsPositive() && (len(roll) != 1 || !roll[0].Amount.Equal(rolled)):
				errorf("pool %d period %d: rollover grants %s, want one of %s", sub.PoolID, n, grantList(roll), rolled)
			}
			if n > 0 {
				prevRolled, _ := model(n - 1)
				want := prevRolled.Add(included).Neg() // everything that ended at the boundary
				if got := ps.closeByMemo[fmt.Sprintf("period %d close", n)]; !got.Equal(want) {
					errorf("pool %d period %d close: EXPIRE + ROLLOVER_OUT entries sum to %s, want %s", sub.PoolID, n, got, want)
				}
			}
			if f := fees[feeKey{sub.ID, s.UnixMicro()}]; len(f) != 1 || !f[0].Amount.Equal(fee) || f[0].Currency != p.Currency || f[0].OrganizationID != sub.OrganizationID {
				errorf("subscription %d period %d: %d platform fee charges, want one of %s %s", sub.ID, n, len(f), fee, p.Currency)
			}
		}
		if got := len(ps.grants[credit.CreditSubscription]); got != want {
			errorf("pool %d: allocation grants on %d distinct starts, want %d", sub.PoolID, got, want)
		}
		kindSum := func(k credit.EntryKind) (int, decimal.Decimal) {
			sum := decimal.Zero
			for _, e := range ps.entries[k] {
				sum = sum.Add(e.Amount)
			}
			return len(ps.entries[k]), sum
		}
		var allocs, rolls, expires decimal.Decimal = decimal.Zero, decimal.Zero, decimal.Zero
		rolledPeriods := 0
		for n := 0; n < want; n++ {
			r, x := model(n)
			allocs, rolls, expires = allocs.Add(included), rolls.Add(r), expires.Add(x)
			if r.IsPositive() {
				rolledPeriods++
			}
		}
		if n, sum := kindSum(credit.EntryGrant); n != want || !sum.Equal(allocs) {
			errorf("pool %d: %d GRANT entries summing to %s, want %d summing to %s", sub.PoolID, n, sum, want, allocs)
		}
		if n, sum := kindSum(credit.EntryRolloverIn); n != rolledPeriods || !sum.Equal(rolls) {
			errorf("pool %d: %d ROLLOVER_IN entries summing to %s, want %d summing to %s", sub.PoolID, n, sum, rolledPeriods, rolls)
		}
		if _, sum := kindSum(credit.EntryRolloverOut); !sum.Equal(rolls.Neg()) {
			errorf("pool %d: ROLLOVER_OUT entries sum to %s, want -%s", sub.PoolID, sum, rolls)
		}
		if _, sum := kindSum(credit.EntryExpire); !sum.Equal(expires.Neg()) {
			errorf("pool %d: EXPIRE entries sum to %s, want -%s", sub.PoolID, sum, expires)
		}
		for k, es := range ps.entries {
			switch k {
			case credit.EntryGrant, credit.EntryRolloverIn, credit.EntryRolloverOut, credit.EntryExpire:
			default:
				errorf("pool %d: %d %s entries; the period close writes none", sub.PoolID, len(es), k)
			}
		}
		// The balance: what the rollover rule leaves in the open period.
		lastRolled, _ := model(want - 1)
		balance := included.Add(lastRolled)
		if !ps.remaining.Equal(balance) || !ps.entriesSum.Equal(balance) {
			errorf("pool %d: balance %s (entries sum to %s), want %d allocated + %s rolled = %s", sub.PoolID, ps.remaining, ps.entriesSum, pcIncluded, lastRolled, balance)
		}
	}
	if errs > 30 {
		t.Errorf("... %d errors in all", errs)
	}
	if int64(len(periods)) != wantAll {
		t.Errorf("%d subscription periods in the database, want %d", len(periods), wantAll)
	}
	if len(fees) != len(periods) || len(charges) != len(periods) {
		t.Errorf("%d platform fee charges (%d distinct periods), want one per period: %d", len(charges), len(fees), len(periods))
	}

	// Which process opened what: a period's created_at is when the run that
	// opened it started, and a server runs the job first as it starts, then
	// again every tick; so a run belongs to the last server started before
	// it that was not yet killed. Every SIGKILL must have landed mid-work.
	owner := func(at time.Time) *pcServer {
		var o *pcServer
		for _, s := range pc.servers {
			if !s.started.After(at) && (s.killed.IsZero() || !s.killed.Before(at)) {
				o = s
			}
		}
		return o
	}
	owners := map[int]map[*pcServer]bool{} // subscription -> the processes that opened its periods
	for _, sp := range periods {
		if o := owner(sp.CreatedAt); o != nil {
			o.opened++
			if owners[sp.SubscriptionID] == nil {
				owners[sp.SubscriptionID] = map[*pcServer]bool{}
			}
			owners[sp.SubscriptionID][o] = true
		}
	}
	shared, raced := 0, 0
	for _, os := range owners {
		if len(os) > 1 {
			shared++
		}
		replicas := 0
		for o := range os {
			if strings.HasPrefix(o.label, "replica") {
				replicas++
			}
		}
		if replicas == 2 {
			raced++
		}
	}
	racedNote := ""
	if pc.dialect == dialect.Postgres {
		racedNote = fmt.Sprintf("; %d by both racing replicas", raced)
	}
	t.Logf("processes: %d of %d subscriptions had their backlog opened by more than one server process (split by a kill)%s", shared, len(subs), racedNote)
	for _, s := range pc.servers {
		if !s.alone {
			continue // the other replica's run started before the kill: polled is what we know
		}
		s.total = 0
		for _, sp := range periods {
			if !sp.CreatedAt.After(s.killed) {
				s.total++
			}
		}
	}
	for _, s := range pc.servers {
		if s.killed.IsZero() {
			continue
		}
		switch {
		case s.alone && s.opened == 0:
			t.Errorf("%s was killed before it opened any period: the kill did not land mid-work", s.label)
		case s.total < s.polled || s.total >= len(periods):
			t.Errorf("%s: %d periods opened by its kill (polled %d just before), %d in all: the kill did not land mid-work", s.label, s.total, s.polled, len(periods))
		}
	}

	// The job once more, in-process: nothing is due, nothing changes.
	svc := ledger.New(db)
	rep, err := svc.RunPeriodClose(ctx, time.Now())
	if err != nil {
		t.Errorf("RunPeriodClose after the catch-up: %v", err)
	}
	if again, _ := c.SubscriptionPeriod.Query().Count(ctx); rep.SubscriptionsClosed != 0 || again != len(periods) {
		t.Errorf("RunPeriodClose after the catch-up closed %d subscriptions (%d periods now, %d before)", rep.SubscriptionsClosed, again, len(periods))
	}

	violations, err := svc.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, v := range violations {
		t.Errorf("ledger invariant broken: %s", v)
	}
	t.Logf("database: %d subscriptions, %d periods (want %d), %d grants, %d ledger entries, %d platform fees; allocated %d, rolled %d, expired %d; %d invariant violations",
		len(subs), len(periods), wantAll, len(grants), len(entries), len(charges), sumAllocated, sumRolled, sumExpired, len(violations))
}

func grantList(gs []*ent.Grant) string {
	var parts []string
	for _, g := range gs {
		parts = append(parts, fmt.Sprintf("#%d:%s", g.ID, g.Amount))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, " ") + "]"
}
