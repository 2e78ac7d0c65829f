package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// Limits on one usage input; larger requests are refused, not truncated.
const (
	MaxKeyLen        = 200
	MaxActionLen     = 200
	MaxPropertyBytes = 16 << 10
	MaxFutureSkew    = 5 * time.Minute
)

// UsageInput is one usage event as a caller sends it.
type UsageInput struct {
	IdempotencyKey string
	OrganizationID int
	PoolID         *int
	RunID          string
	Action         string
	Status         credit.UsageStatus
	Quantity       *decimal.Decimal
	Completion     *decimal.Decimal
	Attempt        *int
	Properties     map[string]any
	OccurredAt     *time.Time
}

// checkText checks the input's text fields: lengths and UTF-8.
func (in UsageInput) checkText() error {
	switch {
	case in.IdempotencyKey == "":
		return credit.Invalid("idempotencyKey", "must not be empty")
	case len(in.IdempotencyKey) > MaxKeyLen:
		return credit.Invalid("idempotencyKey", "is longer than %d bytes", MaxKeyLen)
	case in.Action == "":
		return credit.Invalid("action", "must not be empty")
	case len(in.Action) > MaxActionLen:
		return credit.Invalid("action", "is longer than %d bytes", MaxActionLen)
	case len(in.RunID) > MaxKeyLen:
		return credit.Invalid("runId", "is longer than %d bytes", MaxKeyLen)
	// The payload hash is over JSON, which turns every invalid byte into
	// U+FFFD: text that is not UTF-8 would make different payloads equal.
	case !utf8.ValidString(in.IdempotencyKey):
		return credit.Invalid("idempotencyKey", "is not valid UTF-8")
	case !utf8.ValidString(in.Action):
		return credit.Invalid("action", "is not valid UTF-8")
	case !utf8.ValidString(in.RunID):
		return credit.Invalid("runId", "is not valid UTF-8")
	case !validText(in.Properties):
		return credit.Invalid("properties", "holds text that is not valid UTF-8")
	}
	return nil
}

// Normalize validates the input and returns the event with defaults applied
// (quantity 1, completion 1, attempt 1, occurredAt now) and the payload hash
// that tells a replay of the same key from a conflicting reuse. The hash
// covers what the caller sent, normalised, so omitting quantity and sending
// "1" are the same payload.
func (in UsageInput) Normalize(now time.Time) (Event, string, error) {
	if err := in.checkText(); err != nil {
		return Event{}, "", err
	}
	ev := Event{
		Action: in.Action, Status: in.Status, RunID: in.RunID,
		Quantity: decimal.NewFromInt(1), Completion: decimal.NewFromInt(1), Attempt: 1,
		Properties: in.Properties, OccurredAt: now,
	}
	if ev.Status == "" {
		ev.Status = credit.StatusSucceeded
	}
	if !ev.Status.Valid() {
		return Event{}, "", credit.Invalid("status", "%q is not a valid UsageStatus", string(ev.Status))
	}
	if in.Quantity != nil {
		if !in.Quantity.IsPositive() {
			return Event{}, "", credit.Invalid("quantity", "must be greater than zero, got %s", in.Quantity)
		}
		ev.Quantity = *in.Quantity
	}
	if in.Completion != nil {
		if in.Completion.IsNegative() || in.Completion.GreaterThan(decimal.NewFromInt(1)) {
			return Event{}, "", credit.Invalid("completion", "must be between 0 and 1, got %s", in.Completion)
		}
		ev.Completion = *in.Completion
	}
	if in.Attempt != nil {
		if *in.Attempt < 1 {
			return Event{}, "", credit.Invalid("attempt", "must be at least 1, got %d", *in.Attempt)
		}
		ev.Attempt = *in.Attempt
	}
	if in.OccurredAt != nil {
		t := in.OccurredAt.UTC().Truncate(time.Microsecond)
		if t.After(now.Add(MaxFutureSkew)) {
			return Event{}, "", credit.Invalid("occurredAt", "is in the future (%s)", t.Format(time.RFC3339))
		}
		ev.OccurredAt = t
	}
	props, err := json.Marshal(in.Properties)
	if err != nil {
		return Event{}, "", credit.Invalid("properties", "not a JSON object: %v", err)
	}
	if len(props) > MaxPropertyBytes {
		return Event{}, "", credit.Invalid("properties", "is larger than %d bytes", MaxPropertyBytes)
	}
	pool := 0
	if in.PoolID != nil {
		pool = *in.PoolID
	}
	occurred := ""
	if in.OccurredAt != nil {
		occurred = ev.OccurredAt.Format(time.RFC3339Nano)
	}
	// json.Marshal of a struct is a canonical encoding: fixed field order,
	// map keys sorted.
	canon, _ := json.Marshal(struct {
		Pool       int                `json:"p"`
		Run        string             `json:"r"`
		Action     string             `json:"a"`
		Status     credit.UsageStatus `json:"s"`
		Quantity   string             `json:"q"`
		Completion string             `json:"c"`
		Attempt    int                `json:"t"`
		Properties json.RawMessage    `json:"x"`
		Occurred   string             `json:"o"`
	}{pool, ev.RunID, ev.Action, ev.Status, ev.Quantity.String(), ev.Completion.String(), ev.Attempt, props, occurred})
	sum := sha256.Sum256(canon)
	return ev, hex.EncodeToString(sum[:]), nil
}

// validText reports whether every string in a JSON-like value (keys and
// values of maps, elements of lists) is valid UTF-8.
func validText(v any) bool {
	switch x := v.(type) {
	case string:
		return utf8.ValidString(x)
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) || !validText(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !validText(e) {
				return false
			}
		}
	}
	return true
}
