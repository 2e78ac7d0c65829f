package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/subscription"
)

// The period close, set-based: RunPeriodClose opens the due periods of
// many subscriptions per transaction (periodChunk), with a handful of
// statements for the whole chunk: lock the subscriptions and their pools,
// read the grants ending, let the engine decide each subscription's period
// (engine.OpenPeriod), post all the postings at once, record the periods
// and move the subscriptions on. A subscription further behind opens one
// more period per round, at most MaxPeriodsPerRun rounds per run.

// periodChunk is how many subscriptions one period-close transaction opens.
const periodChunk = 500

// RunPeriodClose opens (and so closes the period before) every subscription
// period that has started by asOf and is not yet open, oldest first, at most
// MaxPeriodsPerRun of one subscription per run. It is idempotent: a second
// run, a late run, or a run on another server at the same time changes
// nothing already done (each transaction locks its subscriptions and looks
// again under the lock).
func (s *Service) RunPeriodClose(ctx context.Context, asOf time.Time) (PeriodReport, error) {
	now := s.Now()
	asOf = utc(asOf)
	if asOf.After(now.Add(time.Minute)) {
		return PeriodReport{}, credit.Invalid("asOf", "is in the future; periods open when they start")
	}
	rep := PeriodReport{Expired: decimal.Zero, RolledOver: decimal.Zero, Allocated: decimal.Zero}
	closed := map[int]bool{}
	for round := 0; round < MaxPeriodsPerRun; round++ {
		due, err := s.db.Client.Subscription.Query().Where(subscription.NextPeriodAtLTE(asOf)).
			Order(ent.Asc(subscription.FieldID)).IDs(ctx)
		if err != nil || len(due) == 0 {
			rep.SubscriptionsClosed = len(closed)
			return rep, err
		}
		opened, err := s.openChunks(ctx, due, asOf, now, &rep, closed)
		if err != nil || opened == 0 {
			rep.SubscriptionsClosed = len(closed)
			return rep, err // or another runner holds or did the rest
		}
	}
	rep.SubscriptionsClosed = len(closed)
	return rep, nil
}

// periodWorkers is how many chunks open at once on PostgreSQL (their
// subscriptions are disjoint; the work waits on the database). SQLite has
// one connection.
const periodWorkers = 2

// openChunks opens one period of each due subscription, chunk by chunk,
// adding to rep and closed; it returns how many it opened.
func (s *Service) openChunks(ctx context.Context, due []int, asOf, now time.Time, rep *PeriodReport, closed map[int]bool) (int, error) {
	workers := 1
	if s.postgres() {
		workers = periodWorkers
	}
	var (
		mu       sync.Mutex
		opened   int
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan []int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range jobs {
				r, ids, err := s.openChunk(ctx, chunk, asOf, now)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				rep.add(r)
				for _, id := range ids {
					closed[id] = true
				}
				opened += len(ids)
				mu.Unlock()
			}
		}()
	}
	for start := 0; start < len(due); start += periodChunk {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		jobs <- due[start:min(start+periodChunk, len(due))]
	}
	close(jobs)
	wg.Wait()
	return opened, firstErr
}

// openChunk opens the next period of each of the subscriptions that is
// still due under its lock, in one transaction, and returns what it did
// and which it opened. Of two due subscriptions on one pool (an ended one
// closing, the next one opening) only the first opens here; the next round
// takes the other.
func (s *Service) openChunk(ctx context.Context, ids []int, asOf, now time.Time) (PeriodReport, []int, error) {
	var (
		rep    PeriodReport
		opened []int
	)
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		rep, opened = PeriodReport{Expired: decimal.Zero, RolledOver: decimal.Zero, Allocated: decimal.Zero}, nil
		subs, err := s.lockDue(ctx, tx, ids, asOf)
		if err != nil || len(subs) == 0 {
			return err
		}
		pools := make([]int, 0, len(subs))
		for _, sub := range subs {
			pools = append(pools, sub.PoolID)
		}
		if err := s.lockIDs(ctx, tx, "pools", pools); err != nil {
			return err
		}
		ending, err := tx.Grant.Query().Where(grant.PoolIDIn(pools...), grant.ExpiresAtLTE(asOf), grant.RemainingNEQ(decimal.Zero)).All(ctx)
		if err != nil {
			return err
		}
		byPool := map[int][]engine.Grant{}
		for _, g := range ending {
			byPool[g.PoolID] = append(byPool[g.PoolID], engineGrant(g))
		}
		subIDs := make([]int, len(subs))
		for i, sub := range subs {
			subIDs[i] = sub.ID
		}
		attached, err := s.attachedTo(ctx, tx, subIDs) // one query for the chunk's add-ons
		if err != nil {
			return err
		}
		var (
			postings []engine.Posting
			periods  []*ent.SubscriptionPeriodCreate
			moved    []subscriptionMove
			taken    = map[int]bool{}
		)
		for _, sub := range subs {
			if taken[sub.PoolID] {
				continue
			}
			taken[sub.PoolID] = true
			closing := sub.PlanID
			if sub, err = s.applyScheduled(ctx, tx, sub); err != nil { // a plan change at the period end
				return err
			}
			o, err := s.decidePeriod(ctx, tx, sub, closing, byPool[sub.PoolID], attached[sub.ID])
			if err != nil {
				return err
			}
			postings = append(postings, o.opening.Posting)
			periods = append(periods, tx.SubscriptionPeriod.Create().SetSubscriptionID(sub.ID).SetPeriodIndex(o.n).
				SetStartsAt(o.start).SetEndsAt(o.end).SetExpired(o.opening.Close.Expired).SetRolledOver(o.opening.Close.Rolled).
				SetAllocated(o.opening.Allocated).SetCreatedAt(now))
			moved = append(moved, subscriptionMove{id: sub.ID, next: o.n + 1, at: o.next})
			rep.add(PeriodReport{Expired: o.opening.Close.Expired, RolledOver: o.opening.Close.Rolled, Allocated: o.opening.Allocated})
			opened = append(opened, sub.ID)
		}
		if _, err := s.postAll(ctx, tx.Client(), postings, now); err != nil {
			return err
		}
		if err := tx.SubscriptionPeriod.CreateBulk(periods...).Exec(ctx); err != nil {
			return err
		}
		return s.moveSubscriptions(ctx, tx, moved)
	})
	return rep, opened, err
}

// periodOpening is one subscription's next period, decided.
type periodOpening struct {
	n          int
	start, end time.Time
	next       *time.Time // the period after; nil: the term has ended
	opening    engine.PeriodOpening
}

// decidePeriod decides opening sub's next period, given the grants of its
// pool ending by then (any that end later are left alone). The period that
// closes follows the rollover and term-end terms of its plan (closing: the
// plan before a change at the period end), the one that opens its own.
//
// attached is the subscription's add-ons (SubscriptionAddOns), as read for
// its chunk.
func (s *Service) decidePeriod(ctx context.Context, tx *ent.Tx, sub *ent.Subscription, closing int, grants []engine.Grant, attached []*ent.SubscriptionAddOn) (periodOpening, error) {
	p, err := s.plan(ctx, tx, sub.PlanID)
	if err != nil {
		return periodOpening{}, err
	}
	old, err := s.plan(ctx, tx, closing)
	if err != nil {
		return periodOpening{}, err
	}
	sched := schedule(sub, p)
	o := periodOpening{n: sub.NextPeriod}
	o.start, o.end = sched.Bounds(o.n)
	running := sub.EndsAt == nil || o.start.Before(*sub.EndsAt)
	if running {
		o.next = &o.end
	}
	var ending []engine.Grant
	for _, g := range grants {
		if g.ExpiresAt != nil && !g.ExpiresAt.After(o.start) {
			ending = append(ending, g)
		}
	}
	borrowed := decimal.Zero
	if running && o.n > 0 && p.OverageMode == credit.OverageBorrow {
		// Credits borrowed last period come out of this allocation.
		prev, _ := sched.Bounds(o.n - 1)
		if borrowed, err = s.borrowed(ctx, tx.Client(), sub.OrganizationID, prev, o.start); err != nil {
			return periodOpening{}, err
		}
	}
	prices, err := orgPrices(ctx, tx.Client(), p, sub.OrganizationID)
	if err != nil {
		return periodOpening{}, err
	}
	terms := engine.PeriodTerms{Plan: p.Name, Pool: sub.PoolID, RolloverMode: old.RolloverMode, RolloverCap: old.RolloverCap,
		IncludedCredits: p.IncludedCredits, PricePerCredit: prices.PerCredit, PlatformFee: p.PlatformFee, Currency: p.Currency,
		SubscriptionID: sub.ID}
	if err := s.termEnd(ctx, tx, sub, old, sched, o.n, running, &terms); err != nil {
		return periodOpening{}, err
	}
	if running {
		if terms.AddOns, err = s.addOnsAt(ctx, tx, attached, o.start); err != nil {
			return periodOpening{}, err
		}
	}
	o.opening = engine.OpenPeriod(terms, sub.OrganizationID, o.n, o.start, o.end, ending, running, borrowed)
	return o, nil
}

// termEnd fills in the term-end terms when opening period n ends a term:
// n is a multiple of the term's periods, or the subscription ends at n
// (its term, or a cancellation, ran out). A committed subscription's
// spend over the term is every charge of it dated in the term (by period
// start, else by when it was billed), but for true-ups and term refunds.
func (s *Service) termEnd(ctx context.Context, tx *ent.Tx, sub *ent.Subscription, p *ent.Plan, sched engine.Schedule, n int, running bool, t *engine.PeriodTerms) error {
	boundary := sub.TermPeriods != nil && n > 0 && n%*sub.TermPeriods == 0
	if n == 0 || running && !boundary {
		return nil
	}
	t.TermEnd, t.TermEndCredits, t.RefundRate = true, p.TermEndCredits, p.TermEndRefundRate.Decimal
	t.TermStart = sub.StartsAt
	if sub.TermPeriods != nil {
		t.TermStart = sched.Boundary((n - 1) / *sub.TermPeriods * *sub.TermPeriods)
	}
	if !sub.Commitment.IsPositive() {
		return nil
	}
	t.Commitment = sub.Commitment
	chs, err := tx.Charge.Query().Where(charge.SubscriptionID(sub.ID), charge.KindNotIn("TRUE_UP", "TERM_REFUND"),
		charge.Or(charge.PeriodStartGTE(t.TermStart), charge.And(charge.PeriodStartIsNil(), charge.CreatedAtGTE(t.TermStart)))).All(ctx)
	if err != nil {
		return err
	}
	end := sched.Boundary(n)
	t.TermSpent = decimal.Zero
	for _, c := range chs {
		at := c.CreatedAt
		if c.PeriodStart != nil {
			at = *c.PeriodStart
		}
		if at.Before(end) {
			t.TermSpent = t.TermSpent.Add(c.Amount)
		}
	}
	return nil
}

// lockDue locks the subscriptions of ids that are still due at asOf, in id
// order (PostgreSQL: those another runner holds are skipped, it is opening
// them), and loads them.
func (s *Service) lockDue(ctx context.Context, tx *ent.Tx, ids []int, asOf time.Time) ([]*ent.Subscription, error) {
	if s.postgres() {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM subscriptions WHERE id = ANY($1::bigint[]) AND next_period_at <= $2
ORDER BY id FOR UPDATE SKIP LOCKED`, pq.Array(int64s(ids)), asOf)
		if err != nil {
			return nil, err
		}
		var locked []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			locked = append(locked, id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		ids = locked
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return tx.Subscription.Query().Where(subscription.IDIn(ids...), subscription.NextPeriodAtLTE(asOf)).
		Order(ent.Asc(subscription.FieldID)).All(ctx)
}

// lockIDs takes row locks on PostgreSQL, in id order.
func (s *Service) lockIDs(ctx context.Context, tx *ent.Tx, table string, ids []int) error {
	if !s.postgres() {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT id FROM "+table+" WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", pq.Array(int64s(ids)))
	if err != nil {
		return err
	}
	return rows.Close()
}

type subscriptionMove struct {
	id, next int
	at       *time.Time // nil: no next period
}

// moveSubscriptions sets each subscription's next period.
func (s *Service) moveSubscriptions(ctx context.Context, tx *ent.Tx, moves []subscriptionMove) error {
	if len(moves) == 0 {
		return nil
	}
	if s.postgres() {
		ids, next := make([]int64, len(moves)), make([]int64, len(moves))
		at := make([]sql.NullString, len(moves))
		for i, m := range moves {
			ids[i], next[i] = int64(m.id), int64(m.next)
			if m.at != nil {
				at[i] = sql.NullString{String: m.at.UTC().Format(time.RFC3339Nano), Valid: true}
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE subscriptions SET next_period = v.n, next_period_at = v.at
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS v(id, n, at) WHERE subscriptions.id = v.id`,
			pq.Array(ids), pq.Array(next), pq.Array(at))
		return err
	}
	for _, m := range moves {
		u := tx.Subscription.UpdateOneID(m.id).SetNextPeriod(m.next)
		if m.at != nil {
			u.SetNextPeriodAt(*m.at)
		} else {
			u.ClearNextPeriodAt()
		}
		if err := u.Exec(ctx); err != nil {
			return fmt.Errorf("subscription %d: %w", m.id, err)
		}
	}
	return nil
}

func int64s(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}
