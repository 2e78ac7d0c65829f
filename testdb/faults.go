package testdb

import (
	"context"
	"database/sql/driver"
	"strings"
	"sync"
	"testing"

	"github.com/creditd/creditd/store"
)

// OpenFaulty is Open with a hand on the wire: every statement, BEGIN and
// COMMIT passes through f, which can make chosen ones fail with chosen
// errors (a connection refused, a PostgreSQL error code, a lost commit
// acknowledgement), deterministically, on either dialect.
func OpenFaulty(t testing.TB, d string) (*store.DB, *Faults) {
	t.Helper()
	f := &Faults{}
	db := OpenWith(t, d, store.Options{WrapConnector: func(c driver.Connector) driver.Connector {
		return &faultyConnector{base: c, f: f}
	}})
	return db, f
}

// Faults decides which statements of an OpenFaulty pool fail.
type Faults struct {
	mu    sync.Mutex
	rules []*Fault
}

// Fault is one rule of Faults.
type Fault struct {
	substr      string
	left        int // failures left; < 0: forever
	err         error
	afterCommit bool
	hits        int // statements that matched (failed or not)
}

// Hits is how many statements matched the rule so far, failed or not.
func (r *Fault) Hits() int {
	faultsMu.Lock()
	defer faultsMu.Unlock()
	return r.hits
}

var faultsMu sync.Mutex // guards every Fault's counters

// Fail makes the next n statements (n < 0: all of them) whose SQL text
// contains substr fail with err before they reach the database. BEGIN and
// COMMIT are the texts "BEGIN" and "COMMIT".
func (f *Faults) Fail(substr string, n int, err error) *Fault {
	return f.add(&Fault{substr: substr, left: n, err: err})
}

// LoseCommitAck makes the next n commits (n < 0: all) happen and then
// report err, as when the connection drops after the database committed
// but before the client heard of it.
func (f *Faults) LoseCommitAck(n int, err error) *Fault {
	return f.add(&Fault{substr: "COMMIT", left: n, err: err, afterCommit: true})
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

func (f *Faults) add(r *Fault) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return r
}

// check returns the error for statement q (at the moment after says:
// before it runs, or after a commit ran), nil to let it pass.
func (f *Faults) check(q string, after bool) error {
	f.mu.Lock()
	rules := append([]*Fault(nil), f.rules...)
	f.mu.Unlock()
	faultsMu.Lock()
	defer faultsMu.Unlock()
	for _, r := range rules {
		if r.afterCommit != after || !strings.Contains(q, r.substr) {
			continue
		}
		r.hits++
		if r.left == 0 {
			continue
		}
		if r.left > 0 {
			r.left--
		}
		return r.err
	}
	return nil
}

type faultyConnector struct {
	base driver.Connector
	f    *Faults
}

func (c *faultyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &faultyConn{base: conn, f: c.f}, nil
}

func (c *faultyConnector) Driver() driver.Driver { return c.base.Driver() }

type faultyConn struct {
	base driver.Conn
	f    *Faults
}

var (
	_ driver.ConnBeginTx        = (*faultyConn)(nil)
	_ driver.ConnPrepareContext = (*faultyConn)(nil)
	_ driver.QueryerContext     = (*faultyConn)(nil)
	_ driver.ExecerContext      = (*faultyConn)(nil)
	_ driver.Pinger             = (*faultyConn)(nil)
	_ driver.SessionResetter    = (*faultyConn)(nil)
	_ driver.Validator          = (*faultyConn)(nil)
	_ driver.NamedValueChecker  = (*faultyConn)(nil)
)

func (c *faultyConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *faultyConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := c.base.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, q)
	} else {
		st, err = c.base.Prepare(q)
	}
	if err != nil {
		return nil, err
	}
	return &faultyStmt{base: st, q: q, f: c.f}, nil
}

func (c *faultyConn) Close() error { return c.base.Close() }

func (c *faultyConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *faultyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.f.check("BEGIN", false); err != nil {
		return nil, err
	}
	var (
		tx  driver.Tx
		err error
	)
	if b, ok := c.base.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		tx, err = c.base.Begin() //nolint:staticcheck // the driver has nothing else
	}
	if err != nil {
		return nil, err
	}
	return &faultyTx{base: tx, f: c.f}, nil
}

func (c *faultyConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.base.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares instead
	}
	if err := c.f.check(q, false); err != nil {
		return nil, err
	}
	return qc.QueryContext(ctx, q, args)
}

func (c *faultyConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.base.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if err := c.f.check(q, false); err != nil {
		return nil, err
	}
	return ec.ExecContext(ctx, q, args)
}

func (c *faultyConn) Ping(ctx context.Context) error {
	if p, ok := c.base.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *faultyConn) ResetSession(ctx context.Context) error {
	if r, ok := c.base.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *faultyConn) IsValid() bool {
	if v, ok := c.base.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *faultyConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.base.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip // the default conversion
}

type faultyTx struct {
	base driver.Tx
	f    *Faults
}

func (t *faultyTx) Commit() error {
	if err := t.f.check("COMMIT", false); err != nil {
		_ = t.base.Rollback()
		return err
	}
	if err := t.base.Commit(); err != nil {
		return err
	}
	return t.f.check("COMMIT", true)
}

func (t *faultyTx) Rollback() error { return t.base.Rollback() }

type faultyStmt struct {
	base driver.Stmt
	q    string
	f    *Faults
}

func (s *faultyStmt) Close() error  { return s.base.Close() }
func (s *faultyStmt) NumInput() int { return s.base.NumInput() }

func (s *faultyStmt) Exec(args []driver.Value) (driver.Result, error) {
	if err := s.f.check(s.q, false); err != nil {
		return nil, err
	}
	return s.base.Exec(args) //nolint:staticcheck // the driver's own fallback
}

func (s *faultyStmt) Query(args []driver.Value) (driver.Rows, error) {
	if err := s.f.check(s.q, false); err != nil {
		return nil, err
	}
	return s.base.Query(args) //nolint:staticcheck // the driver's own fallback
}

func (s *faultyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.f.check(s.q, false); err != nil {
		return nil, err
	}
	if e, ok := s.base.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return s.base.Exec(values(args)) //nolint:staticcheck // the driver has nothing else
}

func (s *faultyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.f.check(s.q, false); err != nil {
		return nil, err
	}
	if q, ok := s.base.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return s.base.Query(values(args)) //nolint:staticcheck // the driver has nothing else
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
