package engine_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

func transferRule(t *testing.T, expr string) *engine.Rule {
	t.Helper()
	p, err := rules.Compile(rules.KindTransfer, expr)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Rule{ID: 1, Name: "moves", Kind: credit.PolicyTransfer, Version: 2, Program: p}
}

func TestTransfer(t *testing.T) {
	exp := now.Add(48 * time.Hour)
	pool := []engine.Grant{
		{ID: 1, CreditType: credit.CreditSubscription, Amount: d("10"), Remaining: d("6"), UnitPrice: d("0.01"), Priority: 0, EffectiveAt: now.Add(-time.Hour), ExpiresAt: &exp},
		{ID: 2, CreditType: credit.CreditOnDemand, Amount: d("20"), Remaining: d("20"), UnitPrice: d("0.02"), Priority: 0, EffectiveAt: now.Add(-time.Hour)},
		{ID: 3, CreditType: credit.CreditIncentive, Amount: d("5"), Remaining: d("5"), EffectiveAt: now.Add(time.Hour)}, // not effective yet
	}
	tests := []struct {
		name   string
		rule   string
		role   credit.Role
		amount string
		moves  string // "grant:amount" per TRANSFER_OUT, in draw order
		code   credit.Code
	}{
		{"default rule, draw order (expiring first)", "", credit.RoleOrgAdmin, "10", "1:-6 2:-4", ""},
		{"all that is usable", "", credit.RoleOperator, "26", "1:-6 2:-20", ""},
		{"more than usable", "", credit.RoleOrgAdmin, "27", "", credit.CodeInsufficientCredits},
		{"a role the default does not allow", "", credit.RoleService, "1", "", credit.CodeTransferForbidden},
		{"rule: only ON_DEMAND moves", `grant.creditType == "ON_DEMAND"`, credit.RoleService, "10", "2:-10", ""},
		{"rule: nothing moves", `false`, credit.RoleOrgAdmin, "1", "", credit.CodeTransferForbidden},
		{"rule: a daily limit", `movedToday + amount <= decimal(15)`, credit.RoleOrgAdmin, "16", "", credit.CodeTransferForbidden},
		{"rule: only to team pools", `toKind == "TEAM" && role == "ORG_ADMIN"`, credit.RoleOrgAdmin, "3", "1:-3", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rule *engine.Rule
			if tc.rule != "" {
				rule = transferRule(t, tc.rule)
			}
			req := engine.TransferRequest{FromOrg: 1, ToOrg: 1, From: 10, To: 11, FromKind: credit.PoolAccount, ToKind: credit.PoolTeam,
				Amount: d(tc.amount), Role: tc.role, MovedToday: d("0"), Memo: "m"}
			out, in, err := engine.Transfer(context.Background(), rule, nil, req, pool, now)
			if got := credit.CodeOf(err); tc.code != "" {
				if got != tc.code || len(out.Moves)+len(in.Open) != 0 {
					t.Fatalf("Transfer = %v, %d moves; want %s and nothing", err, len(out.Moves), tc.code)
				}
				return
			} else if err != nil {
				t.Fatal(err)
			}
			var moves []string
			for i, m := range out.Moves {
				moves = append(moves, strconv.Itoa(m.Grant)+":"+m.Amount.String())
				o, src := in.Open[i], pool[m.Grant-1]
				if m.Kind != credit.EntryTransferOut || m.Pool != 10 || o.Kind != credit.EntryTransferIn || o.Pool != 11 ||
					!o.Amount.Equal(m.Amount.Neg()) || o.CreditType != src.CreditType || !o.UnitPrice.Equal(src.UnitPrice) ||
					(o.ExpiresAt == nil) != (src.ExpiresAt == nil) {
					t.Errorf("move %+v / opening %+v: want TRANSFER_OUT on pool 10 and a TRANSFER_IN grant on 11 like grant %d", m, o, src.ID)
				}
			}
			if got := strings.Join(moves, " "); got != tc.moves {
				t.Errorf("moves = %s, want %s", got, tc.moves)
			}
		})
	}
}
