package engine

import (
	"fmt"
	"io"
	"strconv"
)

// The enums below are shared by the ent schema (as GoType), the GraphQL API
// (MarshalGQL/UnmarshalGQL, so gqlgen binds them directly) and the rules
// (their string spelling is what CEL expressions compare against).

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
	// settled silently for free (see engine.SettleRun).
	EntryUncovered EntryKind = "UNCOVERED"
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
)

func (Role) Values() []string          { return roles }
func (OverageMode) Values() []string   { return overageModes }
func (RolloverMode) Values() []string  { return rolloverModes }
func (PoolKind) Values() []string      { return poolKinds }
func (CreditType) Values() []string    { return creditTypes }
func (UsageStatus) Values() []string   { return usageStatuses }
func (Decision) Values() []string      { return decisions }
func (EntryKind) Values() []string     { return entryKinds }
func (PolicyKind) Values() []string    { return policyKinds }
func (VersionStatus) Values() []string { return versionStatues }

func unmarshalEnum(v any, values []string, name string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string", name)
	}
	for _, x := range values {
		if x == s {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not a valid %s", s, name)
}

func marshalEnum(w io.Writer, s string) { _, _ = io.WriteString(w, strconv.Quote(s)) }

func (e Role) MarshalGQL(w io.Writer)          { marshalEnum(w, string(e)) }
func (e OverageMode) MarshalGQL(w io.Writer)   { marshalEnum(w, string(e)) }
func (e RolloverMode) MarshalGQL(w io.Writer)  { marshalEnum(w, string(e)) }
func (e PoolKind) MarshalGQL(w io.Writer)      { marshalEnum(w, string(e)) }
func (e CreditType) MarshalGQL(w io.Writer)    { marshalEnum(w, string(e)) }
func (e UsageStatus) MarshalGQL(w io.Writer)   { marshalEnum(w, string(e)) }
func (e Decision) MarshalGQL(w io.Writer)      { marshalEnum(w, string(e)) }
func (e EntryKind) MarshalGQL(w io.Writer)     { marshalEnum(w, string(e)) }
func (e PolicyKind) MarshalGQL(w io.Writer)    { marshalEnum(w, string(e)) }
func (e VersionStatus) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

func (e *OverageMode) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, overageModes, "OverageMode")
	*e = OverageMode(s)
	return err
}
func (e *RolloverMode) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, rolloverModes, "RolloverMode")
	*e = RolloverMode(s)
	return err
}
func (e *Role) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, roles, "Role")
	*e = Role(s)
	return err
}
func (e *PoolKind) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, poolKinds, "PoolKind")
	*e = PoolKind(s)
	return err
}
func (e *CreditType) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, creditTypes, "CreditType")
	*e = CreditType(s)
	return err
}
func (e *UsageStatus) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, usageStatuses, "UsageStatus")
	*e = UsageStatus(s)
	return err
}
func (e *Decision) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, decisions, "Decision")
	*e = Decision(s)
	return err
}
func (e *EntryKind) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, entryKinds, "EntryKind")
	*e = EntryKind(s)
	return err
}
func (e *PolicyKind) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, policyKinds, "PolicyKind")
	*e = PolicyKind(s)
	return err
}
func (e *VersionStatus) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, versionStatues, "VersionStatus")
	*e = VersionStatus(s)
	return err
}
