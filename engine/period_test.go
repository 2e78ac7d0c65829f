package engine_test

import (
	"math/rand"
	"testing"
	"time"
	_ "time/tzdata" // zones for machines without a system tz database

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

func periodZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func periodUTC(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v.UTC()
}

func TestScheduleValidate(t *testing.T) {
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    engine.Schedule
		ok   bool
	}{
		{"ok", engine.Schedule{Start: start, Period: credit.PeriodMonth, Location: periodZone(t, "Europe/Paris")}, true},
		{"nil location is UTC", engine.Schedule{Start: start, Period: credit.PeriodDay}, true},
		{"zero start", engine.Schedule{Period: credit.PeriodMonth, Location: time.UTC}, false},
		{"no period", engine.Schedule{Start: start, Location: time.UTC}, false},
		{"unknown period", engine.Schedule{Start: start, Period: "WEEK", Location: time.UTC}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestScheduleBoundary(t *testing.T) {
	ny := periodZone(t, "America/New_York")
	paris := periodZone(t, "Europe/Paris")
	tokyo := periodZone(t, "Asia/Tokyo")
	utc := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }

	for _, tc := range []struct {
		name  string
		s     engine.Schedule
		first int      // the index of want[0]
		want  []string // Boundary(first), Boundary(first+1), ...
	}{
		{
			name: "month from Jan 31 clamps without drift",
			s:    engine.Schedule{Start: utc(2026, 1, 31, 10, 0), Period: credit.PeriodMonth, Location: time.UTC},
			want: []string{
				"2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z",
				"2026-05-31T10:00:00Z", "2026-06-30T10:00:00Z", "2026-07-31T10:00:00Z",
			},
		},
		{
			name: "month from Jan 31 in a leap year",
			s:    engine.Schedule{Start: utc(2028, 1, 31, 0, 0), Period: credit.PeriodMonth, Location: time.UTC},
			want: []string{"2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"},
		},
		{
			name:  "month before the anchor",
			s:     engine.Schedule{Start: utc(2026, 3, 31, 10, 0), Period: credit.PeriodMonth, Location: time.UTC},
			first: -2,
			want:  []string{"2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z"},
		},
		{
			name: "month from Aug 31 across the year end",
			s:    engine.Schedule{Start: utc(2026, 8, 31, 0, 0), Period: credit.PeriodMonth, Location: time.UTC},
			want: []string{
				"2026-08-31T00:00:00Z", "2026-09-30T00:00:00Z", "2026-10-31T00:00:00Z", "2026-11-30T00:00:00Z",
				"2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z",
			},
		},
		{
			name: "month from Jan 30, non-leap year",
			s:    engine.Schedule{Start: utc(2026, 1, 30, 8, 0), Period: credit.PeriodMonth, Location: time.UTC},
			want: []string{"2026-01-30T08:00:00Z", "2026-02-28T08:00:00Z", "2026-03-30T08:00:00Z", "2026-04-30T08:00:00Z", "2026-05-30T08:00:00Z"},
		},
		{
			name: "month from Jan 30, leap year",
			s:    engine.Schedule{Start: utc(2028, 1, 30, 8, 0), Period: credit.PeriodMonth, Location: time.UTC},
			want: []string{"2028-01-30T08:00:00Z", "2028-02-29T08:00:00Z", "2028-03-30T08:00:00Z", "2028-04-30T08:00:00Z", "2028-05-30T08:00:00Z"},
		},
		{
			name: "quarter from Nov 30, non-leap February",
			s:    engine.Schedule{Start: utc(2026, 11, 30, 0, 0), Period: credit.PeriodQuarter, Location: time.UTC},
			want: []string{"2026-11-30T00:00:00Z", "2027-02-28T00:00:00Z", "2027-05-30T00:00:00Z", "2027-08-30T00:00:00Z", "2027-11-30T00:00:00Z"},
		},
		{
			name: "quarter from Nov 30, leap February",
			s:    engine.Schedule{Start: utc(2027, 11, 30, 0, 0), Period: credit.PeriodQuarter, Location: time.UTC},
			want: []string{"2027-11-30T00:00:00Z", "2028-02-29T00:00:00Z", "2028-05-30T00:00:00Z", "2028-08-30T00:00:00Z", "2028-11-30T00:00:00Z"},
		},
		{
			name: "year from Feb 29 2028",
			s:    engine.Schedule{Start: utc(2028, 2, 29, 12, 0), Period: credit.PeriodYear, Location: time.UTC},
			want: []string{
				"2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z", "2030-02-28T12:00:00Z", "2031-02-28T12:00:00Z",
				"2032-02-29T12:00:00Z", "2033-02-28T12:00:00Z",
			},
		},
		{
			name: "day across spring forward in New York keeps local midnight",
			s:    engine.Schedule{Start: time.Date(2026, 3, 6, 0, 0, 0, 0, ny), Period: credit.PeriodDay, Location: ny},
			want: []string{"2026-03-06T05:00:00Z", "2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-10T04:00:00Z"},
		},
		{
			name: "day across fall back in New York keeps local midnight",
			s:    engine.Schedule{Start: time.Date(2026, 10, 30, 0, 0, 0, 0, ny), Period: credit.PeriodDay, Location: ny},
			want: []string{"2026-10-30T04:00:00Z", "2026-10-31T04:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z"},
		},
		{
			// 02:30 does not exist on 2026-03-08 in New York: time.Date normalises
			// it to 06:30Z (01:30 EST); the next day is 02:30 EDT again.
			name: "day anchored in the DST gap hour follows time.Date",
			s:    engine.Schedule{Start: time.Date(2026, 3, 7, 2, 30, 0, 0, ny), Period: credit.PeriodDay, Location: ny},
			want: []string{"2026-03-07T07:30:00Z", "2026-03-08T06:30:00Z", "2026-03-09T06:30:00Z"},
		},
		{
			// The second 01:30 of 2026-11-01 (EST): period 0 starts at Start
			// exactly, the others at 01:30 local.
			name:  "day anchored in the repeated hour starts at Start",
			s:     engine.Schedule{Start: periodUTC(t, "2026-11-01T06:30:00Z"), Period: credit.PeriodDay, Location: ny},
			first: -1,
			want:  []string{"2026-10-31T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"},
		},
		{
			name: "month in Paris at 00:30 local across DST",
			s:    engine.Schedule{Start: time.Date(2026, 1, 15, 0, 30, 0, 0, paris), Period: credit.PeriodMonth, Location: paris},
			want: []string{
				"2026-01-14T23:30:00Z", "2026-02-14T23:30:00Z", "2026-03-14T23:30:00Z", "2026-04-14T22:30:00Z",
				"2026-05-14T22:30:00Z", "2026-06-14T22:30:00Z", "2026-07-14T22:30:00Z", "2026-08-14T22:30:00Z",
				"2026-09-14T22:30:00Z", "2026-10-14T22:30:00Z", "2026-11-14T23:30:00Z", "2026-12-14T23:30:00Z",
			},
		},
		{
			// The anchor is the local date in Location, not Start's own zone.
			name: "month anchored on the local date of the Location",
			s:    engine.Schedule{Start: utc(2026, 1, 31, 23, 30), Period: credit.PeriodMonth, Location: tokyo}, // Feb 1 08:30 JST
			want: []string{"2026-01-31T23:30:00Z", "2026-02-28T23:30:00Z", "2026-03-31T23:30:00Z", "2026-04-30T23:30:00Z"},
		},
		{
			name: "nil location is UTC",
			s:    engine.Schedule{Start: time.Date(2026, 1, 31, 10, 0, 0, 0, ny), Period: credit.PeriodMonth}, // 15:00Z
			want: []string{"2026-01-31T15:00:00Z", "2026-02-28T15:00:00Z", "2026-03-31T15:00:00Z"},
		},
		{
			name:  "far future: period 10,000 of a daily schedule",
			s:     engine.Schedule{Start: time.Date(2026, 3, 6, 0, 0, 0, 0, ny), Period: credit.PeriodDay, Location: ny},
			first: 10000,
			want:  []string{"2053-07-22T04:00:00Z", "2053-07-23T04:00:00Z"},
		},
		{
			name:  "far future: period 1,200 of a monthly schedule",
			s:     engine.Schedule{Start: utc(2026, 1, 31, 10, 0), Period: credit.PeriodMonth, Location: time.UTC},
			first: 1200,
			want:  []string{"2126-01-31T10:00:00Z", "2126-02-28T10:00:00Z"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, w := range tc.want {
				n := tc.first + i
				got := tc.s.Boundary(n)
				if want := periodUTC(t, w); !got.Equal(want) || got.Location() != time.UTC {
					t.Errorf("Boundary(%d) = %s, want %s", n, got.Format(time.RFC3339Nano), w)
				}
				if i+1 < len(tc.want) {
					s, e := tc.s.Bounds(n)
					if !s.Equal(periodUTC(t, w)) || !e.Equal(periodUTC(t, tc.want[i+1])) {
						t.Errorf("Bounds(%d) = [%s, %s), want [%s, %s)", n, s, e, w, tc.want[i+1])
					}
				}
			}
		})
	}
}

func TestScheduleDSTDurations(t *testing.T) {
	ny := periodZone(t, "America/New_York")
	paris := periodZone(t, "Europe/Paris")
	for _, tc := range []struct {
		name  string
		start time.Time // local midnight, the day before the change
		n     int
		want  time.Duration
	}{
		{"spring forward 2026-03-08", time.Date(2026, 3, 7, 0, 0, 0, 0, ny), 1, 23 * time.Hour},
		{"normal day before", time.Date(2026, 3, 7, 0, 0, 0, 0, ny), 0, 24 * time.Hour},
		{"fall back 2026-11-01", time.Date(2026, 10, 31, 0, 0, 0, 0, ny), 1, 25 * time.Hour},
		{"normal day after", time.Date(2026, 10, 31, 0, 0, 0, 0, ny), 2, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := engine.Schedule{Start: tc.start, Period: credit.PeriodDay, Location: ny}
			a, b := s.Bounds(tc.n)
			if got := b.Sub(a); got != tc.want {
				t.Fatalf("period %d [%s, %s) lasts %s, want %s", tc.n, a, b, got, tc.want)
			}
			for _, x := range []time.Time{a, b} {
				if h, m, sec := x.In(ny).Clock(); h != 0 || m != 0 || sec != 0 {
					t.Fatalf("boundary %s is %02d:%02d:%02d local, want midnight", x, h, m, sec)
				}
			}
		})
	}
	t.Run("Paris month keeps 00:30 local", func(t *testing.T) {
		s := engine.Schedule{Start: time.Date(2025, 12, 15, 0, 30, 0, 0, paris), Period: credit.PeriodMonth, Location: paris}
		for n := range 36 {
			b := s.Boundary(n).In(paris)
			if h, m, _ := b.Clock(); h != 0 || m != 30 || b.Day() != 15 {
				t.Fatalf("Boundary(%d) = %s, want the 15th at 00:30 local", n, b)
			}
		}
	})
}

func TestScheduleIndex(t *testing.T) {
	ny := periodZone(t, "America/New_York")
	monthly := engine.Schedule{Start: time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC), Period: credit.PeriodMonth, Location: time.UTC}
	daily := engine.Schedule{Start: time.Date(2026, 3, 6, 0, 0, 0, 0, ny), Period: credit.PeriodDay, Location: ny}
	yearly := engine.Schedule{Start: time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), Period: credit.PeriodYear, Location: time.UTC}
	ns := time.Nanosecond
	for _, tc := range []struct {
		name string
		s    engine.Schedule
		at   string
		off  time.Duration
		want int
	}{
		{"at Start", monthly, "2026-01-31T10:00:00Z", 0, 0},
		{"1ns before Start", monthly, "2026-01-31T10:00:00Z", -ns, -1},
		{"long before Start", monthly, "1999-01-01T00:00:00Z", 0, -1},
		{"inside period 0", monthly, "2026-02-15T00:00:00Z", 0, 0},
		{"1ns before boundary 1", monthly, "2026-02-28T10:00:00Z", -ns, 0},
		{"exactly on boundary 1", monthly, "2026-02-28T10:00:00Z", 0, 1},
		{"exactly on clamped boundary 2", monthly, "2026-03-31T10:00:00Z", 0, 2},
		{"1ns before boundary 2", monthly, "2026-03-31T10:00:00Z", -ns, 1},
		{"on boundary 1200", monthly, "2126-01-31T10:00:00Z", 0, 1200},
		{"1ns before boundary 1200", monthly, "2126-01-31T10:00:00Z", -ns, 1199},
		{"1ns before boundary 1201", monthly, "2126-02-28T10:00:00Z", -ns, 1200},
		{"daily on the 23h day's start", daily, "2026-03-08T05:00:00Z", 0, 2},
		{"daily 1ns before the 23h day ends", daily, "2026-03-09T04:00:00Z", -ns, 2},
		{"daily after the 23h day", daily, "2026-03-09T04:00:00Z", 0, 3},
		{"daily on boundary 10000", daily, "2053-07-22T04:00:00Z", 0, 10000},
		{"daily 1ns before boundary 10000", daily, "2053-07-22T04:00:00Z", -ns, 9999},
		{"daily 1ns before boundary 10001", daily, "2053-07-23T04:00:00Z", -ns, 10000},
		{"yearly on a Feb 28 boundary", yearly, "2029-02-28T12:00:00Z", 0, 1},
		{"yearly 1ns before a Feb 29 boundary", yearly, "2032-02-29T12:00:00Z", -ns, 3},
		{"yearly on a Feb 29 boundary", yearly, "2032-02-29T12:00:00Z", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := periodUTC(t, tc.at).Add(tc.off)
			if got := tc.s.Index(at); got != tc.want {
				t.Fatalf("Index(%s) = %d, want %d", at.Format(time.RFC3339Nano), got, tc.want)
			}
			// The same instant in another zone is the same period.
			if got := tc.s.Index(at.In(ny)); got != tc.want {
				t.Fatalf("Index(%s) = %d, want %d", at.In(ny), got, tc.want)
			}
			checkScheduleIndex(t, tc.s, at)
		})
	}
}

// checkScheduleIndex checks Index against Boundary at t.
func checkScheduleIndex(t testing.TB, s engine.Schedule, at time.Time) {
	t.Helper()
	n := s.Index(at)
	if at.Before(s.Start) {
		if n != -1 {
			t.Fatalf("%+v: Index(%s) = %d before Start, want -1", s, at, n)
		}
		return
	}
	lo, hi := s.Bounds(n)
	if n < 0 || lo.After(at) || !hi.After(at) {
		t.Fatalf("%+v: Index(%s) = %d, whose bounds are [%s, %s)", s, at.Format(time.RFC3339Nano), n,
			lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
	}
}

var periodTestZones = []string{
	"UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", // 30-minute DST
	"Asia/Kolkata", "Pacific/Chatham", "America/Sao_Paulo",
	"Pacific/Apia", // skipped 2011-12-30
}

var periodKinds = []credit.Period{credit.PeriodDay, credit.PeriodMonth, credit.PeriodQuarter, credit.PeriodYear}

func TestScheduleIndexProperty(t *testing.T) {
	r := rand.New(rand.NewSource(20261122))
	lo := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, zone := range periodTestZones {
		loc := periodZone(t, zone)
		for _, p := range periodKinds {
			for range 40 {
				start := time.Unix(lo+r.Int63n(hi-lo), r.Int63n(1e9)).In(loc)
				if r.Intn(4) == 0 { // often a local midnight or a month end
					y, m, d := start.Date()
					if r.Intn(2) == 0 {
						d = 31
					}
					start = time.Date(y, m, d, 0, 0, 0, 0, loc)
				}
				s := engine.Schedule{Start: start, Period: p, Location: loc}
				// Boundaries never go back, and each starts the period it bounds.
				prev := s.Boundary(-1)
				for n := range 30 {
					b := s.Boundary(n)
					if b.Before(prev) {
						t.Fatalf("%+v: Boundary(%d) = %s before Boundary(%d) = %s", s, n, b, n-1, prev)
					}
					if b.After(prev) && n > 0 && s.Index(prev) != n-1 {
						t.Fatalf("%+v: Index(Boundary(%d)) = %d", s, n-1, s.Index(prev))
					}
					prev = b
				}
				// Random instants up to ~5,000 periods either side.
				span := int64(5000 * 24 * time.Hour)
				if p != credit.PeriodDay {
					span = int64(120 * 365 * 24 * time.Hour)
				}
				for range 50 {
					at := start.Add(time.Duration(r.Int63n(2*span) - span/10))
					checkScheduleIndex(t, s, at)
					n := s.Index(at)
					if n >= 0 {
						b := s.Boundary(n + 1)
						checkScheduleIndex(t, s, b)
						checkScheduleIndex(t, s, b.Add(-time.Nanosecond))
					}
				}
			}
		}
	}
}

func FuzzScheduleIndex(f *testing.F) {
	f.Add(int64(1769853600), int64(0), int64(0), uint8(1), uint8(0))
	f.Add(int64(1772773200), int64(864000000), int64(0), uint8(0), uint8(1))
	f.Add(int64(1768433400), int64(-1), int64(999999999), uint8(1), uint8(2))
	f.Add(int64(1322560800), int64(3*86400), int64(0), uint8(0), uint8(7))
	f.Add(int64(1890000000), int64(31536000*150), int64(1), uint8(3), uint8(3))
	locs := make([]*time.Location, len(periodTestZones))
	for i, z := range periodTestZones {
		locs[i] = periodZone(f, z)
	}
	lo := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	const maxDelta = 300 * 366 * 86400 // seconds
	f.Fuzz(func(t *testing.T, start, delta, nanos int64, kind, zone uint8) {
		start = lo + mod64(start, hi-lo)
		delta = mod64(delta, 2*maxDelta) - maxDelta/10
		s := engine.Schedule{
			Start:    time.Unix(start, mod64(nanos, 1e9)),
			Period:   periodKinds[int(kind)%len(periodKinds)],
			Location: locs[int(zone)%len(locs)],
		}
		at := time.Unix(start+delta, mod64(nanos>>30, 1e9))
		checkScheduleIndex(t, s, at)
	})
}

func mod64(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
