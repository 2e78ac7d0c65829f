package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	cases := []struct {
		name string
		err  error
		want store.Fault
	}{
		{"nil", nil, store.FaultNone},
		{"plain", errors.New("boom"), store.FaultNone},
		{"not found", sql.ErrNoRows, store.FaultNone},
		{"unique violation", &pq.Error{Code: "23505"}, store.FaultNone},
		{"serialization failure", &pq.Error{Code: "40001"}, store.FaultConflict},
		{"deadlock", fmt.Errorf("commit: %w", &pq.Error{Code: "40P01"}), store.FaultConflict},
		{"too many connections", &pq.Error{Code: "53300"}, store.FaultUnavailable},
		{"cannot connect now", &pq.Error{Code: "57P03"}, store.FaultUnavailable},
		{"admin shutdown", &pq.Error{Code: "57P01"}, store.FaultUnavailable},
		{"crash shutdown", &pq.Error{Code: "57P02"}, store.FaultUnavailable},
		{"connection failure", &pq.Error{Code: "08006"}, store.FaultUnavailable},
		{"NUL in text", &pq.Error{Code: "22021"}, store.FaultBadText},
		{"untranslatable", &pq.Error{Code: "22P05"}, store.FaultBadText},
		{"bad conn", fmt.Errorf("begin transaction: %w", driver.ErrBadConn), store.FaultUnavailable},
		{"conn done", sql.ErrConnDone, store.FaultUnavailable},
		{"EOF", io.EOF, store.FaultUnavailable},
		{"unexpected EOF", io.ErrUnexpectedEOF, store.FaultUnavailable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, store.FaultUnavailable},
		{"reset", fmt.Errorf("query: %w", syscall.ECONNRESET), store.FaultUnavailable},
		{"net error", refused, store.FaultUnavailable},
		// An engine error keeps its cause: what it wraps still classifies.
		{"wrapped by an engine error", &credit.Error{Code: credit.CodeInternal, Cause: &pq.Error{Code: "57P01"}}, store.FaultUnavailable},
	}
	for _, c := range cases {
		if got := store.Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestUnavailableError(t *testing.T) {
	cause := &pq.Error{Code: "53300"}
	e := store.Unavailable(cause, true)
	if e.Code != credit.CodeUnavailable || e.Details["retryable"] != true || !errors.Is(e, cause) {
		t.Fatalf("Unavailable(retryable) = %+v", e)
	}
	if e := store.Unavailable(&pq.Error{Code: "40001"}, true); !strings.Contains(e.Message, "concurrent changes") {
		t.Fatalf("Unavailable(contention) = %q", e.Message)
	}
	if e := store.Unavailable(cause, false); e.Details["retryable"] != false {
		t.Fatalf("Unavailable(not retryable) = %+v", e)
	}
	if e := store.BadText(&pq.Error{Code: "22021"}); e.Code != credit.CodeValidation {
		t.Fatalf("BadText = %+v", e)
	}
}

// TestPoolOptions: PostgreSQL pools are bounded (20 by default, or as
// asked); SQLite always has one connection.
func TestPoolOptions(t *testing.T) {
	ctx := context.Background()
	sqlite := "sqlite://" + filepath.Join(t.TempDir(), "p.db")
	db, err := store.OpenWith(ctx, sqlite, store.Options{MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.SQL.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("sqlite pool: max %d connections, want 1", n)
	}
	db.Close()
	if _, err := store.OpenWith(ctx, sqlite, store.Options{MaxConns: -1}); err == nil {
		t.Errorf("negative max connections: want an error")
	}

	url := testdb.NewURL(t, dialect.Postgres)
	for _, c := range []struct{ ask, want int }{{0, store.DefaultMaxConns}, {3, 3}} {
		db, err := store.OpenWith(ctx, url, store.Options{MaxConns: c.ask})
		if err != nil {
			t.Fatal(err)
		}
		if n := db.SQL.Stats().MaxOpenConnections; n != c.want {
			t.Errorf("postgres pool asked %d: max %d connections, want %d", c.ask, n, c.want)
		}
		db.Close()
	}
	if _, err := store.OpenWith(ctx, url, store.Options{MaxConns: 1}); err == nil {
		t.Errorf("a PostgreSQL pool of one connection: want an error (the ledger keeps one spare)")
	}
	if store.DefaultMaxConns != 20 {
		t.Errorf("DefaultMaxConns = %d, want 20 (README)", store.DefaultMaxConns)
	}
}

// TestUnreachableDatabase: nothing listening, a closed pool: both are
// unavailable, not the caller's fault.
func TestUnreachableDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // now nothing listens there
	_, err = store.Open(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if err == nil || store.Classify(err) != store.FaultUnavailable {
		t.Errorf("open with nothing listening: %v (%v), want an unavailable fault", err, store.Classify(err))
	}

	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = db.SQL.ExecContext(ctx, "SELECT 1")
	if err == nil || store.Classify(err) != store.FaultUnavailable {
		t.Errorf("query on a closed pool: %v (%v), want an unavailable fault", err, store.Classify(err))
	}
}

// TestSQLiteBusy: a file another process holds past the busy timeout is
// unavailable for now.
func TestSQLiteBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.ExecContext(ctx, "CREATE TABLE x (v int)"); err != nil {
		t.Fatal(err)
	}
	ca, err := a.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if _, err := ca.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer ca.ExecContext(ctx, "ROLLBACK")
	_, err = b.ExecContext(ctx, "INSERT INTO x VALUES (1)")
	if err == nil || store.Classify(err) != store.FaultUnavailable {
		t.Errorf("write while another connection holds the lock: %v (%v), want an unavailable fault", err, store.Classify(err))
	}
}

// TestTooManyConnections: PostgreSQL refusing a connection (53300, here a
// role's connection limit while the pool holds its one connection) is an
// unavailable fault.
func TestTooManyConnections(t *testing.T) {
	ctx := context.Background()
	url := testdb.LimitedURL(t, testdb.NewURL(t, dialect.Postgres), 1)
	db, err := store.OpenWith(ctx, url, store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	held, err := db.SQL.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = db.SQL.ExecContext(ctx, "SELECT 1")
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("second connection: %v, want pq error 53300", err)
	}
	if f := store.Classify(err); f != store.FaultUnavailable {
		t.Errorf("Classify(53300) = %v, want unavailable", f)
	}
}
