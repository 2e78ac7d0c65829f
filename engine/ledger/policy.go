package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/policyversion"
	"github.com/creditd/creditd/rules"
)

// PolicyInput is a policy draft.
type PolicyInput struct {
	Name       string
	Kind       credit.PolicyKind
	Expression string
}

// ruleKind returns the CEL kind of a policy kind the engine evaluates, or a
// VALIDATION error for kinds whose issue has not arrived yet.
func ruleKind(k credit.PolicyKind) (rules.Kind, error) {
	rk, ok := ruleKinds[k]
	if !ok {
		return "", credit.Invalid("kind", "policy kind %s is not evaluated by this version of the engine yet", k)
	}
	return rk, nil
}

// Validation is the result of checking a rule without saving it.
type Validation struct {
	OK     bool
	Errors []rules.Position
}

// ValidateRule compiles expression as a rule of kind.
func (s *Service) ValidateRule(kind credit.PolicyKind, expression string) (Validation, error) {
	rk, err := ruleKind(kind)
	if err != nil {
		return Validation{}, err
	}
	pos := rules.Validate(rk, expression)
	return Validation{OK: len(pos) == 0, Errors: pos}, nil
}

// SavePolicyDraft stores a rule as the draft of policy name (replacing the
// latest version if it is a draft, else starting the next version). The rule
// must compile; a policy name keeps its kind.
func (s *Service) SavePolicyDraft(ctx context.Context, in PolicyInput) (*ent.PolicyVersion, error) {
	if err := validName("name", in.Name); err != nil {
		return nil, err
	}
	rk, err := ruleKind(in.Kind)
	if err != nil {
		return nil, err
	}
	if _, err := rules.Compile(rk, in.Expression); err != nil {
		return nil, compileError("expression", err)
	}
	var out *ent.PolicyVersion
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		latest, err := tx.PolicyVersion.Query().Where(policyversion.Name(in.Name)).
			Order(ent.Desc(policyversion.FieldVersion)).First(ctx)
		switch {
		case ent.IsNotFound(err):
			latest = nil
		case err != nil:
			return err
		}
		if latest != nil && latest.Kind != in.Kind {
			return credit.Invalid("kind", "policy %q is a %s policy", in.Name, latest.Kind)
		}
		if latest != nil && latest.Status == credit.VersionDraft {
			if err := tx.PolicyVersion.DeleteOne(latest).Exec(ctx); err != nil {
				return err
			}
		}
		version := 1
		if latest != nil {
			version = latest.Version
			if latest.Status != credit.VersionDraft {
				version++
			}
		}
		out, err = tx.PolicyVersion.Create().SetName(in.Name).SetKind(in.Kind).SetExpression(in.Expression).
			SetVersion(version).SetStatus(credit.VersionDraft).SetCreatedAt(s.Now()).Save(ctx)
		if isUniqueViolation(err) {
			return credit.Errorf(credit.CodeConflict, "policy %q was changed concurrently; try again", in.Name)
		}
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, "savePolicyDraft", "Policy", out.ID, nil, latest, out)
	})
	return out, err
}

// PublishPolicy publishes a draft: from effectiveFrom (default now) it is the
// policy of its kind, until a later published version takes effect.
func (s *Service) PublishPolicy(ctx context.Context, name string, version int, effectiveFrom *time.Time) (*ent.PolicyVersion, error) {
	return s.PublishPolicyWith(ctx, name, version, PublishOptions{EffectiveFrom: effectiveFrom})
}

// PublishPolicyWith is PublishPolicy with the notice period checked (BURN
// and OVERAGE versions replacing one in effect: see checkNotice) and, for
// an OPERATOR, overridden.
func (s *Service) PublishPolicyWith(ctx context.Context, name string, version int, opts PublishOptions) (*ent.PolicyVersion, error) {
	now := s.Now()
	at, err := checkEffectiveFrom(now, opts.EffectiveFrom)
	if err != nil {
		return nil, err
	}
	var out *ent.PolicyVersion
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		p, err := tx.PolicyVersion.Query().Where(policyversion.Name(name), policyversion.Version(version)).Only(ctx)
		if err != nil {
			return mapEntError(err, "policy", fmt.Sprintf("%s version %d", name, version))
		}
		if p.Status != credit.VersionDraft {
			return credit.Errorf(credit.CodeConflict, "policy %q version %d is already %s", name, version, p.Status)
		}
		forced := false
		if change, err := policyReplaces(ctx, tx, p, at); err != nil {
			return err
		} else if change {
			if forced, err = s.checkNotice(ctx, tx, "", fmt.Sprintf("%s policy %q version %d", p.Kind, name, version), at, now, opts.Force); err != nil {
				return err
			}
		}
		n, err := tx.PolicyVersion.Update().
			Where(policyversion.ID(p.ID), policyversion.StatusEQ(credit.VersionDraft)).
			SetStatus(credit.VersionPublished).SetEffectiveFrom(at).SetPublishedAt(now).Save(ctx)
		if err != nil {
			return err
		}
		if n != 1 {
			return credit.Errorf(credit.CodeConflict, "policy %q version %d was published concurrently", name, version)
		}
		if out, err = tx.PolicyVersion.Get(ctx, p.ID); err != nil {
			return err
		}
		if err := bumpCatalog(ctx, tx); err != nil {
			return err
		}
		action := "publishPolicy"
		if forced {
			action += " (forced inside the notice period)"
		}
		return s.audit(ctx, tx, action, "Policy", p.ID, nil, p, out)
	})
	if err == nil {
		s.catalog.invalidate()
	}
	return out, err
}

// Policies lists policy versions, of one kind or all, by name then newest
// version first.
func (s *Service) Policies(ctx context.Context, kind *credit.PolicyKind) ([]*ent.PolicyVersion, error) {
	q := s.db.Client.PolicyVersion.Query()
	if kind != nil {
		q.Where(policyversion.KindEQ(*kind))
	}
	return q.Order(ent.Asc(policyversion.FieldName), ent.Desc(policyversion.FieldVersion)).All(ctx)
}

// PolicyStatus is the status a client sees: a published version replaced by
// a later one of its kind already in effect shows RETIRED.
func (s *Service) PolicyStatus(ctx context.Context, p *ent.PolicyVersion) (credit.VersionStatus, error) {
	if p.Status != credit.VersionPublished {
		return p.Status, nil
	}
	now := s.Now()
	n, err := s.db.Client.PolicyVersion.Query().Where(policyversion.KindEQ(p.Kind),
		policyversion.StatusEQ(credit.VersionPublished), policyversion.EffectiveFromLTE(now),
		policyversion.IDNEQ(p.ID),
		policyversion.Or(
			policyversion.EffectiveFromGT(*p.EffectiveFrom),
			policyversion.And(policyversion.EffectiveFrom(*p.EffectiveFrom), policyversion.PublishedAtGT(*p.PublishedAt)),
		)).Count(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return credit.VersionRetired, nil
	}
	return credit.VersionPublished, nil
}
