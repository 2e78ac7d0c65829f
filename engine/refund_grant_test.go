package engine_test

import (
	"context"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

// RefundGrant's answers: form, factor, caps and refusals, as a table.
func TestRefundGrant(t *testing.T) {
	policy := func(expr string) *engine.Rule {
		p, err := rules.Compile(rules.KindRefund, expr)
		if err != nil {
			t.Fatal(err)
		}
		return &engine.Rule{ID: 1, Name: "r", Kind: credit.PolicyRefund, Version: 1, Program: p}
	}
	onDemand := engine.Grant{ID: 5, CreditType: credit.CreditOnDemand, Amount: d("100"), Remaining: d("40"), UnitPrice: d("0.02"), EffectiveAt: now}
	paid := &engine.PaidCharge{ID: 9, Kind: "ON_DEMAND", Amount: d("2"), Refunded: d("0"), Currency: "USD"}
	operator := engine.RefundAsk{Role: credit.RoleOperator, Reason: "x"}
	for _, c := range []struct {
		name      string
		grant     engine.Grant
		paid      *engine.PaidCharge
		amount    string
		service   bool
		rule      string
		money     string // the negative charge's amount; "" none
		serviceCr string // the SERVICE grant's credits; "" none
		code      credit.Code
	}{
		{name: "money at face value", grant: onDemand, paid: paid, rule: `{"form": "MONEY"}`, money: "-0.8"},
		{name: "money at a factor", grant: onDemand, paid: paid, amount: "10", rule: `{"form": "MONEY", "factor": decimal("0.5")}`, money: "-0.1"},
		{name: "capped at what is left of the charge", grant: onDemand, paid: &engine.PaidCharge{ID: 9, Kind: "ON_DEMAND", Amount: d("2"), Refunded: d("1.5")}, rule: `{"form": "MONEY"}`, money: "-0.5"},
		{name: "charge refunded in full", grant: onDemand, paid: &engine.PaidCharge{ID: 9, Amount: d("2"), Refunded: d("2")}, rule: `{"form": "MONEY"}`, code: credit.CodeRefundExceeded},
		{name: "policy answers SERVICE", grant: onDemand, paid: paid, rule: `{"form": "SERVICE"}`, serviceCr: "40"},
		{name: "policy keeps credits", grant: onDemand, paid: paid, rule: `{"form": "CREDITS"}`, code: credit.CodeRefundForbidden},
		{name: "policy caps the amount", grant: onDemand, paid: paid, amount: "20", rule: `{"amount": decimal(10), "form": "MONEY"}`, code: credit.CodeRefundExceeded},
		{name: "no policy, money", grant: onDemand, paid: paid, code: credit.CodeRefundForbidden},
		{name: "no policy, SERVICE by an OPERATOR", grant: onDemand, paid: paid, service: true, serviceCr: "40"},
		{name: "no paying charge", grant: onDemand, rule: `{"form": "MONEY"}`, code: credit.CodeNotRefundable},
		{name: "more than unused", grant: onDemand, paid: paid, amount: "41", rule: `refundable`, code: credit.CodeRefundExceeded},
		{name: "promotional", grant: engine.Grant{ID: 6, CreditType: credit.CreditPromotional, Remaining: d("5")}, rule: `refundable`, code: credit.CodeNotRefundable},
		{name: "expired", grant: engine.Grant{ID: 7, CreditType: credit.CreditOnDemand, Remaining: d("5"), ExpiresAt: at(-1)}, paid: paid, rule: `refundable`, code: credit.CodeNotRefundable},
		{name: "nothing unused (all held or burned)", grant: engine.Grant{ID: 8, CreditType: credit.CreditOnDemand, Remaining: d("0")}, paid: paid, rule: `refundable`, code: credit.CodeNotRefundable},
		{name: "a factor above 1", grant: onDemand, paid: paid, rule: `{"form": "MONEY", "factor": decimal(2)}`, code: credit.CodeRuleRuntime},
	} {
		req := engine.GrantRefundRequest{Org: 1, Pool: 2, Grant: c.grant, Paid: c.paid, AsService: c.service, Ask: operator}
		if c.amount != "" {
			a := d(c.amount)
			req.Amount = &a
		}
		if c.rule != "" {
			req.Rule = policy(c.rule)
		}
		p, err := engine.RefundGrant(context.Background(), req, now)
		if c.code != "" {
			if credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
			continue
		}
		if err != nil || len(p.Moves) != 1 || p.Moves[0].Kind != credit.EntryRefund || !p.Moves[0].Amount.IsNegative() {
			t.Errorf("%s: %+v, %v; want one negative REFUND move", c.name, p, err)
			continue
		}
		switch {
		case c.money != "" && (len(p.Charges) != 1 || !p.Charges[0].Amount.Equal(d(c.money)) || *p.Charges[0].RefundOf != 9 || len(p.Open) != 0):
			t.Errorf("%s: charges %+v, want one of %s refunding charge 9", c.name, p.Charges, c.money)
		case c.serviceCr != "" && (len(p.Open) != 1 || p.Open[0].CreditType != credit.CreditService || !p.Open[0].Amount.Equal(d(c.serviceCr)) || p.Open[0].ExpiresAt != nil || len(p.Charges) != 0):
			t.Errorf("%s: openings %+v, charges %+v; want one SERVICE grant of %s, no money", c.name, p.Open, p.Charges, c.serviceCr)
		}
	}
}
