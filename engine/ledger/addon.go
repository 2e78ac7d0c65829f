package ledger

import (
	"context"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/addon"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/subscriptionaddon"
)

// Add-ons (decided by engine.AttachAddOn, engine.DetachAddOn and, each
// period, engine.OpenPeriod): a catalog of recurring packs, attached to a
// subscription now (prorated for the period left) and removed now
// (prorated back). The period close grants and bills every add-on attached
// at the period's start.

// AddOnInput creates an add-on.
type AddOnInput struct {
	Name       string
	Credits    decimal.Decimal
	Fee        decimal.Decimal
	Currency   string            // default USD
	CreditType credit.CreditType // default ON_DEMAND
	ExpiryDays *int              // nil: the credits end with the period
}

// addOnTypes are the credit types an add-on may grant: not SUBSCRIPTION
// (the plan's included credits) nor ROLLOVER (made by period closes).
var addOnTypes = []credit.CreditType{credit.CreditOnDemand, credit.CreditPromotional, credit.CreditIncentive, credit.CreditService}

// Validate checks what can be checked without the database.
func (in AddOnInput) Validate() error {
	if err := validName("name", in.Name); err != nil {
		return err
	}
	switch {
	case !in.Credits.IsPositive():
		return credit.Invalid("credits", "must be greater than zero, got %s", in.Credits)
	case in.Fee.IsNegative():
		return credit.Invalid("fee", "must not be negative, got %s", in.Fee)
	case len(in.Currency) > 3:
		return credit.Invalid("currency", "an ISO 4217 code, like USD")
	case in.CreditType != "" && !slices.Contains(addOnTypes, in.CreditType):
		return credit.Invalid("creditType", "an add-on grants ON_DEMAND, PROMOTIONAL, INCENTIVE or SERVICE credits, got %q", in.CreditType)
	case in.ExpiryDays != nil && (*in.ExpiryDays < 1 || *in.ExpiryDays > 3650):
		return credit.Invalid("expiryDays", "must be 1 to 3650")
	}
	return nil
}

// CreateAddOn adds an add-on to the catalog; add-ons never change.
func (s *Service) CreateAddOn(ctx context.Context, in AddOnInput) (*ent.AddOn, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.Currency == "" {
		in.Currency = "USD"
	}
	if in.CreditType == "" {
		in.CreditType = credit.CreditOnDemand
	}
	var out *ent.AddOn
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = tx.AddOn.Create().SetName(in.Name).SetCredits(in.Credits).SetFee(in.Fee).SetCurrency(in.Currency).
			SetCreditType(in.CreditType).SetNillableExpiryDays(in.ExpiryDays).SetCreatedAt(s.Now()).Save(ctx)
		if isUniqueViolation(err) {
			return credit.Errorf(credit.CodeConflict, "an add-on named %q exists", in.Name)
		} else if err != nil {
			return mapEntError(err, "add-on", in.Name)
		}
		return s.audit(ctx, tx, "createAddOn", "AddOn", out.ID, nil, nil, out)
	})
	return out, err
}

// AddOns lists the catalog, oldest first.
func (s *Service) AddOns(ctx context.Context) ([]*ent.AddOn, error) {
	return s.db.Client.AddOn.Query().Order(ent.Asc(addon.FieldID)).All(ctx)
}

// AddOn returns an add-on by id, nil when there is none.
func (s *Service) AddOn(ctx context.Context, id int) (*ent.AddOn, error) {
	return none(s.db.Client.AddOn.Get(ctx, id))
}

// SubscriptionAddOns lists a subscription's add-ons, attached and removed,
// oldest first.
func (s *Service) SubscriptionAddOns(ctx context.Context, sub *ent.Subscription) ([]*ent.SubscriptionAddOn, error) {
	if !auth.From(ctx).Sees(sub.OrganizationID) {
		return nil, nil
	}
	return s.db.Client.SubscriptionAddOn.Query().Where(subscriptionaddon.SubscriptionID(sub.ID)).
		Order(ent.Asc(subscriptionaddon.FieldID)).All(ctx)
}

// AttachAddOn attaches an add-on to a subscription now: credits x the
// period left arrive and fee x the period left is billed; from the next
// period, the add-on in full.
func (s *Service) AttachAddOn(ctx context.Context, subID, addOnID int) (*ent.SubscriptionAddOn, error) {
	if err := s.openDueOf(ctx, subID); err != nil {
		return nil, err
	}
	var out *ent.SubscriptionAddOn
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		sub, start, end, err := s.activeSubscription(ctx, tx, subID)
		if err != nil {
			return err
		}
		a, err := tx.AddOn.Get(ctx, addOnID)
		if err != nil {
			return mapEntError(err, "add-on", addOnID)
		}
		p, err := s.plan(ctx, tx, sub.PlanID)
		if err != nil {
			return err
		}
		if a.Currency != p.Currency {
			return credit.Errorf(credit.CodeCurrencyMismatch, "add-on %q bills in %s and the subscription's plan %q in %s", a.Name, a.Currency, p.Name, p.Currency)
		}
		attached, err := tx.SubscriptionAddOn.Query().Where(subscriptionaddon.SubscriptionID(sub.ID), subscriptionaddon.AddOnID(a.ID),
			subscriptionaddon.RemovedAtIsNil()).Exist(ctx)
		if err != nil {
			return err
		}
		if attached {
			return credit.Errorf(credit.CodeAddOnAttached, "subscription %d has add-on %q already", sub.ID, a.Name)
		}
		if err := s.lockRow(ctx, tx, "pools", sub.PoolID); err != nil {
			return err
		}
		now := s.Now()
		if out, err = tx.SubscriptionAddOn.Create().SetSubscriptionID(sub.ID).SetOrganizationID(sub.OrganizationID).SetAddOnID(a.ID).
			SetAddedAt(now).SetActor(actorName(ctx)).SetCreatedAt(now).Save(ctx); err != nil {
			return err
		}
		d, err := engine.AttachAddOn(engine.AddOnRequest{Org: sub.OrganizationID, Pool: sub.PoolID, SubscriptionID: sub.ID,
			AddOn: addOnTerms(out.ID, a), PeriodStart: start, PeriodEnd: end, Now: now})
		if err != nil {
			return err
		}
		if _, err := s.post(ctx, tx.Client(), d.Posting, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, "attachAddOn", "SubscriptionAddOn", out.ID, &sub.OrganizationID, nil, out)
	})
	return out, err
}

// RemoveAddOn removes an attached add-on now: fee x the period left comes
// back (a negative ADD_ON charge) and credits x the period left are taken
// back from what is unused of the add-on's credits of the period. On a
// subscription that has ended or been cancelled it only stops the add-on.
func (s *Service) RemoveAddOn(ctx context.Context, id int) (*ent.SubscriptionAddOn, error) {
	sa, err := s.db.Client.SubscriptionAddOn.Get(ctx, id)
	if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(sa.OrganizationID) {
		return nil, credit.NotFound("subscription add-on", id)
	} else if err != nil {
		return nil, err
	}
	if err := s.openDueOf(ctx, sa.SubscriptionID); err != nil {
		return nil, err
	}
	var out *ent.SubscriptionAddOn
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		if err := s.lockRow(ctx, tx, "subscriptions", sa.SubscriptionID); err != nil {
			return err
		}
		before, err := tx.SubscriptionAddOn.Get(ctx, id)
		if err != nil {
			return err
		}
		if before.RemovedAt != nil {
			return credit.Errorf(credit.CodeAddOnRemoved, "add-on %d was removed on %s", id, before.RemovedAt.UTC().Format(time.RFC3339))
		}
		now := s.Now()
		if err := s.prorateRemoval(ctx, tx, before, now); err != nil {
			return err
		}
		if out, err = tx.SubscriptionAddOn.UpdateOne(before).SetRemovedAt(now).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "removeAddOn", "SubscriptionAddOn", id, &before.OrganizationID, before, out)
	})
	return out, err
}

// prorateRemoval posts the removal's proration, when the subscription is
// still running.
func (s *Service) prorateRemoval(ctx context.Context, tx *ent.Tx, sa *ent.SubscriptionAddOn, now time.Time) error {
	sub, err := tx.Subscription.Get(ctx, sa.SubscriptionID)
	if err != nil {
		return err
	}
	if sub.CanceledAt != nil || sub.EndsAt != nil && !sub.EndsAt.After(now) {
		return nil
	}
	p, err := s.plan(ctx, tx, sub.PlanID)
	if err != nil {
		return err
	}
	a, err := tx.AddOn.Get(ctx, sa.AddOnID)
	if err != nil {
		return err
	}
	sched := schedule(sub, p)
	start, end := sched.Bounds(sched.Index(now))
	if err := s.lockRow(ctx, tx, "pools", sub.PoolID); err != nil {
		return err
	}
	req := engine.AddOnRequest{Org: sub.OrganizationID, Pool: sub.PoolID, SubscriptionID: sub.ID, AddOn: addOnTerms(sa.ID, a),
		PeriodStart: start, PeriodEnd: end, Now: now}
	chs, err := tx.Charge.Query().Where(charge.AddOnID(sa.ID), charge.AmountGTE(decimal.Zero), charge.PeriodStartGTE(start)).
		Order(ent.Asc(charge.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	for _, ch := range chs {
		if req.Charge == nil {
			id := ch.ID
			req.Charge = &id
		}
		if ch.GrantID != nil {
			g, err := tx.Grant.Get(ctx, *ch.GrantID)
			if err != nil {
				return err
			}
			req.Grants = append(req.Grants, engineGrant(g))
		}
	}
	d, err := engine.DetachAddOn(req)
	if err != nil {
		return err
	}
	_, err = s.post(ctx, tx.Client(), d.Posting, now)
	return err
}

// attachedTo reads the add-ons ever attached to the subscriptions, by
// subscription, oldest first: one query for a period-close chunk.
func (s *Service) attachedTo(ctx context.Context, tx *ent.Tx, subs []int) (map[int][]*ent.SubscriptionAddOn, error) {
	sas, err := tx.SubscriptionAddOn.Query().Where(subscriptionaddon.SubscriptionIDIn(subs...)).
		Order(ent.Asc(subscriptionaddon.FieldID)).All(ctx)
	out := map[int][]*ent.SubscriptionAddOn{}
	for _, sa := range sas {
		out[sa.SubscriptionID] = append(out[sa.SubscriptionID], sa)
	}
	return out, err
}

// addOnsAt is the add-ons of attached that are attached at t.
func (s *Service) addOnsAt(ctx context.Context, tx *ent.Tx, attached []*ent.SubscriptionAddOn, t time.Time) ([]engine.AddOnTerms, error) {
	var out []engine.AddOnTerms
	for _, sa := range attached {
		if sa.AddedAt.After(t) || sa.RemovedAt != nil && !sa.RemovedAt.After(t) {
			continue
		}
		a, err := s.addOn(ctx, tx.Client(), sa.AddOnID)
		if err != nil {
			return nil, err
		}
		out = append(out, addOnTerms(sa.ID, a))
	}
	return out, nil
}

// addOn returns an add-on, cached: add-ons never change.
func (s *Service) addOn(ctx context.Context, c *ent.Client, id int) (*ent.AddOn, error) {
	return cached(&s.addOns, id, func() (*ent.AddOn, error) { return c.AddOn.Get(ctx, id) })
}

func addOnTerms(id int, a *ent.AddOn) engine.AddOnTerms {
	return engine.AddOnTerms{ID: id, Name: a.Name, Credits: a.Credits, Fee: a.Fee, Currency: a.Currency, CreditType: a.CreditType,
		ExpiryDays: a.ExpiryDays}
}
