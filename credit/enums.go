package credit

import "slices"

// The enums below are shared by the ent schema (as GoType: Values lists
// them), the engine, the rules (their string spelling is what CEL
// expressions compare against) and the GraphQL API (gqlgen.yml binds each
// GraphQL enum value to its constant here).

// PoolKind is the level of a pool in an organisation's pool tree.
type PoolKind string

const (
	PoolAccount  PoolKind = "ACCOUNT"
	PoolTeam     PoolKind = "TEAM"
	PoolPersonal PoolKind = "PERSONAL"
)

// CreditType is the kind of a grant; it matters for draw order, rollover and KPIs.
type CreditType string

const (
	CreditSubscription CreditType = "SUBSCRIPTION"
	CreditOnDemand     CreditType = "ON_DEMAND"
	CreditIncentive    CreditType = "INCENTIVE"
	CreditRollover     CreditType = "ROLLOVER"
	CreditPromotional  CreditType = "PROMOTIONAL"
	CreditService      CreditType = "SERVICE"
)

// UsageStatus is how far the action of a usage event got.
type UsageStatus string

const (
	StatusStarted   UsageStatus = "STARTED"
	StatusSucceeded UsageStatus = "SUCCEEDED"
	StatusFailed    UsageStatus = "FAILED"
	StatusPartial   UsageStatus = "PARTIAL"
)

// Decision is the engine's verdict on a usage event.
type Decision string

const (
	DecisionAllowed  Decision = "ALLOWED"
	DecisionDegraded Decision = "DEGRADED"
	DecisionDenied   Decision = "DENIED"
)

// EntryKind is what a ledger entry records.
type EntryKind string

const (
	EntryGrant       EntryKind = "GRANT"
	EntryHold        EntryKind = "HOLD"
	EntryRelease     EntryKind = "RELEASE"
	EntryBurn        EntryKind = "BURN"
	EntryExpire      EntryKind = "EXPIRE"
	EntryRolloverOut EntryKind = "ROLLOVER_OUT"
	EntryRolloverIn  EntryKind = "ROLLOVER_IN"
	EntryRefund      EntryKind = "REFUND"
	EntryTransferOut EntryKind = "TRANSFER_OUT"
	EntryTransferIn  EntryKind = "TRANSFER_IN"
	EntryVoid        EntryKind = "VOID"
	EntryOverage     EntryKind = "OVERAGE"
	EntryBorrow      EntryKind = "BORROW"
	EntryAdjustment  EntryKind = "ADJUSTMENT"
	// EntryUncovered records, on no grant, the part of a run's cost that
	// neither its hold, the balance nor the plan's overage mode could
	// cover: the run was approved and did the work, so it is never
	// settled silently for free (see the engine's SettleRun).
	EntryUncovered EntryKind = "UNCOVERED"
)

// Payment is whether the credits of a grant are paid for. A PENDING grant
// waits for its payment: it holds no credits (remaining 0, no opening entry)
// until confirmPayment writes its opening entry; failPayment, or the
// payment window running out, makes it FAILED and reverses its charge.
type Payment string

const (
	PaymentPaid    Payment = "PAID"
	PaymentPending Payment = "PENDING"
	PaymentFailed  Payment = "FAILED"
)

// AlertKind is what an alert warns of. The usage path raises
// BUDGET_EXCEEDED (a soft budget crossed) and RUN_UNCOVERED (a run settled
// beyond what covered it) for every pool; alert rules watch the others,
// evaluated by the alert job; POLICY is a published ALERT policy that
// matched; WEBHOOK_DISABLED an endpoint that failed persistently.
type AlertKind string

const (
	AlertBalanceBelow       AlertKind = "BALANCE_BELOW"
	AlertExpiringWithin     AlertKind = "EXPIRING_WITHIN"
	AlertBurnRateAbove      AlertKind = "BURN_RATE_ABOVE"
	AlertBudgetReached      AlertKind = "BUDGET_REACHED"
	AlertTopUpDenied        AlertKind = "TOP_UP_DENIED"
	AlertRunUncovered       AlertKind = "RUN_UNCOVERED"
	AlertDepletionProjected AlertKind = "DEPLETION_PROJECTED"
	AlertBudgetExceeded     AlertKind = "BUDGET_EXCEEDED"
	AlertPolicy             AlertKind = "POLICY"
	AlertWebhookDisabled    AlertKind = "WEBHOOK_DISABLED"
	AlertOverageCap         AlertKind = "OVERAGE_CAP" // the period's overage passed 80% of the buyer's cap
)

// PolicyKind names what a policy (a CEL rule) decides.
type PolicyKind string

const (
	PolicyBurn      PolicyKind = "BURN"
	PolicyDrawOrder PolicyKind = "DRAW_ORDER"
	PolicyIncentive PolicyKind = "INCENTIVE"
	PolicyRefund    PolicyKind = "REFUND"
	PolicyOverage   PolicyKind = "OVERAGE"
	PolicyRollover  PolicyKind = "ROLLOVER"
	PolicyTransfer  PolicyKind = "TRANSFER"
	PolicyAlert     PolicyKind = "ALERT"
)

// VersionStatus is the life of a weight register or policy version.
type VersionStatus string

const (
	VersionDraft     VersionStatus = "DRAFT"
	VersionPublished VersionStatus = "PUBLISHED"
	VersionRetired   VersionStatus = "RETIRED"
)

// Role is what an API key may do; see package auth.
type Role string

const (
	RoleOperator Role = "OPERATOR"  // the vendor's platform operators: everything
	RolePricing  Role = "PRICING"   // weight registers, policies, validation
	RoleRevOps   Role = "REVOPS"    // read-only: balances, ledgers of every organisation
	RoleOrgAdmin Role = "ORG_ADMIN" // one organisation: its pools, keys, ledger
	RoleService  Role = "SERVICE"   // record usage and read balances (one organisation, or all)
)

// OverageMode is what a plan does when a burn exceeds the credits available.
type OverageMode string

const (
	OverageHard      OverageMode = "HARD"        // deny
	OverageSoft      OverageMode = "SOFT"        // allow, bill the excess at the overage price
	OverageDegraded  OverageMode = "DEGRADED"    // only actions allowed in degraded mode run
	OverageAutoTopUp OverageMode = "AUTO_TOP_UP" // buy a pack when the balance crosses a threshold
	OverageBorrow    OverageMode = "BORROW"      // draw on the next period's allocation, up to a limit
)

// RolloverMode is what happens to unused included credits at period end.
type RolloverMode string

const (
	RolloverNone      RolloverMode = "NONE"      // they expire
	RolloverCapped    RolloverMode = "CAPPED"    // up to the plan's rollover cap roll into the next period
	RolloverOneTime   RolloverMode = "ONE_TIME"  // they roll once; rolled credits expire at the next period end
	RolloverUnlimited RolloverMode = "UNLIMITED" // everything rolls (an accounting anti-pattern)
)

// ChangeCredits is what a plan change does to the included (SUBSCRIPTION)
// credits of the current period, a term of the plan being left. Other
// credit types (rollover, purchased, incentive, promotional, service)
// always carry over.
type ChangeCredits string

const (
	ChangeProrate ChangeCredits = "PRORATE" // keep what was granted; the new plan's difference x the period left arrives (upgrade) or is taken back from what is unused (downgrade)
	ChangeCarry   ChangeCredits = "CARRY"   // as PRORATE, but a downgrade takes nothing back
	ChangeForfeit ChangeCredits = "FORFEIT" // the unused included credits leave; the new plan's included x the period left arrives
)

// TermEndCredits is what happens, at the end of a subscription's term, to
// the unused included credits (SUBSCRIPTION and ROLLOVER) ending there: a
// plan term. Other credit types keep their own expiry.
type TermEndCredits string

const (
	TermEndRoll   TermEndCredits = "ROLL"   // the plan's rollover rules apply at a term end as at any period end (into the renewal); a term that does not renew expires them
	TermEndExpire TermEndCredits = "EXPIRE" // they expire at the term end, whatever the rollover rules
	TermEndRefund TermEndCredits = "REFUND" // they leave with a REFUND entry and come back as money at the plan's termEndRefundRate per credit (a TERM_REFUND charge)
)

// Period is a plan's billing period.
type Period string

const (
	PeriodDay     Period = "DAY"
	PeriodMonth   Period = "MONTH"
	PeriodQuarter Period = "QUARTER"
	PeriodYear    Period = "YEAR"
)

var periods = []string{"DAY", "MONTH", "QUARTER", "YEAR"}

func (Period) Values() []string { return periods }

// Valid reports whether p is one of the periods.
func (p Period) Valid() bool { return p.Months() >= 0 }

// Months is the length of p in calendar months: 0 for DAY, -1 for an
// unknown period.
func (p Period) Months() int {
	switch p {
	case PeriodDay:
		return 0
	case PeriodMonth:
		return 1
	case PeriodQuarter:
		return 3
	case PeriodYear:
		return 12
	}
	return -1
}

var (
	overageModes   = []string{"HARD", "SOFT", "DEGRADED", "AUTO_TOP_UP", "BORROW"}
	rolloverModes  = []string{"NONE", "CAPPED", "ONE_TIME", "UNLIMITED"}
	roles          = []string{"OPERATOR", "PRICING", "REVOPS", "ORG_ADMIN", "SERVICE"}
	poolKinds      = []string{"ACCOUNT", "TEAM", "PERSONAL"}
	creditTypes    = []string{"SUBSCRIPTION", "ON_DEMAND", "INCENTIVE", "ROLLOVER", "PROMOTIONAL", "SERVICE"}
	usageStatuses  = []string{"STARTED", "SUCCEEDED", "FAILED", "PARTIAL"}
	decisions      = []string{"ALLOWED", "DEGRADED", "DENIED"}
	entryKinds     = []string{"GRANT", "HOLD", "RELEASE", "BURN", "EXPIRE", "ROLLOVER_OUT", "ROLLOVER_IN", "REFUND", "TRANSFER_OUT", "TRANSFER_IN", "VOID", "OVERAGE", "BORROW", "ADJUSTMENT", "UNCOVERED"}
	policyKinds    = []string{"BURN", "DRAW_ORDER", "INCENTIVE", "REFUND", "OVERAGE", "ROLLOVER", "TRANSFER", "ALERT"}
	versionStatues = []string{"DRAFT", "PUBLISHED", "RETIRED"}
	payments       = []string{"PAID", "PENDING", "FAILED"}
	changeCredits  = []string{"PRORATE", "CARRY", "FORFEIT"}
	termEndCredits = []string{"ROLL", "EXPIRE", "REFUND"}
	alertKinds     = []string{"BALANCE_BELOW", "EXPIRING_WITHIN", "BURN_RATE_ABOVE", "BUDGET_REACHED", "TOP_UP_DENIED", "RUN_UNCOVERED", "DEPLETION_PROJECTED", "BUDGET_EXCEEDED", "POLICY", "WEBHOOK_DISABLED", "OVERAGE_CAP"}
)

func (Role) Values() []string           { return roles }
func (OverageMode) Values() []string    { return overageModes }
func (RolloverMode) Values() []string   { return rolloverModes }
func (PoolKind) Values() []string       { return poolKinds }
func (CreditType) Values() []string     { return creditTypes }
func (UsageStatus) Values() []string    { return usageStatuses }
func (Decision) Values() []string       { return decisions }
func (EntryKind) Values() []string      { return entryKinds }
func (PolicyKind) Values() []string     { return policyKinds }
func (VersionStatus) Values() []string  { return versionStatues }
func (Payment) Values() []string        { return payments }
func (AlertKind) Values() []string      { return alertKinds }
func (ChangeCredits) Values() []string  { return changeCredits }
func (TermEndCredits) Values() []string { return termEndCredits }

// Valid reports whether s is one of the usage statuses.
func (s UsageStatus) Valid() bool { return slices.Contains(usageStatuses, string(s)) }
