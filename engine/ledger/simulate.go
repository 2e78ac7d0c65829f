package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/pool"
	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/rules"
)

// Simulation on history: the usage events of a range replayed, in the
// order they were recorded, through the same pure engine (DecideUsage)
// under draft weights and policies, against the grants as they were: each
// grant's remaining at the range's start (its amount and every entry
// before it), then every entry that was not a usage event's own decision
// (grant openings, expiries' moves, transfers, refunds, adjustments) at
// the time it was written. Nothing is written. A pool draws its grants,
// then those of the pools it falls through to, as usage does. Holds are not
// modelled (a run's terminal event is decided as a single event, its
// STARTED event skipped), and budgets and overage caps are not applied: on
// a history without runs, budgets and caps, simulating the unchanged
// versions reproduces what was recorded exactly.

// SimulationInput asks for a replay.
type SimulationInput struct {
	From, To        time.Time
	OrganizationIDs []int  // none: every organisation
	RegisterName    string // the register Weights replace (default "default")
	Weights         []WeightInput
	Policies        []PolicyInput // each replaces the policy of its kind
}

// MaxSimulationDays bounds a simulation's range.
const MaxSimulationDays = 366

// SimulationRow is one organisation, recorded against simulated.
type SimulationRow struct {
	OrganizationID                      int
	Events                              int
	BaselineCredits, SimulatedCredits   decimal.Decimal
	BaselineRevenue, SimulatedRevenue   decimal.Decimal // overage money
	BaselineOverage, SimulatedOverage   decimal.Decimal // credits
	BaselineDenied, SimulatedDenied     int
	CrossesIntoOverage, CrossesHardStop bool // overage or denials where the history had none
}

// SimulationReport is the replay's answer.
type SimulationReport struct {
	Events int
	Rows   []SimulationRow
}

// Simulate replays the range under the draft.
func (s *Service) Simulate(ctx context.Context, in SimulationInput) (SimulationReport, error) {
	if err := in.validate(); err != nil {
		return SimulationReport{}, err
	}
	if p := auth.From(ctx); p.Scoped() {
		in.OrganizationIDs = []int{*p.OrgID}
	}
	draft, err := s.draftCatalog(ctx, in)
	if err != nil {
		return SimulationReport{}, err
	}
	sim := &replay{s: s, in: in, draft: draft, grants: map[int]*engine.Grant{}, byPool: map[int][]*engine.Grant{},
		rows: map[int]*SimulationRow{}, terms: map[int]*engine.PlanTerms{}, orgs: map[int]engine.Org{}}
	if err := sim.start(ctx); err != nil {
		return SimulationReport{}, err
	}
	if err := sim.run(ctx); err != nil {
		return SimulationReport{}, err
	}
	return sim.report(), nil
}

func (in *SimulationInput) validate() error {
	switch {
	case in.From.IsZero() || in.To.IsZero() || !in.To.After(in.From):
		return credit.Invalid("to", "from and to are required, to after from")
	case in.To.Sub(in.From) > MaxSimulationDays*24*time.Hour:
		return credit.Invalid("to", "a simulation covers at most %d days", MaxSimulationDays)
	case len(in.OrganizationIDs) > 1000:
		return credit.Invalid("organizationIds", "at most 1000")
	}
	if in.RegisterName == "" {
		in.RegisterName = "default"
	}
	if in.Weights != nil {
		if err := validateWeights(in.Weights); err != nil {
			return err
		}
	}
	seen := map[credit.PolicyKind]bool{}
	for i, p := range in.Policies {
		if _, ok := ruleKinds[p.Kind]; !ok {
			return credit.Invalid(fmt.Sprintf("policies[%d].kind", i), "%q is not a policy kind", p.Kind)
		}
		if seen[p.Kind] {
			return credit.Invalid(fmt.Sprintf("policies[%d].kind", i), "two %s policies", p.Kind)
		}
		seen[p.Kind] = true
	}
	in.From, in.To = utc(in.From), utc(in.To)
	return nil
}

// draft is the catalog a simulation decides with: the snapshot, with the
// draft register and policies in place of what they replace.
type draft struct {
	snap     *snapshot
	register *engine.Register // nil: the versions in effect
	rules    map[credit.PolicyKind]*engine.Rule
}

func (s *Service) draftCatalog(ctx context.Context, in SimulationInput) (*draft, error) {
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return nil, err
	}
	d := &draft{snap: snap, rules: map[credit.PolicyKind]*engine.Rule{}}
	if in.Weights != nil {
		d.register = &engine.Register{Name: in.RegisterName, Weights: map[string]*engine.Weight{}}
		for i, w := range in.Weights {
			ew := &engine.Weight{Action: w.Action, Credits: w.Credits, ValuePerAction: nullable(w.ValuePerAction), CostPerAction: nullable(w.CostPerAction),
				DegradedAllowed: w.DegradedAllowed}
			if w.Expression != "" {
				if ew.Expression, err = rules.Compile(rules.KindWeight, w.Expression); err != nil {
					return nil, compileError(fmt.Sprintf("weights[%d].expression", i), err)
				}
			}
			d.register.Weights[w.Action] = ew
		}
	}
	for i, p := range in.Policies {
		prog, err := rules.Compile(ruleKinds[p.Kind], p.Expression)
		if err != nil {
			return nil, compileError(fmt.Sprintf("policies[%d].expression", i), err)
		}
		d.rules[p.Kind] = &engine.Rule{Name: p.Name, Kind: p.Kind, Program: prog}
	}
	return d, nil
}

// versions are what decides an event of a pool of register at t.
func (d *draft) versions(register string, t time.Time) (engine.Versions, error) {
	v, err := d.snap.versions(register, nil, t)
	if err != nil {
		return v, err
	}
	if d.register != nil && register == d.register.Name {
		v.Register = d.register
	}
	for kind, r := range d.rules {
		switch kind {
		case credit.PolicyBurn:
			v.Burn = r
		case credit.PolicyDrawOrder:
			v.DrawOrder = r
		case credit.PolicyOverage:
			v.Overage = r
		}
	}
	return v, nil
}

// replay is one simulation's state: the grants as they stand at the
// moment being replayed, and the rows.
type replay struct {
	s      *Service
	in     SimulationInput
	draft  *draft
	grants map[int]*engine.Grant
	byPool map[int][]*engine.Grant
	pools  map[int]*ent.Pool
	regs   map[int]string // organisation -> register name
	terms  map[int]*engine.PlanTerms
	orgs   map[int]engine.Org
	rows   map[int]*SimulationRow
	events int
}

// start loads the pools in scope and their grants as they stood at From.
func (r *replay) start(ctx context.Context) error {
	c := r.s.db.Client
	pq := c.Pool.Query()
	gq := c.Grant.Query().Where(grant.PaymentEQ(credit.PaymentPaid))
	if len(r.in.OrganizationIDs) > 0 {
		pq.Where(pool.OrganizationIDIn(r.in.OrganizationIDs...))
		gq.Where(grant.OrganizationIDIn(r.in.OrganizationIDs...))
	}
	pools, err := pq.All(ctx)
	if err != nil {
		return err
	}
	r.pools, r.regs = map[int]*ent.Pool{}, map[int]string{}
	for _, p := range pools {
		r.pools[p.ID] = p
	}
	orgs, err := c.Organization.Query().All(ctx)
	if err != nil {
		return err
	}
	for _, o := range orgs {
		r.orgs[o.ID], r.regs[o.ID] = engine.Org{ID: o.ID, Segment: o.Segment}, o.RegisterName
		if err := r.loadTerms(ctx, o); err != nil {
			return err
		}
	}
	gs, err := gq.Where(grant.CreatedAtLT(r.in.To)).All(ctx)
	if err != nil {
		return err
	}
	before, err := r.s.grantSumsBefore(ctx, r.in.From)
	if err != nil {
		return err
	}
	for _, g := range gs {
		eg := engineGrant(g)
		eg.Remaining = before[g.ID] // what it held at From (0 for grants made after)
		r.grants[g.ID] = &eg
		r.byPool[g.PoolID] = append(r.byPool[g.PoolID], &eg)
	}
	return nil
}

// loadTerms reads the overage terms of the organisation's current
// subscription.
func (r *replay) loadTerms(ctx context.Context, o *ent.Organization) error {
	sub, err := currentSubscription(ctx, r.s.db.Client, o.ID, r.in.To.Add(-time.Nanosecond))
	if err != nil || sub == nil {
		return err
	}
	p, err := r.s.planOf(ctx, r.s.db.Client, sub.PlanID)
	if err != nil {
		return err
	}
	prices := planPrices(p, o.Segment)
	r.regs[o.ID] = p.RegisterName
	t := &engine.PlanTerms{SubscriptionID: sub.ID, PlanID: p.ID, Entitled: p.EntitledActions, OverageMode: p.OverageMode,
		OveragePrice: prices.Overage, Currency: p.Currency, TopUpsLeft: 0, OverageTiers: p.OverageTiers}
	if p.OverageMode == credit.OverageBorrow {
		t.BorrowLeft = p.BorrowLimit.Decimal
	}
	r.terms[o.ID] = t
	return nil
}

// grantSumsBefore is every grant's remaining at t: the sum of its entries
// written before it.
func (s *Service) grantSumsBefore(ctx context.Context, t time.Time) (map[int]decimal.Decimal, error) {
	out := map[int]decimal.Decimal{}
	rows, err := s.db.SQL.QueryContext(ctx, s.sqlf(`SELECT grant_id, `+report.Sum(s.postgres(), "amount")+`
FROM ledger_entries WHERE grant_id IS NOT NULL AND created_at < $1 GROUP BY grant_id`), t.UTC())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int
			a  string
		)
		if err := rows.Scan(&id, &a); err != nil {
			return nil, err
		}
		x, err := decimal.NewFromString(a)
		if err != nil {
			return nil, err
		}
		out[id] = out[id].Add(x)
	}
	return out, rows.Err()
}

// step is one thing to replay: an event to decide, or an entry to apply.
type step struct {
	at     time.Time
	seq    int // events before the entries of the same moment
	id     int
	event  *ent.UsageEvent
	grant  int
	amount decimal.Decimal
}

// simulationWindow is how much of the range is read and replayed at a
// time: memory holds one window's events and entries, never the range's.
const simulationWindow = 24 * time.Hour

// run replays the range in time order, a window at a time: the next
// window is read while this one is decided (the reading waits on the
// database, the deciding on the CPU), two windows in memory at most.
func (r *replay) run(ctx context.Context) error {
	type read struct {
		steps []step
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reads := make(chan read, 1)
	go func() {
		defer close(reads)
		for lo := r.in.From; lo.Before(r.in.To); lo = lo.Add(simulationWindow) {
			hi := lo.Add(simulationWindow)
			if hi.After(r.in.To) {
				hi = r.in.To
			}
			steps, err := r.steps(ctx, lo, hi)
			select {
			case reads <- read{steps, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for w := range reads {
		if w.err != nil {
			return w.err
		}
		if err := r.replaySteps(ctx, w.steps); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// replaySteps applies a window's entries and decides its events, in order.
func (r *replay) replaySteps(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if st.event == nil {
			if g := r.grants[st.grant]; g != nil {
				g.Remaining = g.Remaining.Add(st.amount)
			}
			continue
		}
		if err := r.decide(ctx, st.event); err != nil {
			return err
		}
	}
	return nil
}

// steps reads the range's events and the other entries on the grants in
// scope, in the order they were written.
func (r *replay) steps(ctx context.Context, lo, hi time.Time) ([]step, error) {
	var out []step
	evs, err := r.readEvents(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if _, ok := r.pools[e.PoolID]; ok {
			out = append(out, step{at: e.CreatedAt, seq: 0, id: e.ID, event: e})
		}
	}
	rows, err := r.s.db.SQL.QueryContext(ctx, r.s.sqlf(`SELECT id, created_at, grant_id, kind, amount FROM ledger_entries
WHERE grant_id IS NOT NULL AND created_at >= $1 AND created_at < $2
  AND kind NOT IN ('BURN', 'OVERAGE', 'BORROW', 'UNCOVERED', 'HOLD', 'RELEASE')`), lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st   step
			kind string
			a    string
		)
		if err := rows.Scan(&st.id, &st.at, &st.grant, &kind, &a); err != nil {
			return nil, err
		}
		if r.grants[st.grant] == nil { // the SQL leaves out the events' own entries (replayed, not applied)
			continue
		}
		if st.amount, err = decimal.NewFromString(a); err != nil {
			return nil, err
		}
		st.seq = 1
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.seq != b.seq {
			return a.seq > b.seq // a moment's grants and moves before its events
		}
		return a.id < b.id
	})
	return out, nil
}

// decide replays one event under the draft and counts both outcomes.
func (r *replay) decide(ctx context.Context, e *ent.UsageEvent) error {
	row := r.rows[e.OrganizationID]
	if row == nil {
		row = &SimulationRow{OrganizationID: e.OrganizationID}
		r.rows[e.OrganizationID] = row
	}
	row.Events++
	r.events++
	row.BaselineCredits, row.BaselineOverage = row.BaselineCredits.Add(e.Credits), row.BaselineOverage.Add(e.Overage)
	if e.Decision == credit.DecisionDenied {
		row.BaselineDenied++
	}
	terms := r.terms[e.OrganizationID]
	row.BaselineRevenue = row.BaselineRevenue.Add(overageMoney(terms, e.Overage, row.BaselineOverage.Sub(e.Overage)))
	if e.Status == credit.StatusStarted {
		return nil // holds are not modelled: the terminal event is decided in full
	}
	v, err := r.draft.versions(r.regs[e.OrganizationID], e.OccurredAt)
	if err != nil {
		return err
	}
	if terms != nil {
		t := *terms
		v.Terms = &t
	}
	ev := engine.Event{Action: e.Action, Status: e.Status, Quantity: e.Quantity, Completion: e.Completion, Attempt: e.Attempt,
		Properties: e.Properties, OccurredAt: e.OccurredAt}
	d, err := engine.DecideUsageTiers(ctx, v, r.orgs[e.OrganizationID], ev, r.tiers(e.PoolID), e.CreatedAt)
	if err != nil || d.TopUps > 0 {
		// An event the draft cannot price (an action it lacks, a rule that
		// fails) or that would need AUTO_TOP_UP packs beyond the ones the
		// history bought: counted as denied.
		d = engine.UsageDecision{Decision: credit.DecisionDenied}
	}
	if d.Decision == credit.DecisionDenied {
		row.SimulatedDenied++
	} else {
		for _, dr := range d.Draws {
			if g := r.grants[dr.GrantID]; g != nil {
				g.Remaining = g.Remaining.Sub(dr.Amount)
			}
		}
		row.SimulatedCredits = row.SimulatedCredits.Add(d.Credits)
		row.SimulatedRevenue = row.SimulatedRevenue.Add(overageMoney(terms, d.Overage, row.SimulatedOverage))
		row.SimulatedOverage = row.SimulatedOverage.Add(d.Overage)
	}
	row.CrossesIntoOverage = row.SimulatedOverage.IsPositive() && !row.BaselineOverage.IsPositive()
	row.CrossesHardStop = row.SimulatedDenied > row.BaselineDenied
	return nil
}

// tiers are the grants of pool and of the pools it falls through to, as
// they stand (copies: the decision reads, the replay applies its draws).
func (r *replay) tiers(pool int) [][]engine.Grant {
	var out [][]engine.Grant
	for depth := 0; depth < 4; depth++ {
		gs := r.byPool[pool]
		vals := make([]engine.Grant, len(gs))
		for i, g := range gs {
			vals[i] = *g
		}
		out = append(out, vals)
		p := r.pools[pool]
		if p == nil || !p.FallThrough || p.ParentID == nil {
			break
		}
		pool = *p.ParentID
	}
	return out
}

// overageMoney is the money of credits of overage after before.
func overageMoney(t *engine.PlanTerms, credits, before decimal.Decimal) decimal.Decimal {
	if t == nil || !credits.IsPositive() {
		return decimal.Zero
	}
	c := *t
	c.OverageSoFar = before
	return c.OverageMoney(credits)
}

func (r *replay) report() SimulationReport {
	out := SimulationReport{Events: r.events}
	for _, row := range r.rows {
		out.Rows = append(out.Rows, *row)
	}
	sort.Slice(out.Rows, func(i, j int) bool { return out.Rows[i].OrganizationID < out.Rows[j].OrganizationID })
	return out
}

// readEvents reads the events of [lo, hi) (of the organisations asked for),
// only the columns a replay reads.
func (r *replay) readEvents(ctx context.Context, lo, hi time.Time) ([]*ent.UsageEvent, error) {
	q := `SELECT id, organization_id, pool_id, action, status, quantity, completion, attempt, properties, occurred_at, created_at,
  credits, overage, decision FROM usage_events WHERE created_at >= $1 AND created_at < $2`
	args := []any{lo, hi}
	if n := len(r.in.OrganizationIDs); n > 0 {
		q += " AND organization_id IN (" + inList(3, n) + ")"
		for _, id := range r.in.OrganizationIDs {
			args = append(args, id)
		}
	}
	rows, err := r.s.db.SQL.QueryContext(ctx, r.s.sqlf(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ent.UsageEvent
	for rows.Next() {
		var (
			e                              ent.UsageEvent
			props                          sql.NullString
			qty, compl, credits, over, dec string
		)
		if err := rows.Scan(&e.ID, &e.OrganizationID, &e.PoolID, &e.Action, &e.Status, &qty, &compl, &e.Attempt, &props, &e.OccurredAt,
			&e.CreatedAt, &credits, &over, &dec); err != nil {
			return nil, err
		}
		e.Decision = credit.Decision(dec)
		for _, f := range []struct {
			s string
			d *decimal.Decimal
		}{{qty, &e.Quantity}, {compl, &e.Completion}, {credits, &e.Credits}, {over, &e.Overage}} {
			if *f.d, err = decimal.NewFromString(f.s); err != nil {
				return nil, err
			}
		}
		if props.Valid && props.String != "" && props.String != "null" && props.String != "{}" {
			if err := json.Unmarshal([]byte(props.String), &e.Properties); err != nil {
				return nil, err
			}
		}
		out = append(out, &e)
	}
	return out, rows.Err()
}
