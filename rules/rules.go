package rules

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/shopspring/decimal"
)

// Kind is the kind of policy a rule belongs to; each has its own variables
// and result type.
type Kind string

// Rule kinds.
const (
	KindBurn      Kind = "BURN"       // result decimal >= 0
	KindDrawOrder Kind = "DRAW_ORDER" // result list
	KindWeight    Kind = "WEIGHT"     // weight expression of a register action; result decimal >= 0
	KindOverage   Kind = "OVERAGE"    // lets an event through as overage when credits run short; result bool
	KindIncentive Kind = "INCENTIVE"  // incentive credits for a usage or behaviour event; result decimal >= 0
	KindTransfer  Kind = "TRANSFER"   // whether a grant's credits may move in a transfer between pools; result bool
	KindRefund    Kind = "REFUND"     // how much a refund of a usage event or of purchased credits may give back, and how; result decimal >= 0 or a map (see Program.Refund)
	KindAlert     Kind = "ALERT"      // whether a pool's state raises an alert (once per period); result bool
)

// Limits.
const (
	// MaxSourceLength is the longest rule accepted, in characters.
	MaxSourceLength = 10000
	// CostLimit is the run-time cost budget of one evaluation; rules whose
	// estimated worst case is known and above it are rejected at compile time.
	CostLimit = 100000
	// interruptEvery is how many comprehension iterations run between
	// checks of the context.
	interruptEvery = 100
)

// Errors, matched with errors.Is.
var (
	ErrCompile = errors.New("rule does not compile")
	ErrRuntime = errors.New("rule failed at run time")
)

// Position is one compile error at a 1-based line and column.
type Position struct {
	Message string
	Line    int
	Column  int
}

func (p Position) String() string {
	return fmt.Sprintf("line %d, column %d: %s", p.Line, p.Column, p.Message)
}

// CompileError is every compile failure; errors.Is(err, ErrCompile) holds.
type CompileError struct {
	Kind      Kind
	Positions []Position
}

func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString(strings.ToLower(string(e.Kind)))
	b.WriteString(" rule does not compile")
	if len(e.Positions) > 0 {
		b.WriteString(": ")
		b.WriteString(e.Positions[0].String())
		if n := len(e.Positions) - 1; n > 0 {
			fmt.Fprintf(&b, " (and %d more)", n)
		}
	}
	return b.String()
}

// Is reports whether target is ErrCompile.
func (e *CompileError) Is(target error) bool { return target == ErrCompile }

func compileError(kind Kind, line, col int, format string, args ...any) *CompileError {
	return &CompileError{Kind: kind, Positions: []Position{{Message: fmt.Sprintf(format, args...), Line: line, Column: col}}}
}

// Program is a compiled rule.
type Program struct {
	kind    Kind
	source  string
	outType *cel.Type
	maxCost uint64
	prg     cel.Program
	// readsStatus: the expression reads event.status.
	readsStatus bool
}

// Kind returns the kind the rule was compiled for.
func (p *Program) Kind() Kind { return p.kind }

// Source returns the rule text.
func (p *Program) Source() string { return p.source }

// OutputType returns the checked result type, such as "decimal", "list(dyn)" or "dyn".
func (p *Program) OutputType() string { return p.outType.String() }

// MaxCost returns the estimated worst-case cost; math.MaxUint64 when unbounded
// (the run-time CostLimit still applies).
func (p *Program) MaxCost() uint64 { return p.maxCost }

var (
	envOnce sync.Once
	envs    map[Kind]*cel.Env
	envErr  error
)

func buildEnvs() {
	p, err := newProvider()
	if err != nil {
		envErr = err
		return
	}
	adapter = p
	base := []cel.EnvOption{
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(p),
		cel.ParserExpressionSizeLimit(MaxSourceLength),
		cel.Variable("now", cel.TimestampType),
	}
	base = append(base, decimalLib()...)
	vars := map[Kind][]cel.EnvOption{
		KindBurn: {
			cel.Variable("event", eventType),
			cel.Variable("org", orgType),
			cel.Variable("weight", DecimalType),
		},
		KindWeight: {
			cel.Variable("event", eventType),
			cel.Variable("org", orgType),
		},
		KindIncentive: {
			cel.Variable("event", eventType),
			cel.Variable("org", orgType),
			cel.Variable("trigger", cel.StringType),
		},
		KindOverage: {
			cel.Variable("event", eventType),
			cel.Variable("org", orgType),
			cel.Variable("weight", DecimalType),
			cel.Variable("shortfall", DecimalType),
			cel.Variable("available", DecimalType),
		},
		KindDrawOrder: {
			cel.Variable("grant", grantType),
		},
		KindRefund: {
			cel.Variable("event", eventType),
			cel.Variable("org", orgType),
			cel.Variable("amount", DecimalType),
			cel.Variable("refundable", DecimalType),
			cel.Variable("ageHours", DecimalType),
			cel.Variable("role", cel.StringType),
			cel.Variable("reason", cel.StringType),
			cel.Variable("asService", cel.BoolType),
			cel.Variable("subject", cel.StringType),
			cel.Variable("grant", grantType),
			cel.Variable("charged", DecimalType),
		},
		KindAlert: {
			cel.Variable("org", orgType),
			cel.Variable("available", DecimalType),
			cel.Variable("allowance", DecimalType),
			cel.Variable("burnToday", DecimalType),
			cel.Variable("burnUsual", DecimalType),
			cel.Variable("expiringSoon", DecimalType),
			cel.Variable("depletionDays", DecimalType),
			cel.Variable("budgetSpent", DecimalType),
			cel.Variable("budgetAmount", DecimalType),
			cel.Variable("poolKind", cel.StringType),
		},
		KindTransfer: {
			cel.Variable("grant", grantType),
			cel.Variable("amount", DecimalType),
			cel.Variable("movedToday", DecimalType),
			cel.Variable("role", cel.StringType),
			cel.Variable("fromKind", cel.StringType),
			cel.Variable("toKind", cel.StringType),
		},
	}
	envs = map[Kind]*cel.Env{}
	for k, opts := range vars {
		env, err := cel.NewEnv(append(append([]cel.EnvOption{}, base...), opts...)...)
		if err != nil {
			envErr = fmt.Errorf("rules: %s environment: %w", k, err)
			return
		}
		envs[k] = env
	}
}

func envFor(kind Kind) (*cel.Env, error) {
	envOnce.Do(buildEnvs)
	if envErr != nil {
		return nil, envErr
	}
	env, ok := envs[kind]
	if !ok {
		return nil, compileError(kind, 1, 1, "unknown rule kind %q", string(kind))
	}
	return env, nil
}

// Compile parses and checks expr as a rule of kind: it must use only the
// kind's variables, have the kind's result type and a bounded cost.
func Compile(kind Kind, expr string) (*Program, error) {
	env, err := envFor(kind)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(expr); n > MaxSourceLength {
		return nil, compileError(kind, 1, 1, "rule is %d characters long, the limit is %d", n, MaxSourceLength)
	}
	if strings.TrimSpace(expr) == "" {
		return nil, compileError(kind, 1, 1, "rule is empty")
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		ce := &CompileError{Kind: kind}
		for _, e := range iss.Errors() {
			ce.Positions = append(ce.Positions, errorPosition(e))
		}
		if len(ce.Positions) == 0 {
			ce.Positions = []Position{{Message: iss.Err().Error(), Line: 1, Column: 1}}
		}
		return nil, ce
	}
	out := ast.OutputType()
	line, col := rootPosition(ast)
	switch kind {
	case KindRefund:
		if !out.IsExactType(DecimalType) && out.Kind() != types.MapKind && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want decimal or a map such as {\"amount\": refundable, \"form\": \"MONEY\", \"factor\": decimal(\"0.9\")}", out)
		}
	case KindBurn, KindWeight, KindIncentive:
		if !out.IsExactType(DecimalType) && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want decimal (use decimal(...) to convert)", out)
		}
	case KindOverage:
		if out.Kind() != types.BoolKind && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want bool (true lets the event through as overage)", out)
		}
	case KindTransfer:
		if out.Kind() != types.BoolKind && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want bool (true lets the grant's credits move)", out)
		}
	case KindAlert:
		if out.Kind() != types.BoolKind && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want bool (true raises the alert)", out)
		}
	case KindDrawOrder:
		if out.Kind() != types.ListKind && out.Kind() != types.DynKind {
			return nil, compileError(kind, line, col, "rule returns %s, want a list such as [grant.priority, grant.expiresAt]", out)
		}
	}
	est, err := env.EstimateCost(ast, estimator{})
	maxCost := uint64(math.MaxUint64)
	if err == nil {
		maxCost = est.Max
		switch {
		case est.Min > CostLimit:
			return nil, compileError(kind, line, col, "rule costs at least %d, the limit is %d", est.Min, CostLimit)
		case est.Max > CostLimit && est.Max < unboundedCost:
			return nil, compileError(kind, line, col, "rule may cost up to %d, the limit is %d", est.Max, CostLimit)
		}
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, compileError(kind, line, col, "%v", err)
	}
	return &Program{kind: kind, source: expr, outType: out, maxCost: maxCost, prg: prg, readsStatus: selects(ast, "event", "status")}, nil
}

// selects reports whether the checked expression reads operand.field.
func selects(a *cel.Ast, operand, field string) bool {
	found := false
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.SelectKind {
			return
		}
		s := e.AsSelect()
		if s.FieldName() == field && s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == operand {
			found = true
		}
	}))
	return found
}

// ReadsStatus reports whether the rule reads event.status: an INCENTIVE
// rule that does may pay for FAILED events (see engine.EarnsIncentive).
func (p *Program) ReadsStatus() bool { return p.readsStatus }

func errorPosition(e *common.Error) Position {
	p := Position{Message: e.Message, Line: 1, Column: 1}
	if e.Location != nil {
		if l := e.Location.Line(); l > 0 {
			p.Line = l
		}
		if c := e.Location.Column(); c >= 0 {
			p.Column = c + 1 // cel-go columns are 0-based
		}
	}
	return p
}

func rootPosition(ast *cel.Ast) (int, int) {
	nat := ast.NativeRep()
	loc := nat.SourceInfo().GetStartLocation(nat.Expr().ID())
	if loc == nil || loc.Line() < 1 || loc.Column() < 0 {
		return 1, 1
	}
	return loc.Line(), loc.Column() + 1
}

// maxFieldString is the size the cost estimator assumes for the string
// fields of event, org and grant (ids, actions and enum values).
const maxFieldString = 1024

// unboundedCost is where cost estimates stop being bounds: an estimate at or
// above it comes from a size the estimator does not know (a property, a
// list built at run time), and only the run-time limit applies.
const unboundedCost = math.MaxUint64 / 1024

// estimator sizes decimals as one unit and the string fields of the rule
// objects as at most maxFieldString characters; everything else keeps
// cel-go's defaults (unknown sizes, custom functions cost 1).
type estimator struct{}

func (estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	t := n.Type()
	switch {
	case t == nil:
		return nil
	case t.IsExactType(DecimalType):
		return &checker.SizeEstimate{Min: 1, Max: 1}
	case t.Kind() == types.StringKind && len(n.Path()) == 2:
		switch n.Path()[0] {
		case "event", "org", "grant":
			return &checker.SizeEstimate{Min: 0, Max: maxFieldString}
		}
	}
	return nil
}

func (estimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Validate returns the compile errors of expr as a rule of kind; nil when it
// compiles.
func Validate(kind Kind, expr string) (ps []Position) {
	defer func() {
		if r := recover(); r != nil {
			ps = []Position{{Message: fmt.Sprintf("internal error: %v", r), Line: 1, Column: 1}}
		}
	}()
	_, err := Compile(kind, expr)
	if err == nil {
		return nil
	}
	var ce *CompileError
	if errors.As(err, &ce) && len(ce.Positions) > 0 {
		return ce.Positions
	}
	return []Position{{Message: err.Error(), Line: 1, Column: 1}}
}

func (p *Program) eval(ctx context.Context, v Vars) (ref.Val, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntime, err)
	}
	out, _, err := p.prg.ContextEval(ctx, &activation{kind: p.kind, v: &v})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%w: %w", ErrRuntime, cerr)
		}
		return nil, fmt.Errorf("%w: %v", ErrRuntime, err)
	}
	return out, nil
}

// Decimal evaluates a BURN rule or a weight expression; the result must be a
// decimal >= 0.
func (p *Program) Decimal(ctx context.Context, v Vars) (decimal.Decimal, error) {
	if p.kind != KindBurn && p.kind != KindWeight && p.kind != KindIncentive {
		return decimal.Zero, fmt.Errorf("%w: a %s rule has no decimal result", ErrRuntime, p.kind)
	}
	out, err := p.eval(ctx, v)
	if err != nil {
		return decimal.Zero, err
	}
	d, ok := out.(decVal)
	if !ok {
		return decimal.Zero, fmt.Errorf("%w: rule returned %s, want decimal", ErrRuntime, out.Type().TypeName())
	}
	if d.d.IsNegative() {
		return decimal.Zero, fmt.Errorf("%w: rule returned a negative amount (%s)", ErrRuntime, d.d)
	}
	return d.d, nil
}

// Bool evaluates an OVERAGE, TRANSFER or ALERT rule.
func (p *Program) Bool(ctx context.Context, v Vars) (bool, error) {
	if p.kind != KindOverage && p.kind != KindTransfer && p.kind != KindAlert {
		return false, fmt.Errorf("%w: a %s rule has no bool result", ErrRuntime, p.kind)
	}
	out, err := p.eval(ctx, v)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%w: rule returned %s, want bool", ErrRuntime, out.Type().TypeName())
	}
	return bool(b), nil
}

// SortKey evaluates a DRAW_ORDER rule.
func (p *Program) SortKey(ctx context.Context, v Vars) (SortKey, error) {
	if p.kind != KindDrawOrder {
		return nil, fmt.Errorf("%w: a %s rule has no list result", ErrRuntime, p.kind)
	}
	out, err := p.eval(ctx, v)
	if err != nil {
		return nil, err
	}
	list, ok := out.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("%w: rule returned %s, want list", ErrRuntime, out.Type().TypeName())
	}
	n, ok := list.Size().(types.Int)
	if !ok {
		return nil, fmt.Errorf("%w: rule returned a list of unknown size", ErrRuntime)
	}
	key := make(SortKey, int(n))
	for i := range key {
		k, err := keyElem(list.Get(types.Int(i)))
		if err != nil {
			return nil, fmt.Errorf("%w: element %d: %v", ErrRuntime, i, err)
		}
		key[i] = k
	}
	return key, nil
}

func keyElem(v ref.Val) (any, error) {
	switch e := v.(type) {
	case types.Int:
		return int64(e), nil
	case types.Uint:
		if uint64(e) > math.MaxInt64 {
			return decimal.NewFromUint64(uint64(e)), nil
		}
		return int64(e), nil
	case decVal:
		return e.d, nil
	case types.String:
		return string(e), nil
	case types.Timestamp:
		return e.Time, nil
	case types.Bool:
		return bool(e), nil
	case types.Double:
		d, err := decimalFromFloat(float64(e))
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s cannot be a sort key element (use int, decimal, string, timestamp or bool)", v.Type().TypeName())
}
