package rules

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/shopspring/decimal"
)

// DivisionPrecision is the number of decimal places a rule division keeps;
// the last place is rounded half away from zero.
const DivisionPrecision = 28

// Limits of ParseDecimal.
const (
	maxDecimalText = 100
	minExponent    = -40
	maxExponent    = 40
)

// DecimalType is the CEL type of exact decimals in rules.
var DecimalType = types.NewOpaqueType("decimal").WithTraits(
	traits.AdderType | traits.SubtractorType | traits.MultiplierType |
		traits.DividerType | traits.NegatorType | traits.ComparerType)

var (
	decimalGoType = reflect.TypeOf(decimal.Decimal{})
	stringGoType  = reflect.TypeOf("")
	anyGoType     = reflect.TypeOf((*any)(nil)).Elem()
)

// ParseDecimal is the one parser for decimals written by users (GraphQL
// input, decimal("...") in rules). It trims nothing and rejects empty text,
// text longer than 100 characters, NaN and infinities, and values whose
// exponent falls outside [-40, 40] (at most 40 decimal places, at most
// 40 trailing zeros written as an exponent). "12.5", "-3" and "1e3" are
// accepted.
func ParseDecimal(s string) (decimal.Decimal, error) {
	switch {
	case s == "":
		return decimal.Zero, errors.New("empty decimal")
	case len(s) > maxDecimalText:
		return decimal.Zero, fmt.Errorf("decimal longer than %d characters", maxDecimalText)
	case !utf8.ValidString(s):
		return decimal.Zero, errors.New("decimal is not valid text")
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, fmt.Errorf("invalid decimal %q", s)
	}
	if e := d.Exponent(); e < minExponent || e > maxExponent {
		return decimal.Zero, fmt.Errorf("decimal %q out of range: exponent %d outside [%d, %d]", s, e, minExponent, maxExponent)
	}
	return d, nil
}

// decimalFromFloat converts a double through its shortest decimal text, so
// 0.1 becomes exactly 0.1.
func decimalFromFloat(f float64) (decimal.Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return decimal.Zero, fmt.Errorf("cannot convert %v to decimal", f)
	}
	return ParseDecimal(strconv.FormatFloat(f, 'g', -1, 64))
}

// decVal is the CEL value of a decimal.
type decVal struct{ d decimal.Decimal }

func newDec(d decimal.Decimal) ref.Val { return decVal{d} }

// ConvertToNative implements ref.Val.
func (v decVal) ConvertToNative(t reflect.Type) (any, error) {
	switch t {
	case decimalGoType, anyGoType:
		return v.d, nil
	case reflect.PointerTo(decimalGoType):
		d := v.d
		return &d, nil
	case stringGoType:
		return v.d.String(), nil
	}
	return nil, fmt.Errorf("type conversion error from decimal to %v", t)
}

// ConvertToType implements ref.Val.
func (v decVal) ConvertToType(t ref.Type) ref.Val {
	switch t.TypeName() {
	case DecimalType.TypeName():
		return v
	case types.StringType.TypeName():
		return types.String(v.d.String())
	case types.TypeType.TypeName():
		return DecimalType
	}
	return types.NewErr("type conversion error from decimal to %s", t.TypeName())
}

// Equal implements ref.Val: decimals equal other decimals, ints and uints
// of the same value.
func (v decVal) Equal(other ref.Val) ref.Val {
	switch o := other.(type) {
	case decVal:
		return types.Bool(v.d.Equal(o.d))
	case types.Int:
		return types.Bool(v.d.Equal(decimal.NewFromInt(int64(o))))
	case types.Uint:
		return types.Bool(v.d.Equal(decimal.NewFromUint64(uint64(o))))
	}
	return types.False
}

// Type implements ref.Val.
func (v decVal) Type() ref.Type { return DecimalType }

// Value implements ref.Val: a decimal.Decimal.
func (v decVal) Value() any { return v.d }

// toDec reads a decimal or an int argument.
func toDec(v ref.Val) (decimal.Decimal, bool) {
	switch o := v.(type) {
	case decVal:
		return o.d, true
	case types.Int:
		return decimal.NewFromInt(int64(o)), true
	case types.Uint:
		return decimal.NewFromUint64(uint64(o)), true
	}
	return decimal.Zero, false
}

func decArg(other ref.Val) (decimal.Decimal, ref.Val) {
	d, ok := toDec(other)
	if !ok {
		return d, types.MaybeNoSuchOverloadErr(other)
	}
	return d, nil
}

// Add implements traits.Adder.
func (v decVal) Add(other ref.Val) ref.Val {
	y, err := decArg(other)
	if err != nil {
		return err
	}
	return newDec(v.d.Add(y))
}

// Subtract implements traits.Subtractor.
func (v decVal) Subtract(other ref.Val) ref.Val {
	y, err := decArg(other)
	if err != nil {
		return err
	}
	return newDec(v.d.Sub(y))
}

// Multiply implements traits.Multiplier.
func (v decVal) Multiply(other ref.Val) ref.Val {
	y, err := decArg(other)
	if err != nil {
		return err
	}
	return newDec(v.d.Mul(y))
}

// Divide implements traits.Divider: DivisionPrecision places, division by
// zero is an error.
func (v decVal) Divide(other ref.Val) ref.Val {
	y, err := decArg(other)
	if err != nil {
		return err
	}
	if y.IsZero() {
		return types.NewErr("division by zero")
	}
	return newDec(v.d.DivRound(y, DivisionPrecision))
}

// Negate implements traits.Negater.
func (v decVal) Negate() ref.Val { return newDec(v.d.Neg()) }

// Compare implements traits.Comparer.
func (v decVal) Compare(other ref.Val) ref.Val {
	y, err := decArg(other)
	if err != nil {
		return err
	}
	return types.Int(v.d.Cmp(y))
}

// operatorOverloads declares fn (a standard operator whose run-time binding
// dispatches on the decimal's traits) for decimal×decimal and decimal×int.
func operatorOverloads(fn, id string, result *cel.Type) cel.EnvOption {
	return cel.Function(fn,
		cel.Overload(id+"_decimal_decimal", []*cel.Type{DecimalType, DecimalType}, result),
		cel.Overload(id+"_decimal_int", []*cel.Type{DecimalType, cel.IntType}, result),
	)
}

// decimalLib declares the decimal type and its functions.
func decimalLib() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("decimal",
			cel.Overload("decimal_string", []*cel.Type{cel.StringType}, DecimalType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					d, err := ParseDecimal(string(v.(types.String)))
					if err != nil {
						return types.NewErr("%s", err.Error())
					}
					return newDec(d)
				})),
			cel.Overload("decimal_int", []*cel.Type{cel.IntType}, DecimalType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return newDec(decimal.NewFromInt(int64(v.(types.Int)))) })),
			cel.Overload("decimal_uint", []*cel.Type{cel.UintType}, DecimalType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return newDec(decimal.NewFromUint64(uint64(v.(types.Uint)))) })),
			cel.Overload("decimal_double", []*cel.Type{cel.DoubleType}, DecimalType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					d, err := decimalFromFloat(float64(v.(types.Double)))
					if err != nil {
						return types.NewErr("%s", err.Error())
					}
					return newDec(d)
				})),
			cel.Overload("decimal_decimal", []*cel.Type{DecimalType}, DecimalType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return v })),
		),
		cel.Function("string",
			cel.Overload("string_decimal", []*cel.Type{DecimalType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(v.(decVal).d.String()) })),
		),
		operatorOverloads("_+_", "add", DecimalType),
		operatorOverloads("_-_", "subtract", DecimalType),
		operatorOverloads("_*_", "multiply", DecimalType),
		operatorOverloads("_/_", "divide", DecimalType),
		operatorOverloads("_<_", "less", cel.BoolType),
		operatorOverloads("_<=_", "less_equals", cel.BoolType),
		operatorOverloads("_>_", "greater", cel.BoolType),
		operatorOverloads("_>=_", "greater_equals", cel.BoolType),
		cel.Function("-_", cel.Overload("negate_decimal", []*cel.Type{DecimalType}, DecimalType)),
		cel.Function("round",
			cel.MemberOverload("decimal_round_int", []*cel.Type{DecimalType, cel.IntType}, DecimalType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					n := int64(b.(types.Int))
					if n < minExponent || n > -minExponent {
						return types.NewErr("round: places %d outside [%d, %d]", n, minExponent, -minExponent)
					}
					return newDec(a.(decVal).d.Round(int32(n)))
				})),
		),
		cel.Function("min",
			cel.Overload("min_decimal_decimal", []*cel.Type{DecimalType, DecimalType}, DecimalType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return newDec(decimal.Min(a.(decVal).d, b.(decVal).d)) })),
		),
		cel.Function("max",
			cel.Overload("max_decimal_decimal", []*cel.Type{DecimalType, DecimalType}, DecimalType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return newDec(decimal.Max(a.(decVal).d, b.(decVal).d)) })),
		),
	}
}
