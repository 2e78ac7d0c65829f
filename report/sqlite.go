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

// decimalSum is the name of the exact SQLite aggregate; decimalDot sums
// the products of its two arguments (a money value: credits x unit price).
const (
	decimalSum = "creditd_decimal_sum"
	decimalDot = "creditd_decimal_dot"
)

// registerErr is why the aggregate could not be registered (another
// package took the name), reported by the queries that need it.
var registerErr error

func init() {
	registerErr = sqlite.RegisterFunction(decimalSum, &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &exactSum{}, nil },
	})
	if registerErr == nil {
		registerErr = sqlite.RegisterFunction(decimalDot, &sqlite.FunctionImpl{
			NArgs:         2,
			Deterministic: true,
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &exactDot{}, nil },
		})
	}
}

// Sum is the exact decimal SUM of expr in the dialect (postgres or
// SQLite), as text; 0 for no rows. Other packages' aggregates (kpi) use it.
func Sum(postgres bool, expr string) string { return sumFunc(postgres, expr) }

// SumProduct is the exact SUM(a * b), as text; 0 for no rows. A NULL
// factor skips the row.
func SumProduct(postgres bool, a, b string) string {
	if postgres {
		return "COALESCE(SUM((" + a + ") * (" + b + ")), 0)::text"
	}
	return decimalDot + "(" + a + ", " + b + ")"
}

// Ready reports why the SQLite aggregates are missing, if they are.
func Ready() error { return registerErr }

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

// exactDot is one group's running sum of products.
type exactDot struct{ sum decimal.Decimal }

func (s *exactDot) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	if args[0] == nil || args[1] == nil {
		return nil
	}
	a, err := decimalOf(args[0])
	if err != nil {
		return err
	}
	b, err := decimalOf(args[1])
	if err == nil {
		s.sum = s.sum.Add(a.Mul(b))
	}
	return err
}

func (s *exactDot) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	return fmt.Errorf("%s: not a window function", decimalDot)
}

func (s *exactDot) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return s.sum.String(), nil
}

func (s *exactDot) Final(*sqlite.FunctionContext) {}

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
