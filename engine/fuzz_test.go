package engine_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

// Fuzz targets for the pure engine. Corpus entries the fuzzer finds are kept
// under testdata/fuzz/<FuzzName>/ and run as ordinary tests with go test.

// fuzzNormalizeFlags: which optional fields of the usage input are set.
const (
	fuzzHasAttempt  = 1 << iota // Attempt set from the fuzzed int
	fuzzHasOccurred             // OccurredAt set to now + offset
)

func FuzzUsageNormalize(f *testing.F) {
	// key, action, other action, status, quantity, completion, attempt,
	// properties JSON, occurredAt offset (ns), flags
	f.Add("k1", "agent.run", "web.search", "", "", "", 0, []byte(nil), int64(0), byte(0))
	f.Add("k2", "agent.run", "agent.run2", "SUCCEEDED", "1", "1", 1, []byte(`{"pages":8}`), int64(-time.Hour), byte(3))
	f.Add("k3", "doc.summarize", "doc.summarise", "PARTIAL", "2.5", "0.25", 3, []byte(`{"b":[1,2],"a":{"x":"y"}}`), int64(time.Minute), byte(3))
	f.Add("k4", "agent.run", "x", "FAILED", "0", "1.5", -1, []byte(`[]`), int64(time.Hour), byte(3))
	f.Add("", "", "", "BOGUS", "-1", "-0.1", 0, []byte(`null`), int64(6*time.Minute), byte(2))
	f.Add("k5", "a", "b", "STARTED", "1e-40", "0", 2, []byte(`{}`), int64(5*time.Minute), byte(3))
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, key, action, other, status, quantity, completion string, attempt int, props []byte, offset int64, flags byte) {
		// build returns a fresh input for action (fresh pointers and map, so
		// that a second Normalize cannot share state with the first).
		build := func(action string) (engine.UsageInput, bool) {
			in := engine.UsageInput{IdempotencyKey: key, OrganizationID: 1, Action: action, Status: credit.UsageStatus(status)}
			if quantity != "" {
				q, err := rules.ParseDecimal(quantity)
				if err != nil {
					return in, false
				}
				in.Quantity = &q
			}
			if completion != "" {
				c, err := rules.ParseDecimal(completion)
				if err != nil {
					return in, false
				}
				in.Completion = &c
			}
			if flags&fuzzHasAttempt != 0 {
				a := attempt
				in.Attempt = &a
			}
			if len(props) > 0 {
				var m map[string]any
				if err := json.Unmarshal(props, &m); err != nil {
					return in, false
				}
				in.Properties = m
			}
			if flags&fuzzHasOccurred != 0 {
				o := now.Add(time.Duration(offset))
				in.OccurredAt = &o
			}
			return in, true
		}
		in, ok := build(action)
		if !ok {
			t.Skip()
		}
		ev, hash, err := in.Normalize(now)
		if err != nil {
			var e *credit.Error
			if !errors.As(err, &e) {
				t.Fatalf("Normalize error %v (%T) is not an *credit.Error", err, err)
			}
			if e.Code != credit.CodeValidation || e.Field == "" {
				t.Fatalf("Normalize error %+v: want code VALIDATION with a field", e)
			}
			return
		}
		if !ev.Quantity.IsPositive() {
			t.Fatalf("quantity %s not > 0", ev.Quantity)
		}
		if ev.Completion.IsNegative() || ev.Completion.GreaterThan(decimal.NewFromInt(1)) {
			t.Fatalf("completion %s outside [0, 1]", ev.Completion)
		}
		if ev.Attempt < 1 {
			t.Fatalf("attempt %d < 1", ev.Attempt)
		}
		if ev.Action != action || ev.Status == "" {
			t.Fatalf("event %+v: action or status lost", ev)
		}
		if ev.OccurredAt.After(now.Add(engine.MaxFutureSkew)) {
			t.Fatalf("occurredAt %s beyond now + skew", ev.OccurredAt)
		}
		if b, err := hex.DecodeString(hash); len(hash) != 64 || err != nil || len(b) != 32 {
			t.Fatalf("hash %q is not 64 hex chars", hash)
		}
		again, _ := build(action)
		_, hash2, err := again.Normalize(now)
		if err != nil || hash2 != hash {
			t.Fatalf("Normalize not deterministic: %q then %q (%v)", hash, hash2, err)
		}
		if other != action {
			alt, _ := build(other)
			if _, h, err := alt.Normalize(now); err == nil && h == hash {
				t.Fatalf("actions %q and %q give the same payload hash %s", action, other, hash)
			}
		}
	})
}

var fuzzCreditTypes = []credit.CreditType{
	credit.CreditSubscription, credit.CreditOnDemand, credit.CreditIncentive,
	credit.CreditRollover, credit.CreditPromotional, credit.CreditService, "BOGUS",
}

// fuzzGrants decodes up to 8 grants, 5 bytes each:
//
//	[0] remaining, a signed byte, with [1]&3 decimal places
//	[1]>>2 credit type (7 values, one unknown)
//	[2] expiry: 0 none, otherwise now + int8 hours (<= 0: expired)
//	[3]&7 effective at now + (n-5) hours (> 0: not yet effective); [3]>>3 priority 0..3
//	[4] created n minutes before now
func fuzzGrants(spec []byte, now time.Time) []engine.Grant {
	var gs []engine.Grant
	for i := 0; i+5 <= len(spec) && len(gs) < 8; i += 5 {
		b := spec[i : i+5]
		g := engine.Grant{
			ID:          len(gs) + 1,
			CreditType:  fuzzCreditTypes[int(b[1]>>2)%len(fuzzCreditTypes)],
			Priority:    int(b[3]>>3) % 4,
			Remaining:   decimal.New(int64(int8(b[0])), -int32(b[1]&3)),
			EffectiveAt: now.Add(time.Duration(int(b[3]&7)-5) * time.Hour),
			CreatedAt:   now.Add(-time.Duration(b[4]) * time.Minute),
		}
		g.Amount = g.Remaining
		if b[2] != 0 {
			e := now.Add(time.Duration(int8(b[2])) * time.Hour)
			g.ExpiresAt = &e
		}
		gs = append(gs, g)
	}
	return gs
}

func fuzzSum(ds []engine.Draw) decimal.Decimal {
	s := decimal.Zero
	for _, d := range ds {
		s = s.Add(d.Amount)
	}
	return s
}

func FuzzDecideUsage(f *testing.F) {
	// grants (5 bytes each), quantity, status, completion %, terms mode, cap
	f.Add([]byte{100, 0, 0, 0, 0}, "1", byte(1), byte(100), byte(0), byte(0))
	f.Add([]byte{10, 12, 24, 5, 3, 50, 1, 0, 5, 1, 200, 0, 0, 5, 2, 30, 8, 250, 5, 4}, "7.5", byte(1), byte(100), byte(1), byte(0x85))
	f.Add([]byte{1, 3, 1, 13, 0, 255, 0, 0, 5, 0, 9, 16, 0, 7, 0}, "3.333", byte(3), byte(37), byte(2), byte(3))
	f.Add([]byte{5, 0, 0, 5, 0}, "12", byte(1), byte(0), byte(3), byte(0))
	f.Add([]byte{5, 0, 0, 5, 0}, "12", byte(1), byte(0), byte(4), byte(0))
	f.Add([]byte{5, 0, 0, 5, 0}, "30", byte(1), byte(0), byte(5), byte(0))
	f.Add([]byte{5, 0, 0, 5, 0, 5, 1, 0, 5, 0}, "1e3", byte(0), byte(0), byte(9), byte(0))
	const weight = "1.5"
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	statuses := []credit.UsageStatus{credit.StatusStarted, credit.StatusSucceeded, credit.StatusFailed, credit.StatusPartial}
	pack := decimal.NewFromInt(10)
	f.Fuzz(func(t *testing.T, spec []byte, quantity string, status, completion, mode, capSpec byte) {
		q, err := rules.ParseDecimal(quantity)
		if err != nil || !q.IsPositive() {
			t.Skip() // Normalize refuses a quantity <= 0
		}
		grants := fuzzGrants(spec, now)
		orig := append([]engine.Grant(nil), grants...)
		ev := engine.Event{Action: "act", Status: statuses[int(status)%len(statuses)], Quantity: q,
			Completion: decimal.New(int64(completion%101), -2), Attempt: 1, OccurredAt: now}
		reg := &engine.Register{ID: 1, Name: "r", Version: 1, Weights: map[string]*engine.Weight{
			"act": {Action: "act", Credits: decimal.RequireFromString(weight), DegradedAllowed: mode&0x10 != 0},
		}}
		v := engine.Versions{Register: reg} // nil rules: the default policies
		switch mode % 8 {
		case 1:
			v.Terms = &engine.PlanTerms{OverageMode: credit.OverageHard}
		case 2:
			v.Terms = &engine.PlanTerms{OverageMode: credit.OverageSoft}
		case 3:
			v.Terms = &engine.PlanTerms{OverageMode: credit.OverageBorrow, BorrowLeft: decimal.NewFromInt(5)}
		case 4:
			v.Terms = &engine.PlanTerms{OverageMode: credit.OverageDegraded}
		case 5:
			left := -1
			if mode&0x20 != 0 {
				left = 3
			}
			v.Terms = &engine.PlanTerms{OverageMode: credit.OverageAutoTopUp, TopUpCredits: pack, TopUpsLeft: left}
		}
		d, err := engine.DecideUsage(context.Background(), v, engine.Org{ID: 1}, ev, grants, now)
		if err != nil {
			t.Fatalf("DecideUsage: %v", err)
		}
		for i := range grants {
			if !grants[i].Remaining.Equal(orig[i].Remaining) {
				t.Fatalf("DecideUsage modified grant %d", grants[i].ID)
			}
		}
		burn := engine.DefaultBurn(decimal.RequireFromString(weight), ev)
		if !d.Requested.Equal(burn) {
			t.Fatalf("requested %s, want burn %s", d.Requested, burn)
		}
		available := decimal.Zero
		for _, g := range grants {
			if g.Usable(now) {
				available = available.Add(g.Remaining)
			}
		}
		// Every draw: a usable grant, a positive amount, never more than it holds.
		taken := map[int]decimal.Decimal{}
		for _, dr := range d.Draws {
			if dr.GrantID < 1 || dr.GrantID > len(grants) {
				t.Fatalf("draw on unknown grant %d", dr.GrantID)
			}
			g := grants[dr.GrantID-1]
			if !g.Usable(now) {
				t.Fatalf("draw %s on unusable grant %+v", dr.Amount, g)
			}
			if !dr.Amount.IsPositive() {
				t.Fatalf("draw of %s on grant %d", dr.Amount, dr.GrantID)
			}
			taken[dr.GrantID] = taken[dr.GrantID].Add(dr.Amount)
			if taken[dr.GrantID].GreaterThan(g.Remaining) {
				t.Fatalf("grant %d drawn %s, holds %s", dr.GrantID, taken[dr.GrantID], g.Remaining)
			}
		}
		drawn := fuzzSum(d.Draws)
		switch d.Decision {
		case credit.DecisionAllowed:
			if !d.Credits.Equal(d.Requested) {
				t.Fatalf("allowed %s credits, requested %s", d.Credits, d.Requested)
			}
			if got := drawn.Add(d.Overage).Add(d.Borrowed); !got.Equal(d.Credits) {
				t.Fatalf("allowed: draws %s + overage %s + borrowed %s != credits %s", drawn, d.Overage, d.Borrowed, d.Credits)
			}
			if (v.Terms == nil || v.Terms.OverageMode == credit.OverageHard) && !drawn.Equal(d.Credits) {
				t.Fatalf("allowed under a HARD ceiling: draws sum %s, credits %s", drawn, d.Credits)
			}
			if d.Overage.IsPositive() || d.Borrowed.IsPositive() {
				if !drawn.Equal(available) {
					t.Fatalf("overage/borrow with draws %s while %s available", drawn, available)
				}
			}
		case credit.DecisionDegraded:
			if !drawn.Equal(d.Credits) || !drawn.Equal(available) || d.Credits.GreaterThan(d.Requested) {
				t.Fatalf("degraded: draws %s, credits %s, available %s, requested %s", drawn, d.Credits, available, d.Requested)
			}
		case credit.DecisionDenied:
			if len(d.Draws) != 0 || !d.Credits.IsZero() {
				t.Fatalf("denied but draws %v, credits %s", d.Draws, d.Credits)
			}
			if !d.Requested.GreaterThan(available) {
				t.Fatalf("denied %s with %s available", d.Requested, available)
			}
			if d.TopUps > 0 {
				short := d.Requested.Sub(available)
				packs := pack.Mul(decimal.NewFromInt(int64(d.TopUps)))
				if packs.LessThan(short) {
					t.Fatalf("%d top-ups of %s do not cover the shortfall %s", d.TopUps, pack, short)
				}
				if !packs.Sub(pack).LessThan(short) {
					t.Fatalf("%d top-ups of %s: one fewer covers the shortfall %s", d.TopUps, pack, short)
				}
				if v.Terms.TopUpsLeft >= 0 && d.TopUps > v.Terms.TopUpsLeft {
					t.Fatalf("%d top-ups, %d left", d.TopUps, v.Terms.TopUpsLeft)
				}
			}
		default:
			t.Fatalf("decision %q", d.Decision)
		}
		if d.Decision == credit.DecisionAllowed && (v.Terms == nil || v.Terms.OverageMode == credit.OverageHard) && d.Requested.GreaterThan(available) {
			t.Fatalf("allowed %s under a HARD ceiling with %s available", d.Requested, available)
		}
		after := append([]engine.Grant(nil), grants...)
		engine.Apply(after, d.Draws)
		for i, g := range after {
			if orig[i].Remaining.IsNegative() {
				continue // a grant that was negative stays as it was
			}
			if g.Remaining.IsNegative() {
				t.Fatalf("grant %d negative after apply: %s", g.ID, g.Remaining)
			}
			if want := orig[i].Remaining.Sub(taken[g.ID]); !g.Remaining.Equal(want) {
				t.Fatalf("grant %d after apply %s, want %s", g.ID, g.Remaining, want)
			}
		}

		// ClosePeriod at now over the same grants, for every mode.
		var cp decimal.NullDecimal
		if capSpec&0x80 != 0 {
			cp = decimal.NewNullDecimal(decimal.New(int64(int8(capSpec<<1)>>1), -int32(capSpec&1)))
		}
		for _, m := range []credit.RolloverMode{credit.RolloverNone, credit.RolloverCapped, credit.RolloverOneTime, credit.RolloverUnlimited} {
			pc := engine.ClosePeriod(m, cp, grants, now)
			rolled, sumR := fuzzAmounts(t, string(m)+": roll-out", pc.RollOut)
			expired, sumE := fuzzAmounts(t, string(m)+": expire", pc.Expire)
			if !sumR.Equal(pc.Rolled) || !sumE.Equal(pc.Expired) {
				t.Fatalf("%s: rolled %s (sum %s), expired %s (sum %s)", m, pc.Rolled, sumR, pc.Expired, sumE)
			}
			for _, g := range grants {
				ending := g.ExpiresAt != nil && !g.ExpiresAt.After(now) && g.Remaining.IsPositive()
				r, e := rolled[g.ID], expired[g.ID]
				if !ending {
					if !r.IsZero() || !e.IsZero() {
						t.Fatalf("%s: grant %+v not ending but rolled %s, expired %s", m, g, r, e)
					}
					continue
				}
				if !r.Add(e).Equal(g.Remaining) {
					t.Fatalf("%s: grant %d rolled %s + expired %s != remaining %s", m, g.ID, r, e, g.Remaining)
				}
				rollable := (g.CreditType == credit.CreditSubscription) ||
					(g.CreditType == credit.CreditRollover && (m == credit.RolloverCapped || m == credit.RolloverUnlimited))
				if m == credit.RolloverNone || !rollable {
					if !r.IsZero() {
						t.Fatalf("%s: grant %d (%s) rolled %s", m, g.ID, g.CreditType, r)
					}
				}
				if m == credit.RolloverUnlimited && rollable && !r.Equal(g.Remaining) {
					t.Fatalf("UNLIMITED: grant %d rolled %s of %s", g.ID, r, g.Remaining)
				}
			}
			if m == credit.RolloverCapped {
				limit := decimal.Zero
				if cp.Valid && cp.Decimal.IsPositive() {
					limit = cp.Decimal
				}
				if pc.Rolled.GreaterThan(limit) {
					t.Fatalf("CAPPED: rolled %s over cap %v", pc.Rolled, cp)
				}
			}
		}
	})
}

// fuzzAmounts indexes a period close's amounts by grant, checking that each
// is positive and names its grant once, and sums them.
func fuzzAmounts(t *testing.T, what string, as []engine.GrantAmount) (map[int]decimal.Decimal, decimal.Decimal) {
	t.Helper()
	by, sum := map[int]decimal.Decimal{}, decimal.Zero
	for _, a := range as {
		if !a.Amount.IsPositive() {
			t.Fatalf("%s %s", what, a.Amount)
		}
		if _, dup := by[a.GrantID]; dup {
			t.Fatalf("%s: grant %d twice", what, a.GrantID)
		}
		by[a.GrantID] = a.Amount
		sum = sum.Add(a.Amount)
	}
	return by, sum
}
