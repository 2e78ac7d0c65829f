package ledger_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// The model test drives the ledger with random operations from many
// goroutines and checks every answer against a simple reference model of
// the rules. Each goroutine owns one organisation (an ACCOUNT pool with a
// TEAM pool under it, subscribed to a monthly plan: rollover NONE or
// UNLIMITED, overage HARD, SOFT or DEGRADED), so its model is exact
// while the goroutines race each other on the database; one more goroutine
// keeps publishing register versions, so the catalog changes under them.
//
// The operations: grants, on-demand purchases, burns of every status on
// the account pool and on the team pool (which falls through to the
// account's credits), replays of earlier keys (same answer, nothing
// written), refunds of this period's burns on the account pool (back to the
// grants they drew, overage as money), transfers either way between the
// account and a pool that does not fall through (credits keep their expiry), agent runs on either pool (STARTED holds and counts against
// the team's hard budget; the terminal event, sometimes costing more than
// held, burns the hold first, then the balance, then overage under SOFT or
// an uncovered record under HARD), hard budgets on the team pool, API key creation and revocation,
// plan changes (an upgrade NOW to a sibling plan with 10 more included
// credits, prorated by the period left into the period's bucket, and a
// downgrade at the period end, which the next period's allocation shows),
// and balance reads. The run is cut into phases; between two phases every
// goroutine settles its open runs, the clock moves a month on and two
// period closes race each other (each subscription's period must close
// exactly once), and each model applies the plan's rollover rule.
//
// The model: credits are in two buckets, the period's subscription credits
// ("expiring": they expire, or roll, at the period's end) and credits that
// never expire (grants and purchases). The default draw order takes the
// expiring bucket first; a hold remembers what it took from each bucket and
// its release gives exactly that back. A burn is DENIED when it costs more
// than the pool holds (HARD overage) or, on the team pool, more than its
// hard budget has left this calendar month; under SOFT overage it takes
// everything and the rest is overage, and a run holds what is left. The
// ledger's invariants are checked when the test ends (testdb runs Verify).
//
// Seeded and reproducible: CREDITD_MODEL_SEED=N replays a run's operations;
// the seed is printed. CREDITD_SOAK=1 (make soak) runs a long one.

// modelPlans: the plans the organisations subscribe to, in turn.
var modelPlans = []struct {
	rollover credit.RolloverMode
	overage  credit.OverageMode
}{
	{credit.RolloverNone, credit.OverageHard},
	{credit.RolloverUnlimited, credit.OverageHard},
	{credit.RolloverNone, credit.OverageSoft},
	{credit.RolloverNone, credit.OverageDegraded},
}

const (
	modelIncluded = "20" // credits each period allocates
	modelBig      = "30" // ... on the bigger sibling plan a worker may upgrade to
)

// modelHold is what a run's hold took from each bucket, and the run's quantity.
type modelHold struct {
	exp, last, qty decimal.Decimal
	team           bool            // started on the team pool
	budgeted       decimal.Decimal // what it counted against the team's budget
}

type model struct {
	exp, last, reserved decimal.Decimal
	holds               map[string]modelHold // run id -> what its hold took
	runs                []string             // open runs, oldest first (a slice: map order is not seeded)
	results             map[string]ledger.UsageResult
	inputs              map[string]engine.UsageInput
	keys                []string
	refundable          []string         // account-pool burns of this period that charged, not refunded yet
	sideExp, sideLast   decimal.Decimal  // the side pool's buckets (transferred credits keep their expiry)
	budget              *decimal.Decimal // the team pool's hard monthly budget
	spent               decimal.Decimal  // what the team pool burned this month while budgeted
	mode                credit.RolloverMode
	soft                bool // SOFT overage: past the balance a burn is allowed, the rest is overage
	degraded            bool // DEGRADED overage: past the balance agent.run (allowed degraded) runs on what is left, the rest waived
}

func (m *model) avail() decimal.Decimal { return m.exp.Add(m.last) }

// take draws x credits in the default order: the expiring bucket first.
func (m *model) take(x decimal.Decimal) modelHold {
	fromExp := decimal.Min(x, m.exp)
	m.exp = m.exp.Sub(fromExp)
	m.last = m.last.Sub(x.Sub(fromExp))
	return modelHold{exp: fromExp, last: x.Sub(fromExp)}
}

// overage is what a burn of x leaves beyond the balance (SOFT plans only:
// a HARD plan denies it).
func (m *model) overage(x decimal.Decimal) decimal.Decimal {
	return decimal.Max(x.Sub(m.avail()), decimal.Zero)
}

// closePeriod applies the plan's rollover rule at a period boundary, and
// the included credits of the plan the next period opens under.
func (m *model) closePeriod(included decimal.Decimal) {
	switch m.mode {
	case credit.RolloverUnlimited:
		m.exp = m.exp.Add(included) // everything rolls, and the new allocation arrives
	default:
		m.exp = included // what was left expires
	}
	m.spent = decimal.Zero   // a new calendar month for the budget
	m.refundable = nil       // their grants expired: a refund would make successors the buckets do not model
	m.sideExp = decimal.Zero // expired in the side pool (only the subscription's pool rolls over)
}

// worker is one goroutine's organisation and model.
type worker struct {
	w           int
	f           *fixture
	rng         *rand.Rand
	org         *ent.Organization
	pool, team  *ent.Pool
	side        *ent.Pool // a pool that does not fall through: credits only arrive by transfer
	m           *model
	n           int
	subStart    time.Time         // the subscription's start: its periods are months from it
	sub         *ent.Subscription // on plan small, or big after an upgrade
	small, big  int
	onBig       bool // upgraded; pendingDown: a downgrade at the period end is scheduled
	pendingDown bool
	firstBurn   bool // the period is due and unopened: the phase starts with a burn
	db          *store.DB
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestModel(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CREDITD_MODEL_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	workers, phases, ops := 8, 3, 30
	if os.Getenv("CREDITD_SOAK") != "" {
		workers, phases, ops = 16, 10, 300
	}
	t.Logf("model seed %d (CREDITD_MODEL_SEED=%d replays it): %d goroutines x %d phases x %d operations", seed, seed, workers, phases, ops)
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		start := f.clock.now()
		plans, bigs := make([]int, len(modelPlans)), make([]int, len(modelPlans))
		for i, mp := range modelPlans {
			for _, size := range []struct {
				name, included string
				id             *int
			}{{"", modelIncluded, &plans[i]}, {"-big", modelBig, &bigs[i]}} {
				p := plan(fmt.Sprintf("model-%s-%s%s", mp.rollover, mp.overage, size.name), mp.overage, mp.rollover, nil)
				p.IncludedCredits, p.OnDemandPrice = d(size.included), dp("0.02")
				pl, err := f.svc.CreatePlan(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				*size.id = pl.ID
			}
		}
		r, err := f.svc.SaveRegisterDraft(ctx, "default", modelRegister)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishRegister(ctx, "default", r.Version, nil); err != nil {
			t.Fatal(err)
		}
		var total, closes atomic.Int64
		errs := make(chan error, 4*workers+4)
		stop := make(chan struct{})
		var pub sync.WaitGroup
		pub.Add(1)
		go func() { // the catalog changes under the workers: same weights, new versions
			defer pub.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				r, err := f.svc.SaveRegisterDraft(ctx, "default", modelRegister)
				if err == nil {
					_, err = f.svc.PublishRegister(ctx, "default", r.Version, nil)
				}
				if err != nil && credit.CodeOf(err) != credit.CodeConflict {
					errs <- fmt.Errorf("publish: %w", err)
					return
				}
				total.Add(1)
			}
		}()
		defer func() { close(stop); pub.Wait() }()

		ws := make([]*worker, workers)
		for i := range ws {
			ws[i] = &worker{w: i, f: f, db: db, rng: rand.New(rand.NewSource(seed + int64(i))), small: plans[i%len(modelPlans)], big: bigs[i%len(modelPlans)]}
			mp := modelPlans[i%len(modelPlans)]
			if err := ws[i].start(ctx, plans[i%len(modelPlans)], mp.rollover, mp.overage, start); err != nil {
				t.Fatalf("seed %d, worker %d: %v", seed, i, err)
			}
		}
		for phase := 0; phase < phases; phase++ {
			var wg sync.WaitGroup
			if ws[0].firstBurn { // the scheduler races the usage that opens the period
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
						errs <- fmt.Errorf("seed %d, phase %d: period close racing usage: %w", seed, phase, err)
					}
				}()
			}
			for _, wk := range ws {
				wg.Add(1)
				go func(wk *worker) {
					defer wg.Done()
					if err := wk.phase(ctx, ops, &total); err != nil {
						errs <- fmt.Errorf("seed %d, worker %d, phase %d: %w", seed, wk.w, phase, err)
					}
				}(wk)
			}
			wg.Wait()
			if len(errs) > 0 {
				break
			}
			// The period ends: the clock moves a month on, two closes race.
			f.clock.set(start.AddDate(0, phase+1, 0).Add(time.Hour))
			if phase%2 == 1 && phase < phases-1 {
				// Or no scheduler runs: each organisation's next usage
				// opens its period first (no event sees the gap).
				for _, wk := range ws {
					wk.closePeriod()
					wk.firstBurn = true
				}
				continue
			}
			var cw sync.WaitGroup
			var closed atomic.Int64
			for range 2 {
				cw.Add(1)
				go func() {
					defer cw.Done()
					rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
					if err != nil {
						errs <- fmt.Errorf("seed %d, phase %d: period close: %w", seed, phase, err)
					}
					closed.Add(int64(rep.SubscriptionsClosed))
				}()
			}
			cw.Wait()
			if closed.Load() != int64(workers) {
				errs <- fmt.Errorf("seed %d, phase %d: the racing period closes closed %d subscription periods, want %d (each once)", seed, phase, closed.Load(), workers)
			}
			closes.Add(2)
			for _, wk := range ws {
				wk.closePeriod()
			}
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		for _, wk := range ws {
			if err := wk.check(ctx, "final"); err != nil {
				t.Errorf("seed %d, worker %d: %v", seed, wk.w, err)
			}
		}
		t.Logf("%d operations and %d racing period closes checked against the model", total.Load(), closes.Load())
	})
}

// start creates the worker's organisation, pools and subscription.
func (wk *worker) start(ctx context.Context, planID int, mode credit.RolloverMode, over credit.OverageMode, at time.Time) error {
	svc := wk.f.svc
	var err error
	if wk.org, err = svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: fmt.Sprintf("model-%d", wk.w)}); err != nil {
		return err
	}
	if wk.pool, err = svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: wk.org.ID, Kind: credit.PoolAccount, Name: "main"}); err != nil {
		return err
	}
	if wk.side, err = svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: wk.org.ID, Kind: credit.PoolTeam, Name: "side", ParentID: &wk.pool.ID, NoFallThrough: true}); err != nil {
		return err
	}
	if wk.team, err = svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: wk.org.ID, Kind: credit.PoolTeam, Name: "team", ParentID: &wk.pool.ID}); err != nil {
		return err
	}
	if wk.sub, err = svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: wk.org.ID, PlanID: planID, StartsAt: at}); err != nil {
		return err
	}
	wk.subStart = at
	wk.m = &model{exp: d(modelIncluded), last: decimal.Zero, reserved: decimal.Zero, spent: decimal.Zero, sideExp: decimal.Zero, sideLast: decimal.Zero, mode: mode, soft: over == credit.OverageSoft, degraded: over == credit.OverageDegraded,
		holds: map[string]modelHold{}, results: map[string]ledger.UsageResult{}, inputs: map[string]engine.UsageInput{}}
	return wk.check(ctx, "after subscribing")
}

var modelWeights = map[string]decimal.Decimal{"agent.run": d("1"), "big.run": d("10")}

// modelRegister prices the actions as modelWeights; agent.run still runs in
// degraded mode, big.run does not.
var modelRegister = []ledger.WeightInput{{Action: "agent.run", Credits: d("1"), DegradedAllowed: true}, {Action: "big.run", Credits: d("10")}}

func modelCost(in engine.UsageInput) decimal.Decimal {
	q, c := decimal.NewFromInt(1), decimal.NewFromInt(1)
	if in.Quantity != nil {
		q = *in.Quantity
	}
	if in.Completion != nil {
		c = *in.Completion
	}
	switch in.Status {
	case credit.StatusSucceeded:
		return modelWeights[in.Action].Mul(q)
	case credit.StatusPartial:
		return modelWeights[in.Action].Mul(q).Mul(c)
	}
	return decimal.Zero
}

func (wk *worker) next() string { wk.n++; return fmt.Sprintf("w%d-k%d", wk.w, wk.n) }

func (wk *worker) usage(key, action string, status credit.UsageStatus, qty string) engine.UsageInput {
	return engine.UsageInput{IdempotencyKey: key, OrganizationID: wk.org.ID, Action: action, Status: status, Quantity: dp(qty)}
}

// check compares the account pool's balance with the model.
func (wk *worker) check(ctx context.Context, when string) error {
	b, err := wk.f.svc.Balance(ctx, wk.pool)
	if err != nil {
		return err
	}
	if !b.Available.Equal(wk.m.avail()) || !b.Reserved.Equal(wk.m.reserved) {
		return fmt.Errorf("%s: balance %s available, %s reserved; model says %s and %s", when, b.Available, b.Reserved, wk.m.avail(), wk.m.reserved)
	}
	side, err := wk.f.svc.Balance(ctx, wk.side)
	if err != nil {
		return err
	}
	if want := wk.m.sideExp.Add(wk.m.sideLast); !side.Available.Equal(want) {
		return fmt.Errorf("%s: side pool %s available, model says %s", when, side.Available, want)
	}
	return nil
}

// transfer moves credits between the account and the side pool, either
// way: they leave in the source's draw order (the expiring bucket first)
// and keep their bucket.
func (wk *worker) transfer(ctx context.Context) error {
	m := wk.m
	amount := decimal.NewFromInt(int64(wk.rng.Intn(8) + 1))
	from, to, exp, last, toExp, toLast := wk.pool, wk.side, &m.exp, &m.last, &m.sideExp, &m.sideLast
	if wk.rng.Intn(2) == 0 {
		from, to, exp, last, toExp, toLast = wk.side, wk.pool, &m.sideExp, &m.sideLast, &m.exp, &m.last
	}
	_, err := wk.f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: from.ID, ToPoolID: to.ID, Amount: amount})
	if have := exp.Add(*last); amount.GreaterThan(have) {
		if credit.CodeOf(err) != credit.CodeInsufficientCredits {
			return fmt.Errorf("transfer of %s from a pool with %s: %v, model says INSUFFICIENT_CREDITS", amount, have, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("transfer of %s: %w", amount, err)
	}
	fromExp := decimal.Min(amount, *exp)
	*exp, *last = exp.Sub(fromExp), last.Sub(amount.Sub(fromExp))
	*toExp, *toLast = toExp.Add(fromExp), toLast.Add(amount.Sub(fromExp))
	return nil
}

// phase runs ops random operations, then settles the open runs.
func (wk *worker) phase(ctx context.Context, ops int, total *atomic.Int64) error {
	for op := 0; op < ops; op++ {
		total.Add(1)
		r := wk.rng.Intn(100)
		if wk.firstBurn {
			r, wk.firstBurn = 30, false // a burn on the account pool
		}
		if err := wk.op(ctx, r); err != nil {
			return fmt.Errorf("op %d: %w", op, err)
		}
	}
	for len(wk.m.runs) > 0 {
		total.Add(1)
		if err := wk.endRun(ctx); err != nil {
			return fmt.Errorf("settling runs: %w", err)
		}
	}
	return wk.check(ctx, "end of phase")
}

func (wk *worker) op(ctx context.Context, r int) error {
	svc, m, rng := wk.f.svc, wk.m, wk.rng
	switch {
	case r < 10: // grant (never expires)
		amount := decimal.NewFromInt(int64(rng.Intn(40) + 1)).Div(decimal.NewFromInt(4))
		if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: wk.pool.ID, CreditType: credit.CreditSubscription, Amount: amount}); err != nil {
			return err
		}
		m.last = m.last.Add(amount)
	case r < 15: // on-demand purchase (the plans set no expiry)
		amount := decimal.NewFromInt(int64(rng.Intn(20) + 1)).Div(decimal.NewFromInt(2))
		g, err := svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: wk.pool.ID, Credits: amount})
		if err != nil {
			return err
		}
		if g.ExpiresAt != nil || !g.Amount.Equal(amount) {
			return fmt.Errorf("purchase of %s: grant of %s expiring %v", amount, g.Amount, g.ExpiresAt)
		}
		m.last = m.last.Add(amount)
	case r < 45: // burn on the account pool, any terminal status
		statuses := []credit.UsageStatus{credit.StatusSucceeded, credit.StatusSucceeded, credit.StatusFailed, credit.StatusPartial}
		in := wk.usage(wk.next(), []string{"agent.run", "big.run"}[rng.Intn(2)], statuses[rng.Intn(4)], strconv.Itoa(rng.Intn(5)+1))
		if in.Status == credit.StatusPartial {
			in.Completion = dp(fmt.Sprintf("0.%d", rng.Intn(10)))
		}
		return wk.burn(ctx, in, false)
	case r < 55: // burn on the team pool: its budget, then the account's credits
		in := wk.usage(wk.next(), "agent.run", credit.StatusSucceeded, strconv.Itoa(rng.Intn(4)+1))
		in.PoolID = &wk.team.ID
		return wk.burn(ctx, in, true)
	case r < 59: // a hard monthly budget on the team pool
		limit := m.spent.Add(decimal.NewFromInt(int64(rng.Intn(12))))
		if _, err := svc.SetBudget(ctx, wk.team.ID, limit, credit.PeriodMonth, true); err != nil {
			return err
		}
		m.budget = &limit
	case r < 67: // replay a key: its first result, nothing written
		if len(m.keys) == 0 {
			return nil
		}
		key := m.keys[rng.Intn(len(m.keys))]
		res, err := svc.RecordUsage(ctx, m.inputs[key])
		if err != nil {
			return err
		}
		first := m.results[key]
		if !res.Duplicate || res.Event.ID != first.Event.ID || !res.Credits.Equal(first.Credits) || res.Decision != first.Decision {
			return fmt.Errorf("replay of %s = %+v, first was %+v", key, res, first)
		}
	case r < 79: // a run starts, on either pool: it holds its expected cost
		return wk.startRun(ctx, rng.Intn(2) == 0)
	case r < 90: // a run ends
		return wk.endRun(ctx)
	case r < 92: // refund an account-pool burn of this period, in full
		return wk.refund(ctx)
	case r < 94: // move credits between the account and the side pool
		return wk.transfer(ctx)
	case r < 96: // a plan change: an upgrade now, or a downgrade at the period end
		return wk.changePlan(ctx)
	case r < 97: // an API key for the organisation: works, then revoked, then refused
		k, secret, err := svc.CreateKey(ctx, ledger.KeyInput{Name: wk.next(), Role: credit.RoleService, OrganizationID: &wk.org.ID})
		if err != nil {
			return err
		}
		p, err := svc.Authenticate(ctx, secret)
		if err != nil || p.OrgID == nil || *p.OrgID != wk.org.ID {
			return fmt.Errorf("a new key authenticates as %+v, %v; want organisation %d", p, err, wk.org.ID)
		}
		if _, err := svc.RevokeKey(ctx, k.ID); err != nil {
			return err
		}
		if p, err := svc.Authenticate(ctx, secret); credit.CodeOf(err) != auth.CodeKeyRevoked {
			return fmt.Errorf("a revoked key authenticates as %+v, %v; want %s", p, err, auth.CodeKeyRevoked)
		}
	default:
		return wk.check(ctx, "balance read")
	}
	return nil
}

// changePlan upgrades now (the model adds (30 - 20) x the period left to
// the period's bucket, to 4 places, as the ledger rounds) or schedules the
// downgrade at the period end.
func (wk *worker) changePlan(ctx context.Context) error {
	svc := wk.f.svc
	switch {
	case wk.pendingDown:
		return nil
	case !wk.onBig:
		ch, err := svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: wk.sub.ID, PlanID: wk.big, At: ledger.AtNow})
		if err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		sched, now := engine.Schedule{Start: wk.subStart, Period: credit.PeriodMonth}, wk.f.clock.now()
		from, to := sched.Bounds(sched.Index(now))
		want := d(modelBig).Sub(d(modelIncluded)).Mul(engine.PeriodLeft(from, to, now)).Round(4)
		if ch.Kind != "UPGRADE" || !ch.Credits.Equal(want) {
			return fmt.Errorf("upgrade at %s = %s %s credits, model says UPGRADE %s", now, ch.Kind, ch.Credits, want)
		}
		wk.m.exp, wk.onBig = wk.m.exp.Add(want), true
	default:
		ch, err := svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: wk.sub.ID, PlanID: wk.small, At: ledger.AtPeriodEnd})
		if err != nil || ch.Status != "SCHEDULED" || ch.Kind != "DOWNGRADE" {
			return fmt.Errorf("downgrade at the period end = %+v, %v", ch, err)
		}
		wk.pendingDown = true
	}
	return nil
}

// closePeriod moves the model over a period boundary, under the plan the
// next period opens on.
func (wk *worker) closePeriod() {
	if wk.pendingDown {
		wk.onBig, wk.pendingDown = false, false
	}
	included := d(modelIncluded)
	if wk.onBig {
		included = d(modelBig)
	}
	wk.m.closePeriod(included)
}

// burn records a terminal event that is not part of a run and checks the
// decision: DENIED past the credits or the team's hard budget.
func (wk *worker) burn(ctx context.Context, in engine.UsageInput, team bool) error {
	m := wk.m
	res, err := wk.f.svc.RecordUsage(ctx, in)
	if err != nil {
		return err
	}
	want := modelCost(in)
	charge, decision, overage := want, credit.DecisionAllowed, decimal.Zero
	degraded := m.degraded && in.Action == "agent.run" && want.GreaterThan(m.avail())
	if degraded { // runs on what is left, the rest waived
		charge, decision = m.avail(), credit.DecisionDegraded
	}
	if m.soft {
		overage = m.overage(want)
	}
	overBudget := team && m.budget != nil && charge.IsPositive() && m.spent.Add(charge).GreaterThan(*m.budget)
	switch {
	case want.GreaterThan(m.avail()) && !m.soft && !degraded:
		if res.Decision != credit.DecisionDenied || res.Event.ReasonCode != string(credit.CodeInsufficientCredits) {
			return fmt.Errorf("burn of %s with %s available = %s (%s), model says DENIED (%s)", want, m.avail(), res.Decision, res.Event.ReasonCode, credit.CodeInsufficientCredits)
		}
	case overBudget:
		if res.Decision != credit.DecisionDenied || res.Event.ReasonCode != string(credit.CodeBudgetExceeded) {
			return fmt.Errorf("team burn of %s with %s of a %s budget spent = %s (%s), model says DENIED (%s)", want, m.spent, m.budget, res.Decision, res.Event.ReasonCode, credit.CodeBudgetExceeded)
		}
	default:
		if res.Decision != decision || !res.Credits.Equal(charge) || !res.Overage.Equal(overage) {
			return fmt.Errorf("burn of %s with %s available = %s %s (overage %s), model says %s %s (overage %s)", want, m.avail(), res.Decision, res.Credits, res.Overage, decision, charge, overage)
		}
		m.take(decimal.Min(charge, m.avail()))
		if team && m.budget != nil {
			m.spent = m.spent.Add(charge)
		}
		if !team && charge.IsPositive() {
			m.refundable = append(m.refundable, in.IdempotencyKey)
		}
	}
	m.results[in.IdempotencyKey], m.inputs[in.IdempotencyKey] = res, in
	m.keys = append(m.keys, in.IdempotencyKey)
	return nil
}

// refund refunds the oldest refundable burn in full: each draw's credits go
// back to their grant's bucket, the overage comes back as money.
func (wk *worker) refund(ctx context.Context) error {
	m := wk.m
	if len(m.refundable) == 0 {
		return nil
	}
	key := m.refundable[0]
	m.refundable = m.refundable[1:]
	first := m.results[key]
	es, err := wk.f.svc.Refund(ctx, ledger.RefundInput{UsageEventID: &first.Event.ID, Reason: "model"})
	if err != nil {
		return fmt.Errorf("refund of %s (%s credits): %w", key, first.Credits, err)
	}
	back := decimal.Zero
	for _, e := range es {
		back = back.Add(e.Amount)
	}
	if !back.Equal(first.Credits) {
		return fmt.Errorf("refund of %s gave back %s, it charged %s", key, back, first.Credits)
	}
	for _, dr := range first.Draws {
		g, err := wk.db.Client.Grant.Get(ctx, dr.GrantID)
		if err != nil {
			return err
		}
		if g.ExpiresAt != nil {
			m.exp = m.exp.Add(dr.Amount)
		} else {
			m.last = m.last.Add(dr.Amount)
		}
	}
	return nil
}

// startRun starts a run: it holds its expected cost (under SOFT, what is
// left of it); on the team pool the expected cost counts against the hard
// budget first.
func (wk *worker) startRun(ctx context.Context, team bool) error {
	m := wk.m
	run := wk.next()
	in := wk.usage(run+"-start", "agent.run", credit.StatusStarted, strconv.Itoa(wk.rng.Intn(4)+1))
	in.RunID = run
	if team {
		in.PoolID = &wk.team.ID
	}
	res, err := wk.f.svc.RecordUsage(ctx, in)
	if err != nil {
		return err
	}
	expected := modelWeights["agent.run"].Mul(*in.Quantity)
	hold, decision := expected, credit.DecisionAllowed
	if m.soft || m.degraded { // the run starts on what is left; the rest is overage (or waived) when it settles
		hold = decimal.Min(hold, m.avail())
	}
	if m.degraded && expected.GreaterThan(m.avail()) {
		decision = credit.DecisionDegraded
	}
	switch {
	case hold.GreaterThan(m.avail()):
		if res.Decision != credit.DecisionDenied || res.ReasonCode != credit.CodeInsufficientCredits {
			return fmt.Errorf("run holding %s with %s available = %s %s, model says DENIED %s", hold, m.avail(), res.Decision, res.ReasonCode, credit.CodeInsufficientCredits)
		}
		return nil
	case team && m.budget != nil && m.spent.Add(expected).GreaterThan(*m.budget):
		if res.Decision != credit.DecisionDenied || res.ReasonCode != credit.CodeBudgetExceeded {
			return fmt.Errorf("team run of %s with %s of a %s budget spent or held = %s %s, model says DENIED %s", expected, m.spent, m.budget, res.Decision, res.ReasonCode, credit.CodeBudgetExceeded)
		}
		return nil
	}
	if res.Decision != decision || !res.Reserved.Equal(hold) {
		return fmt.Errorf("run start = %s reserved %s, model says %s reserving %s", res.Decision, res.Reserved, decision, hold)
	}
	h := m.take(hold)
	h.qty, h.team = *in.Quantity, team
	if team && m.budget != nil {
		h.budgeted = expected
		m.spent = m.spent.Add(expected)
	}
	m.holds[run] = h
	if !team { // the account pool's reserved counts its own runs; a team run's hold shows on the team pool
		m.reserved = m.reserved.Add(hold)
	}
	m.runs = append(m.runs, run)
	return nil
}

// endRun ends the oldest open run with a random terminal status, sometimes
// costing more than it held: the hold burns first, then the balance; past
// both, SOFT bills overage and HARD records the rest as uncovered.
func (wk *worker) endRun(ctx context.Context) error {
	m := wk.m
	if len(m.runs) == 0 {
		return nil
	}
	run := m.runs[0]
	m.runs = m.runs[1:]
	h := m.holds[run]
	delete(m.holds, run)
	held := h.exp.Add(h.last)
	statuses := []credit.UsageStatus{credit.StatusSucceeded, credit.StatusFailed, credit.StatusPartial}
	in := wk.usage(run+"-end", "agent.run", statuses[wk.rng.Intn(3)], h.qty.Add(decimal.NewFromInt(int64(wk.rng.Intn(3)))).String())
	in.RunID = run
	if h.team {
		in.PoolID = &wk.team.ID
	}
	if in.Status == credit.StatusPartial {
		in.Completion = dp("0.5")
	}
	res, err := wk.f.svc.RecordUsage(ctx, in)
	if err != nil {
		return err
	}
	want := modelCost(in)
	// The burn takes the held credits first, in the order they were held
	// (the expiring bucket first); what it leaves goes back to its bucket.
	fromExp := decimal.Min(want, h.exp)
	fromLast := decimal.Min(want.Sub(fromExp), h.last)
	rest := want.Sub(fromExp).Sub(fromLast)
	m.exp, m.last = m.exp.Add(h.exp.Sub(fromExp)), m.last.Add(h.last.Sub(fromLast))
	if !h.team {
		m.reserved = m.reserved.Sub(held)
	}
	short := m.overage(rest)
	charge, decision, overage, uncovered := want, credit.DecisionAllowed, decimal.Zero, decimal.Zero
	switch {
	case m.soft:
		overage = short
	case m.degraded && short.IsPositive(): // agent.run runs degraded: the rest is waived
		charge, decision = want.Sub(short), credit.DecisionDegraded
	default:
		uncovered = short
	}
	if res.Decision != decision || !res.Credits.Equal(charge) || !res.Overage.Equal(overage) || !res.Uncovered.Equal(uncovered) {
		return fmt.Errorf("run end = %s %s (overage %s, uncovered %s), model says %s %s (overage %s, uncovered %s)",
			res.Decision, res.Credits, res.Overage, res.Uncovered, decision, charge, overage, uncovered)
	}
	if uncovered.IsPositive() != (res.ReasonCode == credit.CodeUncovered) {
		return fmt.Errorf("run end uncovered %s with reasonCode %q", uncovered, res.ReasonCode)
	}
	m.take(decimal.Min(rest, m.avail()))
	if h.team && m.budget != nil {
		m.spent = decimal.Max(m.spent.Add(charge).Sub(h.budgeted), decimal.Zero)
	}
	return nil
}
