package kpi

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// folder folds the organisation-month aggregates into the report's
// groups, its monthly series and its totals.
type folder struct {
	q      Query
	b      *book
	src    sources
	totals Figures
	groups map[string]*Row
	months map[string]*Row
	planAt map[int]int // organisation -> its plan at the range's end (ByPlan)
}

func (f *folder) has(g GroupBy) bool {
	for _, x := range f.q.GroupBy {
		if x == g {
			return true
		}
	}
	return false
}

// inCurrency: the organisation's figures belong to the report.
func (f *folder) inCurrency(org int) bool { return f.b.currency(org) == f.q.Currency }

// row is the group of org in month (a 'YYYY-MM'; "" for stocks at the end),
// created on first use; nil when the report has no groups.
func (f *folder) row(org int, month string) *Row {
	if len(f.q.GroupBy) == 0 {
		return nil
	}
	var k Key
	if f.has(ByOrganization) {
		id := org
		k.OrganizationID = &id
	}
	if f.has(BySegment) {
		seg := ""
		if o := f.b.orgs[org]; o != nil {
			seg = o.Segment
		}
		k.Segment = &seg
	}
	if f.has(ByPlan) {
		p, ok := f.planAt[org]
		if !ok {
			if f.planAt == nil {
				f.planAt = map[int]int{}
			}
			p = f.b.planOf(org, f.q.To.Add(-time.Nanosecond))
			f.planAt[org] = p
		}
		k.PlanID = &p
	}
	if f.has(ByMonth) {
		if month == "" {
			return nil
		}
		t, err := monthStart(month)
		if err != nil {
			return nil
		}
		k.Month = &t
	}
	id := keyString(k)
	r := f.groups[id]
	if r == nil {
		r = &Row{Key: k}
		f.groups[id] = r
	}
	return r
}

// monthRow is the series' row of a month.
func (f *folder) monthRow(month string) *Row {
	r := f.months[month]
	if r == nil {
		t, _ := monthStart(month)
		r = &Row{Key: Key{Month: &t}}
		f.months[month] = r
	}
	return r
}

func keyString(k Key) string {
	s := ""
	if k.Month != nil {
		s += k.Month.Format("2006-01") // months sort first: rows read as a time series per group
	}
	if k.Segment != nil {
		s += "|s:" + *k.Segment
	}
	if k.PlanID != nil {
		s += fmt.Sprintf("|p:%09d", *k.PlanID)
	}
	if k.OrganizationID != nil {
		s += fmt.Sprintf("|o:%09d", *k.OrganizationID)
	}
	return s
}

// each applies add to the totals, the month's series row and the group.
func (f *folder) each(org int, month string, add func(*Figures)) {
	add(&f.totals)
	add(&f.monthRow(month).Figures)
	if r := f.row(org, month); r != nil {
		add(&r.Figures)
	}
}

func (f *folder) fold() {
	liability := map[int]map[string]decimal.Decimal{} // org -> month -> liability flow
	for _, e := range f.src.entries {
		if !f.inCurrency(e.org) {
			continue
		}
		e := e
		f.each(e.org, e.month, func(x *Figures) { addEntries(x, e) })
		if e.kind != string(credit.EntryHold) && e.kind != string(credit.EntryRelease) {
			if liability[e.org] == nil {
				liability[e.org] = map[string]decimal.Decimal{}
			}
			liability[e.org][e.month] = liability[e.org][e.month].Add(e.val)
		}
	}
	for _, v := range f.src.events {
		if f.inCurrency(v.org) {
			v := v
			f.each(v.org, v.month, func(x *Figures) {
				x.Events += v.events
				x.ValueDelivered, x.CostOfBurn = x.ValueDelivered.Add(v.value), x.CostOfBurn.Add(v.cost)
			})
		}
	}
	for _, c := range f.src.charges {
		if f.inCurrency(c.org) && c.currency == f.q.Currency {
			c := c
			f.each(c.org, c.month, func(x *Figures) { addCharges(x, c) })
		}
	}
	f.stocks(liability)
	f.nrr()
}

// addEntries adds one group of ledger entries.
func addEntries(x *Figures, e entryFlow) {
	switch credit.EntryKind(e.kind) {
	case credit.EntryBurn:
		x.Burned, x.BurnedValue = x.Burned.Sub(e.credits), x.BurnedValue.Sub(e.val)
	case credit.EntryGrant:
		if e.event { // a grant a refund opened for a usage event
			x.Refunded = x.Refunded.Add(e.credits)
			return
		}
		x.Granted, x.GrantedValue = x.Granted.Add(e.credits), x.GrantedValue.Add(e.val)
		if e.ctype == string(credit.CreditSubscription) {
			x.Allocated = x.Allocated.Add(e.credits)
		}
	case credit.EntryExpire:
		x.Expired, x.ExpiredValue = x.Expired.Sub(e.credits), x.ExpiredValue.Sub(e.val)
	case credit.EntryRolloverOut:
		x.RolledOver = x.RolledOver.Sub(e.credits)
	case credit.EntryRefund:
		x.Refunded = x.Refunded.Add(e.credits.Abs())
	}
}

// addCharges adds one group of charges.
func addCharges(x *Figures, c chargeFlow) {
	switch c.kind {
	case "PLATFORM_FEE", "PRORATION", "ADD_ON", "TRUE_UP", "TERM_REFUND":
		x.FeeRevenue = x.FeeRevenue.Add(c.amount)
	case "ON_DEMAND", "AUTO_TOP_UP":
		x.OnDemandRevenue = x.OnDemandRevenue.Add(c.amount)
	case "OVERAGE":
		x.OverageRevenue = x.OverageRevenue.Add(c.amount)
	}
	if c.neg && c.kind != "PRORATION" {
		x.RefundedMoney = x.RefundedMoney.Sub(c.amount)
	}
}

// months lists the range's months, 'YYYY-MM', with when each one's
// figures end (its end, or the range's).
func (f *folder) monthEnds() ([]string, []time.Time) {
	var ms []string
	var ends []time.Time
	for m := time.Date(f.q.From.Year(), f.q.From.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(f.q.To); m = m.AddDate(0, 1, 0) {
		end := m.AddDate(0, 1, 0)
		if end.After(f.q.To) {
			end = f.q.To
		}
		ms, ends = append(ms, m.Format("2006-01")), append(ends, end)
	}
	return ms, ends
}

// stocks adds the figures at a time: committed pool ARR and the deferred
// liability, at each month's end for the series (and month groups), at
// the range's end for the totals and the other groups.
func (f *folder) stocks(flows map[int]map[string]decimal.Decimal) {
	months, ends := f.monthEnds()
	last := f.q.To.Add(-time.Nanosecond) // in effect "at the end": just before To
	for org := range f.b.orgs {
		if !f.inCurrency(org) {
			continue
		}
		open := f.src.liability0[org]
		for i, m := range months {
			open = open.Add(flows[org][m])
			arr := f.b.arrAt(org, ends[i].Add(-time.Nanosecond))
			add := func(x *Figures) {
				x.CommittedPoolARR, x.DeferredLiability = x.CommittedPoolARR.Add(arr), x.DeferredLiability.Add(open)
			}
			add(&f.monthRow(m).Figures)
			if f.has(ByMonth) {
				add(&f.row(org, m).Figures)
			}
		}
		arr := f.b.arrAt(org, last)
		add := func(x *Figures) {
			x.CommittedPoolARR, x.DeferredLiability = x.CommittedPoolARR.Add(arr), x.DeferredLiability.Add(open)
		}
		add(&f.totals)
		if len(f.q.GroupBy) > 0 && !f.has(ByMonth) {
			add(&f.row(org, "").Figures)
		}
	}
}

// nrr adds credit-based NRR to the totals and to the rows not grouped by
// month.
func (f *folder) nrr() {
	variable := func(cs []chargeFlow) map[int]decimal.Decimal {
		out := map[int]decimal.Decimal{}
		for _, c := range cs {
			if c.currency == f.q.Currency && (c.kind == "ON_DEMAND" || c.kind == "AUTO_TOP_UP" || c.kind == "OVERAGE") {
				out[c.org] = out[c.org].Add(c.amount)
			}
		}
		return out
	}
	now, before := variable(f.src.charges), variable(f.src.before)
	days := decimal.NewFromInt(int64(f.q.To.Sub(f.q.From) / time.Second)).Div(decimal.NewFromInt(86400))
	annual := decimal.NewFromInt(365).DivRound(days, 10)
	f.totals.NRR = &NRR{}
	for org := range f.b.orgs {
		if !f.inCurrency(org) {
			continue
		}
		start := f.b.arrAt(org, f.q.From)
		if !start.IsPositive() {
			continue
		}
		end := f.b.arrAt(org, f.q.To.Add(-time.Nanosecond))
		n := NRR{StartARR: start, EndARR: end, Organizations: 1}
		if !end.IsPositive() {
			n.Churned = start
		} else {
			for _, d := range []decimal.Decimal{end.Sub(start), now[org].Sub(before[org]).Mul(annual).Round(4)} {
				if d.IsPositive() {
					n.Expansion = n.Expansion.Add(d)
				} else {
					n.Contraction = n.Contraction.Sub(d)
				}
			}
		}
		f.totals.NRR.add(n)
		if len(f.q.GroupBy) > 0 && !f.has(ByMonth) {
			r := f.row(org, "")
			if r.NRR == nil {
				r.NRR = &NRR{}
			}
			r.NRR.add(n)
		}
	}
}

func (n *NRR) add(o NRR) {
	n.StartARR, n.EndARR = n.StartARR.Add(o.StartARR), n.EndARR.Add(o.EndARR)
	n.Expansion, n.Contraction, n.Churned = n.Expansion.Add(o.Expansion), n.Contraction.Add(o.Contraction), n.Churned.Add(o.Churned)
	n.Organizations += o.Organizations
}
