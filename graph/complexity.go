package graph

import (
	"math"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph/model"
	"github.com/creditd/creditd/report"
)

// Query complexity: what gqlgen weighs an operation by before running it
// (Options.ComplexityLimit refuses the heavier ones). A field counts 1 plus
// what it selects; a list counts what it selects once per row it may return:
//
//   - usageSummary a tenth of its row limit (summaryRows: flat sums);
//   - a page (ledger, charges, auditLog, alerts, usageEvents, an endpoint's
//     deliveries) its first, default 50, at
//     most ledger.MaxPage (a larger first is refused as VALIDATION by the
//     resolver, not here);
//   - recordUsageBatch the number of its inputs (at most the batch limit);
//   - Balance.byType the number of credit types;
//   - every other list, uncapped (an organisation's pools, a pool's grants,
//     a result's draws), listRows.
//
// A connection's edges are not counted again: their page already is.
// Nested objects (a ledger entry's grant) are read in batches (package
// loader), so a row costs what it shows, not a query.

// listRows is what a list without a size argument counts as.
const listRows = 10

// summaryRows is what usageSummary counts as: its rows are flat sums, and
// at most report.MaxSummaryRows, cheap to show, so a tenth of the limit.
const summaryRows = report.MaxSummaryRows / 10

// creditTypes is the number of CreditType values: the most rows of
// Balance.byType.
const creditTypes = 6

// DefaultComplexityLimit is Options.ComplexityLimit's default. It admits a
// page of 500 ledger entries with their grant, usage event, pool and
// organisation (13,501) and a batch of 1000 usage results with their draws
// (32,001), not a page whose entries list their organisation's pools and
// the pools' grants (61,001); see TestComplexity.
const DefaultComplexityLimit = 50000

// costs returns the complexity of the list fields; maxBatch is the
// service's batch limit.
func costs(maxBatch int) ComplexityRoot {
	var c ComplexityRoot
	page := func(child int, first *int) int { return rows(child, pageSize(first)) }
	list := func(child int) int { return rows(child, listRows) }

	c.Query.Ledger = func(child int, _ int, first *int, _ *string, _ *model.LedgerFilter) int { return page(child, first) }
	c.Query.UsageEvents = func(child int, _ int, first *int, _ *string, _ *model.UsageEventFilter) int {
		return page(child, first)
	}
	c.WebhookEndpoint.Deliveries = func(child int, first *int, _ *string) int { return page(child, first) }
	c.Query.Charges = func(child int, _ *int, first *int, _ *string) int { return page(child, first) }
	c.Query.AuditLog = func(child int, _ *int, first *int, _ *string) int { return page(child, first) }
	c.Query.Alerts = func(child int, _ *int, first *int, _ *bool) int { return page(child, first) }
	c.Mutation.RecordUsageBatch = func(child int, inputs []*model.UsageInput) int {
		return rows(child, max(1, min(len(inputs), maxBatch)))
	}
	c.Balance.ByType = func(child int) int { return rows(child, creditTypes) }

	c.Mutation.TransferCredits = func(child int, _ model.TransferInput) int { return list(child) }
	c.Mutation.Refund = func(child int, _ model.RefundInput) int { return list(child) }
	c.Query.APIKeys = list
	c.Query.Plans = list
	c.Query.Policies = func(child int, _ *credit.PolicyKind) int { return list(child) }
	c.Organization.Pools = list
	c.Pool.Grants = func(child int, _ *bool) int { return list(child) }
	c.UsageResult.Draws = list
	c.UsageResult.Incentives = list
	c.WeightRegister.Weights = list
	c.RuleValidation.Errors = list
	c.Query.AlertRules = func(child int, _ *int) int { return list(child) }
	c.Query.WebhookEndpoints = func(child int, _ *int) int { return list(child) }
	c.Query.UsageSummary = func(child int, _ int, _, _ time.Time, _ []model.UsageGroupBy, _ *model.UsageSummaryFilter) int {
		return rows(child, summaryRows)
	}
	c.Query.Quote = func(child int, _ int, usage []*model.ActionCountInput, _ *int) int { return child + 1 }
	c.Quote.Lines = func(child int) int { return rows(child, listRows) }
	c.Forecast.Days = func(child int) int { return rows(child, 30) }
	c.Forecast.Accounted = list
	c.Quote.Notes = list
	c.Query.PlanFamilies = list
	c.PlanFamily.Plans = list
	c.PlanFamily.Levers = list
	c.PlanLever.Values = list
	c.Plan.EntitledActions = list
	c.PlanSubscription.Changes = list
	c.PlanChangePreview.Entries = list
	c.PlanChangePreview.Charges = list
	c.WebhookEndpoint.EventTypes = list
	c.Query.AddOns = list
	c.Plan.OnDemandTiers = list
	c.Plan.OverageTiers = list
	c.Plan.SegmentPrices = list
	c.PlanSubscription.AddOns = list
	c.KpiReport.Currencies = list
	c.KpiReport.Rows = list
	c.KpiReport.Series = func(child int) int { return rows(child, 37) } // at most 3 x 366 days of months
	c.RevenueReport.Months = func(child int) int { return rows(child, 37) }
	c.RevenueReport.Breakage = list
	c.RegisterDiff.Actions = list
	c.ActionDiff.Economics = list
	c.SimulationReport.Rows = list
	c.PlaybookPlan.Changes = list
	c.Query.AccountHealth = func(child int, _ *time.Time) int { return list(child) }
	return c
}

// pageSize is the rows a page of first may hold (pageArgs' default 50).
func pageSize(first *int) int {
	if first == nil {
		return 50
	}
	return max(1, min(*first, ledger.MaxPage))
}

// rows is 1 + child*n, saturating instead of overflowing.
func rows(child, n int) int {
	if child > (math.MaxInt-1)/n {
		return math.MaxInt
	}
	return 1 + child*n
}
