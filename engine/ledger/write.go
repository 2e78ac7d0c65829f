package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
)

// newEvent is a decided usage event to write.
type newEvent struct {
	item  item
	org   int
	d     *engine.UsageDecision
	v     engine.Versions
	index int // position in the batch
}

// The write step of a usage batch: the events, one BURN entry per draw, and
// the touched grants' new remaining amounts, all in the caller's
// transaction. It returns the events in the order of evs. Two
// implementations write the same rows: writePostgres in one statement (one
// round trip whatever the batch size: the hot path), writeEnt through ent's
// bulk builders (SQLite). Both dialects run the whole test suite.

// writeEnt writes through ent.
func (s *Service) writeEnt(ctx context.Context, tx *usageTx, evs []newEvent, grants []engine.Grant, now time.Time) ([]*ent.UsageEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	creates := make([]*ent.UsageEventCreate, len(evs))
	for n, e := range evs {
		creates[n] = s.eventCreate(tx, e, now)
	}
	out, err := tx.UsageEvent.CreateBulk(creates...).Save(ctx)
	if err != nil {
		return nil, err
	}
	var (
		entries []*ent.LedgerEntryCreate
		charges []*ent.ChargeCreate
	)
	for n, e := range evs {
		for _, r := range entryRows(e.d) {
			entries = append(entries, s.burnEntry(tx, out[n], r.kind, r.grant, r.amount, e.v, now))
		}
		if e.d.Overage.IsPositive() {
			t := e.v.Terms
			charges = append(charges, tx.Charge.Create().SetOrganizationID(e.org).SetKind("OVERAGE").
				SetCredits(e.d.Overage).SetAmount(e.d.OverageAmount).SetCurrency(t.Currency).
				SetSubscriptionID(t.SubscriptionID).SetUsageEventID(out[n].ID).SetMemo(out[n].Action).SetCreatedAt(now))
		}
	}
	if len(entries) > 0 {
		if err := tx.LedgerEntry.CreateBulk(entries...).Exec(ctx); err != nil {
			return nil, err
		}
	}
	if len(charges) > 0 {
		if err := tx.Charge.CreateBulk(charges...).Exec(ctx); err != nil {
			return nil, err
		}
	}
	for _, g := range grants {
		if _, err := tx.ExecContext(ctx, s.sqlf(`UPDATE grants SET remaining = $1 WHERE id = $2`), g.Remaining.String(), g.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) eventCreate(tx *usageTx, e newEvent, now time.Time) *ent.UsageEventCreate {
	it, d, v := e.item, e.d, e.v
	c := tx.UsageEvent.Create().
		SetOrganizationID(e.org).SetPoolID(it.pool).
		SetIdempotencyKey(it.in.IdempotencyKey).SetPayloadHash(it.hash).
		SetAction(it.ev.Action).SetStatus(it.ev.Status).
		SetQuantity(it.ev.Quantity).SetCompletion(it.ev.Completion).SetAttempt(it.ev.Attempt).
		SetRunID(it.ev.RunID).SetOccurredAt(utc(it.ev.OccurredAt)).
		SetCredits(d.Credits).SetOverage(d.Overage).SetDecision(d.Decision).
		SetReason(d.Reason).SetReasonCode(string(d.ReasonCode)).
		SetCreatedAt(now)
	if it.ev.Properties != nil {
		c.SetProperties(it.ev.Properties)
	}
	if r := v.Register; r != nil {
		c.SetRegisterID(r.ID).SetRegisterVersion(r.Version)
	}
	if r := v.Burn; r != nil {
		c.SetBurnPolicyID(r.ID).SetBurnPolicyVersion(r.Version)
	}
	if r := v.DrawOrder; r != nil && len(d.Draws) > 0 {
		c.SetDrawPolicyID(r.ID).SetDrawPolicyVersion(r.Version)
	}
	return c
}

// entryRow is one ledger entry of a usage event: what it took (recorded
// negative) from a grant, or from no grant. Both writers write these rows,
// so an entry kind is added here once.
type entryRow struct {
	kind   credit.EntryKind
	grant  *int
	amount decimal.Decimal
}

// entryRows are a decision's entries, in order: BURN per draw, EXPIRE per
// held credit on an expired grant, then BORROW, OVERAGE and UNCOVERED.
func entryRows(d *engine.UsageDecision) []entryRow {
	out := make([]entryRow, 0, len(d.Draws)+len(d.Expired)+1)
	for _, dr := range d.Draws {
		out = append(out, entryRow{credit.EntryBurn, &dr.GrantID, dr.Amount})
	}
	for _, dr := range d.Expired {
		out = append(out, entryRow{credit.EntryExpire, &dr.GrantID, dr.Amount})
	}
	for _, r := range []entryRow{{credit.EntryBorrow, nil, d.Borrowed}, {credit.EntryOverage, nil, d.Overage}, {credit.EntryUncovered, nil, d.Uncovered}} {
		if r.amount.IsPositive() {
			out = append(out, r)
		}
	}
	return out
}

// burnEntry is a BURN entry on a grant, or an OVERAGE entry (no grant):
// amount is what the event took, recorded negative.
func (s *Service) burnEntry(tx *usageTx, ev *ent.UsageEvent, kind credit.EntryKind, grantID *int, amount decimal.Decimal, v engine.Versions, now time.Time) *ent.LedgerEntryCreate {
	pool := ev.PoolID
	if grantID != nil {
		pool = tx.poolOf(*grantID, pool)
	}
	c := tx.LedgerEntry.Create().
		SetOrganizationID(ev.OrganizationID).SetPoolID(pool).SetNillableGrantID(grantID).
		SetKind(kind).SetAmount(amount.Neg()).SetUsageEventID(ev.ID).
		SetMemo(ev.Action).SetCreatedAt(now)
	if r := v.Register; r != nil {
		c.SetRegisterID(r.ID).SetRegisterVersion(r.Version)
	}
	if r := v.Burn; r != nil {
		c.SetBurnPolicyID(r.ID).SetBurnPolicyVersion(r.Version)
	}
	if r := v.DrawOrder; r != nil && grantID != nil {
		c.SetDrawPolicyID(r.ID).SetDrawPolicyVersion(r.Version)
	}
	return c
}

// writePostgresSQL inserts the events, their entries (joined back to the
// new events by organisation and key, in draw order) and updates the grants,
// from arrays: one statement whose text does not depend on the batch size.
// A reused key still fails with a unique violation (23505), which sends the
// batch to its replay path.
const writePostgresSQL = `WITH ev AS (
  INSERT INTO usage_events (created_at, organization_id, pool_id, idempotency_key, payload_hash, action, status,
    quantity, completion, attempt, run_id, properties, occurred_at, credits, overage, decision, reason, reason_code,
    register_id, register_version, burn_policy_id, burn_policy_version, draw_policy_id, draw_policy_version)
  SELECT $1::timestamptz, e.* FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::numeric[], $9::numeric[], $10::bigint[], $11::text[], $12::jsonb[], $13::timestamptz[], $14::numeric[], $15::numeric[],
    $16::text[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[]) AS e
  RETURNING id, organization_id, pool_id, idempotency_key, action, register_id, register_version,
    burn_policy_id, burn_policy_version, draw_policy_id, draw_policy_version
), le AS (
  INSERT INTO ledger_entries (created_at, organization_id, pool_id, grant_id, kind, amount, usage_event_id,
    register_id, register_version, burn_policy_id, burn_policy_version, draw_policy_id, draw_policy_version, memo)
  SELECT $1::timestamptz, ev.organization_id, d.pool, d.grant_id, d.kind, -d.amount, ev.id,
    ev.register_id, ev.register_version, ev.burn_policy_id, ev.burn_policy_version,
    CASE WHEN d.grant_id IS NULL THEN NULL ELSE ev.draw_policy_id END,
    CASE WHEN d.grant_id IS NULL THEN NULL ELSE ev.draw_policy_version END, ev.action
  FROM unnest($25::bigint[], $26::text[], $27::bigint[], $28::numeric[], $31::text[], $38::bigint[]) WITH ORDINALITY AS d(org, key, grant_id, amount, kind, pool, n)
  JOIN ev ON ev.organization_id = d.org AND ev.idempotency_key = d.key
  ORDER BY d.n
), g AS (
  UPDATE grants SET remaining = v.remaining
  FROM unnest($29::bigint[], $30::numeric[]) AS v(id, remaining) WHERE grants.id = v.id
), ch AS (
  INSERT INTO charges (created_at, organization_id, kind, credits, amount, currency, subscription_id, usage_event_id, memo)
  SELECT $1::timestamptz, ev.organization_id, 'OVERAGE', c.credits, c.amount, c.currency, c.sub, ev.id, ev.action
  FROM unnest($32::bigint[], $33::text[], $34::numeric[], $35::numeric[], $36::text[], $37::bigint[]) AS c(org, key, credits, amount, currency, sub)
  JOIN ev ON ev.organization_id = c.org AND ev.idempotency_key = c.key
)
SELECT id, organization_id, idempotency_key FROM ev`

// entryArrays are the entry and charge columns of writePostgresSQL, one
// element a row: the entries of entryRows, the OVERAGE charges.
type entryArrays struct {
	org, pool                          []int64
	grant                              []sql.NullInt64
	key, amount, kind                  []string
	cOrg, cSub                         []int64
	cKey, cCredits, cAmount, cCurrency []string
}

// add appends an event's entries and its overage charge.
func (a *entryArrays) add(tx *usageTx, e newEvent) {
	it, d := e.item, e.d
	for _, r := range entryRows(d) {
		grant, pool := sql.NullInt64{}, int64(it.pool)
		if r.grant != nil {
			grant, pool = nullInt(*r.grant), int64(tx.poolOf(*r.grant, it.pool))
		}
		a.org, a.key, a.kind = append(a.org, int64(e.org)), append(a.key, it.in.IdempotencyKey), append(a.kind, string(r.kind))
		a.amount, a.grant, a.pool = append(a.amount, r.amount.String()), append(a.grant, grant), append(a.pool, pool)
	}
	if d.Overage.IsPositive() {
		t := e.v.Terms
		a.cOrg, a.cKey, a.cSub = append(a.cOrg, int64(e.org)), append(a.cKey, it.in.IdempotencyKey), append(a.cSub, int64(t.SubscriptionID))
		a.cCredits, a.cAmount, a.cCurrency = append(a.cCredits, d.Overage.String()), append(a.cAmount, d.OverageAmount.String()), append(a.cCurrency, t.Currency)
	}
}

// writePostgres writes in one round trip.
func (s *Service) writePostgres(ctx context.Context, tx *usageTx, evs []newEvent, grants []engine.Grant, now time.Time) ([]*ent.UsageEvent, error) {
	if len(evs) == 0 && len(grants) == 0 {
		return nil, nil
	}
	n := len(evs)
	var (
		org, pool, attempt                        = make([]int64, n), make([]int64, n), make([]int64, n)
		key, hash, action, status, run            = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		qty, completion, credits, overage         = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		props                                     = make([]sql.NullString, n)
		occurred                                  = make([]string, n)
		decision, reason, reasonCode              = make([]string, n), make([]string, n), make([]string, n)
		regID, regV, burnID, burnV, drawID, drawV = make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n)
		ea                                        entryArrays
	)
	out := make([]*ent.UsageEvent, n)
	for i, e := range evs {
		it, d, v := e.item, e.d, e.v
		org[i], pool[i], attempt[i] = int64(e.org), int64(it.pool), int64(it.ev.Attempt)
		key[i], hash[i], action[i], status[i], run[i] = it.in.IdempotencyKey, it.hash, it.ev.Action, string(it.ev.Status), it.ev.RunID
		qty[i], completion[i], credits[i], overage[i] = it.ev.Quantity.String(), it.ev.Completion.String(), d.Credits.String(), d.Overage.String()
		occurred[i] = utc(it.ev.OccurredAt).Format(time.RFC3339Nano)
		decision[i], reason[i], reasonCode[i] = string(d.Decision), d.Reason, string(d.ReasonCode)
		if it.ev.Properties != nil {
			b, err := json.Marshal(it.ev.Properties)
			if err != nil {
				return nil, err
			}
			props[i] = sql.NullString{String: string(b), Valid: true}
		}
		ue := &ent.UsageEvent{
			OrganizationID: e.org, PoolID: it.pool, IdempotencyKey: it.in.IdempotencyKey, PayloadHash: it.hash,
			Action: it.ev.Action, Status: it.ev.Status, Quantity: it.ev.Quantity, Completion: it.ev.Completion,
			Attempt: it.ev.Attempt, RunID: it.ev.RunID, Properties: it.ev.Properties, OccurredAt: utc(it.ev.OccurredAt),
			Credits: d.Credits, Overage: d.Overage, Decision: d.Decision, Reason: d.Reason, ReasonCode: string(d.ReasonCode),
			CreatedAt: now,
		}
		if r := v.Register; r != nil {
			regID[i], regV[i] = nullInt(r.ID), nullInt(r.Version)
			ue.RegisterID, ue.RegisterVersion = &r.ID, &r.Version
		}
		if r := v.Burn; r != nil {
			burnID[i], burnV[i] = nullInt(r.ID), nullInt(r.Version)
			ue.BurnPolicyID, ue.BurnPolicyVersion = &r.ID, &r.Version
		}
		if r := v.DrawOrder; r != nil && len(d.Draws) > 0 {
			drawID[i], drawV[i] = nullInt(r.ID), nullInt(r.Version)
			ue.DrawPolicyID, ue.DrawPolicyVersion = &r.ID, &r.Version
		}
		out[i] = ue
		ea.add(tx, e)
	}
	gID, gRemaining := make([]int64, len(grants)), make([]string, len(grants))
	for i, g := range grants {
		gID[i], gRemaining[i] = int64(g.ID), g.Remaining.String()
	}
	rows, err := tx.query(ctx, "writeUsage", writePostgresSQL, now,
		pq.Array(org), pq.Array(pool), pq.Array(key), pq.Array(hash), pq.Array(action), pq.Array(status),
		pq.Array(qty), pq.Array(completion), pq.Array(attempt), pq.Array(run), pq.Array(props), pq.Array(occurred),
		pq.Array(credits), pq.Array(overage), pq.Array(decision), pq.Array(reason), pq.Array(reasonCode),
		pq.Array(regID), pq.Array(regV), pq.Array(burnID), pq.Array(burnV), pq.Array(drawID), pq.Array(drawV),
		pq.Array(ea.org), pq.Array(ea.key), pq.Array(ea.grant), pq.Array(ea.amount),
		pq.Array(gID), pq.Array(gRemaining), pq.Array(ea.kind),
		pq.Array(ea.cOrg), pq.Array(ea.cKey), pq.Array(ea.cCredits), pq.Array(ea.cAmount), pq.Array(ea.cCurrency), pq.Array(ea.cSub),
		pq.Array(ea.pool))
	if err != nil {
		return nil, err
	}
	return out, eventIDs(rows, out)
}

// eventIDs sets each written event's id from the rows the insert returned
// (id, organisation, idempotency key), and closes them.
func eventIDs(rows *sql.Rows, out []*ent.UsageEvent) error {
	defer rows.Close()
	ids := make(map[eventKey]int, len(out))
	for rows.Next() {
		var (
			id, o int
			k     string
		)
		if err := rows.Scan(&id, &o, &k); err != nil {
			return err
		}
		ids[eventKey{o, k}] = id
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range out {
		e.ID = ids[eventKey{org: e.OrganizationID, key: e.IdempotencyKey}]
	}
	return nil
}

func nullInt(v int) sql.NullInt64 { return sql.NullInt64{Int64: int64(v), Valid: true} }
