package report

import (
	"database/sql/driver"
	"fmt"

	"github.com/shopspring/decimal"
	"modernc.org/sqlite"
)

// SQLite stores decimals as text, and its SUM would read them as doubles
// (0.1 + 0.2 = 0.30000000000000004). So that sums stay exact and still
// happen in the database (GROUP BY, ORDER BY and LIMIT in SQL, one running
// total per group in memory), this package registers decimalSum, an
// aggregate over shopspring/decimal, with the SQLite driver. The driver adds
// registered functions to the connections it opens after the registration:
// init runs before any program opens its database. PostgreSQL sums numeric
// exactly with SUM.

// decimalSum is the name of the exact SQLite aggregate.
const decimalSum = "creditd_decimal_sum"

// registerErr is why the aggregate could not be registered (another
// package took the name), reported by the queries that need it.
var registerErr error

func init() {
	registerErr = sqlite.RegisterFunction(decimalSum, &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &exactSum{}, nil },
	})
}

// sumFunc is the exact decimal SUM of dialect d, returning text on both.
func sumFunc(postgres bool, expr string) string {
	if postgres {
		return "COALESCE(SUM(" + expr + "), 0)::text"
	}
	return decimalSum + "(" + expr + ")"
}

// exactSum is one group's running total. NULLs are skipped, as SUM does;
// an empty group sums to 0.
type exactSum struct{ sum decimal.Decimal }

func (s *exactSum) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	v, err := decimalOf(args[0])
	if err == nil {
		s.sum = s.sum.Add(v)
	}
	return err
}

func (s *exactSum) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	v, err := decimalOf(args[0])
	if err == nil {
		s.sum = s.sum.Sub(v)
	}
	return err
}

func (s *exactSum) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return s.sum.String(), nil
}

func (s *exactSum) Final(*sqlite.FunctionContext) {}

// decimalOf reads a decimal stored as text (or a literal integer); a
// double is refused: it would already have lost exactness.
func decimalOf(v driver.Value) (decimal.Decimal, error) {
	switch x := v.(type) {
	case nil:
		return decimal.Zero, nil
	case string:
		return decimal.NewFromString(x)
	case []byte:
		return decimal.NewFromString(string(x))
	case int64:
		return decimal.NewFromInt(x), nil
	default:
		return decimal.Zero, fmt.Errorf("%s: cannot sum a %T exactly", decimalSum, v)
	}
}
