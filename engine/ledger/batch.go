package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
)

// batch is what a usage batch has loaded and decided so far, under its
// pool locks: the running balances every item is decided against, and what
// the decisions add to the posting (touched grants, holds, budget spend,
// alerts, incentives). The rules themselves live in package engine; batch
// only feeds them state and keeps the running totals. See the lifecycle
// table in the README for what each event does in each state.
type batch struct {
	s      *Service
	tx     *usageTx
	now    time.Time
	lookup bool
	items  []item

	pools   map[int]poolInfo
	chains  map[int][]int
	grants  map[int][]engine.Grant // by pool
	byID    map[int]*engine.Grant
	touched map[int]*engine.Grant
	holds   map[runKey]*runHold
	caps    map[int]*termsState // by subscription

	spent      map[int]bool // budgeted pools whose spend changed
	alerts     []budgetAlert
	incentives map[int][]*ent.Grant // by item
}

// index points byID at every loaded grant.
func (b *batch) index() {
	b.byID, b.touched = map[int]*engine.Grant{}, map[int]*engine.Grant{}
	b.tx.grantPool = map[int]int{}
	for pid := range b.grants {
		for gi := range b.grants[pid] {
			g := &b.grants[pid][gi]
			b.byID[g.ID], b.tx.grantPool[g.ID] = g, pid
		}
	}
}

// add appends a grant created during the batch (an auto top-up, an
// incentive) to its pool, keeping byID and touched pointing at the pool's
// current slice.
func (b *batch) add(pid int, g engine.Grant) {
	b.grants[pid] = append(b.grants[pid], g)
	b.tx.grantPool[g.ID] = pid
	for gi := range b.grants[pid] {
		ptr := &b.grants[pid][gi]
		b.byID[ptr.ID] = ptr
		if _, ok := b.touched[ptr.ID]; ok {
			b.touched[ptr.ID] = ptr
		}
	}
}

// move takes draws out of their grants (sign -1) or gives them back (+1).
func (b *batch) move(draws []engine.Draw, sign int64) {
	for _, dr := range draws {
		if g := b.byID[dr.GrantID]; g != nil {
			g.Remaining = g.Remaining.Add(dr.Amount.Mul(decimal.NewFromInt(sign)))
			b.touched[g.ID] = g
		}
	}
}

// scope is one item's view: its pool, the chain it falls through, the
// versions and terms in effect.
type scope struct {
	i       int
	it      item
	p       poolInfo
	v       engine.Versions
	org     engine.Org
	chain   []int
	ts      *termsState // loaded caps for AUTO_TOP_UP, BORROW and incentives; nil otherwise
	subTier int         // where auto top-ups land: the subscription's pool's tier; -1 none
}

func (b *batch) tiers(sc *scope) [][]engine.Grant {
	t := make([][]engine.Grant, len(sc.chain))
	for n, pid := range sc.chain {
		t[n] = b.grants[pid]
	}
	return t
}

func (b *batch) budgets(sc *scope) []*engine.Budget {
	var out []*engine.Budget
	for _, pid := range sc.chain {
		if bg := b.pools[pid].Budget; bg != nil {
			out = append(out, bg)
		}
	}
	return out
}

// newScope loads what deciding item i needs.
func (b *batch) newScope(ctx context.Context, i int, it item, v engine.Versions) (*scope, error) {
	p := b.pools[it.pool]
	v.Terms = p.Terms
	sc := &scope{i: i, it: it, p: p, v: v, org: engine.Org{ID: p.OrgID, Segment: p.Segment}, chain: b.chains[it.pool], subTier: -1}
	if t := p.Terms; t != nil && (t.OverageMode == credit.OverageAutoTopUp || t.OverageMode == credit.OverageBorrow || v.Incentive != nil || t.OverageCap != nil || len(t.OverageTiers) > 0) {
		ts, err := b.s.caps(ctx, b.tx, b.caps, t, p.Segment, b.now)
		if err != nil {
			return nil, err
		}
		sc.ts = ts
		if t.OverageMode == credit.OverageAutoTopUp {
			for n, pid := range sc.chain {
				if pid == ts.sub.PoolID {
					sc.subTier = n
				}
			}
		}
	}
	return sc, nil
}

// decide decides item i and adds its effects to the batch.
func (b *batch) decide(ctx context.Context, sc *scope) (*engine.UsageDecision, error) {
	var (
		d   *engine.UsageDecision
		err error
	)
	switch {
	case sc.it.ev.RunID == "":
		d, err = b.single(ctx, sc, nil)
	case sc.it.ev.Status == credit.StatusStarted:
		d, err = b.start(ctx, sc)
	default:
		d, err = b.settle(ctx, sc)
	}
	if err != nil || d.Decision == credit.DecisionDenied {
		return d, err
	}
	return d, b.after(ctx, sc, d)
}

// buy buys n packs into the subscription's pool; it reports whether it could.
func (b *batch) buy(ctx context.Context, sc *scope, n int) (bool, error) {
	if n <= 0 || sc.subTier < 0 {
		return false, nil
	}
	for k := 0; k < n; k++ {
		g, err := b.s.buyPack(ctx, b.tx, sc.ts, b.now)
		if err != nil {
			return false, err
		}
		b.add(sc.ts.sub.PoolID, g)
	}
	return true, nil
}

// withTopUps runs decide; when the decision asks for AUTO_TOP_UP packs
// (topUps > 0), it buys them and decides once more. The caller handles a
// decision that still asks for packs: none could be bought, or they did
// not cover it.
func withTopUps[D any](ctx context.Context, b *batch, sc *scope, decide func() (D, error), topUps func(D) int) (D, error) {
	d, err := decide()
	if err != nil || topUps(d) == 0 {
		return d, err
	}
	if ok, err := b.buy(ctx, sc, topUps(d)); err != nil || !ok {
		return d, err
	}
	return decide()
}

// single decides a usage event outside a run (and the own burn of a run's
// STARTED event, nothing by default): burn, overage, hard budgets.
func (b *batch) single(ctx context.Context, sc *scope, reserved *engine.Reservation) (*engine.UsageDecision, error) {
	d, err := withTopUps(ctx, b, sc, func() (engine.UsageDecision, error) {
		return engine.DecideUsageTiers(ctx, sc.v, sc.org, sc.it.ev, b.tiers(sc), b.now)
	}, func(d engine.UsageDecision) int { return d.TopUps })
	if err != nil {
		return nil, err
	}
	if d.TopUps > 0 { // no pool to top up, or packs that did not cover it
		d = engine.UsageDecision{Decision: credit.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Requested,
			Reason: "insufficient credits: the auto top-up cannot cover " + d.Requested.String(), ReasonCode: credit.CodeInsufficientCredits}
	}
	if d.Decision != credit.DecisionDenied {
		if denied := b.count(sc, d.Credits, d); denied != nil {
			return denied, nil
		}
	}
	if reserved != nil && d.Decision == credit.DecisionAllowed && reserved.Decision == credit.DecisionDegraded {
		d.Decision, d.Reason = credit.DecisionDegraded, reserved.Reason
	}
	b.move(d.Draws, -1)
	return &d, nil
}

// count checks the hard budgets of the item's chain for credits and, when
// none is exceeded, adds them to every budget's spend (alerting the soft
// budgets it takes over their limit). It returns the DENIED decision when
// a hard budget would be exceeded.
func (b *batch) count(sc *scope, credits decimal.Decimal, d engine.UsageDecision) *engine.UsageDecision {
	budgets := b.budgets(sc)
	if len(budgets) == 0 || !credits.IsPositive() {
		return nil
	}
	vals := make([]engine.Budget, len(budgets))
	for n, bg := range budgets {
		vals[n] = *bg
	}
	hard, _ := engine.CheckBudgets(vals, credits)
	if hard != nil {
		return &engine.UsageDecision{Decision: credit.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Requested,
			ReasonCode: credit.CodeBudgetExceeded,
			Reason: fmt.Sprintf("pool %d's hard budget of %s per %s would be exceeded (%s spent or held, %s more)",
				hard.PoolID, hard.Limit, hard.Period, hard.Spent, credits)}
	}
	for _, bg := range budgets {
		b.spend(sc, bg, credits)
	}
	return nil
}

// spend adds delta to a budget's spend, alerting when it crosses the limit.
func (b *batch) spend(sc *scope, bg *engine.Budget, delta decimal.Decimal) {
	if delta.Add(bg.Spent).IsNegative() {
		delta = bg.Spent.Neg() // a budget set while the run was open: it counted nothing of it
	}
	if delta.IsZero() {
		return
	}
	if bg.Crossed(delta) {
		kind := "soft"
		if bg.Hard {
			kind = "hard"
		}
		b.alerts = append(b.alerts, budgetAlert{org: sc.p.OrgID, pool: bg.PoolID, item: sc.i, periodStart: bg.PeriodStart,
			kind:    credit.AlertBudgetExceeded,
			message: fmt.Sprintf("%s budget of %s per %s exceeded: %s spent", kind, bg.Limit, bg.Period, bg.Spent.Add(delta))})
	}
	bg.Spent = bg.Spent.Add(delta)
	b.spent[bg.PoolID] = true
}

// after is what an allowed decision does besides its draws: borrowing, the
// top-up below the threshold, incentives, the alert of an uncovered run.
func (b *batch) after(ctx context.Context, sc *scope, d *engine.UsageDecision) error {
	t := sc.p.Terms
	if d.Overage.IsPositive() {
		d.OverageAmount = t.OverageMoney(d.Overage)
	}
	if d.Borrowed.IsPositive() {
		t.BorrowLeft = t.BorrowLeft.Sub(d.Borrowed)
	}
	if t != nil && t.OverageCap != nil && d.Overage.IsPositive() {
		if a, ok := sc.ts.capped(d.Overage); ok {
			b.alerts = append(b.alerts, budgetAlert{org: sc.p.OrgID, pool: sc.ts.sub.PoolID, item: sc.i, kind: credit.AlertOverageCap,
				periodStart: sc.ts.start, message: a})
		}
	}
	if sc.subTier >= 0 && engine.TopUpAfter(usable(b.grants[sc.ts.sub.PoolID], b.now), sc.ts.terms) {
		if _, err := b.buy(ctx, sc, 1); err != nil {
			return err
		}
	}
	if d.Uncovered.IsPositive() {
		b.alerts = append(b.alerts, uncoveredAlert(sc, d))
	}
	if sc.ts == nil || !engine.EarnsIncentive(sc.v.Incentive, sc.it.ev, *d) {
		return nil
	}
	g, err := b.s.award(ctx, b.tx.Client, sc.v.Incentive, sc.ts, sc.org, sc.it.pool, sc.it.ev, "usage", "usage:"+sc.it.in.IdempotencyKey, b.now)
	if err != nil || g == nil {
		return err
	}
	b.add(sc.it.pool, engineGrant(g))
	b.incentives[sc.i] = append(b.incentives[sc.i], g)
	return nil
}
