package loader_test

import (
	"context"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/graph/loader"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// TestLoadersKeepTenantsApart: a scoped caller reads another
// organisation's rows as missing, even in a batch with its own.
func TestLoadersKeepTenantsApart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		svc := ledger.New(db)
		type tenant struct {
			org   *ent.Organization
			pool  *ent.Pool
			grant *ent.Grant
		}
		var ts [2]tenant
		for i, name := range []string{"A", "B"} {
			o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			p, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "account"})
			if err != nil {
				t.Fatal(err)
			}
			g, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditPromotional, Amount: decimal.NewFromInt(5)})
			if err != nil {
				t.Fatal(err)
			}
			ts[i] = tenant{o, p, g}
		}
		a, b := ts[0], ts[1]

		asA := auth.With(ctx, &auth.Principal{Role: credit.RoleOrgAdmin, OrgID: &a.org.ID})
		l := loader.New(db.Client)
		l.Pools.Want(a.pool.ID, b.pool.ID)
		l.Grants.Want(a.grant.ID, b.grant.ID)
		if p, err := l.Pools.Load(asA, a.pool.ID); err != nil || p == nil || p.ID != a.pool.ID {
			t.Errorf("A loads its pool: %v, %v", p, err)
		}
		if p, err := l.Pools.Load(asA, b.pool.ID); err != nil || p != nil {
			t.Errorf("A loads B's pool: %v, %v, want nil, nil", p, err)
		}
		if g, err := l.Grants.Load(asA, b.grant.ID); err != nil || g != nil {
			t.Errorf("A loads B's grant: %v, %v, want nil, nil", g, err)
		}
		if o, err := l.Organizations.Load(asA, b.org.ID); err != nil || o != nil {
			t.Errorf("A loads B's organisation: %v, %v, want nil, nil", o, err)
		}
		if o, err := l.Organizations.Load(asA, a.org.ID); err != nil || o == nil {
			t.Errorf("A loads its organisation: %v, %v", o, err)
		}

		// An unscoped caller (OPERATOR) sees both.
		op := loader.New(db.Client)
		asOp := auth.With(ctx, &auth.Principal{Role: credit.RoleOperator})
		for _, tn := range ts {
			if g, err := op.Grants.Load(asOp, tn.grant.ID); err != nil || g == nil {
				t.Errorf("OPERATOR loads grant %d: %v, %v", tn.grant.ID, g, err)
			}
			if p, err := op.Pools.Load(asOp, tn.pool.ID); err != nil || p == nil {
				t.Errorf("OPERATOR loads pool %d: %v, %v", tn.pool.ID, p, err)
			}
		}
	})
}
