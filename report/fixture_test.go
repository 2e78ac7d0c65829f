package report_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// clock is a settable test clock: entries are written at its time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// The days the fixture's usage happens on: a Monday, the Tuesday after it,
// and the Tuesday of the next week (in the next month).
var (
	day1 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	day2 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	day3 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	from = day1
	to   = day3.AddDate(0, 0, 1)
)

// Text a spreadsheet would run as a formula, written by the fixture.
const (
	evilAction = "=1+2"
	evilMemo   = "@SUM(A1)"
	evilRun    = "+run-1"
)

type fixture struct {
	db                    *store.DB
	svc                   *ledger.Service
	clock                 *clock
	org                   int // Acme: pools main (ACCOUNT) and team (TEAM under main)
	other                 int // another organisation, whose rows must never show
	main, team, otherPool int
	sub, promo            *ent.Grant // Acme's SUBSCRIPTION grant on main, PROMOTIONAL on team
	refunded              *ent.UsageEvent
}

// setup writes, through the ledger service, Acme's usage:
//
//	day1 10:00 main: agent.run x3 (1 each), big.run x1 (10); team: fraction.run x3 (0.1 each)
//	day2 10:00 main: big.run x2; team: agent.run x1; 12:00 a refund of 4 of the first big.run
//	day3 10:00 main: evilAction as a run (STARTED, then SUCCEEDED: 1 credit)
//
// and the other organisation's: day1 10:00 big.run x5.
func setup(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: day1.Add(9 * time.Hour)}
	f := &fixture{db: db, svc: ledger.New(db, ledger.WithClock(c.now)), clock: c}
	reg, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("1")},
		{Action: "big.run", Credits: d("10")}, {Action: "fraction.run", Credits: d("0.1")}, {Action: evilAction, Credits: d("1")}})
	must(t, err)
	_, err = f.svc.PublishRegister(ctx, "default", reg.Version, nil)
	must(t, err)
	f.org, f.main = f.organization(t, "Acme")
	team, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org, Kind: credit.PoolTeam, Name: "team", ParentID: &f.main})
	must(t, err)
	f.team = team.ID
	f.other, f.otherPool = f.organization(t, "Other")
	f.sub = f.grant(t, f.main, "100", credit.CreditSubscription, evilMemo)
	f.promo = f.grant(t, f.team, "20", credit.CreditPromotional, "")
	f.grant(t, f.otherPool, "1000", credit.CreditSubscription, "")

	c.set(day1.Add(10 * time.Hour))
	f.use(t, f.org, f.main, "agent.run", 3)
	f.use(t, f.org, f.main, "big.run", 1)
	f.use(t, f.org, f.team, "fraction.run", 3)
	f.use(t, f.other, f.otherPool, "big.run", 5)
	c.set(day2.Add(10 * time.Hour))
	f.refunded = f.use(t, f.org, f.main, "big.run", 2)[0]
	f.use(t, f.org, f.team, "agent.run", 1)
	c.set(day2.Add(12 * time.Hour))
	_, err = f.svc.Refund(ctx, ledger.RefundInput{UsageEventID: &f.refunded.ID, Amount: ptr(d("4")), Reason: "failed on our side"})
	must(t, err)
	c.set(day3.Add(10 * time.Hour))
	for _, st := range []credit.UsageStatus{credit.StatusStarted, credit.StatusSucceeded} {
		in := f.usage(f.org, f.main, evilAction, "run-"+string(st))
		in.Status, in.RunID = st, evilRun
		record(t, f.svc, in)
	}
	return f
}

func (f *fixture) organization(t *testing.T, name string) (org, pool int) {
	t.Helper()
	ctx := context.Background()
	o, err := f.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: name})
	must(t, err)
	p, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "main"})
	must(t, err)
	return o.ID, p.ID
}

func (f *fixture) grant(t *testing.T, pool int, amount string, typ credit.CreditType, memo string) *ent.Grant {
	t.Helper()
	g, err := f.svc.GrantCredits(context.Background(), ledger.GrantInput{PoolID: pool, CreditType: typ, Amount: d(amount), Memo: memo})
	must(t, err)
	return g
}

var keys int

func (f *fixture) usage(org, pool int, action, key string) engine.UsageInput {
	return engine.UsageInput{IdempotencyKey: key, OrganizationID: org, PoolID: &pool, Action: action, Status: credit.StatusSucceeded}
}

// use records n successful events of action on pool.
func (f *fixture) use(t *testing.T, org, pool int, action string, n int) []*ent.UsageEvent {
	t.Helper()
	var out []*ent.UsageEvent
	for range n {
		keys++
		out = append(out, record(t, f.svc, f.usage(org, pool, action, fmt.Sprintf("k%d", keys))))
	}
	return out
}

func record(t *testing.T, svc *ledger.Service, in engine.UsageInput) *ent.UsageEvent {
	t.Helper()
	res, err := svc.RecordUsage(context.Background(), in)
	if err != nil || res.Decision != credit.DecisionAllowed {
		t.Fatalf("RecordUsage(%s %s) = %+v, %v; want ALLOWED", in.Action, in.Status, res, err)
	}
	return res.Event
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
