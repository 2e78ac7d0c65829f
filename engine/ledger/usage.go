package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/hold"
	"github.com/creditd/creditd/ent/incentiveaward"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/usageevent"
)

// UsageResult is the outcome of one usage event, first time or replayed.
type UsageResult struct {
	Event      *ent.UsageEvent
	Decision   engine.Decision
	Credits    decimal.Decimal
	Draws      []engine.Draw
	Overage    decimal.Decimal
	Duplicate  bool
	Reason     string
	ReasonCode engine.Code
	Reserved   decimal.Decimal // credits held for the run its STARTED event began
	Borrowed   decimal.Decimal // credits drawn on the next period's allocation
	Incentives []*ent.Grant    // INCENTIVE grants the event earned
}

// RecordUsage records one usage event: see RecordUsageBatch, of which it is
// the one-item case.
func (s *Service) RecordUsage(ctx context.Context, in engine.UsageInput) (UsageResult, error) {
	res, err := s.RecordUsageBatch(ctx, []engine.UsageInput{in})
	if err != nil {
		var e *engine.Error
		if errors.As(err, &e) && e.Index != nil { // one item: no index to name
			c := *e
			c.Index = nil
			return UsageResult{}, &c
		}
		return UsageResult{}, err
	}
	return res[0], nil
}

// RecordUsageBatch records usage events in one transaction. Each item is
// independently idempotent: an (organisation, idempotency key) already
// recorded returns its first result with Duplicate set and writes nothing; the
// same key with another payload is IDEMPOTENCY_CONFLICT. The batch is atomic
// for errors: bad input in any item, or a rule failing at run time, fails the
// whole batch (the error names the item) and writes nothing. A denial
// (insufficient credits) is a result, not an error: the event is recorded
// with decision DENIED and nothing drawn.
//
// The transaction locks the pools involved in id order, reads their grants,
// decides every item in order against the running balances, then writes the
// events, the ledger entries and the grants' new remaining amounts.
func (s *Service) RecordUsageBatch(ctx context.Context, ins []engine.UsageInput) ([]UsageResult, error) {
	if len(ins) == 0 {
		return []UsageResult{}, nil
	}
	if len(ins) > s.maxBatch {
		return nil, engine.Errorf(engine.CodeBatchTooLarge, "a batch holds at most %d events, got %d", s.maxBatch, len(ins))
	}
	now := s.Now()
	caller := auth.From(ctx)
	items := make([]item, len(ins))
	for i, in := range ins {
		if !caller.Sees(in.OrganizationID) {
			return nil, engine.AtIndex(&engine.Error{Code: engine.CodeNotFound, Field: "organizationId",
				Message: "organization " + strconv.Itoa(in.OrganizationID) + " not found"}, i)
		}
		ev, hash, err := in.Normalize(now)
		if err != nil {
			return nil, engine.AtIndex(err, i)
		}
		items[i] = item{in: in, ev: ev, hash: hash}
	}
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return nil, err
	}
	// First try optimistically: replays are rare, so the keys are not looked
	// up before inserting. A unique violation means a replay (or a concurrent
	// first attempt) exists: run again, looking keys up first.
	lookup := false
	var out []UsageResult
	err = s.inUsageTx(ctx, func(tx *usageTx) error {
		var err error
		out, err = s.recordBatch(ctx, tx, items, snap, now, lookup)
		if err != nil && (isUniqueViolation(err) || errors.Is(err, errNeedLookup)) && !lookup {
			lookup = true
			return errRetry
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type item struct {
	in   engine.UsageInput
	ev   engine.Event
	hash string
	pool int
}

type eventKey struct {
	org int
	key string
}

func (s *Service) recordBatch(ctx context.Context, tx *usageTx, items []item, snap *snapshot, now time.Time, lookup bool) ([]UsageResult, error) {
	// 1. Lock the pools the items draw on (a poolId, or the organisation's
	// default pool) and check each belongs to the item's organisation.
	var orgs []int
	seenOrg := map[int]bool{}
	for _, it := range items {
		if it.in.PoolID == nil && !seenOrg[it.in.OrganizationID] {
			seenOrg[it.in.OrganizationID] = true
			orgs = append(orgs, it.in.OrganizationID)
		}
	}
	var defaults map[int]int
	if len(orgs) > 0 {
		var err error
		if defaults, err = s.defaultPools(ctx, tx, orgs); err != nil {
			return nil, err
		}
	}
	poolSet := map[int]bool{}
	for i := range items {
		if p := items[i].in.PoolID; p != nil {
			items[i].pool = *p
		} else if p, ok := defaults[items[i].in.OrganizationID]; ok {
			items[i].pool = p
		} else {
			return nil, engine.AtIndex(&engine.Error{Code: engine.CodeNotFound, Field: "organizationId",
				Message: "organization " + strconv.Itoa(items[i].in.OrganizationID) + " not found or has no ACCOUNT pool; pass poolId"}, i)
		}
		poolSet[items[i].pool] = true
	}
	itemPools := make([]int, 0, len(poolSet))
	for p := range poolSet {
		itemPools = append(itemPools, p)
	}
	sort.Ints(itemPools)
	chains, err := s.chains(ctx, tx, itemPools)
	if err != nil {
		return nil, err
	}
	chainSet := map[int]bool{}
	for _, c := range chains {
		for _, id := range c {
			chainSet[id] = true
		}
	}
	poolIDs := make([]int, 0, len(chainSet))
	for p := range chainSet {
		poolIDs = append(poolIDs, p)
	}
	sort.Ints(poolIDs)
	pools, err := s.lockPools(ctx, tx, poolIDs, now)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		if p, ok := pools[it.pool]; !ok || p.OrgID != it.in.OrganizationID {
			// Another organisation's pool answers as missing: ids cannot be probed.
			return nil, engine.AtIndex(&engine.Error{Code: engine.CodeNotFound, Field: "poolId",
				Message: "pool " + strconv.Itoa(it.pool) + " not found"}, i)
		}
	}
	if err := s.loadSpend(ctx, tx, pools); err != nil {
		return nil, err
	}
	// One PlanTerms per subscription, shared by its pools, so that what a
	// batch uses of the period's caps is seen by every item.
	termsOf := map[int]*engine.PlanTerms{}
	for id, p := range pools {
		if p.Terms != nil {
			if t, ok := termsOf[p.Terms.SubscriptionID]; ok {
				p.Terms = t
				pools[id] = p
			} else {
				termsOf[p.Terms.SubscriptionID] = p.Terms
			}
		}
	}
	capsOf := map[int]*termsState{}

	// 2. Replays already in the database (second attempt only).
	existing := map[eventKey]*ent.UsageEvent{}
	if lookup {
		if existing, err = s.existingEvents(ctx, tx, items); err != nil {
			return nil, err
		}
	}

	// 3. The grants of the pools and the pools they fall through to (and,
	// for runs, their holds), then decide each item against running
	// balances and budgets.
	grants, err := s.loadGrants(ctx, tx, poolIDs)
	if err != nil {
		return nil, err
	}
	var holds map[runKey]*runHold
	if hasRuns(items) {
		if holds, err = s.loadHolds(ctx, tx, items); err != nil {
			return nil, err
		}
		if err := s.loadHeldGrants(ctx, tx, holds, grants); err != nil {
			return nil, err
		}
	}
	byID := map[int]*engine.Grant{}
	tx.grantPool = map[int]int{}
	for pid := range grants {
		for gi := range grants[pid] {
			g := &grants[pid][gi]
			byID[g.ID], tx.grantPool[g.ID] = g, pid
		}
	}
	touched := map[int]*engine.Grant{}
	// add appends a grant bought during the batch (an auto top-up) to its
	// pool, keeping byID and touched pointing at the pool's current slice.
	add := func(pid int, g engine.Grant) {
		grants[pid] = append(grants[pid], g)
		tx.grantPool[g.ID] = pid
		for gi := range grants[pid] {
			ptr := &grants[pid][gi]
			byID[ptr.ID] = ptr
			if _, ok := touched[ptr.ID]; ok {
				touched[ptr.ID] = ptr
			}
		}
	}
	// move takes draws out of their grants (sign -1) or gives them back (+1).
	move := func(draws []engine.Draw, sign int64) {
		for _, dr := range draws {
			if g := byID[dr.GrantID]; g != nil {
				g.Remaining = g.Remaining.Add(dr.Amount.Mul(decimal.NewFromInt(sign)))
				touched[g.ID] = g
			}
		}
	}
	out := make([]UsageResult, len(items))
	decisions := make([]*engine.UsageDecision, len(items))
	versions := make([]engine.Versions, len(items))
	first := map[eventKey]int{} // key -> index of its first item in this batch
	var replayed []int
	spent := map[int]bool{} // budgeted pools whose spend changed
	incentives := map[int][]*ent.Grant{}
	var alerts []budgetAlert
	for i, it := range items {
		k := eventKey{it.in.OrganizationID, it.in.IdempotencyKey}
		if e, ok := existing[k]; ok {
			if e.PayloadHash != it.hash {
				return nil, engine.AtIndex(conflict(it.in.IdempotencyKey), i)
			}
			out[i] = resultOf(e)
			out[i].Duplicate = true
			replayed = append(replayed, i)
			continue
		}
		if j, ok := first[k]; ok {
			if items[j].hash != it.hash {
				return nil, engine.AtIndex(conflict(it.in.IdempotencyKey), i)
			}
			out[i] = UsageResult{Duplicate: true} // filled from item j below
			continue
		}
		first[k] = i
		p := pools[it.pool]
		v, err := snap.versions(p.RegisterName, p.RegisterVersion, it.ev.OccurredAt)
		if err != nil {
			return nil, engine.AtIndex(err, i)
		}
		v.Terms = p.Terms
		org := engine.Org{ID: p.OrgID, Segment: p.Segment}
		chain := chains[it.pool]
		tiers := make([][]engine.Grant, len(chain))
		var budgets []*engine.Budget
		for n, pid := range chain {
			tiers[n] = grants[pid]
			if b := pools[pid].Budget; b != nil {
				budgets = append(budgets, b)
			}
		}
		if it.ev.RunID != "" {
			d, err := s.run(ctx, holds, i, it, v, org, tiers, move, lookup, now)
			if err != nil {
				return nil, engine.AtIndex(err, i)
			}
			if d != nil { // the run may not start
				decisions[i], versions[i] = d, v
				continue
			}
		}
		var ts *termsState
		if t := p.Terms; t != nil && (t.OverageMode == engine.OverageAutoTopUp || t.OverageMode == engine.OverageBorrow) {
			if ts, err = s.caps(ctx, tx, capsOf, t, now); err != nil {
				return nil, err
			}
		}
		subTier := -1 // where auto top-ups land: the subscription's pool, when it is in the chain
		if ts != nil {
			for n, pid := range chain {
				if pid == ts.sub.PoolID {
					subTier = n
				}
			}
		}
		d, err := engine.DecideUsageTiers(ctx, v, org, it.ev, tiers, now)
		if err != nil {
			return nil, engine.AtIndex(err, i)
		}
		if d.TopUps > 0 && subTier >= 0 {
			for n := 0; n < d.TopUps; n++ {
				g, err := s.buyPack(ctx, tx, ts, now)
				if err != nil {
					return nil, err
				}
				add(ts.sub.PoolID, g)
			}
			tiers[subTier] = grants[ts.sub.PoolID]
			if d, err = engine.DecideUsageTiers(ctx, v, org, it.ev, tiers, now); err != nil {
				return nil, engine.AtIndex(err, i)
			}
		}
		if d.TopUps > 0 { // no pool to top up, or packs that did not cover it
			d = engine.UsageDecision{Decision: engine.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Requested,
				Reason: "insufficient credits: the auto top-up cannot cover " + d.Requested.String(), ReasonCode: engine.CodeInsufficientCredits}
		}
		if d.Decision != engine.DecisionDenied && len(budgets) > 0 {
			vals := make([]engine.Budget, len(budgets))
			for n, b := range budgets {
				vals[n] = *b
			}
			hard, crossed := engine.CheckBudgets(vals, d.Credits)
			if hard != nil {
				d = engine.UsageDecision{Decision: engine.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Credits,
					ReasonCode: engine.CodeBudgetExceeded,
					Reason: fmt.Sprintf("pool %d's hard budget of %s per %s would be exceeded (%s spent, %s more)",
						hard.PoolID, hard.Limit, pools[hard.PoolID].BudgetPeriod, hard.Spent, d.Credits)}
			} else {
				for _, b := range budgets {
					b.Spent = b.Spent.Add(d.Credits)
					spent[b.PoolID] = true
				}
				for _, c := range crossed {
					alerts = append(alerts, budgetAlert{org: p.OrgID, pool: c.PoolID, item: i, periodStart: c.PeriodStart,
						message: fmt.Sprintf("soft budget of %s per %s exceeded: %s spent", c.Limit, pools[c.PoolID].BudgetPeriod, c.Spent.Add(d.Credits))})
				}
			}
		}
		move(d.Draws, -1)
		decisions[i], versions[i] = &d, v
		if d.Borrowed.IsPositive() {
			p.Terms.BorrowLeft = p.Terms.BorrowLeft.Sub(d.Borrowed)
		}
		if subTier >= 0 && d.Decision != engine.DecisionDenied && engine.TopUpAfter(usable(grants[ts.sub.PoolID], now), ts.terms) {
			g, err := s.buyPack(ctx, tx, ts, now)
			if err != nil {
				return nil, err
			}
			add(ts.sub.PoolID, g)
		}
		if v.Incentive != nil && p.Terms != nil && d.Decision != engine.DecisionDenied {
			its, err := s.caps(ctx, tx, capsOf, p.Terms, now)
			if err != nil {
				return nil, err
			}
			g, err := s.award(ctx, tx.Client, v.Incentive, its, org, it.pool, it.ev, "usage", "usage:"+it.in.IdempotencyKey, now)
			if err != nil {
				return nil, engine.AtIndex(err, i)
			}
			if g != nil {
				add(it.pool, engineGrant(g))
				incentives[i] = append(incentives[i], g)
			}
		}
	}

	// 4. Write: events (in key order, so concurrent batches take index locks
	// in the same order), entries, grants.
	var fresh []newEvent
	for i := range items {
		if decisions[i] != nil {
			fresh = append(fresh, newEvent{item: items[i], org: pools[items[i].pool].OrgID, d: decisions[i], v: versions[i], index: i})
		}
	}
	sort.Slice(fresh, func(a, b int) bool {
		ia, ib := fresh[a].item.in, fresh[b].item.in
		if ia.OrganizationID != ib.OrganizationID {
			return ia.OrganizationID < ib.OrganizationID
		}
		return ia.IdempotencyKey < ib.IdempotencyKey
	})
	updates := make([]engine.Grant, 0, len(touched))
	for _, g := range touched {
		updates = append(updates, *g)
	}
	sort.Slice(updates, func(a, b int) bool { return updates[a].ID < updates[b].ID })
	write := s.writeEnt
	if s.postgres() {
		write = s.writePostgres
	}
	evs, err := write(ctx, tx, fresh, updates, now)
	if err != nil {
		return nil, err
	}
	for n, f := range fresh {
		d := f.d
		out[f.index] = UsageResult{Event: evs[n], Decision: d.Decision, Credits: d.Credits, Draws: d.Draws,
			Overage: d.Overage, Reason: d.Reason, ReasonCode: d.ReasonCode, Reserved: decimal.Zero, Borrowed: d.Borrowed,
			Incentives: incentives[f.index]}
	}
	if err := s.writeBudgets(ctx, tx, pools, spent, alerts, out, now); err != nil {
		return nil, err
	}
	if len(holds) > 0 {
		if err := s.writeHolds(ctx, tx, holds, out, now); err != nil {
			return nil, err
		}
		for _, h := range holds {
			if h.startItem >= 0 && h.settled < 0 {
				out[h.startItem].Reserved = h.amount
			}
		}
	}

	// 5. Duplicates: within the batch copy their first item; from the
	// database load their draws.
	for i, it := range items {
		if out[i].Duplicate && out[i].Event == nil {
			j := first[eventKey{it.in.OrganizationID, it.in.IdempotencyKey}]
			out[i] = out[j]
			out[i].Duplicate = true
		}
	}
	if len(replayed) > 0 {
		if err := s.loadDraws(ctx, tx, out, replayed); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// usable sums the credits of the grants usable at now.
func usable(gs []engine.Grant, now time.Time) decimal.Decimal {
	sum := decimal.Zero
	for _, g := range gs {
		if g.Usable(now) {
			sum = sum.Add(g.Remaining)
		}
	}
	return sum
}

func conflict(key string) *engine.Error {
	return &engine.Error{Code: engine.CodeIdempotencyConflict, Field: "idempotencyKey",
		Message: "idempotency key " + strconv.Quote(key) + " was already used with a different payload"}
}

func resultOf(e *ent.UsageEvent) UsageResult {
	return UsageResult{Event: e, Decision: e.Decision, Credits: e.Credits, Overage: e.Overage,
		Reason: e.Reason, ReasonCode: engine.Code(e.ReasonCode), Reserved: decimal.Zero, Borrowed: decimal.Zero}
}

func (s *Service) existingEvents(ctx context.Context, tx *usageTx, items []item) (map[eventKey]*ent.UsageEvent, error) {
	byOrg := map[int][]string{}
	for _, it := range items {
		byOrg[it.in.OrganizationID] = append(byOrg[it.in.OrganizationID], it.in.IdempotencyKey)
	}
	out := map[eventKey]*ent.UsageEvent{}
	for org, keys := range byOrg {
		evs, err := tx.UsageEvent.Query().
			Where(usageevent.OrganizationID(org), usageevent.IdempotencyKeyIn(keys...)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out[eventKey{org, e.IdempotencyKey}] = e
		}
	}
	return out, nil
}

// loadDraws fills the draws of replayed results from their BURN entries.
func (s *Service) loadDraws(ctx context.Context, tx *usageTx, out []UsageResult, idx []int) error {
	ids := make([]int, len(idx))
	for n, i := range idx {
		ids[n] = out[i].Event.ID
	}
	entries, err := tx.LedgerEntry.Query().
		Where(ledgerentry.UsageEventIDIn(ids...), ledgerentry.KindIn(engine.EntryBurn, engine.EntryBorrow)).
		Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	byEvent := map[int][]engine.Draw{}
	borrowed := map[int]decimal.Decimal{}
	for _, e := range entries {
		if e.Kind == engine.EntryBorrow {
			borrowed[*e.UsageEventID] = borrowed[*e.UsageEventID].Sub(e.Amount)
			continue
		}
		byEvent[*e.UsageEventID] = append(byEvent[*e.UsageEventID], engine.Draw{GrantID: *e.GrantID, Amount: e.Amount.Neg()})
	}
	for _, i := range idx {
		out[i].Draws, out[i].Borrowed = byEvent[out[i].Event.ID], borrowed[out[i].Event.ID]
	}
	// The hold a replayed STARTED event made (still open or not).
	var started []int
	for _, i := range idx {
		if e := out[i].Event; e.Status == engine.StatusStarted && e.RunID != "" {
			started = append(started, e.ID)
		}
	}
	if len(started) > 0 {
		hs, err := tx.Hold.Query().Where(hold.StartedEventIDIn(started...)).All(ctx)
		if err != nil {
			return err
		}
		for _, h := range hs {
			for _, i := range idx {
				if out[i].Event.ID == h.StartedEventID && (h.SettledEventID == nil || *h.SettledEventID != h.StartedEventID) {
					out[i].Reserved = h.Amount
				}
			}
		}
	}
	// The incentives the first time earned.
	behaviors := make([]string, len(idx))
	for n, i := range idx {
		behaviors[n] = "usage:" + out[i].Event.IdempotencyKey
	}
	awards, err := tx.IncentiveAward.Query().Where(incentiveaward.BehaviorIn(behaviors...)).All(ctx)
	if err != nil || len(awards) == 0 {
		return err
	}
	for _, a := range awards {
		g, err := tx.Grant.Get(ctx, a.GrantID)
		if err != nil {
			return err
		}
		for _, i := range idx {
			if e := out[i].Event; e.PoolID == a.PoolID && "usage:"+e.IdempotencyKey == a.Behavior {
				out[i].Incentives = append(out[i].Incentives, g)
			}
		}
	}
	return nil
}
