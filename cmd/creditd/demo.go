package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent/organization"
)

// demoBurnRule charges in full on success, pro-rata on partial completion,
// 20 % of the weight on failure, and nothing for a run that only started.
const demoBurnRule = `event.status == "SUCCEEDED" ? weight * event.quantity
  : event.status == "PARTIAL" ? weight * event.quantity * event.completion
  : event.status == "FAILED" ? weight * event.quantity * decimal("0.2")
  : decimal(0)`

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func dp(s string) *decimal.Decimal { v := d(s); return &v }

// seedDemo creates an example organisation with pools, a published weight
// register of agent actions, a burn rule and grants. It does nothing when the
// demo organisation already exists.
func seedDemo(ctx context.Context, svc *ledger.Service, w io.Writer) error {
	if n, err := svc.Client().Organization.Query().Where(organization.Name("Acme Robotics")).Count(ctx); err != nil || n > 0 {
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "demo: already seeded (organization \"Acme Robotics\")")
		return demoKey(ctx, svc, w)
	}
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
		{Action: "agent.run", Credits: d("10"), ValuePerAction: dp("5.00"), CostPerAction: dp("0.40")},
		{Action: "email.draft", Credits: d("2"), ValuePerAction: dp("1.50"), CostPerAction: dp("0.05")},
		{Action: "web.search", Credits: d("0.5"), ValuePerAction: dp("0.20"), CostPerAction: dp("0.01")},
		{Action: "doc.summarize", Credits: d("1"), ValuePerAction: dp("2.00"), CostPerAction: dp("0.08"),
			Expression: `has(event.properties.pages) ? decimal(1) + decimal(event.properties.pages) * decimal("0.25") : decimal(1)`},
	})
	if err != nil {
		return err
	}
	if _, err := svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		return err
	}
	pol, err := svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "partial-charge-on-failure", Kind: credit.PolicyBurn, Expression: demoBurnRule})
	if err != nil {
		return err
	}
	if _, err := svc.PublishPolicy(ctx, pol.Name, pol.Version, nil); err != nil {
		return err
	}
	org, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Acme Robotics", Segment: "mid-market"})
	if err != nil {
		return err
	}
	account, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "Acme account"})
	if err != nil {
		return err
	}
	team, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolTeam, Name: "Support team", ParentID: &account.ID})
	if err != nil {
		return err
	}
	now := svc.Now()
	month, fortnight := now.AddDate(0, 1, 0), now.Add(14*24*time.Hour)
	for _, g := range []ledger.GrantInput{
		{PoolID: account.ID, CreditType: credit.CreditSubscription, Amount: d("5000"), UnitPrice: dp("0.01"), ExpiresAt: &month, Memo: "monthly allowance"},
		{PoolID: account.ID, CreditType: credit.CreditIncentive, Amount: d("200"), ExpiresAt: &fortnight, Memo: "onboarding bonus"},
		{PoolID: account.ID, CreditType: credit.CreditOnDemand, Amount: d("1000"), UnitPrice: dp("0.012"), Memo: "top-up pack"},
		{PoolID: team.ID, CreditType: credit.CreditSubscription, Amount: d("500"), UnitPrice: dp("0.01"), ExpiresAt: &month, Memo: "team allocation"},
	} {
		if _, err := svc.GrantCredits(ctx, g); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "demo: organization %d \"Acme Robotics\", account pool %d, team pool %d; register \"default\" v%d; burn policy %q v%d\n",
		org.ID, account.ID, team.ID, reg.Version, pol.Name, pol.Version)
	return demoKey(ctx, svc, w)
}

// demoKey creates a new OPERATOR key for the demo and prints it, on every
// start (a secret cannot be shown twice).
func demoKey(ctx context.Context, svc *ledger.Service, w io.Writer) error {
	_, secret, err := svc.CreateKey(ctx, ledger.KeyInput{Name: "demo", Role: credit.RoleOperator})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "demo: OPERATOR key (send it as \"Authorization: Bearer <key>\"):\n  %s\n", secret)
	return nil
}
