//go:build ignore

// gen writes a new migration for each dialect from the difference between the
// ent schema and the replayed migration folder: `go run ./migrations/gen.go NAME`
// (or `make migrate-diff NAME=...`). The PostgreSQL dev database is a scratch
// database created and dropped on the local server (CREDITD_DEV_PG, default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"strings"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	_ "github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/creditd/creditd/ent/migrate"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run ./migrations/gen.go NAME")
	}
	name := os.Args[1]
	ctx := context.Background()

	admin := os.Getenv("CREDITD_DEV_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	adb, err := sql.Open("postgres", admin)
	if err != nil {
		log.Fatal(err)
	}
	dev := fmt.Sprintf("creditd_migrate_dev_%d", os.Getpid())
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE "+dev); err != nil {
		log.Fatalf("create dev database: %v", err)
	}
	defer adb.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dev+" WITH (FORCE)")
	pgURL := strings.Replace(admin, "/postgres?", "/"+dev+"?", 1)
	pg, err := sql.Open("postgres", pgURL)
	if err != nil {
		log.Fatal(err)
	}
	defer pg.Close()
	diff(ctx, pg, dialect.Postgres, "migrations/postgres", name)

	lite, err := sql.Open("sqlite", "file:dev?mode=memory&_pragma=foreign_keys(1)")
	if err != nil {
		log.Fatal(err)
	}
	lite.SetMaxOpenConns(1)
	defer lite.Close()
	diff(ctx, lite, dialect.SQLite, "migrations/sqlite", name)
}

func diff(ctx context.Context, db *sql.DB, d, dir, name string) {
	ld, err := atlas.NewLocalDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	m, err := schema.NewMigrate(entsql.OpenDB(d, db),
		schema.WithDir(ld),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(d),
		schema.WithFormatter(atlas.DefaultFormatter),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.NamedDiff(ctx, name, migrate.Tables...); err != nil {
		log.Fatalf("%s: %v", d, err)
	}
	log.Printf("%s: migrations in %s are up to date with the schema", d, dir)
}
