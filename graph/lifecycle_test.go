package graph_test

// End-to-end tests of the lifecycle API (lifecycle.graphqls): plans,
// subscriptions, period closes, on-demand purchases, charges, run
// reservations, their bad input and who may call them. Like api_test.go,
// every request goes through the real HTTP handler on a fresh PostgreSQL and
// a fresh SQLite database each (testdb.Each), and the top-level tests are not
// parallel (only the per-dialect subtests are).
//
// These reuse api_test.go's harness (newEnv, e.do, e.must, wantErr, wantExt,
// e.newOrg, e.publishPricing, e.snapshot/unchanged, checkBalance, ...). The
// register published by publishPricing prices agent.run at 4 credits, and its
// BURN policy charges weight * quantity on success.

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// ---------------------------------------------------------------------------
// Harness

// lcClock is a settable service clock (newEnv's default clock is fixed).
type lcClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lcClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lcClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// lcEnv builds an env whose service clock is a settable one starting at
// testNow.
func lcEnv(t *testing.T, db *store.DB) (*env, *lcClock) {
	t.Helper()
	c := &lcClock{t: testNow}
	return newEnv(t, db, ledger.WithClock(c.now)), c
}

// lcAs is a copy of e that sends key (instead of the operator's) and
// reports to t.
func (e *env) lcAs(t *testing.T, key string) *env {
	c := *e
	c.t, c.key = t, key
	return &c
}

// lcRows counts every table a lifecycle request may write.
func (e *env) lcRows() map[string]int {
	e.t.Helper()
	ctx := context.Background()
	c := e.db.Client
	out := map[string]int{}
	for name, count := range map[string]func(context.Context) (int, error){
		"organizations":       c.Organization.Query().Count,
		"pools":               c.Pool.Query().Count,
		"grants":              c.Grant.Query().Count,
		"ledgerEntries":       c.LedgerEntry.Query().Count,
		"usageEvents":         c.UsageEvent.Query().Count,
		"plans":               c.Plan.Query().Count,
		"subscriptions":       c.Subscription.Query().Count,
		"subscriptionPeriods": c.SubscriptionPeriod.Query().Count,
		"charges":             c.Charge.Query().Count,
		"holds":               c.Hold.Query().Count,
		"alerts":              c.Alert.Query().Count,
		"apiKeys":             c.APIKey.Query().Count,
		"auditEntries":        c.AuditEntry.Query().Count,
	} {
		n, err := count(ctx)
		if err != nil {
			e.t.Fatalf("count %s: %v", name, err)
		}
		out[name] = n
	}
	return out
}

// lcSameRows asserts that no row was written since before.
func (e *env) lcSameRows(what string, before map[string]int) {
	e.t.Helper()
	if after := e.lcRows(); !reflect.DeepEqual(before, after) {
		e.t.Errorf("%s wrote rows: before %v, after %v", what, before, after)
	}
}

// lcRowsDelta asserts how many rows of each named table were written since
// before (tables not named: none).
func (e *env) lcRowsDelta(what string, before map[string]int, want map[string]int) {
	e.t.Helper()
	after := e.lcRows()
	for name, n := range after {
		if got := n - before[name]; got != want[name] {
			e.t.Errorf("%s: %d %s rows written, want %d", what, got, name, want[name])
		}
	}
}

func lcTime(t *testing.T, what, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %q is not an RFC 3339 time: %v", what, s, err)
	}
	return v
}

func lcSameTime(t *testing.T, what string, got *string, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil:
		t.Errorf("%s = null, want %s", what, want.Format(time.RFC3339))
	case want == nil:
		t.Errorf("%s = %s, want null", what, *got)
	default:
		if g := lcTime(t, what, *got); !g.Equal(*want) {
			t.Errorf("%s = %s, want %s", what, *got, want.Format(time.RFC3339))
		}
	}
}

func lcStr(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

// Plans and subscriptions.

const lcPlanFields = `id name period includedCredits pricePerCredit platformFee currency registerName
  overageMode overagePrice rolloverMode rolloverCap onDemandPrice onDemandExpiryDays
  autoTopUpThreshold autoTopUpCredits autoTopUpCap borrowLimit createdAt`

const (
	lqCreatePlan = `mutation($in: PlanInput!) { createPlan(input: $in) { ` + lcPlanFields + ` } }`
	lqPlans      = `query { plans { ` + lcPlanFields + ` } }`
	lqSubscribe  = `mutation($org: ID!, $plan: ID!, $at: Time!, $tz: String, $commitment: Decimal) {
  subscribe(organizationId: $org, planId: $plan, startsAt: $at, timeZone: $tz, commitment: $commitment) {
    id organization { id } plan { id name } startsAt commitment registerVersion endsAt termPeriods autoRenew timeZone nextPeriodAt } }`
	lqOrgSub = `query($id: ID!) { organization(id: $id) { id subscription {
    id plan { id name } startsAt commitment endsAt autoRenew timeZone nextPeriodAt } } }`
	lqClose    = `mutation($at: Time!) { runPeriodClose(asOf: $at) { subscriptionsClosed expired rolledOver allocated } }`
	lqPurchase = `mutation($pool: ID!, $credits: Decimal!) {
  purchaseCredits(poolId: $pool, credits: $credits) { id creditType amount remaining unitPrice expiresAt memo pool { id } } }`
	lqCharges = `query($org: ID, $first: Int, $after: String) {
  charges(organizationId: $org, first: $first, after: $after) {
    edges { cursor node { id organizationId kind credits amount currency subscriptionId periodStart usageEventId grantId memo createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`
	lqRecordRun = `mutation($in: UsageInput!) { recordUsage(input: $in) {
  decision credits overage reserved duplicate reason reasonCode
  draws { grant { id } amount }
  event { id idempotencyKey status runId credits decision } } }`
)

type lcPlanT struct {
	ID                 string  `json:"id"`
	Name               string  `json:"name"`
	Period             string  `json:"period"`
	IncludedCredits    string  `json:"includedCredits"`
	PricePerCredit     string  `json:"pricePerCredit"`
	PlatformFee        string  `json:"platformFee"`
	Currency           string  `json:"currency"`
	RegisterName       string  `json:"registerName"`
	OverageMode        string  `json:"overageMode"`
	OveragePrice       *string `json:"overagePrice"`
	RolloverMode       string  `json:"rolloverMode"`
	RolloverCap        *string `json:"rolloverCap"`
	OnDemandPrice      *string `json:"onDemandPrice"`
	OnDemandExpiryDays *int    `json:"onDemandExpiryDays"`
	AutoTopUpThreshold *string `json:"autoTopUpThreshold"`
	AutoTopUpCredits   *string `json:"autoTopUpCredits"`
	AutoTopUpCap       *int    `json:"autoTopUpCap"`
	BorrowLimit        *string `json:"borrowLimit"`
	CreatedAt          string  `json:"createdAt"`
}

type lcSubT struct {
	ID           string `json:"id"`
	Organization idRef  `json:"organization"`
	Plan         struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"plan"`
	StartsAt        string  `json:"startsAt"`
	Commitment      string  `json:"commitment"`
	RegisterVersion *int    `json:"registerVersion"`
	EndsAt          *string `json:"endsAt"`
	TermPeriods     *int    `json:"termPeriods"`
	AutoRenew       bool    `json:"autoRenew"`
	TimeZone        string  `json:"timeZone"`
	NextPeriodAt    *string `json:"nextPeriodAt"`
}

type lcReportT struct {
	SubscriptionsClosed int    `json:"subscriptionsClosed"`
	Expired             string `json:"expired"`
	RolledOver          string `json:"rolledOver"`
	Allocated           string `json:"allocated"`
}

func (r lcReportT) String() string {
	return fmt.Sprintf("%d %s %s %s", r.SubscriptionsClosed, r.Expired, r.RolledOver, r.Allocated)
}

type lcGrantT struct {
	ID         string  `json:"id"`
	CreditType string  `json:"creditType"`
	Amount     string  `json:"amount"`
	Remaining  string  `json:"remaining"`
	UnitPrice  string  `json:"unitPrice"`
	ExpiresAt  *string `json:"expiresAt"`
	Memo       *string `json:"memo"`
	Pool       idRef   `json:"pool"`
}

type lcChargeT struct {
	ID             string  `json:"id"`
	OrganizationID string  `json:"organizationId"`
	Kind           string  `json:"kind"`
	Credits        string  `json:"credits"`
	Amount         string  `json:"amount"`
	Currency       string  `json:"currency"`
	SubscriptionID *string `json:"subscriptionId"`
	PeriodStart    *string `json:"periodStart"`
	UsageEventID   *string `json:"usageEventId"`
	GrantID        *string `json:"grantId"`
	Memo           *string `json:"memo"`
	CreatedAt      string  `json:"createdAt"`
}

type lcChargePageT struct {
	Edges []struct {
		Cursor string    `json:"cursor"`
		Node   lcChargeT `json:"node"`
	} `json:"edges"`
	PageInfo pageInfoT `json:"pageInfo"`
}

type lcRunResultT struct {
	Decision   string  `json:"decision"`
	Credits    string  `json:"credits"`
	Overage    string  `json:"overage"`
	Reserved   string  `json:"reserved"`
	Duplicate  bool    `json:"duplicate"`
	Reason     *string `json:"reason"`
	ReasonCode *string `json:"reasonCode"`
	Draws      []drawT `json:"draws"`
	Event      struct {
		ID             string  `json:"id"`
		IdempotencyKey string  `json:"idempotencyKey"`
		Status         string  `json:"status"`
		RunID          *string `json:"runId"`
		Credits        string  `json:"credits"`
		Decision       string  `json:"decision"`
	} `json:"event"`
}

// lcPlanInput is the brief's plan: monthly, 100 included credits at 0.01, a
// platform fee of 5, SOFT overage at 0.02, CAPPED rollover of 50, on-demand
// credits at 0.015.
func lcPlanInput(name string) map[string]any {
	return map[string]any{
		"name": name, "period": "MONTH", "includedCredits": "100", "pricePerCredit": "0.01", "platformFee": "5",
		"registerName": "default", "overageMode": "SOFT", "overagePrice": "0.02",
		"rolloverMode": "CAPPED", "rolloverCap": "50", "onDemandPrice": "0.015",
	}
}

// lcHardPlan is a monthly HARD plan without rollover and without on-demand
// credits.
func lcHardPlan(name string) map[string]any {
	return map[string]any{
		"name": name, "period": "MONTH", "includedCredits": "100", "pricePerCredit": "0.01", "platformFee": "5",
		"registerName": "default", "overageMode": "HARD", "rolloverMode": "NONE",
	}
}

func (e *env) lcCreatePlan(in map[string]any) lcPlanT {
	e.t.Helper()
	var out struct {
		R lcPlanT `json:"createPlan"`
	}
	e.must(lqCreatePlan, map[string]any{"in": in}, &out)
	if out.R.ID == "" || out.R.Name != in["name"] {
		e.t.Fatalf("createPlan = %+v, want a plan named %v", out.R, in["name"])
	}
	return out.R
}

func (e *env) lcSubscribe(org, plan string, at time.Time) lcSubT {
	e.t.Helper()
	var out struct {
		R lcSubT `json:"subscribe"`
	}
	e.must(lqSubscribe, map[string]any{"org": org, "plan": plan, "at": at.Format(time.RFC3339Nano)}, &out)
	if out.R.ID == "" || out.R.Organization.ID != org || out.R.Plan.ID != plan {
		e.t.Fatalf("subscribe = %+v, want organization %s on plan %s", out.R, org, plan)
	}
	return out.R
}

func (e *env) lcClose(at time.Time) lcReportT {
	e.t.Helper()
	var out struct {
		R lcReportT `json:"runPeriodClose"`
	}
	e.must(lqClose, map[string]any{"at": at.Format(time.RFC3339Nano)}, &out)
	return out.R
}

func (e *env) lcPurchase(pool, credits string) lcGrantT {
	e.t.Helper()
	var out struct {
		R lcGrantT `json:"purchaseCredits"`
	}
	e.must(lqPurchase, map[string]any{"pool": pool, "credits": credits}, &out)
	return out.R
}

// lcCharges pages through charges (org "" = no organizationId argument)
// with first: n and returns the charges, newest first, and the pages.
func (e *env) lcCharges(org string, n int) ([]lcChargeT, []lcChargePageT) {
	e.t.Helper()
	var charges []lcChargeT
	var pages []lcChargePageT
	var after any
	for page := 0; ; page++ {
		if page > 100 {
			e.t.Fatalf("charges(%s) did not end after 100 pages", org)
		}
		vars := map[string]any{"first": n, "after": after}
		if org != "" {
			vars["org"] = org
		}
		var out struct {
			C lcChargePageT `json:"charges"`
		}
		e.must(lqCharges, vars, &out)
		if len(out.C.Edges) > n {
			e.t.Fatalf("charges page %d has %d edges, want at most %d", page, len(out.C.Edges), n)
		}
		for _, ed := range out.C.Edges {
			charges = append(charges, ed.Node)
		}
		pages = append(pages, out.C)
		if !out.C.PageInfo.HasNextPage {
			return charges, pages
		}
		if out.C.PageInfo.EndCursor == nil {
			e.t.Fatalf("charges page %d: hasNextPage without endCursor", page)
		}
		after = *out.C.PageInfo.EndCursor
	}
}

// lcWantCharge is what a charge must be; "" fields of references are null.
type lcWantCharge struct {
	org, kind, credits, amount string
	sub, event, grant          string // ids; "" = null
	periodStart                *time.Time
	memo                       string // "" = not checked
}

func lcCheckCharges(t *testing.T, what string, got []lcChargeT, want ...lcWantCharge) {
	t.Helper()
	if len(got) != len(want) {
		var kinds []string
		for _, c := range got {
			kinds = append(kinds, c.Kind+" "+c.Amount)
		}
		t.Errorf("%s: %d charges %v, want %d", what, len(got), kinds, len(want))
		return
	}
	ref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	var prev int64 = 1 << 62
	for i, c := range got {
		w := want[i]
		where := fmt.Sprintf("%s: charge %d (%s)", what, i, c.Kind)
		var id int64
		fmt.Sscan(c.ID, &id)
		if id == 0 || id >= prev {
			t.Errorf("%s: id %s is not older than the charge before it (newest first)", where, c.ID)
		}
		prev = id
		if c.OrganizationID != w.org || c.Kind != w.kind || c.Credits != w.credits || c.Amount != w.amount || c.Currency != "USD" {
			t.Errorf("%s = org %s %s credits %q amount %q %s, want org %s %s credits %q amount %q USD",
				where, c.OrganizationID, c.Kind, c.Credits, c.Amount, c.Currency, w.org, w.kind, w.credits, w.amount)
		}
		if ref(c.SubscriptionID) != w.sub || ref(c.UsageEventID) != w.event || ref(c.GrantID) != w.grant {
			t.Errorf("%s: subscriptionId/usageEventId/grantId = %s/%s/%s, want %q/%q/%q", where,
				lcStr(c.SubscriptionID), lcStr(c.UsageEventID), lcStr(c.GrantID), w.sub, w.event, w.grant)
		}
		lcSameTime(t, where+" periodStart", c.PeriodStart, w.periodStart)
		if w.memo != "" && lcStr(c.Memo) != w.memo {
			t.Errorf("%s: memo = %s, want %q", where, lcStr(c.Memo), w.memo)
		}
		if c.CreatedAt == "" {
			t.Errorf("%s: createdAt is empty", where)
		}
	}
}

func (e *env) lcRun(in map[string]any) lcRunResultT {
	e.t.Helper()
	var out struct {
		R lcRunResultT `json:"recordUsage"`
	}
	e.must(lqRecordRun, map[string]any{"in": in}, &out)
	return out.R
}

// lcBalance asserts a pool's balance, reserved and overage included.
func lcBalance(t *testing.T, what string, got balanceT, available, reserved, overage string, byType ...typeBalanceT) {
	t.Helper()
	if got.Available != available || got.Reserved != reserved || got.Overage != overage {
		t.Errorf("%s: balance available/reserved/overage = %q/%q/%q, want %q/%q/%q",
			what, got.Available, got.Reserved, got.Overage, available, reserved, overage)
	}
	if byType == nil {
		byType = []typeBalanceT{}
	}
	if got.ByType == nil {
		got.ByType = []typeBalanceT{}
	}
	if !reflect.DeepEqual(got.ByType, byType) {
		t.Errorf("%s: balance.byType = %+v, want %+v", what, got.ByType, byType)
	}
}

// ---------------------------------------------------------------------------
// 1. Plan, subscription, overage, charges, period close, on-demand purchase

func TestLifecyclePlanSubscriptionFlow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, clock := lcEnv(t, db)
		e.publishPricing()
		orgA, poolA := e.newOrg("Acme", "")
		orgB, poolB := e.newOrg("Globex", "")

		// createPlan answers every field; plans lists the same.
		in := lcPlanInput("team-soft")
		created := e.lcCreatePlan(in)
		want := lcPlanT{ID: created.ID, Name: "team-soft", Period: "MONTH", IncludedCredits: "100", PricePerCredit: "0.01",
			PlatformFee: "5", Currency: "USD", RegisterName: "default", OverageMode: "SOFT", OveragePrice: ptr("0.02"),
			RolloverMode: "CAPPED", RolloverCap: ptr("50"), OnDemandPrice: ptr("0.015"), CreatedAt: created.CreatedAt}
		if !reflect.DeepEqual(created, want) {
			t.Errorf("createPlan = %+v,\nwant %+v", created, want)
		}
		if at := lcTime(t, "plan createdAt", created.CreatedAt); !at.Equal(testNow) {
			t.Errorf("plan createdAt = %s, want the service clock %s", created.CreatedAt, testNow.Format(time.RFC3339))
		}
		var plans struct {
			Plans []lcPlanT `json:"plans"`
		}
		e.must(lqPlans, nil, &plans)
		if len(plans.Plans) != 1 || !reflect.DeepEqual(plans.Plans[0], want) {
			t.Errorf("plans = %+v,\nwant [%+v]", plans.Plans, want)
		}

		// subscribe(startsAt: now): the first period opens at once.
		rows := e.lcRows()
		sub := e.lcSubscribe(orgA, created.ID, testNow)
		e.lcRowsDelta("subscribe", rows, map[string]int{"subscriptions": 1, "subscriptionPeriods": 1, "grants": 1,
			"ledgerEntries": 1, "charges": 1, "auditEntries": 1})
		nextPeriod := testNow.AddDate(0, 1, 0) // 2026-04-02T12:00:00Z
		if sub.Plan.Name != "team-soft" || sub.Commitment != "0" || !sub.AutoRenew || sub.TimeZone != "UTC" ||
			sub.EndsAt != nil || sub.TermPeriods != nil || sub.RegisterVersion != nil {
			t.Errorf("subscribe = %+v, want plan team-soft, commitment \"0\", autoRenew, UTC, no end, no term, no pinned version", sub)
		}
		lcSameTime(t, "subscribe startsAt", &sub.StartsAt, &testNow)
		lcSameTime(t, "subscribe nextPeriodAt", sub.NextPeriodAt, &nextPeriod)

		var orgSub struct {
			Org struct {
				ID           string  `json:"id"`
				Subscription *lcSubT `json:"subscription"`
			} `json:"organization"`
		}
		e.must(lqOrgSub, map[string]any{"id": orgA}, &orgSub)
		if s := orgSub.Org.Subscription; s == nil {
			t.Fatalf("organization(%s).subscription = null, want subscription %s", orgA, sub.ID)
		} else {
			if s.ID != sub.ID || s.Plan.Name != "team-soft" || s.Commitment != "0" {
				t.Errorf("organization.subscription = %+v, want %s on team-soft, commitment \"0\"", s, sub.ID)
			}
			lcSameTime(t, "organization.subscription startsAt", &s.StartsAt, &testNow)
			lcSameTime(t, "organization.subscription nextPeriodAt", s.NextPeriodAt, &nextPeriod)
		}
		var noSub struct {
			Org struct {
				Subscription *lcSubT `json:"subscription"`
			} `json:"organization"`
		}
		e.must(lqOrgSub, map[string]any{"id": orgB}, &noSub)
		if noSub.Org.Subscription != nil {
			t.Errorf("organization(%s).subscription = %+v before subscribing, want null", orgB, noSub.Org.Subscription)
		}
		lcBalance(t, "after subscribe", e.balance(poolA), "100", "0", "0", tb("SUBSCRIPTION", "100"))

		subB := e.lcSubscribe(orgB, created.ID, testNow)

		// Within the allocation: 4 x 5 = 20 credits.
		r1 := e.record(map[string]any{"idempotencyKey": "u1", "organizationId": orgA, "action": "agent.run", "quantity": "5"})
		checkAllowed(t, "within the allocation", r1, "u1", poolA, "20")
		lcBalance(t, "after u1", e.balance(poolA), "80", "0", "0", tb("SUBSCRIPTION", "80"))

		// Beyond it under SOFT: 4 x 25 = 100 credits, 80 drawn, 20 overage.
		r2 := e.record(map[string]any{"idempotencyKey": "u2", "organizationId": orgA, "action": "agent.run", "quantity": "25"})
		if r2.Decision != "ALLOWED" || r2.Credits != "100" || r2.Overage != "20" || r2.Duplicate || r2.Event.Credits != "100" {
			t.Errorf("usage beyond the balance (SOFT) = %s credits %q overage %q duplicate %v (event credits %q, reason %s), want ALLOWED 100 with 20 overage",
				r2.Decision, r2.Credits, r2.Overage, r2.Duplicate, r2.Event.Credits, lcStr(r2.Reason))
		}
		if len(r2.Draws) != 1 || r2.Draws[0].Amount != "80" {
			t.Errorf("usage beyond the balance: draws = %+v, want the 80 left of the SUBSCRIPTION grant", r2.Draws)
		}
		lcBalance(t, "in overage", e.balance(poolA), "0", "0", "20")

		// Globex uses 20 of its 100: 80 are left for the period close.
		rB := e.record(map[string]any{"idempotencyKey": "g1", "organizationId": orgB, "action": "agent.run", "quantity": "5"})
		checkAllowed(t, "Globex", rB, "g1", poolB, "20")

		// charges: newest first, one a page.
		period0 := testNow
		charges, pages := e.lcCharges(orgA, 1)
		lcCheckCharges(t, "charges after overage", charges,
			lcWantCharge{org: orgA, kind: "OVERAGE", credits: "20", amount: "0.4", sub: sub.ID, event: r2.Event.ID, memo: "agent.run"},
			lcWantCharge{org: orgA, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: sub.ID, periodStart: &period0, memo: "team-soft period 0"},
		)
		if len(pages) != 2 {
			t.Errorf("charges(first: 1) took %d pages, want 2", len(pages))
		} else {
			if !pages[0].PageInfo.HasNextPage || pages[0].PageInfo.HasPreviousPage {
				t.Errorf("charges page 0 pageInfo = %+v, want hasNextPage, no previous page", pages[0].PageInfo)
			}
			if pages[1].PageInfo.HasNextPage || !pages[1].PageInfo.HasPreviousPage {
				t.Errorf("charges page 1 pageInfo = %+v, want a previous page, no next page", pages[1].PageInfo)
			}
			for i, p := range pages {
				if len(p.Edges) == 1 && (lcStr(p.PageInfo.StartCursor) != p.Edges[0].Cursor || lcStr(p.PageInfo.EndCursor) != p.Edges[0].Cursor) {
					t.Errorf("charges page %d: start/end cursor %s/%s, want the edge's %s", i,
						lcStr(p.PageInfo.StartCursor), lcStr(p.PageInfo.EndCursor), p.Edges[0].Cursor)
				}
			}
		}
		// A ledger cursor is not a charge cursor.
		_, errs := e.do(lqCharges, map[string]any{"org": orgA, "first": 1, "after": "bGVkZ2VyOjE="}) // "ledger:1"
		wantExt(t, "charges with a ledger cursor", wantErr(t, "charges with a ledger cursor", errs, "VALIDATION"), "field", "after")
		chargesB, _ := e.lcCharges(orgB, 50)
		lcCheckCharges(t, "Globex charges", chargesB,
			lcWantCharge{org: orgB, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: subB.ID, periodStart: &period0})

		// A close before the boundary opens nothing.
		clock.set(nextPeriod.Add(-time.Second))
		if rep := e.lcClose(nextPeriod.Add(-time.Second)); rep.String() != "0 0 0 0" {
			t.Errorf("runPeriodClose a second before the boundary = %s, want 0 0 0 0", rep)
		}

		// One month on: period 1 opens for both subscriptions. Acme had
		// nothing left; Globex's 80 roll over up to the cap of 50, and 30
		// expire. Each gets 100 more.
		clock.set(nextPeriod)
		rows = e.lcRows()
		rep := e.lcClose(nextPeriod)
		if want := (lcReportT{SubscriptionsClosed: 2, Expired: "30", RolledOver: "50", Allocated: "200"}); rep != want {
			t.Errorf("runPeriodClose after a month = %+v, want %+v", rep, want)
		}
		e.lcRowsDelta("period close", rows, map[string]int{
			"subscriptionPeriods": 2, "charges": 2,
			"grants":        3, // two SUBSCRIPTION allocations, one ROLLOVER
			"ledgerEntries": 5, // Globex: EXPIRE, ROLLOVER_OUT, ROLLOVER_IN, GRANT; Acme: GRANT
		})
		lcBalance(t, "Acme in period 1", e.balance(poolA), "100", "0", "0", tb("SUBSCRIPTION", "100"))
		lcBalance(t, "Globex in period 1", e.balance(poolB), "150", "0", "0", tb("ROLLOVER", "50"), tb("SUBSCRIPTION", "100"))
		e.must(lqOrgSub, map[string]any{"id": orgA}, &orgSub)
		period2 := testNow.AddDate(0, 2, 0)
		if s := orgSub.Org.Subscription; s == nil {
			t.Errorf("organization.subscription = null in period 1")
		} else {
			lcSameTime(t, "nextPeriodAt in period 1", s.NextPeriodAt, &period2)
		}

		// Idempotent: again, nothing.
		rows = e.lcRows()
		if rep := e.lcClose(nextPeriod); rep.String() != "0 0 0 0" {
			t.Errorf("runPeriodClose again = %s, want 0 0 0 0", rep)
		}
		e.lcSameRows("second period close", rows)

		// An on-demand purchase at the plan's on-demand price: 1000 x 0.015 = 15.
		rows = e.lcRows()
		g := e.lcPurchase(poolA, "1000")
		if g.ID == "" || g.CreditType != "ON_DEMAND" || g.Amount != "1000" || g.Remaining != "1000" || g.UnitPrice != "0.015" ||
			g.ExpiresAt != nil || g.Pool.ID != poolA {
			t.Errorf("purchaseCredits = %+v, want an ON_DEMAND grant of 1000 at 0.015 without expiry in pool %s", g, poolA)
		}
		e.lcRowsDelta("purchaseCredits", rows, map[string]int{"grants": 1, "ledgerEntries": 1, "charges": 1, "auditEntries": 1})
		lcBalance(t, "after the purchase", e.balance(poolA), "1100", "0", "0", tb("SUBSCRIPTION", "100"), tb("ON_DEMAND", "1000"))

		charges, _ = e.lcCharges(orgA, 2)
		lcCheckCharges(t, "charges at the end", charges,
			lcWantCharge{org: orgA, kind: "ON_DEMAND", credits: "1000", amount: "15", sub: sub.ID, grant: g.ID},
			lcWantCharge{org: orgA, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: sub.ID, periodStart: &nextPeriod, memo: "team-soft period 1"},
			lcWantCharge{org: orgA, kind: "OVERAGE", credits: "20", amount: "0.4", sub: sub.ID, event: r2.Event.ID},
			lcWantCharge{org: orgA, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: sub.ID, periodStart: &period0},
		)
		all, _ := e.lcCharges("", 500)
		if len(all) != 6 {
			t.Errorf("charges() as OPERATOR = %d charges, want all 6 of both organisations", len(all))
		}
		e.verify("lifecycle flow")
	})
}

// ---------------------------------------------------------------------------
// 2. Reservations: a run's STARTED event holds, its terminal event settles

func TestLifecycleReservations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		od := e.grant(pool, "ON_DEMAND", "100", nil)
		run := func(key, runID, status string) map[string]any {
			return map[string]any{"idempotencyKey": key, "organizationId": org, "action": "agent.run",
				"runId": runID, "status": status, "quantity": "5"}
		}

		// STARTED holds the expected cost, 4 x 5 = 20, and charges nothing.
		rows := e.lcRows()
		start := e.lcRun(run("r1-start", "r1", "STARTED"))
		if start.Decision != "ALLOWED" || start.Reserved != "20" || start.Credits != "0" || start.Overage != "0" || start.Duplicate {
			t.Errorf("STARTED = %s reserved %q credits %q overage %q duplicate %v (reason %s), want ALLOWED, 20 reserved, 0 credits",
				start.Decision, start.Reserved, start.Credits, start.Overage, start.Duplicate, lcStr(start.Reason))
		}
		if start.Event.Status != "STARTED" || lcStr(start.Event.RunID) != "r1" {
			t.Errorf("STARTED event = %+v, want status STARTED, runId r1", start.Event)
		}
		e.lcRowsDelta("STARTED", rows, map[string]int{"usageEvents": 1, "holds": 1, "ledgerEntries": 1})
		lcBalance(t, "run held", e.balance(pool), "80", "20", "0", tb("ON_DEMAND", "80"))

		// A second STARTED of the same run: RUN_STARTED.
		before := e.snapshot(pool)
		rows = e.lcRows()
		_, errs := e.do(lqRecordRun, map[string]any{"in": run("r1-start-again", "r1", "STARTED")})
		wantErr(t, "second STARTED", errs, "RUN_STARTED")
		e.lcSameRows("second STARTED", rows)
		e.unchanged("second STARTED", before, pool)

		// SUCCEEDED settles: the hold goes back and the run is burnt.
		rows = e.lcRows()
		endIn := run("r1-end", "r1", "SUCCEEDED")
		end := e.lcRun(endIn)
		if end.Decision != "ALLOWED" || end.Credits != "20" || end.Reserved != "0" || end.Overage != "0" || end.Duplicate {
			t.Errorf("SUCCEEDED = %s credits %q reserved %q overage %q duplicate %v (reason %s), want ALLOWED, 20 credits, 0 reserved",
				end.Decision, end.Credits, end.Reserved, end.Overage, end.Duplicate, lcStr(end.Reason))
		}
		checkDraws(t, "SUCCEEDED", end.Draws, d(od, "20"))
		e.lcRowsDelta("SUCCEEDED", rows, map[string]int{"usageEvents": 1, "ledgerEntries": 2}) // RELEASE + BURN
		lcBalance(t, "run settled", e.balance(pool), "80", "0", "0", tb("ON_DEMAND", "80"))

		var kinds []string
		entries, _ := e.ledgerAll(pool, 50)
		for _, en := range entries {
			kinds = append(kinds, en.Kind+" "+en.Amount)
		}
		// The terminal event's RELEASE and BURN are written in one
		// transaction; their relative order is not part of the contract.
		if len(kinds) == 4 {
			sort.Strings(kinds[:2])
		}
		if got, want := strings.Join(kinds, ", "), "BURN -20, RELEASE 20, HOLD -20, GRANT 100"; got != want {
			t.Errorf("ledger (newest first) = %s, want %s", got, want)
		}

		before = e.snapshot(pool)
		rows = e.lcRows()
		// A terminal event of a run that never started: UNKNOWN_RUN.
		_, errs = e.do(lqRecordRun, map[string]any{"in": run("ghost-end", "ghost", "SUCCEEDED")})
		wantExt(t, "unknown run", wantErr(t, "unknown run", errs, "UNKNOWN_RUN"), "field", "runId")
		// A second terminal event: RUN_SETTLED.
		_, errs = e.do(lqRecordRun, map[string]any{"in": run("r1-end-again", "r1", "FAILED")})
		wantExt(t, "second terminal", wantErr(t, "second terminal", errs, "RUN_SETTLED"), "field", "runId")
		e.lcSameRows("refused run events", rows)
		e.unchanged("refused run events", before, pool)

		// Replaying the terminal event: its first result, nothing written.
		again := e.lcRun(endIn)
		if !again.Duplicate || again.Event.ID != end.Event.ID || again.Credits != "20" || again.Decision != "ALLOWED" || again.Reserved != "0" {
			t.Errorf("replayed SUCCEEDED = duplicate %v event %s credits %q %s reserved %q, want duplicate of event %s, 20 credits, 0 reserved",
				again.Duplicate, again.Event.ID, again.Credits, again.Decision, again.Reserved, end.Event.ID)
		}
		checkDraws(t, "replayed SUCCEEDED", again.Draws, end.Draws...)
		// Replaying the STARTED event: its first result too.
		startAgain := e.lcRun(run("r1-start", "r1", "STARTED"))
		if !startAgain.Duplicate || startAgain.Event.ID != start.Event.ID || startAgain.Credits != "0" {
			t.Errorf("replayed STARTED = duplicate %v event %s credits %q, want a duplicate of event %s, 0 credits",
				startAgain.Duplicate, startAgain.Event.ID, startAgain.Credits, start.Event.ID)
		}
		// BUG (engine/ledger/usage.go resultOf/loadDraws): a replayed result
		// is rebuilt from the stored event without its hold, so a replayed
		// STARTED answers reserved "0" instead of its first result's "20".
		if startAgain.Reserved != start.Reserved {
			t.Errorf("replayed STARTED: reserved = %q, want the first result's %q (duplicate means \"this is the first result\")", startAgain.Reserved, start.Reserved)
		}
		e.lcSameRows("replays", rows)
		e.unchanged("replays", before, pool)
	})
}

// ---------------------------------------------------------------------------
// 3. Bad input: the specific code, and nothing written

func TestLifecycleBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		orgA, poolA := e.newOrg("Acme", "")
		orgB, poolB := e.newOrg("Globex", "")
		hard := e.lcCreatePlan(lcHardPlan("hard"))
		e.lcSubscribe(orgA, hard.ID, testNow)
		pools := []string{poolA, poolB}

		planWith := func(name string, kv ...any) map[string]any {
			in := lcPlanInput(name)
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(in, kv[i].(string))
				} else {
					in[kv[i].(string)] = kv[i+1]
				}
			}
			return in
		}
		at := func(t time.Time) string { return t.Format(time.RFC3339Nano) }

		cases := []struct {
			name  string
			query string
			vars  map[string]any
			code  string
			field string // extensions.field; "" = not checked
		}{
			{name: "CAPPED without rolloverCap", query: lqCreatePlan, code: "VALIDATION", field: "rolloverCap",
				vars: map[string]any{"in": planWith("capped", "rolloverCap", nil)}},
			{name: "rolloverCap without CAPPED", query: lqCreatePlan, code: "VALIDATION", field: "rolloverCap",
				vars: map[string]any{"in": planWith("uncapped", "rolloverMode", "NONE")}},
			{name: "SOFT without overagePrice", query: lqCreatePlan, code: "VALIDATION", field: "overagePrice",
				vars: map[string]any{"in": planWith("soft", "overagePrice", nil)}},
			// The brief expected AUTO_TOP_UP to be refused as not available;
			// this version implements it (HEAD 81786af), so what is refused is
			// an AUTO_TOP_UP plan without its required settings.
			{name: "AUTO_TOP_UP without its settings", query: lqCreatePlan, code: "VALIDATION", field: "autoTopUpThreshold",
				vars: map[string]any{"in": planWith("topup", "overageMode", "AUTO_TOP_UP", "overagePrice", nil)}},
			{name: "negative includedCredits", query: lqCreatePlan, code: "VALIDATION", field: "includedCredits",
				vars: map[string]any{"in": planWith("negative", "includedCredits", "-1")}},
			{name: "a plan name taken", query: lqCreatePlan, code: "CONFLICT",
				vars: map[string]any{"in": lcHardPlan("hard")}},
			{name: "overlapping subscription", query: lqSubscribe, code: "SUBSCRIPTION_OVERLAP",
				vars: map[string]any{"org": orgA, "plan": hard.ID, "at": at(testNow.Add(24 * time.Hour))}},
			{name: "subscribe to an unknown plan", query: lqSubscribe, code: "NOT_FOUND",
				vars: map[string]any{"org": orgB, "plan": "999999", "at": at(testNow)}},
			{name: "subscribe in time zone Mars/Olympus", query: lqSubscribe, code: "VALIDATION", field: "timeZone",
				vars: map[string]any{"org": orgB, "plan": hard.ID, "at": at(testNow), "tz": "Mars/Olympus"}},
			{name: "negative commitment", query: lqSubscribe, code: "VALIDATION", field: "commitment",
				vars: map[string]any{"org": orgB, "plan": hard.ID, "at": at(testNow), "commitment": "-1"}},
			{name: "purchase under a plan without onDemandPrice", query: lqPurchase, code: "NO_ON_DEMAND_PRICE",
				vars: map[string]any{"pool": poolA, "credits": "10"}},
			{name: "purchase without a subscription", query: lqPurchase, code: "NO_ON_DEMAND_PRICE",
				vars: map[string]any{"pool": poolB, "credits": "10"}},
			{name: "purchase of 0 credits", query: lqPurchase, code: "VALIDATION", field: "credits",
				vars: map[string]any{"pool": poolA, "credits": "0"}},
			{name: "purchase of negative credits", query: lqPurchase, code: "VALIDATION", field: "credits",
				vars: map[string]any{"pool": poolA, "credits": "-5"}},
			{name: "purchase into an unknown pool", query: lqPurchase, code: "NOT_FOUND",
				vars: map[string]any{"pool": "999999", "credits": "10"}},
			{name: "period close in the future", query: lqClose, code: "VALIDATION", field: "asOf",
				vars: map[string]any{"at": at(testNow.Add(48 * time.Hour))}},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				e := e.lcAs(t, e.key)
				before := e.snapshot(pools...)
				rows := e.lcRows()
				data, errs := e.do(c.query, c.vars)
				ge := wantErr(t, c.name, errs, c.code)
				t.Logf("%s: %v", c.name, ge)
				if c.field != "" {
					wantExt(t, c.name, ge, "field", c.field)
				}
				if s := strings.TrimSpace(string(data)); s != "null" && s != "" {
					t.Errorf("%s: data = %s, want null", c.name, s)
				}
				e.lcSameRows(c.name, rows)
				e.unchanged(c.name, before, pools...)
			})
		}

		// The refused requests left things working: Globex subscribes,
		// the close (as of now) has nothing due, and a complete AUTO_TOP_UP
		// plan is accepted in this version.
		t.Run("still_works", func(t *testing.T) {
			e := e.lcAs(t, e.key)
			e.lcSubscribe(orgB, hard.ID, testNow)
			lcBalance(t, "Globex subscribed", e.balance(poolB), "100", "0", "0", tb("SUBSCRIPTION", "100"))
			if rep := e.lcClose(testNow); rep.String() != "0 0 0 0" {
				t.Errorf("runPeriodClose(now) = %s, want 0 0 0 0", rep)
			}
			p := e.lcCreatePlan(planWith("topup-ok", "overageMode", "AUTO_TOP_UP", "overagePrice", nil,
				"autoTopUpThreshold", "20", "autoTopUpCredits", "50", "autoTopUpCap", 2))
			if p.OverageMode != "AUTO_TOP_UP" || lcStr(p.AutoTopUpThreshold) != "20" || lcStr(p.AutoTopUpCredits) != "50" ||
				p.AutoTopUpCap == nil || *p.AutoTopUpCap != 2 {
				t.Errorf("AUTO_TOP_UP plan = %+v, want threshold 20, packs of 50, cap 2", p)
			}
			e.verify("after bad input")
		})
	})
}

// ---------------------------------------------------------------------------
// 4. Roles: ORG_ADMIN buys and reads its own; REVOPS reads everyone's

func TestLifecycleRoles(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		orgA, poolA := e.newOrg("Acme", "")
		orgB, poolB := e.newOrg("Globex", "")
		p := e.lcCreatePlan(lcPlanInput("team-soft"))
		subA := e.lcSubscribe(orgA, p.ID, testNow)
		subB := e.lcSubscribe(orgB, p.ID, testNow)

		newKey := func(name, role, org string) string {
			vars := map[string]any{"name": name, "role": role}
			if org != "" {
				vars["org"] = org
			}
			var out struct {
				R struct {
					Secret string `json:"secret"`
					Key    struct {
						Role         string `json:"role"`
						Organization *idRef `json:"organization"`
					} `json:"key"`
				} `json:"createApiKey"`
			}
			e.must(aqCreateKey, vars, &out)
			if out.R.Secret == "" || out.R.Key.Role != role {
				t.Fatalf("createApiKey(%s) = %+v, want a %s key with its secret", role, out.R.Key, role)
			}
			return out.R.Secret
		}
		adminKey := newKey("acme admin", "ORG_ADMIN", orgA)
		revopsKey := newKey("revops", "REVOPS", "")
		period0 := testNow

		t.Run("org_admin", func(t *testing.T) {
			a := e.lcAs(t, adminKey)
			op := e.lcAs(t, e.key)

			// Buys for its own organisation's pool.
			g := a.lcPurchase(poolA, "100")
			if g.CreditType != "ON_DEMAND" || g.Amount != "100" || g.UnitPrice != "0.015" || g.Pool.ID != poolA {
				t.Errorf("purchaseCredits as ORG_ADMIN = %+v, want ON_DEMAND 100 at 0.015 in pool %s", g, poolA)
			}
			lcBalance(t, "after the admin's purchase", a.balance(poolA), "200", "0", "0", tb("SUBSCRIPTION", "100"), tb("ON_DEMAND", "100"))

			// Reads its organisation's charges, with or without naming it.
			wantA := []lcWantCharge{
				{org: orgA, kind: "ON_DEMAND", credits: "100", amount: "1.5", sub: subA.ID, grant: g.ID},
				{org: orgA, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: subA.ID, periodStart: &period0},
			}
			own, _ := a.lcCharges("", 50)
			lcCheckCharges(t, "charges() as ORG_ADMIN", own, wantA...)
			named, _ := a.lcCharges(orgA, 1)
			lcCheckCharges(t, "charges(own organisation) as ORG_ADMIN", named, wantA...)
			// and its subscription.
			var orgSub struct {
				Org struct {
					Subscription *lcSubT `json:"subscription"`
				} `json:"organization"`
			}
			a.must(lqOrgSub, map[string]any{"id": orgA}, &orgSub)
			if orgSub.Org.Subscription == nil || orgSub.Org.Subscription.ID != subA.ID {
				t.Errorf("organization.subscription as ORG_ADMIN = %+v, want %s", orgSub.Org.Subscription, subA.ID)
			}

			// Not another organisation's.
			before := op.snapshot(poolA, poolB)
			rows := op.lcRows()
			_, errs := a.do(lqCharges, map[string]any{"org": orgB})
			wantErr(t, "charges(other organisation) as ORG_ADMIN", errs, "NOT_FOUND")
			_, errs = a.do(lqPurchase, map[string]any{"pool": poolB, "credits": "10"})
			wantErr(t, "purchaseCredits(other organisation's pool) as ORG_ADMIN", errs, "NOT_FOUND")

			// Not the operator's mutations.
			for _, c := range []struct {
				name, query string
				vars        map[string]any
			}{
				{"createPlan", lqCreatePlan, map[string]any{"in": lcHardPlan("admin-plan")}},
				{"subscribe", lqSubscribe, map[string]any{"org": orgA, "plan": p.ID, "at": testNow.AddDate(1, 0, 0).Format(time.RFC3339)}},
				{"runPeriodClose", lqClose, map[string]any{"at": testNow.Format(time.RFC3339)}},
			} {
				data, errs := a.do(c.query, c.vars)
				wantErr(t, c.name+" as ORG_ADMIN", errs, "FORBIDDEN")
				if s := strings.TrimSpace(string(data)); s != "null" && s != "" {
					t.Errorf("%s as ORG_ADMIN: data = %s, want null", c.name, s)
				}
			}
			op.lcSameRows("refused ORG_ADMIN requests", rows)
			op.unchanged("refused ORG_ADMIN requests", before, poolA, poolB)
		})

		t.Run("revops", func(t *testing.T) {
			r := e.lcAs(t, revopsKey)
			op := e.lcAs(t, e.key)
			all, _ := r.lcCharges("", 50)
			opAll, _ := op.lcCharges("", 50)
			if len(all) != 3 || !reflect.DeepEqual(all, opAll) {
				t.Errorf("charges() as REVOPS = %+v, want every organisation's 3 charges, as the operator sees them (%+v)", all, opAll)
			}
			orgs := map[string]int{}
			for _, c := range all {
				orgs[c.OrganizationID]++
			}
			if orgs[orgA] != 2 || orgs[orgB] != 1 {
				t.Errorf("charges() as REVOPS by organisation = %v, want %s: 2, %s: 1", orgs, orgA, orgB)
			}
			b, _ := r.lcCharges(orgB, 50)
			lcCheckCharges(t, "charges(Globex) as REVOPS", b,
				lcWantCharge{org: orgB, kind: "PLATFORM_FEE", credits: "0", amount: "5", sub: subB.ID, periodStart: &period0})
			a, _ := r.lcCharges(orgA, 50)
			if len(a) != 2 || a[0].Kind != "ON_DEMAND" || a[1].Kind != "PLATFORM_FEE" {
				t.Errorf("charges(Acme) as REVOPS = %+v, want ON_DEMAND then PLATFORM_FEE", a)
			}

			// REVOPS reads; it does not buy.
			rows := op.lcRows()
			_, errs := r.do(lqPurchase, map[string]any{"pool": poolA, "credits": "10"})
			wantErr(t, "purchaseCredits as REVOPS", errs, "FORBIDDEN")
			op.lcSameRows("purchaseCredits as REVOPS", rows)
		})
	})
}
