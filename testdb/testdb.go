// Package testdb gives tests a fresh, migrated database of each dialect:
// PostgreSQL (a new database cloned from a template migrated once with the
// real migrations) and SQLite (a new file). Under CI=true a missing
// PostgreSQL fails the test; elsewhere it skips with a loud message.
//
// Every test that writes ends with the ledger verifier: when a test that
// took a database from here ends without having failed, the database is
// checked with ledger.Service.Verify (the check behind `creditd verify`)
// and any broken invariant fails the test.
package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	_ "github.com/lib/pq"

	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/migrations"
	"github.com/creditd/creditd/store"
)

// AdminURL is the PostgreSQL server tests use: $CREDITD_TEST_PG, else the
// local server with trust auth.
func AdminURL() string {
	if v := os.Getenv("CREDITD_TEST_PG"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Dialects are the dialects every storage test runs on.
var Dialects = []string{dialect.Postgres, dialect.SQLite}

// Name is a dialect's short name for subtests.
func Name(d string) string {
	if d == dialect.SQLite {
		return "sqlite"
	}
	return "postgres"
}

// Each runs fn as a subtest on a fresh database of every dialect.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(Name(d), func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// MaxConns is the pool size of a test's PostgreSQL database: tests share
// one server (100 connections by default, maybe half of them held by
// other work) across parallel test binaries, so each pool stays small.
const MaxConns = 4

// Open returns a fresh migrated database of dialect d, closed and dropped
// when the test ends. Its PostgreSQL pool holds at most MaxConns
// connections.
func Open(t testing.TB, d string) *store.DB {
	t.Helper()
	return OpenWith(t, d, store.Options{})
}

// OpenWith is Open with pool options; MaxConns defaults to the package's
// MaxConns rather than the server's default.
func OpenWith(t testing.TB, d string, opt store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	url := NewURL(t, d)
	if opt.MaxConns == 0 {
		opt.MaxConns = MaxConns
	}
	db, err := store.OpenWith(ctx, url, opt)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if d == dialect.SQLite {
		if _, err := migrations.Apply(ctx, db.SQL, db.Dialect); err != nil {
			db.Close()
			t.Fatalf("migrate: %v", err)
		}
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var counter atomic.Int64

// NewURL creates a fresh migrated database (PostgreSQL) or names a new file
// (SQLite, migrated by Open) and returns its URL.
func NewURL(t testing.TB, d string) string {
	t.Helper()
	if d == dialect.SQLite {
		path := filepath.Join(t.TempDir(), "test.db")
		url := "sqlite://" + path
		t.Cleanup(func() {
			if _, err := os.Stat(path); err == nil {
				verifyAtEnd(t, url)
			}
		})
		return url
	}
	admin := requirePostgres(t)
	tmpl, err := template(admin)
	if err != nil {
		t.Fatalf("postgres template: %v", err)
	}
	name := fmt.Sprintf("creditd_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, counter.Add(1))
	if _, err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + tmpl); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	url := withDB(AdminURL(), name)
	t.Cleanup(func() { verifyAtEnd(t, url) }) // runs before the drop
	return url
}

var broken sync.Map // testing.TB -> true: the test breaks its ledger on purpose

// ExpectBroken tells the end-of-test verification that t breaks its
// ledger on purpose (tests of the verifier itself).
func ExpectBroken(t testing.TB) { broken.Store(t, true) }

// verifyAtEnd checks the ledger invariants of the database at url once the
// test is over (cleanups run last in, first out: after the test closed its
// own handles, before the database is dropped). A test that already failed
// is left alone: its own failure says more.
func verifyAtEnd(t testing.TB, url string) {
	if _, ok := broken.LoadAndDelete(t); ok || t.Failed() {
		return
	}
	ctx := context.Background()
	db, err := store.OpenWith(ctx, url, store.Options{MaxConns: 2})
	if err != nil {
		t.Errorf("ledger verify at the end of the test: open: %v", err)
		return
	}
	defer db.Close()
	vs, err := ledger.New(db).Verify(ctx)
	if err != nil {
		t.Errorf("ledger verify at the end of the test: %v", err)
		return
	}
	for _, v := range vs {
		t.Errorf("ledger invariant broken at the end of the test: %s", v)
	}
}

func withDB(url, name string) string {
	base, query, _ := strings.Cut(url, "?")
	i := strings.LastIndex(base, "/")
	out := base[:i+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
	skipOnce  sync.Once
)

// requirePostgres returns the admin connection (a pool of at most two,
// shared by the test binary), or skips the test loudly when PostgreSQL does
// not answer (fails it under CI=true). The skip is printed to stderr once
// per test binary as well: t.Skipf's message only shows with -v.
func requirePostgres(t testing.TB) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("postgres", AdminURL())
		if adminErr == nil {
			adminDB.SetMaxOpenConns(2)
			adminDB.SetMaxIdleConns(1)
			adminDB.SetConnMaxIdleTime(30 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			adminErr = adminDB.PingContext(ctx)
			cancel()
		}
	})
	db, err := adminDB, adminErr
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI=true and does not answer at %s: %v", AdminURL(), err)
		}
		msg := fmt.Sprintf("SKIPPING: PostgreSQL does not answer at %s (%v); set CREDITD_TEST_PG or start it. Under CI=true this fails.", AdminURL(), err)
		skipOnce.Do(func() {
			fmt.Fprintln(os.Stderr, "testdb: "+msg+" Every PostgreSQL subtest of this package is skipped.")
		})
		t.Skip(msg)
	}
	return db
}

// template returns the name of a database migrated with the current
// migrations, creating it once per migration set (named by their hash, so
// parallel test binaries share it and a changed migration gets a new one).
func template(admin *sql.DB) (string, error) {
	ms, err := migrations.List(dialect.Postgres)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.Version))
		h.Write([]byte(m.SQL))
	}
	name := "creditd_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727275)"); err != nil {
		return "", err
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock(727275)")
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	db, err := sql.Open("postgres", withDB(AdminURL(), building))
	if err != nil {
		return "", err
	}
	db.SetMaxOpenConns(1)
	_, err = migrations.Apply(ctx, db, dialect.Postgres)
	db.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", err
	}
	return name, nil
}

// LimitedURL returns url (a PostgreSQL test database) as a new login role
// allowed at most limit connections, dropped when the test ends: a way to
// make PostgreSQL itself answer "too many connections" (53300) without
// exhausting the shared server. The role has no privilege on any table.
func LimitedURL(t testing.TB, url string, limit int) string {
	t.Helper()
	admin := requirePostgres(t)
	role := fmt.Sprintf("creditd_test_role_%d_%d", os.Getpid(), counter.Add(1))
	if _, err := admin.Exec(fmt.Sprintf("CREATE ROLE %s LOGIN CONNECTION LIMIT %d", role, limit)); err != nil {
		t.Skipf("cannot create a PostgreSQL role (%v); the test needs a superuser or CREATEROLE", err)
	}
	t.Cleanup(func() {
		// Connections of the role end with their pools (earlier cleanups)
		// or with the dropped database; retry briefly while they go.
		for i := 0; i < 50; i++ {
			admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
			if _, err := admin.Exec("DROP ROLE IF EXISTS " + role); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not drop role %s", role)
	})
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		t.Fatalf("not a URL: %s", url)
	}
	if at := strings.Index(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + role + "@" + rest
}
