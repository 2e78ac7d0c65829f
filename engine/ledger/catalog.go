package ledger

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/policyversion"
	"github.com/creditd/creditd/ent/weightregister"
	"github.com/creditd/creditd/rules"
)

// catalog keeps an in-memory snapshot of every published register and policy
// version with their compiled programs, so the hot path never compiles and
// does not query the catalog tables per event. Published versions never
// change, so a snapshot is only ever missing versions published after it
// was loaded: it is reloaded after ttl, and at once by a publish through
// this process. Usage never decides on a stale one: every publish bumps the
// catalog generation (one row) in its transaction, a usage transaction
// reads it with its pool locks (lockPools) and, when its snapshot is of an
// older generation (a publish through another server), loads a new one
// inside the transaction, so that it holds every version published before
// the batch took its locks.
type catalog struct {
	client *ent.Client
	progs  *rules.Cache
	ttl    time.Duration

	loaded atomic.Pointer[loadedSnapshot] // nil: must load before use
	gen    atomic.Uint64                  // bumped by invalidate
	mu     sync.Mutex                     // one reload at a time
}

type loadedSnapshot struct {
	snap *snapshot
	at   time.Time
}

type snapshot struct {
	registers  map[string][]*engine.Register        // by name, ascending effective order
	policies   map[credit.PolicyKind][]*engine.Rule // by kind, ascending effective order
	broken     map[int]error                        // policy id -> why its stored rule no longer compiles
	generation int64                                // the catalog generation read before the versions: the snapshot holds at least its publishes
}

func newCatalog(c *ent.Client, progs *rules.Cache) *catalog {
	return &catalog{client: c, progs: progs, ttl: 2 * time.Second}
}

// invalidate drops the snapshot: the next caller loads a new one and no
// caller is served the old one (a publish through this process is seen at
// once).
func (c *catalog) invalidate() {
	c.gen.Add(1)
	c.loaded.Store(nil)
}

// current returns a fresh enough snapshot without blocking readers: when the
// snapshot is older than ttl, one caller reloads it while the others keep
// using the previous one. It must be called outside any transaction (SQLite
// has a single connection).
func (c *catalog) current(ctx context.Context) (*snapshot, error) {
	l := c.loaded.Load()
	if l != nil && time.Since(l.at) < c.ttl {
		return l.snap, nil
	}
	if l != nil && !c.mu.TryLock() {
		return l.snap, nil // another caller is reloading
	}
	if l == nil {
		c.mu.Lock()
		if l = c.loaded.Load(); l != nil { // loaded while we waited
			c.mu.Unlock()
			return l.snap, nil
		}
	}
	defer c.mu.Unlock()
	gen := c.gen.Load()
	snap, err := c.load(ctx, c.client)
	if err != nil {
		return nil, err
	}
	at := time.Now()
	if c.gen.Load() != gen {
		at = time.Time{} // invalidated while loading: usable now, reloaded next time
	}
	c.loaded.Store(&loadedSnapshot{snap: snap, at: at})
	return snap, nil
}

// refresh loads a snapshot through client (a transaction's: SQLite has one
// connection) and keeps it as the current one.
func (c *catalog) refresh(ctx context.Context, client *ent.Client) (*snapshot, error) {
	snap, err := c.load(ctx, client)
	if err != nil {
		return nil, err
	}
	c.loaded.Store(&loadedSnapshot{snap: snap, at: time.Now()})
	return snap, nil
}

// fresh returns snap, or a snapshot loaded through client (a transaction's)
// when a publish since made snap stale: what a mutation other than usage
// calls inside its transaction before it decides.
func (c *catalog) fresh(ctx context.Context, client *ent.Client, snap *snapshot) (*snapshot, error) {
	gen, err := catalogGeneration(ctx, client)
	if err != nil || snap.generation >= gen {
		return snap, err
	}
	return c.refresh(ctx, client)
}

func (c *catalog) load(ctx context.Context, client *ent.Client) (*snapshot, error) {
	gen, err := catalogGeneration(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("load the catalog generation: %w", err)
	}
	regs, err := client.WeightRegister.Query().
		Where(weightregister.StatusEQ(credit.VersionPublished)).
		WithWeights().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load registers: %w", err)
	}
	snap := &snapshot{
		generation: gen,
		registers:  map[string][]*engine.Register{},
		policies:   map[credit.PolicyKind][]*engine.Rule{},
		broken:     map[int]error{},
	}
	for _, r := range regs {
		er, err := c.register(r)
		if err != nil {
			return nil, err
		}
		snap.registers[r.Name] = append(snap.registers[r.Name], er)
	}
	for _, list := range snap.registers {
		sort.Slice(list, func(i, j int) bool {
			return effectiveBefore(list[i].EffectiveFrom, list[i].Version, list[j].EffectiveFrom, list[j].Version)
		})
	}
	pols, err := client.PolicyVersion.Query().
		Where(policyversion.StatusEQ(credit.VersionPublished)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	sort.Slice(pols, func(i, j int) bool {
		a, b := pols[i], pols[j]
		if !a.EffectiveFrom.Equal(*b.EffectiveFrom) {
			return a.EffectiveFrom.Before(*b.EffectiveFrom)
		}
		if !a.PublishedAt.Equal(*b.PublishedAt) {
			return a.PublishedAt.Before(*b.PublishedAt)
		}
		return a.ID < b.ID
	})
	for _, p := range pols {
		kind, ok := ruleKinds[p.Kind]
		if !ok {
			continue // kinds the engine does not evaluate yet
		}
		prog, err := c.progs.Get(fmt.Sprintf("policy:%d", p.ID), kind, p.Expression)
		if err != nil {
			snap.broken[p.ID] = err
		}
		snap.policies[p.Kind] = append(snap.policies[p.Kind], &engine.Rule{
			ID: p.ID, Name: p.Name, Kind: p.Kind, Version: p.Version, EffectiveFrom: *p.EffectiveFrom, Program: prog,
		})
	}
	return snap, nil
}

func effectiveBefore(a time.Time, av int, b time.Time, bv int) bool {
	if !a.Equal(b) {
		return a.Before(b)
	}
	return av < bv
}

func (c *catalog) register(r *ent.WeightRegister) (*engine.Register, error) {
	er := &engine.Register{ID: r.ID, Name: r.Name, Version: r.Version, EffectiveFrom: *r.EffectiveFrom, Weights: map[string]*engine.Weight{}}
	for _, w := range r.Edges.Weights {
		ew := &engine.Weight{Action: w.Action, Credits: w.Credits, ValuePerAction: w.ValuePerAction, CostPerAction: w.CostPerAction,
			DegradedAllowed: w.DegradedAllowed}
		if w.Expression != "" {
			prog, err := c.progs.Get(fmt.Sprintf("weight:%d", w.ID), rules.KindWeight, w.Expression)
			if err != nil {
				return nil, fmt.Errorf("register %s version %d, action %s: %w", r.Name, r.Version, w.Action, err)
			}
			ew.Expression = prog
		}
		er.Weights[w.Action] = ew
	}
	return er, nil
}

// ruleKinds maps the policy kinds the engine evaluates to their CEL kinds.
var ruleKinds = map[credit.PolicyKind]rules.Kind{
	credit.PolicyBurn:      rules.KindBurn,
	credit.PolicyDrawOrder: rules.KindDrawOrder,
	credit.PolicyOverage:   rules.KindOverage,
	credit.PolicyIncentive: rules.KindIncentive,
	credit.PolicyTransfer:  rules.KindTransfer,
	credit.PolicyRefund:    rules.KindRefund,
	credit.PolicyAlert:     rules.KindAlert,
}

// versions picks the register (by name) and the policies in effect at t: for
// each, the published version with the latest effectiveFrom not after t.
//
// A pinned register version (a subscription that signed for one) is used
// whatever is in effect.
func (s *snapshot) versions(registerName string, pinned *int, t time.Time) (engine.Versions, error) {
	var v engine.Versions
	for _, r := range s.registers[registerName] {
		if pinned != nil {
			if r.Version == *pinned {
				v.Register = r
			}
			continue
		}
		if r.EffectiveFrom.After(t) {
			break
		}
		v.Register = r
	}
	pick := func(kind credit.PolicyKind) (*engine.Rule, error) { return s.policyAt(kind, t) }
	var err error
	if v.Burn, err = pick(credit.PolicyBurn); err != nil {
		return v, err
	}
	if v.DrawOrder, err = pick(credit.PolicyDrawOrder); err != nil {
		return v, err
	}
	if v.Overage, err = pick(credit.PolicyOverage); err != nil {
		return v, err
	}
	if v.Incentive, err = pick(credit.PolicyIncentive); err != nil {
		return v, err
	}
	if v.Transfer, err = pick(credit.PolicyTransfer); err != nil {
		return v, err
	}
	if v.Refund, err = pick(credit.PolicyRefund); err != nil {
		return v, err
	}
	return v, nil
}

// policyAt is the policy of kind in effect at t (nil: the built-in
// default); RULE_RUNTIME when its stored rule no longer compiles.
func (s *snapshot) policyAt(kind credit.PolicyKind, t time.Time) (*engine.Rule, error) {
	var in *engine.Rule
	for _, r := range s.policies[kind] {
		if r.EffectiveFrom.After(t) {
			break
		}
		in = r
	}
	if in != nil {
		if err := s.broken[in.ID]; err != nil {
			return nil, &credit.Error{Code: credit.CodeRuleRuntime, Cause: err,
				Message: fmt.Sprintf("%s policy %q version %d no longer compiles: %v", kind, in.Name, in.Version, err)}
		}
	}
	return in, nil
}

// catalogGeneration reads the catalog's generation (0 before any publish).
func catalogGeneration(ctx context.Context, client *ent.Client) (int64, error) {
	rows, err := client.QueryContext(ctx, "SELECT COALESCE(MAX(generation), 0) FROM catalog_generations")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var gen int64
	if rows.Next() {
		if err := rows.Scan(&gen); err != nil {
			return 0, err
		}
	}
	return gen, rows.Err()
}

// bumpCatalog moves the catalog to its next generation, in the publishing
// transaction.
func bumpCatalog(ctx context.Context, tx *ent.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO catalog_generations (id, generation) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET generation = catalog_generations.generation + 1`)
	return err
}
