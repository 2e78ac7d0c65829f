package forecast

import (
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// projection is the outcome of walking the balance over the horizon.
type projection struct {
	depletesAt        *time.Time
	overage, breakage decimal.Decimal
	events            []Event
}

// lot is credits that expire unless burned first.
type lot struct {
	at      time.Time       // the scheduled expiry
	expires time.Time       // the day boundary it expires at (see the package doc)
	credits decimal.Decimal // scheduled, after capping to Available
	left    decimal.Decimal // not yet burned nor expired
	unused  decimal.Decimal // expired unused
}

// balance is the projected balance during the walk. Invariant: every
// amount is >= 0 and lots are in draw order (soonest expiry first).
type balance struct {
	lots   []lot
	free   decimal.Decimal // credits that do not expire
	allocs []Scheduled     // by At; the first next have arrived
	next   int
}

// project walks the balance day by day over days (see the package doc for
// the rules) and sums overage and breakage up to until.
func project(in Input, today time.Time, days []Day, until time.Time) projection {
	end := today.Add(time.Duration(len(days)) * day)
	b := newBalance(in.Available, in.Expiries, in.Allocations)
	var p projection
	for _, d := range days {
		b.arrive(d.Date.Add(day))
		p.breakage = p.breakage.Add(b.expire(d.Date, until))
		short := b.burn(d.Burn)
		if d.Date.Before(until) {
			p.overage = p.overage.Add(short)
		}
		if p.depletesAt == nil && d.Burn.IsPositive() && b.total().IsZero() {
			at := d.Date
			p.depletesAt = &at
		}
	}
	p.breakage = p.breakage.Add(b.expire(end, until))
	p.events = b.events(today, end)
	return p
}

// newBalance splits available into lots that expire and a free rest. When
// the expiries add up to more than available, the soonest are reduced first.
func newBalance(available decimal.Decimal, expiries, allocations []Scheduled) *balance {
	b := &balance{lots: make([]lot, len(expiries))}
	for i, e := range expiries {
		at := e.At.UTC()
		b.lots[i] = lot{at: at, expires: dayBoundary(at), credits: e.Credits}
	}
	slices.SortStableFunc(b.lots, func(x, y lot) int { return x.at.Compare(y.at) })
	scheduled := decimal.Zero
	for _, l := range b.lots {
		scheduled = scheduled.Add(l.credits)
	}
	excess := scheduled.Sub(available)
	for i := range b.lots {
		cut := decimal.Min(b.lots[i].credits, decimal.Max(excess, decimal.Zero))
		b.lots[i].credits = b.lots[i].credits.Sub(cut)
		b.lots[i].left = b.lots[i].credits
		excess = excess.Sub(cut)
	}
	b.free = decimal.Max(available.Sub(scheduled), decimal.Zero)
	b.allocs = slices.Clone(allocations)
	slices.SortStableFunc(b.allocs, func(x, y Scheduled) int { return x.At.Compare(y.At) })
	return b
}

// dayBoundary is when credits scheduled to expire at t are gone: t itself
// when it is 00:00 UTC, else the end of its day.
func dayBoundary(t time.Time) time.Time {
	start := t.Truncate(day)
	if start.Equal(t) {
		return t
	}
	return start.Add(day)
}

// arrive adds the allocations due before dayEnd to the free balance.
func (b *balance) arrive(dayEnd time.Time) {
	for ; b.next < len(b.allocs) && b.allocs[b.next].At.Before(dayEnd); b.next++ {
		b.free = b.free.Add(b.allocs[b.next].Credits)
	}
}

// expire removes what is left of the lots that expire at or before t and
// returns the part of it scheduled to expire by until (breakage).
func (b *balance) expire(t, until time.Time) decimal.Decimal {
	breakage := decimal.Zero
	for i := range b.lots {
		l := &b.lots[i]
		if l.expires.After(t) || l.left.IsZero() {
			continue
		}
		l.unused, l.left = l.unused.Add(l.left), decimal.Zero
		if !l.at.After(until) {
			breakage = breakage.Add(l.unused)
		}
	}
	return breakage
}

// burn draws amount soonest-expiring first and returns the part the
// balance could not cover.
func (b *balance) burn(amount decimal.Decimal) decimal.Decimal {
	for i := range b.lots {
		if amount.IsZero() {
			return amount
		}
		take := decimal.Min(amount, b.lots[i].left)
		b.lots[i].left = b.lots[i].left.Sub(take)
		amount = amount.Sub(take)
	}
	take := decimal.Min(amount, b.free)
	b.free = b.free.Sub(take)
	return amount.Sub(take)
}

// total is the balance left.
func (b *balance) total() decimal.Decimal {
	sum := b.free
	for _, l := range b.lots {
		sum = sum.Add(l.left)
	}
	return sum
}

// events lists the expiries at or before end and the allocations before
// end (those that arrived), by At.
func (b *balance) events(today, end time.Time) []Event {
	var out []Event
	for _, l := range b.lots {
		if !l.at.After(end) {
			out = append(out, Event{Kind: KindExpiry, At: l.at, Credits: l.credits, Unused: l.unused})
		}
	}
	for _, a := range b.allocs {
		if !a.At.Before(today) && a.At.Before(end) {
			out = append(out, Event{Kind: KindAllocation, At: a.At.UTC(), Credits: a.Credits})
		}
	}
	slices.SortStableFunc(out, func(x, y Event) int { return x.At.Compare(y.At) })
	return out
}
