package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// The fixture's clock starts on 2026-11-22 12:00 UTC: monthly periods run
// Nov 22 - Dec 22 (30 days), Dec 22 - Jan 22 (31 days), ...
const day = 24 * time.Hour

// subscribeWith creates the plan and subscribes the fixture's
// organisation to it (from now, unless in says otherwise).
func (f *fixture) subscribeWith(t *testing.T, p ledger.PlanInput, in ledger.SubscribeInput) (*ent.Plan, *ent.Subscription) {
	t.Helper()
	ctx := context.Background()
	pl, err := f.svc.CreatePlan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	in.OrganizationID, in.PlanID = f.org.ID, pl.ID
	if in.StartsAt.IsZero() {
		in.StartsAt = f.clock.now()
	}
	sub, err := f.svc.Subscribe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return pl, sub
}

func (f *fixture) closeAfter(t *testing.T, d time.Duration) {
	t.Helper()
	f.clock.add(d)
	if _, err := f.svc.RunPeriodClose(context.Background(), f.clock.now()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) entrySum(t *testing.T, kind credit.EntryKind) string {
	t.Helper()
	es, err := f.db.Client.LedgerEntry.Query().Where(ledgerentry.KindEQ(kind)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum := d("0")
	for _, e := range es {
		sum = sum.Add(e.Amount)
	}
	return sum.String()
}

func sumCharges(cs []*ent.Charge) string {
	sum := d("0")
	for _, c := range cs {
		sum = sum.Add(c.Amount)
	}
	return sum.String()
}

// What the 70 unused included credits do at a term end, by the plan's
// termEndCredits, under UNLIMITED rollover: 100 included, 30 used.
func TestTermEndUnusedCredits(t *testing.T) {
	for _, c := range []struct {
		name      string
		rule      credit.TermEndCredits
		term      int
		available string // after the close at Dec 22
		rolled    string // ROLLOVER_IN entries
		refunded  string // REFUND entries
		refund    string // TERM_REFUND charges
	}{
		{name: "ROLL: the rollover rules apply", rule: credit.TermEndRoll, term: 1, available: "170", rolled: "70", refunded: "0", refund: "0"},
		{name: "EXPIRE: nothing rolls at a term end", rule: credit.TermEndExpire, term: 1, available: "100", rolled: "0", refunded: "0", refund: "0"},
		// 70 x 0.02 = 1.4 back in money.
		{name: "REFUND: money back at the rate", rule: credit.TermEndRefund, term: 1, available: "100", rolled: "0", refunded: "-70", refund: "-1.4"},
		{name: "EXPIRE, mid-term: an ordinary period end rolls", rule: credit.TermEndExpire, term: 2, available: "170", rolled: "70", refunded: "0", refund: "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				f := setup(t, db)
				p := plan("term", credit.OverageHard, credit.RolloverUnlimited, nil)
				p.TermEndCredits = c.rule
				if c.rule == credit.TermEndRefund {
					p.TermEndRefundRate = dp("0.02")
				}
				f.subscribeWith(t, p, ledger.SubscribeInput{TermPeriods: ptr(c.term)})
				f.use(t, "u1", "30")
				f.closeAfter(t, 30*day)
				if got := f.available(t); !got.Equal(d(c.available)) {
					t.Errorf("available %s, want %s", got, c.available)
				}
				if got := f.entrySum(t, credit.EntryRolloverIn); got != c.rolled {
					t.Errorf("rolled %s, want %s", got, c.rolled)
				}
				if got := f.entrySum(t, credit.EntryRefund); got != c.refunded {
					t.Errorf("REFUND entries %s, want %s", got, c.refunded)
				}
				if got := sumCharges(f.charges(t, "TERM_REFUND")); got != c.refund {
					t.Errorf("TERM_REFUND %s, want %s", got, c.refund)
				}
				verify(t, f.svc)
			})
		})
	}
}

// A committed subscription billed less than its commitment over the term
// pays the difference at the term end: commitment 50 over 2 periods, fees
// 5 + 5 and 100 on-demand credits at 0.1 = 10 billed, so a TRUE_UP of 30
// dated at the term's start. The next term (it renews) billed 5 + 5 and
// is trued up by 40.
func TestCommitmentTrueUp(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("committed", credit.OverageHard, credit.RolloverNone, nil)
		p.OnDemandPrice = dp("0.1")
		start := f.clock.now()
		_, sub := f.subscribeWith(t, p, ledger.SubscribeInput{TermPeriods: ptr(2), Commitment: dp("50")})
		if _, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("100")}); err != nil {
			t.Fatal(err)
		}
		f.closeAfter(t, 30*day) // period 1: not a term end
		if ups := f.charges(t, "TRUE_UP"); len(ups) != 0 {
			t.Fatalf("a true-up mid-term: %v", ups)
		}
		f.closeAfter(t, 31*day) // period 2: the first term ends
		ups := f.charges(t, "TRUE_UP")
		if len(ups) != 1 || !ups[0].Amount.Equal(d("30")) || !ups[0].PeriodStart.Equal(start) || *ups[0].SubscriptionID != sub.ID {
			t.Fatalf("true-ups %v, want one of 30 dated %s", ups, start)
		}
		f.closeAfter(t, 31*day)
		f.closeAfter(t, 28*day) // Feb 22 - Mar 22; period 4 ends the second term
		if ups := f.charges(t, "TRUE_UP"); len(ups) != 2 || !ups[1].Amount.Equal(d("40")) {
			t.Fatalf("true-ups %v, want 30 then 40", ups)
		}
		verify(t, f.svc)
	})
}

// A renewal onto another plan at the term end, a cancellation at the term
// end, and what TERM_END refuses.
func TestRenewalAndTermEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team := plan("team", credit.OverageHard, credit.RolloverNone, nil)
		pro := plan("pro", credit.OverageHard, credit.RolloverNone, nil)
		pro.IncludedCredits, pro.PlatformFee = d("600"), d("60")
		_, sub := f.subscribeWith(t, team, ledger.SubscribeInput{TermPeriods: ptr(2)})
		proPlan, err := f.svc.CreatePlan(ctx, pro)
		if err != nil {
			t.Fatal(err)
		}
		termEnd := f.clock.now().AddDate(0, 2, 0) // Jan 22
		pv, err := f.svc.PreviewPlanChange(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: proPlan.ID, At: ledger.AtTermEnd})
		if err != nil || !pv.EffectiveAt.Equal(termEnd) || pv.Kind != "UPGRADE" || len(pv.Open) != 0 {
			t.Fatalf("preview %+v, %v; want an UPGRADE at %s posting nothing now", pv, err, termEnd)
		}
		ch, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: proPlan.ID, At: ledger.AtTermEnd})
		if err != nil || ch.Status != "SCHEDULED" || !ch.EffectiveAt.Equal(termEnd) {
			t.Fatalf("renewal onto pro = %+v, %v", ch, err)
		}
		f.closeAfter(t, 30*day) // Dec 22: an ordinary period end, still team
		if got := f.available(t); !got.Equal(d("100")) {
			t.Fatalf("available %s after period 1, want team's 100", got)
		}
		f.closeAfter(t, 31*day) // Jan 22: the term ends, the renewal is onto pro
		cur, err := f.svc.CurrentSubscription(ctx, f.org.ID)
		if err != nil || cur.PlanID != proPlan.ID || cur.RenewalPlanID != nil {
			t.Fatalf("after the term end %+v, %v; want pro, no renewal pending", cur, err)
		}
		if got := f.available(t); !got.Equal(d("600")) {
			t.Fatalf("available %s in the renewal, want pro's 600", got)
		}
		hist, _ := f.svc.SubscriptionChanges(ctx, sub)
		if len(hist) != 1 || hist[0].Status != "APPLIED" || hist[0].At != ledger.AtTermEnd {
			t.Fatalf("history %v, want the renewal APPLIED", hist)
		}
		// Cancel at the term end: it ends on Mar 22, two periods on.
		c, err := f.svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: sub.ID, At: ledger.AtTermEnd})
		if want := termEnd.AddDate(0, 2, 0); err != nil || !c.EffectiveAt.Equal(want) {
			t.Fatalf("cancel at the term end = %+v, %v; want effective %s", c, err, want)
		}
		f.closeAfter(t, 31*day)
		f.closeAfter(t, 28*day)
		if got := f.available(t); !got.IsZero() {
			t.Fatalf("available %s after the subscription ended, want 0", got)
		}
		if fees := f.charges(t, "PLATFORM_FEE"); sumCharges(fees) != "130" { // 5 + 5 + 60 + 60
			t.Fatalf("fees %s, want 130", sumCharges(fees))
		}
		verify(t, f.svc)
	})
}

// A trial: 14 daily periods of a free plan with seed credits, ending on
// a date, then the paid monthly plan from that date (the buyer converts
// by subscribing from the trial's end, which the overlap check allows).
func TestTrialEndsThenConverts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		trial := plan("trial", credit.OverageHard, credit.RolloverNone, nil)
		trial.Period, trial.IncludedCredits, trial.PlatformFee, trial.SeedCredits = credit.PeriodDay, d("10"), d("0"), dp("50")
		_, sub := f.subscribeWith(t, trial, ledger.SubscribeInput{TermPeriods: ptr(14), AutoRenew: ptr(false)})
		ends := f.clock.now().AddDate(0, 0, 14)
		if sub.EndsAt == nil || !sub.EndsAt.Equal(ends) {
			t.Fatalf("trial ends %v, want %s", sub.EndsAt, ends)
		}
		if got := f.available(t); !got.Equal(d("60")) { // 50 seed + 10 of day 1
			t.Fatalf("available %s on day 1, want 60", got)
		}
		paid, err := f.svc.CreatePlan(ctx, plan("paid", credit.OverageHard, credit.RolloverNone, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: paid.ID, StartsAt: ends}); err != nil {
			t.Fatalf("converting: %v", err)
		}
		f.closeAfter(t, 14*day)
		f.closeAfter(t, 0) // the ended trial closes first, then the paid plan opens
		cur, err := f.svc.CurrentSubscription(ctx, f.org.ID)
		if err != nil || cur == nil || cur.PlanID != paid.ID {
			t.Fatalf("after the trial: %+v, %v; want the paid plan", cur, err)
		}
		if got := f.available(t); !got.Equal(d("150")) { // the seed credits stay; 100 included
			t.Fatalf("available %s after the conversion, want 150", got)
		}
		if fees := f.charges(t, "PLATFORM_FEE"); sumCharges(fees) != "5" {
			t.Fatalf("fees %s, want the paid plan's 5 only", sumCharges(fees))
		}
		verify(t, f.svc)
	})
}

// Graduated on-demand and overage tiers, and a segment's prices.
func TestVolumeTiersAndSegmentPrices(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db) // segment "smb"
		p := plan("tiered", credit.OverageSoft, credit.RolloverNone, nil)
		p.IncludedCredits = d("10")
		p.OnDemandTiers = []credit.PriceTier{{From: d("0"), UpTo: dp("100"), Price: d("1")}, {From: d("100"), Price: d("0.5")}}
		p.OverageTiers = []credit.PriceTier{{From: d("0"), UpTo: dp("10"), Price: d("1")}, {From: d("10"), Price: d("2")}}
		p.OveragePrice = nil
		p.SegmentPrices = []credit.SegmentPrice{{Segment: "smb", PricePerCredit: dp("0.05")}, {Segment: "enterprise", PricePerCredit: dp("0.2")}}
		f.subscribeWith(t, p, ledger.SubscribeInput{})
		buy := func(credits string) *ent.Charge {
			t.Helper()
			g, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d(credits)})
			if err != nil {
				t.Fatal(err)
			}
			cs := f.charges(t, "ON_DEMAND")
			if c := cs[len(cs)-1]; *c.GrantID != g.ID {
				t.Fatalf("charge %v is not the grant's %d", c, g.ID)
			}
			return cs[len(cs)-1]
		}
		if c := buy("80"); !c.Amount.Equal(d("80")) {
			t.Fatalf("80 credits in the first tier cost %s, want 80", c.Amount)
		}
		if c := buy("40"); !c.Amount.Equal(d("30")) { // 20 x 1 + 20 x 0.5
			t.Fatalf("40 credits across the boundary cost %s, want 30", c.Amount)
		}
		// Included credits are valued at the smb segment's 0.05 per credit.
		gs, err := f.svc.Grants(ctx, f.pool, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.CreditType == credit.CreditSubscription && !g.UnitPrice.Equal(d("0.05")) {
				t.Fatalf("included credits at %s, want the segment's 0.05", g.UnitPrice)
			}
		}
		// 130 credits: burn 138 leaves 8 of overage at 1; 5 more cross 10: 2 x 1 + 3 x 2.
		f.use(t, "a", "138")
		f.use(t, "b", "5")
		ov := f.charges(t, "OVERAGE")
		if len(ov) != 2 || !ov[0].Amount.Equal(d("8")) || !ov[1].Amount.Equal(d("8")) {
			t.Fatalf("overage charges %v, want 8 (8 x 1) then 8 (2 x 1 + 3 x 2)", ov)
		}
		verify(t, f.svc)
	})
}

// Bad packaging input gets its code and changes nothing.
func TestDialsBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		bad := func(mut func(*ledger.PlanInput)) ledger.PlanInput {
			p := plan("bad", credit.OverageSoft, credit.RolloverNone, nil)
			mut(&p)
			return p
		}
		for _, c := range []struct {
			name string
			in   ledger.PlanInput
			code credit.Code
		}{
			{"overlapping tiers", bad(func(p *ledger.PlanInput) {
				p.OnDemandTiers = []credit.PriceTier{{From: d("0"), UpTo: dp("10"), Price: d("1")}, {From: d("5"), Price: d("1")}}
			}), credit.CodeTierOverlap},
			{"a gap between tiers", bad(func(p *ledger.PlanInput) {
				p.OverageTiers = []credit.PriceTier{{From: d("0"), UpTo: dp("10"), Price: d("1")}, {From: d("20"), Price: d("1")}}
			}), credit.CodeTierGap},
			{"a refund without a rate", bad(func(p *ledger.PlanInput) { p.TermEndCredits = credit.TermEndRefund }), credit.CodeValidation},
			{"a rate without a refund", bad(func(p *ledger.PlanInput) { p.TermEndRefundRate = dp("1") }), credit.CodeValidation},
			{"a flat segment price under tiers", bad(func(p *ledger.PlanInput) {
				p.OverageTiers = []credit.PriceTier{{From: d("0"), Price: d("1")}}
				p.SegmentPrices = []credit.SegmentPrice{{Segment: "a", OveragePrice: dp("2")}}
			}), credit.CodeValidation},
			{"a segment priced twice", bad(func(p *ledger.PlanInput) {
				p.SegmentPrices = []credit.SegmentPrice{{Segment: "a", OnDemandPrice: dp("1")}, {Segment: "a", OnDemandPrice: dp("2")}}
			}), credit.CodeValidation},
		} {
			if _, err := f.svc.CreatePlan(ctx, c.in); credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		if ps, _ := f.svc.Plans(ctx); len(ps) != 0 {
			t.Fatalf("bad plans were created: %v", ps)
		}
		_, sub := f.subscribeWith(t, plan("open", credit.OverageHard, credit.RolloverNone, nil), ledger.SubscribeInput{})
		if _, err := f.svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: sub.ID, At: ledger.AtTermEnd}); credit.CodeOf(err) != credit.CodeNoTerm {
			t.Fatalf("cancel at the term end without a term: %v, want NO_TERM", err)
		}
		if _, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: sub.PlanID, At: ledger.AtTermEnd}); credit.CodeOf(err) != credit.CodeNoTerm {
			t.Fatalf("change at the term end without a term: %v, want NO_TERM", err)
		}
	})
}

// An add-on attached mid-period and removed mid-period, prorated both
// ways; add-ons of another organisation's subscription are not found.
func TestAddOnsProrate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		_, sub := f.subscribeWith(t, plan("base", credit.OverageHard, credit.RolloverNone, nil), ledger.SubscribeInput{})
		boost, err := f.svc.CreateAddOn(ctx, ledger.AddOnInput{Name: "boost", Credits: d("300"), Fee: d("30")})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.add(20 * day) // 10 of the period's 30 days left: f = 0.3333333333
		sa, err := f.svc.AttachAddOn(ctx, sub.ID, boost.ID)
		if err != nil {
			t.Fatal(err)
		}
		// 300 x f = 99.99999999 -> 100 credits; 30 x f = 9.999999999 -> 10.
		if got := f.available(t); !got.Equal(d("200")) {
			t.Fatalf("available %s after attaching, want 100 included + 100", got)
		}
		if _, err := f.svc.AttachAddOn(ctx, sub.ID, boost.ID); credit.CodeOf(err) != credit.CodeAddOnAttached {
			t.Fatalf("attaching twice: %v, want ADD_ON_ATTACHED", err)
		}
		f.closeAfter(t, 10*day) // Dec 22: the add-on in full
		if got := f.available(t); !got.Equal(d("400")) {
			t.Fatalf("available %s in the next period, want 100 + 300", got)
		}
		f.clock.add(15*day + 12*time.Hour) // half of the 31-day period left: f = 0.5
		if _, err := f.svc.RemoveAddOn(ctx, sa.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.available(t); !got.Equal(d("250")) { // 150 taken back
			t.Fatalf("available %s after removing, want 250", got)
		}
		if _, err := f.svc.RemoveAddOn(ctx, sa.ID); credit.CodeOf(err) != credit.CodeAddOnRemoved {
			t.Fatalf("removing twice: %v, want ADD_ON_REMOVED", err)
		}
		fees := f.charges(t, "ADD_ON")
		if len(fees) != 3 || !fees[0].Amount.Equal(d("10")) || !fees[1].Amount.Equal(d("30")) || !fees[2].Amount.Equal(d("-15")) ||
			fees[2].RefundOf == nil || *fees[2].RefundOf != fees[1].ID {
			t.Fatalf("ADD_ON charges %v, want 10, 30 and -15 refunding the 30", fees)
		}
		f.closeAfter(t, 15*day+12*time.Hour) // Jan 22: no add-on any more
		if got := f.available(t); !got.Equal(d("100")) {
			t.Fatalf("available %s after the add-on left, want 100", got)
		}
		// Add-on credits bought back in money, then the add-on removed: the
		// money back never passes the add-on's charge (the verifier checks).
		f.publish(t, "money", credit.PolicyRefund, `{"form": "MONEY"}`)
		sa2, err := f.svc.AttachAddOn(ctx, sub.ID, boost.ID) // f = 1: the period just began
		if err != nil {
			t.Fatal(err)
		}
		chs := f.charges(t, "ADD_ON")
		if _, err := f.svc.Refund(ctx, ledger.RefundInput{GrantID: chs[len(chs)-1].GrantID, Amount: dp("100"), Reason: "too many"}); err != nil {
			t.Fatalf("money refund of add-on credits: %v", err)
		}
		f.clock.add(15*day + 12*time.Hour)
		if _, err := f.svc.RemoveAddOn(ctx, sa2.ID); err != nil {
			t.Fatal(err)
		}
		// 300 at 0.1: 100 refunded for 10; half the period left takes back
		// 150 of the 200 unused and 15 of the fee: 25 back of the 30 in all.
		chs = f.charges(t, "ADD_ON")
		if got := sumCharges(chs[len(chs)-3:]); got != "5" {
			t.Fatalf("the second add-on's charges sum to %s (%v), want 30 - 10 - 15 = 5", got, chs[len(chs)-3:])
		}
		other, err := f.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		stranger := auth.With(ctx, &auth.Principal{KeyID: 9, Name: "stranger", Role: credit.RoleOrgAdmin, OrgID: &other.ID})
		if _, err := f.svc.AttachAddOn(stranger, sub.ID, boost.ID); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("an add-on for another organisation's subscription: %v, want NOT_FOUND", err)
		}
		if _, err := f.svc.RemoveAddOn(stranger, sa.ID); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("removing another organisation's add-on: %v, want NOT_FOUND", err)
		}
		verify(t, f.svc)
	})
}

// Concurrent purchases into several pools of one subscription never price
// two from the same tier position: 6 x 40 credits under 0-100 at 1, 100+
// at 0.5 cost 100 + 140 x 0.5 = 170 in all, whatever the interleaving.
func TestTieredPurchasesRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("tiered", credit.OverageHard, credit.RolloverNone, nil)
		p.OnDemandTiers = []credit.PriceTier{{From: d("0"), UpTo: dp("100"), Price: d("1")}, {From: d("100"), Price: d("0.5")}}
		f.subscribeWith(t, p, ledger.SubscribeInput{})
		pools := []*ent.Pool{f.pool}
		for _, name := range []string{"a", "b"} {
			pl, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolTeam, Name: name, ParentID: &f.pool.ID})
			if err != nil {
				t.Fatal(err)
			}
			pools = append(pools, pl)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func(pl *ent.Pool) {
				defer wg.Done()
				_, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: pl.ID, Credits: d("40")})
				errs <- err
			}(pools[i%len(pools)])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := sumCharges(f.charges(t, "ON_DEMAND")); got != "170" {
			t.Fatalf("6 x 40 credits cost %s, want 170", got)
		}
		verify(t, f.svc)
	})
}

// Cancellations with runs in flight: a run holds what it expects; the
// subscription is cancelled (NOW, or at the period end and the period
// closes); the run settles from its hold, and what the hold and the balance
// cannot cover is recorded UNCOVERED (an ended subscription bills no
// overage), never free.
func TestCancelWithRunsInFlight(t *testing.T) {
	for _, at := range []string{ledger.AtNow, ledger.AtPeriodEnd} {
		t.Run(at, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				f := setup(t, db)
				_, sub := f.subscribeWith(t, plan("soft", credit.OverageSoft, credit.RolloverNone, nil), ledger.SubscribeInput{})
				f.use(t, "u1", "90") // 10 of the 100 included left
				start := f.usage("run-start", "agent.run")
				start.RunID, start.Status, start.Quantity = "run-1", credit.StatusStarted, dp("8")
				if r := f.record(t, start); r.Decision != credit.DecisionAllowed || !r.Reserved.Equal(d("8")) {
					t.Fatalf("run start: %s, reserved %s; want 8 held", r.Decision, r.Reserved)
				}
				if _, err := f.svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: sub.ID, At: at}); err != nil {
					t.Fatal(err)
				}
				if at == ledger.AtPeriodEnd {
					f.closeAfter(t, 30*day) // the 2 unheld credits expire; the 8 held stay for the run
				}
				end := f.usage("run-end", "agent.run")
				end.RunID, end.Status, end.Quantity = "run-1", credit.StatusSucceeded, dp("13")
				r := f.record(t, end)
				left, uncovered := "0", "5" // NOW: the hold's 8, the 2 left, 3 uncovered
				if at == ledger.AtNow {
					uncovered = "3"
				}
				if r.Decision != credit.DecisionAllowed || !r.Credits.Equal(d("13")) || !r.Uncovered.Equal(d(uncovered)) || !r.Overage.IsZero() {
					t.Fatalf("run end: %s %s credits, overage %s, uncovered %s; want ALLOWED 13, no overage, %s uncovered", r.Decision, r.Credits, r.Overage, r.Uncovered, uncovered)
				}
				if got := f.available(t); !got.Equal(d(left)) {
					t.Fatalf("available %s, want %s", got, left)
				}
				if ov := f.charges(t, "OVERAGE"); len(ov) != 0 {
					t.Fatalf("an ended subscription billed overage: %v", ov)
				}
				verify(t, f.svc)
			})
		})
	}
}
