package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const burnExample = `event.status == "SUCCEEDED" ? weight * event.quantity : (event.status == "FAILED" ? weight * decimal("0.2") : decimal(0))`

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func mustCompile(t testing.TB, kind Kind, expr string) *Program {
	t.Helper()
	p, err := Compile(kind, expr)
	if err != nil {
		t.Fatalf("Compile(%s, %q) = %v", kind, expr, err)
	}
	return p
}

func burnVars(status string, props map[string]any) Vars {
	return Vars{
		Event: &Event{Action: "render", Status: status, Quantity: dec("3"), Completion: dec("1"), Attempt: 1,
			Properties: props, OccurredAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
		Org:    &Org{ID: "42", Segment: "enterprise"},
		Weight: dec("2.5"),
		Now:    time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
}

func TestBurnExample(t *testing.T) {
	p := mustCompile(t, KindBurn, burnExample)
	if p.Kind() != KindBurn || p.Source() != burnExample || p.OutputType() != "decimal" {
		t.Errorf("program = %s %q %s", p.Kind(), p.Source(), p.OutputType())
	}
	for _, tc := range []struct{ status, want string }{
		{"SUCCEEDED", "7.5"},
		{"FAILED", "0.5"},
		{"STARTED", "0"},
	} {
		got, err := p.Decimal(context.Background(), burnVars(tc.status, nil))
		if err != nil || !got.Equal(dec(tc.want)) {
			t.Errorf("burn(%s) = %v, %v, want %s", tc.status, got, err, tc.want)
		}
	}
}

func TestDecimalRules(t *testing.T) {
	props := map[string]any{"pages": 8.0, "name": "x", "nested": map[string]any{"n": 2.0}, "list": []any{1.0, 2.0}}
	for _, tc := range []struct {
		kind Kind
		expr string
		want string // "" for a run-time error
	}{
		{KindWeight, `decimal(1) + decimal(event.properties.pages) * decimal("0.25")`, "3"},
		{KindWeight, `decimal(1) + decimal(event.properties.missing) * decimal("0.25")`, ""},
		{KindWeight, `has(event.properties.missing) ? decimal(event.properties.missing) : decimal(1)`, "1"},
		{KindWeight, `has(event.properties.pages) ? decimal(event.properties.pages) : decimal(1)`, "8"},
		{KindWeight, `decimal(event.properties.nested.n) + decimal(event.properties.list[1])`, "4"},
		{KindWeight, `decimal(event.properties.name)`, ""},
		{KindBurn, `decimal(0.1) == decimal("0.1") ? decimal(1) : decimal(0)`, "1"},
		{KindBurn, `decimal("0.1") + decimal("0.2") == decimal("0.3") ? decimal(1) : decimal(0)`, "1"},
		{KindBurn, `decimal("0.1") + decimal("0.2") != decimal("0.3") ? decimal(1) : decimal(0)`, "0"},
		{KindBurn, `decimal("2.5").round(0)`, "3"},
		{KindBurn, `-decimal("2.5").round(0)`, ""}, // -3: negative
		{KindBurn, `decimal(0) - decimal("-2.5").round(0)`, "3"},
		{KindBurn, `decimal("1.005").round(2)`, "1.01"},
		{KindBurn, `min(decimal(2), decimal("1.5"))`, "1.5"},
		{KindBurn, `max(decimal(2), decimal("1.5"))`, "2"},
		{KindBurn, `decimal(1) / decimal(3)`, "0.3333333333333333333333333333"},
		{KindBurn, `decimal(2) / decimal(3)`, "0.6666666666666666666666666667"},
		{KindBurn, `decimal(1) / decimal(0)`, ""},
		{KindBurn, `weight / (event.quantity - event.quantity)`, ""},
		{KindBurn, `weight * 2 + 1`, "6"},
		{KindBurn, `weight / 2 - 1`, "0.25"},
		{KindBurn, `weight > 2 && weight <= decimal("2.5") && event.attempt >= 1 ? weight : decimal(0)`, "2.5"},
		{KindBurn, `decimal(7u) * decimal(decimal("1.5"))`, "10.5"},
		{KindBurn, `decimal(string(weight) + "1")`, "2.51"},
		{KindBurn, `decimal(1.0/0.0)`, ""},
		{KindBurn, `decimal("abc")`, ""},
		{KindBurn, `decimal("1e41")`, ""},
		{KindBurn, `decimal("1e3") + weight`, "1002.5"},
		{KindBurn, `weight - decimal(3)`, ""},    // negative
		{KindBurn, `event.properties.pages`, ""}, // dyn: a double at run time
		{KindBurn, `org.segment == "enterprise" && org.id == "42" && event.action == "render" && event.runId == "" && event.completion == decimal(1) ? weight : decimal(0)`, "2.5"},
		{KindBurn, `event.occurredAt < now ? weight : decimal(0)`, "2.5"},
		{KindBurn, `has(event.quantity) ? weight : decimal(0)`, "2.5"},
		{KindBurn, `[decimal(1), decimal(2)].exists(d, d > weight) ? decimal(1) : decimal(0)`, "0"},
	} {
		p, err := Compile(tc.kind, tc.expr)
		if err != nil {
			t.Errorf("Compile(%s, %q) = %v", tc.kind, tc.expr, err)
			continue
		}
		got, err := p.Decimal(context.Background(), burnVars("SUCCEEDED", props))
		if tc.want == "" {
			if !errors.Is(err, ErrRuntime) {
				t.Errorf("%q = %v, %v, want ErrRuntime", tc.expr, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(dec(tc.want)) || got.String() != tc.want {
			t.Errorf("%q = %v, %v, want %s", tc.expr, got, err, tc.want)
		}
	}
}

func TestNegativeAndTypeMessages(t *testing.T) {
	p := mustCompile(t, KindBurn, `decimal(-1)`)
	_, err := p.Decimal(context.Background(), burnVars("SUCCEEDED", nil))
	if !errors.Is(err, ErrRuntime) || !strings.Contains(err.Error(), "negative amount") {
		t.Errorf("negative = %v", err)
	}
	p = mustCompile(t, KindBurn, `event.properties.name`)
	_, err = p.Decimal(context.Background(), burnVars("SUCCEEDED", map[string]any{"name": "x"}))
	if !errors.Is(err, ErrRuntime) || !strings.Contains(err.Error(), "string") {
		t.Errorf("string result = %v", err)
	}
}

func grantAt(id, creditType string, priority int64, created, expires time.Time) *Grant {
	return &Grant{ID: id, CreditType: creditType, Priority: priority, Amount: dec("10"), Remaining: dec("5"),
		UnitPrice: dec("0.01"), EffectiveAt: created, ExpiresAt: expires, CreatedAt: created}
}

func TestDrawOrder(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 1, d, 0, 0, 0, 0, time.UTC) }
	grants := []*Grant{
		grantAt("a", "PAID", 0, day(1), time.Time{}), // no expiry
		grantAt("b", "PAID", 0, day(2), day(20)),
		grantAt("c", "INCENTIVE", 1, day(3), day(25)),
		grantAt("d", "INCENTIVE", 0, day(4), day(30)),
		grantAt("e", "PAID", 1, day(5), day(10)),
	}
	for _, tc := range []struct {
		name, expr string
		want       string
	}{
		{"FEFO", `[grant.priority, grant.expiresAt]`, "bdaec"},
		{"FIFO", `[grant.createdAt]`, "abcde"},
		{"incentives first", `[grant.creditType == "INCENTIVE" ? 0 : 1, grant.expiresAt]`, "cdeba"},
		{"cheapest remaining", `[grant.unitPrice * grant.remaining, grant.id]`, "abcde"},
		{"no expiry last", `[grant.expiresAt == timestamp("9999-12-31T23:59:59Z"), grant.id]`, "bcdea"},
		{"doubles and strings", `[1.5, grant.id, grant.amount > grant.remaining]`, "abcde"},
	} {
		p := mustCompile(t, KindDrawOrder, tc.expr)
		keys := map[string]SortKey{}
		for _, g := range grants {
			k, err := p.SortKey(context.Background(), Vars{Grant: g, Now: day(6)})
			if err != nil {
				t.Fatalf("%s: SortKey(%s) = %v", tc.name, g.ID, err)
			}
			keys[g.ID] = k
		}
		order := slices.Clone(grants)
		slices.SortStableFunc(order, func(a, b *Grant) int { return CompareKeys(keys[a.ID], keys[b.ID]) })
		var got strings.Builder
		for _, g := range order {
			got.WriteString(g.ID)
		}
		if got.String() != tc.want {
			t.Errorf("%s: order = %s, want %s (keys %v)", tc.name, got.String(), tc.want, keys)
		}
	}
}

func TestSortKeyElements(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := mustCompile(t, KindDrawOrder, `[1, 2u, decimal("1.5"), "s", now, true, 0.1]`)
	k, err := p.SortKey(context.Background(), Vars{Grant: &Grant{}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := SortKey{int64(1), int64(2), dec("1.5"), "s", now, true, dec("0.1")}
	if CompareKeys(k, want) != 0 || fmt.Sprintf("%T", k[1]) != "int64" || fmt.Sprintf("%T", k[6]) != "decimal.Decimal" {
		t.Errorf("SortKey = %#v, want %#v", k, want)
	}
	for _, expr := range []string{`[[1]]`, `[{"a": 1}]`, `[null]`, `grant.id == "" ? [1] : [2]`} {
		p := mustCompile(t, KindDrawOrder, expr)
		_, err := p.SortKey(context.Background(), Vars{Grant: &Grant{ID: ""}, Now: now})
		if strings.HasPrefix(expr, "grant") {
			if err != nil {
				t.Errorf("SortKey(%q) = %v", expr, err)
			}
			continue
		}
		if !errors.Is(err, ErrRuntime) {
			t.Errorf("SortKey(%q) = %v, want ErrRuntime", expr, err)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		a, b SortKey
		want int
	}{
		{SortKey{}, SortKey{}, 0},
		{SortKey{int64(1)}, SortKey{int64(1), "x"}, -1},
		{SortKey{int64(2)}, SortKey{int64(1), "x"}, 1},
		{SortKey{dec("1.5")}, SortKey{int64(2)}, -1},
		{SortKey{int64(2)}, SortKey{dec("2.0")}, 0},
		{SortKey{"a"}, SortKey{"b"}, -1},
		{SortKey{t1}, SortKey{t1.Add(time.Second)}, -1},
		{SortKey{false}, SortKey{true}, -1},
		{SortKey{true}, SortKey{int64(0)}, -1}, // bool < number
		{SortKey{"z"}, SortKey{int64(0)}, 1},   // string > number
		{SortKey{t1}, SortKey{"z"}, 1},         // timestamp > string
	} {
		if got := CompareKeys(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareKeys(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareKeys(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareKeys(%v, %v) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		expr     string
		line     int
		col      int
		contains string
	}{
		{KindBurn, `"x"`, 1, 1, "want decimal"},
		{KindBurn, `1`, 1, 1, "want decimal"},
		{KindBurn, `event.status`, 1, 6, "want decimal"},
		{KindWeight, `1.5`, 1, 1, "want decimal"},
		{KindDrawOrder, `decimal(1)`, 1, 8, "want a list"},
		{KindBurn, `nope + weight`, 1, 1, "undeclared reference to 'nope'"},
		{KindWeight, `weight`, 1, 1, "undeclared reference to 'weight'"},
		{KindDrawOrder, `[event.status]`, 1, 2, "undeclared reference to 'event'"},
		{KindBurn, `grant.amount`, 1, 1, "undeclared reference to 'grant'"},
		{KindBurn, `event.nope`, 1, 6, "undefined field 'nope'"},
		{KindBurn, `event.status == `, 1, 17, "Syntax error"},
		{KindBurn, "weight +\n  * 1", 2, 3, "Syntax error"},
		{KindBurn, "weight *\n  decimal(\"1\") + \"x\"", 2, 16, "found no matching overload for '_+_'"},
		{KindBurn, `2 * weight`, 1, 3, "no matching overload"},
		{KindBurn, `weight == 1 ? weight : weight`, 1, 8, "no matching overload"},
		{KindBurn, ``, 1, 1, "empty"},
		{KindBurn, strings.Repeat("1+", 5001) + "1", 1, 1, "limit"},
		{Kind("NOPE"), `1`, 1, 1, "unknown rule kind"},
	} {
		_, err := Compile(tc.kind, tc.expr)
		var ce *CompileError
		if !errors.Is(err, ErrCompile) || !errors.As(err, &ce) {
			t.Errorf("Compile(%s, %.40q) = %v, want CompileError", tc.kind, tc.expr, err)
			continue
		}
		p := ce.Positions[0]
		if p.Line != tc.line || p.Column != tc.col || !strings.Contains(p.Message, tc.contains) {
			t.Errorf("Compile(%s, %.40q) = %+v, want line %d column %d containing %q", tc.kind, tc.expr, p, tc.line, tc.col, tc.contains)
		}
		if want := fmt.Sprintf("line %d, column %d: ", tc.line, tc.col); !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%s, %.40q).Error() = %q, want it to contain %q", tc.kind, tc.expr, err, want)
		}
		if ps := Validate(tc.kind, tc.expr); len(ps) == 0 || ps[0] != p {
			t.Errorf("Validate(%s, %.40q) = %v, want %v", tc.kind, tc.expr, ps, p)
		}
		if errors.Is(err, ErrRuntime) {
			t.Errorf("Compile(%s, %.40q) error is ErrRuntime", tc.kind, tc.expr)
		}
	}
	if ps := Validate(KindBurn, burnExample); ps != nil {
		t.Errorf("Validate(burn example) = %v, want nil", ps)
	}
}

func TestCostLimit(t *testing.T) {
	// Bounded and too expensive: rejected at compile time.
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 100), ",") + "]"
	expr := fmt.Sprintf("%s.map(x, %s.map(y, %s.map(z, x + y + z))).size() > 0 ? decimal(1) : decimal(0)", list, list, list)
	if _, err := Compile(KindBurn, expr); !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "cost") {
		t.Errorf("Compile(expensive) = %v, want a cost compile error", err)
	}
	// Unbounded at compile time: stopped at run time.
	p := mustCompile(t, KindBurn, `event.properties.xs.map(x, event.properties.xs.map(y, x + y)).size() > 0 ? decimal(1) : decimal(0)`)
	xs := make([]any, 1000)
	for i := range xs {
		xs[i] = float64(i)
	}
	_, err := p.Decimal(context.Background(), burnVars("SUCCEEDED", map[string]any{"xs": xs}))
	if !errors.Is(err, ErrRuntime) || !strings.Contains(err.Error(), "cost") {
		t.Errorf("Decimal(expensive) = %v, want a cost ErrRuntime", err)
	}
	// The same rule within budget.
	got, err := p.Decimal(context.Background(), burnVars("SUCCEEDED", map[string]any{"xs": xs[:10]}))
	if err != nil || !got.Equal(decimal.NewFromInt(1)) {
		t.Errorf("Decimal(cheap) = %v, %v, want 1", got, err)
	}
}

func TestContextCancelled(t *testing.T) {
	p := mustCompile(t, KindBurn, burnExample)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Decimal(ctx, burnVars("SUCCEEDED", nil))
	if !errors.Is(err, ErrRuntime) || !errors.Is(err, context.Canceled) {
		t.Errorf("Decimal(cancelled) = %v, want ErrRuntime and context.Canceled", err)
	}
	d := mustCompile(t, KindDrawOrder, `[grant.priority]`)
	if _, err := d.SortKey(ctx, Vars{Grant: &Grant{}}); !errors.Is(err, ErrRuntime) {
		t.Errorf("SortKey(cancelled) = %v, want ErrRuntime", err)
	}
}

func TestWrongKindAndMissingVars(t *testing.T) {
	ctx := context.Background()
	d := mustCompile(t, KindDrawOrder, `[grant.priority]`)
	if _, err := d.Decimal(ctx, Vars{}); !errors.Is(err, ErrRuntime) {
		t.Errorf("Decimal on DRAW_ORDER = %v", err)
	}
	b := mustCompile(t, KindBurn, burnExample)
	if _, err := b.SortKey(ctx, Vars{}); !errors.Is(err, ErrRuntime) {
		t.Errorf("SortKey on BURN = %v", err)
	}
	if _, err := b.Decimal(ctx, Vars{Weight: dec("1")}); !errors.Is(err, ErrRuntime) {
		t.Errorf("Decimal without event = %v", err)
	}
	if _, err := d.SortKey(ctx, Vars{}); !errors.Is(err, ErrRuntime) {
		t.Errorf("SortKey without grant = %v", err)
	}
}

func TestCache(t *testing.T) {
	c := NewCache()
	var wg sync.WaitGroup
	progs := make([]*Program, 32)
	for i := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Get("policy:1:v1", KindBurn, burnExample)
			if err != nil {
				t.Error(err)
			}
			progs[i] = p
		}()
	}
	wg.Wait()
	if n := c.compiles.Load(); n != 1 {
		t.Errorf("compiles = %d, want 1", n)
	}
	for _, p := range progs {
		if p != progs[0] || p == nil {
			t.Fatalf("Get returned different programs")
		}
	}
	if _, err := c.Get("policy:2:v1", KindBurn, `"x"`); !errors.Is(err, ErrCompile) {
		t.Errorf("Get(bad) = %v, want ErrCompile", err)
	}
	p, err := c.Get("policy:1:v1", KindBurn, `weight`)
	if err != nil || p.Source() != "weight" {
		t.Errorf("Get(changed expr) = %v, %v", p, err)
	}
	if n := c.compiles.Load(); n != 3 {
		t.Errorf("compiles = %d, want 3", n)
	}
}

func TestConcurrentEval(t *testing.T) {
	p := mustCompile(t, KindBurn, burnExample)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				got, err := p.Decimal(context.Background(), burnVars("SUCCEEDED", nil))
				if err != nil || !got.Equal(dec("7.5")) {
					t.Errorf("Decimal = %v, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = rejected
	}{
		{"12.5", "12.5"},
		{"-3", "-3"},
		{"1e3", "1000"},
		{"1E3", "1000"},
		{"0", "0"},
		{"0.1", "0.1"},
		{"-0.000001", "-0.000001"},
		{"1e40", "1e40"},
		{"1e-40", "1e-40"},
		{"0." + strings.Repeat("0", 39) + "1", "1e-40"},
		{"", ""},
		{" 1", ""},
		{"1 ", ""},
		{"abc", ""},
		{"NaN", ""},
		{"Inf", ""},
		{"-Infinity", ""},
		{"1e41", ""},
		{"1e-41", ""},
		{"0." + strings.Repeat("0", 40) + "1", ""},
		{strings.Repeat("1", 101), ""},
		{"1,5", ""},
		{"0x10", ""},
		{"1e", ""},
		{"--1", ""},
	} {
		got, err := ParseDecimal(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseDecimal(%q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(dec(tc.want)) {
			t.Errorf("ParseDecimal(%q) = %v, %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{burnExample, `[grant.priority, grant.expiresAt]`, `decimal(1) + decimal(event.properties.pages)`, `event.status == `, "a\n+", `decimal("1e3").round(2)`} {
		f.Add(s)
	}
	v := burnVars("SUCCEEDED", map[string]any{"pages": 8.0})
	v.Grant = &Grant{ID: "g"}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, k := range []Kind{KindBurn, KindWeight, KindDrawOrder} {
			p, err := Compile(k, expr)
			if err != nil {
				if !errors.Is(err, ErrCompile) {
					t.Fatalf("Compile(%s, %q) = %v, not ErrCompile", k, expr, err)
				}
				if len(Validate(k, expr)) == 0 {
					t.Fatalf("Validate(%s, %q) = nil for a failing rule", k, expr)
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if k == KindDrawOrder {
				if _, err := p.SortKey(ctx, v); err != nil && !errors.Is(err, ErrRuntime) {
					t.Fatalf("SortKey(%q) = %v", expr, err)
				}
			} else if _, err := p.Decimal(ctx, v); err != nil && !errors.Is(err, ErrRuntime) {
				t.Fatalf("Decimal(%q) = %v", expr, err)
			}
			cancel()
		}
	})
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"12.5", "-3", "1e3", "", "NaN", "1e41", ".5", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		if e := d.Exponent(); e < -40 || e > 40 {
			t.Fatalf("ParseDecimal(%q) exponent %d", s, e)
		}
		again, err := ParseDecimal(d.String())
		if err == nil && !again.Equal(d) {
			t.Fatalf("ParseDecimal(%q) = %s, reparsed %s", s, d, again)
		}
	})
}

func BenchmarkBurnEval(b *testing.B) {
	p := mustCompile(b, KindBurn, burnExample)
	v := burnVars("SUCCEEDED", nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Decimal(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(KindBurn, burnExample); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadsStatus(t *testing.T) {
	for expr, want := range map[string]bool{
		`decimal(0.5) * event.quantity`:                          false,
		`event.status == "FAILED" ? decimal(0) : decimal(1)`:     true,
		`has(event.properties.status) ? decimal(1) : decimal(0)`: false,
	} {
		p, err := Compile(KindIncentive, expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := p.ReadsStatus(); got != want {
			t.Errorf("ReadsStatus(%s) = %v, want %v", expr, got, want)
		}
	}
}

// The README's TRANSFER and REFUND examples compile.
func TestReadmeTransferAndRefundRules(t *testing.T) {
	for kind, expr := range map[Kind]string{
		KindTransfer: `grant.creditType != "INCENTIVE" && movedToday + amount <= decimal(500) && (role == "ORG_ADMIN" || role == "OPERATOR")`,
		KindRefund: `asService && reason.startsWith("SLA") ? refundable
  : role == "ORG_ADMIN" && event.status == "FAILED" && ageHours <= decimal(24) ? min(refundable, decimal(50))
  : role == "OPERATOR" ? refundable
  : decimal(0)`,
		KindRefund + "-grant": `subject == "EVENT" ? {"amount": role == "OPERATOR" ? refundable : decimal(0)}
  : grant.creditType == "ON_DEMAND" && ageHours <= decimal(14 * 24)
    ? {"form": "MONEY", "factor": ageHours <= decimal(24) ? decimal(1) : decimal("0.8")}
    : {"amount": decimal(0)}`,
		KindAlert: `poolKind == "ACCOUNT" && org.segment == "enterprise"
  && (available < allowance * decimal("0.1") || (depletionDays >= decimal(0) && depletionDays < decimal(5)))`,
	} {
		kind = Kind(strings.TrimSuffix(string(kind), "-grant"))
		if _, err := Compile(kind, expr); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if _, err := Compile(KindRefund, `true`); err == nil {
		t.Error("a REFUND rule returning bool compiled")
	}
}

// A REFUND rule answers a decimal or a map of amount, form and factor.
func TestRefundAnswer(t *testing.T) {
	d := decimal.RequireFromString
	g := &Grant{CreditType: "ON_DEMAND", Amount: d("100"), Remaining: d("40"), UnitPrice: d("0.02")}
	vars := Vars{Subject: "GRANT", Grant: g, Event: &Event{}, Org: &Org{}, Amount: d("40"), Refundable: d("40"),
		Charged: d("2"), AgeHours: d("30"), Role: "ORG_ADMIN", Reason: "unused"}
	for _, c := range []struct {
		expr string
		want RefundAnswer
		err  string
	}{
		{`refundable`, RefundAnswer{Amount: d("40"), Factor: d("1")}, ""},
		{`{"form": "MONEY"}`, RefundAnswer{Amount: d("40"), Form: FormMoney, Factor: d("1")}, ""},
		{`subject == "GRANT" && ageHours <= decimal(14 * 24) ? {"form": "MONEY", "factor": decimal("0.9")} : {"amount": decimal(0)}`,
			RefundAnswer{Amount: d("40"), Form: FormMoney, Factor: d("0.9")}, ""},
		{`{"amount": min(refundable, decimal(10)), "form": "SERVICE"}`, RefundAnswer{Amount: d("10"), Form: FormService, Factor: d("1")}, ""},
		{`grant.creditType == "ON_DEMAND" && charged > decimal(1) ? refundable : decimal(0)`, RefundAnswer{Amount: d("40"), Factor: d("1")}, ""},
		{`{"factor": decimal("1.5")}`, RefundAnswer{}, "factor 1.5"},
		{`{"form": "CASH"}`, RefundAnswer{}, "form is"},
		{`{"amont": refundable}`, RefundAnswer{}, `key "amont"`},
		{`{"amount": 5}`, RefundAnswer{}, "want decimal"},
		{`decimal(-1)`, RefundAnswer{}, "negative"},
	} {
		p, err := Compile(KindRefund, c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		got, err := p.Refund(context.Background(), vars)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrRuntime) {
				t.Errorf("%s: err %v, want %q", c.expr, err, c.err)
			}
			continue
		}
		if err != nil || !got.Amount.Equal(c.want.Amount) || got.Form != c.want.Form || !got.Factor.Equal(c.want.Factor) {
			t.Errorf("%s = %+v, %v; want %+v", c.expr, got, err, c.want)
		}
	}
}
