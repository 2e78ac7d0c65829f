package graph_test

// The lifecycle state machine through the API (README "The lifecycle state
// machine"): a hold against a hard budget, a run that overruns what covers
// it, and a subscription start long past. Each on both databases, through
// the real HTTP handler, ending with the ledger verified.

import (
	"context"
	"strconv"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const mqRun = `mutation($in: UsageInput!) { recordUsage(input: $in) {
  decision credits reserved uncovered overage reasonCode draws { amount } } }`

type mRunT struct {
	Decision   string  `json:"decision"`
	Credits    string  `json:"credits"`
	Reserved   string  `json:"reserved"`
	Uncovered  string  `json:"uncovered"`
	Overage    string  `json:"overage"`
	ReasonCode *string `json:"reasonCode"`
}

func (e *env) mRun(org, pool, key, run, status, qty string) mRunT {
	e.t.Helper()
	var out struct {
		R mRunT `json:"recordUsage"`
	}
	e.must(mqRun, map[string]any{"in": map[string]any{"idempotencyKey": key, "organizationId": org, "poolId": pool,
		"action": "agent.run", "runId": run, "status": status, "quantity": qty}}, &out)
	return out.R
}

func TestMachineThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing() // agent.run: 4 credits
		org, account := e.newOrg("Acme", "")
		e.grant(account, "SUBSCRIPTION", "100", nil)
		var team struct {
			R struct {
				ID string `json:"id"`
			} `json:"createPool"`
		}
		e.must(`mutation($o: ID!, $p: ID!) { createPool(organizationId: $o, kind: TEAM, name: "t", parentId: $p) { id } }`,
			map[string]any{"o": org, "p": account}, &team)
		e.must(`mutation($p: ID!) { setBudget(poolId: $p, amount: "20", period: MONTH, hard: true) { id } }`, map[string]any{"p": team.R.ID}, nil)

		// Holds count against the hard budget: 2 x 12 > 20.
		if r := e.mRun(org, team.R.ID, "s1", "r1", "STARTED", "3"); r.Decision != "ALLOWED" || r.Reserved != "12" {
			t.Fatalf("first start = %+v, want ALLOWED holding 12", r)
		}
		if r := e.mRun(org, team.R.ID, "s2", "r2", "STARTED", "3"); r.Decision != "DENIED" || lcStr(r.ReasonCode) != "BUDGET_EXCEEDED" {
			t.Fatalf("second start = %+v, want DENIED BUDGET_EXCEEDED", r)
		}

		// A pool that does not fall through, with 10 credits: a run held
		// at 8 that costs 20 is charged 20, 10 of them uncovered.
		var solo struct {
			R struct {
				ID string `json:"id"`
			} `json:"createPool"`
		}
		e.must(`mutation($o: ID!, $p: ID!) { createPool(organizationId: $o, kind: PERSONAL, name: "solo", parentId: $p, fallThrough: false) { id } }`,
			map[string]any{"o": org, "p": account}, &solo)
		e.grant(solo.R.ID, "SUBSCRIPTION", "10", nil)
		if r := e.mRun(org, solo.R.ID, "s3", "r3", "STARTED", "2"); r.Reserved != "8" {
			t.Fatalf("solo start = %+v, want 8 held", r)
		}
		r := e.mRun(org, solo.R.ID, "e3", "r3", "SUCCEEDED", "5")
		if r.Decision != "ALLOWED" || r.Credits != "20" || r.Uncovered != "10" || lcStr(r.ReasonCode) != "UNCOVERED" {
			t.Fatalf("overrun = %+v, want ALLOWED 20 credits, 10 uncovered, UNCOVERED", r)
		}
		entries, _ := e.ledgerAll(solo.R.ID, 50)
		uncovered := 0
		for _, en := range entries {
			if en.Kind == "UNCOVERED" && en.Amount == "-10" {
				uncovered++
			}
		}
		if uncovered != 1 {
			t.Fatalf("ledger %+v, want one UNCOVERED -10 entry", entries)
		}
		var alerts struct {
			R []struct {
				Kind string `json:"kind"`
			} `json:"alerts"`
		}
		e.must(`query($o: ID!) { alerts(organizationId: $o, first: 10) { kind } }`, map[string]any{"o": org}, &alerts)
		if len(alerts.R) != 1 || alerts.R[0].Kind != "RUN_UNCOVERED" {
			t.Fatalf("alerts = %+v, want one UNCOVERED", alerts.R)
		}

		// A start in 1900 is refused unless backfill says so.
		var plan struct {
			R struct {
				ID string `json:"id"`
			} `json:"createPlan"`
		}
		e.must(`mutation { createPlan(input: { name: "daily", period: DAY, includedCredits: "1", pricePerCredit: "0.01",
		  platformFee: "1", registerName: "default", overageMode: HARD, rolloverMode: NONE }) { id } }`, nil, &plan)
		q := `mutation($o: ID!, $p: ID!, $b: Boolean) { subscribe(organizationId: $o, planId: $p, startsAt: "1900-01-01T00:00:00Z", backfill: $b) { id } }`
		_, errs := e.do(q, map[string]any{"o": org, "p": plan.R.ID})
		wantExt(t, "subscribe from 1900", wantErr(t, "subscribe from 1900", errs, "VALIDATION"), "field", "startsAt")
		e.verify("after the machine's cells")
	})
}

// A buyer's admin moves credits between its own pools, and not to another
// organisation's; a REVOPS key may not call transferCredits at all.
func TestTransferThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, account := e.newOrg("Acme", "")
		_, theirs := e.newOrg("Other", "")
		e.grant(account, "ON_DEMAND", "50", nil)
		var team struct {
			R struct {
				ID string `json:"id"`
			} `json:"createPool"`
		}
		e.must(`mutation($o: ID!, $p: ID!) { createPool(organizationId: $o, kind: TEAM, name: "t", parentId: $p) { id } }`,
			map[string]any{"o": org, "p": account}, &team)
		orgID := atoiT(t, org)
		_, adminKey, err := e.svc.CreateKey(context.Background(), ledger.KeyInput{Name: "admin", Role: credit.RoleOrgAdmin, OrganizationID: &orgID})
		if err != nil {
			t.Fatal(err)
		}
		admin := e.lcAs(t, adminKey)
		q := `mutation($in: TransferInput!) { transferCredits(input: $in) { kind amount pool { id } grant { creditType } } }`
		var out struct {
			R []struct {
				Kind   string `json:"kind"`
				Amount string `json:"amount"`
				Pool   idRef  `json:"pool"`
				Grant  struct {
					CreditType string `json:"creditType"`
				} `json:"grant"`
			} `json:"transferCredits"`
		}
		admin.must(q, map[string]any{"in": map[string]any{"fromPoolId": account, "toPoolId": team.R.ID, "amount": "20", "memo": "team"}}, &out)
		if len(out.R) != 2 || out.R[0].Kind != "TRANSFER_OUT" || out.R[0].Amount != "-20" || out.R[1].Kind != "TRANSFER_IN" ||
			out.R[1].Pool.ID != team.R.ID || out.R[1].Grant.CreditType != "ON_DEMAND" {
			t.Fatalf("transferCredits = %+v, want TRANSFER_OUT -20 then TRANSFER_IN 20 ON_DEMAND on the team", out.R)
		}
		_, errs := admin.do(q, map[string]any{"in": map[string]any{"fromPoolId": team.R.ID, "toPoolId": theirs, "amount": "1"}})
		wantErr(t, "to another organisation", errs, "TRANSFER_FORBIDDEN")
		_, revops, err := e.svc.CreateKey(context.Background(), ledger.KeyInput{Name: "revops", Role: credit.RoleRevOps})
		if err != nil {
			t.Fatal(err)
		}
		_, errs = e.lcAs(t, revops).do(q, map[string]any{"in": map[string]any{"fromPoolId": team.R.ID, "toPoolId": account, "amount": "1"}})
		wantErr(t, "a REVOPS key", errs, "FORBIDDEN")
		e.verify("after transfers")
	})
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Refunds and voids through the API: an OPERATOR refunds part of an event
// and voids a grant; an ORG_ADMIN without a REFUND policy may not refund.
func TestRefundAndVoidThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing() // agent.run: 4 credits
		org, pool := e.newOrg("Acme", "")
		g := e.grant(pool, "SUBSCRIPTION", "100", nil)
		used := e.record(map[string]any{"idempotencyKey": "u1", "organizationId": org, "action": "agent.run", "quantity": "5"})
		q := `mutation($in: RefundInput!) { refund(input: $in) { kind amount grant { id } usageEvent { id } } }`
		var out struct {
			R []struct {
				Kind       string `json:"kind"`
				Amount     string `json:"amount"`
				Grant      idRef  `json:"grant"`
				UsageEvent idRef  `json:"usageEvent"`
			} `json:"refund"`
		}
		e.must(q, map[string]any{"in": map[string]any{"usageEventId": used.Event.ID, "amount": "8", "reason": "tool outage"}}, &out)
		if len(out.R) != 1 || out.R[0].Kind != "REFUND" || out.R[0].Amount != "8" || out.R[0].Grant.ID != g || out.R[0].UsageEvent.ID != used.Event.ID {
			t.Fatalf("refund = %+v, want one REFUND of 8 on grant %s for event %s", out.R, g, used.Event.ID)
		}
		_, errs := e.do(q, map[string]any{"in": map[string]any{"usageEventId": used.Event.ID, "amount": "13", "reason": "again"}})
		wantErr(t, "more than is left", errs, "REFUND_EXCEEDED")
		orgID := atoiT(t, org)
		_, adminKey, err := e.svc.CreateKey(context.Background(), ledger.KeyInput{Name: "admin", Role: credit.RoleOrgAdmin, OrganizationID: &orgID})
		if err != nil {
			t.Fatal(err)
		}
		_, errs = e.lcAs(t, adminKey).do(q, map[string]any{"in": map[string]any{"usageEventId": used.Event.ID, "amount": "1", "reason": "x"}})
		wantErr(t, "an ORG_ADMIN without a REFUND policy", errs, "REFUND_FORBIDDEN")
		var v struct {
			R struct {
				Kind   string `json:"kind"`
				Amount string `json:"amount"`
			} `json:"voidGrant"`
		}
		e.must(`mutation($g: ID!) { voidGrant(grantId: $g, reason: "granted by mistake") { kind amount } }`, map[string]any{"g": g}, &v)
		if v.R.Kind != "VOID" || v.R.Amount != "-88" {
			t.Fatalf("voidGrant = %+v, want VOID -88 (100 - 20 + 8)", v.R)
		}
		e.verify("after refunds and a void")
	})
}

// Refunds of purchased credits through the API: no money without a REFUND
// policy; with one, money back as a negative charge naming the charge that
// paid, at the policy's factor.
func TestRefundPurchaseThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, _ := lcEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		p := e.lcCreatePlan(lcPlanInput("team"))
		e.lcSubscribe(org, p.ID, testNow)
		g := e.lcPurchase(pool, "1000") // at 0.015
		q := `mutation($in: RefundInput!) { refund(input: $in) { kind amount grant { id } } }`
		_, errs := e.do(q, map[string]any{"in": map[string]any{"grantId": g.ID, "reason": "bought too many"}})
		wantErr(t, "money without a policy", errs, "REFUND_FORBIDDEN")
		e.must(qSavePolicy, map[string]any{"in": map[string]any{"name": "restocking", "kind": "REFUND",
			"expression": `subject == "GRANT" ? {"form": "MONEY", "factor": decimal("0.8")} : {"amount": refundable}`}}, nil)
		e.must(qPublishPolicy, map[string]any{"name": "restocking", "v": 1}, nil)
		var out struct {
			R []struct {
				Kind   string `json:"kind"`
				Amount string `json:"amount"`
				Grant  idRef  `json:"grant"`
			} `json:"refund"`
		}
		e.must(q, map[string]any{"in": map[string]any{"grantId": g.ID, "amount": "500", "reason": "bought too many"}}, &out)
		if len(out.R) != 1 || out.R[0].Kind != "REFUND" || out.R[0].Amount != "-500" || out.R[0].Grant.ID != g.ID {
			t.Fatalf("refund = %+v, want one REFUND of -500 on grant %s", out.R, g.ID)
		}
		var chs struct {
			C struct {
				Edges []struct {
					N struct {
						ID       string  `json:"id"`
						Kind     string  `json:"kind"`
						Amount   string  `json:"amount"`
						GrantID  *string `json:"grantId"`
						RefundOf *string `json:"refundOf"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"charges"`
		}
		e.must(`query($o: ID!) { charges(organizationId: $o, first: 10) { edges { node { id kind amount grantId refundOf } } } }`, map[string]any{"o": org}, &chs)
		var n []struct {
			ID, Kind, Amount  string
			GrantID, RefundOf *string
		}
		for _, ed := range chs.C.Edges {
			n = append(n, struct {
				ID, Kind, Amount  string
				GrantID, RefundOf *string
			}{ed.N.ID, ed.N.Kind, ed.N.Amount, ed.N.GrantID, ed.N.RefundOf})
		}
		if len(n) < 2 || n[0].Amount != "-6" || n[0].Kind != "ON_DEMAND" || n[0].RefundOf == nil || *n[0].RefundOf != n[1].ID || n[1].Amount != "15" {
			t.Fatalf("charges = %+v; want -6 (500 x 0.015 x 0.8) refunding the ON_DEMAND charge of 15, newest first", n)
		}
		_, errs = e.do(q, map[string]any{"in": map[string]any{"grantId": g.ID, "amount": "501", "reason": "again"}})
		wantErr(t, "more than unused", errs, "REFUND_EXCEEDED")
		e.verify("after a refund of purchased credits")
	})
}

// Credits that wait for payment through the API: an ORG_ADMIN buys them
// pending, sees them as pending, may not confirm them; the OPERATOR (the
// vendor's payment system) confirms one purchase and fails another.
func TestPendingPaymentThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, _ := lcEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		p := e.lcCreatePlan(lcPlanInput("team"))
		e.lcSubscribe(org, p.ID, testNow)
		orgID := atoiT(t, org)
		_, adminKey, err := e.svc.CreateKey(context.Background(), ledger.KeyInput{Name: "admin", Role: credit.RoleOrgAdmin, OrganizationID: &orgID})
		if err != nil {
			t.Fatal(err)
		}
		admin := e.lcAs(t, adminKey)
		type grantT struct {
			ID        string  `json:"id"`
			Payment   string  `json:"payment"`
			Remaining string  `json:"remaining"`
			DueAt     *string `json:"paymentDueAt"`
		}
		buy := `mutation($pool: ID!) { purchaseCredits(poolId: $pool, credits: "1000", pendingPayment: true) { id payment remaining paymentDueAt } }`
		var bought [2]struct {
			G grantT `json:"purchaseCredits"`
		}
		for i := range bought {
			admin.must(buy, map[string]any{"pool": pool}, &bought[i])
			if g := bought[i].G; g.Payment != "PENDING" || g.Remaining != "0" || g.DueAt == nil {
				t.Fatalf("pending purchase = %+v; want PENDING, remaining 0, a due date", g)
			}
		}
		var bal struct {
			P struct {
				B struct{ Available, Pending string } `json:"balance"`
			} `json:"pool"`
		}
		balance := `query($p: ID!) { pool(id: $p) { balance { available pending } } }`
		e.must(balance, map[string]any{"p": pool}, &bal)
		if bal.P.B.Pending != "2000" {
			t.Fatalf("balance %+v; want 2000 pending", bal.P.B)
		}
		before := bal.P.B.Available
		confirm := `mutation($g: ID!) { confirmPayment(grantId: $g) { id payment remaining } }`
		_, errs := admin.do(confirm, map[string]any{"g": bought[0].G.ID})
		wantErr(t, "an ORG_ADMIN confirming its own payment", errs, "FORBIDDEN")
		var ok struct {
			G grantT `json:"confirmPayment"`
		}
		e.must(confirm, map[string]any{"g": bought[0].G.ID}, &ok)
		if ok.G.Payment != "PAID" || ok.G.Remaining != "1000" {
			t.Fatalf("confirmPayment = %+v; want PAID with 1000", ok.G)
		}
		var failed struct {
			G grantT `json:"failPayment"`
		}
		e.must(`mutation($g: ID!) { failPayment(grantId: $g, reason: "card declined") { id payment remaining } }`, map[string]any{"g": bought[1].G.ID}, &failed)
		if failed.G.Payment != "FAILED" || failed.G.Remaining != "0" {
			t.Fatalf("failPayment = %+v; want FAILED with 0", failed.G)
		}
		_, errs = e.do(confirm, map[string]any{"g": bought[1].G.ID})
		wantErr(t, "confirming a failed payment", errs, "CONFLICT")
		e.must(balance, map[string]any{"p": pool}, &bal)
		if bal.P.B.Pending != "0" || bal.P.B.Available == before {
			t.Fatalf("balance %+v after confirm and fail (available before %s); want 1000 more, nothing pending", bal.P.B, before)
		}
		e.verify("after payments confirmed and failed")
	})
}
