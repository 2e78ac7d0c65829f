package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// Limits on a quote; larger requests are refused, not truncated.
const (
	MaxQuoteLines    = 1000              // lines of one quote
	MaxQuoteCount    = 1_000_000_000_000 // actions of one line in a period
	QuoteCountPlaces = 6                 // decimal places of a count (an average may be fractional)
	MaxQuoteTopUps   = 1_000_000         // AUTO_TOP_UP packs one quoted period may buy
)

// quoteSharePlaces is the precision of each line's share of the uncovered
// credits (see Quotation.attribute).
const quoteSharePlaces = 12

// QuoteTerms are the plan terms a quote prices usage under: the plan's
// fields, with TopUpCap -1 for no cap (0 allows no pack).
type QuoteTerms struct {
	Plan            string
	IncludedCredits decimal.Decimal // allocated at each period's start
	PricePerCredit  decimal.Decimal // the included credits' unit price (not billed: see Quote)
	PlatformFee     decimal.Decimal // billed at each period's start
	Currency        string
	OverageMode     credit.OverageMode
	OveragePrice    decimal.NullDecimal // SOFT: money per overage credit; unset bills overage at 0, as the ledger does
	// AUTO_TOP_UP: a pack of TopUpCredits at OnDemandPrice per credit is
	// bought when a burn leaves the balance below TopUpThreshold, or when
	// a burn exceeds the balance; at most TopUpCap packs a period.
	TopUpThreshold decimal.Decimal
	TopUpCredits   decimal.Decimal
	OnDemandPrice  decimal.Decimal
	TopUpCap       int
	BorrowLimit    decimal.Decimal // BORROW: credits a period may take from the next one's allocation
	// Graduated tiers for overage and on-demand (packs) credits, counted
	// from the period's first (empty: the flat prices above).
	OverageTiers, OnDemandTiers []PriceTier
}

// ActionCount is one line of an expected action mix: Count actions (each of
// quantity 1) of Action in one period, with the event properties the
// action's weight expression reads, if any.
type ActionCount struct {
	Action     string
	Count      decimal.Decimal
	Properties map[string]any
}

// QuoteLine is what one line of the action mix costs in credits.
type QuoteLine struct {
	Action           string
	Count            decimal.Decimal
	CreditsPerAction decimal.Decimal     // the register's weight for one action
	Credits          decimal.Decimal     // CreditsPerAction x Count
	PricePerAction   decimal.Decimal     // CreditsPerAction x PricePerCredit
	ValuePerAction   decimal.NullDecimal // from the register
	CostPerAction    decimal.NullDecimal // from the register
	Value, Cost      decimal.NullDecimal // x Count, when the register has them
	DegradedAllowed  bool
	Uncovered        decimal.Decimal // this line's share of Quotation.Uncovered
	Denied           decimal.Decimal // the part of Uncovered denied (all of it but under DEGRADED for a degraded-allowed action)
}

// Quotation is the answer of Quote for one period.
type Quotation struct {
	Plan            string
	RegisterName    string
	RegisterVersion int
	Lines           []QuoteLine
	Credits         decimal.Decimal     // total of the lines
	Included        decimal.Decimal     // credits the included allocation covers (<= IncludedCredits)
	Excess          decimal.Decimal     // Credits - Included
	Overage         decimal.Decimal     // SOFT: the excess, billed
	OverageCost     decimal.Decimal     // Overage x OveragePrice
	TopUps          int                 // AUTO_TOP_UP: packs bought
	TopUpCredits    decimal.Decimal     // TopUps x pack size
	TopUpCost       decimal.Decimal     // TopUpCredits x OnDemandPrice
	Borrowed        decimal.Decimal     // BORROW: taken off the next period's allocation; no money now
	Uncovered       decimal.Decimal     // credits the plan does not cover: denied, or waived (DEGRADED)
	Denied          decimal.Decimal     // the part of Uncovered denied
	Waived          decimal.Decimal     // the part of Uncovered degraded-allowed actions run for free (DEGRADED)
	Unused          decimal.Decimal     // included and top-up credits left at the period's end
	Value, Cost     decimal.NullDecimal // totals of the lines, when every line has one
	PlatformFee     decimal.Decimal
	IncludedValue   decimal.Decimal // IncludedCredits x PricePerCredit: information, not billed
	Total           decimal.Decimal // PlatformFee + OverageCost + TopUpCost: what the platform bills
	Currency        string
	// EffectivePricePerCredit is Total per credit that runs (Credits -
	// Denied), to 8 decimal places; 0 when none runs.
	EffectivePricePerCredit decimal.Decimal
	Notes                   []string
}

// Quote is the credit calculator: what an expected action mix costs in one
// period of a plan, line by line, and what the platform bills for it.
//
// Credits per action are the weight of the register version reg (the one in
// effect, or the one a contract pins), evaluated for an event of the action
// with quantity 1, status SUCCEEDED and the line's properties (none unless
// given: a weight expression that reads a property then fails with
// RULE_RUNTIME naming the action). Credits are weight x count: the default
// BURN policy of a succeeded event; BURN and OVERAGE policies are not applied.
//
// The period starts with IncludedCredits and nothing else (no rollover,
// on-demand or incentive credits, nothing borrowed by the period before), and
// usage is assumed spread over the period, each event small against the
// balance and a pack. The excess over the included credits is then:
//
//	HARD         denied.
//	SOFT         overage, billed at OveragePrice (0 when unset: the ledger bills it so).
//	DEGRADED     waived for degraded-allowed actions (they run free), denied for the others.
//	AUTO_TOP_UP  covered by packs: the fewest that leave the balance at or above
//	             TopUpThreshold at the period's end (a pack is also bought when a burn
//	             leaves the balance below the threshold, within the included credits);
//	             at most TopUpCap; what they do not cover is denied.
//	BORROW       borrowed from the next period's allocation, up to BorrowLimit; the rest denied.
//
// Uncovered credits are shared among the lines in proportion to their
// credits (the order of events in a period is unknown): each share rounded
// down to 12 decimal places, the line with the most credits takes the rest.
//
// Money: the platform bills, per period, the PLATFORM_FEE charge at the
// period's start, OVERAGE charges and AUTO_TOP_UP charges; Total is their
// sum. Included credits x PricePerCredit is billed nowhere (it is the
// SUBSCRIPTION grant's unit price): IncludedValue shows it as information.
//
// Lines are kept as given: the same action may appear twice (e.g. with other
// properties). Errors: VALIDATION for bad terms or usage (no lines, more than
// MaxQuoteLines, an empty action, a negative count, one above MaxQuoteCount
// or with more than QuoteCountPlaces decimal places, more than
// MaxQuoteTopUps packs), UNKNOWN_ACTION, RULE_RUNTIME, NO_REGISTER.
func Quote(ctx context.Context, reg *Register, t QuoteTerms, usage []ActionCount, org Org, now time.Time) (Quotation, error) {
	if err := t.Validate(); err != nil {
		return Quotation{}, err
	}
	if err := checkUsage(usage); err != nil {
		return Quotation{}, err
	}
	if reg == nil {
		return Quotation{}, credit.Errorf(credit.CodeNoRegister, "no published weight register is in effect at %s", now.Format(time.RFC3339))
	}
	q := Quotation{Plan: t.Plan, RegisterName: reg.Name, RegisterVersion: reg.Version, Currency: t.Currency,
		Credits: decimal.Zero, Overage: decimal.Zero, OverageCost: decimal.Zero, TopUpCredits: decimal.Zero, TopUpCost: decimal.Zero,
		Borrowed: decimal.Zero, Uncovered: decimal.Zero, Denied: decimal.Zero, Waived: decimal.Zero,
		EffectivePricePerCredit: decimal.Zero}
	for i, a := range usage {
		l, err := quoteLine(ctx, reg, t, i, a, org, now)
		if err != nil {
			return Quotation{}, err
		}
		q.Lines = append(q.Lines, l)
		q.Credits = q.Credits.Add(l.Credits)
	}
	q.Included = decimal.Min(q.Credits, t.IncludedCredits)
	q.Excess = q.Credits.Sub(q.Included)
	if err := q.cover(t); err != nil {
		return Quotation{}, err
	}
	q.attribute(t.OverageMode)
	q.bill(t)
	q.Notes = q.notes(t)
	return q, nil
}

// Validate checks the terms: a known overage mode, amounts not negative,
// a cap of -1 or more.
func (t QuoteTerms) Validate() error {
	if !slices.Contains(credit.OverageMode("").Values(), string(t.OverageMode)) {
		return credit.Invalid("terms.overageMode", "%q is not an overage mode", string(t.OverageMode))
	}
	for _, f := range []struct {
		name string
		v    decimal.Decimal
	}{{"includedCredits", t.IncludedCredits}, {"pricePerCredit", t.PricePerCredit}, {"platformFee", t.PlatformFee},
		{"overagePrice", t.OveragePrice.Decimal}, {"topUpThreshold", t.TopUpThreshold}, {"topUpCredits", t.TopUpCredits},
		{"onDemandPrice", t.OnDemandPrice}, {"borrowLimit", t.BorrowLimit}} {
		if f.v.IsNegative() {
			return credit.Invalid("terms."+f.name, "must not be negative, got %s", f.v)
		}
	}
	if t.TopUpCap < -1 {
		return credit.Invalid("terms.topUpCap", "must be -1 (no cap) or a number of packs, got %d", t.TopUpCap)
	}
	return nil
}

func checkUsage(usage []ActionCount) error {
	switch {
	case len(usage) == 0:
		return credit.Invalid("usage", "must list at least one action")
	case len(usage) > MaxQuoteLines:
		return credit.Invalid("usage", "has %d lines, more than %d", len(usage), MaxQuoteLines)
	}
	for i, a := range usage {
		if err := a.check(i); err != nil {
			return err
		}
	}
	return nil
}

// check validates line i: an action, a count of at most MaxQuoteCount with
// at most QuoteCountPlaces decimal places, properties as JSON.
func (a ActionCount) check(i int) error {
	c := a.Count
	switch {
	case a.Action == "":
		return credit.Invalid(usageField(i, "action"), "must not be empty")
	case len(a.Action) > MaxActionLen:
		return credit.Invalid(usageField(i, "action"), "is longer than %d bytes", MaxActionLen)
	case c.IsNegative():
		return credit.Invalid(usageField(i, "count"), "must not be negative, got %s", c)
	case c.GreaterThan(decimal.NewFromInt(MaxQuoteCount)):
		return credit.Invalid(usageField(i, "count"), "must be at most %d actions a period, got %s", int64(MaxQuoteCount), c)
	// The first test spares truncating a number with a huge exponent.
	case c.Exponent() < -64 || !c.Equal(c.Truncate(QuoteCountPlaces)):
		return credit.Invalid(usageField(i, "count"), "must have at most %d decimal places, got %s", QuoteCountPlaces, c)
	}
	if a.Properties == nil {
		return nil
	}
	props, err := json.Marshal(a.Properties)
	if err != nil {
		return credit.Invalid(usageField(i, "properties"), "not a JSON object: %v", err)
	}
	if len(props) > MaxPropertyBytes {
		return credit.Invalid(usageField(i, "properties"), "is larger than %d bytes", MaxPropertyBytes)
	}
	return nil
}

func usageField(i int, name string) string { return fmt.Sprintf("usage[%d].%s", i, name) }

// quoteLine prices line i: its weight for one action, times the count.
func quoteLine(ctx context.Context, reg *Register, t QuoteTerms, i int, a ActionCount, org Org, now time.Time) (QuoteLine, error) {
	w := reg.Weights[a.Action]
	if w == nil {
		return QuoteLine{}, &credit.Error{Code: credit.CodeUnknownAction, Field: usageField(i, "action"),
			Message: fmt.Sprintf("action %q is not in weight register %q version %d", a.Action, reg.Name, reg.Version)}
	}
	one := decimal.NewFromInt(1)
	ev := Event{Action: a.Action, Status: credit.StatusSucceeded, Quantity: one, Completion: one, Attempt: 1,
		Properties: a.Properties, OccurredAt: now}
	per, err := WeightOf(ctx, reg, ev, org, now)
	if err != nil {
		return QuoteLine{}, weightError(ctx, err, i, a)
	}
	return QuoteLine{
		Action: a.Action, Count: a.Count, CreditsPerAction: per, Credits: per.Mul(a.Count),
		PricePerAction: per.Mul(t.PricePerCredit),
		ValuePerAction: w.ValuePerAction, CostPerAction: w.CostPerAction,
		Value: mulNull(w.ValuePerAction, a.Count), Cost: mulNull(w.CostPerAction, a.Count),
		DegradedAllowed: w.DegradedAllowed, Uncovered: decimal.Zero, Denied: decimal.Zero,
	}, nil
}

// weightError names line i's properties as the field of a weight
// expression's failure, with a hint when the line gave none.
func weightError(ctx context.Context, err error, i int, a ActionCount) error {
	var e *credit.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Field = usageField(i, "properties")
	if c.Code == credit.CodeRuleRuntime && len(a.Properties) == 0 && ctx.Err() == nil {
		c.Message += " (a quote evaluates the weight with no properties unless the line gives them)"
	}
	return &c
}

func mulNull(x decimal.NullDecimal, n decimal.Decimal) decimal.NullDecimal {
	if !x.Valid {
		return decimal.NullDecimal{}
	}
	return decimal.NewNullDecimal(x.Decimal.Mul(n))
}

// cover decides, by the overage mode, what covers the excess and what is
// left uncovered (see Quote).
func (q *Quotation) cover(t QuoteTerms) error {
	switch t.OverageMode {
	case credit.OverageSoft:
		q.Overage = q.Excess
		if t.OveragePrice.Valid || len(t.OverageTiers) > 0 {
			q.OverageCost = Graduated(t.OverageTiers, t.OveragePrice.Decimal, decimal.Zero, q.Overage)
		}
	case credit.OverageAutoTopUp:
		n, err := quoteTopUps(q.Credits, t)
		if err != nil {
			return err
		}
		q.TopUps = n
		q.TopUpCredits = t.TopUpCredits.Mul(decimal.NewFromInt(int64(n)))
		q.TopUpCost = Graduated(t.OnDemandTiers, t.OnDemandPrice, decimal.Zero, q.TopUpCredits)
		q.Uncovered = decimal.Max(q.Excess.Sub(q.TopUpCredits), decimal.Zero)
	case credit.OverageBorrow:
		q.Borrowed = decimal.Min(q.Excess, t.BorrowLimit)
		q.Uncovered = q.Excess.Sub(q.Borrowed)
	default: // HARD, DEGRADED
		q.Uncovered = q.Excess
	}
	return nil
}

// quoteTopUps is how many packs an AUTO_TOP_UP plan buys in a period that
// burns credits: the fewest n with IncludedCredits + n x pack >= credits +
// threshold (the engine buys after a burn that leaves the balance below the
// threshold, TopUpAfter, and before one that exceeds it, TopUpsFor), at
// most the cap; 0 without a pack size or without usage.
func quoteTopUps(credits decimal.Decimal, t QuoteTerms) (int, error) {
	need := credits.Add(t.TopUpThreshold).Sub(t.IncludedCredits)
	if !credits.IsPositive() || !t.TopUpCredits.IsPositive() || !need.IsPositive() {
		return 0, nil
	}
	packs, rest := need.QuoRem(t.TopUpCredits, 0)
	if rest.IsPositive() {
		packs = packs.Add(decimal.NewFromInt(1))
	}
	if t.TopUpCap >= 0 && packs.GreaterThan(decimal.NewFromInt(int64(t.TopUpCap))) {
		return t.TopUpCap, nil
	}
	if packs.GreaterThan(decimal.NewFromInt(MaxQuoteTopUps)) {
		return 0, credit.Invalid("usage", "needs %s auto top-up packs of %s credits in one period, more than %d", packs, t.TopUpCredits, MaxQuoteTopUps)
	}
	return int(packs.IntPart()), nil
}

// attribute shares the uncovered credits among the lines in proportion to
// their credits: each share rounded down to quoteSharePlaces, the line with
// the most credits (the first of equals) takes the rest, so the shares sum
// to Uncovered exactly. A share is denied, or waived under DEGRADED for a
// degraded-allowed action.
func (q *Quotation) attribute(mode credit.OverageMode) {
	if !q.Uncovered.IsPositive() {
		return
	}
	largest, given := 0, decimal.Zero
	for i := range q.Lines {
		l := &q.Lines[i]
		l.Uncovered, _ = q.Uncovered.Mul(l.Credits).QuoRem(q.Credits, quoteSharePlaces)
		given = given.Add(l.Uncovered)
		if l.Credits.GreaterThan(q.Lines[largest].Credits) {
			largest = i
		}
	}
	q.Lines[largest].Uncovered = q.Lines[largest].Uncovered.Add(q.Uncovered.Sub(given))
	for i := range q.Lines {
		l := &q.Lines[i]
		if mode == credit.OverageDegraded && l.DegradedAllowed {
			q.Waived = q.Waived.Add(l.Uncovered)
			continue
		}
		l.Denied = l.Uncovered
		q.Denied = q.Denied.Add(l.Denied)
	}
}

// bill sums the money: what the platform bills, the included credits'
// value, the effective price, the value and cost totals.
func (q *Quotation) bill(t QuoteTerms) {
	q.PlatformFee = t.PlatformFee
	q.IncludedValue = t.IncludedCredits.Mul(t.PricePerCredit)
	q.Total = t.PlatformFee.Add(q.OverageCost).Add(q.TopUpCost)
	drawn := q.Credits.Sub(q.Overage).Sub(q.Borrowed).Sub(q.Uncovered)
	q.Unused = t.IncludedCredits.Add(q.TopUpCredits).Sub(drawn)
	if run := q.Credits.Sub(q.Denied); run.IsPositive() {
		q.EffectivePricePerCredit = q.Total.DivRound(run, 8)
	}
	value, cost := decimal.NewNullDecimal(decimal.Zero), decimal.NewNullDecimal(decimal.Zero)
	for _, l := range q.Lines {
		value = addNull(value, l.Value)
		cost = addNull(cost, l.Cost)
	}
	q.Value, q.Cost = value, cost
}

// addNull is a + b, invalid when either is.
func addNull(a, b decimal.NullDecimal) decimal.NullDecimal {
	if !a.Valid || !b.Valid {
		return decimal.NullDecimal{}
	}
	return decimal.NewNullDecimal(a.Decimal.Add(b.Decimal))
}

// notes are the quote in words: the allocation, the overage mode's answer,
// the money, value anchoring warnings.
func (q *Quotation) notes(t QuoteTerms) []string {
	var out []string
	if q.Excess.IsPositive() {
		out = append(out, fmt.Sprintf("%s credits: %s included, excess of %s", q.Credits, q.Included, q.Excess))
	} else {
		out = append(out, fmt.Sprintf("%s credits fit the %s included credits", q.Credits, t.IncludedCredits))
	}
	out = append(out, q.coverNotes(t)...)
	if q.Unused.IsPositive() {
		out = append(out, fmt.Sprintf("%s credits left unused at the period's end", q.Unused))
	}
	out = append(out, fmt.Sprintf("billed: platform fee %s + overage %s + top-ups %s = %s", q.money(q.PlatformFee), q.money(q.OverageCost), q.money(q.TopUpCost), q.money(q.Total)))
	out = append(out, fmt.Sprintf("included credits' value: %s x %s = %s (information: not billed)", t.IncludedCredits, q.money(t.PricePerCredit), q.money(q.IncludedValue)))
	return append(out, q.anchorNotes(t)...)
}

func (q *Quotation) money(x decimal.Decimal) string {
	return strings.TrimSpace(x.String() + " " + q.Currency)
}

// coverNotes say what the overage mode does with the excess.
func (q *Quotation) coverNotes(t QuoteTerms) []string {
	switch {
	case t.OverageMode == credit.OverageAutoTopUp:
		return q.topUpNotes(t)
	case t.OverageMode == credit.OverageBorrow:
		return q.borrowNotes(t)
	case t.OverageMode == credit.OverageSoft && q.Overage.IsPositive() && len(t.OverageTiers) > 0:
		return []string{fmt.Sprintf("%s overage credits billed by the plan's %d graduated overage tiers: %s", q.Overage, len(t.OverageTiers), q.money(q.OverageCost))}
	case t.OverageMode == credit.OverageSoft && q.Overage.IsPositive() && t.OveragePrice.Valid:
		return []string{fmt.Sprintf("%s overage credits billed at %s each: %s", q.Overage, q.money(t.OveragePrice.Decimal), q.money(q.OverageCost))}
	case t.OverageMode == credit.OverageSoft && q.Overage.IsPositive():
		return []string{fmt.Sprintf("%s overage credits billed at 0: the plan has no overage price", q.Overage)}
	case t.OverageMode == credit.OverageDegraded && q.Uncovered.IsPositive():
		return []string{fmt.Sprintf("out of credits under DEGRADED: %s credits of degraded-allowed actions run free, %s credits of other actions denied%s",
			q.Waived, q.Denied, q.deniedActions())}
	case t.OverageMode == credit.OverageHard && q.Uncovered.IsPositive():
		return []string{fmt.Sprintf("excess of %s credits denied under HARD", q.Uncovered)}
	}
	return nil
}

func (q *Quotation) topUpNotes(t QuoteTerms) []string {
	var out []string
	if q.TopUps > 0 {
		when := "when a burn exceeds the balance"
		if t.TopUpThreshold.IsPositive() {
			when = "when the balance falls below " + t.TopUpThreshold.String()
		}
		out = append(out, fmt.Sprintf("%d auto top-up packs of %s credits at %s a credit: %s (a pack is bought %s)",
			q.TopUps, t.TopUpCredits, q.money(t.OnDemandPrice), q.money(q.TopUpCost), when))
	}
	switch {
	case !q.Uncovered.IsPositive():
	case !t.TopUpCredits.IsPositive():
		out = append(out, fmt.Sprintf("excess of %s credits denied under AUTO_TOP_UP: the plan has no pack size", q.Uncovered))
	default:
		out = append(out, fmt.Sprintf("excess of %s credits denied under AUTO_TOP_UP: beyond the cap of %d packs", q.Uncovered, t.TopUpCap))
	}
	return out
}

func (q *Quotation) borrowNotes(t QuoteTerms) []string {
	var out []string
	if q.Borrowed.IsPositive() {
		out = append(out, fmt.Sprintf("%s credits borrowed from the next period: it opens with %s included credits (no money now)",
			q.Borrowed, decimal.Max(t.IncludedCredits.Sub(q.Borrowed), decimal.Zero)))
	}
	if q.Uncovered.IsPositive() {
		out = append(out, fmt.Sprintf("excess of %s credits denied under BORROW: beyond the borrow limit of %s", q.Uncovered, t.BorrowLimit))
	}
	return out
}

// deniedActions lists the actions with denied credits, as " (a, b)".
func (q *Quotation) deniedActions() string {
	var names []string
	for _, l := range q.Lines {
		if l.Denied.IsPositive() && !slices.Contains(names, l.Action) {
			names = append(names, l.Action)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// anchorNotes flag lines whose price per action is not below their value
// or not above their cost (value > price > cost), when credits have a price.
func (q *Quotation) anchorNotes(t QuoteTerms) []string {
	if !t.PricePerCredit.IsPositive() {
		return nil
	}
	var out []string
	for i, l := range q.Lines {
		if l.ValuePerAction.Valid && !l.ValuePerAction.Decimal.GreaterThan(l.PricePerAction) {
			out = append(out, fmt.Sprintf("usage[%d] %s: price per action %s is not below its value %s", i, l.Action, q.money(l.PricePerAction), q.money(l.ValuePerAction.Decimal)))
		}
		if l.CostPerAction.Valid && !l.PricePerAction.GreaterThan(l.CostPerAction.Decimal) {
			out = append(out, fmt.Sprintf("usage[%d] %s: price per action %s is not above its cost %s", i, l.Action, q.money(l.PricePerAction), q.money(l.CostPerAction.Decimal)))
		}
	}
	return out
}
