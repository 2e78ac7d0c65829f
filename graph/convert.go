package graph

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

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
			ValuePerAction: w.ValuePerAction, CostPerAction: w.CostPerAction}
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

// Ledger cursors are opaque to clients: base64 of "entry:<id>".
func entryCursor(id int) string {
	return base64.StdEncoding.EncodeToString([]byte("entry:" + strconv.Itoa(id)))
}

func parseEntryCursor(c string) (int, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), "entry:"); ok {
			if id, err := strconv.Atoi(s); err == nil && id > 0 {
				return id, nil
			}
		}
	}
	return 0, engine.Invalid("after", "not a cursor of this connection")
}
