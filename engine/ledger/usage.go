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
	"github.com/creditd/creditd/credit"
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
	Decision   credit.Decision
	Credits    decimal.Decimal
	Draws      []engine.Draw
	Overage    decimal.Decimal
	Duplicate  bool
	Reason     string
	ReasonCode credit.Code
	Reserved   decimal.Decimal // credits held for the run its STARTED event began
	Borrowed   decimal.Decimal // credits drawn on the next period's allocation
	Uncovered  decimal.Decimal // credits of a settling run nothing could cover (recorded, reasonCode UNCOVERED)
	Incentives []*ent.Grant    // INCENTIVE grants the event earned
}

// RecordUsage records one usage event: see RecordUsageBatch, of which it is
// the one-item case.
func (s *Service) RecordUsage(ctx context.Context, in engine.UsageInput) (UsageResult, error) {
	res, err := s.RecordUsageBatch(ctx, []engine.UsageInput{in})
	if err != nil {
		var e *credit.Error
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
		return nil, credit.Errorf(credit.CodeBatchTooLarge, "a batch holds at most %d events, got %d", s.maxBatch, len(ins))
	}
	now := s.Now()
	caller := auth.From(ctx)
	items := make([]item, len(ins))
	for i, in := range ins {
		if !caller.Sees(in.OrganizationID) {
			return nil, credit.AtIndex(&credit.Error{Code: credit.CodeNotFound, Field: "organizationId",
				Message: "organization " + strconv.Itoa(in.OrganizationID) + " not found"}, i)
		}
		ev, hash, err := in.Normalize(now)
		if err != nil {
			return nil, credit.AtIndex(err, i)
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
	//
	// A period due at now and not opened yet (the scheduler has not run
	// since the boundary) is opened first, so that no event sees the gap
	// between two periods: the batch rolls back, the period opens in its
	// own transaction (as the scheduler would open it), and the batch runs
	// again, once.
	lookup, openDue := false, true
	var out []UsageResult
	for {
		err = s.inUsageTx(ctx, func(tx *usageTx) error {
			var err error
			out, err = s.recordBatch(ctx, tx, items, snap, now, lookup, openDue)
			if err != nil && (isUniqueViolation(err) || errors.Is(err, errNeedLookup)) && !lookup {
				lookup = true
				return errRetry
			}
			return err
		})
		var due *periodDue
		if !errors.As(err, &due) {
			break
		}
		if err := s.openDue(ctx, due.subs, now); err != nil {
			return nil, err
		}
		openDue = false
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// periodDue stops a usage batch that found subscriptions with a period due.
type periodDue struct{ subs []int }

func (e *periodDue) Error() string {
	return fmt.Sprintf("%d subscriptions have a period due", len(e.subs))
}

// openDue opens the periods due at now of the subscriptions (idempotent:
// another server or the scheduler may have opened them meanwhile).
func (s *Service) openDue(ctx context.Context, subs []int, now time.Time) error {
	seen := map[int]bool{}
	for _, id := range subs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, err := s.closeSubscription(ctx, id, now, now); err != nil {
			return fmt.Errorf("open the period due of subscription %d: %w", id, err)
		}
	}
	return nil
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

// recordBatch loads, decides and posts one batch, in tx: lock the pools,
// load their grants and holds, let the engine decide every item in order
// against the running balances (see batch), then write the posting.
func (s *Service) recordBatch(ctx context.Context, tx *usageTx, items []item, snap *snapshot, now time.Time, lookup, openDue bool) ([]UsageResult, error) {
	b, err := s.loadBatch(ctx, tx, items, now, lookup, openDue)
	if err != nil {
		return nil, err
	}
	if snap.generation < tx.generation { // published through another server since: see catalog
		if snap, err = s.catalog.refresh(ctx, tx.Client); err != nil {
			return nil, err
		}
	}
	// Replays already in the database (second attempt only).
	existing := map[eventKey]*ent.UsageEvent{}
	if lookup {
		if existing, err = s.existingEvents(ctx, tx, items); err != nil {
			return nil, err
		}
	}
	out := make([]UsageResult, len(items))
	decisions := make([]*engine.UsageDecision, len(items))
	versions := make([]engine.Versions, len(items))
	first := map[eventKey]int{} // key -> index of its first item in this batch
	var replayed []int
	for i, it := range items {
		k := eventKey{it.in.OrganizationID, it.in.IdempotencyKey}
		if e, ok := existing[k]; ok {
			if e.PayloadHash != it.hash {
				return nil, credit.AtIndex(conflict(it.in.IdempotencyKey), i)
			}
			out[i] = resultOf(e)
			out[i].Duplicate = true
			replayed = append(replayed, i)
			continue
		}
		if j, ok := first[k]; ok {
			if items[j].hash != it.hash {
				return nil, credit.AtIndex(conflict(it.in.IdempotencyKey), i)
			}
			out[i] = UsageResult{Duplicate: true} // filled from item j below
			continue
		}
		first[k] = i
		p := b.pools[it.pool]
		pinned := p.RegisterVersion
		if p.PinnedUntil != nil && !it.ev.OccurredAt.Before(*p.PinnedUntil) {
			pinned = nil // grandfathered until then: the version in effect prices it
		}
		v, err := snap.versions(p.RegisterName, pinned, it.ev.OccurredAt)
		if err != nil {
			return nil, credit.AtIndex(err, i)
		}
		sc, err := b.newScope(ctx, i, it, v)
		if err != nil {
			return nil, err
		}
		if decisions[i], err = b.decide(ctx, sc); err != nil {
			return nil, credit.AtIndex(err, i)
		}
		versions[i] = sc.v
	}
	if err := s.postBatch(ctx, b, out, decisions, versions); err != nil {
		return nil, err
	}
	// Duplicates: within the batch copy their first item; from the
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

// loadBatch locks the pools the items draw on (a poolId, or the
// organisation's default pool) with the pools they fall through to, checks
// each belongs to its item's organisation, and loads their budgets' spend,
// their grants and the holds of the items' runs.
func (s *Service) loadBatch(ctx context.Context, tx *usageTx, items []item, now time.Time, lookup, openDue bool) (*batch, error) {
	poolIDs, chains, err := s.itemPools(ctx, tx, items)
	if err != nil {
		return nil, err
	}
	pools, err := s.lockPools(ctx, tx, poolIDs, now)
	if err != nil {
		return nil, err
	}
	if len(tx.due) > 0 && openDue {
		return nil, &periodDue{subs: tx.due}
	}
	for i, it := range items {
		if p, ok := pools[it.pool]; !ok || p.OrgID != it.in.OrganizationID {
			// Another organisation's pool answers as missing: ids cannot be probed.
			return nil, credit.AtIndex(&credit.Error{Code: credit.CodeNotFound, Field: "poolId",
				Message: "pool " + strconv.Itoa(it.pool) + " not found"}, i)
		}
	}
	if err := s.loadSpend(ctx, tx, pools); err != nil {
		return nil, err
	}
	// One PlanTerms per subscription, shared by its pools, so that what a
	// batch uses of the period's caps is seen by every item.
	termsOf, segments := map[int]*engine.PlanTerms{}, map[int]string{}
	for id, p := range pools {
		if p.Terms != nil {
			if t, ok := termsOf[p.Terms.SubscriptionID]; ok {
				p.Terms = t
				pools[id] = p
			} else {
				termsOf[p.Terms.SubscriptionID], segments[p.Terms.SubscriptionID] = p.Terms, p.Segment
			}
		}
	}
	for sub, t := range termsOf {
		pl, err := s.planOf(ctx, tx.Client, t.PlanID)
		if err != nil {
			return nil, err
		}
		t.Entitled, t.OverageTiers = pl.EntitledActions, pl.OverageTiers
		t.OveragePrice = planPrices(pl, segments[sub]).Overage
	}
	grants, err := s.loadGrants(ctx, tx, poolIDs)
	if err != nil {
		return nil, err
	}
	holds := map[runKey]*runHold{}
	if hasRuns(items) {
		if holds, err = s.loadHolds(ctx, tx, items); err != nil {
			return nil, err
		}
		if err := s.loadHeldGrants(ctx, tx, holds, grants); err != nil {
			return nil, err
		}
	}
	b := &batch{s: s, tx: tx, now: now, lookup: lookup, items: items, pools: pools, chains: chains, grants: grants,
		holds: holds, caps: map[int]*termsState{}, spent: map[int]bool{}, incentives: map[int][]*ent.Grant{}}
	b.index()
	return b, nil
}

// itemPools resolves each item's pool (its poolId, or its organisation's
// default pool) and returns every pool the batch may draw on, in id order
// (the lock order), with each item pool's fall-through chain.
func (s *Service) itemPools(ctx context.Context, tx *usageTx, items []item) ([]int, map[int][]int, error) {
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
			return nil, nil, err
		}
	}
	poolSet := map[int]bool{}
	for i := range items {
		if p := items[i].in.PoolID; p != nil {
			items[i].pool = *p
		} else if p, ok := defaults[items[i].in.OrganizationID]; ok {
			items[i].pool = p
		} else {
			return nil, nil, credit.AtIndex(&credit.Error{Code: credit.CodeNotFound, Field: "organizationId",
				Message: "organization " + strconv.Itoa(items[i].in.OrganizationID) + " not found or has no ACCOUNT pool; pass poolId"}, i)
		}
		poolSet[items[i].pool] = true
	}
	chains, err := s.chains(ctx, tx, sortedKeys(poolSet))
	if err != nil {
		return nil, nil, err
	}
	chainSet := map[int]bool{}
	for _, c := range chains {
		for _, id := range c {
			chainSet[id] = true
		}
	}
	return sortedKeys(chainSet), chains, nil
}

func sortedKeys(set map[int]bool) []int {
	out := make([]int, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// postBatch writes what the batch decided: events (in key order, so concurrent
// batches take index locks in the same order) with their entries, the
// grants' new remaining amounts, budget spend and alerts, holds.
func (s *Service) postBatch(ctx context.Context, b *batch, out []UsageResult, decisions []*engine.UsageDecision, versions []engine.Versions) error {
	var fresh []newEvent
	for i := range b.items {
		if decisions[i] != nil {
			fresh = append(fresh, newEvent{item: b.items[i], org: b.pools[b.items[i].pool].OrgID, d: decisions[i], v: versions[i], index: i})
		}
	}
	sort.Slice(fresh, func(x, y int) bool {
		ia, ib := fresh[x].item.in, fresh[y].item.in
		if ia.OrganizationID != ib.OrganizationID {
			return ia.OrganizationID < ib.OrganizationID
		}
		return ia.IdempotencyKey < ib.IdempotencyKey
	})
	updates := make([]engine.Grant, 0, len(b.touched))
	for _, g := range b.touched {
		updates = append(updates, *g)
	}
	sort.Slice(updates, func(x, y int) bool { return updates[x].ID < updates[y].ID })
	write := s.writeEnt
	if s.postgres() {
		write = s.writePostgres
	}
	evs, err := write(ctx, b.tx, fresh, updates, b.now)
	if err != nil {
		return err
	}
	for n, f := range fresh {
		d := f.d
		out[f.index] = UsageResult{Event: evs[n], Decision: d.Decision, Credits: d.Credits, Draws: d.Draws,
			Overage: d.Overage, Reason: d.Reason, ReasonCode: d.ReasonCode, Reserved: decimal.Zero, Borrowed: d.Borrowed,
			Uncovered: d.Uncovered, Incentives: b.incentives[f.index]}
	}
	if err := s.writeBudgets(ctx, b.tx, b.pools, b.spent, b.alerts, out, b.now); err != nil {
		return err
	}
	if len(b.holds) == 0 {
		return nil
	}
	if err := s.writeHolds(ctx, b.tx, b.holds, out, b.now); err != nil {
		return err
	}
	for _, h := range b.holds {
		if h.startItem >= 0 && h.settled < 0 {
			out[h.startItem].Reserved = h.amount
		}
	}
	return nil
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

func conflict(key string) *credit.Error {
	return &credit.Error{Code: credit.CodeIdempotencyConflict, Field: "idempotencyKey",
		Message: "idempotency key " + strconv.Quote(key) + " was already used with a different payload"}
}

func resultOf(e *ent.UsageEvent) UsageResult {
	return UsageResult{Event: e, Decision: e.Decision, Credits: e.Credits, Overage: e.Overage,
		Reason: e.Reason, ReasonCode: credit.Code(e.ReasonCode), Reserved: decimal.Zero, Borrowed: decimal.Zero, Uncovered: decimal.Zero}
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
		Where(ledgerentry.UsageEventIDIn(ids...), ledgerentry.KindIn(credit.EntryBurn, credit.EntryBorrow, credit.EntryUncovered)).
		Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	byEvent := map[int][]engine.Draw{}
	borrowed, uncovered := map[int]decimal.Decimal{}, map[int]decimal.Decimal{}
	for _, e := range entries {
		switch e.Kind {
		case credit.EntryBorrow:
			borrowed[*e.UsageEventID] = borrowed[*e.UsageEventID].Sub(e.Amount)
			continue
		case credit.EntryUncovered:
			uncovered[*e.UsageEventID] = uncovered[*e.UsageEventID].Sub(e.Amount)
			continue
		}
		byEvent[*e.UsageEventID] = append(byEvent[*e.UsageEventID], engine.Draw{GrantID: *e.GrantID, Amount: e.Amount.Neg()})
	}
	for _, i := range idx {
		out[i].Draws, out[i].Borrowed, out[i].Uncovered = byEvent[out[i].Event.ID], borrowed[out[i].Event.ID], uncovered[out[i].Event.ID]
	}
	// The hold a replayed STARTED event made (still open or not).
	var started []int
	for _, i := range idx {
		if e := out[i].Event; e.Status == credit.StatusStarted && e.RunID != "" {
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
