package engine_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

// Immediate plan changes: a 30-day period with 10 days left, f = 1/3
// (0.3333333333). Team: 300 included, fee 30; Pro: 600 included, fee 60.
func TestChangePlanNow(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end, at := start.AddDate(0, 0, 30), start.AddDate(0, 0, 20)
	team := engine.ChangePlanTerms{ID: 1, Name: "team", Period: credit.PeriodMonth, Currency: "USD", IncludedCredits: d("300"), PricePerCredit: d("0.1"), PlatformFee: d("30"), ChangeCredits: credit.ChangeProrate}
	pro := engine.ChangePlanTerms{ID: 2, Name: "pro", Period: credit.PeriodMonth, Currency: "USD", IncludedCredits: d("600"), PricePerCredit: d("0.1"), PlatformFee: d("60"), ChangeCredits: credit.ChangeProrate}
	with := func(p engine.ChangePlanTerms, f func(*engine.ChangePlanTerms)) engine.ChangePlanTerms {
		f(&p)
		return p
	}
	included := func(remaining string) []engine.Grant {
		if remaining == "" {
			remaining = "0"
		}
		return []engine.Grant{{ID: 7, CreditType: credit.CreditSubscription, Amount: d("600"), Remaining: d(remaining), EffectiveAt: start, ExpiresAt: &end}}
	}
	for _, c := range []struct {
		name          string
		from, to      engine.ChangePlanTerms
		remaining     string
		kind          string
		credits, fee  string
		opened, taken string // the new grant's credits, what ADJUSTMENT took ("" none)
		code          credit.Code
	}{
		// +300 x 1/3 = 99.99999999 -> 100 (4 places); fee +30 x 1/3 -> 10.
		{name: "upgrade", from: team, to: pro, remaining: "250", kind: "UPGRADE", credits: "100", fee: "10", opened: "100"},
		// -300 x 1/3 = 100 to take back, only 50 unused; fee -10.
		// -300 x 1/3 = 100 to take back, only 50 unused: half the fee difference back, -5.
		{name: "downgrade, little unused", from: pro, to: team, remaining: "50", kind: "DOWNGRADE", credits: "-50", fee: "-5", taken: "-50"},
		{name: "downgrade, enough unused", from: pro, to: team, remaining: "400", kind: "DOWNGRADE", credits: "-100", fee: "-10", taken: "-100"},
		{name: "downgrade, carry", from: with(pro, func(p *engine.ChangePlanTerms) { p.ChangeCredits = credit.ChangeCarry }), to: team, remaining: "400", kind: "DOWNGRADE", credits: "0", fee: "-10"},
		// The 120 unused leave, 600 x 1/3 = 200 arrive: +80.
		{name: "upgrade, forfeit", from: with(team, func(p *engine.ChangePlanTerms) { p.ChangeCredits = credit.ChangeForfeit }), to: pro, remaining: "120", kind: "UPGRADE", credits: "80", fee: "10", opened: "200", taken: "-120"},
		{name: "same plan", from: team, to: team, code: credit.CodeSamePlan},
		{name: "another currency", from: team, to: with(pro, func(p *engine.ChangePlanTerms) { p.Currency = "EUR" }), code: credit.CodeCurrencyMismatch},
		{name: "another period", from: team, to: with(pro, func(p *engine.ChangePlanTerms) { p.Period = credit.PeriodYear }), code: credit.CodeCurrencyMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := engine.ChangePlanNow(engine.PlanChangeRequest{Org: 1, Pool: 2, SubscriptionID: 3, From: c.from, To: c.to,
				PeriodStart: start, PeriodEnd: end, Now: at, Included: included(c.remaining)})
			if c.code != "" || err != nil {
				if credit.CodeOf(err) != c.code {
					t.Fatalf("err = %v, want %s", err, c.code)
				}
				return
			}
			if got.Kind != c.kind || !got.Credits.Equal(d(c.credits)) || !got.Fee.Equal(d(c.fee)) || got.Fraction.String() != "0.3333333333" {
				t.Fatalf("change = %s %s credits, fee %s, f %s; want %s %s, %s", got.Kind, got.Credits, got.Fee, got.Fraction, c.kind, c.credits, c.fee)
			}
			if (c.opened == "") != (len(got.Open) == 0) || c.opened != "" && (!got.Open[0].Amount.Equal(d(c.opened)) || !got.Open[0].ExpiresAt.Equal(end)) {
				t.Fatalf("opened %+v, want %q ending with the period", got.Open, c.opened)
			}
			if (c.taken == "") != (len(got.Moves) == 0) || c.taken != "" && (got.Moves[0].Kind != credit.EntryAdjustment || !got.Moves[0].Amount.Equal(d(c.taken))) {
				t.Fatalf("moves %+v, want ADJUSTMENT %q", got.Moves, c.taken)
			}
			if len(got.Charges) != 1 || got.Charges[0].Kind != "PRORATION" || !got.Charges[0].Amount.Equal(d(c.fee)) {
				t.Fatalf("charges %+v, want PRORATION %s", got.Charges, c.fee)
			}
		})
	}
}
