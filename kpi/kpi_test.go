package kpi_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/kpi"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func d(s string) decimal.Decimal   { return decimal.RequireFromString(s) }
func dp(s string) *decimal.Decimal { v := d(s); return &v }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// The dataset, 14 months from 2025-01-01 (agent.run: 1 credit, value 0.05,
// cost 0.002 per action; monthly plans, closes on the 1st, usage on the 10th):
//
//   - A (smb): team (100 included at 0.01, fee 5) from Jan, upgraded to pro
//     (300 at 0.01, fee 15) at the end of June; burns 60 a month.
//   - B (enterprise): pro from Jan with a 12-period term and a commitment of
//     240; burns 200 a month; buys 50 on-demand credits at 0.02 in March
//     (never drawn: they do not expire); 10 credits of April's burn are
//     refunded; cancelled in October at the period end (ends Nov 1, trued up).
//   - C (smb): no plan; 100 promotional credits (free) in January, burns 20
//     in February.
//   - D (smb): a EUR plan, burns 10 a month: never in a USD report.
func dataset(t *testing.T, db *store.DB) (*ledger.Service, map[string]*ent.Organization, *clock) {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	svc := ledger.New(db, ledger.WithClock(c.now))
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("1"), ValuePerAction: dp("0.05"), CostPerAction: dp("0.002")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		t.Fatal(err)
	}
	mkPlan := func(name, included, fee, currency string) *ent.Plan {
		p, err := svc.CreatePlan(ctx, ledger.PlanInput{Name: name, Period: credit.PeriodMonth, IncludedCredits: d(included), PricePerCredit: d("0.01"),
			PlatformFee: d(fee), Currency: currency, RegisterName: "default", OverageMode: credit.OverageHard, RolloverMode: credit.RolloverNone,
			OnDemandPrice: dp("0.02")})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	team, pro, euro := mkPlan("team", "100", "5", "USD"), mkPlan("pro", "300", "15", "USD"), mkPlan("euro", "100", "4", "EUR")
	orgs, pools, subs := map[string]*ent.Organization{}, map[string]*ent.Pool{}, map[string]*ent.Subscription{}
	for _, o := range []struct{ name, segment string }{{"A", "smb"}, {"B", "enterprise"}, {"C", "smb"}, {"D", "smb"}} {
		org, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: o.name, Segment: o.segment})
		if err != nil {
			t.Fatal(err)
		}
		pool, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "main"})
		if err != nil {
			t.Fatal(err)
		}
		orgs[o.name], pools[o.name] = org, pool
	}
	sub := func(name string, p *ent.Plan, in ledger.SubscribeInput) {
		in.OrganizationID, in.PlanID, in.StartsAt = orgs[name].ID, p.ID, start
		s, err := svc.Subscribe(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		subs[name] = s
	}
	sub("A", team, ledger.SubscribeInput{})
	sub("B", pro, ledger.SubscribeInput{TermPeriods: ptr(12), Commitment: dp("240")})
	sub("D", euro, ledger.SubscribeInput{})
	if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: pools["C"].ID, CreditType: credit.CreditPromotional, Amount: d("100")}); err != nil {
		t.Fatal(err)
	}
	n := 0
	use := func(name, qty string) *ent.UsageEvent {
		n++
		q := d(qty)
		res, err := svc.RecordUsage(ctx, engine.UsageInput{IdempotencyKey: fmt.Sprintf("e%d", n), OrganizationID: orgs[name].ID, Action: "agent.run",
			Status: credit.StatusSucceeded, Quantity: &q})
		if err != nil || res.Decision != credit.DecisionAllowed {
			t.Fatalf("usage of %s by %s: %+v, %v", qty, name, res.Decision, err)
		}
		return res.Event
	}
	for m := 0; m < 14; m++ {
		first := start.AddDate(0, m, 0)
		c.set(first)
		if _, err := svc.RunPeriodClose(ctx, first); err != nil {
			t.Fatal(err)
		}
		c.set(first.AddDate(0, 0, 9))
		use("A", "60")
		use("D", "10")
		if m < 10 {
			ev := use("B", "200")
			if m == 3 {
				if _, err := svc.Refund(ctx, ledger.RefundInput{UsageEventID: &ev.ID, Amount: dp("10"), Reason: "failed on our side"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		switch m {
		case 1:
			use("C", "20")
		case 2:
			if _, err := svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: pools["B"].ID, Credits: d("50")}); err != nil {
				t.Fatal(err)
			}
		case 5:
			if _, err := svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: subs["A"].ID, PlanID: pro.ID, At: ledger.AtPeriodEnd}); err != nil {
				t.Fatal(err)
			}
		case 9:
			if _, err := svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: subs["B"].ID, At: ledger.AtPeriodEnd}); err != nil {
				t.Fatal(err)
			}
		}
	}
	end := start.AddDate(0, 14, 0)
	c.set(end)
	if _, err := svc.RunPeriodClose(ctx, end); err != nil { // written at the range's end: outside it
		t.Fatal(err)
	}
	return svc, orgs, c
}

func ptr[T any](v T) *T { return &v }

var (
	from = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func eq(t *testing.T, what string, got decimal.Decimal, want string) {
	t.Helper()
	if !got.Equal(d(want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func eqp(t *testing.T, what string, got *decimal.Decimal, want string) {
	t.Helper()
	switch {
	case got == nil && want == "":
	case got == nil || want == "":
		t.Errorf("%s = %v, want %q", what, got, want)
	default:
		eq(t, what, *got, want)
	}
}

func TestKPIsOnAHandBuiltDataset(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, orgs, _ := dataset(t, db)
		// First with the ledger's clock at the range's start: no month is
		// closed, every figure is read from the ledger. Then now: the
		// closed months are rolled up and read from the rollups. Both agree.
		raw, err := kpi.Compute(ctx, db, kpi.Query{From: from, To: to, GroupBy: []kpi.GroupBy{kpi.BySegment}, Now: from})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := kpi.Compute(ctx, db, kpi.Query{From: from, To: to, GroupBy: []kpi.GroupBy{kpi.BySegment}})
		if err != nil {
			t.Fatal(err)
		}
		sameFigures(t, "totals", raw.Totals, rep.Totals)
		for i := range rep.Series {
			sameFigures(t, rep.Series[i].Month.Format("2006-01"), raw.Series[i].Figures, rep.Series[i].Figures)
		}
		// A range that is not whole months: its edges come from the ledger.
		mid, err := kpi.Compute(ctx, db, kpi.Query{From: from.AddDate(0, 0, 5), To: to.AddDate(0, 0, -10)})
		if err != nil {
			t.Fatal(err)
		}
		// Jan 6, 2025 to Feb 19, 2026: every burn (on the 10th) is inside.
		if mid.Totals.Events != 25 || !mid.Totals.Burned.Equal(d("2860")) {
			t.Errorf("Jan 6 - Feb 19: %d events, %s burned; want 25 and 2860", mid.Totals.Events, mid.Totals.Burned)
		}
		if strings.Join(rep.Currencies, ",") != "EUR,USD" || rep.Currency != "USD" {
			t.Fatalf("currencies %v, report in %s", rep.Currencies, rep.Currency)
		}
		tot := rep.Totals
		// Burned: A 14 x 60 = 840, B 10 x 200 = 2000, C 20: 2860; at 0.01
		// (A, B) and 0 (C's promotional credits): 28.4.
		eq(t, "burned", tot.Burned, "2860")
		eq(t, "burnedValue", tot.BurnedValue, "28.4")
		// Granted: A 6 x 100 + 8 x 300 = 3000, B 10 x 300 + 50 = 3050, C 100;
		// value 30 + 30 + 50 x 0.02 + 0 = 61; allocated (SUBSCRIPTION) 6000.
		eq(t, "granted", tot.Granted, "6150")
		eq(t, "grantedValue", tot.GrantedValue, "61")
		eq(t, "allocated", tot.Allocated, "6000")
		// Expired: A 6 x 40 (Feb 1 .. Jul 1) + 7 x 240 (Aug 1 .. Feb 1; March's
		// close is outside the range), B 10 x 100 + the 10 refunded: 2930.
		eq(t, "expired", tot.Expired, "2930")
		eq(t, "expiredValue", tot.ExpiredValue, "29.3")
		eq(t, "rolledOver", tot.RolledOver, "0")
		eq(t, "refunded", tot.Refunded, "10")
		// Fees: A 6 x 5 + 8 x 15 = 150; B 10 x 15 = 150 and a true-up of
		// 240 - (150 + 1) = 89 at its end; on-demand 50 x 0.02 = 1.
		eq(t, "feeRevenue", tot.FeeRevenue, "389")
		eq(t, "onDemandRevenue", tot.OnDemandRevenue, "1")
		eq(t, "overageRevenue", tot.OverageRevenue, "0")
		// Unused at the end: A's 240 of February at 0.01, B's 50 on-demand at 0.02.
		eq(t, "deferredLiability", tot.DeferredLiability, "3.4")
		// Value: 2860 actions x 0.05 = 143; cost x 0.002 = 5.72.
		eq(t, "valueDelivered", tot.ValueDelivered, "143")
		eq(t, "costOfBurn", tot.CostOfBurn, "5.72")
		eq(t, "grossMargin", tot.GrossMargin(), "22.68")
		eqp(t, "valueToBurn", tot.ValueToBurn(), "5.035211") // 143 / 28.4
		eqp(t, "utilisation", tot.Utilisation(), "0.465041") // 2860 / 6150
		if tot.Events != 25 {
			t.Errorf("events = %d, want 25", tot.Events)
		}
		// ARR at the end: A on pro, 15 x 12. NRR: the cohort A (team: 60) and
		// B (180 + 240 a term of 12 months = 420); A expands by 120, B churns:
		// (480 + 120 - 420) / 480.
		eq(t, "committedPoolArr", tot.CommittedPoolARR, "180")
		n := tot.NRR
		eq(t, "nrr start", n.StartARR, "480")
		eq(t, "nrr expansion", n.Expansion, "120")
		eq(t, "nrr churn", n.Churned, "420")
		eqp(t, "creditNrr", n.Ratio(), "0.375")
		if len(rep.Rows) != 2 || *rep.Rows[0].Segment != "enterprise" || *rep.Rows[1].Segment != "smb" {
			t.Fatalf("rows %+v, want enterprise and smb", rep.Rows)
		}
		ent, smb := rep.Rows[0], rep.Rows[1]
		eq(t, "enterprise burned", ent.Burned, "2000")
		eq(t, "enterprise fees", ent.FeeRevenue, "239")
		eq(t, "enterprise liability", ent.DeferredLiability, "1")
		eq(t, "enterprise ARR", ent.CommittedPoolARR, "0")
		eqp(t, "enterprise NRR", ent.NRR.Ratio(), "0")
		eq(t, "smb burned", smb.Burned, "860")
		eq(t, "smb expired", smb.Expired, "1920")
		eq(t, "smb ARR", smb.CommittedPoolARR, "180")
		eqp(t, "smb NRR", smb.NRR.Ratio(), "3") // 60 -> 180
		// The monthly series: 14 months; January granted A 100 + B 300 + C
		// 100, burned 260, ends with ARR 60 + 420 and a liability of A's 40
		// and B's 100 at 0.01; November expires A's 240 and B's last 100.
		if len(rep.Series) != 14 {
			t.Fatalf("series of %d months, want 14", len(rep.Series))
		}
		jan, nov := rep.Series[0], rep.Series[10]
		eq(t, "January granted", jan.Granted, "500")
		eq(t, "January burned", jan.Burned, "260")
		eq(t, "January ARR", jan.CommittedPoolARR, "480")
		eq(t, "January liability", jan.DeferredLiability, "1.4")
		eq(t, "November expired", nov.Expired, "340")
		eq(t, "November ARR", nov.CommittedPoolARR, "180")
		eq(t, "November fees", nov.FeeRevenue, "104") // A's 15 and B's true-up of 89
		// By plan at the range's end: A and B (its last plan) on pro, C on
		// none (0); by organisation: A, B, C (D bills in EUR).
		byPlan, err := kpi.Compute(ctx, db, kpi.Query{From: from, To: to, GroupBy: []kpi.GroupBy{kpi.ByPlan}})
		if err != nil {
			t.Fatal(err)
		}
		if len(byPlan.Rows) != 2 || *byPlan.Rows[0].PlanID != 0 || !byPlan.Rows[0].Burned.Equal(d("20")) || !byPlan.Rows[1].Burned.Equal(d("2840")) ||
			!byPlan.Rows[1].CommittedPoolARR.Equal(d("180")) {
			t.Errorf("by plan: %+v", byPlan.Rows)
		}
		byOrg, err := kpi.Compute(ctx, db, kpi.Query{From: from, To: to, GroupBy: []kpi.GroupBy{kpi.ByOrganization, kpi.ByMonth}})
		if err != nil {
			t.Fatal(err)
		}
		perOrg := map[int]decimal.Decimal{}
		for _, r := range byOrg.Rows {
			perOrg[*r.OrganizationID] = perOrg[*r.OrganizationID].Add(r.Burned)
			if r.NRR != nil {
				t.Errorf("a month row with NRR: %+v", r)
			}
		}
		if len(perOrg) != 3 || !perOrg[orgs["A"].ID].Equal(d("840")) || !perOrg[orgs["B"].ID].Equal(d("2000")) || !perOrg[orgs["C"].ID].Equal(d("20")) {
			t.Errorf("burned by organisation over the months: %v", perOrg)
		}
		eur, err := kpi.Compute(ctx, db, kpi.Query{From: from, To: to, Currency: "EUR"})
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "EUR burned", eur.Totals.Burned, "140")
		eq(t, "EUR fees", eur.Totals.FeeRevenue, "56")
	})
}

func sameFigures(t *testing.T, what string, a, b kpi.Figures) {
	t.Helper()
	for _, p := range []struct {
		name string
		x, y decimal.Decimal
	}{
		{"burned", a.Burned, b.Burned}, {"burnedValue", a.BurnedValue, b.BurnedValue}, {"granted", a.Granted, b.Granted},
		{"expired", a.Expired, b.Expired}, {"refunded", a.Refunded, b.Refunded}, {"liability", a.DeferredLiability, b.DeferredLiability},
		{"value", a.ValueDelivered, b.ValueDelivered}, {"cost", a.CostOfBurn, b.CostOfBurn}, {"arr", a.CommittedPoolARR, b.CommittedPoolARR},
		{"fees", a.FeeRevenue, b.FeeRevenue},
	} {
		if !p.x.Equal(p.y) {
			t.Errorf("%s %s: %s from the ledger, %s from the rollups", what, p.name, p.x, p.y)
		}
	}
	if a.Events != b.Events {
		t.Errorf("%s events: %d from the ledger, %d from the rollups", what, a.Events, b.Events)
	}
}

// The roll-forward of the deferred liability balances month by month and
// ends at the report's liability; breakage by cohort; the journal.
func TestRevenueRecognition(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dataset(t, db)
		rev, err := kpi.RevenueRecognition(ctx, db, kpi.Query{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if len(rev.Months) != 14 {
			t.Fatalf("%d months, want 14", len(rev.Months))
		}
		jan := rev.Months[0]
		// Billed A 1 + B 3; recognised 0.6 + 2; closing 1.4.
		eq(t, "January opening", jan.Opening, "0")
		eq(t, "January billed", jan.Billed, "4")
		eq(t, "January recognised", jan.Recognised, "2.6")
		eq(t, "January closing", jan.Closing, "1.4")
		// April: the refund gives B 10 credits (0.1) back: refunds -0.1.
		eq(t, "April refunds", rev.Months[3].Refunds, "-0.1")
		for i := 1; i < len(rev.Months); i++ {
			if !rev.Months[i].Opening.Equal(rev.Months[i-1].Closing) {
				t.Errorf("month %d opens at %s, month %d closed at %s", i, rev.Months[i].Opening, i-1, rev.Months[i-1].Closing)
			}
		}
		eq(t, "closing", rev.Months[13].Closing, "3.4")
		var breakage decimal.Decimal
		for _, b := range rev.Breakage {
			if b.CreditType != "SUBSCRIPTION" || !b.Month.Equal(b.Cohort.AddDate(0, 1, 0)) {
				t.Errorf("breakage %+v: want SUBSCRIPTION credits expiring the month after their grant", b)
			}
			breakage = breakage.Add(b.Value)
		}
		eq(t, "breakage", breakage, "29.3")
		var buf bytes.Buffer
		if err := kpi.Journal(&buf, rev); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if lines[0] != "period,account,cause,debit,credit,currency" || lines[1] != "2025-01,credits_billed_clearing,BILLED,4,,USD" ||
			lines[2] != "2025-01,deferred_credit_revenue,BILLED,,4,USD" {
			t.Fatalf("journal begins %q", lines[:3])
		}
	})
}

// Health at a time: the statuses and the figures behind them.
func TestAccountHealth(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, orgs, c := dataset(t, db)
		// On 2026-02-20 (19 of February's 28 days gone: elapsed 0.6786):
		// A was allowed 300 and burned 60: pace 0.2 / 0.6786 = 0.2947,
		// LOW_BURN; D (EUR) burned 10 of 100: LOW_BURN too. B (ended) and C
		// had nothing this month: no pace, HEALTHY.
		hs, err := kpi.AccountHealth(ctx, db, time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		by := map[int]kpi.Health{}
		for _, h := range hs {
			by[h.OrganizationID] = h
		}
		a := by[orgs["A"].ID]
		if a.Status != "LOW_BURN" || !a.Allowance.Equal(d("300")) || !a.Burned.Equal(d("60")) || a.Pace == nil || !a.Pace.Equal(d("0.2947")) {
			t.Fatalf("A = %+v (pace %v)", a, a.Pace)
		}
		if h := by[orgs["D"].ID]; h.Status != "LOW_BURN" {
			t.Fatalf("D = %+v", h)
		}
		if b := by[orgs["B"].ID]; b.Status != "HEALTHY" || b.Pace != nil {
			t.Fatalf("B = %+v", b)
		}
		// March 2026, two organisations without a plan (the calendar month),
		// 100 credits each on March 1. E burns 2 a day from March 1 to 28,
		// then 40 on the 29th: on the 29th at noon its last day (40) is over
		// 3x its usual day (56 / 28 = 2): ANOMALY. F burns 60 on March 2:
		// on March 10 (9 of 31 days gone, 0.2903) its pace is 0.6 / 0.2903
		// = 2.0668: EXPANSION.
		mk := func(name string) (*ent.Organization, *ent.Pool) {
			org, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: name, Segment: "smb"})
			if err != nil {
				t.Fatal(err)
			}
			pool, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "main"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: pool.ID, CreditType: credit.CreditPromotional, Amount: d("100")}); err != nil {
				t.Fatal(err)
			}
			return org, pool
		}
		use := func(org *ent.Organization, key, qty string) {
			q := d(qty)
			if _, err := svc.RecordUsage(ctx, engine.UsageInput{IdempotencyKey: key, OrganizationID: org.ID, Action: "agent.run", Status: credit.StatusSucceeded, Quantity: &q}); err != nil {
				t.Fatal(err)
			}
		}
		march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		c.set(march)
		e, _ := mk("E")
		f, _ := mk("F")
		for day := 0; day < 28; day++ {
			c.set(march.AddDate(0, 0, day))
			use(e, fmt.Sprintf("e-%d", day), "2")
			if day == 1 {
				use(f, "f-1", "60")
			}
		}
		c.set(march.AddDate(0, 0, 28))
		use(e, "e-spike", "40")
		status := func(at time.Time, org *ent.Organization) kpi.Health {
			hs, err := kpi.AccountHealth(ctx, db, at)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				if h.OrganizationID == org.ID {
					return h
				}
			}
			t.Fatalf("no health for organisation %d", org.ID)
			return kpi.Health{}
		}
		if h := status(march.AddDate(0, 0, 28).Add(12*time.Hour), e); h.Status != "ANOMALY" || !h.BurnLastDay.Equal(d("40")) || !h.BurnUsual.Equal(d("2")) {
			t.Fatalf("E = %+v", h)
		}
		if h := status(march.AddDate(0, 0, 9), f); h.Status != "EXPANSION" || h.Pace == nil || !h.Pace.Equal(d("2.0668")) {
			t.Fatalf("F = %+v (pace %v)", h, h.Pace)
		}
	})
}
