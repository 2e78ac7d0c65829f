package ledger

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"syscall"
	"testing"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// TestRetryable: what a failed transaction may simply run again.
func TestRetryable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"asked to", errRetry, true},
		{"serialization failure", &pq.Error{Code: "40001"}, true},
		{"deadlock at commit", commitFailed(&pq.Error{Code: "40P01"}), true},
		{"begin refused", beginFailed(refused), true},
		{"too many connections at begin", beginFailed(&pq.Error{Code: "53300"}), true},
		{"connection lost before commit", rolledBack(driver.ErrBadConn), true},
		{"terminated before commit", rolledBack(&pq.Error{Code: "57P01"}), true},
		{"connection lost at commit", commitFailed(driver.ErrBadConn), false},
		{"unmarked connection fault", driver.ErrBadConn, false},
		{"domain error", credit.Invalid("amount", "negative"), false},
		{"unique violation", rolledBack(&pq.Error{Code: "23505"}), false},
		{"plain error", errors.New("boom"), false},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	// rolledBack leaves errors that are not connection faults as they are.
	if err := credit.Invalid("x", "y"); rolledBack(err) != error(err) {
		t.Errorf("rolledBack changed a domain error")
	}
	if rolledBack(errRetry) != errRetry {
		t.Errorf("rolledBack changed errRetry")
	}
}

// TestRetryAnswers: what retry does with each kind of failure, and what the
// caller gets once it gives up.
func TestRetryAnswers(t *testing.T) {
	s := &Service{db: &store.DB{Dialect: dialect.SQLite}} // no transaction slots to take
	ctx := context.Background()
	domain := credit.Invalid("amount", "negative")
	cases := []struct {
		name      string
		errs      []error // one per attempt; the last repeats
		attempts  int
		code      credit.Code // "" = the error itself
		retryable any
	}{
		{"success after two lost connections", []error{rolledBack(driver.ErrBadConn), beginFailed(driver.ErrBadConn), nil}, 3, "", nil},
		{"database down", []error{beginFailed(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})}, 5, credit.CodeUnavailable, true},
		{"contention that does not end", []error{&pq.Error{Code: "40001"}}, 5, credit.CodeUnavailable, true},
		{"connection lost at commit", []error{commitFailed(driver.ErrBadConn)}, 1, credit.CodeUnavailable, false},
		{"unmarked connection fault", []error{driver.ErrBadConn}, 1, credit.CodeUnavailable, true},
		{"NUL in text", []error{rolledBack(&pq.Error{Code: "22021"})}, 1, credit.CodeValidation, nil},
		{"domain error", []error{domain}, 1, "", nil},
		{"a bug", []error{errors.New("boom")}, 1, "", nil},
	}
	for _, c := range cases {
		n := 0
		err := s.retry(ctx, func() error {
			e := c.errs[min(n, len(c.errs)-1)]
			n++
			return e
		})
		if n != c.attempts {
			t.Errorf("%s: %d attempts, want %d", c.name, n, c.attempts)
		}
		if c.code == "" {
			if want := c.errs[len(c.errs)-1]; err != want {
				t.Errorf("%s: got %v, want %v unchanged", c.name, err, want)
			}
			continue
		}
		var e *credit.Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s: got %v, want code %s", c.name, err, c.code)
			continue
		}
		if c.retryable != nil && e.Details["retryable"] != c.retryable {
			t.Errorf("%s: retryable = %v, want %v", c.name, e.Details["retryable"], c.retryable)
		}
		if e.Cause == nil {
			t.Errorf("%s: the cause is lost", c.name)
		}
	}
}
