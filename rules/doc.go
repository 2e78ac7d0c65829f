// Package rules is the CEL layer: one environment per policy kind with
// declared variables, an exact decimal type for credits and money,
// compilation with line/column errors, a cost limit, and a cache of compiled
// programs. Pricing teams write these rules; they never touch floats.
//
// # Kinds, variables and results
//
// BURN — how many credits an event costs; result decimal >= 0.
//
//	event   rules.Event: action string, status string, quantity decimal,
//	        completion decimal, attempt int, runId string,
//	        properties map(string, dyn), occurredAt timestamp
//	weight  decimal: credits per unit of the action
//	org     rules.Org: id string, segment string
//	now     timestamp
//
//	event.status == "SUCCEEDED" ? weight * event.quantity
//	  : (event.status == "FAILED" ? weight * decimal("0.2") : decimal(0))
//
// WEIGHT — a weight expression in a register; result decimal >= 0; the
// variables of BURN without weight.
//
//	decimal(1) + decimal(event.properties.pages) * decimal("0.25")
//
// DRAW_ORDER — which grants burn first; result a list, evaluated once per
// grant; grants are drawn in ascending order of the lists (see CompareKeys).
//
//	grant   rules.Grant: id string, creditType string, priority int,
//	        amount decimal, remaining decimal, unitPrice decimal,
//	        effectiveAt timestamp, expiresAt timestamp, createdAt timestamp;
//	        no expiry shows as timestamp("9999-12-31T23:59:59Z")
//	now     timestamp
//
//	[grant.priority, grant.expiresAt]                                   FEFO
//	[grant.createdAt]                                                   FIFO
//	[grant.creditType == "INCENTIVE" ? 0 : 1, grant.expiresAt]          incentives first
//
// Enum values are strings with their GraphQL spelling ("SUCCEEDED",
// "INCENTIVE"). properties holds the event's JSON: numbers are doubles,
// so convert them with decimal(...). Reading a missing property is a run-time
// error; guard it with has(event.properties.name).
//
// # Decimal functions (all kinds)
//
//	decimal(string)   exact; at most 100 characters, exponent in [-40, 40]
//	decimal(int), decimal(uint), decimal(decimal)
//	decimal(double)   through the shortest decimal text: decimal(0.1) == decimal("0.1")
//	a + b, a - b, a * b, a / b     decimal with decimal, or decimal with int
//	-a
//	a / b             rounded half away from zero to 28 decimal places;
//	                  division by zero is a run-time error
//	==, !=            between decimals
//	<, <=, >, >=      decimal with decimal, or decimal with int
//	d.round(n)        n places (-40..40), half away from zero: decimal("2.5").round(0) == decimal(3)
//	min(a, b), max(a, b)
//	string(d)         the decimal's text
//
// The CEL standard library (string, list and timestamp functions and the
// macros has, all, exists, exists_one, map, filter) is available too.
//
// # Limits
//
// A rule is at most 10,000 characters. One evaluation may cost at most
// CostLimit; a rule whose estimated worst case is known and above it is
// rejected at compile time, otherwise evaluation stops at the limit. The
// context cancels evaluation.
//
// # Errors
//
// Every compile failure matches ErrCompile and is a *CompileError with
// 1-based line and column positions; every evaluation failure (division by
// zero, missing property, wrong result type or sign, cost limit, cancelled
// context) matches ErrRuntime.
package rules
