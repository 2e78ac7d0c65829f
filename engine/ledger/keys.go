package ledger

import (
	"context"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/apikey"
)

// KeyInput creates an API key.
type KeyInput struct {
	Name           string
	Role           credit.Role
	OrganizationID *int
	// Secret is the key to store; "" generates one. Only bootstrap
	// (CREDITD_ADMIN_KEY) passes its own.
	Secret string
}

// Forbidden is the error of a caller whose role may not do what it asked.
func Forbidden(format string, args ...any) *credit.Error {
	return credit.Errorf(auth.CodeForbidden, format, args...)
}

// CreateKey creates an API key and returns it with its secret, the only time
// the secret is ever shown. ORG_ADMIN and SERVICE keys may be scoped to an
// organisation (ORG_ADMIN must be); the other roles are vendor-wide. An
// ORG_ADMIN caller creates ORG_ADMIN or SERVICE keys of its own organisation.
func (s *Service) CreateKey(ctx context.Context, in KeyInput) (*ent.APIKey, string, error) {
	if in.Name == "" || len(in.Name) > 100 {
		return nil, "", credit.Invalid("name", "must be 1 to 100 characters")
	}
	caller := auth.From(ctx)
	if caller.Scoped() {
		if in.OrganizationID == nil {
			in.OrganizationID = caller.OrgID
		}
		if *in.OrganizationID != *caller.OrgID {
			return nil, "", credit.NotFound("organization", *in.OrganizationID)
		}
		if in.Role != credit.RoleOrgAdmin && in.Role != credit.RoleService {
			return nil, "", Forbidden("an organisation's admin may create ORG_ADMIN and SERVICE keys only")
		}
	}
	switch {
	case in.Role == credit.RoleOrgAdmin && in.OrganizationID == nil:
		return nil, "", credit.Invalid("organizationId", "an ORG_ADMIN key belongs to one organisation")
	case in.OrganizationID != nil && in.Role != credit.RoleOrgAdmin && in.Role != credit.RoleService:
		return nil, "", credit.Invalid("organizationId", "a %s key is vendor-wide; only ORG_ADMIN and SERVICE keys are scoped", in.Role)
	}
	secret := in.Secret
	if secret == "" {
		var err error
		if secret, err = auth.NewSecret(); err != nil {
			return nil, "", err
		}
	} else if !auth.WellFormed(secret) {
		return nil, "", credit.Invalid("secret", "a key is %d to 200 printable characters without spaces", auth.MinSecretLen)
	}
	var out *ent.APIKey
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		if in.OrganizationID != nil {
			if _, err := tx.Organization.Get(ctx, *in.OrganizationID); err != nil {
				return mapEntError(err, "organization", *in.OrganizationID)
			}
		}
		c := tx.APIKey.Create().SetName(in.Name).SetRole(in.Role).SetNillableOrganizationID(in.OrganizationID).
			SetSecretHash(auth.Hash(secret)).SetHint(auth.Hint(secret)).SetCreatedAt(s.Now())
		if caller != nil {
			c.SetCreatedBy(caller.KeyID)
		}
		var err error
		if out, err = c.Save(ctx); err != nil {
			if isUniqueViolation(err) {
				return credit.Errorf(credit.CodeConflict, "a key with this secret exists")
			}
			return err
		}
		return s.audit(ctx, tx, "createApiKey", "ApiKey", out.ID, out.OrganizationID, nil, out)
	})
	if err != nil {
		return nil, "", err
	}
	return out, secret, nil
}

// EnsureKey makes sure an OPERATOR key with secret exists (bootstrap from
// CREDITD_ADMIN_KEY); it reports whether it created one. A revoked key with
// that secret stays revoked: the call fails.
func (s *Service) EnsureKey(ctx context.Context, name, secret string) (bool, error) {
	k, err := s.db.Client.APIKey.Query().Where(apikey.SecretHash(auth.Hash(secret))).Only(ctx)
	switch {
	case err == nil && k.RevokedAt != nil:
		return false, credit.Errorf(credit.CodeConflict, "the admin key was revoked; set a new CREDITD_ADMIN_KEY")
	case err == nil:
		return false, nil
	case !ent.IsNotFound(err):
		return false, err
	}
	_, _, err = s.CreateKey(ctx, KeyInput{Name: name, Role: credit.RoleOperator, Secret: secret})
	return err == nil, err
}

// RevokeKey revokes a key at once: the next request with it is refused.
// Revoking twice keeps the first revocation time.
func (s *Service) RevokeKey(ctx context.Context, id int) (*ent.APIKey, error) {
	caller := auth.From(ctx)
	var out *ent.APIKey
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		k, err := tx.APIKey.Get(ctx, id)
		if err != nil || (caller.Scoped() && (k.OrganizationID == nil || *k.OrganizationID != *caller.OrgID)) {
			return credit.NotFound("api key", id)
		}
		if k.RevokedAt != nil {
			out = k
			return nil
		}
		if out, err = tx.APIKey.UpdateOne(k).SetRevokedAt(s.Now()).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "revokeApiKey", "ApiKey", k.ID, k.OrganizationID, k, out)
	})
	return out, err
}

// Keys lists API keys, oldest first: a scoped caller's own organisation's.
func (s *Service) Keys(ctx context.Context) ([]*ent.APIKey, error) {
	q := s.db.Client.APIKey.Query()
	if p := auth.From(ctx); p.Scoped() {
		q.Where(apikey.OrganizationID(*p.OrgID))
	}
	return q.Order(ent.Asc(apikey.FieldID)).All(ctx)
}

// Authenticate returns the principal of a secret: KEY_UNKNOWN when no key
// has it, KEY_REVOKED when its key was revoked. It records when the key was
// last used, at most once a minute per key.
func (s *Service) Authenticate(ctx context.Context, secret string) (*auth.Principal, error) {
	k, err := s.db.Client.APIKey.Query().Where(apikey.SecretHash(auth.Hash(secret))).Only(ctx)
	if ent.IsNotFound(err) || (err == nil && !auth.Matches(secret, k.SecretHash)) {
		return nil, credit.Errorf(auth.CodeKeyUnknown, "the API key is not known")
	}
	if err != nil {
		return nil, err
	}
	if k.RevokedAt != nil {
		return nil, credit.Errorf(auth.CodeKeyRevoked, "the API key was revoked")
	}
	now := time.Now().UTC()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
		// Best effort: a failed touch must not fail the request.
		_ = s.db.Client.APIKey.UpdateOneID(k.ID).SetLastUsedAt(now).Exec(ctx)
	}
	return &auth.Principal{KeyID: k.ID, Name: k.Name, Role: k.Role, OrgID: k.OrganizationID}, nil
}
