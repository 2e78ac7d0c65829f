package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/plan"
)

// PlanInput creates a plan.
type PlanInput struct {
	Name               string
	Period             credit.Period
	IncludedCredits    decimal.Decimal
	PricePerCredit     decimal.Decimal
	PlatformFee        decimal.Decimal
	Currency           string // default USD
	RegisterName       string
	OverageMode        credit.OverageMode
	OveragePrice       *decimal.Decimal
	AutoTopUpThreshold *decimal.Decimal
	AutoTopUpCredits   *decimal.Decimal
	AutoTopUpCap       *int // packs per period; nil: no cap
	BorrowLimit        *decimal.Decimal
	RolloverMode       credit.RolloverMode
	RolloverCap        *decimal.Decimal
	OnDemandPrice      *decimal.Decimal
	OnDemandExpiryDays *int
	// Incentives: caps per period (organisation) and per member (pool), in
	// credits (nil: none), and how many days incentive credits last
	// (default 14).
	IncentiveCapPerPeriod *decimal.Decimal
	IncentiveCapPerMember *decimal.Decimal
	IncentiveExpiryDays   *int
	Packaging
	Dials
	// NoticeDays is the notice a price change for the plan's subscribers
	// needs (default 30).
	NoticeDays *int
}

// Dials are a plan's price dials and its term-end term: graduated volume
// tiers for on-demand credits and overage (each with no flat price set,
// the first tier's price is it), prices per segment, and what the unused
// included credits do at a term end.
type Dials struct {
	OnDemandTiers     []credit.PriceTier
	OverageTiers      []credit.PriceTier
	SegmentPrices     []credit.SegmentPrice
	TermEndCredits    credit.TermEndCredits // default ROLL
	TermEndRefundRate *decimal.Decimal      // REFUND: money per unused credit
}

// maxSegmentPrices bounds a plan's segment prices.
const maxSegmentPrices = 100

// Validate checks the dials on their own.
func (d Dials) Validate() error {
	if err := engine.ValidateTiers("onDemandTiers", d.OnDemandTiers); err != nil {
		return err
	}
	if err := engine.ValidateTiers("overageTiers", d.OverageTiers); err != nil {
		return err
	}
	if len(d.SegmentPrices) > maxSegmentPrices {
		return credit.Invalid("segmentPrices", "at most %d segments", maxSegmentPrices)
	}
	seen := map[string]bool{}
	for i, sp := range d.SegmentPrices {
		at := fmt.Sprintf("segmentPrices[%d]", i)
		switch {
		case sp.Segment == "" || len(sp.Segment) > 100:
			return credit.Invalid(at+".segment", "must be 1 to 100 characters")
		case seen[sp.Segment]:
			return credit.Invalid(at+".segment", "segment %q is priced twice", sp.Segment)
		case sp.PricePerCredit == nil && sp.OnDemandPrice == nil && sp.OveragePrice == nil:
			return credit.Invalid(at, "set at least one of pricePerCredit, onDemandPrice, overagePrice")
		case sp.OnDemandPrice != nil && len(d.OnDemandTiers) > 0:
			return credit.Invalid(at+".onDemandPrice", "the plan prices on-demand credits by its onDemandTiers: a flat segment price would never apply")
		case sp.OveragePrice != nil && len(d.OverageTiers) > 0:
			return credit.Invalid(at+".overagePrice", "the plan prices overage by its overageTiers: a flat segment price would never apply")
		}
		seen[sp.Segment] = true
		for _, v := range []*decimal.Decimal{sp.PricePerCredit, sp.OnDemandPrice, sp.OveragePrice} {
			if v != nil && v.IsNegative() {
				return credit.Invalid(at, "prices must not be negative, got %s", v)
			}
		}
	}
	switch {
	case d.TermEndCredits != "" && !slices.Contains(d.TermEndCredits.Values(), string(d.TermEndCredits)):
		return credit.Invalid("termEndCredits", "%q is not one of %v", d.TermEndCredits, d.TermEndCredits.Values())
	case d.TermEndCredits == credit.TermEndRefund && d.TermEndRefundRate == nil:
		return credit.Invalid("termEndRefundRate", "a REFUND term end refunds unused credits at a stated rate: set it (money per credit)")
	case d.TermEndCredits != credit.TermEndRefund && d.TermEndRefundRate != nil:
		return credit.Invalid("termEndRefundRate", "only a REFUND term end has a refund rate")
	case d.TermEndRefundRate != nil && d.TermEndRefundRate.IsNegative():
		return credit.Invalid("termEndRefundRate", "must not be negative, got %s", d.TermEndRefundRate)
	}
	return nil
}

// withDefaults fills a flat price a tier list implies.
func (in PlanInput) withDefaults() PlanInput {
	if in.OnDemandPrice == nil && len(in.OnDemandTiers) > 0 {
		p := in.OnDemandTiers[0].Price
		in.OnDemandPrice = &p
	}
	if in.OveragePrice == nil && len(in.OverageTiers) > 0 {
		p := in.OverageTiers[0].Price
		in.OveragePrice = &p
	}
	if in.TermEndCredits == "" {
		in.TermEndCredits = credit.TermEndRoll
	}
	return in
}

// Packaging is how a plan sits among its siblings: its family and tier
// (good / better / best: 1, 2, 3), what a change away from it does to the
// period's included credits, the actions it entitles (nil: every action of
// the register), the one-time seed credits of a new subscription and each
// member's default limit.
type Packaging struct {
	Family          string
	Tier            *int
	ChangeCredits   credit.ChangeCredits // default PRORATE
	EntitledActions []string
	SeedCredits     *decimal.Decimal
	// MemberLimit is each member's (PERSONAL pool's) default hard budget
	// per plan period: set when the pool is created, and moved to the new
	// plan's on a plan change where it was the old plan's.
	MemberLimit *decimal.Decimal
}

// Validate checks the packaging terms on their own.
func (p Packaging) Validate() error {
	if len(p.Family) > 100 {
		return credit.Invalid("family", "must be at most 100 characters")
	}
	if p.Family != "" && p.Tier == nil || p.Family == "" && p.Tier != nil {
		return credit.Invalid("tier", "a plan of a family has a tier, and a tier belongs to a family: set both or neither")
	}
	if p.Tier != nil && (*p.Tier < 1 || *p.Tier > 100) {
		return credit.Invalid("tier", "must be 1 to 100")
	}
	if p.ChangeCredits != "" && !slices.Contains(p.ChangeCredits.Values(), string(p.ChangeCredits)) {
		return credit.Invalid("changeCredits", "%q is not one of %v", p.ChangeCredits, p.ChangeCredits.Values())
	}
	if p.EntitledActions != nil && (len(p.EntitledActions) == 0 || len(p.EntitledActions) > 1000) {
		return credit.Invalid("entitledActions", "name 1 to 1000 actions, or leave it out to entitle every action")
	}
	if p.SeedCredits != nil && p.SeedCredits.IsNegative() {
		return credit.Invalid("seedCredits", "must not be negative, got %s", p.SeedCredits)
	}
	if p.MemberLimit != nil && p.MemberLimit.IsNegative() {
		return credit.Invalid("memberLimit", "must not be negative, got %s", p.MemberLimit)
	}
	return nil
}

// Validate checks the plan is complete for its modes.
func (in PlanInput) Validate() error {
	if err := validName("name", in.Name); err != nil {
		return err
	}
	if err := validName("registerName", in.RegisterName); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    *decimal.Decimal
	}{
		{"includedCredits", &in.IncludedCredits}, {"pricePerCredit", &in.PricePerCredit}, {"platformFee", &in.PlatformFee},
		{"overagePrice", in.OveragePrice}, {"rolloverCap", in.RolloverCap}, {"onDemandPrice", in.OnDemandPrice},
		{"incentiveCapPerPeriod", in.IncentiveCapPerPeriod}, {"incentiveCapPerMember", in.IncentiveCapPerMember},
	} {
		if f.v != nil && f.v.IsNegative() {
			return credit.Invalid(f.name, "must not be negative, got %s", f.v)
		}
	}
	if err := (engine.Schedule{Period: in.Period, Start: noon}).Validate(); err != nil {
		return credit.Invalid("period", "%v", err)
	}
	for _, f := range []struct {
		name string
		v    *decimal.Decimal
	}{{"autoTopUpThreshold", in.AutoTopUpThreshold}, {"autoTopUpCredits", in.AutoTopUpCredits}, {"borrowLimit", in.BorrowLimit}} {
		if f.v != nil && f.v.IsNegative() {
			return credit.Invalid(f.name, "must not be negative, got %s", f.v)
		}
	}
	if err := in.validateOverage(); err != nil {
		return err
	}
	switch {
	case in.RolloverMode == credit.RolloverCapped && in.RolloverCap == nil:
		return credit.Invalid("rolloverCap", "a CAPPED rollover needs a cap")
	case in.RolloverMode != credit.RolloverCapped && in.RolloverCap != nil:
		return credit.Invalid("rolloverCap", "only a CAPPED rollover has a cap")
	}
	if in.IncentiveExpiryDays != nil && (*in.IncentiveExpiryDays < 1 || *in.IncentiveExpiryDays > 365) {
		return credit.Invalid("incentiveExpiryDays", "must be 1 to 365")
	}
	if in.OnDemandExpiryDays != nil && (*in.OnDemandExpiryDays < 1 || *in.OnDemandExpiryDays > 3650) {
		return credit.Invalid("onDemandExpiryDays", "must be 1 to 3650")
	}
	if len(in.Currency) > 3 {
		return credit.Invalid("currency", "an ISO 4217 code, like USD")
	}
	if in.NoticeDays != nil && (*in.NoticeDays < 0 || *in.NoticeDays > 366) {
		return credit.Invalid("noticeDays", "must be 0 to 366")
	}
	if err := in.Packaging.Validate(); err != nil {
		return err
	}
	return in.Dials.Validate()
}

// validateOverage checks the terms of the plan's overage mode.
func (in PlanInput) validateOverage() error {
	topUp := in.AutoTopUpThreshold != nil || in.AutoTopUpCredits != nil || in.AutoTopUpCap != nil
	switch in.OverageMode {
	case credit.OverageHard, credit.OverageDegraded:
	case credit.OverageSoft:
		if in.OveragePrice == nil {
			return credit.Invalid("overagePrice", "a SOFT overage plan bills overage: set its price")
		}
	case credit.OverageAutoTopUp:
		switch {
		case in.AutoTopUpThreshold == nil:
			return credit.Invalid("autoTopUpThreshold", "an AUTO_TOP_UP plan buys a pack when the balance falls below a threshold: set it")
		case in.AutoTopUpCredits == nil || !in.AutoTopUpCredits.IsPositive():
			return credit.Invalid("autoTopUpCredits", "an AUTO_TOP_UP plan needs a pack size above zero")
		case in.OnDemandPrice == nil:
			return credit.Invalid("onDemandPrice", "an AUTO_TOP_UP plan sells packs at the on-demand price: set it")
		case in.AutoTopUpCap != nil && *in.AutoTopUpCap < 1:
			return credit.Invalid("autoTopUpCap", "must be at least 1 pack per period")
		}
	case credit.OverageBorrow:
		if in.BorrowLimit == nil {
			return credit.Invalid("borrowLimit", "a BORROW plan borrows up to a limit per period: set it")
		}
	default:
		return credit.Invalid("overageMode", "%q is not an overage mode", in.OverageMode)
	}
	if topUp && in.OverageMode != credit.OverageAutoTopUp {
		return credit.Invalid("overageMode", "auto top-up settings need the AUTO_TOP_UP overage mode")
	}
	if in.BorrowLimit != nil && in.OverageMode != credit.OverageBorrow {
		return credit.Invalid("borrowLimit", "only a BORROW plan has a borrow limit")
	}
	return nil
}

// checkEntitled refuses entitled actions that no published version of the
// plan's register prices.
func (s *Service) checkEntitled(ctx context.Context, in PlanInput) error {
	if in.EntitledActions == nil {
		return nil
	}
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return err
	}
	for _, a := range in.EntitledActions {
		found := false
		for _, r := range snap.registers[in.RegisterName] {
			if _, ok := r.Weights[a]; ok {
				found = true
			}
		}
		if !found {
			return &credit.Error{Code: credit.CodeUnknownAction, Field: "entitledActions",
				Message: fmt.Sprintf("no published version of register %q prices the action %q", in.RegisterName, a)}
		}
	}
	return nil
}

// noon is any valid start, to validate a period on its own.
var noon = time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC)

func nullable(v *decimal.Decimal) decimal.NullDecimal {
	if v == nil {
		return decimal.NullDecimal{}
	}
	return decimal.NewNullDecimal(*v)
}

// CreatePlan creates a plan; plans never change afterwards.
func (s *Service) CreatePlan(ctx context.Context, in PlanInput) (*ent.Plan, error) {
	in = in.withDefaults()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.Currency == "" {
		in.Currency = "USD"
	}
	if in.ChangeCredits == "" {
		in.ChangeCredits = credit.ChangeProrate
	}
	if err := s.checkEntitled(ctx, in); err != nil {
		return nil, err
	}
	var out *ent.Plan
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		c := tx.Plan.Create().SetName(in.Name).SetPeriod(in.Period).SetIncludedCredits(in.IncludedCredits).
			SetPricePerCredit(in.PricePerCredit).SetPlatformFee(in.PlatformFee).SetCurrency(in.Currency).
			SetRegisterName(in.RegisterName).SetOverageMode(in.OverageMode).SetOveragePrice(nullable(in.OveragePrice)).
			SetRolloverMode(in.RolloverMode).SetRolloverCap(nullable(in.RolloverCap)).
			SetOnDemandPrice(nullable(in.OnDemandPrice)).SetNillableOnDemandExpiryDays(in.OnDemandExpiryDays).
			SetAutoTopUpThreshold(nullable(in.AutoTopUpThreshold)).SetAutoTopUpCredits(nullable(in.AutoTopUpCredits)).
			SetNillableAutoTopUpCap(in.AutoTopUpCap).SetBorrowLimit(nullable(in.BorrowLimit)).
			SetIncentiveCapPerPeriod(nullable(in.IncentiveCapPerPeriod)).SetIncentiveCapPerMember(nullable(in.IncentiveCapPerMember)).
			SetNillableIncentiveExpiryDays(in.IncentiveExpiryDays).
			SetFamily(in.Family).SetNillableTier(in.Tier).SetChangeCredits(in.ChangeCredits).SetEntitledActions(in.EntitledActions).
			SetSeedCredits(nullable(in.SeedCredits)).SetMemberLimit(nullable(in.MemberLimit)).
			SetOnDemandTiers(in.OnDemandTiers).SetOverageTiers(in.OverageTiers).SetSegmentPrices(in.SegmentPrices).
			SetTermEndCredits(in.TermEndCredits).SetTermEndRefundRate(nullable(in.TermEndRefundRate)).SetNillableNoticeDays(in.NoticeDays).
			SetCreatedAt(s.Now())
		var err error
		if out, err = c.Save(ctx); err != nil {
			if isUniqueViolation(err) {
				return credit.Errorf(credit.CodeConflict, "a plan named %q exists", in.Name)
			}
			return mapEntError(err, "plan", in.Name)
		}
		return s.audit(ctx, tx, "createPlan", "Plan", out.ID, nil, nil, out)
	})
	return out, err
}

// Plans lists the plans, oldest first.
func (s *Service) Plans(ctx context.Context) ([]*ent.Plan, error) {
	return s.db.Client.Plan.Query().Order(ent.Asc(plan.FieldID)).All(ctx)
}

// Plan returns a plan by id, nil when there is none.
func (s *Service) Plan(ctx context.Context, id int) (*ent.Plan, error) {
	return none(s.db.Client.Plan.Get(ctx, id))
}
