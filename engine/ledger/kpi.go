package ledger

import (
	"context"
	"time"

	"github.com/creditd/creditd/kpi"
)

// The KPIs read the whole ledger (package kpi); the API lets only
// unscoped roles (OPERATOR, REVOPS) ask.

// KPIs is kpi.Compute on this service's database.
func (s *Service) KPIs(ctx context.Context, q kpi.Query) (kpi.Report, error) {
	q.Now = s.Now()
	return kpi.Compute(ctx, s.db, q)
}

// RevenueRecognition is kpi.RevenueRecognition on this service's database.
func (s *Service) RevenueRecognition(ctx context.Context, q kpi.Query) (kpi.Revenue, error) {
	q.Now = s.Now()
	return kpi.RevenueRecognition(ctx, s.db, q)
}

// AccountHealth is kpi.AccountHealth at asOf (zero: now).
func (s *Service) AccountHealth(ctx context.Context, asOf time.Time) ([]kpi.Health, error) {
	if asOf.IsZero() {
		asOf = s.Now()
	}
	return kpi.AccountHealth(ctx, s.db, asOf)
}
