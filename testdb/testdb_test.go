package testdb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// TestSkipIsLoud: without PostgreSQL, the skip says so on stderr once per
// test binary even without -v (t.Skip's own message only shows with -v).
func TestSkipIsLoud(t *testing.T) {
	if os.Getenv("TESTDB_SKIP_CHILD") == "1" {
		for _, name := range []string{"a", "b"} {
			t.Run(name, func(t *testing.T) { testdb.Open(t, dialect.Postgres) })
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSkipIsLoud$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTDB_SKIP_CHILD=1", "CI=",
		"CREDITD_TEST_PG=postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "SKIPPING: PostgreSQL does not answer"); n != 1 {
		t.Errorf("the skip message appears %d times without -v, want once:\n%s", n, out)
	}
}

func TestSmallPools(t *testing.T) {
	want := map[string]int{dialect.Postgres: testdb.MaxConns, dialect.SQLite: 1}
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		if n := db.SQL.Stats().MaxOpenConnections; n != want[db.Dialect] {
			t.Errorf("pool of a test database: max %d connections, want %d", n, want[db.Dialect])
		}
	})
}

func TestOpenFaulty(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(testdb.Name(d), func(t *testing.T) {
			ctx := context.Background()
			db, f := testdb.OpenFaulty(t, d)
			boom := errors.New("boom")
			r := f.Fail("SELECT 42", 1, boom)
			if _, err := db.SQL.ExecContext(ctx, "SELECT 42"); !errors.Is(err, boom) {
				t.Fatalf("first SELECT 42: %v, want boom", err)
			}
			if _, err := db.SQL.ExecContext(ctx, "SELECT 42"); err != nil {
				t.Fatalf("second SELECT 42: %v, want it through", err)
			}
			if r.Hits() != 2 {
				t.Errorf("hits = %d, want 2", r.Hits())
			}
			if _, err := db.SQL.ExecContext(ctx, "CREATE TABLE t (v int)"); err != nil {
				t.Fatal(err)
			}
			f.LoseCommitAck(1, boom)
			tx, err := db.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); !errors.Is(err, boom) {
				t.Fatalf("commit: %v, want boom after the commit", err)
			}
			var n int
			if err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
				t.Fatalf("rows after a lost commit acknowledgement: %d, %v; want 1 (it committed)", n, err)
			}
			f.Clear()
			f.Fail("BEGIN", -1, boom)
			if _, err := db.SQL.BeginTx(ctx, nil); !errors.Is(err, boom) {
				t.Fatalf("BEGIN: %v, want boom", err)
			}
		})
	}
}
