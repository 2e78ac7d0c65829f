package ledger

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/hold"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/poolspend"
	"github.com/creditd/creditd/ent/predicate"
	"github.com/creditd/creditd/ent/usageevent"
)

// Violation is one broken ledger invariant.
type Violation struct {
	Invariant string
	Detail    string
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// VerifyReport is what Verify read and what it found broken.
type VerifyReport struct {
	Organizations, Pools, Grants, Entries, Events, Holds int
	Violations                                           []Violation
}

// verifyPage is how many rows Verify reads at a time: its memory is the
// pools and grants plus one page, whatever the size of the ledger.
var verifyPage = 5000

// maxViolations bounds the report: past it, the ledger is broken enough.
const maxViolations = 1000

// Verify checks the invariants of ARCHITECTURE.md over the whole database
// and returns what is broken (nothing, on a healthy ledger):
//   - every grant: remaining = amount + the sum of its other entries,
//     0 <= remaining <= amount, and exactly one opening entry of +amount
//     (GRANT; ROLLOVER_IN for credits rolled into a new period; TRANSFER_IN
//     for credits moved from another pool); its
//     pool exists and its organisation is the pool's; a grant waiting for
//     payment (PENDING) or whose payment failed has no entries and holds 0;
//   - every entry's pool is its grant's pool, and its organisation the pool's;
//   - transfers move credits and make none: TRANSFER_OUT and TRANSFER_IN
//     entries sum to zero;
//   - every usage event: its BURN, OVERAGE and BORROW entries sum to -credits; a
//     DENIED event has no entries and charged nothing;
//   - every BURN and OVERAGE entry names its usage event;
//   - refunds of an event (REFUND entries, grants opened for it) never add
//     up to more than it was paid (its credits less uncovered and borrowed);
//   - every hold: its HOLD entries sum to -amount, and its RELEASE entries
//     to +amount once settled or released (none while open);
//   - one idempotency key per organisation has at most one usage event;
//   - no orphans: every entry's usage event and every hold's events exist;
//   - traceability: an event that charged credits names the register
//     version that priced it, and its BURN entries name the same version;
//   - budgets: what a budgeted pool has spent in its latest budget period
//     is no more than the events of the pool and the pools under it
//     charged since that period began, with what their open runs hold
//     (spend is never invented), and the open runs of a hard budget never
//     count more than its limit;
//   - a run is never settled for free: the event that settled a hold was
//     not DENIED (what nothing covered is an UNCOVERED entry);
//   - money refunds: the negative charges that give money back of a charge
//     (refundOf) never add up to more than it charged, and each is negative;
//   - subscriptions: their charges, history and schedule agree (see
//     verifier.subscriptions).
//
// It reads one snapshot (a read-only REPEATABLE READ transaction on
// PostgreSQL, a read transaction on SQLite), so it may run on a live
// database while usage is recorded. It reads page by page (entries by id,
// events by id with their entries through the usage_event_id index, holds
// by id), keeping only the pools and the grants' running sums in memory.
// Sums are done in Go with exact decimals, so both dialects check the same.
func (s *Service) Verify(ctx context.Context) ([]Violation, error) {
	r, err := s.VerifyReport(ctx)
	return r.Violations, err
}

// VerifyReport is Verify with the counts of what it read.
func (s *Service) VerifyReport(ctx context.Context) (VerifyReport, error) {
	opts := &stdsql.TxOptions{}
	if s.postgres() {
		opts = &stdsql.TxOptions{Isolation: stdsql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.db.Client.BeginTx(ctx, opts)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback() // read only: nothing to commit
	v := &verifier{c: tx.Client()}
	err = v.run(ctx)
	return v.rep, err
}

// grantSums is a grant as read, with the running sums of its entries.
type grantSums struct {
	pool           int
	amount, remain decimal.Decimal
	moves, opening decimal.Decimal // other entries; the opening entry's amount
	openings       int
	payment        credit.Payment
}

type verifier struct {
	c        *ent.Client
	rep      VerifyReport
	poolOrg  map[int]int
	children map[int][]int // pool -> the pools directly under it
	grants   map[int]*grantSums
	hard     map[int]*decimal.Decimal // pool -> its hard budget
	// transferred sums TRANSFER_OUT and TRANSFER_IN entries: credits move,
	// never appear.
	transferred decimal.Decimal
}

func (v *verifier) add(inv, f string, args ...any) {
	if len(v.rep.Violations) < maxViolations {
		v.rep.Violations = append(v.rep.Violations, Violation{inv, fmt.Sprintf(f, args...)})
	}
}

func (v *verifier) run(ctx context.Context) error {
	var err error
	if v.rep.Organizations, err = v.c.Organization.Query().Count(ctx); err != nil {
		return err
	}
	pools, err := v.c.Pool.Query().All(ctx)
	if err != nil {
		return err
	}
	v.rep.Pools = len(pools)
	v.poolOrg = make(map[int]int, len(pools))
	v.hard = map[int]*decimal.Decimal{}
	for _, p := range pools {
		v.poolOrg[p.ID] = p.OrganizationID
		if p.BudgetHard && p.BudgetAmount.Valid {
			v.hard[p.ID] = &p.BudgetAmount.Decimal
		}
	}
	gs, err := v.c.Grant.Query().All(ctx)
	if err != nil {
		return err
	}
	v.rep.Grants = len(gs)
	v.grants = make(map[int]*grantSums, len(gs))
	for _, g := range gs {
		v.grants[g.ID] = &grantSums{pool: g.PoolID, amount: g.Amount, remain: g.Remaining, payment: g.Payment}
		if org, ok := v.poolOrg[g.PoolID]; !ok {
			v.add("orphan grant", "grant %d names missing pool %d", g.ID, g.PoolID)
		} else if org != g.OrganizationID {
			v.add("grant organisation", "grant %d is in pool %d of organisation %d, recorded as %d", g.ID, g.PoolID, org, g.OrganizationID)
		}
	}
	v.children = map[int][]int{}
	for _, p := range pools {
		if p.ParentID != nil {
			v.children[*p.ParentID] = append(v.children[*p.ParentID], p.ID)
		}
	}
	for _, step := range []func(context.Context) error{v.entries, v.grantTotals, v.events, v.holds, v.keys, v.budgets, v.moneyBack, v.subscriptions} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// entries: each entry on its pool's organisation and its grant's pool, the
// grants' running sums, and a cause for every burn.
func (v *verifier) entries(ctx context.Context) error {
	for last := 0; ; {
		page, err := v.c.LedgerEntry.Query().Where(ledgerentry.IDGT(last)).Order(ent.Asc(ledgerentry.FieldID)).Limit(verifyPage).All(ctx)
		if err != nil {
			return err
		}
		for _, e := range page {
			if v.poolOrg[e.PoolID] != e.OrganizationID {
				v.add("entry organisation", "entry %d is on pool %d of organisation %d, recorded as %d", e.ID, e.PoolID, v.poolOrg[e.PoolID], e.OrganizationID)
			}
			if e.GrantID != nil {
				g := v.grants[*e.GrantID]
				switch {
				case g == nil:
					v.add("orphan entry", "entry %d names missing grant %d", e.ID, *e.GrantID)
				case g.pool != e.PoolID:
					v.add("entry pool", "entry %d is on pool %d but its grant %d is in pool %d", e.ID, e.PoolID, *e.GrantID, g.pool)
				case e.Kind == credit.EntryGrant || e.Kind == credit.EntryRolloverIn || e.Kind == credit.EntryTransferIn:
					g.openings++
					g.opening = e.Amount
				default:
					g.moves = g.moves.Add(e.Amount)
				}
			}
			if e.Kind == credit.EntryTransferOut || e.Kind == credit.EntryTransferIn {
				v.transferred = v.transferred.Add(e.Amount)
			}
			if charges(e.Kind) && e.UsageEventID == nil {
				v.add("burn cause", "%s entry %d names no usage event", e.Kind, e.ID)
			}
		}
		v.rep.Entries += len(page)
		if len(page) < verifyPage {
			if !v.transferred.IsZero() {
				v.add("transfers", "TRANSFER_OUT and TRANSFER_IN entries sum to %s, not 0", v.transferred)
			}
			return nil
		}
		last = page[len(page)-1].ID
	}
}

func (v *verifier) grantTotals(context.Context) error {
	for id, g := range v.grants {
		if g.payment != credit.PaymentPaid {
			if g.openings != 0 || !g.moves.IsZero() || !g.remain.IsZero() {
				v.add("unpaid grant", "grant %d (payment %s): %d opening entries, other entries %s, remaining %s (want none, none, 0)", id, g.payment, g.openings, g.moves, g.remain)
			}
			continue
		}
		if want := g.amount.Add(g.moves); !want.Equal(g.remain) {
			v.add("grant balance", "grant %d: remaining %s, but amount %s + entries %s = %s", id, g.remain, g.amount, g.moves, want)
		}
		if g.remain.IsNegative() || g.remain.GreaterThan(g.amount) {
			v.add("grant bounds", "grant %d: remaining %s outside [0, %s]", id, g.remain, g.amount)
		}
		if g.openings != 1 || !g.opening.Equal(g.amount) {
			v.add("grant entry", "grant %d: %d opening entries (want one of %s)", id, g.openings, g.amount)
		}
	}
	return nil
}

// eventSums are the entries that charged one usage event.
type eventSums struct {
	burned, refunded, unpaid decimal.Decimal
	burns                    int
}

// charges tells the entry kinds that charge a usage event's credits.
func charges(k credit.EntryKind) bool {
	return k == credit.EntryBurn || k == credit.EntryOverage || k == credit.EntryBorrow || k == credit.EntryUncovered
}

// events: page by page, each event with its entries (through the
// usage_event_id index): what it charged is what its entries took, the
// versions agree, and no entry names an event that does not exist.
func (v *verifier) events(ctx context.Context) error {
	for last := 0; ; {
		page, err := v.c.UsageEvent.Query().Where(usageevent.IDGT(last)).Order(ent.Asc(usageevent.FieldID)).Limit(verifyPage).All(ctx)
		if err != nil {
			return err
		}
		q := v.c.LedgerEntry.Query().Where(predicate.LedgerEntry(sql.FieldGT(ledgerentry.FieldUsageEventID, last)))
		if len(page) == verifyPage {
			q = q.Where(predicate.LedgerEntry(sql.FieldLTE(ledgerentry.FieldUsageEventID, page[len(page)-1].ID)))
		}
		entries, err := q.All(ctx)
		if err != nil {
			return err
		}
		byID := make(map[int]*ent.UsageEvent, len(page))
		for _, ev := range page {
			byID[ev.ID] = ev
		}
		sums := make(map[int]eventSums, len(page))
		for _, e := range entries {
			ev := byID[*e.UsageEventID]
			if ev == nil {
				v.add("orphan entry", "%s entry %d names missing usage event %d", e.Kind, e.ID, *e.UsageEventID)
				continue
			}
			if e.Kind == credit.EntryBurn && !sameVersion(ev.RegisterID, ev.RegisterVersion, e.RegisterID, e.RegisterVersion) {
				v.add("entry versions", "BURN entry %d names register %s, its event %d %s", e.ID, version(e.RegisterID, e.RegisterVersion), ev.ID, version(ev.RegisterID, ev.RegisterVersion))
			}
			sm := sums[ev.ID]
			switch {
			case charges(e.Kind):
				sm.burned, sm.burns = sm.burned.Add(e.Amount), sm.burns+1
				if e.Kind == credit.EntryUncovered || e.Kind == credit.EntryBorrow {
					sm.unpaid = sm.unpaid.Sub(e.Amount)
				}
			case e.Kind == credit.EntryRefund, e.Kind == credit.EntryGrant: // back to a grant, or a new one for the event
				sm.refunded = sm.refunded.Add(e.Amount)
			}
			sums[ev.ID] = sm
		}
		for _, ev := range page {
			sm := sums[ev.ID]
			got := sm.burned.Neg()
			if ev.Decision == credit.DecisionDenied && (sm.burns > 0 || !ev.Credits.IsZero()) {
				v.add("denied burn", "event %d was denied but charged %s in %d entries", ev.ID, got, sm.burns)
			}
			if !got.Equal(ev.Credits) {
				v.add("burn total", "event %d charged %s but its BURN entries sum to %s", ev.ID, ev.Credits, got)
			}
			if paid := ev.Credits.Sub(sm.unpaid); sm.refunded.GreaterThan(paid) {
				v.add("refund total", "event %d was refunded %s, more than the %s it was paid", ev.ID, sm.refunded, paid)
			}
			if ev.Credits.IsPositive() && (ev.RegisterID == nil || ev.RegisterVersion == nil) {
				v.add("event versions", "event %d charged %s but names no register version", ev.ID, ev.Credits)
			}
			if v.poolOrg[ev.PoolID] != ev.OrganizationID {
				v.add("event organisation", "event %d is on pool %d of another organisation", ev.ID, ev.PoolID)
			}
		}
		v.rep.Events += len(page)
		if len(page) < verifyPage {
			return nil
		}
		last = page[len(page)-1].ID
	}
}

// holds: page by page, each hold against the HOLD entries of its STARTED
// event and the RELEASE entries of the event that closed it.
func (v *verifier) holds(ctx context.Context) error {
	for last := 0; ; {
		page, err := v.c.Hold.Query().Where(hold.IDGT(last)).Order(ent.Asc(hold.FieldID)).Limit(verifyPage).All(ctx)
		if err != nil {
			return err
		}
		ids := make([]int, 0, 2*len(page))
		for _, h := range page {
			ids = append(ids, h.StartedEventID)
			if h.SettledEventID != nil {
				ids = append(ids, *h.SettledEventID)
			}
		}
		exists, decided := map[int]bool{}, map[int]credit.Decision{}
		held, released := map[int]decimal.Decimal{}, map[int]decimal.Decimal{}
		for start := 0; start < len(ids); start += 500 { // bounded IN lists
			chunk := ids[start:min(start+500, len(ids))]
			evs, err := v.c.UsageEvent.Query().Where(usageevent.IDIn(chunk...)).Select(usageevent.FieldID, usageevent.FieldDecision).All(ctx)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				exists[ev.ID], decided[ev.ID] = true, ev.Decision
			}
			es, err := v.c.LedgerEntry.Query().Where(ledgerentry.UsageEventIDIn(chunk...),
				ledgerentry.KindIn(credit.EntryHold, credit.EntryRelease)).All(ctx)
			if err != nil {
				return err
			}
			for _, e := range es {
				if e.Kind == credit.EntryHold {
					held[*e.UsageEventID] = held[*e.UsageEventID].Add(e.Amount)
				} else {
					released[*e.UsageEventID] = released[*e.UsageEventID].Add(e.Amount)
				}
			}
		}
		for _, h := range page {
			if !exists[h.StartedEventID] {
				v.add("orphan hold", "hold %d of run %q names missing STARTED event %d", h.ID, h.RunID, h.StartedEventID)
			}
			if h.SettledEventID != nil && !exists[*h.SettledEventID] {
				v.add("orphan hold", "hold %d of run %q names missing settling event %d", h.ID, h.RunID, *h.SettledEventID)
			}
			if h.SettledEventID != nil && decided[*h.SettledEventID] == credit.DecisionDenied {
				v.add("run settled free", "run %q (hold %d) was settled by event %d, which was DENIED", h.RunID, h.ID, *h.SettledEventID)
			}
			if !held[h.StartedEventID].Neg().Equal(h.Amount) {
				v.add("hold", "hold %d of run %q holds %s but its HOLD entries sum to %s", h.ID, h.RunID, h.Amount, held[h.StartedEventID].Neg())
			}
			var rel decimal.Decimal
			switch {
			case h.Status == holdReleased:
				rel = released[h.StartedEventID]
			case h.Status == holdSettled && h.SettledEventID != nil:
				rel = released[*h.SettledEventID]
			}
			want := h.Amount
			if h.Status == holdOpen {
				want = decimal.Zero
			}
			if !rel.Equal(want) {
				v.add("release", "hold %d (%s) released %s, want %s", h.ID, h.Status, rel, want)
			}
		}
		v.rep.Holds += len(page)
		if len(page) < verifyPage {
			return nil
		}
		last = page[len(page)-1].ID
	}
}

// keys: one usage event per idempotency key and organisation (the unique
// index says so; the verifier does not take its word for it).
func (v *verifier) keys(ctx context.Context) error {
	var dups []struct {
		OrganizationID int    `json:"organization_id"`
		IdempotencyKey string `json:"idempotency_key"`
		Count          int    `json:"count"`
	}
	// GROUP BY ... HAVING COUNT(*) > 1: only the duplicates come back.
	err := v.c.UsageEvent.Query().GroupBy(usageevent.FieldOrganizationID, usageevent.FieldIdempotencyKey).
		Aggregate(func(s *sql.Selector) string {
			s.Having(sql.P(func(b *sql.Builder) { b.WriteString("COUNT(*) > 1") }))
			return sql.As(sql.Count("*"), "count")
		}).
		Scan(ctx, &dups)
	if err != nil {
		return err
	}
	for _, d := range dups {
		if d.Count > 1 {
			v.add("idempotency", "organisation %d has %d events with the key %q", d.OrganizationID, d.Count, d.IdempotencyKey)
		}
	}
	return nil
}

// budgets: each budgeted pool's latest spend row against what its subtree
// charged since the row's period began. (Only an upper bound: spend is
// counted while the pool has a budget, so it may be less.)
func (v *verifier) budgets(ctx context.Context) error {
	rows, err := v.c.PoolSpend.Query().Order(ent.Asc(poolspend.FieldPoolID), ent.Desc(poolspend.FieldPeriodStart)).All(ctx)
	if err != nil {
		return err
	}
	for i, r := range rows {
		if i > 0 && rows[i-1].PoolID == r.PoolID {
			continue // an older period of the same pool
		}
		subtree := []int{r.PoolID}
		for n := 0; n < len(subtree); n++ {
			subtree = append(subtree, v.children[subtree[n]]...)
		}
		charged := decimal.Zero
		for last := 0; ; {
			evs, err := v.c.UsageEvent.Query().Where(usageevent.PoolIDIn(subtree...), usageevent.CreatedAtGTE(r.PeriodStart),
				usageevent.IDGT(last)).Order(ent.Asc(usageevent.FieldID)).Limit(verifyPage).
				Select(usageevent.FieldID, usageevent.FieldCredits).All(ctx)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				charged = charged.Add(ev.Credits)
			}
			if len(evs) < verifyPage {
				break
			}
			last = evs[len(evs)-1].ID
		}
		held, err := v.heldInBudget(ctx, subtree, r.PeriodStart)
		if err != nil {
			return err
		}
		if r.Spent.IsNegative() || r.Spent.GreaterThan(charged.Add(held)) {
			v.add("budget spend", "pool %d spent %s in the budget period from %s, but its events charged %s and its open runs hold %s since", r.PoolID, r.Spent, r.PeriodStart.Format("2006-01-02"), charged, held)
		}
		if b := v.hard[r.PoolID]; b != nil && held.GreaterThan(*b) {
			v.add("hard budget holds", "pool %d's open runs count %s against its hard budget of %s", r.PoolID, held, *b)
		}
	}
	return nil
}

// heldInBudget sums what the open runs of the pools, started since the
// budget period began, counted against their budgets.
func (v *verifier) heldInBudget(ctx context.Context, pools []int, since time.Time) (decimal.Decimal, error) {
	hs, err := v.c.Hold.Query().Where(hold.PoolIDIn(pools...), hold.Status(holdOpen), hold.CreatedAtGTE(since)).All(ctx)
	sum := decimal.Zero
	for _, h := range hs {
		if h.Budgeted.Valid {
			sum = sum.Add(h.Budgeted.Decimal)
		}
	}
	return sum, err
}

func sameVersion(id1, v1, id2, v2 *int) bool {
	eq := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eq(id1, id2) && eq(v1, v2)
}

func version(id, v *int) string {
	if id == nil || v == nil {
		return "none"
	}
	return fmt.Sprintf("%d v%d", *id, *v)
}

// moneyBack: refunds in money never give back more than was charged.
func (v *verifier) moneyBack(ctx context.Context) error {
	chs, err := v.c.Charge.Query().All(ctx)
	if err != nil {
		return err
	}
	paid, back := map[int]decimal.Decimal{}, map[int]decimal.Decimal{}
	for _, ch := range chs {
		if ch.RefundOf == nil {
			paid[ch.ID] = ch.Amount
			continue
		}
		if !ch.Amount.IsNegative() {
			v.add("money refund", "charge %d refunds charge %d but is not negative (%s)", ch.ID, *ch.RefundOf, ch.Amount)
		}
		back[*ch.RefundOf] = back[*ch.RefundOf].Sub(ch.Amount)
	}
	for id, b := range back {
		if p, ok := paid[id]; !ok || b.GreaterThan(p) {
			v.add("money refund", "charge %d (%s) was refunded %s", id, p, b)
		}
	}
	return nil
}
