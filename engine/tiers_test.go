package engine_test

import (
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

func tier(from, upTo, price string) engine.PriceTier {
	t := engine.PriceTier{From: d(from), Price: d(price)}
	if upTo != "" {
		u := d(upTo)
		t.UpTo = &u
	}
	return t
}

// Graduated prices: 0-1000 at 0.10, 1000-5000 at 0.08, 5000+ at 0.05.
func TestGraduated(t *testing.T) {
	tiers := []engine.PriceTier{tier("0", "1000", "0.10"), tier("1000", "5000", "0.08"), tier("5000", "", "0.05")}
	for _, c := range []struct {
		name        string
		before, qty string
		want        string
		tiers       []engine.PriceTier
	}{
		{name: "inside the first tier", before: "0", qty: "500", want: "50", tiers: tiers},
		// 200 x 0.10 + 300 x 0.08 = 20 + 24
		{name: "across a boundary", before: "800", qty: "500", want: "44", tiers: tiers},
		// 1000 x 0.10 + 4000 x 0.08 + 1000 x 0.05 = 100 + 320 + 50
		{name: "across every tier", before: "0", qty: "6000", want: "470", tiers: tiers},
		{name: "past the last boundary", before: "7000", qty: "10", want: "0.5", tiers: tiers},
		// exactly at a boundary: all at the next tier
		{name: "from a boundary", before: "1000", qty: "1", want: "0.08", tiers: tiers},
		{name: "fractional credits", before: "999.5", qty: "1", want: "0.09", tiers: tiers},
		{name: "nothing", before: "10", qty: "0", want: "0", tiers: tiers},
		{name: "flat without tiers", before: "123", qty: "10", want: "2.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := engine.Graduated(c.tiers, d("0.25"), d(c.before), d(c.qty))
			if !got.Equal(d(c.want)) {
				t.Fatalf("Graduated(before %s, qty %s) = %s, want %s", c.before, c.qty, got, c.want)
			}
		})
	}
}

func TestValidateTiers(t *testing.T) {
	for _, c := range []struct {
		name  string
		tiers []engine.PriceTier
		code  credit.Code
		field string
	}{
		{name: "none: a flat price"},
		{name: "one open tier", tiers: []engine.PriceTier{tier("0", "", "1")}},
		{name: "three tiers", tiers: []engine.PriceTier{tier("0", "10", "1"), tier("10", "20", "0.5"), tier("20", "", "0.1")}},
		{name: "not from zero", tiers: []engine.PriceTier{tier("5", "", "1")}, code: credit.CodeTierGap, field: "t[0]"},
		{name: "a gap", tiers: []engine.PriceTier{tier("0", "10", "1"), tier("12", "", "1")}, code: credit.CodeTierGap, field: "t[1]"},
		{name: "an overlap", tiers: []engine.PriceTier{tier("0", "10", "1"), tier("8", "", "1")}, code: credit.CodeTierOverlap, field: "t[1]"},
		{name: "an empty band", tiers: []engine.PriceTier{tier("0", "0", "1"), tier("0", "", "1")}, code: credit.CodeTierOverlap, field: "t[0]"},
		{name: "open before the last", tiers: []engine.PriceTier{tier("0", "", "1"), tier("10", "", "1")}, code: credit.CodeTierOverlap, field: "t[0]"},
		{name: "a bounded last tier", tiers: []engine.PriceTier{tier("0", "10", "1")}, code: credit.CodeTierGap, field: "t[0]"},
		{name: "a negative price", tiers: []engine.PriceTier{tier("0", "", "-1")}, code: credit.CodeValidation, field: "t[0].price"},
		{name: "too many", tiers: make([]engine.PriceTier, engine.MaxPriceTiers+1), code: credit.CodeValidation, field: "t"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := engine.ValidateTiers("t", c.tiers)
			if c.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var e *credit.Error
			if err == nil || credit.CodeOf(err) != c.code {
				t.Fatalf("error %v, want code %s", err, c.code)
			}
			if e, _ = err.(*credit.Error); e.Field != c.field {
				t.Fatalf("field %q, want %q (%v)", e.Field, c.field, err)
			}
		})
	}
}
