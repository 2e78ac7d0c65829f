package ledger

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
)

// Violation is one broken ledger invariant.
type Violation struct {
	Invariant string
	Detail    string
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// Verify checks the invariants of ARCHITECTURE.md over the whole database
// and returns what is broken (nothing, on a healthy ledger):
//   - every grant: remaining = amount + the sum of its other entries,
//     0 <= remaining <= amount, and exactly one opening entry of +amount
//     (GRANT, or ROLLOVER_IN for credits rolled into a new period);
//   - every entry's pool is its grant's pool, and its organisation the pool's;
//   - every usage event: its BURN, OVERAGE and BORROW entries sum to -credits; a
//     DENIED event has no entries and charged nothing;
//   - every BURN and OVERAGE entry names its usage event;
//   - every hold: its HOLD entries sum to -amount, and its RELEASE entries
//     to +amount once settled or released (none while open);
//   - one idempotency key per organisation has at most one usage event;
//   - no orphans: every entry's usage event, every hold's events and every
//     grant's pool exist, and a grant's organisation is its pool's;
//   - traceability: an event that charged credits names the register
//     version that priced it, and its BURN entries name the same version.
//
// Sums are done in Go with exact decimals, so both dialects check the same.
func (s *Service) Verify(ctx context.Context) ([]Violation, error) {
	var out []Violation
	add := func(inv, f string, args ...any) { out = append(out, Violation{inv, fmt.Sprintf(f, args...)}) }

	pools, err := s.db.Client.Pool.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	poolOrg := map[int]int{}
	for _, p := range pools {
		poolOrg[p.ID] = p.OrganizationID
	}
	grants, err := s.db.Client.Grant.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.db.Client.LedgerEntry.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	events, err := s.db.Client.UsageEvent.Query().All(ctx)
	if err != nil {
		return nil, err
	}

	type sums struct {
		moves  decimal.Decimal
		grants int
		grant  decimal.Decimal
	}
	byGrant := map[int]*sums{}
	grantPool := map[int]int{}
	for _, g := range grants {
		byGrant[g.ID] = &sums{}
		grantPool[g.ID] = g.PoolID
		if org, ok := poolOrg[g.PoolID]; !ok {
			add("orphan grant", "grant %d names missing pool %d", g.ID, g.PoolID)
		} else if org != g.OrganizationID {
			add("grant organisation", "grant %d is in pool %d of organisation %d, recorded as %d", g.ID, g.PoolID, org, g.OrganizationID)
		}
	}
	eventByID := make(map[int]*ent.UsageEvent, len(events))
	keys := make(map[orgKey]int, len(events))
	for _, ev := range events {
		eventByID[ev.ID] = ev
		k := orgKey{ev.OrganizationID, ev.IdempotencyKey}
		if first, ok := keys[k]; ok {
			add("idempotency", "events %d and %d of organisation %d share the key %q", first, ev.ID, ev.OrganizationID, ev.IdempotencyKey)
		} else {
			keys[k] = ev.ID
		}
	}
	burns := map[int]decimal.Decimal{}
	burnCount := map[int]int{}
	for _, e := range entries {
		if poolOrg[e.PoolID] != e.OrganizationID {
			add("entry organisation", "entry %d is on pool %d of organisation %d, recorded as %d", e.ID, e.PoolID, poolOrg[e.PoolID], e.OrganizationID)
		}
		if e.GrantID != nil {
			sm, ok := byGrant[*e.GrantID]
			if !ok {
				add("orphan entry", "entry %d names missing grant %d", e.ID, *e.GrantID)
				continue
			}
			if grantPool[*e.GrantID] != e.PoolID {
				add("entry pool", "entry %d is on pool %d but its grant %d is in pool %d", e.ID, e.PoolID, *e.GrantID, grantPool[*e.GrantID])
			}
			if e.Kind == engine.EntryGrant || e.Kind == engine.EntryRolloverIn {
				sm.grants++
				sm.grant = e.Amount
			} else {
				sm.moves = sm.moves.Add(e.Amount)
			}
		}
		if e.UsageEventID != nil && eventByID[*e.UsageEventID] == nil {
			add("orphan entry", "%s entry %d names missing usage event %d", e.Kind, e.ID, *e.UsageEventID)
		}
		if e.Kind == engine.EntryBurn && e.UsageEventID != nil {
			if ev := eventByID[*e.UsageEventID]; ev != nil && !sameVersion(ev.RegisterID, ev.RegisterVersion, e.RegisterID, e.RegisterVersion) {
				add("entry versions", "BURN entry %d names register %s, its event %d %s", e.ID, version(e.RegisterID, e.RegisterVersion), ev.ID, version(ev.RegisterID, ev.RegisterVersion))
			}
		}
		if e.Kind == engine.EntryBurn || e.Kind == engine.EntryOverage || e.Kind == engine.EntryBorrow {
			if e.UsageEventID == nil {
				add("burn cause", "%s entry %d names no usage event", e.Kind, e.ID)
				continue
			}
			burns[*e.UsageEventID] = burns[*e.UsageEventID].Add(e.Amount)
			burnCount[*e.UsageEventID]++
		}
	}
	for _, g := range grants {
		sm := byGrant[g.ID]
		if want := g.Amount.Add(sm.moves); !want.Equal(g.Remaining) {
			add("grant balance", "grant %d: remaining %s, but amount %s + entries %s = %s", g.ID, g.Remaining, g.Amount, sm.moves, want)
		}
		if g.Remaining.IsNegative() || g.Remaining.GreaterThan(g.Amount) {
			add("grant bounds", "grant %d: remaining %s outside [0, %s]", g.ID, g.Remaining, g.Amount)
		}
		if sm.grants != 1 || !sm.grant.Equal(g.Amount) {
			add("grant entry", "grant %d: %d opening entries (want one of %s)", g.ID, sm.grants, g.Amount)
		}
	}
	// Holds: HOLD entries (on the STARTED event) sum to -amount; a settled or
	// released hold has RELEASE entries of +amount; an open one has none.
	holds, err := s.db.Client.Hold.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	held, releasedBy := map[int]decimal.Decimal{}, map[int]decimal.Decimal{}
	for _, e := range entries {
		if e.UsageEventID == nil {
			continue
		}
		switch e.Kind {
		case engine.EntryHold:
			held[*e.UsageEventID] = held[*e.UsageEventID].Add(e.Amount)
		case engine.EntryRelease:
			releasedBy[*e.UsageEventID] = releasedBy[*e.UsageEventID].Add(e.Amount)
		}
	}
	for _, h := range holds {
		if eventByID[h.StartedEventID] == nil {
			add("orphan hold", "hold %d of run %q names missing STARTED event %d", h.ID, h.RunID, h.StartedEventID)
		}
		if h.SettledEventID != nil && eventByID[*h.SettledEventID] == nil {
			add("orphan hold", "hold %d of run %q names missing settling event %d", h.ID, h.RunID, *h.SettledEventID)
		}
		if !held[h.StartedEventID].Neg().Equal(h.Amount) {
			add("hold", "hold %d of run %q holds %s but its HOLD entries sum to %s", h.ID, h.RunID, h.Amount, held[h.StartedEventID].Neg())
		}
		var rel decimal.Decimal
		switch {
		case h.Status == holdReleased:
			rel = releasedBy[h.StartedEventID]
		case h.Status == holdSettled && h.SettledEventID != nil:
			rel = releasedBy[*h.SettledEventID]
		}
		want := h.Amount
		if h.Status == holdOpen {
			want = decimal.Zero
		}
		if !rel.Equal(want) {
			add("release", "hold %d (%s) released %s, want %s", h.ID, h.Status, rel, want)
		}
	}
	for _, ev := range events {
		got := burns[ev.ID].Neg()
		if ev.Decision == engine.DecisionDenied && (burnCount[ev.ID] > 0 || !ev.Credits.IsZero()) {
			add("denied burn", "event %d was denied but charged %s in %d entries", ev.ID, got, burnCount[ev.ID])
		}
		if !got.Equal(ev.Credits) {
			add("burn total", "event %d charged %s but its BURN entries sum to %s", ev.ID, ev.Credits, got)
		}
		if ev.Credits.IsPositive() && (ev.RegisterID == nil || ev.RegisterVersion == nil) {
			add("event versions", "event %d charged %s but names no register version", ev.ID, ev.Credits)
		}
		if poolOrg[ev.PoolID] != ev.OrganizationID {
			add("event organisation", "event %d is on pool %d of another organisation", ev.ID, ev.PoolID)
		}
	}
	return out, nil
}

type orgKey struct {
	org int
	key string
}

func sameVersion(id1, v1, id2, v2 *int) bool {
	eq := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eq(id1, id2) && eq(v1, v2)
}

func version(id, v *int) string {
	if id == nil || v == nil {
		return "none"
	}
	return fmt.Sprintf("%d v%d", *id, *v)
}
