package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func TestTransferCredits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditOnDemand)
		team, _, _ := f.tree(t)
		admin := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "admin", Role: credit.RoleOrgAdmin, OrgID: &f.org.ID})
		es, err := f.svc.TransferCredits(admin, ledger.TransferInput{FromPoolID: f.pool.ID, ToPoolID: team.ID, Amount: d("30"), Memo: "for the team"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Kind != credit.EntryTransferOut || !es[0].Amount.Equal(d("-30")) || es[0].PoolID != f.pool.ID ||
			es[1].Kind != credit.EntryTransferIn || !es[1].Amount.Equal(d("30")) || es[1].PoolID != team.ID {
			t.Fatalf("entries = %v, want TRANSFER_OUT -30 on the account, TRANSFER_IN 30 on the team", es)
		}
		g, err := db.Client.Grant.Get(ctx, *es[1].GrantID)
		if err != nil || g.CreditType != credit.CreditOnDemand || !g.Remaining.Equal(d("30")) {
			t.Fatalf("moved grant = %v, %v; want 30 ON_DEMAND credits", g, err)
		}
		if got := f.available(t); !got.Equal(d("70")) {
			t.Fatalf("account available %s, want 70", got)
		}

		// Bad input changes nothing.
		other, err := f.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: other.ID, Kind: credit.PoolAccount, Name: "theirs"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			ctx  context.Context
			in   ledger.TransferInput
			code credit.Code
		}{
			{"to the same pool", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: team.ID, Amount: d("1")}, credit.CodeValidation},
			{"nothing", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("0")}, credit.CodeValidation},
			{"negative", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("-5")}, credit.CodeValidation},
			{"more than the pool has", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("31")}, credit.CodeInsufficientCredits},
			{"to another organisation", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: theirs.ID, Amount: d("1")}, credit.CodeTransferForbidden},
			{"to a pool that does not exist", admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: 999999, Amount: d("1")}, credit.CodeTransferForbidden},
			{"from another organisation", admin, ledger.TransferInput{FromPoolID: theirs.ID, ToPoolID: team.ID, Amount: d("1")}, credit.CodeNotFound},
			{"a SERVICE key, without a policy", auth.With(ctx, &auth.Principal{KeyID: 2, Role: credit.RoleService, OrgID: &f.org.ID}),
				ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("1")}, credit.CodeTransferForbidden},
		} {
			if _, err := f.svc.TransferCredits(tc.ctx, tc.in); credit.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if got := f.available(t); !got.Equal(d("70")) {
			t.Fatalf("account available %s after refused transfers, want 70", got)
		}
		// The operator may move credits between organisations.
		if _, err := f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: theirs.ID, Amount: d("5")}); err != nil {
			t.Fatalf("operator transfer across organisations: %v", err)
		}
		// A TRANSFER policy: at most 10 credits a day out of one pool (the
		// team moved 5 already).
		f.publish(t, "daily", credit.PolicyTransfer, `movedToday + amount <= decimal(10) && role == "ORG_ADMIN"`)
		if _, err := f.svc.TransferCredits(admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("5")}); err != nil {
			t.Fatalf("within the daily limit: %v", err)
		}
		if _, err := f.svc.TransferCredits(admin, ledger.TransferInput{FromPoolID: team.ID, ToPoolID: f.pool.ID, Amount: d("1")}); credit.CodeOf(err) != credit.CodeTransferForbidden {
			t.Fatalf("past the daily limit: %v, want TRANSFER_FORBIDDEN", err)
		}
		verify(t, f.svc)
	})
}

// Transfers racing burns on both pools never overdraw either.
func TestTransfersRacingBurns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "40", credit.CreditSubscription)
		team, _, _ := f.tree(t)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					from, to := f.pool.ID, team.ID
					if (w+i)%2 == 1 {
						from, to = to, from
					}
					_, err := f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: from, ToPoolID: to, Amount: d("3")})
					if err != nil && credit.CodeOf(err) != credit.CodeInsufficientCredits {
						t.Errorf("transfer: %v", err)
					}
					in := f.usage(fmt.Sprintf("w%d-%d", w, i), "agent.run")
					in.Quantity = dp("2")
					if i%2 == 0 {
						in.PoolID = &team.ID
					}
					if _, err := f.svc.RecordUsage(ctx, in); err != nil {
						t.Errorf("usage: %v", err)
					}
				}
			}(w)
		}
		wg.Wait()
		verify(t, f.svc)
	})
}
