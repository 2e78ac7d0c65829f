package credit_test

import (
	"slices"
	"testing"

	"github.com/creditd/creditd/credit"
)

func TestPeriod(t *testing.T) {
	if got, want := credit.Period("").Values(), []string{"DAY", "MONTH", "QUARTER", "YEAR"}; !slices.Equal(got, want) {
		t.Fatalf("Values() = %v, want %v", got, want)
	}
	for p, months := range map[credit.Period]int{credit.PeriodDay: 0, credit.PeriodMonth: 1, credit.PeriodQuarter: 3, credit.PeriodYear: 12, "WEEK": -1, "month": -1, "": -1} {
		if got := p.Months(); got != months {
			t.Errorf("Period(%q).Months() = %d, want %d", p, got, months)
		}
		if got := p.Valid(); got != (months >= 0) {
			t.Errorf("Period(%q).Valid() = %v", p, got)
		}
	}
}

func TestUsageStatus(t *testing.T) {
	for _, v := range credit.UsageStatus("").Values() {
		if !credit.UsageStatus(v).Valid() {
			t.Errorf("UsageStatus(%q) not Valid", v)
		}
	}
	for _, v := range []string{"", "succeeded", "DONE"} {
		if credit.UsageStatus(v).Valid() {
			t.Errorf("UsageStatus(%q) Valid", v)
		}
	}
}

// Every enum lists each of its constants once, so the ent schema, the
// GraphQL binding and the rules agree on its values.
func TestValuesAreDistinct(t *testing.T) {
	for name, vs := range map[string][]string{
		"PoolKind": credit.PoolKind("").Values(), "CreditType": credit.CreditType("").Values(), "UsageStatus": credit.UsageStatus("").Values(),
		"Decision": credit.Decision("").Values(), "EntryKind": credit.EntryKind("").Values(), "PolicyKind": credit.PolicyKind("").Values(),
		"VersionStatus": credit.VersionStatus("").Values(), "Role": credit.Role("").Values(), "OverageMode": credit.OverageMode("").Values(),
		"RolloverMode": credit.RolloverMode("").Values(), "Period": credit.Period("").Values(),
		"Payment": credit.Payment("").Values(), "AlertKind": credit.AlertKind("").Values(),
		"ChangeCredits": credit.ChangeCredits("").Values(),
	} {
		seen := map[string]bool{}
		for _, v := range vs {
			if seen[v] || v == "" {
				t.Errorf("%s lists %q twice or empty", name, v)
			}
			seen[v] = true
		}
	}
}
