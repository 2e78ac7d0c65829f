package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/poolspend"
)

// Hand-written SQL is kept to the hot path of a usage event, where a row
// lock, a round trip or a query plan matters. On PostgreSQL its statements
// have a fixed text (arrays instead of IN lists) and are prepared once per
// connection, so a statement costs one round trip and reuses its plan. On
// SQLite (one connection, in process) they are plain queries with IN lists;
// sqlf rewrites $n placeholders to ?n, which SQLite reads the same way.

// usageTx is the transaction of a usage batch: the database/sql transaction
// for the prepared hot-path statements, and an ent client bound to it for
// everything else.
type usageTx struct {
	*ent.Client
	tx         *sql.Tx
	s          *Service
	grantPool  map[int]int // grant id -> its pool, for entries (a burn may fall through to a parent pool)
	due        []int       // subscriptions of the locked pools' organisations with a period due (see lockPools)
	generation int64       // the catalog's generation, as lockPools read it
}

// poolOf is the pool of a grant the batch loaded, or otherwise.
func (u *usageTx) poolOf(grant, otherwise int) int {
	if p, ok := u.grantPool[grant]; ok {
		return p
	}
	return otherwise
}

// query runs q in the transaction, as the prepared statement name on
// PostgreSQL.
func (u *usageTx) query(ctx context.Context, name, q string, args ...any) (*sql.Rows, error) {
	if st := u.s.prepared(ctx, name, q); st != nil {
		return u.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return u.tx.QueryContext(ctx, q, args...)
}

// inUsageTx runs fn in one database/sql transaction (retried like inTx).
func (s *Service) inUsageTx(ctx context.Context, fn func(u *usageTx) error) error {
	return s.retry(ctx, func() error {
		tx, err := s.db.SQL.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		defer func() {
			if p := recover(); p != nil {
				_ = tx.Rollback()
				panic(p)
			}
		}()
		drv := txBound{entsql.NewDriver(s.db.Dialect, entsql.Conn{ExecQuerier: tx})}
		if err := fn(&usageTx{Client: ent.NewClient(ent.Driver(drv)), tx: tx, s: s}); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

// txBound is an ent driver over an open database/sql transaction: ent's own
// "begin a transaction" (e.g. UpdateOne's update-then-select) runs inside
// it, with no commit of its own.
type txBound struct{ *entsql.Driver }

func (d txBound) Tx(context.Context) (dialect.Tx, error) { return dialect.NopTx(d.Driver), nil }

// statements holds the prepared hot-path statements (PostgreSQL only).
type statements struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns the statement name prepared on the pool, nil on SQLite
// or when it cannot be prepared (the caller then runs the text as is).
func (s *Service) prepared(ctx context.Context, name, q string) *sql.Stmt {
	if !s.postgres() {
		return nil
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.m[name]; ok {
		return st
	}
	st, err := s.db.SQL.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if s.stmts.m == nil {
		s.stmts.m = map[string]*sql.Stmt{}
	}
	s.stmts.m[name] = st
	return st
}

func (s *Service) sqlf(q string) string {
	if s.postgres() {
		return q
	}
	return strings.ReplaceAll(q, "$", "?")
}

// inList returns "$k,$k+1,..." for n values starting at placeholder k.
func inList(k, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(k + i))
	}
	return b.String()
}

// ids is a set of ids as one PostgreSQL array argument, or as "IN (...)"
// arguments on SQLite; where renders the condition "col IN the set".
func (s *Service) ids(col string, from int, ids []int) (string, []any) {
	if s.postgres() {
		arr := make([]int64, len(ids))
		for i, id := range ids {
			arr[i] = int64(id)
		}
		return col + " = ANY($" + strconv.Itoa(from) + "::bigint[])", []any{pq.Array(arr)}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return col + " IN (" + inList(from, len(ids)) + ")", args
}

type poolInfo struct {
	ID              int
	OrgID           int
	ParentID        int            // 0: none
	Budget          *engine.Budget // nil: no budget (Spent filled by loadSpend)
	BudgetPeriod    credit.Period
	Segment         string
	RegisterName    string
	RegisterVersion *int              // pinned by the subscription (grandfathering)
	PinnedUntil     *time.Time        // the pin's end: usage occurring from then is priced by the version in effect
	Terms           *engine.PlanTerms // the current subscription's plan; nil: none
}

// defaultPools returns, per organisation, its default pool: the first
// ACCOUNT pool, where usage without a poolId is drawn. A default pool never
// changes once it exists (pools are never deleted and ids only grow), so
// answers are cached for the life of the process.
func (s *Service) defaultPools(ctx context.Context, u *usageTx, orgs []int) (map[int]int, error) {
	out := make(map[int]int, len(orgs))
	var missing []int
	for _, o := range orgs {
		if p, ok := s.defaults.Load(o); ok {
			out[o] = p.(int)
		} else {
			missing = append(missing, o)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	cond, args := s.ids("organization_id", 1, missing)
	rows, err := u.query(ctx, "defaultPools", s.sqlf(`SELECT organization_id, MIN(id) FROM pools
WHERE kind = 'ACCOUNT' AND `+cond+` GROUP BY organization_id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var org, pool int
		if err := rows.Scan(&org, &pool); err != nil {
			return nil, err
		}
		out[org] = pool
		s.defaults.Store(org, pool)
	}
	return out, rows.Err()
}

// lockPools locks the pools (PostgreSQL row locks, taken in id order, so two
// transactions never wait on each other in a cycle) and returns them with
// what the engine needs of their organisation: its segment, and the register
// and plan terms of its subscription in effect at now (the organisation's
// own register when it has none). Subscriptions with a period due at now
// (not opened yet) are noted in u.due, and the catalog's generation in
// u.generation (a snapshot of an older one is stale).
func (s *Service) lockPools(ctx context.Context, u *usageTx, ids []int, now time.Time) (map[int]poolInfo, error) {
	cond, args := s.ids("p.id", 1, ids)
	lock := ""
	if s.postgres() {
		lock = " FOR UPDATE OF p" // SQLite: the single connection serialises writers
	}
	rows, err := u.query(ctx, "lockPools", s.sqlf(`SELECT p.id, p.organization_id, COALESCE(o.segment, ''), o.register_name,
  p.parent_id, p.budget_amount, p.budget_period, p.budget_hard,
  s.id, s.starts_at, s.ends_at, s.register_version, s.grandfathered_until, pl.register_name, pl.overage_mode, pl.overage_price, pl.currency, pl.id,
  s.next_period_at, o.overage_cap_credits, o.overage_cap_amount,
  (SELECT COALESCE(MAX(generation), 0) FROM catalog_generations)
FROM pools p JOIN organizations o ON o.id = p.organization_id
LEFT JOIN subscriptions s ON s.organization_id = p.organization_id
LEFT JOIN plans pl ON pl.id = s.plan_id
WHERE `+cond+` ORDER BY p.id`+lock), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int]poolInfo, len(ids))
	for rows.Next() {
		var (
			p                  poolInfo
			subID, regVersion  sql.NullInt64
			subStart, subEnd   sql.NullTime
			pinnedUntil        sql.NullTime
			planReg, mode, cur sql.NullString
			price              decimal.NullDecimal
			parent             sql.NullInt64
			budget             decimal.NullDecimal
			budgetPeriod       sql.NullString
			budgetHard         bool
			planID             sql.NullInt64
			nextPeriod         sql.NullTime
			capCredits, capAmt decimal.NullDecimal
		)
		if err := rows.Scan(&p.ID, &p.OrgID, &p.Segment, &p.RegisterName, &parent, &budget, &budgetPeriod, &budgetHard,
			&subID, &subStart, &subEnd, &regVersion, &pinnedUntil, &planReg, &mode, &price, &cur, &planID, &nextPeriod, &capCredits, &capAmt, &u.generation); err != nil {
			return nil, err
		}
		if nextPeriod.Valid && !nextPeriod.Time.After(now) {
			u.due = append(u.due, int(subID.Int64))
		}
		if prev, ok := out[p.ID]; ok {
			p = prev // another subscription row of the same pool
		} else {
			p.ParentID = int(parent.Int64)
			if budget.Valid && budgetPeriod.Valid {
				p.BudgetPeriod = credit.Period(budgetPeriod.String)
				p.Budget = &engine.Budget{PoolID: p.ID, Limit: budget.Decimal, Spent: decimal.Zero, Hard: budgetHard, Period: p.BudgetPeriod,
					PeriodStart: engine.BudgetPeriodStart(p.BudgetPeriod, now)}
			}
		}
		current := subID.Valid && !subStart.Time.After(now) && (!subEnd.Valid || subEnd.Time.After(now))
		if current {
			p.RegisterName = planReg.String
			if regVersion.Valid {
				v := int(regVersion.Int64)
				p.RegisterVersion = &v
				if pinnedUntil.Valid {
					u := pinnedUntil.Time.UTC()
					p.PinnedUntil = &u
				}
			}
			p.Terms = &engine.PlanTerms{SubscriptionID: int(subID.Int64), PlanID: int(planID.Int64), OverageMode: credit.OverageMode(mode.String),
				OveragePrice: price, Currency: cur.String, TopUpsLeft: -1}
			if capCredits.Valid || capAmt.Valid {
				p.Terms.OverageCap = &engine.OverageCap{Credits: capCredits, Amount: capAmt}
			}
		}
		out[p.ID] = p
	}
	return out, rows.Err()
}

// chains returns, for each pool, the pool and the pools it falls through
// to (its parent, its parent's parent, while each allows falling through).
// Parents and the fall-through setting never change, so they are cached for
// the life of the process; a pool that does not exist is never cached (a
// pool made later, maybe through another server, may take its id).
func (s *Service) chains(ctx context.Context, u *usageTx, pools []int) (map[int][]int, error) {
	absent := map[int]bool{} // asked for and not there: the lock finds them missing
	for depth := 0; depth < 4; depth++ {
		var missing []int
		seen := map[int]bool{}
		for _, p := range pools {
			for id := p; id != 0 && !seen[id] && !absent[id]; {
				seen[id] = true
				parent, ok := s.parents.Load(id)
				if !ok {
					missing = append(missing, id)
					break
				}
				id = parent.(int)
			}
		}
		if len(missing) == 0 {
			break
		}
		cond, args := s.ids("id", 1, missing)
		rows, err := u.query(ctx, "poolParents", s.sqlf(`SELECT id, CASE WHEN fall_through THEN COALESCE(parent_id, 0) ELSE 0 END
FROM pools WHERE `+cond), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, parent int
			if err := rows.Scan(&id, &parent); err != nil {
				rows.Close()
				return nil, err
			}
			s.parents.Store(id, parent)
		}
		rows.Close()
		for _, id := range missing {
			if _, ok := s.parents.Load(id); !ok {
				absent[id] = true // not cached: a pool made later with this id must be found
			}
		}
	}
	out := make(map[int][]int, len(pools))
	for _, p := range pools {
		var chain []int
		for id := p; id != 0 && len(chain) < 4; {
			chain = append(chain, id)
			parent, _ := s.parents.Load(id)
			id, _ = parent.(int)
		}
		out[p] = chain
	}
	return out, nil
}

// loadSpend fills in what the budgeted pools spent in their current period.
func (s *Service) loadSpend(ctx context.Context, u *usageTx, pools map[int]poolInfo) error {
	var ids []int
	for id, p := range pools {
		if p.Budget != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := u.PoolSpend.Query().Where(poolspend.PoolIDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if b := pools[r.PoolID].Budget; b != nil && r.PeriodStart.Equal(b.PeriodStart) {
			b.Spent = r.Spent
		}
	}
	return nil
}

// loadGrants returns the non-empty grants of the pools, by pool. Callers hold
// the pools' locks, so the remaining amounts cannot change under them.
// Decimals are text in SQLite, always written in canonical form, so zero is
// exactly '0' there.
func (s *Service) loadGrants(ctx context.Context, u *usageTx, pools []int) (map[int][]engine.Grant, error) {
	cond, args := s.ids("pool_id", 1, pools)
	positive := "remaining > 0"
	if !s.postgres() {
		positive = "remaining <> '0'"
	}
	rows, err := u.query(ctx, "loadGrants", s.sqlf(`SELECT id, pool_id, credit_type, priority, amount, remaining, unit_price, effective_at, expires_at, created_at
FROM grants WHERE `+cond+` AND `+positive+` ORDER BY id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int][]engine.Grant, len(pools))
	for rows.Next() {
		var (
			g    engine.Grant
			pool int
			exp  sql.NullTime
		)
		if err := rows.Scan(&g.ID, &pool, &g.CreditType, &g.Priority, &g.Amount, &g.Remaining, &g.UnitPrice, &g.EffectiveAt, &exp, &g.CreatedAt); err != nil {
			return nil, err
		}
		if exp.Valid {
			t := exp.Time.UTC()
			g.ExpiresAt = &t
		}
		g.EffectiveAt, g.CreatedAt = g.EffectiveAt.UTC(), g.CreatedAt.UTC()
		out[pool] = append(out[pool], g)
	}
	return out, rows.Err()
}

// engineGrant is a grant row as the engine sees it.
func engineGrant(g *ent.Grant) engine.Grant {
	return engine.Grant{ID: g.ID, CreditType: g.CreditType, Priority: g.Priority, Amount: g.Amount, Remaining: g.Remaining,
		UnitPrice: g.UnitPrice, EffectiveAt: g.EffectiveAt.UTC(), ExpiresAt: g.ExpiresAt, CreatedAt: g.CreatedAt.UTC(), Payment: g.Payment}
}

// utc normalises a time for storage: UTC, microsecond precision.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
