package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/creditd/creditd/credit"
)

// Schedule is a subscription's period calendar: anchored on Start (in
// Location), one period of Period each. A nil Location is UTC.
//
// Period n starts at the anchor's local date plus n periods (calendar days for
// DAY, calendar months for MONTH, QUARTER and YEAR), at the anchor's local
// wall-clock time. Month arithmetic always counts from the original anchor and
// clamps to the target month's last day, so it never drifts: a Jan 31 anchor
// gives Feb 28 (29), Mar 31, Apr 30, May 31, ... A wall-clock time that does
// not exist on a day (a DST gap) is normalised as time.Date does; one that
// exists twice (a DST overlap) is the one time.Date picks. Period 0 starts at
// Start exactly.
type Schedule struct {
	Start    time.Time
	Period   credit.Period
	Location *time.Location
}

// Validate checks the schedule: a start, a known period. A nil Location is
// accepted (UTC).
func (s Schedule) Validate() error {
	if s.Start.IsZero() {
		return errors.New("the schedule has no start")
	}
	if !s.Period.Valid() {
		return fmt.Errorf("%q is not a valid credit.Period", string(s.Period))
	}
	return nil
}

func (s Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// Boundary returns the start of period n, in UTC; Boundary(0) is Start.
// Negative n count back from Start. An unknown Period is treated as MONTH
// (Validate refuses it).
func (s Schedule) Boundary(n int) time.Time {
	if n == 0 {
		return s.Start.UTC()
	}
	loc := s.loc()
	a := s.Start.In(loc)
	y, m, d := a.Date()
	hh, mm, ss := a.Clock()
	ns := a.Nanosecond()
	k := s.Period.Months()
	if k == 0 {
		return time.Date(y, m, d+n, hh, mm, ss, ns, loc).UTC()
	}
	if k < 0 {
		k = 1
	}
	total := int(m) - 1 + n*k // months since January of the anchor's year
	ty, tm := y+floorDivInt(total, 12), time.Month(floorModInt(total, 12)+1)
	if last := lastDayOfMonth(ty, tm); d > last {
		d = last
	}
	return time.Date(ty, tm, d, hh, mm, ss, ns, loc).UTC()
}

// Bounds returns [start, end) of period n.
func (s Schedule) Bounds(n int) (time.Time, time.Time) {
	return s.Boundary(n), s.Boundary(n + 1)
}

// Index returns the index n of the period containing t, that is
// Boundary(n) <= t < Boundary(n+1); a t before Start returns -1. It estimates
// n from the calendar and adjusts by a step or two, so it costs the same for
// any n.
func (s Schedule) Index(t time.Time) int {
	if t.Before(s.Boundary(0)) {
		return -1
	}
	loc := s.loc()
	var n int
	if k := s.Period.Months(); k == 0 {
		// Whole days between the two instants: off by at most a step or two
		// from the calendar count (UTC offsets differ by at most ~26 hours).
		n = int(floorDivInt64(t.Unix()-s.Start.Unix(), 86400))
	} else {
		if k < 0 {
			k = 1
		}
		a, b := s.Start.In(loc), t.In(loc)
		months := (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
		n = floorDivInt(months, k)
	}
	if n < 0 {
		n = 0
	}
	// Boundaries are non-decreasing: find the largest n with Boundary(n) <= t.
	for n > 0 && s.Boundary(n).After(t) {
		n--
	}
	for !s.Boundary(n + 1).After(t) {
		n++
	}
	return n
}

func floorDivInt(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorModInt(a, b int) int { return a - floorDivInt(a, b)*b }

func floorDivInt64(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// lastDayOfMonth is the number of days in month m of year y.
func lastDayOfMonth(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
