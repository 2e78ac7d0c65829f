package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

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

	fmt.Fprintf(stdout, "verifying %s\n", redact(url))
	start := time.Now()
	rep, err := ledger.New(db).VerifyReport(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, k := range []struct {
		what  string
		count int
	}{
		{"organisations", rep.Organizations}, {"pools", rep.Pools}, {"grants", rep.Grants},
		{"ledger entries", rep.Entries}, {"usage events", rep.Events}, {"holds", rep.Holds},
	} {
		fmt.Fprintf(stdout, "  %-15s %10d\n", k.what, k.count)
	}
	fmt.Fprintf(stdout, "  read in %s (one snapshot)\n", time.Since(start).Round(time.Millisecond))
	violations := rep.Violations
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
