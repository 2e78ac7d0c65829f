package graph

import (
	"context"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/graph/model"
	"github.com/creditd/creditd/kpi"
)

// The KPI report in the API's shapes; rows name their organisation and
// plan as objects, read once for the whole report.

func kpiReport(ctx context.Context, c *ent.Client, r kpi.Report) (*model.KpiReport, error) {
	orgs, err := c.Organization.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	plans, err := c.Plan.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	orgByID, planByID := map[int]*ent.Organization{}, map[int]*ent.Plan{}
	for _, o := range orgs {
		orgByID[o.ID] = o
	}
	for _, p := range plans {
		planByID[p.ID] = p
	}
	rows := func(rs []kpi.Row) []*model.KpiRow {
		out := make([]*model.KpiRow, len(rs))
		for i, r := range rs {
			row := &model.KpiRow{Segment: r.Segment, Month: r.Month, Figures: kpiFigures(r.Figures)}
			if r.OrganizationID != nil {
				row.Organization = orgByID[*r.OrganizationID]
			}
			if r.PlanID != nil {
				row.Plan = planByID[*r.PlanID]
			}
			out[i] = row
		}
		return out
	}
	t := kpiFigures(r.Totals)
	out := &model.KpiReport{CommittedPoolArr: t.CommittedPoolArr, ValueToBurn: t.ValueToBurn, Burned: t.Burned, Granted: t.Granted,
		Expired: t.Expired, From: r.From, To: r.To, Currency: r.Currency, Currencies: r.Currencies, Totals: t,
		Rows: rows(r.Rows), Series: rows(r.Series)}
	if t.Nrr != nil {
		out.CreditNrr = t.Nrr.Ratio
	}
	return out, nil
}

func kpiFigures(f kpi.Figures) *model.KpiFigures {
	out := &model.KpiFigures{CommittedPoolArr: f.CommittedPoolARR, Burned: f.Burned, BurnedValue: f.BurnedValue, Granted: f.Granted,
		GrantedValue: f.GrantedValue, Allocated: f.Allocated, Utilisation: float(f.Utilisation()), Expired: f.Expired,
		ExpiredValue: f.ExpiredValue, RolledOver: f.RolledOver, Refunded: f.Refunded, RefundedMoney: f.RefundedMoney,
		FeeRevenue: f.FeeRevenue, OnDemandRevenue: f.OnDemandRevenue, OverageRevenue: f.OverageRevenue,
		DeferredLiability: f.DeferredLiability, ValueDelivered: f.ValueDelivered, CostOfBurn: f.CostOfBurn,
		GrossMargin: f.GrossMargin(), ValueToBurn: float(f.ValueToBurn()), Events: f.Events}
	if n := f.NRR; n != nil {
		out.Nrr = &model.KpiNrr{StartArr: n.StartARR, EndArr: n.EndARR, Expansion: n.Expansion, Contraction: n.Contraction,
			Churned: n.Churned, Organizations: n.Organizations, Ratio: float(n.Ratio())}
	}
	return out
}

// float is a ratio as a GraphQL Float (nil stays null).
func float(d *decimal.Decimal) *float64 {
	if d == nil {
		return nil
	}
	f := d.InexactFloat64()
	return &f
}
