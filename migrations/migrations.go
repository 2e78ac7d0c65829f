// Package migrations holds the versioned SQL migrations of each dialect,
// generated from the ent schema (`make migrate-diff NAME=...`), embedded in
// the binary and applied in order at start-up or by `creditd migrate`.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"entgo.io/ent/dialect"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dir returns the folder of a dialect's migrations inside the embedded files.
func Dir(d string) (string, error) {
	switch d {
	case dialect.Postgres:
		return "postgres", nil
	case dialect.SQLite:
		return "sqlite", nil
	}
	return "", fmt.Errorf("no migrations for dialect %q", d)
}

// Migration is one file: its version (the file name without .sql) and SQL.
type Migration struct {
	Version string
	SQL     string
}

// List returns a dialect's migrations in the order they apply.
func List(d string) ([]Migration, error) {
	dir, err := Dir(d)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: strings.TrimSuffix(path.Base(n), ".sql"), SQL: string(b)})
	}
	return out, nil
}

const revisions = "creditd_schema_revisions"

// conn is what both *sql.DB and *sql.Conn offer. Apply holds one connection
// for its whole run (the advisory lock is per session, and SQLite has only
// one connection), so everything it runs goes through that connection.
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func ensureTable(ctx context.Context, db conn) error {
	_, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+revisions+" (version varchar(255) PRIMARY KEY, applied_at varchar(64) NOT NULL)")
	return err
}

func applied(ctx context.Context, db conn) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT version FROM "+revisions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}

// Pending lists the versions not yet applied to db.
func Pending(ctx context.Context, db *sql.DB, d string) ([]string, error) {
	all, err := List(d)
	if err != nil {
		return nil, err
	}
	if err := ensureTable(ctx, db); err != nil {
		return nil, err
	}
	done, err := applied(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if !done[m.Version] {
			out = append(out, m.Version)
		}
	}
	return out, nil
}

// Apply runs every pending migration, each in its own transaction, and
// returns the versions it applied. On PostgreSQL an advisory lock keeps two
// starting servers from applying the same migration at once.
func Apply(ctx context.Context, db *sql.DB, d string) ([]string, error) {
	all, err := List(d)
	if err != nil {
		return nil, err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d == dialect.Postgres {
		if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
			return nil, fmt.Errorf("lock migrations: %w", err)
		}
		defer c.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(727274)")
	}
	if err := ensureTable(ctx, c); err != nil {
		return nil, fmt.Errorf("create revisions table: %w", err)
	}
	done, err := applied(ctx, c)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, m := range all {
		if done[m.Version] {
			continue
		}
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return ran, err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return ran, fmt.Errorf("apply migration %s: %w", m.Version, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+revisions+" (version, applied_at) VALUES ("+placeholder(d, 1)+", "+placeholder(d, 2)+")", m.Version, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return ran, err
		}
		if err := tx.Commit(); err != nil {
			return ran, err
		}
		ran = append(ran, m.Version)
	}
	return ran, nil
}

func placeholder(d string, n int) string {
	if d == dialect.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}
