package ledger

import (
	"context"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/organization"
	"github.com/creditd/creditd/ent/weight"
)

// The reads below return (nil, nil) when the row does not exist, so the API
// can answer null for nullable fields; callers that need the row map nil to
// NOT_FOUND themselves.

func none[T any](v *T, err error) (*T, error) {
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return v, err
}

// Tenant isolation: every read of an organisation's object checks that the
// caller sees that organisation (auth.Principal.Sees) and answers "not
// found" otherwise, so a scoped key can neither read another organisation's
// objects nor learn which ids exist, and nested fields cannot climb out.

// visible returns v when the caller sees organisation org, else nil.
func visible[T any](ctx context.Context, v *T, org func(*T) int, err error) (*T, error) {
	v, err = none(v, err)
	if v == nil || err != nil || !auth.From(ctx).Sees(org(v)) {
		return nil, err
	}
	return v, nil
}

// Organization returns an organisation by id.
func (s *Service) Organization(ctx context.Context, id int) (*ent.Organization, error) {
	o, err := s.db.Client.Organization.Get(ctx, id)
	return visible(ctx, o, func(o *ent.Organization) int { return o.ID }, err)
}

// Pool returns a pool by id.
func (s *Service) Pool(ctx context.Context, id int) (*ent.Pool, error) {
	p, err := s.db.Client.Pool.Get(ctx, id)
	return visible(ctx, p, func(p *ent.Pool) int { return p.OrganizationID }, err)
}

// Grant returns a grant by id.
func (s *Service) Grant(ctx context.Context, id int) (*ent.Grant, error) {
	g, err := s.db.Client.Grant.Get(ctx, id)
	return visible(ctx, g, func(g *ent.Grant) int { return g.OrganizationID }, err)
}

// UsageEvent returns a usage event by id.
func (s *Service) UsageEvent(ctx context.Context, id int) (*ent.UsageEvent, error) {
	e, err := s.db.Client.UsageEvent.Get(ctx, id)
	return visible(ctx, e, func(e *ent.UsageEvent) int { return e.OrganizationID }, err)
}

// Organizations lists the organisations the caller sees, oldest first.
func (s *Service) Organizations(ctx context.Context) ([]*ent.Organization, error) {
	q := s.db.Client.Organization.Query()
	if p := auth.From(ctx); p.Scoped() {
		q.Where(organization.ID(*p.OrgID))
	}
	return q.Order(ent.Asc(organization.FieldID)).All(ctx)
}

// Weights lists a register version's weights by action.
func (s *Service) Weights(ctx context.Context, registerID int) ([]*ent.Weight, error) {
	return s.db.Client.Weight.Query().Where(weight.RegisterID(registerID)).Order(ent.Asc(weight.FieldAction)).All(ctx)
}
