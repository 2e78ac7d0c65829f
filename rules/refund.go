package rules

import (
	"context"
	"fmt"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/shopspring/decimal"
)

// Refund forms a REFUND rule may answer.
const (
	FormCredits = "CREDITS" // back to the grants the event drew from
	FormService = "SERVICE" // as a new SERVICE grant
	FormMoney   = "MONEY"   // money back (a negative charge); purchased credits only
)

// RefundAnswer is a REFUND rule's answer: how many credits may come back
// (at most what the caller asked and what is left: the caller caps it), in
// which form ("" leaves the form asked), and, for money, the factor of the
// price paid that comes back (1: face value; 0.8: a 20% restocking fee).
type RefundAnswer struct {
	Amount decimal.Decimal
	Form   string
	Factor decimal.Decimal
}

// Refund evaluates a REFUND rule. A decimal answer is the credits that may
// come back, in the form asked, at face value. A map answer may set any of
// "amount" (a decimal >= 0; absent: refundable), "form" ("CREDITS",
// "SERVICE" or "MONEY"; absent: the form asked) and "factor" (a decimal
// from 0 to 1; absent: 1); other keys are run-time errors, so a typo does
// not refund at face value silently.
func (p *Program) Refund(ctx context.Context, v Vars) (RefundAnswer, error) {
	if p.kind != KindRefund {
		return RefundAnswer{}, fmt.Errorf("%w: a %s rule has no refund answer", ErrRuntime, p.kind)
	}
	out, err := p.eval(ctx, v)
	if err != nil {
		return RefundAnswer{}, err
	}
	a := RefundAnswer{Amount: v.Refundable, Factor: decimal.NewFromInt(1)}
	switch x := out.(type) {
	case decVal:
		a.Amount = x.d
	case traits.Mapper:
		if err := a.fromMap(x); err != nil {
			return RefundAnswer{}, err
		}
	default:
		return RefundAnswer{}, fmt.Errorf("%w: rule returned %s, want decimal or map", ErrRuntime, out.Type().TypeName())
	}
	switch {
	case a.Amount.IsNegative():
		return RefundAnswer{}, fmt.Errorf("%w: rule returned a negative amount (%s)", ErrRuntime, a.Amount)
	case a.Factor.IsNegative() || a.Factor.GreaterThan(decimal.NewFromInt(1)):
		return RefundAnswer{}, fmt.Errorf("%w: rule returned factor %s, want 0 to 1", ErrRuntime, a.Factor)
	}
	return a, nil
}

func (a *RefundAnswer) fromMap(m traits.Mapper) error {
	it := m.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		key, ok := k.(types.String)
		if !ok {
			return fmt.Errorf("%w: refund answer has key %v, want \"amount\", \"form\" or \"factor\"", ErrRuntime, k)
		}
		val := m.Get(k)
		switch key {
		case "amount", "factor":
			d, ok := val.(decVal)
			if !ok {
				return fmt.Errorf("%w: refund answer's %q is %s, want decimal", ErrRuntime, string(key), typeName(val))
			}
			if key == "amount" {
				a.Amount = d.d
			} else {
				a.Factor = d.d
			}
		case "form":
			f, ok := val.(types.String)
			if !ok || (f != FormCredits && f != FormService && f != FormMoney) {
				return fmt.Errorf("%w: refund answer's form is %v, want \"CREDITS\", \"SERVICE\" or \"MONEY\"", ErrRuntime, val)
			}
			a.Form = string(f)
		default:
			return fmt.Errorf("%w: refund answer has key %q, want \"amount\", \"form\" or \"factor\"", ErrRuntime, string(key))
		}
	}
	return nil
}

func typeName(v ref.Val) string { return v.Type().TypeName() }
