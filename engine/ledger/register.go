package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/weight"
	"github.com/creditd/creditd/ent/weightregister"
	"github.com/creditd/creditd/rules"
)

// MaxWeights is the largest register version accepted.
const MaxWeights = 10000

// WeightInput is one action's weight in a register draft.
type WeightInput struct {
	Action         string
	Credits        decimal.Decimal
	Expression     string
	ValuePerAction *decimal.Decimal
	CostPerAction  *decimal.Decimal
	// DegradedAllowed: the action still runs when a DEGRADED plan is out of credits.
	DegradedAllowed bool
}

func validateWeights(ws []WeightInput) error {
	if len(ws) == 0 {
		return credit.Invalid("weights", "a register needs at least one weight")
	}
	if len(ws) > MaxWeights {
		return credit.Invalid("weights", "a register holds at most %d weights", MaxWeights)
	}
	seen := map[string]bool{}
	for i, w := range ws {
		f := fmt.Sprintf("weights[%d]", i)
		switch {
		case w.Action == "" || len(w.Action) > engine.MaxActionLen:
			return credit.Invalid(f+".action", "must be 1 to %d characters", engine.MaxActionLen)
		case seen[w.Action]:
			return credit.Invalid(f+".action", "action %q appears twice", w.Action)
		case w.Credits.IsNegative():
			return credit.Invalid(f+".credits", "must not be negative, got %s", w.Credits)
		case w.ValuePerAction != nil && w.ValuePerAction.IsNegative():
			return credit.Invalid(f+".valuePerAction", "must not be negative")
		case w.CostPerAction != nil && w.CostPerAction.IsNegative():
			return credit.Invalid(f+".costPerAction", "must not be negative")
		}
		seen[w.Action] = true
		if w.Expression != "" {
			if _, err := rules.Compile(rules.KindWeight, w.Expression); err != nil {
				return compileError(f+".expression", err)
			}
		}
	}
	return nil
}

// compileError maps a rules compile error to RULE_COMPILE with positions.
func compileError(field string, err error) error {
	e := &credit.Error{Code: credit.CodeRuleCompile, Field: field, Message: err.Error(), Cause: err}
	if ce, ok := err.(*rules.CompileError); ok {
		pos := make([]map[string]any, len(ce.Positions))
		for i, p := range ce.Positions {
			pos[i] = map[string]any{"message": p.Message, "line": p.Line, "column": p.Column}
		}
		e.Details = map[string]any{"errors": pos}
	}
	return e
}

// SaveRegisterDraft stores weights as the draft of register name: it
// replaces the latest version if that is still a draft, else starts the next
// version. Weight expressions must compile.
func (s *Service) SaveRegisterDraft(ctx context.Context, name string, ws []WeightInput) (*ent.WeightRegister, error) {
	if err := validName("name", name); err != nil {
		return nil, err
	}
	if err := validateWeights(ws); err != nil {
		return nil, err
	}
	var out *ent.WeightRegister
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		latest, err := tx.WeightRegister.Query().Where(weightregister.Name(name)).
			Order(ent.Desc(weightregister.FieldVersion)).First(ctx)
		switch {
		case ent.IsNotFound(err):
			latest = nil
		case err != nil:
			return err
		}
		if latest != nil && latest.Status == credit.VersionDraft {
			if _, err := tx.Weight.Delete().Where(weight.RegisterID(latest.ID)).Exec(ctx); err != nil {
				return err
			}
			out = latest
		} else {
			version := 1
			if latest != nil {
				version = latest.Version + 1
			}
			out, err = tx.WeightRegister.Create().SetName(name).SetVersion(version).
				SetStatus(credit.VersionDraft).SetCreatedAt(s.Now()).Save(ctx)
			if err != nil {
				if isUniqueViolation(err) {
					return credit.Errorf(credit.CodeConflict, "register %q was changed concurrently; try again", name)
				}
				return err
			}
		}
		creates := make([]*ent.WeightCreate, len(ws))
		for i, w := range ws {
			c := tx.Weight.Create().SetRegisterID(out.ID).SetAction(w.Action).SetCredits(w.Credits).SetExpression(w.Expression).
				SetDegradedAllowed(w.DegradedAllowed)
			if w.ValuePerAction != nil {
				c.SetValuePerAction(decimal.NewNullDecimal(*w.ValuePerAction))
			}
			if w.CostPerAction != nil {
				c.SetCostPerAction(decimal.NewNullDecimal(*w.CostPerAction))
			}
			creates[i] = c
		}
		if err := tx.Weight.CreateBulk(creates...).Exec(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "saveWeightRegisterDraft", "WeightRegister", out.ID, nil, nil,
			map[string]any{"register": out, "weights": ws})
	})
	return out, err
}

// checkEffectiveFrom defaults effectiveFrom to now and refuses the past:
// publishing never rewrites decisions already made.
func checkEffectiveFrom(now time.Time, at *time.Time) (time.Time, error) {
	if at == nil {
		return now, nil
	}
	t := utc(*at)
	if t.Before(now.Add(-time.Minute)) {
		return time.Time{}, credit.Invalid("effectiveFrom", "is in the past (%s); a published version only takes effect from now on", t.Format(time.RFC3339))
	}
	return t, nil
}

// PublishRegister publishes a draft version; from effectiveFrom (default
// now) it prices the usage of the organisations that use this register.
func (s *Service) PublishRegister(ctx context.Context, name string, version int, effectiveFrom *time.Time) (*ent.WeightRegister, error) {
	return s.PublishRegisterWith(ctx, name, version, PublishOptions{EffectiveFrom: effectiveFrom})
}

// PublishRegisterWith is PublishRegister with the notice period checked
// (see checkNotice) and, for an OPERATOR, overridden.
func (s *Service) PublishRegisterWith(ctx context.Context, name string, version int, opts PublishOptions) (*ent.WeightRegister, error) {
	now := s.Now()
	at, err := checkEffectiveFrom(now, opts.EffectiveFrom)
	if err != nil {
		return nil, err
	}
	var out *ent.WeightRegister
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		r, err := tx.WeightRegister.Query().Where(weightregister.Name(name), weightregister.Version(version)).Only(ctx)
		if err != nil {
			return mapEntError(err, "weight register", fmt.Sprintf("%s version %d", name, version))
		}
		if r.Status != credit.VersionDraft {
			return credit.Errorf(credit.CodeConflict, "register %q version %d is already %s", name, version, r.Status)
		}
		forced, err := s.registerNotice(ctx, tx, r, at, now, opts.Force)
		if err != nil {
			return err
		}
		n, err := tx.WeightRegister.Update().
			Where(weightregister.ID(r.ID), weightregister.StatusEQ(credit.VersionDraft)).
			SetStatus(credit.VersionPublished).SetEffectiveFrom(at).SetPublishedAt(now).Save(ctx)
		if err != nil {
			return err
		}
		if n != 1 {
			return credit.Errorf(credit.CodeConflict, "register %q version %d was published concurrently", name, version)
		}
		if out, err = tx.WeightRegister.Get(ctx, r.ID); err != nil {
			return err
		}
		if err := bumpCatalog(ctx, tx); err != nil {
			return err
		}
		action := "publishWeightRegister"
		if forced {
			action += " (forced inside the notice period)"
		}
		return s.audit(ctx, tx, action, "WeightRegister", r.ID, nil, r, out)
	})
	if err == nil {
		s.catalog.invalidate()
	}
	return out, err
}

// Register returns a version of register name: the given version, or (nil)
// the version in effect now, or when none is published yet the latest draft.
func (s *Service) Register(ctx context.Context, name string, version *int) (*ent.WeightRegister, error) {
	q := s.db.Client.WeightRegister.Query().Where(weightregister.Name(name))
	if version != nil {
		r, err := q.Where(weightregister.Version(*version)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, nil
		}
		return r, err
	}
	now := s.Now()
	r, err := s.db.Client.WeightRegister.Query().Where(weightregister.Name(name),
		weightregister.StatusEQ(credit.VersionPublished), weightregister.EffectiveFromLTE(now)).
		Order(ent.Desc(weightregister.FieldEffectiveFrom), ent.Desc(weightregister.FieldVersion)).First(ctx)
	if ent.IsNotFound(err) {
		r, err = q.Order(ent.Desc(weightregister.FieldVersion)).First(ctx)
	}
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return r, err
}

// RegisterStatus is the status a client sees: a published version that a
// later published version has replaced (in effect now) shows RETIRED.
func (s *Service) RegisterStatus(ctx context.Context, r *ent.WeightRegister) (credit.VersionStatus, error) {
	if r.Status != credit.VersionPublished {
		return r.Status, nil
	}
	now := s.Now()
	n, err := s.db.Client.WeightRegister.Query().Where(weightregister.Name(r.Name),
		weightregister.StatusEQ(credit.VersionPublished), weightregister.EffectiveFromLTE(now),
		weightregister.Or(
			weightregister.EffectiveFromGT(*r.EffectiveFrom),
			weightregister.And(weightregister.EffectiveFrom(*r.EffectiveFrom), weightregister.VersionGT(r.Version)),
		)).Count(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return credit.VersionRetired, nil
	}
	return credit.VersionPublished, nil
}
