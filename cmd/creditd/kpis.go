package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/kpi"
	"github.com/creditd/creditd/store"
)

// kpis prints the KPI report (kpi.Compute) as CSV: one line per group,
// then the totals; `kpis journal` prints the revenue journal
// (kpi.Journal). The same figures as the kpis and revenueRecognition
// queries.
func kpis(ctx context.Context, args []string, stdout io.Writer) error {
	journal := len(args) > 0 && args[0] == "journal"
	name := "kpis"
	if journal {
		args, name = args[1:], "kpis journal"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "sqlite://PATH or postgres://... (default $CREDITD_DATABASE_URL or "+store.DefaultURL+")")
	fromS := fs.String("from", "", "the range's start, RFC 3339 or YYYY-MM-DD (UTC)")
	toS := fs.String("to", "", "the range's end (excluded), RFC 3339 or YYYY-MM-DD (UTC)")
	currency := fs.String("currency", "USD", "the report's currency")
	groupBy := ""
	if !journal {
		fs.StringVar(&groupBy, "group-by", "", "comma-separated: ORGANIZATION, SEGMENT, PLAN, MONTH")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	from, err := parseDay("--from", *fromS)
	if err != nil {
		return err
	}
	to, err := parseDay("--to", *toS)
	if err != nil {
		return err
	}
	q := kpi.Query{From: from, To: to, Currency: *currency}
	for _, g := range strings.Split(groupBy, ",") {
		if g = strings.TrimSpace(g); g != "" {
			q.GroupBy = append(q.GroupBy, kpi.GroupBy(strings.ToUpper(g)))
		}
	}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("%s: %v", name, strings.Replace(err.Error(), "groupBy", "--group-by", 1))
	}
	db, err := store.OpenMigrated(ctx, databaseURL(*dbURL))
	if err != nil {
		return err
	}
	defer db.Close()
	if journal {
		rev, err := kpi.RevenueRecognition(ctx, db, q)
		if err != nil {
			return err
		}
		return kpi.Journal(stdout, rev)
	}
	rep, err := kpi.Compute(ctx, db, q)
	if err != nil {
		return err
	}
	return writeKPIs(stdout, rep)
}

func parseDay(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is required", flagName)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is neither RFC 3339 nor YYYY-MM-DD", flagName, s)
	}
	return t, nil
}

var kpiColumns = []string{"month", "segment", "plan_id", "organization_id", "committed_pool_arr", "burned", "burned_value", "granted",
	"granted_value", "allocated", "utilisation", "expired", "expired_value", "rolled_over", "refunded", "refunded_money", "fee_revenue",
	"on_demand_revenue", "overage_revenue", "deferred_liability", "value_delivered", "cost_of_burn", "gross_margin", "value_to_burn",
	"events", "credit_nrr", "currency"}

// writeKPIs writes one line per row, then "total".
func writeKPIs(w io.Writer, rep kpi.Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(kpiColumns); err != nil {
		return err
	}
	line := func(k kpi.Key, f kpi.Figures, total bool) []string {
		keys := []string{"", "", "", ""}
		if total {
			keys[0] = "total"
		}
		if k.Month != nil {
			keys[0] = k.Month.Format("2006-01")
		}
		if k.Segment != nil {
			keys[1] = *k.Segment
		}
		if k.PlanID != nil {
			keys[2] = strconv.Itoa(*k.PlanID)
		}
		if k.OrganizationID != nil {
			keys[3] = strconv.Itoa(*k.OrganizationID)
		}
		nrr := ""
		if f.NRR != nil {
			nrr = opt(f.NRR.Ratio())
		}
		return append(keys, f.CommittedPoolARR.String(), f.Burned.String(), f.BurnedValue.String(), f.Granted.String(),
			f.GrantedValue.String(), f.Allocated.String(), opt(f.Utilisation()), f.Expired.String(), f.ExpiredValue.String(),
			f.RolledOver.String(), f.Refunded.String(), f.RefundedMoney.String(), f.FeeRevenue.String(), f.OnDemandRevenue.String(),
			f.OverageRevenue.String(), f.DeferredLiability.String(), f.ValueDelivered.String(), f.CostOfBurn.String(),
			f.GrossMargin().String(), opt(f.ValueToBurn()), strconv.Itoa(f.Events), nrr, rep.Currency)
	}
	for _, r := range rep.Rows {
		if err := cw.Write(line(r.Key, r.Figures, false)); err != nil {
			return err
		}
	}
	if err := cw.Write(line(kpi.Key{}, rep.Totals, true)); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func opt(d *decimal.Decimal) string {
	if d == nil {
		return ""
	}
	return d.String()
}
