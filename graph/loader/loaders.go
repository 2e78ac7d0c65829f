package loader

import (
	"context"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/organization"
	"github.com/creditd/creditd/ent/plan"
	"github.com/creditd/creditd/ent/pool"
	"github.com/creditd/creditd/ent/usageevent"
)

// Loaders are the loaders and memos of one root field. They hold rows read
// while it resolves, so each root field gets its own (a later field of a
// mutation must not see rows from before an earlier field's write).
type Loaders struct {
	Organizations *Loader[ent.Organization]
	Pools         *Loader[ent.Pool]
	Grants        *Loader[ent.Grant]
	UsageEvents   *Loader[ent.UsageEvent]
	Plans         *Loader[ent.Plan]

	Balances      Memo[int, ledger.Balance]         // by pool
	Budgets       Memo[int, *ledger.BudgetState]    // by pool
	PoolGrants    Memo[PoolGrantsKey, []*ent.Grant] // Pool.grants
	OrgPools      Memo[int, []*ent.Pool]            // Organization.pools
	Subscriptions Memo[int, *ent.Subscription]      // by organisation
}

// PoolGrantsKey names one Pool.grants list.
type PoolGrantsKey struct {
	Pool         int
	IncludeEmpty bool
}

// New returns empty loaders reading through c (read-only queries).
//
// Tenant isolation is kept as the service keeps it (engine/ledger's
// visible): a row of an organisation the caller does not see is read as
// missing, so a nested field cannot climb out of the caller's organisation.
func New(c *ent.Client) *Loaders {
	l := &Loaders{}
	l.Organizations = NewLoader(func(ctx context.Context, ids []int) ([]*ent.Organization, error) {
		return visible(ctx, c.Organization.Query().Where(organization.IDIn(ids...)).All, func(o *ent.Organization) int { return o.ID })
	}, func(o *ent.Organization) int { return o.ID }, nil)
	l.Plans = NewLoader(func(ctx context.Context, ids []int) ([]*ent.Plan, error) {
		return c.Plan.Query().Where(plan.IDIn(ids...)).All(ctx) // plans belong to no organisation
	}, func(p *ent.Plan) int { return p.ID }, nil)
	l.Pools = NewLoader(func(ctx context.Context, ids []int) ([]*ent.Pool, error) {
		return visible(ctx, c.Pool.Query().Where(pool.IDIn(ids...)).All, func(p *ent.Pool) int { return p.OrganizationID })
	}, func(p *ent.Pool) int { return p.ID }, func(p *ent.Pool, again func(int)) {
		l.Organizations.Want(p.OrganizationID)
		if p.ParentID != nil {
			again(*p.ParentID)
		}
	})
	l.Grants = NewLoader(func(ctx context.Context, ids []int) ([]*ent.Grant, error) {
		return visible(ctx, c.Grant.Query().Where(grant.IDIn(ids...)).All, func(g *ent.Grant) int { return g.OrganizationID })
	}, func(g *ent.Grant) int { return g.ID }, func(g *ent.Grant, _ func(int)) { l.Pools.Want(g.PoolID) })
	l.UsageEvents = NewLoader(func(ctx context.Context, ids []int) ([]*ent.UsageEvent, error) {
		return visible(ctx, c.UsageEvent.Query().Where(usageevent.IDIn(ids...)).All, func(e *ent.UsageEvent) int { return e.OrganizationID })
	}, func(e *ent.UsageEvent) int { return e.ID }, func(e *ent.UsageEvent, _ func(int)) { l.Pools.Want(e.PoolID) })
	return l
}

// visible runs all and keeps the rows of organisations the caller sees.
func visible[V any](ctx context.Context, all func(context.Context) ([]*V, error), org func(*V) int) ([]*V, error) {
	vs, err := all(ctx)
	if err != nil {
		return nil, err
	}
	p := auth.From(ctx)
	out := vs[:0]
	for _, v := range vs {
		if p.Sees(org(v)) {
			out = append(out, v)
		}
	}
	return out, nil
}

type ctxKey struct{}

// With returns ctx carrying l.
func With(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the loaders ctx carries, nil when none.
func From(ctx context.Context) *Loaders {
	l, _ := ctx.Value(ctxKey{}).(*Loaders)
	return l
}

// WantEntries wants what a page of ledger entries refers to.
func (l *Loaders) WantEntries(es []*ent.LedgerEntry) {
	for _, e := range es {
		l.Pools.Want(e.PoolID)
		if e.GrantID != nil {
			l.Grants.Want(*e.GrantID)
		}
		if e.UsageEventID != nil {
			l.UsageEvents.Want(*e.UsageEventID)
		}
	}
}

// WantResults keeps the events and incentive grants of usage results (rows
// of the caller's organisation, just written or replayed) and wants what
// they refer to: the events' pools, the drawn grants.
func (l *Loaders) WantResults(rs ...*ledger.UsageResult) {
	for _, r := range rs {
		if r.Event != nil {
			l.UsageEvents.Prime(r.Event)
		}
		for _, d := range r.Draws {
			l.Grants.Want(d.GrantID)
		}
		l.Grants.Prime(r.Incentives...)
	}
}
