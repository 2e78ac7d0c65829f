package engine_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

// Add-ons attached and removed mid-period: a 30-day period, 10 days left
// (f = 0.3333333333); boost is 300 ON_DEMAND credits for 30 a period.
func TestAddOnProration(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end, at := start.AddDate(0, 0, 30), start.AddDate(0, 0, 20)
	boost := engine.AddOnTerms{ID: 4, Name: "boost", Credits: d("300"), Fee: d("30"), Currency: "USD", CreditType: credit.CreditOnDemand}
	charge := 77
	grant := func(remaining string) []engine.Grant {
		return []engine.Grant{{ID: 8, CreditType: credit.CreditOnDemand, Amount: d("300"), Remaining: d(remaining), ExpiresAt: &end}}
	}
	req := func(gs []engine.Grant, ch *int) engine.AddOnRequest {
		return engine.AddOnRequest{Org: 1, Pool: 2, SubscriptionID: 3, AddOn: boost, PeriodStart: start, PeriodEnd: end, Now: at, Grants: gs, Charge: ch}
	}
	t.Run("attach", func(t *testing.T) {
		// 300 x f = 99.99999999 -> 100; 30 x f = 9.999999999 -> 10.
		a, err := engine.AttachAddOn(req(nil, nil))
		if err != nil || !a.Credits.Equal(d("100")) || !a.Fee.Equal(d("10")) || len(a.Open) != 1 || len(a.Charges) != 1 {
			t.Fatalf("attach = %+v, %v", a, err)
		}
		if o, c := a.Open[0], a.Charges[0]; !o.ExpiresAt.Equal(end) || o.CreditType != credit.CreditOnDemand || c.Kind != "ADD_ON" ||
			*c.AddOn != 4 || *c.Opening != 0 || !c.PeriodStart.Equal(start) {
			t.Fatalf("attach posts %+v and %+v", o, c)
		}
	})
	for _, c := range []struct {
		name         string
		remaining    string
		charge       *int
		credits, fee string
	}{
		{name: "remove, all unused", remaining: "300", charge: &charge, credits: "-100", fee: "-10"},
		// 40 of the 100 to take back are unused: 40% of the 10 comes back.
		{name: "remove, mostly burned", remaining: "40", charge: &charge, credits: "-40", fee: "-4"},
		{name: "remove, all burned: nothing back", remaining: "0", charge: &charge, credits: "0", fee: "0"},
		{name: "remove, never billed this period", remaining: "300", credits: "0", fee: "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := engine.DetachAddOn(req(grant(c.remaining), c.charge))
			if err != nil || !r.Credits.Equal(d(c.credits)) || !r.Fee.Equal(d(c.fee)) {
				t.Fatalf("remove = credits %s fee %s (%v), want %s and %s", r.Credits, r.Fee, err, c.credits, c.fee)
			}
			if r.Fee.IsNegative() && (len(r.Charges) != 1 || *r.Charges[0].RefundOf != charge) {
				t.Fatalf("the money back does not refund the period's charge: %+v", r.Charges)
			}
		})
	}
	if _, err := engine.AttachAddOn(engine.AddOnRequest{AddOn: boost, PeriodStart: start, PeriodEnd: end, Now: end}); err == nil {
		t.Fatal("an attachment outside the period was decided")
	}
}
