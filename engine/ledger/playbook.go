package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/plan"
	"github.com/creditd/creditd/ent/policyversion"
	"github.com/creditd/creditd/ent/weight"
	"github.com/creditd/creditd/ent/weightregister"
	"github.com/creditd/creditd/playbook"
	"github.com/creditd/creditd/rules"
)

// The playbook applied (package playbook reads it): ApplyPlaybook plans
// what the document changes against the live model, checking all of it
// first (weights, rules, plans, references, notice periods), and only then,
// unless it is a dry run, writes: new register versions published, new
// policy versions published, new plans created, in that order. An
// unchanged document plans and writes nothing. Plans never change: a plan
// of the document that differs from the live plan of its name is a
// CONFLICT (give the new deal a new name).

// PlaybookChange is one change a document makes.
type PlaybookChange struct {
	Kind   string // REGISTER, POLICY, PLAN
	Name   string
	Change string // CREATE, NEW_VERSION, UNCHANGED
	Detail string
	apply  func(context.Context) error
}

// PlaybookPlan is what applying a document does (or did).
type PlaybookPlan struct {
	Applied bool
	Changes []PlaybookChange
}

// ApplyPlaybook plans doc and, unless dryRun, applies it.
func (s *Service) ApplyPlaybook(ctx context.Context, doc playbook.Document, dryRun bool) (PlaybookPlan, error) {
	if err := doc.Check(); err != nil {
		return PlaybookPlan{}, err
	}
	out, err := s.planPlaybook(ctx, doc)
	if err != nil || dryRun {
		return out, err
	}
	for _, c := range out.Changes {
		if c.apply == nil {
			continue
		}
		if err := c.apply(ctx); err != nil {
			return out, fmt.Errorf("applying %s %q (checked, then failed: re-apply the document to finish): %w", c.Kind, c.Name, err)
		}
	}
	out.Applied = true
	return out, nil
}

func (s *Service) planPlaybook(ctx context.Context, doc playbook.Document) (PlaybookPlan, error) {
	var out PlaybookPlan
	now := s.Now()
	at := now
	if t := doc.ChangeTerms; t != nil && t.EffectiveFrom != nil {
		var err error
		if at, err = checkEffectiveFrom(now, t.EffectiveFrom); err != nil {
			return out, err
		}
	}
	var from *time.Time
	if doc.ChangeTerms != nil {
		from = doc.ChangeTerms.EffectiveFrom
	}
	registers := map[string]bool{}
	for i, r := range doc.Registers {
		c, err := s.planRegister(ctx, i, r, at, from)
		if err != nil {
			return out, err
		}
		registers[r.Name] = true
		out.Changes = append(out.Changes, c)
	}
	for i, p := range doc.Policies {
		c, err := s.planPolicy(ctx, i, p, at, from)
		if err != nil {
			return out, err
		}
		out.Changes = append(out.Changes, c)
	}
	for i, p := range doc.Plans {
		c, err := s.planPlan(ctx, i, p, registers)
		if err != nil {
			return out, err
		}
		out.Changes = append(out.Changes, c)
	}
	return out, nil
}

func docWeights(r playbook.Register) []WeightInput {
	ws := make([]WeightInput, len(r.Weights))
	for i, w := range r.Weights {
		ws[i] = WeightInput{Action: w.Action, Credits: w.Credits, Expression: w.Expression, ValuePerAction: w.ValuePerAction,
			CostPerAction: w.CostPerAction, DegradedAllowed: w.DegradedAllowed}
	}
	return ws
}

// prefixed names the document's field in a validation error.
func prefixed(err error, prefix string) error {
	if e, ok := err.(*credit.Error); ok && e.Field != "" {
		c := *e
		c.Field = prefix + "." + e.Field
		return &c
	}
	return err
}

func (s *Service) planRegister(ctx context.Context, i int, r playbook.Register, at time.Time, from *time.Time) (PlaybookChange, error) {
	ws := docWeights(r)
	if err := validateWeights(ws); err != nil {
		return PlaybookChange{}, prefixed(err, fmt.Sprintf("registers[%d]", i))
	}
	c := PlaybookChange{Kind: "REGISTER", Name: r.Name, Change: "CREATE"}
	cur, err := inEffect(ctx, s.db.Client, r.Name, at)
	if err != nil {
		return c, err
	}
	if cur != nil {
		old, err := s.db.Client.Weight.Query().Where(weight.RegisterID(cur.ID)).All(ctx)
		if err != nil {
			return c, err
		}
		if sameWeights(old, ws) {
			c.Change, c.Detail = "UNCHANGED", fmt.Sprintf("version %d", cur.Version)
			return c, nil
		}
		oldTerms, _ := registerTerms(ctx, s.db.Client, cur.ID)
		diff := engine.DiffRegisters(oldTerms, weightTerms(ws), nil)
		c.Change, c.Detail = "NEW_VERSION", fmt.Sprintf("after version %d", cur.Version)
		if diff.PriceChange {
			c.Detail += ", a price change"
			if err := s.inTx(ctx, func(tx *ent.Tx) error { // reads only
				_, err := s.checkNotice(ctx, tx, r.Name, fmt.Sprintf("register %q", r.Name), at, s.Now(), false)
				return err
			}); err != nil {
				return c, err
			}
		}
	}
	c.apply = func(ctx context.Context) error {
		d, err := s.SaveRegisterDraft(ctx, r.Name, ws)
		if err != nil {
			return err
		}
		_, err = s.PublishRegisterWith(ctx, r.Name, d.Version, PublishOptions{EffectiveFrom: from})
		return err
	}
	return c, nil
}

func weightTerms(ws []WeightInput) []engine.WeightTerms {
	out := make([]engine.WeightTerms, len(ws))
	for i, w := range ws {
		out[i] = engine.WeightTerms{Action: w.Action, Credits: w.Credits, Expression: w.Expression, Value: nullable(w.ValuePerAction), Cost: nullable(w.CostPerAction)}
	}
	return out
}

// sameWeights compares a stored version's weights with the document's.
func sameWeights(old []*ent.Weight, ws []WeightInput) bool {
	if len(old) != len(ws) {
		return false
	}
	byAction := map[string]WeightInput{}
	for _, w := range ws {
		byAction[w.Action] = w
	}
	same := func(a decimal.NullDecimal, b *decimal.Decimal) bool {
		return a.Valid == (b != nil) && (!a.Valid || a.Decimal.Equal(*b))
	}
	for _, o := range old {
		w, ok := byAction[o.Action]
		if !ok || !o.Credits.Equal(w.Credits) || o.Expression != w.Expression || o.DegradedAllowed != w.DegradedAllowed ||
			!same(o.ValuePerAction, w.ValuePerAction) || !same(o.CostPerAction, w.CostPerAction) {
			return false
		}
	}
	return true
}

func (s *Service) planPolicy(ctx context.Context, i int, p playbook.Policy, at time.Time, from *time.Time) (PlaybookChange, error) {
	field := fmt.Sprintf("policies[%d]", i)
	kind, ok := ruleKinds[p.Kind]
	if !ok {
		return PlaybookChange{}, credit.Invalid(field+".kind", "%q is not a policy kind", p.Kind)
	}
	if _, err := rules.Compile(kind, p.Expression); err != nil {
		return PlaybookChange{}, compileError(field+".expression", err)
	}
	c := PlaybookChange{Kind: "POLICY", Name: p.Name, Change: "CREATE"}
	latest, err := s.db.Client.PolicyVersion.Query().Where(policyversion.Name(p.Name)).Order(ent.Desc(policyversion.FieldVersion)).First(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return c, err
	}
	if latest != nil {
		if latest.Kind != p.Kind {
			return c, credit.Invalid(field+".kind", "policy %q is a %s policy, not %s", p.Name, latest.Kind, p.Kind)
		}
		if latest.Status == credit.VersionPublished && latest.Expression == p.Expression {
			c.Change, c.Detail = "UNCHANGED", fmt.Sprintf("version %d", latest.Version)
			return c, nil
		}
		c.Change, c.Detail = "NEW_VERSION", fmt.Sprintf("after version %d", latest.Version)
	}
	draft := &ent.PolicyVersion{Kind: p.Kind, Expression: p.Expression}
	if err := s.inTx(ctx, func(tx *ent.Tx) error { // reads only
		change, err := policyReplaces(ctx, tx, draft, at)
		if err != nil || !change {
			return err
		}
		_, err = s.checkNotice(ctx, tx, "", fmt.Sprintf("%s policy %q", p.Kind, p.Name), at, s.Now(), false)
		return err
	}); err != nil {
		return c, err
	}
	c.apply = func(ctx context.Context) error {
		d, err := s.SavePolicyDraft(ctx, PolicyInput{Name: p.Name, Kind: p.Kind, Expression: p.Expression})
		if err != nil {
			return err
		}
		_, err = s.PublishPolicyWith(ctx, d.Name, d.Version, PublishOptions{EffectiveFrom: from})
		return err
	}
	return c, nil
}

func (s *Service) planPlan(ctx context.Context, i int, p playbook.Plan, registers map[string]bool) (PlaybookChange, error) {
	field := fmt.Sprintf("plans[%d]", i)
	in := planInput(p).withDefaults()
	if err := in.Validate(); err != nil {
		return PlaybookChange{}, prefixed(err, field)
	}
	if !registers[p.RegisterName] {
		ok, err := s.db.Client.WeightRegister.Query().Where(weightregister.Name(p.RegisterName), weightregister.StatusEQ(credit.VersionPublished)).Exist(ctx)
		if err != nil {
			return PlaybookChange{}, err
		}
		if !ok {
			return PlaybookChange{}, &credit.Error{Code: credit.CodeNotFound, Field: field + ".registerName",
				Message: fmt.Sprintf("register %q is neither in the playbook nor published", p.RegisterName)}
		}
	}
	c := PlaybookChange{Kind: "PLAN", Name: p.Name, Change: "CREATE"}
	live, err := s.db.Client.Plan.Query().Where(plan.Name(p.Name)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return c, err
	}
	if live != nil {
		if canonical(PlanDocument(live)) != canonical(planDocument(in)) {
			return c, &credit.Error{Code: credit.CodeConflict, Field: field,
				Message: fmt.Sprintf("plan %q exists with other terms, and plans never change: give the new deal a new name", p.Name)}
		}
		c.Change = "UNCHANGED"
		return c, nil
	}
	c.apply = func(ctx context.Context) error {
		_, err := s.CreatePlan(ctx, planInput(p))
		return err
	}
	return c, nil
}

func canonical(p playbook.Plan) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func planInput(p playbook.Plan) PlanInput {
	return PlanInput{Name: p.Name, Period: p.Period, IncludedCredits: p.IncludedCredits, PricePerCredit: p.PricePerCredit,
		PlatformFee: p.PlatformFee, Currency: p.Currency, RegisterName: p.RegisterName, OverageMode: p.OverageMode, OveragePrice: p.OveragePrice,
		AutoTopUpThreshold: p.AutoTopUpThreshold, AutoTopUpCredits: p.AutoTopUpCredits, AutoTopUpCap: p.AutoTopUpCap, BorrowLimit: p.BorrowLimit,
		RolloverMode: p.RolloverMode, RolloverCap: p.RolloverCap, OnDemandPrice: p.OnDemandPrice, OnDemandExpiryDays: p.OnDemandExpiryDays,
		IncentiveCapPerPeriod: p.IncentiveCapPerPeriod, IncentiveCapPerMember: p.IncentiveCapPerMember, IncentiveExpiryDays: p.IncentiveExpiryDays,
		Packaging: Packaging{Family: p.Family, Tier: p.Tier, ChangeCredits: p.ChangeCredits, EntitledActions: p.EntitledActions,
			SeedCredits: p.SeedCredits, MemberLimit: p.MemberLimit},
		Dials: Dials{OnDemandTiers: p.OnDemandTiers, OverageTiers: p.OverageTiers, SegmentPrices: p.SegmentPrices,
			TermEndCredits: p.TermEndCredits, TermEndRefundRate: p.TermEndRefundRate},
		NoticeDays: p.NoticeDays}
}

// planDocument is a plan input (with its defaults) as the playbook writes it.
func planDocument(in PlanInput) playbook.Plan {
	p := playbook.Plan{Name: in.Name, Period: in.Period, IncludedCredits: in.IncludedCredits, PricePerCredit: in.PricePerCredit,
		PlatformFee: in.PlatformFee, Currency: in.Currency, RegisterName: in.RegisterName, OverageMode: in.OverageMode, OveragePrice: in.OveragePrice,
		AutoTopUpThreshold: in.AutoTopUpThreshold, AutoTopUpCredits: in.AutoTopUpCredits, AutoTopUpCap: in.AutoTopUpCap, BorrowLimit: in.BorrowLimit,
		RolloverMode: in.RolloverMode, RolloverCap: in.RolloverCap, OnDemandPrice: in.OnDemandPrice, OnDemandExpiryDays: in.OnDemandExpiryDays,
		IncentiveCapPerPeriod: in.IncentiveCapPerPeriod, IncentiveCapPerMember: in.IncentiveCapPerMember, IncentiveExpiryDays: in.IncentiveExpiryDays,
		Family: in.Family, Tier: in.Tier, ChangeCredits: in.ChangeCredits, EntitledActions: in.EntitledActions, SeedCredits: in.SeedCredits,
		MemberLimit: in.MemberLimit, OnDemandTiers: in.OnDemandTiers, OverageTiers: in.OverageTiers, SegmentPrices: in.SegmentPrices,
		TermEndCredits: in.TermEndCredits, TermEndRefundRate: in.TermEndRefundRate, NoticeDays: in.NoticeDays}
	if p.Currency == "" {
		p.Currency = "USD"
	}
	if p.ChangeCredits == "" {
		p.ChangeCredits = credit.ChangeProrate
	}
	if p.IncentiveExpiryDays == nil {
		p.IncentiveExpiryDays = ptrInt(14)
	}
	if p.NoticeDays == nil {
		p.NoticeDays = ptrInt(30)
	}
	return p // decimals compare by their JSON, which is canonical (no trailing zeros)
}

func ptrInt(n int) *int { return &n }

// ptrOf is a nullable decimal as a pointer (nil: null).
func ptrOf(d decimal.NullDecimal) *decimal.Decimal {
	if !d.Valid {
		return nil
	}
	return &d.Decimal
}

// PlanDocument is a live plan as the playbook writes it.
func PlanDocument(p *ent.Plan) playbook.Plan {
	null := ptrOf
	days := p.IncentiveExpiryDays
	notice := p.NoticeDays
	return planDocument(PlanInput{Name: p.Name, Period: p.Period, IncludedCredits: p.IncludedCredits, PricePerCredit: p.PricePerCredit,
		PlatformFee: p.PlatformFee, Currency: p.Currency, RegisterName: p.RegisterName, OverageMode: p.OverageMode, OveragePrice: null(p.OveragePrice),
		AutoTopUpThreshold: null(p.AutoTopUpThreshold), AutoTopUpCredits: null(p.AutoTopUpCredits), AutoTopUpCap: p.AutoTopUpCap,
		BorrowLimit: null(p.BorrowLimit), RolloverMode: p.RolloverMode, RolloverCap: null(p.RolloverCap), OnDemandPrice: null(p.OnDemandPrice),
		OnDemandExpiryDays: p.OnDemandExpiryDays, IncentiveCapPerPeriod: null(p.IncentiveCapPerPeriod), IncentiveCapPerMember: null(p.IncentiveCapPerMember),
		IncentiveExpiryDays: &days,
		Packaging: Packaging{Family: p.Family, Tier: p.Tier, ChangeCredits: p.ChangeCredits, EntitledActions: p.EntitledActions,
			SeedCredits: null(p.SeedCredits), MemberLimit: null(p.MemberLimit)},
		Dials: Dials{OnDemandTiers: p.OnDemandTiers, OverageTiers: p.OverageTiers, SegmentPrices: p.SegmentPrices, TermEndCredits: p.TermEndCredits,
			TermEndRefundRate: null(p.TermEndRefundRate)},
		NoticeDays: &notice})
}

// ExportPlaybook writes the live model as a playbook: each register's
// version in effect now (else its latest), each policy's latest published
// version, every plan.
func (s *Service) ExportPlaybook(ctx context.Context) (playbook.Document, error) {
	c := s.db.Client
	var doc playbook.Document
	names, err := c.WeightRegister.Query().Unique(true).Select(weightregister.FieldName).Strings(ctx)
	if err != nil {
		return doc, err
	}
	sort.Strings(names)
	for _, name := range names {
		r, err := inEffect(ctx, c, name, s.Now())
		if err != nil {
			return doc, err
		}
		if r == nil {
			if r, err = c.WeightRegister.Query().Where(weightregister.Name(name)).Order(ent.Desc(weightregister.FieldVersion)).First(ctx); err != nil {
				return doc, err
			}
		}
		ws, err := c.Weight.Query().Where(weight.RegisterID(r.ID)).Order(ent.Asc(weight.FieldAction)).All(ctx)
		if err != nil {
			return doc, err
		}
		reg := playbook.Register{Name: name}
		for _, w := range ws {
			reg.Weights = append(reg.Weights, playbook.Weight{Action: w.Action, Credits: w.Credits, Expression: w.Expression,
				ValuePerAction: ptrOf(w.ValuePerAction), CostPerAction: ptrOf(w.CostPerAction), DegradedAllowed: w.DegradedAllowed})
		}
		doc.Registers = append(doc.Registers, reg)
	}
	pols, err := c.PolicyVersion.Query().Where(policyversion.StatusEQ(credit.VersionPublished)).
		Order(ent.Asc(policyversion.FieldName), ent.Desc(policyversion.FieldVersion)).All(ctx)
	if err != nil {
		return doc, err
	}
	seen := map[string]bool{}
	for _, p := range pols {
		if !seen[p.Name] {
			seen[p.Name] = true
			doc.Policies = append(doc.Policies, playbook.Policy{Name: p.Name, Kind: p.Kind, Expression: p.Expression})
		}
	}
	plans, err := c.Plan.Query().Order(ent.Asc(plan.FieldID)).All(ctx)
	if err != nil {
		return doc, err
	}
	for _, p := range plans {
		doc.Plans = append(doc.Plans, PlanDocument(p))
	}
	return doc, nil
}
