package engine_test

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

// quoteRegister: agent.run 10 credits (value 2, cost 0.05), web.search 0.5
// (value 0.10, cost 0.001, runs in degraded mode), doc.summarize 1 + 0.25
// a page (reads a property), chat.reply 1.5 x quantity (reads none),
// cheap.op 1 credit (value 0.005, cost 0.02: priced outside its anchors).
func quoteRegister(t *testing.T) *engine.Register {
	t.Helper()
	compile := func(expr string) *rules.Program {
		p, err := rules.Compile(rules.KindWeight, expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		return p
	}
	null := func(s string) decimal.NullDecimal { return decimal.NewNullDecimal(d(s)) }
	return &engine.Register{ID: 7, Name: "default", Version: 3, Weights: map[string]*engine.Weight{
		"agent.run":     {Action: "agent.run", Credits: d("10"), ValuePerAction: null("2"), CostPerAction: null("0.05")},
		"web.search":    {Action: "web.search", Credits: d("0.5"), ValuePerAction: null("0.10"), CostPerAction: null("0.001"), DegradedAllowed: true},
		"doc.summarize": {Action: "doc.summarize", Expression: compile(`decimal(1) + decimal(event.properties.pages) * decimal("0.25")`)},
		"chat.reply":    {Action: "chat.reply", Expression: compile(`event.quantity * decimal("1.5")`)},
		"cheap.op":      {Action: "cheap.op", Credits: d("1"), ValuePerAction: null("0.005"), CostPerAction: null("0.02")},
	}}
}

// quoteTerms: 100000 included credits at 0.01 (worth 1000 USD, not billed),
// a platform fee of 500 USD a period, under mode.
func quoteTerms(mode credit.OverageMode) engine.QuoteTerms {
	return engine.QuoteTerms{Plan: "team", IncludedCredits: d("100000"), PricePerCredit: d("0.01"), PlatformFee: d("500"),
		Currency: "USD", OverageMode: mode, TopUpCap: -1}
}

// quoteMix: agent.run x 12000 = 120000 credits, web.search x 10000 = 5000
// credits; 125000 in all, 25000 beyond the 100000 included. An uncovered
// amount U is shared 120000/125000 = 96 % to agent.run and 4 % to web.search.
var quoteMix = []engine.ActionCount{{Action: "agent.run", Count: d("12000")}, {Action: "web.search", Count: d("10000")}}

// quoteWant holds expected decimals as strings; "" is 0.
type quoteWant struct {
	included, excess, overage, overageCost string
	topUps                                 int
	topUpCredits, topUpCost, borrowed      string
	uncovered, denied, waived, unused      string
	total, effective                       string
	includedValue                          string   // "" is quoteTerms' 100000 x 0.01 = 1000
	lineUncovered, lineDenied              []string // per line, when set
	note                                   string   // a substring of one note
}

// quoteWith is quoteTerms(mode) changed by f.
func quoteWith(mode credit.OverageMode, f func(*engine.QuoteTerms)) engine.QuoteTerms {
	q := quoteTerms(mode)
	f(&q)
	return q
}

// quoteThirds: three lines of web.search x 2 = 1 credit each.
var quoteThirds = []engine.ActionCount{{Action: "web.search", Count: d("2")}, {Action: "web.search", Count: d("2")}, {Action: "web.search", Count: d("2")}}

// quoteModeCases are hand-computed plans under every overage mode.
var quoteModeCases = []struct {
	name  string
	terms engine.QuoteTerms
	usage []engine.ActionCount
	want  quoteWant
}{
	// 9000 x 10 = 90000 <= 100000: 10000 unused; total = the fee 500;
	// 500 / 90000 = 0.0055555... -> 0.00555556.
	{"within included", quoteTerms(credit.OverageHard), []engine.ActionCount{{Action: "agent.run", Count: d("9000")}},
		quoteWant{included: "90000", unused: "10000", total: "500", effective: "0.00555556", note: "fit the 100000 included credits"}},
	// HARD: the 25000 excess denied, 24000 of agent.run, 1000 of
	// web.search; 500 / (125000 - 25000) = 0.005.
	{"HARD", quoteTerms(credit.OverageHard), quoteMix,
		quoteWant{included: "100000", excess: "25000", uncovered: "25000", denied: "25000", total: "500", effective: "0.005",
			lineUncovered: []string{"24000", "1000"}, lineDenied: []string{"24000", "1000"}, note: "excess of 25000 credits denied under HARD"}},
	// SOFT at 0.015: 25000 x 0.015 = 375; total 875; 875 / 125000 = 0.007.
	{"SOFT with an overage price", quoteWith(credit.OverageSoft, func(q *engine.QuoteTerms) { q.OveragePrice = decimal.NewNullDecimal(d("0.015")) }), quoteMix,
		quoteWant{included: "100000", excess: "25000", overage: "25000", overageCost: "375", total: "875", effective: "0.007",
			note: "25000 overage credits billed at 0.015 USD each: 375 USD"}},
	// SOFT with tiers 0-10000 at 0.01, then 0.02: 100 + 15000 x 0.02 = 400;
	// total 900; 900 / 125000 = 0.0072.
	{"SOFT with overage tiers", quoteWith(credit.OverageSoft, func(q *engine.QuoteTerms) {
		up := d("10000")
		q.OveragePrice, q.OverageTiers = decimal.NewNullDecimal(d("0.01")), []engine.PriceTier{{From: d("0"), UpTo: &up, Price: d("0.01")}, {From: up, Price: d("0.02")}}
	}), quoteMix,
		quoteWant{included: "100000", excess: "25000", overage: "25000", overageCost: "400", total: "900", effective: "0.0072",
			note: "graduated overage tiers: 400 USD"}},
	// SOFT without a price: the ledger bills overage at 0 (not at the
	// price per credit); total 500; 500 / 125000 = 0.004.
	{"SOFT without an overage price", quoteTerms(credit.OverageSoft), quoteMix,
		quoteWant{included: "100000", excess: "25000", overage: "25000", total: "500", effective: "0.004", note: "billed at 0"}},
	// DEGRADED: agent.run's 24000 denied, web.search's 1000 run free;
	// 500 / (125000 - 24000) = 0.004950495... -> 0.0049505.
	{"DEGRADED", quoteTerms(credit.OverageDegraded), quoteMix,
		quoteWant{included: "100000", excess: "25000", uncovered: "25000", denied: "24000", waived: "1000", total: "500", effective: "0.0049505",
			lineUncovered: []string{"24000", "1000"}, lineDenied: []string{"24000", "0"}, note: "other actions denied (agent.run)"}},
	// AUTO_TOP_UP, packs of 10000 at 0.012, no threshold, no cap:
	// ceil(25000 / 10000) = 3 packs = 30000 credits, 30000 x 0.012 = 360;
	// unused 100000 + 30000 - 125000 = 5000; total 860; 860 / 125000 = 0.00688.
	{"AUTO_TOP_UP without cap", quoteWith(credit.OverageAutoTopUp, func(q *engine.QuoteTerms) { q.TopUpCredits, q.OnDemandPrice = d("10000"), d("0.012") }), quoteMix,
		quoteWant{included: "100000", excess: "25000", topUps: 3, topUpCredits: "30000", topUpCost: "360", unused: "5000", total: "860", effective: "0.00688",
			note: "3 auto top-up packs of 10000 credits at 0.012 USD a credit: 360 USD"}},
	// Threshold 8000: the balance must end at >= 8000, so
	// ceil((25000 + 8000) / 10000) = 4 packs = 40000, 480; unused 15000;
	// total 980; 980 / 125000 = 0.00784.
	{"AUTO_TOP_UP with a threshold", quoteWith(credit.OverageAutoTopUp, func(q *engine.QuoteTerms) {
		q.TopUpCredits, q.OnDemandPrice, q.TopUpThreshold = d("10000"), d("0.012"), d("8000")
	}), quoteMix,
		quoteWant{included: "100000", excess: "25000", topUps: 4, topUpCredits: "40000", topUpCost: "480", unused: "15000", total: "980", effective: "0.00784"}},
	// Threshold 5000 ends exactly at the threshold: (25000 + 5000) / 10000 = 3 packs.
	{"AUTO_TOP_UP ending at the threshold", quoteWith(credit.OverageAutoTopUp, func(q *engine.QuoteTerms) {
		q.TopUpCredits, q.OnDemandPrice, q.TopUpThreshold = d("10000"), d("0.012"), d("5000")
	}), quoteMix,
		quoteWant{included: "100000", excess: "25000", topUps: 3, topUpCredits: "30000", topUpCost: "360", unused: "5000", total: "860", effective: "0.00688"}},
	// Within the included credits but below the threshold: 9500 x 10 =
	// 95000 leaves 5000 < 10000, so 1 pack: 10000 x 0.012 = 120; unused
	// 100000 + 10000 - 95000 = 15000; total 620; 620 / 95000 = 0.00652631... -> 0.00652632.
	{"AUTO_TOP_UP below the threshold within included", quoteWith(credit.OverageAutoTopUp, func(q *engine.QuoteTerms) {
		q.TopUpCredits, q.OnDemandPrice, q.TopUpThreshold = d("10000"), d("0.012"), d("10000")
	}), []engine.ActionCount{{Action: "agent.run", Count: d("9500")}},
		quoteWant{included: "95000", topUps: 1, topUpCredits: "10000", topUpCost: "120", unused: "15000", total: "620", effective: "0.00652632"}},
	// Cap of 2 packs: 20000 credits, 240; 25000 - 20000 = 5000 denied
	// (4800 agent.run, 200 web.search); total 740; 740 / 120000 = 0.0061666... -> 0.00616667.
	{"AUTO_TOP_UP with cap", quoteWith(credit.OverageAutoTopUp, func(q *engine.QuoteTerms) {
		q.TopUpCredits, q.OnDemandPrice, q.TopUpCap = d("10000"), d("0.012"), 2
	}), quoteMix,
		quoteWant{included: "100000", excess: "25000", topUps: 2, topUpCredits: "20000", topUpCost: "240", uncovered: "5000", denied: "5000",
			total: "740", effective: "0.00616667", lineUncovered: []string{"4800", "200"}, note: "beyond the cap of 2 packs"}},
	// No pack size: nothing bought, the excess denied like HARD.
	{"AUTO_TOP_UP without a pack size", quoteTerms(credit.OverageAutoTopUp), quoteMix,
		quoteWant{included: "100000", excess: "25000", uncovered: "25000", denied: "25000", total: "500", effective: "0.005", note: "no pack size"}},
	// BORROW within a limit of 30000: 25000 borrowed, no money; the next
	// period opens with 100000 - 25000 = 75000; 500 / 125000 = 0.004.
	{"BORROW within the limit", quoteWith(credit.OverageBorrow, func(q *engine.QuoteTerms) { q.BorrowLimit = d("30000") }), quoteMix,
		quoteWant{included: "100000", excess: "25000", borrowed: "25000", total: "500", effective: "0.004", note: "opens with 75000 included credits"}},
	// BORROW beyond a limit of 20000: 20000 borrowed, 5000 denied;
	// 500 / 120000 = 0.0041666... -> 0.00416667.
	{"BORROW beyond the limit", quoteWith(credit.OverageBorrow, func(q *engine.QuoteTerms) { q.BorrowLimit = d("20000") }), quoteMix,
		quoteWant{included: "100000", excess: "25000", borrowed: "20000", uncovered: "5000", denied: "5000", total: "500", effective: "0.00416667",
			lineUncovered: []string{"4800", "200"}, note: "beyond the borrow limit of 20000"}},
	// Duplicate lines, an uneven share: 3 x (2 x 0.5) = 3 credits, 2
	// included, 1 uncovered: 1/3 each rounded down to 12 places, the
	// first of the equal lines takes the 0.000000000001 left;
	// 500 / (3 - 1) = 250; included value 2 x 0.01 = 0.02.
	{"uneven shares", quoteWith(credit.OverageHard, func(q *engine.QuoteTerms) { q.IncludedCredits = d("2") }), quoteThirds,
		quoteWant{included: "2", includedValue: "0.02", excess: "1", uncovered: "1", denied: "1", total: "500", effective: "250",
			lineUncovered: []string{"0.333333333334", "0.333333333333", "0.333333333333"}}},
}

// Quote under every overage mode, against hand-computed plans.
func TestQuoteModes(t *testing.T) {
	reg := quoteRegister(t)
	for _, c := range quoteModeCases {
		t.Run(c.name, func(t *testing.T) {
			q, err := engine.Quote(context.Background(), reg, c.terms, c.usage, engine.Org{ID: 1}, now)
			if err != nil {
				t.Fatalf("Quote: %v", err)
			}
			checkQuote(t, q, c.want)
		})
	}
}

func checkQuote(t *testing.T, q engine.Quotation, w quoteWant) {
	t.Helper()
	dec := func(s string) decimal.Decimal {
		if s == "" {
			return decimal.Zero
		}
		return d(s)
	}
	for _, f := range []struct {
		name string
		got  decimal.Decimal
		want string
	}{
		{"Included", q.Included, w.included}, {"Excess", q.Excess, w.excess}, {"Overage", q.Overage, w.overage},
		{"OverageCost", q.OverageCost, w.overageCost}, {"TopUpCredits", q.TopUpCredits, w.topUpCredits}, {"TopUpCost", q.TopUpCost, w.topUpCost},
		{"Borrowed", q.Borrowed, w.borrowed}, {"Uncovered", q.Uncovered, w.uncovered}, {"Denied", q.Denied, w.denied},
		{"Waived", q.Waived, w.waived}, {"Unused", q.Unused, w.unused}, {"Total", q.Total, w.total},
		{"EffectivePricePerCredit", q.EffectivePricePerCredit, w.effective}, {"PlatformFee", q.PlatformFee, "500"},
		{"IncludedValue", q.IncludedValue, cmp.Or(w.includedValue, "1000")},
	} {
		if !f.got.Equal(dec(f.want)) {
			t.Errorf("Quote().%s = %s, want %s", f.name, f.got, dec(f.want))
		}
	}
	if q.TopUps != w.topUps {
		t.Errorf("Quote().TopUps = %d, want %d", q.TopUps, w.topUps)
	}
	for i, want := range w.lineUncovered {
		if !q.Lines[i].Uncovered.Equal(d(want)) {
			t.Errorf("Quote().Lines[%d].Uncovered = %s, want %s", i, q.Lines[i].Uncovered, want)
		}
	}
	for i, want := range w.lineDenied {
		if !q.Lines[i].Denied.Equal(d(want)) {
			t.Errorf("Quote().Lines[%d].Denied = %s, want %s", i, q.Lines[i].Denied, want)
		}
	}
	if w.note != "" && !strings.Contains(strings.Join(q.Notes, "\n"), w.note) {
		t.Errorf("Quote().Notes = %q, want one containing %q", q.Notes, w.note)
	}
}

// Quote's lines: weights (fixed and expressions, with and without
// properties), value and cost, price per action, value anchoring notes.
func TestQuoteLines(t *testing.T) {
	reg := quoteRegister(t)
	usage := []engine.ActionCount{
		{Action: "agent.run", Count: d("12000")},
		{Action: "doc.summarize", Count: d("3000"), Properties: map[string]any{"pages": float64(8)}},
		{Action: "chat.reply", Count: d("1000")},
		{Action: "cheap.op", Count: d("0.5")},
		{Action: "web.search", Count: d("0")},
	}
	q, err := engine.Quote(context.Background(), reg, quoteTerms(credit.OverageHard), usage, engine.Org{ID: 1, Segment: "smb"}, now)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	// perAction, credits, price per action (x 0.01), value, cost ("" none).
	for i, want := range []struct{ perAction, credits, price, value, cost string }{
		{"10", "120000", "0.1", "24000", "600"}, // 12000 x 10; value 12000 x 2, cost 12000 x 0.05
		{"3", "9000", "0.03", "", ""},           // 1 + 8 x 0.25 = 3; x 3000
		{"1.5", "1500", "0.015", "", ""},        // 1 x 1.5; x 1000
		{"1", "0.5", "0.01", "0.0025", "0.01"},  // 0.5 x 1; value 0.5 x 0.005, cost 0.5 x 0.02
		{"0.5", "0", "0.005", "0", "0"},         // a zero count costs nothing
	} {
		l := q.Lines[i]
		if !l.CreditsPerAction.Equal(d(want.perAction)) || !l.Credits.Equal(d(want.credits)) || !l.PricePerAction.Equal(d(want.price)) {
			t.Errorf("Quote().Lines[%d] = %s x %s = %s at %s, want %s, %s at %s", i, l.Count, l.CreditsPerAction, l.Credits, l.PricePerAction, want.perAction, want.credits, want.price)
		}
		if !nullIs(l.Value, want.value) || !nullIs(l.Cost, want.cost) {
			t.Errorf("Quote().Lines[%d] value %v cost %v, want %q, %q", i, l.Value, l.Cost, want.value, want.cost)
		}
	}
	// 120000 + 9000 + 1500 + 0.5 = 130500.5 > 100000: 30500.5 denied.
	if !q.Credits.Equal(d("130500.5")) || !q.Uncovered.Equal(d("30500.5")) || q.RegisterName != "default" || q.RegisterVersion != 3 {
		t.Errorf("Quote() = %s credits, %s uncovered, register %s v%d; want 130500.5, 30500.5, default v3", q.Credits, q.Uncovered, q.RegisterName, q.RegisterVersion)
	}
}

// Quote's value and cost totals and value anchoring notes (value > price >
// cost per action).
func TestQuoteAnchors(t *testing.T) {
	reg := quoteRegister(t)
	usage := []engine.ActionCount{{Action: "agent.run", Count: d("12000")}, {Action: "doc.summarize", Count: d("1"), Properties: map[string]any{"pages": float64(1)}},
		{Action: "cheap.op", Count: d("1")}}
	q, err := engine.Quote(context.Background(), reg, quoteTerms(credit.OverageHard), usage, engine.Org{ID: 1}, now)
	if err != nil {
		t.Fatalf("Quote: %v", err)
	}
	// Lines without a value make the totals unknown.
	if q.Value.Valid || q.Cost.Valid {
		t.Errorf("Quote().Value, Cost = %v, %v; want both unset (doc.summarize has none)", q.Value, q.Cost)
	}
	notes := strings.Join(q.Notes, "\n")
	for _, want := range []string{"usage[2] cheap.op: price per action 0.01 USD is not below its value 0.005 USD",
		"usage[2] cheap.op: price per action 0.01 USD is not above its cost 0.02 USD", "(information: not billed)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("Quote().Notes = %q, want one containing %q", q.Notes, want)
		}
	}
	if strings.Contains(notes, "agent.run: price") {
		t.Errorf("Quote().Notes = %q: agent.run is within its anchors (2 > 0.1 > 0.05)", q.Notes)
	}

	// Every line with a value and a cost: 12000 x 2 + 10000 x 0.10 = 25000; 600 + 10 = 610.
	q, err = engine.Quote(context.Background(), reg, quoteTerms(credit.OverageHard), quoteMix, engine.Org{ID: 1}, now)
	if err != nil || !nullIs(q.Value, "25000") || !nullIs(q.Cost, "610") {
		t.Errorf("Quote(quoteMix) value %v cost %v, %v; want 25000, 610", q.Value, q.Cost, err)
	}
}

func nullIs(x decimal.NullDecimal, want string) bool {
	if want == "" {
		return !x.Valid
	}
	return x.Valid && x.Decimal.Equal(d(want))
}

// Quote refuses bad terms and usage with stable codes, naming the field.
func TestQuoteBadInput(t *testing.T) {
	reg := quoteRegister(t)
	line := func(action, count string) engine.ActionCount {
		return engine.ActionCount{Action: action, Count: d(count)}
	}
	many := make([]engine.ActionCount, engine.MaxQuoteLines+1)
	for i := range many {
		many[i] = line("agent.run", "1")
	}
	hard := quoteTerms(credit.OverageHard)
	with := func(f func(*engine.QuoteTerms)) engine.QuoteTerms { q := hard; f(&q); return q }
	for _, c := range []struct {
		name  string
		reg   *engine.Register
		terms engine.QuoteTerms
		usage []engine.ActionCount
		code  credit.Code
		field string
		msg   string // a substring of the message
	}{
		{"unknown action", reg, hard, []engine.ActionCount{line("agent.run", "1"), line("nope", "1")}, credit.CodeUnknownAction, "usage[1].action",
			`action "nope" is not in weight register "default" version 3`},
		{"expression needs a property", reg, hard, []engine.ActionCount{line("doc.summarize", "10")}, credit.CodeRuleRuntime, "usage[0].properties", `"doc.summarize"`},
		{"expression given other properties", reg, hard, []engine.ActionCount{{Action: "doc.summarize", Count: d("1"), Properties: map[string]any{"words": float64(3)}}},
			credit.CodeRuleRuntime, "usage[0].properties", `"doc.summarize"`},
		{"negative count", reg, hard, []engine.ActionCount{line("agent.run", "-1")}, credit.CodeValidation, "usage[0].count", "negative"},
		{"too many decimal places", reg, hard, []engine.ActionCount{line("agent.run", "1"), line("agent.run", "0.0000001")}, credit.CodeValidation, "usage[1].count", "decimal places"},
		{"a huge exponent", reg, hard, []engine.ActionCount{line("agent.run", "1e-100")}, credit.CodeValidation, "usage[0].count", "decimal places"},
		{"too large a count", reg, hard, []engine.ActionCount{line("agent.run", "1000000000001")}, credit.CodeValidation, "usage[0].count", "at most"},
		{"empty action", reg, hard, []engine.ActionCount{line("", "1")}, credit.CodeValidation, "usage[0].action", "empty"},
		{"properties not JSON", reg, hard, []engine.ActionCount{{Action: "agent.run", Count: d("1"), Properties: map[string]any{"f": func() {}}}},
			credit.CodeValidation, "usage[0].properties", "JSON"},
		{"no usage", reg, hard, nil, credit.CodeValidation, "usage", "at least one"},
		{"too many lines", reg, hard, many, credit.CodeValidation, "usage", "more than 1000"},
		{"no register", nil, hard, quoteMix, credit.CodeNoRegister, "", ""},
		{"unknown overage mode", reg, with(func(q *engine.QuoteTerms) { q.OverageMode = "LOOSE" }), quoteMix, credit.CodeValidation, "terms.overageMode", "LOOSE"},
		{"no overage mode", reg, with(func(q *engine.QuoteTerms) { q.OverageMode = "" }), quoteMix, credit.CodeValidation, "terms.overageMode", ""},
		{"negative included credits", reg, with(func(q *engine.QuoteTerms) { q.IncludedCredits = d("-1") }), quoteMix, credit.CodeValidation, "terms.includedCredits", "negative"},
		{"negative overage price", reg, with(func(q *engine.QuoteTerms) { q.OveragePrice = decimal.NewNullDecimal(d("-0.1")) }), quoteMix,
			credit.CodeValidation, "terms.overagePrice", "negative"},
		{"a cap below -1", reg, with(func(q *engine.QuoteTerms) { q.TopUpCap = -2 }), quoteMix, credit.CodeValidation, "terms.topUpCap", "-2"},
		// 25000 / 0.0001 = 250000000 packs, more than MaxQuoteTopUps.
		{"too many top-ups", reg, with(func(q *engine.QuoteTerms) {
			q.OverageMode, q.TopUpCredits, q.OnDemandPrice = credit.OverageAutoTopUp, d("0.0001"), d("1")
		}), quoteMix, credit.CodeValidation, "usage", "250000000 auto top-up packs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := engine.Quote(context.Background(), c.reg, c.terms, c.usage, engine.Org{ID: 1}, now)
			var e *credit.Error
			if credit.CodeOf(err) != c.code || !errors.As(err, &e) || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("Quote() error = %v, want code %s, field %q, a message containing %q", err, c.code, c.field, c.msg)
			}
		})
	}
}
