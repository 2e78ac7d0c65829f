package engine_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

// ConfirmPayment and FailPayment: what each writes from each payment
// state, as a table.
func TestPaymentDecisions(t *testing.T) {
	past := now.Add(-time.Hour)
	pending := engine.Grant{ID: 5, CreditType: credit.CreditOnDemand, Amount: d("100"), Remaining: d("0"), UnitPrice: d("0.02"),
		EffectiveAt: now, Payment: credit.PaymentPending}
	with := func(g engine.Grant, f func(*engine.Grant)) engine.Grant { f(&g); return g }
	billed := &engine.PaidCharge{ID: 9, Kind: "ON_DEMAND", Amount: d("2"), Refunded: d("0"), Currency: "USD"}
	for _, c := range []struct {
		name    string
		confirm bool // ConfirmPayment, else FailPayment
		grant   engine.Grant
		billed  *engine.PaidCharge
		entry   string // the opening entry's amount; "" none
		to      credit.Payment
		money   string // the reversing charge; "" none
		code    credit.Code
	}{
		{name: "confirm opens the grant", confirm: true, grant: pending, entry: "100", to: credit.PaymentPaid},
		{name: "confirm a paid grant: nothing", confirm: true, grant: with(pending, func(g *engine.Grant) { g.Payment = credit.PaymentPaid })},
		{name: "confirm a grant from before payments: nothing", confirm: true, grant: with(pending, func(g *engine.Grant) { g.Payment = "" })},
		{name: "confirm a failed grant", confirm: true, grant: with(pending, func(g *engine.Grant) { g.Payment = credit.PaymentFailed }), code: credit.CodeConflict},
		{name: "confirm after expiry", confirm: true, grant: with(pending, func(g *engine.Grant) { g.ExpiresAt = &past }), code: credit.CodeConflict},
		{name: "fail reverses the charge", grant: pending, billed: billed, to: credit.PaymentFailed, money: "-2"},
		{name: "fail reverses what is left of it", grant: pending, billed: &engine.PaidCharge{ID: 9, Kind: "ON_DEMAND", Amount: d("2"), Refunded: d("0.5")}, to: credit.PaymentFailed, money: "-1.5"},
		{name: "fail an unbilled grant", grant: pending, to: credit.PaymentFailed},
		{name: "fail an expired one", grant: with(pending, func(g *engine.Grant) { g.ExpiresAt = &past }), billed: billed, to: credit.PaymentFailed, money: "-2"},
		{name: "fail a failed grant: nothing", grant: with(pending, func(g *engine.Grant) { g.Payment = credit.PaymentFailed }), billed: billed},
		{name: "fail a paid grant", grant: with(pending, func(g *engine.Grant) { g.Payment = credit.PaymentPaid }), billed: billed, code: credit.CodeConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p engine.Posting
			var err error
			if c.confirm {
				p, err = engine.ConfirmPayment(1, 2, c.grant, now)
			} else {
				p, err = engine.FailPayment(1, c.grant, c.billed, "card declined")
			}
			if c.code != "" || err != nil {
				if credit.CodeOf(err) != c.code {
					t.Fatalf("err = %v, want %q", err, c.code)
				}
				return
			}
			if len(p.Open) != 0 {
				t.Fatalf("opens %v", p.Open)
			}
			if got := len(p.Moves); c.entry == "" && got != 0 || c.entry != "" && (got != 1 || p.Moves[0].Kind != credit.EntryGrant || !p.Moves[0].Amount.Equal(d(c.entry))) {
				t.Fatalf("moves %+v, want opening entry %q", p.Moves, c.entry)
			}
			if c.to == "" && len(p.Payments) != 0 || c.to != "" && (len(p.Payments) != 1 || p.Payments[0] != engine.PaymentChange{Grant: 5, To: c.to}) {
				t.Fatalf("payments %+v, want %q", p.Payments, c.to)
			}
			if got := len(p.Charges); c.money == "" && got != 0 || c.money != "" && (got != 1 || !p.Charges[0].Amount.Equal(d(c.money)) ||
				*p.Charges[0].RefundOf != 9 || *p.Charges[0].Grant != 5 || !p.Charges[0].Credits.Equal(d("-100"))) {
				t.Fatalf("charges %+v, want %q refundOf 9", p.Charges, c.money)
			}
		})
	}
}

// No credit movement touches a grant that is not paid for.
func TestUnpaidGrantsDoNotMove(t *testing.T) {
	for _, pay := range []credit.Payment{credit.PaymentPending, credit.PaymentFailed} {
		g := engine.Grant{ID: 5, CreditType: credit.CreditOnDemand, Amount: d("100"), Remaining: d("0"), EffectiveAt: now, Payment: pay}
		if _, err := engine.Void(1, 2, g, "x"); credit.CodeOf(err) != credit.CodeConflict {
			t.Errorf("void of a %s grant: %v, want CONFLICT", pay, err)
		}
		if _, err := engine.RefundGrant(t.Context(), engine.GrantRefundRequest{Org: 1, Pool: 2, Grant: g}, now); credit.CodeOf(err) != credit.CodeNotRefundable {
			t.Errorf("refund of a %s grant: %v, want NOT_REFUNDABLE", pay, err)
		}
		if g.Usable(now) {
			t.Errorf("a %s grant is usable", pay)
		}
	}
}
