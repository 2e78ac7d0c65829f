package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/hold"
	"github.com/creditd/creditd/ent/ledgerentry"
)

// Agent runs. A usage event with a runId belongs to a run: its STARTED event
// holds the credits the run is expected to cost (HOLD entries; the pool's
// reserved balance) and its terminal event (SUCCEEDED, FAILED or PARTIAL)
// gives the hold back (RELEASE entries) and burns what the burn policy
// charges, in the same transaction. A hold never settled is released after
// the hold timeout (ReleaseExpiredHolds, run by the server's scheduler). A
// run holds once, and settles once.

// DefaultHoldTimeout is how long an unsettled hold lives.
const DefaultHoldTimeout = time.Hour

// errNeedLookup asks for the batch to run again with its keys looked up
// first: what looked like a second STARTED or terminal event of a run may be
// a replay of the first.
var errNeedLookup = errors.New("run again looking keys up")

type runKey struct {
	org int
	run string
}

// runHold is a hold as the batch sees it: loaded, or created by it.
type runHold struct {
	id         int // 0: created by this batch
	org, pool  int
	run        string
	amount     decimal.Decimal
	status     string // OPEN, SETTLED, RELEASED
	draws      []engine.Draw
	startItem  int // the batch item that started it (new holds)
	settled    int // the batch item that settled it; -1: none
	wasOpen    bool
	wasSettled bool // a terminal event already came (for a hold released by timeout)
	expiresAt  time.Time
	budgeted   decimal.Decimal // what the start counted against the budgets
	createdAt  time.Time       // when the run started: the budget period it counted in
}

func hasRuns(items []item) bool {
	for _, it := range items {
		if it.ev.RunID != "" {
			return true
		}
	}
	return false
}

// loadHeldGrants adds to grants the grants open holds took credits from that
// are not loaded yet (a grant fully held has nothing left, so loadGrants
// skipped it).
func (s *Service) loadHeldGrants(ctx context.Context, tx *usageTx, holds map[runKey]*runHold, grants map[int][]engine.Grant) error {
	loaded := map[int]bool{}
	for _, gs := range grants {
		for _, g := range gs {
			loaded[g.ID] = true
		}
	}
	var missing []int
	for _, h := range holds {
		if h.status != holdOpen {
			continue
		}
		for _, dr := range h.draws {
			if !loaded[dr.GrantID] {
				missing = append(missing, dr.GrantID)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	gs, err := tx.Grant.Query().Where(grant.IDIn(missing...)).All(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		grants[g.PoolID] = append(grants[g.PoolID], engineGrant(g))
	}
	return nil
}

func quote(s string) string { return strconv.Quote(s) }

// loadHolds returns the holds of the runs the items name, with their draws.
func (s *Service) loadHolds(ctx context.Context, tx *usageTx, items []item) (map[runKey]*runHold, error) {
	byOrg := map[int][]string{}
	for _, it := range items {
		if it.ev.RunID != "" {
			byOrg[it.in.OrganizationID] = append(byOrg[it.in.OrganizationID], it.ev.RunID)
		}
	}
	out := map[runKey]*runHold{}
	var started []int
	byStart := map[int]*runHold{}
	for org, runs := range byOrg {
		hs, err := tx.Hold.Query().Where(hold.OrganizationID(org), hold.RunIDIn(runs...)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			rh := &runHold{id: h.ID, org: h.OrganizationID, pool: h.PoolID, run: h.RunID, amount: h.Amount,
				status: h.Status, startItem: -1, settled: -1, wasOpen: h.Status == holdOpen,
				wasSettled: h.SettledEventID != nil, expiresAt: h.ExpiresAt, budgeted: decimal.Zero, createdAt: h.CreatedAt}
			if h.Budgeted.Valid {
				rh.budgeted = h.Budgeted.Decimal
			}
			out[runKey{org, h.RunID}] = rh
			started = append(started, h.StartedEventID)
			byStart[h.StartedEventID] = rh
		}
	}
	if len(started) > 0 {
		es, err := tx.LedgerEntry.Query().Where(ledgerentry.UsageEventIDIn(started...), ledgerentry.KindEQ(credit.EntryHold)).
			Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			rh := byStart[*e.UsageEventID]
			rh.draws = append(rh.draws, engine.Draw{GrantID: *e.GrantID, Amount: e.Amount.Neg()})
		}
	}
	return out, nil
}

const (
	holdOpen     = "OPEN"
	holdSettled  = "SETTLED"
	holdReleased = "RELEASED"
)

// writeHolds writes what the batch did to holds, after its events: new holds
// with their HOLD entries, and settled holds with their RELEASE entries.
func (s *Service) writeHolds(ctx context.Context, tx *usageTx, holds map[runKey]*runHold, out []UsageResult, now time.Time) error {
	var entries []*ent.LedgerEntryCreate
	entry := func(h *runHold, kind credit.EntryKind, ev *ent.UsageEvent, dr engine.Draw, amount decimal.Decimal) {
		entries = append(entries, tx.LedgerEntry.Create().SetOrganizationID(h.org).SetPoolID(tx.poolOf(dr.GrantID, h.pool)).SetGrantID(dr.GrantID).
			SetKind(kind).SetAmount(amount).SetUsageEventID(ev.ID).SetMemo("run "+h.run).SetCreatedAt(now))
	}
	for _, h := range holds {
		if h.id == 0 {
			started := out[h.startItem].Event
			c := tx.Hold.Create().SetOrganizationID(h.org).SetPoolID(h.pool).SetRunID(h.run).SetAmount(h.amount).
				SetBudgeted(decimal.NewNullDecimal(h.budgeted)).
				SetStartedEventID(started.ID).SetExpiresAt(h.expiresAt).SetStatus(holdOpen).SetCreatedAt(now)
			if h.settled >= 0 {
				c.SetStatus(holdSettled).SetSettledEventID(out[h.settled].Event.ID).SetClosedAt(now)
			}
			created, err := c.Save(ctx)
			if err != nil {
				return err
			}
			h.id = created.ID
			for _, dr := range h.draws {
				entry(h, credit.EntryHold, started, dr, dr.Amount.Neg())
			}
			if h.settled >= 0 {
				for _, dr := range h.draws {
					entry(h, credit.EntryRelease, out[h.settled].Event, dr, dr.Amount)
				}
			}
			continue
		}
		if h.settled < 0 {
			continue
		}
		settledBy := out[h.settled].Event
		status := holdSettled
		if !h.wasOpen {
			status = holdReleased // timed out before its run settled: its credits went back then
		}
		if err := tx.Hold.UpdateOneID(h.id).SetStatus(status).SetSettledEventID(settledBy.ID).SetClosedAt(now).Exec(ctx); err != nil {
			return err
		}
		if h.wasOpen {
			for _, dr := range h.draws {
				entry(h, credit.EntryRelease, settledBy, dr, dr.Amount)
			}
		}
	}
	if len(entries) == 0 {
		return nil
	}
	return tx.LedgerEntry.CreateBulk(entries...).Exec(ctx)
}

// ReleaseExpiredHolds gives back the credits of holds whose run never
// settled within the hold timeout (RELEASE entries), one hold per
// transaction, and takes what the run counted off the budgets of its pool
// and the pools above (in the budget period it counted in). It locks the
// hold's pool with the pools it falls through to, as usage does: a hold may
// hold credits of a parent's grants. It is idempotent and safe with several
// servers.
func (s *Service) ReleaseExpiredHolds(ctx context.Context, now time.Time) (int, error) {
	due, err := s.db.Client.Hold.Query().Where(hold.Status(holdOpen), hold.ExpiresAtLTE(now)).IDs(ctx)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, id := range due {
		done := false
		err := s.inUsageTx(ctx, func(tx *usageTx) error {
			var err error
			done, err = s.releaseHold(ctx, tx, id)
			return err
		})
		if err != nil {
			return released, err
		}
		if done {
			released++
		}
	}
	return released, nil
}

// releaseHold releases one timed-out hold, in tx; false when a terminal
// event settled it first.
func (s *Service) releaseHold(ctx context.Context, tx *usageTx, id int) (bool, error) {
	h, err := tx.Hold.Get(ctx, id)
	if err != nil {
		return false, err
	}
	chains, err := s.chains(ctx, tx, []int{h.PoolID})
	if err != nil {
		return false, err
	}
	pools, err := s.lockPools(ctx, tx, sortedKeys(setOf(chains[h.PoolID])), s.Now())
	if err != nil {
		return false, err
	}
	// Re-read under the pool locks: a terminal event may have settled it.
	if h, err = tx.Hold.Get(ctx, id); err != nil || h.Status != holdOpen {
		return false, err
	}
	es, err := tx.LedgerEntry.Query().Where(ledgerentry.UsageEventID(h.StartedEventID), ledgerentry.KindEQ(credit.EntryHold)).All(ctx)
	if err != nil {
		return false, err
	}
	now := s.Now()
	release := engine.Posting{Org: h.OrganizationID}
	started := h.StartedEventID
	for _, e := range es {
		release.Moves = append(release.Moves, engine.Move{Pool: e.PoolID, Grant: *e.GrantID, Kind: credit.EntryRelease,
			Amount: e.Amount.Neg(), UsageEvent: &started, Memo: "run " + h.RunID + " timed out"})
	}
	if _, err := s.post(ctx, tx.Client, release, now); err != nil {
		return false, err
	}
	if h.Budgeted.Valid && h.Budgeted.Decimal.IsPositive() {
		if err := s.loadSpend(ctx, tx, pools); err != nil {
			return false, err
		}
		spent := map[int]bool{}
		for _, pid := range chains[h.PoolID] {
			b := pools[pid].Budget
			if b == nil || !engine.BudgetPeriodStart(b.Period, h.CreatedAt).Equal(b.PeriodStart) {
				continue // no budget, or the run counted in a period now closed
			}
			b.Spent, spent[pid] = decimal.Max(b.Spent.Sub(h.Budgeted.Decimal), decimal.Zero), true
		}
		if err := s.writeBudgets(ctx, tx, pools, spent, nil, nil, now); err != nil {
			return false, err
		}
	}
	return true, tx.Hold.UpdateOneID(h.ID).SetStatus(holdReleased).SetClosedAt(now).Exec(ctx)
}

func setOf(ids []int) map[int]bool {
	out := make(map[int]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// start decides a run's STARTED event: the engine reserves the run's
// expected cost (engine.Reserve: overage modes, degraded mode, top-ups),
// the hard budgets of the pool and the pools above count the expected cost
// before anything is held, and the event's own burn (nothing, unless the
// burn rule charges at start) is decided as a single event. When that own
// burn is denied, the run does not start: its hold and budget spend are
// taken back.
func (b *batch) start(ctx context.Context, sc *scope) (*engine.UsageDecision, error) {
	k := runKey{sc.org.ID, sc.it.ev.RunID}
	if b.holds[k] != nil {
		if !b.lookup {
			return nil, errNeedLookup
		}
		return nil, credit.Errorf(credit.CodeRunStarted, "run %q has already started", sc.it.ev.RunID)
	}
	r, err := withTopUps(ctx, b, sc, func() (engine.Reservation, error) {
		return engine.Reserve(ctx, sc.v, sc.org, sc.it.ev, b.tiers(sc), b.now)
	}, func(r engine.Reservation) int { return r.TopUps })
	if err != nil {
		return nil, err
	}
	if r.TopUps > 0 {
		return denied(r.Expected, credit.CodeInsufficientCredits, "insufficient credits: the auto top-up cannot cover the run's "+r.Expected.String()), nil
	}
	if r.Denied() {
		return denied(r.Expected, r.ReasonCode, r.Reason), nil
	}
	mark := b.mark(sc)
	if d := b.count(sc, r.Expected, engine.UsageDecision{Requested: r.Expected}); d != nil {
		return d, nil
	}
	budgeted := decimal.Zero // what the budgets counted: a budget set later never counted the start
	if len(mark.spent) > 0 {
		budgeted = r.Expected
	}
	b.move(r.Draws, -1)
	h := &runHold{org: sc.org.ID, pool: sc.it.pool, run: sc.it.ev.RunID, amount: r.Held, status: holdOpen,
		draws: r.Draws, startItem: sc.i, settled: -1, wasOpen: true, expiresAt: b.now.Add(b.s.holdTimeout),
		budgeted: budgeted, createdAt: b.now}
	b.holds[k] = h
	d, err := b.single(ctx, sc, &r)
	if err != nil {
		return nil, err
	}
	if d.Decision == credit.DecisionDenied {
		b.move(r.Draws, +1)
		b.undo(mark)
		delete(b.holds, k)
	}
	return d, nil
}

// settle decides a run's terminal event (engine.SettleRun): the burn takes
// the run's held credits first, then the balance, then what the overage
// mode allows; what none of them covers is recorded as UNCOVERED and
// alerted, never waived. The hold goes back to its grants (RELEASE), the
// part of it on grants that expired while held expires (EXPIRE). Budgets
// count the charge less what the start counted in the same budget period.
func (b *batch) settle(ctx context.Context, sc *scope) (*engine.UsageDecision, error) {
	h, err := b.openRun(sc)
	if err != nil {
		return nil, err
	}
	var held []engine.Draw
	if h.status == holdOpen {
		held = h.draws
	}
	d, err := withTopUps(ctx, b, sc, func() (engine.UsageDecision, error) {
		return engine.SettleRun(ctx, sc.v, sc.org, sc.it.ev, held, b.tiers(sc), b.now)
	}, func(d engine.UsageDecision) int { return d.TopUps })
	if err != nil {
		return nil, err
	}
	if d.TopUps > 0 { // the packs could not be bought, or did not cover it
		d = engine.Uncover(d)
	}
	b.move(held, +1)
	b.move(d.Draws, -1)
	b.move(d.Expired, -1)
	h.settled = sc.i
	counted := decimal.Zero
	if h.status == holdOpen {
		counted = h.budgeted // a hold released by timeout gave its budget back
	}
	for _, bg := range b.budgets(sc) {
		countedIn := engine.BudgetPeriodStart(bg.Period, h.createdAt)
		b.spend(sc, bg, engine.BudgetDelta(d.Credits, counted, countedIn, bg.PeriodStart))
	}
	return &d, nil
}

// openRun is the hold a terminal event settles, or why it cannot.
func (b *batch) openRun(sc *scope) (*runHold, error) {
	h := b.holds[runKey{sc.org.ID, sc.it.ev.RunID}]
	switch {
	case h == nil:
		return nil, &credit.Error{Code: credit.CodeUnknownRun, Field: "runId", Message: "run " + quote(sc.it.ev.RunID) + " never started (send its STARTED event first)"}
	case h.settled >= 0 || h.status == holdSettled || (h.status == holdReleased && h.wasSettled):
		if !b.lookup {
			return nil, errNeedLookup
		}
		return nil, &credit.Error{Code: credit.CodeRunSettled, Field: "runId", Message: "run " + quote(sc.it.ev.RunID) + " is already settled"}
	case h.pool != sc.it.pool:
		return nil, credit.Invalid("poolId", "run %q holds credits in pool %d", sc.it.ev.RunID, h.pool)
	}
	return h, nil
}

// denied is a DENIED decision that charges nothing.
func denied(requested decimal.Decimal, code credit.Code, reason string) *engine.UsageDecision {
	return &engine.UsageDecision{Decision: credit.DecisionDenied, Credits: decimal.Zero, Requested: requested, ReasonCode: code, Reason: reason}
}

// uncoveredAlert is the alert of a run settled beyond what covered it.
func uncoveredAlert(sc *scope, d *engine.UsageDecision) budgetAlert {
	return budgetAlert{org: sc.p.OrgID, pool: sc.it.pool, item: sc.i, kind: credit.AlertRunUncovered,
		periodStart: engine.BudgetPeriodStart(credit.PeriodDay, sc.it.ev.OccurredAt),
		message:     fmt.Sprintf("run %q settled %s credits beyond its hold, the balance and the plan's overage mode", sc.it.ev.RunID, d.Uncovered)}
}
