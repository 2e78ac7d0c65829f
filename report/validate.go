package report

import (
	"slices"
	"time"

	"github.com/creditd/creditd/credit"
)

// Validate checks a summary query: an organisation, a range of at most
// MaxSummaryDays, known group keys (each once, at most one of DAY, WEEK
// and MONTH) and bounded filters.
func (q SummaryQuery) Validate() error {
	if err := checkOrg(q.OrganizationID); err != nil {
		return err
	}
	if err := checkRange(q.From, q.To, MaxSummaryDays); err != nil {
		return err
	}
	grains := 0
	for i, g := range q.GroupBy {
		switch {
		case !slices.Contains([]GroupBy{ByPool, ByAction, ByCreditType, ByDay, ByWeek, ByMonth}, g):
			return credit.Invalid("groupBy", "unknown key %q: want POOL, ACTION, CREDIT_TYPE, DAY, WEEK or MONTH", g)
		case slices.Contains(q.GroupBy[:i], g):
			return credit.Invalid("groupBy", "%s is named twice", g)
		case isGrain(g):
			if grains++; grains > 1 {
				return credit.Invalid("groupBy", "at most one of DAY, WEEK and MONTH")
			}
		}
	}
	if err := checkIDs("poolIds", q.PoolIDs); err != nil {
		return err
	}
	if err := checkTexts("actions", q.Actions); err != nil {
		return err
	}
	for _, c := range q.CreditTypes {
		if !slices.Contains(creditTypes, c) {
			return credit.Invalid("creditTypes", "unknown credit type %q", c)
		}
	}
	return checkCount("creditTypes", len(q.CreditTypes))
}

// creditTypes are the values a summary reports as credit types.
var creditTypes = append(slices.Clone(credit.CreditType("").Values()), CreditOverage, CreditBorrow, CreditUncovered)

func checkOrg(id int) error {
	if id <= 0 {
		return credit.Invalid("organizationId", "must be greater than 0, got %d", id)
	}
	return nil
}

// checkRange checks a required [from, to) of at most days days.
func checkRange(from, to time.Time, days int) error {
	switch {
	case from.IsZero():
		return credit.Invalid("from", "is required")
	case to.IsZero():
		return credit.Invalid("to", "is required")
	case !from.Before(to):
		return credit.Invalid("to", "must be after from (%s), got %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	case to.Sub(from) > time.Duration(days)*24*time.Hour:
		return credit.Invalid("to", "the range is at most %d days: narrow it", days)
	}
	return nil
}

// checkOptionalRange checks a [from, to) whose ends may be missing.
func checkOptionalRange(from, to *time.Time) error {
	if from != nil && to != nil && !from.Before(*to) {
		return credit.Invalid("to", "must be after from")
	}
	return nil
}

func checkIDs(field string, ids []int) error {
	for _, id := range ids {
		if id <= 0 {
			return credit.Invalid(field, "ids are greater than 0, got %d", id)
		}
	}
	return checkCount(field, len(ids))
}

func checkTexts(field string, vs []string) error {
	for _, v := range vs {
		if v == "" {
			return credit.Invalid(field, "must not hold an empty value")
		}
	}
	return checkCount(field, len(vs))
}

func checkCount(field string, n int) error {
	if n > MaxFilterValues {
		return credit.Invalid(field, "at most %d values, got %d", MaxFilterValues, n)
	}
	return nil
}

// checkPage checks the size and cursor of a listing page.
func checkPage(first, after int) error {
	switch {
	case first < 1 || first > MaxPage:
		return credit.Invalid("first", "must be between 1 and %d, got %d", MaxPage, first)
	case after < 0:
		return credit.Invalid("after", "must not be negative, got %d", after)
	}
	return nil
}

// Validate checks an entry filter.
func (f EntryFilter) Validate() error {
	if err := checkOrg(f.OrganizationID); err != nil {
		return err
	}
	for _, k := range f.Kinds {
		if !slices.Contains(credit.EntryKind("").Values(), k) {
			return credit.Invalid("kinds", "unknown entry kind %q", k)
		}
	}
	if err := checkCount("kinds", len(f.Kinds)); err != nil {
		return err
	}
	if err := checkStatus(f.Status); err != nil {
		return err
	}
	return checkOptionalRange(f.From, f.To)
}

// Validate checks a usage event filter.
func (f EventFilter) Validate() error {
	if err := checkOrg(f.OrganizationID); err != nil {
		return err
	}
	if err := checkStatus(f.Status); err != nil {
		return err
	}
	return checkOptionalRange(f.From, f.To)
}

func checkStatus(s *string) error {
	if s != nil && !slices.Contains(credit.UsageStatus("").Values(), *s) {
		return credit.Invalid("status", "unknown usage status %q", *s)
	}
	return nil
}
