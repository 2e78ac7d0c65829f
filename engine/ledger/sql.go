package ledger

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
)

// Hand-written SQL is kept to the hot path of a usage event, where a row lock
// or one round trip for many rows matters. It is written with $n
// placeholders; sqlf rewrites them for SQLite (which reads ?n the same way).

func (s *Service) sqlf(q string) string {
	if s.postgres() {
		return q
	}
	return strings.ReplaceAll(q, "$", "?")
}

// positive is the dialect's "remaining > 0": decimals are text in SQLite and
// always written in canonical form, so zero is exactly '0'.
func (s *Service) positive(col string) string {
	if s.postgres() {
		return col + " > 0"
	}
	return col + " <> '0'"
}

func (s *Service) forUpdate(of string) string {
	if s.postgres() {
		return " FOR UPDATE OF " + of
	}
	return "" // SQLite: the single connection already serialises writers
}

// inList returns "$k,$k+1,..." for n values starting at placeholder k.
func inList(k, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(k + i))
	}
	return b.String()
}

func intArgs(ids []int) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

type poolInfo struct {
	ID           int
	OrgID        int
	Segment      string
	RegisterName string
}

// lockPools locks the pools named in explicit and the default pool (the
// first ACCOUNT pool) of each organisation in orgs, in one statement: row
// locks in id order (PostgreSQL), so two transactions never wait on each
// other in a cycle. It returns the pools with what the engine needs of their
// organisation, and the default pool of each organisation that has one.
func (s *Service) lockPools(ctx context.Context, tx *ent.Tx, explicit, orgs []int) (map[int]poolInfo, map[int]int, error) {
	var conds []string
	if len(explicit) > 0 {
		conds = append(conds, "p.id IN ("+inList(1, len(explicit))+")")
	}
	if len(orgs) > 0 {
		conds = append(conds, "p.id IN (SELECT MIN(id) FROM pools WHERE kind = 'ACCOUNT' AND organization_id IN ("+
			inList(len(explicit)+1, len(orgs))+") GROUP BY organization_id)")
	}
	q := s.sqlf(`SELECT p.id, p.organization_id, p.kind, COALESCE(o.segment, ''), o.register_name
FROM pools p JOIN organizations o ON o.id = p.organization_id
WHERE ` + strings.Join(conds, " OR ") + ` ORDER BY p.id` + s.forUpdate("p"))
	rows, err := tx.QueryContext(ctx, q, append(intArgs(explicit), intArgs(orgs)...)...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := make(map[int]poolInfo, len(explicit)+len(orgs))
	defaults := make(map[int]int, len(orgs))
	for rows.Next() {
		var (
			p    poolInfo
			kind engine.PoolKind
		)
		if err := rows.Scan(&p.ID, &p.OrgID, &kind, &p.Segment, &p.RegisterName); err != nil {
			return nil, nil, err
		}
		out[p.ID] = p
		// Rows come in id order: the first ACCOUNT pool of a wanted
		// organisation is its default.
		if _, ok := defaults[p.OrgID]; !ok && kind == engine.PoolAccount && contains(orgs, p.OrgID) {
			defaults[p.OrgID] = p.ID
		}
	}
	return out, defaults, rows.Err()
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// loadGrants returns the non-empty grants of the pools, by pool. Callers hold
// the pools' locks, so the remaining amounts cannot change under them.
func (s *Service) loadGrants(ctx context.Context, tx *ent.Tx, pools []int) (map[int][]engine.Grant, error) {
	q := s.sqlf(`SELECT id, pool_id, credit_type, priority, amount, remaining, unit_price, effective_at, expires_at, created_at
FROM grants WHERE pool_id IN (` + inList(1, len(pools)) + `) AND ` + s.positive("remaining") + ` ORDER BY id`)
	rows, err := tx.QueryContext(ctx, q, intArgs(pools)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int][]engine.Grant, len(pools))
	for rows.Next() {
		var (
			g    engine.Grant
			pool int
			exp  sql.NullTime
		)
		if err := rows.Scan(&g.ID, &pool, &g.CreditType, &g.Priority, &g.Amount, &g.Remaining, &g.UnitPrice, &g.EffectiveAt, &exp, &g.CreatedAt); err != nil {
			return nil, err
		}
		if exp.Valid {
			t := exp.Time.UTC()
			g.ExpiresAt = &t
		}
		g.EffectiveAt, g.CreatedAt = g.EffectiveAt.UTC(), g.CreatedAt.UTC()
		out[pool] = append(out[pool], g)
	}
	return out, rows.Err()
}

// utc normalises a time for storage: UTC, microsecond precision.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
