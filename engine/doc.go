// Package engine is the pure decision core of the credit ledger: given the
// state of a pool (its grants), the versions in effect (weight register,
// policies as compiled CEL rules), an event and `now`, it decides what the
// event costs and which grants pay for it. It does no I/O and never reads the
// clock; engine/ledger is the one place that opens a transaction around it.
//
// The path of a usage event through Decide:
//
//	weight (register version in effect, optional weight expression)
//	-> burn (BURN policy, or the default below)
//	-> draw order (DRAW_ORDER policy, or the default below) over usable grants
//	-> draws (a burn may split across grants) or a denial (HARD ceiling)
//
// Default burn: full weight x quantity on SUCCEEDED; nothing on FAILED or
// STARTED; weight x quantity x completion on PARTIAL.
//
// Default draw order: lower priority number first, then earliest expiry (no
// expiry last), then credit type (INCENTIVE, PROMOTIONAL, ROLLOVER,
// SUBSCRIPTION, ON_DEMAND, SERVICE), then oldest grant, then lowest id.
// Grants not yet effective, already expired (expiresAt <= now) or empty are
// never drawn.
//
// Invariants kept here: a decision never draws more from a grant than it
// holds; the draws of an allowed decision sum exactly to its credits; a
// denied decision draws nothing.
package engine
