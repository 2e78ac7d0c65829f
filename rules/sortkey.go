package rules

import (
	"cmp"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// SortKey is the result of a DRAW_ORDER rule. Its elements are int64,
// decimal.Decimal, string, time.Time or bool.
type SortKey []any

// CompareKeys compares two sort keys element by element and returns -1, 0 or
// +1; a key that is a prefix of the other sorts first. Ints and decimals
// compare by value; elements of other mismatched kinds compare by kind name
// ("bool" < "number" < "string" < "timestamp"), so the order is total and
// deterministic.
func CompareKeys(a, b SortKey) int {
	for i := range min(len(a), len(b)) {
		if c := compareElem(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func elemKind(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case int64, decimal.Decimal:
		return "number"
	case string:
		return "string"
	case time.Time:
		return "timestamp"
	}
	return "~unknown" // sorts last
}

func compareElem(a, b any) int {
	ka, kb := elemKind(a), elemKind(b)
	if ka != kb {
		return strings.Compare(ka, kb)
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
		return decimal.NewFromInt(x).Cmp(b.(decimal.Decimal))
	case decimal.Decimal:
		if y, ok := b.(int64); ok {
			return x.Cmp(decimal.NewFromInt(y))
		}
		return x.Cmp(b.(decimal.Decimal))
	case string:
		return strings.Compare(x, b.(string))
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return 0
}
