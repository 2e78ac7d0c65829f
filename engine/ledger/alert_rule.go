package ledger

import (
	"context"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/alert"
	"github.com/creditd/creditd/ent/alertrule"
)

// maxAlertRules bounds the alert rules of one organisation.
const maxAlertRules = 100

// AlertRuleInput creates an alert rule on a pool, or on every pool of an
// organisation (exactly one of PoolID and OrganizationID).
type AlertRuleInput struct {
	PoolID, OrganizationID *int
	Kind                   credit.AlertKind
	Threshold              *decimal.Decimal
	Share                  bool
	Name                   string
}

// CreateAlertRule validates and stores an alert rule, audited.
func (s *Service) CreateAlertRule(ctx context.Context, in AlertRuleInput) (*ent.AlertRule, error) {
	r := engine.AlertRule{Kind: in.Kind, Share: in.Share}
	if in.Threshold != nil {
		r.Threshold = decimal.NewNullDecimal(*in.Threshold)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if (in.PoolID == nil) == (in.OrganizationID == nil) {
		return nil, credit.Invalid("poolId", "name exactly one of poolId and organizationId")
	}
	if len(in.Name) > 200 {
		return nil, credit.Invalid("name", "must be at most 200 characters")
	}
	var out *ent.AlertRule
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		org, err := s.ruleOrganization(ctx, tx, in)
		if err != nil {
			return err
		}
		if err := rulesLeft(ctx, tx, org); err != nil {
			return err
		}
		c := tx.AlertRule.Create().SetOrganizationID(org).SetNillablePoolID(in.PoolID).SetKind(in.Kind).SetShare(in.Share).
			SetName(in.Name).SetCreatedAt(s.Now())
		if in.Threshold != nil {
			c.SetThreshold(decimal.NewNullDecimal(*in.Threshold))
		}
		if out, err = c.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "createAlertRule", "AlertRule", out.ID, &org, nil, out)
	})
	return out, err
}

// rulesLeft refuses one more enabled rule for an organisation at the limit.
func rulesLeft(ctx context.Context, tx *ent.Tx, org int) error {
	n, err := tx.AlertRule.Query().Where(alertrule.OrganizationID(org), alertrule.Enabled(true)).Count(ctx)
	if err == nil && n >= maxAlertRules {
		err = credit.Errorf(credit.CodeConflict, "organization %d has %d enabled alert rules, the most it may have; disable one first", org, n)
	}
	return err
}

// ruleOrganization is the organisation an alert rule input names, checked
// against the caller.
func (s *Service) ruleOrganization(ctx context.Context, tx *ent.Tx, in AlertRuleInput) (int, error) {
	if in.PoolID != nil {
		p, err := tx.Pool.Get(ctx, *in.PoolID)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(p.OrganizationID) {
			return 0, credit.NotFound("pool", *in.PoolID)
		}
		if err != nil {
			return 0, err
		}
		return p.OrganizationID, nil
	}
	o, err := tx.Organization.Get(ctx, *in.OrganizationID)
	if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(o.ID) {
		return 0, credit.NotFound("organization", *in.OrganizationID)
	}
	if err != nil {
		return 0, err
	}
	return o.ID, nil
}

// AlertRules lists the alert rules the caller sees, of one organisation
// when org is set (a scoped caller: its own).
func (s *Service) AlertRules(ctx context.Context, org *int) ([]*ent.AlertRule, error) {
	if p := auth.From(ctx); p.Scoped() {
		if org != nil && *org != *p.OrgID {
			return nil, credit.NotFound("organization", *org)
		}
		org = p.OrgID
	}
	q := s.db.Client.AlertRule.Query()
	if org != nil {
		q.Where(alertrule.OrganizationID(*org))
	}
	return q.Order(ent.Asc(alertrule.FieldID)).All(ctx)
}

// SetAlertRuleEnabled turns a rule off (its alerts stay) or on again.
func (s *Service) SetAlertRuleEnabled(ctx context.Context, id int, enabled bool) (*ent.AlertRule, error) {
	var out *ent.AlertRule
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		r, err := tx.AlertRule.Get(ctx, id)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(r.OrganizationID) {
			return credit.NotFound("alert rule", id)
		} else if err != nil {
			return err
		}
		if enabled && !r.Enabled {
			if err := rulesLeft(ctx, tx, r.OrganizationID); err != nil {
				return err
			}
		}
		if out, err = tx.AlertRule.UpdateOne(r).SetEnabled(enabled).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "setAlertRuleEnabled", "AlertRule", id, &r.OrganizationID, r, out)
	})
	return out, err
}

// AcknowledgeAlert records that an admin saw an alert: once (a second
// acknowledgement returns it unchanged), audited, and sent to the
// alert.acknowledged webhooks.
func (s *Service) AcknowledgeAlert(ctx context.Context, id int) (*ent.Alert, error) {
	var out *ent.Alert
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		a, err := tx.Alert.Get(ctx, id)
		p := auth.From(ctx)
		if ent.IsNotFound(err) || err == nil && (a.OrganizationID == nil && p.Scoped() || a.OrganizationID != nil && !p.Sees(*a.OrganizationID)) {
			return credit.NotFound("alert", id)
		} else if err != nil {
			return err
		}
		if out = a; a.AcknowledgedAt != nil {
			return nil
		}
		n, err := tx.Alert.Update().Where(alert.ID(id), alert.AcknowledgedAtIsNil()).SetAcknowledgedAt(s.Now()).SetAcknowledgedBy(actorName(ctx)).Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		if out, err = tx.Alert.Get(ctx, id); err != nil {
			return err
		}
		eventID, data := alertEvent(out)
		if err := s.enqueue(ctx, tx.Client(), out.OrganizationID, EventAlertAcknowledged, eventID+"_ack", data, s.Now()); err != nil {
			return err
		}
		return s.audit(ctx, tx, "acknowledgeAlert", "Alert", id, a.OrganizationID, a, out)
	})
	return out, err
}
