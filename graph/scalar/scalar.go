// Package scalar holds the GraphQL scalars of the API: Decimal (exact, as a
// JSON string) and ID (the database's integer ids, as strings).
package scalar

import (
	"encoding/json"
	"io"
	"math"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// MarshalDecimal writes a decimal as a JSON string in canonical form ("12.5").
func MarshalDecimal(d decimal.Decimal) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(d.String())) })
}

// UnmarshalDecimal reads a decimal from a string ("12.5"), an integer, or a
// JSON number kept as text; never through a float.
func UnmarshalDecimal(v any) (decimal.Decimal, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case int:
		return decimal.NewFromInt(int64(x)), nil
	case int64:
		return decimal.NewFromInt(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return decimal.Decimal{}, credit.Invalid("", "Decimal must be a finite number")
		}
		s = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return decimal.Decimal{}, credit.Invalid("", "Decimal must be a string such as \"12.5\", got %T", v)
	}
	d, err := rules.ParseDecimal(s)
	if err != nil {
		return decimal.Decimal{}, credit.Invalid("", "%q is not a decimal: %v", s, err)
	}
	return d, nil
}

// MarshalID writes an id as a string.
func MarshalID(id int) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(strconv.Itoa(id))) })
}

// UnmarshalID reads an id from a string or an integer.
func UnmarshalID(v any) (int, error) {
	switch x := v.(type) {
	case string:
		id, err := strconv.Atoi(x)
		if err != nil || id <= 0 {
			return 0, credit.Invalid("", "%q is not an id", x)
		}
		return id, nil
	case json.Number:
		return UnmarshalID(x.String())
	case int:
		return UnmarshalID(strconv.Itoa(x))
	case int64:
		return UnmarshalID(strconv.FormatInt(x, 10))
	}
	return 0, credit.Invalid("", "an id must be a string, got %T", v)
}
