package ledger

import (
	"context"
	"io"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/predicate"
	"github.com/creditd/creditd/ent/usageevent"
	"github.com/creditd/creditd/report"
)

// UsageEventFilter narrows an organisation's usage events; zero fields
// match everything.
type UsageEventFilter struct {
	PoolID        *int
	Action, RunID *string
	Status        *credit.UsageStatus
	Decision      *credit.Decision
	From, To      *time.Time // recorded at or after From, before To
}

func (f UsageEventFilter) where() []predicate.UsageEvent {
	var out []predicate.UsageEvent
	if f.PoolID != nil {
		out = append(out, usageevent.PoolID(*f.PoolID))
	}
	if f.Action != nil {
		out = append(out, usageevent.Action(*f.Action))
	}
	if f.RunID != nil {
		out = append(out, usageevent.RunID(*f.RunID))
	}
	if f.Status != nil {
		out = append(out, usageevent.StatusEQ(*f.Status))
	}
	if f.Decision != nil {
		out = append(out, usageevent.DecisionEQ(*f.Decision))
	}
	if f.From != nil {
		out = append(out, usageevent.CreatedAtGTE(*f.From))
	}
	if f.To != nil {
		out = append(out, usageevent.CreatedAtLT(*f.To))
	}
	return out
}

// EventPage is one page of usage events, newest first.
type EventPage struct {
	Events      []*ent.UsageEvent
	HasNextPage bool
}

// UsageEvents lists an organisation's usage events matching f, newest
// first: up to first older than the event whose id is after (0: from the
// newest).
func (s *Service) UsageEvents(ctx context.Context, org, first, after int, f UsageEventFilter) (EventPage, error) {
	if first < 1 || first > MaxPage {
		return EventPage{}, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if o, err := s.Organization(ctx, org); err != nil || o == nil {
		return EventPage{}, errOr(err, credit.NotFound("organization", org))
	}
	q := s.db.Client.UsageEvent.Query().Where(usageevent.OrganizationID(org)).Where(f.where()...)
	if after > 0 {
		q.Where(usageevent.IDLT(after))
	}
	evs, err := q.Order(ent.Desc(usageevent.FieldID)).Limit(first + 1).All(ctx)
	if err != nil {
		return EventPage{}, err
	}
	page := EventPage{Events: evs}
	if len(evs) > first {
		page.Events, page.HasNextPage = evs[:first], true
	}
	return page, nil
}

// UsageSummary sums an organisation's usage in the database
// (report.Summary), for a caller who sees the organisation.
func (s *Service) UsageSummary(ctx context.Context, q report.SummaryQuery) ([]report.SummaryRow, error) {
	if o, err := s.Organization(ctx, q.OrganizationID); err != nil || o == nil {
		return nil, errOr(err, credit.NotFound("organization", q.OrganizationID))
	}
	return report.Summary(ctx, s.db, q)
}

// ExportLedger streams an organisation's ledger entries matching f as CSV
// to w (report.ExportLedgerCSV), for a caller who sees the organisation.
func (s *Service) ExportLedger(ctx context.Context, f report.EntryFilter, w io.Writer) (int, error) {
	if o, err := s.Organization(ctx, f.OrganizationID); err != nil || o == nil {
		return 0, errOr(err, credit.NotFound("organization", f.OrganizationID))
	}
	return report.ExportLedgerCSV(ctx, s.db, f, w)
}

// ExportUsage streams an organisation's usage events matching f as CSV to
// w (report.ExportUsageCSV), for a caller who sees the organisation.
func (s *Service) ExportUsage(ctx context.Context, f report.EventFilter, w io.Writer) (int, error) {
	if o, err := s.Organization(ctx, f.OrganizationID); err != nil || o == nil {
		return 0, errOr(err, credit.NotFound("organization", f.OrganizationID))
	}
	return report.ExportUsageCSV(ctx, s.db, f, w)
}
