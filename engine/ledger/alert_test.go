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
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func (f *fixture) rule(t *testing.T, in ledger.AlertRuleInput) *ent.AlertRule {
	t.Helper()
	r, err := f.svc.CreateAlertRule(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) alerts(t *testing.T) []*ent.Alert {
	t.Helper()
	as, err := f.svc.Alerts(context.Background(), &f.org.ID, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// Alert rules fire once per condition and period, whoever evaluates them
// and however often; a new period fires them again.
func TestAlertRulesFireOncePerPeriod(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		soon := f.clock.now().Add(5 * 24 * time.Hour)
		if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditSubscription, Amount: d("1000"), ExpiresAt: &soon}); err != nil {
			t.Fatal(err)
		}
		f.use(t, "u1", "600")
		low := f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp("500")})
		f.rule(t, ledger.AlertRuleInput{OrganizationID: &f.org.ID, Kind: credit.AlertExpiringWithin, Threshold: dp("7")})
		f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp("100")}) // 400 is not below 100
		replica := ledger.New(db, ledger.WithClock(f.clock.now))
		var wg sync.WaitGroup
		fired := make([]int, 4)
		for i := range fired { // two replicas, twice each, at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				svc := f.svc
				if i%2 == 1 {
					svc = replica
				}
				rep, err := svc.EvaluateAlerts(ctx, f.clock.now())
				if err != nil {
					t.Error(err)
				}
				fired[i] = rep.Fired
			}()
		}
		wg.Wait()
		as := f.alerts(t)
		if total := fired[0] + fired[1] + fired[2] + fired[3]; total != 2 || len(as) != 2 {
			t.Fatalf("fired %v, stored %d alerts %v; want 2 (BALANCE_BELOW 500, EXPIRING_WITHIN 7), once", fired, len(as), as)
		}
		for _, a := range as {
			if a.RuleID == nil || a.Condition == "" || a.PoolID == nil || *a.PoolID != f.pool.ID {
				t.Errorf("alert %+v: want its rule, condition and pool", a)
			}
		}
		f.clock.add(24 * time.Hour) // the same (calendar month) period: nothing new
		if rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil || rep.Fired != 0 {
			t.Fatalf("the next day: %+v, %v; want nothing new", rep, err)
		}
		if _, err := f.svc.SetAlertRuleEnabled(ctx, low.ID, false); err != nil {
			t.Fatal(err)
		}
		f.clock.add(31 * 24 * time.Hour) // a new month: the grant expired (0 left), nothing expires soon any more
		if rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil || rep.Fired != 1 {
			t.Fatalf("next month with the 500 rule off: %+v, %v; want only BALANCE_BELOW 100", rep, err)
		}
		if _, err := f.svc.SetAlertRuleEnabled(ctx, low.ID, true); err != nil {
			t.Fatal(err)
		}
		if rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil || rep.Fired != 1 {
			t.Fatalf("next month with the 500 rule on: %+v, %v; want it again, in its new period", rep, err)
		}
	})
}

// Acknowledging an alert: once, by its organisation's admins.
func TestAcknowledgeAlert(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp("1")})
		if _, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		a := f.alerts(t)[0]
		other := f.org.ID + 1000
		stranger := auth.With(ctx, &auth.Principal{KeyID: 9, Name: "stranger", Role: credit.RoleOrgAdmin, OrgID: &other})
		if _, err := f.svc.AcknowledgeAlert(stranger, a.ID); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("another organisation's admin: %v, want NOT_FOUND", err)
		}
		admin := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "acme admin", Role: credit.RoleOrgAdmin, OrgID: &f.org.ID})
		first, err := f.svc.AcknowledgeAlert(admin, a.ID)
		if err != nil || first.AcknowledgedAt == nil || *first.AcknowledgedBy != "acme admin" {
			t.Fatalf("acknowledge = %+v, %v", first, err)
		}
		f.clock.add(time.Hour)
		again, err := f.svc.AcknowledgeAlert(ctx, a.ID)
		if err != nil || !again.AcknowledgedAt.Equal(*first.AcknowledgedAt) || *again.AcknowledgedBy != "acme admin" {
			t.Fatalf("second acknowledge = %+v, %v; want the first unchanged", again, err)
		}
		if open, err := f.svc.Alerts(ctx, &f.org.ID, 10, true); err != nil || len(open) != 0 {
			t.Fatalf("unacknowledged alerts = %v, %v; want none", open, err)
		}
	})
}

// Bad alert rules change nothing.
func TestAlertRuleBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		missing := 999999
		other := f.org.ID + 1000
		stranger := auth.With(ctx, &auth.Principal{KeyID: 9, Name: "stranger", Role: credit.RoleOrgAdmin, OrgID: &other})
		for _, c := range []struct {
			name string
			ctx  context.Context
			in   ledger.AlertRuleInput
			code credit.Code
		}{
			{"a negative threshold", ctx, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp("-5")}, credit.CodeValidation},
			{"no threshold", ctx, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow}, credit.CodeValidation},
			{"a pool and an organisation", ctx, ledger.AlertRuleInput{PoolID: &f.pool.ID, OrganizationID: &f.org.ID, Kind: credit.AlertRunUncovered}, credit.CodeValidation},
			{"neither", ctx, ledger.AlertRuleInput{Kind: credit.AlertRunUncovered}, credit.CodeValidation},
			{"a platform kind", ctx, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertWebhookDisabled}, credit.CodeValidation},
			{"an unknown pool", ctx, ledger.AlertRuleInput{PoolID: &missing, Kind: credit.AlertRunUncovered}, credit.CodeNotFound},
			{"another organisation's pool", stranger, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertRunUncovered}, credit.CodeNotFound},
		} {
			if _, err := f.svc.CreateAlertRule(c.ctx, c.in); credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		if rs, err := f.svc.AlertRules(ctx, &f.org.ID); err != nil || len(rs) != 0 {
			t.Fatalf("rules after bad input: %v, %v; want none", rs, err)
		}
	})
}

// A published ALERT policy watches every pool.
func TestAlertPolicyFires(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "50", credit.CreditSubscription)
		f.publish(t, "nearly-empty", credit.PolicyAlert, `poolKind == "ACCOUNT" && available < decimal(100)`)
		rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now())
		if err != nil || rep.Fired != 1 {
			t.Fatalf("EvaluateAlerts = %+v, %v; want one POLICY alert", rep, err)
		}
		if as := f.alerts(t); len(as) != 1 || as[0].Kind != string(credit.AlertPolicy) || as[0].Condition != "policy:nearly-empty" {
			t.Fatalf("alerts %v", as)
		}
	})
}

// The predictor and the burn-rate rule on real history: 20 days of 40
// credits a day against 1000 credits (200 left) project a run-out within
// 7 days; a day of 200 is above 2 x the usual 40.
func TestAlertsOnBurnHistory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "1000", credit.CreditSubscription)
		for day := range 20 {
			f.use(t, "day-"+string(rune('a'+day)), "40")
			f.clock.add(24 * time.Hour)
		}
		fc, err := f.svc.Forecast(ctx, f.pool.ID, 30)
		if err != nil || fc.DepletesAt == nil || fc.HistoryDays < 14 {
			t.Fatalf("forecast = %+v, %v; want a run-out from a seasonal model", fc, err)
		}
		if !fc.DailyBurn.Sub(d("40")).Abs().LessThan(d("2")) {
			t.Fatalf("daily burn %s, want about 40 (%s)", fc.DailyBurn, fc.Method)
		}
		if days := fc.DepletesAt.Sub(f.clock.now()).Hours() / 24; days < 3 || days > 7 {
			t.Fatalf("runs out in %.1f days, want about 5 (200 left at 40 a day)", days)
		}
		f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertDepletionProjected, Threshold: dp("7")})
		f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBurnRateAbove, Threshold: dp("2")})
		if rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil || rep.Fired != 1 {
			t.Fatalf("EvaluateAlerts = %+v, %v; want DEPLETION_PROJECTED only (no burn today yet)", rep, err)
		}
		f.use(t, "spike", "100")
		if rep, err := f.svc.EvaluateAlerts(ctx, f.clock.now()); err != nil || rep.Fired != 1 {
			t.Fatalf("EvaluateAlerts after a spike = %+v, %v; want BURN_RATE_ABOVE (100 > 2 x 40)", rep, err)
		}
	})
}
