package ledger

import (
	"context"

	"github.com/creditd/creditd/ent"
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

// Organization returns an organisation by id.
func (s *Service) Organization(ctx context.Context, id int) (*ent.Organization, error) {
	return none(s.db.Client.Organization.Get(ctx, id))
}

// Pool returns a pool by id.
func (s *Service) Pool(ctx context.Context, id int) (*ent.Pool, error) {
	return none(s.db.Client.Pool.Get(ctx, id))
}

// Grant returns a grant by id.
func (s *Service) Grant(ctx context.Context, id int) (*ent.Grant, error) {
	return none(s.db.Client.Grant.Get(ctx, id))
}

// UsageEvent returns a usage event by id.
func (s *Service) UsageEvent(ctx context.Context, id int) (*ent.UsageEvent, error) {
	return none(s.db.Client.UsageEvent.Get(ctx, id))
}

// Weights lists a register version's weights by action.
func (s *Service) Weights(ctx context.Context, registerID int) ([]*ent.Weight, error) {
	return s.db.Client.Weight.Query().Where(weight.RegisterID(registerID)).Order(ent.Asc(weight.FieldAction)).All(ctx)
}
