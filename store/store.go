// Package store opens the system of record: PostgreSQL (lib/pq) in
// production, an embedded SQLite file (pure Go, no cgo) by default, and
// brings its schema up to date with the embedded migrations.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/lib/pq"  // PostgreSQL driver
	_ "modernc.org/sqlite" // SQLite driver, registered as "sqlite"

	"github.com/creditd/creditd/ent"
	_ "github.com/creditd/creditd/ent/runtime" // schema defaults, validators and hooks
	"github.com/creditd/creditd/migrations"
)

// DefaultURL is the embedded database used when nothing is configured.
const DefaultURL = "sqlite://creditd.db"

// DB is an open database: the ent client for queries and the raw handle for
// health checks and migrations.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string // dialect.Postgres or dialect.SQLite
}

// Open connects to url (sqlite://PATH or postgres://...) without migrating.
func Open(ctx context.Context, url string) (*DB, error) {
	var (
		db      *sql.DB
		dia     string
		err     error
		rawPath string
	)
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		rawPath = strings.TrimPrefix(url, "sqlite://")
		if rawPath == "" {
			return nil, fmt.Errorf("database url %q names no file", url)
		}
		dia = dialect.SQLite
		sep := "?"
		if strings.Contains(rawPath, "?") {
			sep = "&"
		}
		dsn := "file:" + rawPath + sep + "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db, err = sql.Open("sqlite", dsn)
		if err == nil {
			// SQLite has one writer; one connection serialises every
			// transaction, which is what keeps balances exact there.
			db.SetMaxOpenConns(1)
		}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dia = dialect.Postgres
		db, err = sql.Open("postgres", url)
		if err == nil {
			db.SetMaxOpenConns(64)
			db.SetMaxIdleConns(64)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, fmt.Errorf("unsupported database url %q: want sqlite://PATH or postgres://...", url)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	drv := entsql.OpenDB(dia, db)
	return &DB{Client: ent.NewClient(ent.Driver(drv)), SQL: db, Dialect: dia}, nil
}

// OpenMigrated opens url and applies every pending migration.
func OpenMigrated(ctx context.Context, url string) (*DB, error) {
	db, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the client and the connection pool.
func (d *DB) Close() error { return d.Client.Close() }

// Ready reports whether the database answers and every migration is applied.
func (d *DB) Ready(ctx context.Context) error {
	if err := d.SQL.PingContext(ctx); err != nil {
		return err
	}
	pending, err := migrations.Pending(ctx, d.SQL, d.Dialect)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d migrations not applied: %s", len(pending), strings.Join(pending, ", "))
	}
	return nil
}
