package kpi

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// GroupBy is a key the rows are grouped by.
type GroupBy string

const (
	ByOrganization GroupBy = "ORGANIZATION"
	BySegment      GroupBy = "SEGMENT"
	ByPlan         GroupBy = "PLAN" // the plan the organisation is on at the end of the range (or was on last)
	ByMonth        GroupBy = "MONTH"
)

// MaxRangeDays bounds a report's range; MaxRows its rows.
const (
	MaxRangeDays = 3 * 366
	MaxRows      = 50_000
)

// Query asks for the figures of [From, To) in Currency (default USD),
// grouped by GroupBy (none: the totals and the monthly series only). Now
// is the ledger's clock (zero: the wall clock): months an hour past their
// end by it are closed and read from the rollups.
type Query struct {
	From, To time.Time
	GroupBy  []GroupBy
	Currency string
	Now      time.Time
}

func (q Query) now() time.Time {
	if q.Now.IsZero() {
		return time.Now()
	}
	return q.Now
}

// Validate checks the range and the keys.
func (q Query) Validate() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return credit.Invalid("from", "from and to are required")
	case !q.To.After(q.From):
		return credit.Invalid("to", "must be after from")
	case q.To.Sub(q.From) > MaxRangeDays*24*time.Hour:
		return credit.Invalid("to", "the range is at most %d days", MaxRangeDays)
	case len(q.Currency) > 3:
		return credit.Invalid("currency", "an ISO 4217 code, like USD")
	}
	seen := map[GroupBy]bool{}
	for _, g := range q.GroupBy {
		if !slices.Contains([]GroupBy{ByOrganization, BySegment, ByPlan, ByMonth}, g) {
			return credit.Invalid("groupBy", "unknown key %q: want ORGANIZATION, SEGMENT, PLAN or MONTH", g)
		}
		if seen[g] {
			return credit.Invalid("groupBy", "%s twice", g)
		}
		seen[g] = true
	}
	return nil
}

// Figures are the KPIs of one group (or the totals). Credits and money
// are exact; ratios are nil where their denominator is 0.
type Figures struct {
	CommittedPoolARR  decimal.Decimal // at the group's end
	Burned            decimal.Decimal
	BurnedValue       decimal.Decimal
	Granted           decimal.Decimal
	GrantedValue      decimal.Decimal
	Allocated         decimal.Decimal // the SUBSCRIPTION part of Granted
	Expired           decimal.Decimal // breakage
	ExpiredValue      decimal.Decimal
	RolledOver        decimal.Decimal
	Refunded          decimal.Decimal // credits given back for usage, and bought back
	RefundedMoney     decimal.Decimal // money negative charges returned (positive)
	FeeRevenue        decimal.Decimal
	OnDemandRevenue   decimal.Decimal
	OverageRevenue    decimal.Decimal
	DeferredLiability decimal.Decimal // at the group's end
	ValueDelivered    decimal.Decimal
	CostOfBurn        decimal.Decimal
	Events            int
	NRR               *NRR // for the totals and rows not grouped by month
}

// Utilisation is Burned / Granted.
func (f Figures) Utilisation() *decimal.Decimal { return ratio(f.Burned, f.Granted) }

// ValueToBurn is ValueDelivered / BurnedValue.
func (f Figures) ValueToBurn() *decimal.Decimal { return ratio(f.ValueDelivered, f.BurnedValue) }

// GrossMargin is BurnedValue - CostOfBurn.
func (f Figures) GrossMargin() decimal.Decimal { return f.BurnedValue.Sub(f.CostOfBurn) }

func ratio(a, b decimal.Decimal) *decimal.Decimal {
	if b.IsZero() {
		return nil
	}
	r := a.DivRound(b, 6)
	return &r
}

// NRR is credit-based net revenue retention and its parts (see the
// package doc).
type NRR struct {
	StartARR, EndARR                decimal.Decimal
	Expansion, Contraction, Churned decimal.Decimal
	Organizations                   int // in the cohort
}

// Ratio is (start + expansion - contraction - churn) / start; nil without a cohort.
func (n NRR) Ratio() *decimal.Decimal {
	return ratio(n.StartARR.Add(n.Expansion).Sub(n.Contraction).Sub(n.Churned), n.StartARR)
}

// Key is a row's group; the keys not grouped by are nil.
type Key struct {
	OrganizationID *int
	Segment        *string
	PlanID         *int
	Month          *time.Time // the month's first day, UTC
}

// Row is one group's figures.
type Row struct {
	Key
	Figures
}

// Report is the answer: the totals, the rows asked for and the monthly
// series of the totals, in one currency.
type Report struct {
	From, To   time.Time
	Currency   string
	Currencies []string // every currency organisations are in (ask again for the others)
	Totals     Figures
	Rows       []Row
	Series     []Row // by month
}

// Compute builds the report.
func Compute(ctx context.Context, db *store.DB, q Query) (Report, error) {
	if q.Currency == "" {
		q.Currency = "USD"
	}
	if err := q.Validate(); err != nil {
		return Report{}, err
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	b, err := loadBook(ctx, db.Client)
	if err != nil {
		return Report{}, err
	}
	src, err := readSources(ctx, db, q.From, q.To, q.now())
	if err != nil {
		return Report{}, err
	}
	f := &folder{q: q, b: b, src: src, groups: map[string]*Row{}, months: map[string]*Row{}}
	f.fold()
	if len(f.groups) > MaxRows {
		return Report{}, credit.Invalid("groupBy", "the report has %d rows, more than %d: narrow the range or group by fewer keys", len(f.groups), MaxRows)
	}
	rep := Report{From: q.From, To: q.To, Currency: q.Currency, Currencies: b.currencies(), Totals: f.totals}
	rep.Rows = sorted(f.groups)
	rep.Series = sorted(f.months)
	return rep, nil
}

// sources are the aggregates a report folds.
type sources struct {
	entries    []entryFlow
	events     []eventValue
	charges    []chargeFlow
	before     []chargeFlow // the window of the range's length before it (NRR)
	liability0 map[int]decimal.Decimal
}

func readSources(ctx context.Context, db *store.DB, from, to, now time.Time) (sources, error) {
	var s sources
	// First roll up the closed months (in turn: each in its transaction),
	// then read: the statements are independent, and on PostgreSQL they
	// run at once, on connections of their own (SQLite has one).
	past, err := history(ctx, db, from, now)
	if err != nil {
		return s, err
	}
	rng, err := split(ctx, db, from, to, now)
	if err != nil {
		return s, err
	}
	steps := []func() error{
		func() (err error) { s.entries, err = entryFlows(ctx, db, rng); return },
		func() (err error) { s.events, err = eventValues(ctx, db, rng); return },
		func() (err error) { s.charges, err = chargeFlows(ctx, db, from, to); return },
		func() (err error) { s.before, err = chargeFlows(ctx, db, from.Add(-to.Sub(from)), from); return },
		func() (err error) { s.liability0, err = liabilityAt(ctx, db, past); return },
	}
	if !dialectOf(db).pg {
		for _, step := range steps {
			if err := step(); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	errs := make(chan error, len(steps))
	for _, step := range steps {
		go func() { errs <- step() }()
	}
	var first error
	for range steps {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return s, first
}

// currencies lists the organisations' currencies, sorted.
func (b *book) currencies() []string {
	seen := map[string]bool{}
	for id := range b.orgs {
		seen[b.currency(id)] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func sorted(m map[string]*Row) []Row {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Row, len(keys))
	for i, k := range keys {
		out[i] = *m[k]
	}
	return out
}

// monthStart parses 'YYYY-MM'.
func monthStart(m string) (time.Time, error) {
	t, err := time.Parse("2006-01", m)
	if err != nil {
		return time.Time{}, fmt.Errorf("kpi: month %q: %w", m, err)
	}
	return t, nil
}
