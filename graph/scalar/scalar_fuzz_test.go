package scalar_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/graph/scalar"
)

// written returns what a gqlgen marshaler writes.
func written(m graphql.Marshaler) string {
	var b bytes.Buffer
	m.MarshalGQL(&b)
	return b.String()
}

func validation(t *testing.T, err error, in any) {
	t.Helper()
	var e *credit.Error
	if !errors.As(err, &e) || e.Code != credit.CodeValidation {
		t.Fatalf("error for %#v = %v (%T), want a VALIDATION *credit.Error", in, err, err)
	}
}

func FuzzUnmarshalDecimal(f *testing.F) {
	for _, s := range []string{"12.5", "-3", "1e3", "0", "-0", "0.10", "", "NaN", "1e41", "1e-40", ".5", "5.", "+7", " 1", "1_000", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := scalar.UnmarshalDecimal(s)
		if err != nil {
			validation(t, err, s)
			return
		}
		out := written(scalar.MarshalDecimal(d))
		var text string
		if err := json.Unmarshal([]byte(out), &text); err != nil {
			t.Fatalf("MarshalDecimal(%q) wrote %s, not a JSON string: %v", s, out, err)
		}
		back, err := scalar.UnmarshalDecimal(text)
		if err != nil {
			t.Fatalf("UnmarshalDecimal(%q) = %s, marshalled as %s, which does not read back: %v", s, d, out, err)
		}
		if !back.Equal(d) {
			t.Fatalf("UnmarshalDecimal(%q) = %s, round trip gives %s", s, d, back)
		}
		// The canonical text is a fixed point: it marshals to itself.
		if again := written(scalar.MarshalDecimal(back)); again != out {
			t.Fatalf("MarshalDecimal not canonical: %s then %s", out, again)
		}
		// A JSON number with the same text reads the same.
		if n, err := scalar.UnmarshalDecimal(json.Number(s)); err != nil || !n.Equal(d) {
			t.Fatalf("UnmarshalDecimal(json.Number(%q)) = %s, %v; as a string %s", s, n, err, d)
		}
	})
}

func FuzzUnmarshalID(f *testing.F) {
	for _, tc := range []struct {
		s string
		n int64
	}{{"1", 1}, {"42", 0}, {"0", -1}, {"-5", 9223372036854775807}, {"+7", 7}, {"007", -9223372036854775808}, {"", 2}, {"1e3", 1000}, {"9223372036854775808", 3}} {
		f.Add(tc.s, tc.n)
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		check := func(in any) {
			id, err := scalar.UnmarshalID(in)
			if err != nil {
				validation(t, err, in)
				return
			}
			if id <= 0 {
				t.Fatalf("UnmarshalID(%#v) = %d, want > 0", in, id)
			}
			out := written(scalar.MarshalID(id))
			var text string
			if err := json.Unmarshal([]byte(out), &text); err != nil {
				t.Fatalf("MarshalID(%d) wrote %s, not a JSON string: %v", id, out, err)
			}
			back, err := scalar.UnmarshalID(text)
			if err != nil || back != id {
				t.Fatalf("UnmarshalID(%#v) = %d, marshalled as %s, reads back %d, %v", in, id, out, back, err)
			}
		}
		check(s)
		check(json.Number(s))
		check(n)
		check(int(n))
		// An integer and its decimal text are the same id (or both refused).
		a, errA := scalar.UnmarshalID(n)
		b, errB := scalar.UnmarshalID(strconv.FormatInt(n, 10))
		if (errA == nil) != (errB == nil) || a != b {
			t.Fatalf("UnmarshalID(%d) = %d, %v; UnmarshalID(%q) = %d, %v", n, a, errA, strconv.FormatInt(n, 10), b, errB)
		}
		if (n > 0) != (errA == nil) {
			t.Fatalf("UnmarshalID(%d): err %v", n, errA)
		}
	})
}
