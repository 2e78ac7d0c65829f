package graph

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph/model"
)

func usageInput(in model.UsageInput) engine.UsageInput {
	return engine.UsageInput{
		IdempotencyKey: in.IdempotencyKey, OrganizationID: in.OrganizationID, PoolID: in.PoolID,
		RunID: deref(in.RunID), Action: in.Action, Status: in.Status,
		Quantity: in.Quantity, Completion: in.Completion, Attempt: in.Attempt,
		Properties: in.Properties, OccurredAt: in.OccurredAt,
	}
}

func weightInputs(ws []model.WeightInput) []ledger.WeightInput {
	out := make([]ledger.WeightInput, len(ws))
	for i, w := range ws {
		out[i] = ledger.WeightInput{Action: w.Action, Credits: w.Credits, Expression: deref(w.Expression),
			ValuePerAction: w.ValuePerAction, CostPerAction: w.CostPerAction, DegradedAllowed: deref(w.AllowedInDegradedMode)}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// values is the values of a list of pointers (nil stays nil).
func values[T any](ps []*T) []T {
	if ps == nil {
		return nil
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// nonEmpty maps "" to null for optional strings.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullDecimal(d decimal.NullDecimal) *decimal.Decimal {
	if !d.Valid {
		return nil
	}
	return &d.Decimal
}

// Cursors are opaque to clients: base64 of "<kind>:<id>", so a cursor of one
// connection is refused by another.
func cursor(kind string, id int) string {
	return base64.StdEncoding.EncodeToString([]byte(kind + ":" + strconv.Itoa(id)))
}

// pageArgs reads first (default 50) and after (a cursor of kind) of a
// connection; after 0 means from the start.
func pageArgs(kind string, first *int, after *string) (int, int, error) {
	n := 50
	if first != nil {
		n = *first
	}
	if after == nil {
		return n, 0, nil
	}
	b, err := base64.StdEncoding.DecodeString(*after)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), kind+":"); ok {
			if id, err := strconv.Atoi(s); err == nil && id > 0 {
				return n, id, nil
			}
		}
	}
	return 0, 0, credit.Invalid("after", "not a cursor of this connection")
}

// pageInfo is the PageInfo of a page whose edges have these cursors.
func pageInfo(cursors []string, hasNext, hasPrevious bool) *model.PageInfo {
	pi := &model.PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrevious}
	if len(cursors) > 0 {
		pi.StartCursor, pi.EndCursor = &cursors[0], &cursors[len(cursors)-1]
	}
	return pi
}

// found turns a missing (or invisible) object of a root lookup by id into
// NOT_FOUND: the same answer whether the id does not exist or belongs to
// another organisation, so ids cannot be probed.
func found[T any](v *T, err error) func(what string, id int) (*T, error) {
	return func(what string, id int) (*T, error) {
		if err == nil && v == nil {
			return nil, credit.NotFound(what, id)
		}
		return v, err
	}
}
