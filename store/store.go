// Package store opens the system of record: PostgreSQL (lib/pq) in
// production, an embedded SQLite file (pure Go, no cgo) by default, and
// brings its schema up to date with the embedded migrations.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

// DefaultMaxConns is the PostgreSQL pool size when none is asked for: a
// fifth of a default server's 100 connections, so a few replicas, a
// migration and an operator's psql fit beside each other.
const DefaultMaxConns = 20

// Options tune the connection pool; zero values take the defaults.
type Options struct {
	// MaxConns bounds the open PostgreSQL connections (default
	// DefaultMaxConns, at least 2: the ledger keeps one out of its
	// transactions' reach). A request that finds them all busy waits for
	// one (until its deadline). SQLite always uses one connection.
	MaxConns int
	// MaxIdleConns bounds the idle connections kept open (default MaxConns).
	MaxIdleConns int
	// ConnMaxIdleTime closes a connection idle this long (default 5 minutes).
	ConnMaxIdleTime time.Duration
	// WrapConnector, when set, stands between the pool and the driver
	// (tests inject database faults with it; see testdb.OpenFaulty).
	WrapConnector func(driver.Connector) driver.Connector
}

// Open connects to url (sqlite://PATH or postgres://...) without migrating,
// with the default pool.
func Open(ctx context.Context, url string) (*DB, error) { return OpenWith(ctx, url, Options{}) }

// OpenWith is Open with pool options.
func OpenWith(ctx context.Context, url string, opt Options) (*DB, error) {
	if opt.MaxConns < 0 || opt.MaxIdleConns < 0 {
		return nil, fmt.Errorf("database pool: max connections must not be negative")
	}
	if opt.MaxConns == 0 {
		opt.MaxConns = DefaultMaxConns
	}
	if opt.MaxIdleConns == 0 || opt.MaxIdleConns > opt.MaxConns {
		opt.MaxIdleConns = opt.MaxConns
	}
	if opt.ConnMaxIdleTime == 0 {
		opt.ConnMaxIdleTime = 5 * time.Minute
	}
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
		db, err = openSQL("sqlite", dsn, opt)
		if err == nil {
			// SQLite has one writer; one connection serialises every
			// transaction, which is what keeps balances exact there.
			db.SetMaxOpenConns(1)
		}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dia = dialect.Postgres
		if opt.MaxConns < 2 {
			return nil, fmt.Errorf("database pool: PostgreSQL needs at least 2 connections, got %d", opt.MaxConns)
		}
		db, err = openSQL("postgres", url, opt)
		if err == nil {
			db.SetMaxOpenConns(opt.MaxConns)
			db.SetMaxIdleConns(opt.MaxIdleConns)
			db.SetConnMaxIdleTime(opt.ConnMaxIdleTime)
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

// openSQL is sql.Open, through opt.WrapConnector when set.
func openSQL(driverName, dsn string, opt Options) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil || opt.WrapConnector == nil {
		return db, err
	}
	drv := db.Driver()
	db.Close() // it never connected
	return sql.OpenDB(opt.WrapConnector(dsnConnector{dsn: dsn, drv: drv})), nil
}

// dsnConnector is database/sql's connector for a driver without one of its
// own (lib/pq and modernc's sqlite both are such drivers).
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// OpenMigrated opens url and applies every pending migration.
func OpenMigrated(ctx context.Context, url string) (*DB, error) {
	return OpenMigratedWith(ctx, url, Options{})
}

// OpenMigratedWith is OpenMigrated with pool options.
func OpenMigratedWith(ctx context.Context, url string, opt Options) (*DB, error) {
	db, err := OpenWith(ctx, url, opt)
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
