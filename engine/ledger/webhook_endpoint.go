package ledger

import (
	"context"
	"slices"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/predicate"
	"github.com/creditd/creditd/ent/webhookendpoint"
	"github.com/creditd/creditd/webhook"
)

// Webhook event types an endpoint may subscribe to.
const (
	EventAlertFired        = "alert.fired"
	EventAlertAcknowledged = "alert.acknowledged"
)

// EventTypes lists the webhook event types.
var EventTypes = []string{EventAlertFired, EventAlertAcknowledged}

// maxEndpoints bounds the endpoints of one organisation (and vendor-wide).
const maxEndpoints = 20

// WebhookInput creates a webhook endpoint: an organisation's, or with
// OrganizationID nil the vendor's, receiving every organisation's events
// (OPERATOR only).
type WebhookInput struct {
	OrganizationID *int
	URL            string
	EventTypes     []string
	Description    string
}

// Validate checks the input; allowPrivate lets URLs name loopback and
// private addresses (--webhooks-allow-private).
func (in WebhookInput) Validate(allowPrivate bool) error {
	if err := webhook.CheckURL(in.URL, allowPrivate); err != nil {
		return err
	}
	if len(in.EventTypes) == 0 || len(in.EventTypes) > len(EventTypes) {
		return credit.Invalid("eventTypes", "name 1 to %d of %v", len(EventTypes), EventTypes)
	}
	for i, t := range in.EventTypes {
		if !slices.Contains(EventTypes, t) || slices.Contains(in.EventTypes[:i], t) {
			return credit.Invalid("eventTypes", "%q is not one of %v, or is named twice", t, EventTypes)
		}
	}
	if len(in.Description) > 500 {
		return credit.Invalid("description", "must be at most 500 characters")
	}
	return engine.CheckText("description", in.Description)
}

// CreateWebhookEndpoint creates an endpoint and returns it with its signing
// secret, which is shown this once.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, in WebhookInput) (*ent.WebhookEndpoint, string, error) {
	if err := in.Validate(s.webhooks.allowPrivate); err != nil {
		return nil, "", err
	}
	if err := s.canManageEndpoints(ctx, s.db.Client, in.OrganizationID); err != nil {
		return nil, "", err
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, "", err
	}
	var out *ent.WebhookEndpoint
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.WebhookEndpoint.Query().Where(endpointsOf(in.OrganizationID)).Count(ctx)
		if err != nil {
			return err
		}
		if n >= maxEndpoints {
			return credit.Errorf(credit.CodeConflict, "at most %d webhook endpoints per organisation", maxEndpoints)
		}
		out, err = tx.WebhookEndpoint.Create().SetNillableOrganizationID(in.OrganizationID).SetURL(in.URL).
			SetEventTypes(in.EventTypes).SetDescription(in.Description).SetSecret(secret).SetCreatedAt(s.Now()).Save(ctx)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, "createWebhookEndpoint", "WebhookEndpoint", out.ID, in.OrganizationID, nil, out)
	})
	return out, secret, err
}

// endpointsOf selects an organisation's endpoints, or the vendor-wide ones.
func endpointsOf(org *int) predicate.WebhookEndpoint {
	if org == nil {
		return webhookendpoint.OrganizationIDIsNil()
	}
	return webhookendpoint.OrganizationID(*org)
}

// canManageEndpoints: an organisation's endpoints are its admins' and the
// operators'; vendor-wide ones the operators' only.
func (s *Service) canManageEndpoints(ctx context.Context, c *ent.Client, org *int) error {
	p := auth.From(ctx)
	if org == nil {
		if p != nil && p.Role != credit.RoleOperator {
			return credit.Errorf(auth.CodeForbidden, "only an OPERATOR manages vendor-wide webhook endpoints; name an organizationId")
		}
		return nil
	}
	if !p.Sees(*org) {
		return credit.NotFound("organization", *org)
	}
	if _, err := c.Organization.Get(ctx, *org); ent.IsNotFound(err) {
		return credit.NotFound("organization", *org)
	} else if err != nil {
		return err
	}
	return nil
}

// WebhookEndpoints lists the endpoints the caller may see: a scoped
// caller its organisation's; others the organisation's named, or all.
func (s *Service) WebhookEndpoints(ctx context.Context, org *int) ([]*ent.WebhookEndpoint, error) {
	q := s.db.Client.WebhookEndpoint.Query()
	if p := auth.From(ctx); p.Scoped() {
		if org != nil && *org != *p.OrgID {
			return nil, credit.NotFound("organization", *org)
		}
		org = p.OrgID
	}
	if org != nil {
		q.Where(webhookendpoint.OrganizationID(*org))
	}
	return q.Order(ent.Asc(webhookendpoint.FieldID)).All(ctx)
}

// endpoint reads an endpoint the caller may manage.
func (s *Service) endpoint(ctx context.Context, c *ent.Client, id int) (*ent.WebhookEndpoint, error) {
	ep, err := c.WebhookEndpoint.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, credit.NotFound("webhook endpoint", id)
	} else if err != nil {
		return nil, err
	}
	if ep.OrganizationID == nil && auth.From(ctx).Scoped() || ep.OrganizationID != nil && !auth.From(ctx).Sees(*ep.OrganizationID) {
		return nil, credit.NotFound("webhook endpoint", id)
	}
	return ep, s.canManageEndpoints(ctx, c, ep.OrganizationID)
}

// SetWebhookEndpointEnabled disables or re-enables an endpoint; enabling
// clears its failures. Deliveries of a disabled endpoint are not sent
// (they fail, and can be replayed once it is enabled again).
func (s *Service) SetWebhookEndpointEnabled(ctx context.Context, id int, enabled bool) (*ent.WebhookEndpoint, error) {
	var out *ent.WebhookEndpoint
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		ep, err := s.endpoint(ctx, tx.Client(), id)
		if err != nil {
			return err
		}
		u := tx.WebhookEndpoint.UpdateOne(ep).SetEnabled(enabled)
		if enabled {
			u.SetFailures(0).ClearDisabledReason()
		} else {
			u.SetDisabledReason("disabled by " + actorName(ctx))
		}
		if out, err = u.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "setWebhookEndpointEnabled", "WebhookEndpoint", id, ep.OrganizationID, ep, out)
	})
	return out, err
}

// RotateWebhookSecret gives an endpoint a new signing secret, returned this
// once; deliveries carry signatures with both the new and the old secret
// for overlap (default 24h, at most 7 days), so receivers switch without
// downtime.
func (s *Service) RotateWebhookSecret(ctx context.Context, id int, overlap *time.Duration) (*ent.WebhookEndpoint, string, error) {
	keep := 24 * time.Hour
	if overlap != nil {
		keep = *overlap
	}
	if keep < 0 || keep > 7*24*time.Hour {
		return nil, "", credit.Invalid("overlapHours", "must be between 0 and 168")
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, "", err
	}
	var out *ent.WebhookEndpoint
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		ep, err := s.endpoint(ctx, tx.Client(), id)
		if err != nil {
			return err
		}
		if out, err = tx.WebhookEndpoint.UpdateOne(ep).SetSecret(secret).SetPreviousSecret(ep.Secret).
			SetPreviousExpiresAt(s.Now().Add(keep)).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "rotateWebhookSecret", "WebhookEndpoint", id, ep.OrganizationID, nil, map[string]any{"overlap": keep.String()})
	})
	return out, secret, err
}

func actorName(ctx context.Context) string {
	if p := auth.From(ctx); p != nil {
		return p.Name
	}
	return "system"
}
