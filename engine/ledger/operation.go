package ledger

import (
	"context"
	"crypto/sha256"
	stdsql "database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"entgo.io/ent/dialect/sql"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/operation"
)

// Credit and money mutations other than usage (grantCredits,
// purchaseCredits, transferCredits) are idempotent like usage when the
// caller names an idempotency key: per organisation, a retry with the same
// key and payload returns the first result and writes nothing; the same key
// with another payload, or for another operation, is IDEMPOTENCY_CONFLICT.
// The key is claimed (an operations row) in the mutation's transaction
// before the work: of two concurrent attempts, the second waits for the
// first and replays it.

// checkKey validates an optional idempotency key.
func checkKey(key string) error {
	switch {
	case len(key) > 200:
		return credit.Invalid("idempotencyKey", "must be at most 200 bytes")
	case !utf8.ValidString(key):
		return credit.Invalid("idempotencyKey", "is not valid UTF-8")
	}
	return engine.CheckText("idempotencyKey", key)
}

// keyed runs do once per (org, key) inside tx: the first time it records
// the ids do returns; a replay returns them with replay set, without calling
// do. Without a key it just calls do.
func (s *Service) keyed(ctx context.Context, tx *ent.Tx, org int, key, op string, payload any, do func() ([]int, error)) (ids []int, replay bool, err error) {
	if key == "" {
		ids, err = do()
		return ids, false, err
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(append([]byte(op+"\x00"), b...))
	hash := hex.EncodeToString(sum[:])
	id, err := tx.Operation.Create().SetOrganizationID(org).SetKey(key).SetOperation(op).SetPayloadHash(hash).SetCreatedAt(s.Now()).
		OnConflict(sql.ConflictColumns(operation.FieldOrganizationID, operation.FieldKey)).DoNothing().ID(ctx)
	switch {
	case err == nil: // claimed: do the work and record what it made
		if ids, err = do(); err != nil {
			return nil, false, err
		}
		return ids, false, tx.Operation.UpdateOneID(id).SetResult(joinIDs(ids)).Exec(ctx)
	case !errors.Is(err, stdsql.ErrNoRows):
		return nil, false, err
	}
	prev, err := tx.Operation.Query().Where(operation.OrganizationID(org), operation.Key(key)).Only(ctx)
	if err != nil {
		return nil, false, err
	}
	if prev.Operation != op || prev.PayloadHash != hash {
		return nil, false, conflict(key)
	}
	ids, err = splitIDs(prev.Result)
	return ids, true, err
}

func joinIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

func splitIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		id, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}
