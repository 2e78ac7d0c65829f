package credit

import (
	"errors"
	"fmt"
)

// Code is a stable error code; the API puts it in the GraphQL error's
// extensions.code. Clients switch on codes, never on messages.
type Code string

const (
	CodeValidation          Code = "VALIDATION"           // malformed or out-of-range input; extensions.field names it
	CodeNotFound            Code = "NOT_FOUND"            // an id or name that does not exist (or that the caller may not see)
	CodeUnknownAction       Code = "UNKNOWN_ACTION"       // the register in effect has no weight for the action
	CodeNoRegister          Code = "NO_REGISTER"          // no published register version is in effect at the event time
	CodeRuleCompile         Code = "RULE_COMPILE"         // a CEL rule does not compile; extensions.errors has line and column
	CodeRuleRuntime         Code = "RULE_RUNTIME"         // a CEL rule failed while deciding; nothing was charged
	CodeIdempotencyConflict Code = "IDEMPOTENCY_CONFLICT" // an idempotency key reused with a different payload
	CodeInsufficientCredits Code = "INSUFFICIENT_CREDITS" // not enough credits (a usage decision's reasonCode)
	CodeBudgetExceeded      Code = "BUDGET_EXCEEDED"      // a hard budget stops the pool's spending (a usage decision's reasonCode)
	CodeUncovered           Code = "UNCOVERED"            // a run settled for more than its hold, the balance and the overage mode cover (a usage decision's reasonCode and an alert kind)
	CodeBatchTooLarge       Code = "BATCH_TOO_LARGE"      // more items than the batch limit
	CodeConflict            Code = "CONFLICT"             // the request contradicts the current state (e.g. publishing twice)
	CodeSubscriptionOverlap Code = "SUBSCRIPTION_OVERLAP" // a subscription overlapping one the organisation has
	CodeUnknownRun          Code = "UNKNOWN_RUN"          // a terminal event for a run that never started
	CodeRunSettled          Code = "RUN_SETTLED"          // a second terminal event for a settled run
	CodeRunStarted          Code = "RUN_STARTED"          // a second STARTED event for a run
	CodeNoOnDemandPrice     Code = "NO_ON_DEMAND_PRICE"   // a purchase under a plan that sells no on-demand credits
	CodeTransferForbidden   Code = "TRANSFER_FORBIDDEN"   // a transfer the caller's role, the pools' organisations or the TRANSFER policy do not allow
	CodeNotRefundable       Code = "NOT_REFUNDABLE"       // nothing left to refund (a denied event, one that charged nothing, or refunded in full)
	CodeRefundExceeded      Code = "REFUND_EXCEEDED"      // a refund of more than is left to refund, or than the REFUND policy allows
	CodeRefundForbidden     Code = "REFUND_FORBIDDEN"     // a refund the caller's role or the REFUND policy does not allow
	CodeSamePlan            Code = "SAME_PLAN"            // a plan change to the plan the subscription has
	CodeCurrencyMismatch    Code = "CURRENCY_MISMATCH"    // a plan change between plans of two currencies (or billing periods)
	CodeSubscriptionEnded   Code = "SUBSCRIPTION_ENDED"   // a change or cancellation of a subscription that is cancelled or has ended
	CodeNotEntitled         Code = "NOT_ENTITLED"         // usage of an action the plan does not entitle (a usage decision's reasonCode)
	CodeOverageCap          Code = "OVERAGE_CAP"          // overage past the organisation's overage cap (a usage decision's reasonCode)
	CodeTierGap             Code = "TIER_GAP"             // price tiers that leave a range of credits unpriced (the first not from 0, one not starting where the last ended, a bounded last tier)
	CodeTierOverlap         Code = "TIER_OVERLAP"         // price tiers whose ranges overlap or are empty
	CodeNoTerm              Code = "NO_TERM"              // a term-end change or cancellation of a subscription without a term
	CodeAddOnAttached       Code = "ADD_ON_ATTACHED"      // an add-on the subscription already has
	CodeAddOnRemoved        Code = "ADD_ON_REMOVED"       // removing an add-on that was removed already
	CodeNoticePeriod        Code = "NOTICE_PERIOD"        // a price change published to take effect inside the subscribers' notice period
	CodeInternal            Code = "INTERNAL"             // a fault of ours; the message is generic, the cause is logged
	CodeUnavailable         Code = "UNAVAILABLE"          // the database is down, restarting or out of connections; extensions.retryable says whether resending is safe
)

// Error is an error meant for the caller: a stable code, a message safe to
// show, optional details (field, index, rule positions), and the internal
// cause kept apart for logs.
type Error struct {
	Code    Code
	Message string
	Field   string         // the input field at fault, if any
	Index   *int           // the batch item at fault, if any
	Details map[string]any // extra extensions (e.g. rule error positions)
	Cause   error          // internal; never shown to callers
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Index != nil {
		msg = fmt.Sprintf("item %d: %s", *e.Index, msg)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds a caller-facing error with a code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a VALIDATION error about one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound builds a NOT_FOUND error.
func NotFound(what string, id any) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %v not found", what, id)}
}

// AtIndex returns a copy of err that names the batch item i.
func AtIndex(err error, i int) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Index = &i
		return &c
	}
	return err
}

// CodeOf returns the code of err, INTERNAL when it carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
