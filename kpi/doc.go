// Package kpi computes the GTM figures RevOps and finance run the business
// on, from the ledger: committed pool ARR, Value-to-Burn, credit-based NRR,
// burned, granted, expired (breakage), rolled-over and refunded credits
// with their money value, utilisation, overage and on-demand revenue,
// deferred liability and gross margin on burn; the monthly roll-forward of
// the deferred credit liability, breakage by purchase cohort and the
// journal a ledger system imports; and each organisation's health.
//
// How it is computed: a handful of aggregate statements (report.Sum and
// report.SumProduct: exact on PostgreSQL and SQLite alike) group the
// ledger entries, usage events and charges of the range by organisation
// and UTC month; Go then folds those rows (organisations x months, never
// ledger rows) into the groups asked for. Subscriptions and plans, which
// are configuration and small, are read to place each organisation in a
// segment, a plan and a currency and to compute ARR.
//
// The formulas (the README's KPI section is the same text):
//
//   - burned: credits of BURN entries in the range; burnedValue: each x
//     the unit price of the grant it drew (what the buyer paid per credit;
//     0 for promotional, incentive and service credits).
//   - granted: credits of GRANT entries (new grants; grants a refund opens
//     for an event count as refunded instead); grantedValue likewise.
//     allocated: the SUBSCRIPTION part of granted (included credits and
//     prorated upgrades). utilisation = burned / granted (null: nothing
//     granted).
//   - expired (breakage): credits of EXPIRE entries, and their value.
//     rolledOver: credits of ROLLOVER_OUT entries.
//   - refunded: credits refunds gave back to buyers (REFUND entries and
//     refund grants for usage events) plus credits bought back (REFUND
//     entries out of grants, term-end refunds); refundedMoney: the money
//     negative charges returned (refundOf, TERM_REFUND, negative ADD_ON).
//   - revenue by kind, net of its refunds: fees (PLATFORM_FEE, PRORATION,
//     ADD_ON, TRUE_UP), onDemand (ON_DEMAND, AUTO_TOP_UP), overage
//     (OVERAGE).
//   - deferredLiability at the end of the range: the unit-price value of
//     every credit still unused then (all entries before it but HOLD and
//     RELEASE: held credits are still unused).
//   - valueDelivered: value per action (of the register version that
//     charged the event) x the event's quantity, for events that charged
//     credits; costOfBurn likewise with cost per action; grossMargin =
//     burnedValue - costOfBurn; valueToBurn = valueDelivered / burnedValue
//     (null when nothing of value was burned). Overage is billed as
//     overage revenue and is not in burnedValue.
//   - committedPoolArr at the end of the range: for each subscription in
//     effect then, (platform fee x periods per year) + (commitment per term
//     x terms per year), at the plan it was on then (a later plan change
//     does not rewrite the past). A commitment without a term counts 0.
//   - creditNrr over the range, for the cohort of organisations with
//     committed ARR at its start: (start + expansion - contraction -
//     churn) / start. Churn: the start ARR of those with none at the end.
//     Expansion and contraction: the rise or fall of each retained
//     organisation's ARR (upgrades, downgrades) plus the rise or fall of
//     its variable revenue (on-demand, top-ups, overage) between the range
//     and the window of equal length before it, annualised (x 365 days /
//     the range's length).
//
// Money is never added across currencies: a report is for one currency
// (an organisation's is its latest subscription's plan's; without one,
// USD), and lists the others found.
package kpi
