package engine

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// Grant is the state of one grant as the engine sees it.
type Grant struct {
	ID          int
	CreditType  credit.CreditType
	Priority    int
	Amount      decimal.Decimal
	Remaining   decimal.Decimal
	UnitPrice   decimal.Decimal
	EffectiveAt time.Time
	ExpiresAt   *time.Time
	CreatedAt   time.Time
	Payment     credit.Payment // "" or PAID: paid for; PENDING and FAILED grants hold nothing
}

// Usable reports whether the grant may be drawn at now: effective, not
// expired, not empty.
func (g Grant) Usable(now time.Time) bool {
	if g.EffectiveAt.After(now) {
		return false
	}
	if g.ExpiresAt != nil && !g.ExpiresAt.After(now) {
		return false
	}
	return g.Remaining.IsPositive()
}

// Org is what rules may see of an organisation.
type Org struct {
	ID      int
	Segment string
}

// Event is a usage event, normalised: defaults applied, validated.
type Event struct {
	Action     string
	Status     credit.UsageStatus
	Quantity   decimal.Decimal
	Completion decimal.Decimal
	Attempt    int
	RunID      string
	Properties map[string]any
	OccurredAt time.Time
}

// Weight is one action's entry in a register version.
type Weight struct {
	Action         string
	Credits        decimal.Decimal
	Expression     *rules.Program // nil when the weight is the fixed Credits
	ValuePerAction decimal.NullDecimal
	CostPerAction  decimal.NullDecimal
	// DegradedAllowed: the action still runs (decision DEGRADED) when a
	// DEGRADED plan is out of credits.
	DegradedAllowed bool
}

// Register is a published weight register version.
type Register struct {
	ID            int
	Name          string
	Version       int
	EffectiveFrom time.Time
	Weights       map[string]*Weight
}

// Rule is a published policy version with its compiled program. A nil *Rule
// means the built-in default of its kind.
type Rule struct {
	ID            int
	Name          string
	Kind          credit.PolicyKind
	Version       int
	EffectiveFrom time.Time
	Program       *rules.Program
}

// Versions are the register, policies and plan terms in effect for one event.
type Versions struct {
	Register  *Register
	Burn      *Rule
	DrawOrder *Rule
	Overage   *Rule      // OVERAGE policy: may let an event through as overage
	Incentive *Rule      // INCENTIVE policy: incentive credits for usage and behaviours
	Transfer  *Rule      // TRANSFER policy: which grants' credits may move between pools
	Refund    *Rule      // REFUND policy: how much of a usage event may be refunded
	Terms     *PlanTerms // nil: no subscription, a HARD ceiling
}

// PlanTerms are the overage terms of the plan an organisation is subscribed
// to, with what the current period has used of its caps.
type PlanTerms struct {
	SubscriptionID int
	PlanID         int
	// Entitled lists the actions the plan allows; nil: every action of
	// the register. Usage of another is DENIED NOT_ENTITLED, charged
	// nothing (a run that started entitled still settles).
	Entitled     []string
	OverageMode  credit.OverageMode
	OveragePrice decimal.NullDecimal
	Currency     string
	// AUTO_TOP_UP: buy packs of TopUpCredits at OnDemandPrice when the
	// balance falls below TopUpThreshold; TopUpsLeft this period (-1: no cap).
	TopUpThreshold decimal.Decimal
	TopUpCredits   decimal.Decimal
	OnDemandPrice  decimal.Decimal
	TopUpsLeft     int
	// BORROW: draw up to BorrowLimit per period on the next period's
	// allocation; BorrowLeft is what this period has not borrowed yet.
	BorrowLeft decimal.Decimal
	// OverageCap is the buyer's cap on overage per period (nil: none);
	// OverageLeft is what the period may still take under it, in credits.
	OverageCap  *OverageCap
	OverageLeft decimal.Decimal
	// OverageTiers grade the overage price by the period's overage so far
	// (OverageSoFar, loaded with the organisation locked when there are
	// tiers or a cap); empty: OveragePrice for every credit.
	OverageTiers []PriceTier
	OverageSoFar decimal.Decimal
}

// OverageMoney is the money of credits more of overage this period, and
// counts them in OverageSoFar.
func (t *PlanTerms) OverageMoney(credits decimal.Decimal) decimal.Decimal {
	if t == nil || !t.OveragePrice.Valid && len(t.OverageTiers) == 0 {
		return decimal.Zero
	}
	out := Graduated(t.OverageTiers, t.OveragePrice.Decimal, t.OverageSoFar, credits)
	t.OverageSoFar = t.OverageSoFar.Add(credits)
	return out
}

// OverageCap is an organisation's cap on overage per billing period, in
// credits, in money at the plan's overage price, or both (the lower binds).
type OverageCap struct {
	Credits, Amount decimal.NullDecimal
}

// InCredits is the cap in credits at price (money / price, 4 places down);
// with neither set, no cap (ok false).
func (c OverageCap) InCredits(price decimal.NullDecimal) (decimal.Decimal, bool) {
	var out decimal.Decimal
	ok := false
	if c.Credits.Valid {
		out, ok = c.Credits.Decimal, true
	}
	if c.Amount.Valid {
		byMoney := decimal.Zero // a money cap with free overage: no credits are billed, so none may pass
		if price.Valid && price.Decimal.IsPositive() {
			byMoney = c.Amount.Decimal.Div(price.Decimal).RoundDown(4)
		}
		if !ok || byMoney.LessThan(out) {
			out, ok = byMoney, true
		}
	}
	return out, ok
}

// Draw is the part of a burn paid by one grant.
type Draw struct {
	GrantID int
	Amount  decimal.Decimal
}

// UsageDecision is the engine's answer for one usage event.
type UsageDecision struct {
	Decision  credit.Decision
	Weight    decimal.Decimal // credits per unit from the register
	Credits   decimal.Decimal // credits charged (0 when denied)
	Requested decimal.Decimal // credits the burn rule asked for
	Draws     []Draw
	Overage   decimal.Decimal // credits beyond the balance, billed (SOFT, OVERAGE policy)
	// OverageAmount is the money of Overage: at the plan's overage price,
	// or graduated by its overage tiers from the period's overage so far
	// (set by the batch once the decision stands; see PlanTerms.OverageMoney).
	OverageAmount decimal.Decimal
	Borrowed      decimal.Decimal // credits drawn on the next period's allocation (BORROW)
	Uncovered     decimal.Decimal // part of Credits a settling run could not cover (see SettleRun): recorded, not waived
	Expired       []Draw          // a settling run's unburned held credits on grants that expired while held
	TopUps        int             // packs an AUTO_TOP_UP plan must buy before this burn (then decide again)
	Reason        string
	ReasonCode    credit.Code
}
