package migrations_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/creditd/creditd/migrations"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// TestSchemaMatchesMigrations fails when ent/schema changed without a new
// migration (run `make migrate-diff NAME=...`): after the embedded migrations
// are applied, ent must find nothing left to change.
func TestSchemaMatchesMigrations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		var buf bytes.Buffer
		if err := db.Client.Schema.WriteTo(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		var changes []string
		for _, line := range strings.Split(buf.String(), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && line != "BEGIN;" && line != "COMMIT;" {
				changes = append(changes, line)
			}
		}
		if len(changes) > 0 {
			t.Fatalf("the ent schema and the migrations drifted; run `make migrate-diff NAME=...`. Missing changes:\n%s", strings.Join(changes, "\n"))
		}
	})
}

// TestApplyIsIdempotent applies the migrations a second time: nothing runs.
func TestApplyIsIdempotent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ran, err := migrations.Apply(context.Background(), db.SQL, db.Dialect)
		if err != nil || len(ran) != 0 {
			t.Fatalf("second Apply ran %v, %v; want nothing", ran, err)
		}
		if err := db.Ready(context.Background()); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	})
}
