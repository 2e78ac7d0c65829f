package rules

import (
	"fmt"
	"reflect"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	"github.com/shopspring/decimal"
)

// Event is the `event` variable of BURN rules and weight expressions.
// The caller applies the defaults of the rule contract (quantity, completion
// and attempt 1 when absent) before evaluating.
type Event struct {
	Action     string
	Status     string
	RunID      string
	Quantity   decimal.Decimal
	Completion decimal.Decimal
	Attempt    int64
	Properties map[string]any // JSON values: numbers as float64, nested maps and lists
	OccurredAt time.Time
}

// Org is the `org` variable of BURN rules and weight expressions.
type Org struct {
	ID      string
	Segment string
}

// Grant is the `grant` variable of DRAW_ORDER rules. A zero ExpiresAt shows
// to rules as timestamp("9999-12-31T23:59:59Z").
type Grant struct {
	ID          string
	CreditType  string
	Priority    int64
	Amount      decimal.Decimal
	Remaining   decimal.Decimal
	UnitPrice   decimal.Decimal
	EffectiveAt time.Time
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// Vars are the variables of one evaluation; a kind reads only its own.
type Vars struct {
	Event  *Event
	Org    *Org
	Grant  *Grant
	Weight decimal.Decimal
	Now    time.Time
	// OVERAGE rules: the credits the grants cannot cover, and what they can.
	Shortfall decimal.Decimal
	Available decimal.Decimal
	// INCENTIVE rules: "usage" or "behavior".
	Trigger string
	// TRANSFER rules: the credits asked to move, what the source pool moved
	// out since the start of the UTC day, the caller's role and the pools'
	// kinds.
	Amount, MovedToday decimal.Decimal
	Role               string
	FromKind, ToKind   string
	// REFUND rules (with Event or Grant, Org, Amount and Role): what is
	// refunded (Subject "EVENT" or "GRANT"), what is left to refund, the
	// money its subject charged, its age in hours, the reason given, and
	// whether the refund is asked as SERVICE credits. A refund of an event
	// sees an empty grant, one of a grant an empty event.
	Subject                       string
	Refundable, AgeHours, Charged decimal.Decimal
	Reason                        string
	AsService                     bool
	// ALERT rules (with Org, Available and Now): the pool's state.
	Alert *AlertVars
}

// AlertVars is what an ALERT rule sees of a pool: the period's included
// credits, what it used today and on a usual day (the mean of the 28 days
// before), what expires within 7 days, the days to the projected run-out
// (-1: none), its budget (0 and 0: none) and its kind.
type AlertVars struct {
	Allowance, BurnToday, BurnUsual, ExpiringSoon, DepletionDays, BudgetSpent, BudgetAmount decimal.Decimal
	PoolKind                                                                                string
}

// NoExpiry is how a grant without expiry looks to rules.
var NoExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// CEL object type names.
const (
	eventTypeName = "rules.Event"
	orgTypeName   = "rules.Org"
	grantTypeName = "rules.Grant"
)

var (
	eventType = types.NewObjectType(eventTypeName)
	orgType   = types.NewObjectType(orgTypeName)
	grantType = types.NewObjectType(grantTypeName)
)

type field struct {
	name string
	typ  *types.Type
	get  func(obj any) (ref.Val, bool) // false when obj is not the struct
}

func fieldOf[T any](name string, typ *types.Type, get func(*T) ref.Val) field {
	return field{name: name, typ: typ, get: func(obj any) (ref.Val, bool) {
		p, ok := obj.(*T)
		if !ok || p == nil {
			return nil, false
		}
		return get(p), true
	}}
}

func ts(t time.Time) ref.Val { return types.Timestamp{Time: t} }

var propertiesType = types.NewMapType(types.StringType, types.DynType)

var objectFields = map[string][]field{
	eventTypeName: {
		fieldOf("action", types.StringType, func(e *Event) ref.Val { return types.String(e.Action) }),
		fieldOf("status", types.StringType, func(e *Event) ref.Val { return types.String(e.Status) }),
		fieldOf("quantity", DecimalType, func(e *Event) ref.Val { return newDec(e.Quantity) }),
		fieldOf("completion", DecimalType, func(e *Event) ref.Val { return newDec(e.Completion) }),
		fieldOf("attempt", types.IntType, func(e *Event) ref.Val { return types.Int(e.Attempt) }),
		fieldOf("runId", types.StringType, func(e *Event) ref.Val { return types.String(e.RunID) }),
		fieldOf("properties", propertiesType, func(e *Event) ref.Val {
			m := e.Properties
			if m == nil {
				m = map[string]any{}
			}
			return types.NewStringInterfaceMap(adapter, m)
		}),
		fieldOf("occurredAt", types.TimestampType, func(e *Event) ref.Val { return ts(e.OccurredAt) }),
	},
	orgTypeName: {
		fieldOf("id", types.StringType, func(o *Org) ref.Val { return types.String(o.ID) }),
		fieldOf("segment", types.StringType, func(o *Org) ref.Val { return types.String(o.Segment) }),
	},
	grantTypeName: {
		fieldOf("id", types.StringType, func(g *Grant) ref.Val { return types.String(g.ID) }),
		fieldOf("creditType", types.StringType, func(g *Grant) ref.Val { return types.String(g.CreditType) }),
		fieldOf("priority", types.IntType, func(g *Grant) ref.Val { return types.Int(g.Priority) }),
		fieldOf("amount", DecimalType, func(g *Grant) ref.Val { return newDec(g.Amount) }),
		fieldOf("remaining", DecimalType, func(g *Grant) ref.Val { return newDec(g.Remaining) }),
		fieldOf("unitPrice", DecimalType, func(g *Grant) ref.Val { return newDec(g.UnitPrice) }),
		fieldOf("effectiveAt", types.TimestampType, func(g *Grant) ref.Val { return ts(g.EffectiveAt) }),
		fieldOf("expiresAt", types.TimestampType, func(g *Grant) ref.Val {
			if g.ExpiresAt.IsZero() {
				return ts(NoExpiry)
			}
			return ts(g.ExpiresAt)
		}),
		fieldOf("createdAt", types.TimestampType, func(g *Grant) ref.Val { return ts(g.CreatedAt) }),
	},
}

// provider declares the rules object types and the decimal type on top of
// the default CEL registry, and adapts their Go values.
type provider struct {
	*types.Registry
	fields map[string]map[string]*types.FieldType
	names  map[string][]string
}

var adapter types.Adapter

func newProvider() (*provider, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	if err := reg.RegisterType(DecimalType); err != nil {
		return nil, err
	}
	p := &provider{Registry: reg, fields: map[string]map[string]*types.FieldType{}, names: map[string][]string{}}
	for typeName, fs := range objectFields {
		m := map[string]*types.FieldType{}
		for _, f := range fs {
			get := f.get
			name, tn := f.name, typeName
			m[f.name] = &types.FieldType{
				Type: f.typ,
				IsSet: func(obj any) bool {
					_, ok := get(obj)
					return ok
				},
				GetFrom: func(obj any) (any, error) {
					v, ok := get(obj)
					if !ok {
						return nil, fmt.Errorf("no such field %s on %T, want %s", name, obj, tn)
					}
					return v, nil
				},
			}
			p.names[typeName] = append(p.names[typeName], f.name)
		}
		p.fields[typeName] = m
	}
	return p, nil
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.fields[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if n, ok := p.names[name]; ok {
		return append([]string(nil), n...), true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if fs, ok := p.fields[name]; ok {
		ft, ok := fs[fieldName]
		return ft, ok
	}
	return p.Registry.FindStructFieldType(name, fieldName)
}

// NewValue implements types.Provider: rule objects cannot be built in rules.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.fields[name]; ok {
		return types.NewErr("cannot create %s in a rule", name)
	}
	return p.Registry.NewValue(name, fields)
}

// NativeToValue implements types.Adapter.
func (p *provider) NativeToValue(v any) ref.Val {
	switch o := v.(type) {
	case ref.Val:
		return o
	case decimal.Decimal:
		return newDec(o)
	case *decimal.Decimal:
		if o != nil {
			return newDec(*o)
		}
	case *Event:
		return objVal{eventType, o}
	case *Org:
		return objVal{orgType, o}
	case *Grant:
		return objVal{grantType, o}
	}
	return p.Registry.NativeToValue(v)
}

// objVal is the CEL value of *Event, *Org or *Grant.
type objVal struct {
	typ *types.Type
	v   any
}

func (o objVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(o.v).AssignableTo(t) {
		return o.v, nil
	}
	return nil, fmt.Errorf("type conversion error from %s to %v", o.typ.TypeName(), t)
}

func (o objVal) ConvertToType(t ref.Type) ref.Val {
	switch t.TypeName() {
	case o.typ.TypeName():
		return o
	case types.TypeType.TypeName():
		return o.typ
	}
	return types.NewErr("type conversion error from %s to %s", o.typ.TypeName(), t.TypeName())
}

func (o objVal) Equal(other ref.Val) ref.Val {
	x, ok := other.(objVal)
	return types.Bool(ok && x.v == o.v)
}

func (o objVal) Type() ref.Type { return o.typ }
func (o objVal) Value() any     { return o.v }

// activation resolves the variables of one kind from Vars without building
// a map.
type activation struct {
	kind Kind
	v    *Vars
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		if a.kind != KindDrawOrder && a.v.Event != nil {
			return objVal{eventType, a.v.Event}, true
		}
	case "org":
		if a.kind != KindDrawOrder && a.v.Org != nil {
			return objVal{orgType, a.v.Org}, true
		}
	case "grant":
		if (a.kind == KindDrawOrder || a.kind == KindTransfer || a.kind == KindRefund) && a.v.Grant != nil {
			return objVal{grantType, a.v.Grant}, true
		}
	case "weight":
		if a.kind == KindBurn || a.kind == KindOverage {
			return newDec(a.v.Weight), true
		}
	case "trigger":
		if a.kind == KindIncentive {
			return types.String(a.v.Trigger), true
		}
	case "shortfall":
		if a.kind == KindOverage {
			return newDec(a.v.Shortfall), true
		}
	case "available":
		if a.kind == KindOverage || a.kind == KindAlert {
			return newDec(a.v.Available), true
		}
	case "allowance", "burnToday", "burnUsual", "expiringSoon", "depletionDays", "budgetSpent", "budgetAmount", "poolKind":
		if a.kind == KindAlert && a.v.Alert != nil {
			return a.alert(name), true
		}
	case "amount", "role":
		if a.kind == KindTransfer || a.kind == KindRefund {
			return a.transfer(name), true
		}
	case "movedToday", "fromKind", "toKind":
		if a.kind == KindTransfer {
			return a.transfer(name), true
		}
	case "refundable", "ageHours", "reason", "asService", "subject", "charged":
		if a.kind == KindRefund {
			return a.refund(name), true
		}
	case "now":
		return ts(a.v.Now), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// alert resolves an ALERT rule's own variables.
func (a *activation) alert(name string) any {
	v := a.v.Alert
	switch name {
	case "allowance":
		return newDec(v.Allowance)
	case "burnToday":
		return newDec(v.BurnToday)
	case "burnUsual":
		return newDec(v.BurnUsual)
	case "expiringSoon":
		return newDec(v.ExpiringSoon)
	case "depletionDays":
		return newDec(v.DepletionDays)
	case "budgetSpent":
		return newDec(v.BudgetSpent)
	case "budgetAmount":
		return newDec(v.BudgetAmount)
	}
	return types.String(v.PoolKind)
}

// refund resolves a REFUND rule's own variables.
func (a *activation) refund(name string) any {
	switch name {
	case "refundable":
		return newDec(a.v.Refundable)
	case "ageHours":
		return newDec(a.v.AgeHours)
	case "reason":
		return types.String(a.v.Reason)
	case "subject":
		return types.String(a.v.Subject)
	case "charged":
		return newDec(a.v.Charged)
	}
	return types.Bool(a.v.AsService)
}

// transfer resolves a TRANSFER rule's own variables (amount and role also
// a REFUND rule's).
func (a *activation) transfer(name string) any {
	switch name {
	case "amount":
		return newDec(a.v.Amount)
	case "movedToday":
		return newDec(a.v.MovedToday)
	case "role":
		return types.String(a.v.Role)
	case "fromKind":
		return types.String(a.v.FromKind)
	}
	return types.String(a.v.ToKind)
}
