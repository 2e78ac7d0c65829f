package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
)

// verify checks every ledger invariant (ledger.Service.Verify) over the
// whole database and prints what it checked and what is broken. A broken
// invariant is an error, so the exit status tells scripts.
func verify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "sqlite://PATH or postgres://... (default $CREDITD_DATABASE_URL or "+store.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify: unexpected argument %q", fs.Arg(0))
	}
	url := databaseURL(*dbURL)
	db, err := store.OpenMigrated(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()

	c := db.Client
	counts := []struct {
		what  string
		count func(context.Context) (int, error)
	}{
		{"organisations", c.Organization.Query().Count},
		{"pools", c.Pool.Query().Count},
		{"grants", c.Grant.Query().Count},
		{"ledger entries", c.LedgerEntry.Query().Count},
		{"usage events", c.UsageEvent.Query().Count},
		{"holds", c.Hold.Query().Count},
	}
	fmt.Fprintf(stdout, "verifying %s\n", redact(url))
	for _, k := range counts {
		n, err := k.count(ctx)
		if err != nil {
			return fmt.Errorf("count %s: %w", k.what, err)
		}
		fmt.Fprintf(stdout, "  %-15s %10d\n", k.what, n)
	}

	violations, err := ledger.New(db).Verify(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(violations) == 0 {
		fmt.Fprintln(stdout, "ledger verified: no invariant broken")
		return nil
	}
	for _, v := range violations {
		fmt.Fprintln(stdout, "  violation:", v.String())
	}
	msg := fmt.Sprintf("%d invariant violations", len(violations))
	if len(violations) == 1 {
		msg = "1 invariant violation"
	}
	fmt.Fprintln(stdout, msg)
	return fmt.Errorf("ledger verify: %s", msg)
}
