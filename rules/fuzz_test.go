package rules_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/rules"
)

// FuzzEvaluate compiles arbitrary expressions as rules of every kind and
// evaluates the ones that compile against fuzzed variables. Besides "no
// panic" it checks the package's contract: compile failures are
// *CompileError with 1-based positions inside the source (and Validate
// agrees), evaluation failures are ErrRuntime, the compile-time cost bound
// holds, evaluation terminates without the help of a deadline, results are
// exact decimals >= 0 (bools, sort keys), evaluation is deterministic, and a
// few fixed rules over the same fuzzed inputs equal the same arithmetic done
// in Go.

var fuzzKinds = []rules.Kind{rules.KindBurn, rules.KindWeight, rules.KindDrawOrder, rules.KindOverage, rules.KindIncentive}

// fuzzUnbounded mirrors the rules package's unboundedCost: a MaxCost at or
// above it is not a bound (the run-time limit applies).
const fuzzUnbounded = math.MaxUint64 / 1024

// fuzzEvalBudget is how long one evaluation may take with no deadline on
// its context: the cost limit alone must stop it well before.
const fuzzEvalBudget = 5 * time.Second

// fuzzDec parses a fuzzed decimal, def when it is not one.
func fuzzDec(s string, def decimal.Decimal) decimal.Decimal {
	d, err := rules.ParseDecimal(s)
	if err != nil {
		return def
	}
	return d
}

// fuzzExact reports whether d is an exact, finite decimal that reads back
// from its own text unchanged.
func fuzzExact(t *testing.T, what string, d decimal.Decimal) {
	t.Helper()
	back, err := decimal.NewFromString(d.String())
	if err != nil || !back.Equal(d) {
		t.Fatalf("%s = %s does not read back from its text (%s, %v)", what, d, back, err)
	}
}

func checkCompileError(t *testing.T, k rules.Kind, expr string, err error) {
	t.Helper()
	if !errors.Is(err, rules.ErrCompile) || errors.Is(err, rules.ErrRuntime) {
		t.Fatalf("Compile(%s, %q) = %v (%T): want ErrCompile only", k, expr, err, err)
	}
	var ce *rules.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("Compile(%s, %q) = %v (%T): not a *CompileError", k, expr, err, err)
	}
	if ce.Kind != k || len(ce.Positions) == 0 {
		t.Fatalf("Compile(%s, %q) = %+v: wrong kind or no positions", k, expr, ce)
	}
	lines := strings.Split(expr, "\n")
	for _, p := range ce.Positions {
		if p.Message == "" || p.Line < 1 || p.Column < 1 {
			t.Fatalf("Compile(%s, %q): position %+v is not 1-based with a message", k, expr, p)
		}
		if p.Line > len(lines) {
			t.Fatalf("Compile(%s, %q): position %+v past the last line (%d)", k, expr, p, len(lines))
		}
		if n := utf8.RuneCountInString(lines[p.Line-1]); p.Column > n+1 {
			t.Fatalf("Compile(%s, %q): position %+v past the end of line %d (%d characters)", k, expr, p, p.Line, n)
		}
	}
	if !strings.Contains(err.Error(), ce.Positions[0].String()) {
		t.Fatalf("Compile(%s, %q).Error() = %q does not name its first position %s", k, expr, err, ce.Positions[0])
	}
	if ps := rules.Validate(k, expr); len(ps) != len(ce.Positions) || ps[0] != ce.Positions[0] {
		t.Fatalf("Validate(%s, %q) = %v, Compile says %v", k, expr, ps, ce.Positions)
	}
}

func checkRuntimeError(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, rules.ErrRuntime) || errors.Is(err, rules.ErrCompile) {
		t.Fatalf("%s = %v (%T): want ErrRuntime only", what, err, err)
	}
}

// timed runs eval with no deadline and fails when it outlives the budget.
func timed[T any](t *testing.T, what string, eval func(context.Context) (T, error)) (T, error) {
	t.Helper()
	start := time.Now()
	v, err := eval(context.Background())
	if d := time.Since(start); d > fuzzEvalBudget {
		t.Fatalf("%s took %s: the cost limit did not bound it", what, d)
	}
	return v, err
}

func FuzzEvaluate(f *testing.F) {
	type seed struct {
		kind byte
		expr string
	}
	for _, s := range []seed{
		{0, `event.status == "SUCCEEDED" ? weight * event.quantity : (event.status == "FAILED" ? weight * decimal("0.2") : decimal(0))`},
		{0, `event.status == "PARTIAL" ? weight * event.quantity * event.completion : weight / decimal(event.attempt)`},
		{0, `max(weight - event.quantity, decimal(0)).round(2)`},
		{0, `weight / (event.quantity - event.quantity)`},
		{0, `decimal(event.properties.pages) * weight`},
		{0, `has(event.properties.pages) ? decimal(event.properties.pages) : decimal(string(weight) + "0")`},
		{0, `event.properties.xs.map(x, event.properties.xs.map(y, x + y)).size() > 0 ? decimal(1) : decimal(0)`},
		{0, `-weight`},
		{1, `decimal(1) + decimal(event.properties.pages) * decimal("0.25")`},
		{1, `event.occurredAt < now ? decimal(org.id.size()) : decimal(event.action.size())`},
		{1, `decimal(double(event.attempt) / 3.0)`},
		{1, "decimal(1) +\n  * 2"},
		{2, `[grant.priority, grant.expiresAt]`},
		{2, `[grant.creditType == "INCENTIVE" ? 0 : 1, grant.remaining, grant.id, grant.expiresAt > now]`},
		{2, `[grant.createdAt, 1.5, grant.unitPrice * grant.amount]`},
		{2, `[{"a": 1}]`},
		{3, `shortfall < decimal(10) && org.segment == "enterprise"`},
		{3, `available * decimal("0.5") >= shortfall || weight > 100`},
		{4, `trigger == "usage" ? event.quantity : decimal(1)`},
		{4, `trigger == "behavior" ? decimal("0.5") : decimal(event.properties.bonus)`},
		{4, `[1, 2, 3].exists(x, x > event.attempt) ? decimal(2) : decimal(0)`},
	} {
		f.Add(s.kind, s.expr, "agent.run", "SUCCEEDED", "3", "1", "2.5", "4", "1.5", int64(1),
			[]byte(`{"pages":8,"bonus":0.1,"xs":[1,2,3]}`), "usage", int64(2), "7.25", int64(0))
	}
	f.Add(byte(0), `weight * event.quantity * event.completion`, "a", "PARTIAL", "1e-40", "0.333", "1e40", "-1", "0", int64(-3),
		[]byte(`{"pages":1e308}`), "behavior", int64(math.MinInt64), "-0", int64(math.MaxInt64))
	f.Add(byte(3), `shortfall > available`, "", "", "x", "", "NaN", "1e41", "", int64(math.MaxInt64),
		[]byte(`not json`), "", int64(math.MaxInt64), "", int64(math.MinInt64))

	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	one := decimal.NewFromInt(1)
	fixed := rules.NewCache()
	f.Fuzz(func(t *testing.T, kindByte byte, expr, action, status, quantity, completion, weight, shortfall, available string,
		attempt int64, props []byte, trigger string, priority int64, remaining string, nowOffset int64) {
		k := fuzzKinds[int(kindByte)%len(fuzzKinds)]
		now := base.Add(time.Duration(nowOffset))
		ev := &rules.Event{Action: action, Status: status, RunID: "run", Quantity: fuzzDec(quantity, one),
			Completion: fuzzDec(completion, one), Attempt: attempt, OccurredAt: base}
		if len(props) > 0 {
			var m map[string]any
			if json.Unmarshal(props, &m) == nil {
				ev.Properties = m
			}
		}
		v := rules.Vars{
			Event: ev, Org: &rules.Org{ID: "42", Segment: "enterprise"},
			Weight: fuzzDec(weight, one), Shortfall: fuzzDec(shortfall, decimal.Zero), Available: fuzzDec(available, decimal.Zero),
			Trigger: trigger, Now: now,
		}
		g := &rules.Grant{ID: "g1", CreditType: "ON_DEMAND", Priority: priority, Amount: fuzzDec(remaining, one),
			Remaining: fuzzDec(remaining, one), UnitPrice: decimal.Zero, EffectiveAt: base.Add(-time.Hour),
			ExpiresAt: now.Add(time.Duration(priority)), CreatedAt: base.Add(-2 * time.Hour)}

		// The fuzzed rule.
		p, err := rules.Compile(k, expr)
		if err != nil {
			checkCompileError(t, k, expr, err)
		} else {
			if p.Kind() != k || p.Source() != expr {
				t.Fatalf("program kind/source = %s %q, want %s %q", p.Kind(), p.Source(), k, expr)
			}
			if c := p.MaxCost(); c > rules.CostLimit && c < fuzzUnbounded {
				t.Fatalf("Compile(%s, %q) accepted an estimated cost of %d over the limit %d", k, expr, c, rules.CostLimit)
			}
			if ps := rules.Validate(k, expr); ps != nil {
				t.Fatalf("Validate(%s, %q) = %v for a rule that compiles", k, expr, ps)
			}
			evalRule(t, p, v, g)
		}

		// Fixed rules over the fuzzed inputs: exact arithmetic, as in Go.
		q, c, w := ev.Quantity, ev.Completion, v.Weight
		div, divOK := decimal.Zero, false // q / c: an error when c is 0
		if !c.IsZero() {
			div = q.DivRound(c, rules.DivisionPrecision)
			divOK = !div.IsNegative()
		}
		for _, tc := range []struct {
			kind rules.Kind
			expr string
			want decimal.Decimal
			ok   bool // false: a run-time error is expected
		}{
			{rules.KindBurn, `weight * event.quantity * event.completion`, w.Mul(q).Mul(c), !w.Mul(q).Mul(c).IsNegative()},
			{rules.KindBurn, `weight + event.quantity - event.completion`, w.Add(q).Sub(c), !w.Add(q).Sub(c).IsNegative()},
			{rules.KindWeight, `event.quantity / event.completion`, div, divOK},
			{rules.KindWeight, `max(event.quantity, event.completion).round(3)`, decimal.Max(q, c).Round(3), !decimal.Max(q, c).Round(3).IsNegative()},
			{rules.KindBurn, `min(weight, event.quantity)`, decimal.Min(w, q), !decimal.Min(w, q).IsNegative()},
			{rules.KindIncentive, `event.quantity - event.completion`, q.Sub(c), !q.Sub(c).IsNegative()},
		} {
			fp, err := fixed.Get(tc.expr, tc.kind, tc.expr)
			if err != nil {
				t.Fatalf("Compile(%s, %q) = %v", tc.kind, tc.expr, err)
			}
			got, err := timed(t, tc.expr, func(ctx context.Context) (decimal.Decimal, error) { return fp.Decimal(ctx, v) })
			switch {
			case !tc.ok:
				if err == nil {
					t.Fatalf("%s with weight %s, quantity %s, completion %s = %s, want a run-time error", tc.expr, w, q, c, got)
				}
				checkRuntimeError(t, tc.expr, err)
			case err != nil:
				t.Fatalf("%s with weight %s, quantity %s, completion %s: %v, want %s", tc.expr, w, q, c, err, tc.want)
			case !got.Equal(tc.want):
				t.Fatalf("%s with weight %s, quantity %s, completion %s = %s, want exactly %s", tc.expr, w, q, c, got, tc.want)
			}
		}
	})
}

// evalRule evaluates p with its kind's method (twice: deterministic), and the
// other kinds' methods, which must refuse with ErrRuntime.
func evalRule(t *testing.T, p *rules.Program, v rules.Vars, g *rules.Grant) {
	t.Helper()
	k, expr := p.Kind(), p.Source()
	what := string(k) + " " + expr
	if k == rules.KindDrawOrder {
		v.Grant = g
	}
	isDecimal := k == rules.KindBurn || k == rules.KindWeight || k == rules.KindIncentive
	d, errD := timed(t, what, func(ctx context.Context) (decimal.Decimal, error) { return p.Decimal(ctx, v) })
	b, errB := timed(t, what, func(ctx context.Context) (bool, error) { return p.Bool(ctx, v) })
	s, errS := timed(t, what, func(ctx context.Context) (rules.SortKey, error) { return p.SortKey(ctx, v) })
	for _, e := range []struct {
		err  error
		mine bool
	}{{errD, isDecimal}, {errB, k == rules.KindOverage}, {errS, k == rules.KindDrawOrder}} {
		if !e.mine && e.err == nil {
			t.Fatalf("%s: a method of another kind did not refuse", what)
		}
		if e.err != nil {
			checkRuntimeError(t, what, e.err)
		}
	}
	switch {
	case isDecimal && errD == nil:
		if d.IsNegative() {
			t.Fatalf("%s = %s: a negative result got through", what, d)
		}
		fuzzExact(t, what, d)
		again, err := p.Decimal(context.Background(), v)
		if err != nil || !again.Equal(d) {
			t.Fatalf("%s not deterministic: %s then %s, %v", what, d, again, err)
		}
	case k == rules.KindOverage && errB == nil:
		again, err := p.Bool(context.Background(), v)
		if err != nil || again != b {
			t.Fatalf("%s not deterministic: %v then %v, %v", what, b, again, err)
		}
	case k == rules.KindDrawOrder && errS == nil:
		for i, e := range s {
			switch x := e.(type) {
			case int64, string, time.Time, bool:
			case decimal.Decimal:
				fuzzExact(t, what, x)
			default:
				t.Fatalf("%s: sort key element %d is %T", what, i, e)
			}
		}
		if c := rules.CompareKeys(s, s); c != 0 {
			t.Fatalf("%s: CompareKeys(k, k) = %d", what, c)
		}
		// A second grant: the order between the two keys is antisymmetric.
		g2 := *g
		g2.ID, g2.Priority, g2.CreditType = "g2", -g.Priority, "INCENTIVE"
		v2 := v
		v2.Grant = &g2
		s2, err := p.SortKey(context.Background(), v2)
		if err == nil {
			if a, b := rules.CompareKeys(s, s2), rules.CompareKeys(s2, s); a != -b || a < -1 || a > 1 {
				t.Fatalf("%s: CompareKeys not antisymmetric: %d and %d for %v and %v", what, a, b, s, s2)
			}
		} else {
			checkRuntimeError(t, what, err)
		}
	}
}
