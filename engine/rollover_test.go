package engine_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

func TestClosePeriod(t *testing.T) {
	boundary := now
	ended, later := at(0), at(30)
	gs := []engine.Grant{
		{ID: 1, CreditType: credit.CreditSubscription, Priority: 100, Remaining: d("300"), ExpiresAt: ended},
		{ID: 2, CreditType: credit.CreditRollover, Priority: 100, Remaining: d("50"), ExpiresAt: ended},
		{ID: 3, CreditType: credit.CreditIncentive, Priority: 100, Remaining: d("20"), ExpiresAt: ended},
		{ID: 4, CreditType: credit.CreditOnDemand, Priority: 100, Remaining: d("99"), ExpiresAt: later},    // not ending
		{ID: 5, CreditType: credit.CreditSubscription, Priority: 100, Remaining: d("0"), ExpiresAt: ended}, // empty
		{ID: 6, CreditType: credit.CreditOnDemand, Priority: 100, Remaining: d("7")},                       // no expiry
	}
	cap := decimal.NewNullDecimal(d("100"))
	tests := []struct {
		mode            credit.RolloverMode
		rolled, expired string
		rollOut, expire []engine.GrantAmount
	}{
		{credit.RolloverNone, "0", "370", nil, []engine.GrantAmount{{3, d("20")}, {2, d("50")}, {1, d("300")}}},
		// Default order on equal priority and expiry: INCENTIVE, ROLLOVER, SUBSCRIPTION.
		{credit.RolloverCapped, "100", "270", []engine.GrantAmount{{2, d("50")}, {1, d("50")}},
			[]engine.GrantAmount{{3, d("20")}, {1, d("250")}}},
		{credit.RolloverOneTime, "300", "70", []engine.GrantAmount{{1, d("300")}},
			[]engine.GrantAmount{{3, d("20")}, {2, d("50")}}},
		{credit.RolloverUnlimited, "350", "20", []engine.GrantAmount{{2, d("50")}, {1, d("300")}},
			[]engine.GrantAmount{{3, d("20")}}},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			got := engine.ClosePeriod(tc.mode, cap, gs, boundary)
			if !got.Rolled.Equal(d(tc.rolled)) || !got.Expired.Equal(d(tc.expired)) {
				t.Fatalf("ClosePeriod(%s) rolled %s expired %s, want %s and %s", tc.mode, got.Rolled, got.Expired, tc.rolled, tc.expired)
			}
			same := func(name string, a, b []engine.GrantAmount) {
				if len(a) != len(b) {
					t.Fatalf("%s = %v, want %v", name, a, b)
				}
				for i := range a {
					if a[i].GrantID != b[i].GrantID || !a[i].Amount.Equal(b[i].Amount) {
						t.Fatalf("%s = %v, want %v", name, a, b)
					}
				}
			}
			same("rollOut", got.RollOut, tc.rollOut)
			same("expire", got.Expire, tc.expire)
		})
	}
}
