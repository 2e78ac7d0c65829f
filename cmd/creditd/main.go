// Command creditd is the credit platform's server and admin tool.
//
//	creditd serve [--addr :8080] [--database-url URL] [--demo]
//	creditd migrate [--database-url URL]
//
// The database URL comes from --database-url, else CREDITD_DATABASE_URL, else
// sqlite://creditd.db (an embedded file; nothing to install).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/migrations"
	"github.com/creditd/creditd/store"
)

const usage = `creditd: credit-based pricing platform

usage:
  creditd serve   [--addr :8080] [--database-url URL] [--demo]
  creditd migrate [--database-url URL]

The database URL is sqlite://PATH or postgres://...; default from
CREDITD_DATABASE_URL, else sqlite://creditd.db.
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "creditd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	setupLogging(stderr)
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout)
	case "migrate":
		return migrate(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func setupLogging(w io.Writer) {
	var h slog.Handler
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		h = slog.NewTextHandler(w, nil)
	} else {
		h = slog.NewJSONHandler(w, nil)
	}
	slog.SetDefault(slog.New(h))
}

func databaseURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv("CREDITD_DATABASE_URL"); v != "" {
		return v
	}
	return store.DefaultURL
}

func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "sqlite://PATH or postgres://... (default $CREDITD_DATABASE_URL or "+store.DefaultURL+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(ctx, databaseURL(*dbURL))
	if err != nil {
		return err
	}
	defer db.Close()
	ran, err := migrations.Apply(ctx, db.SQL, db.Dialect)
	for _, v := range ran {
		fmt.Fprintln(stdout, "applied", v)
	}
	if err != nil {
		return err
	}
	if len(ran) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	dbURL := fs.String("database-url", "", "sqlite://PATH or postgres://... (default $CREDITD_DATABASE_URL or "+store.DefaultURL+")")
	demo := fs.Bool("demo", false, "seed an example organisation, register, burn rule and grants")
	maxBatch := fs.Int("max-batch", ledger.DefaultMaxBatch, "largest recordUsageBatch accepted")
	noPlayground := fs.Bool("no-playground", false, "do not serve the GraphQL playground at /")
	noIntrospection := fs.Bool("no-introspection", false, "turn GraphQL introspection off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := databaseURL(*dbURL)
	db, err := store.OpenMigrated(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := ledger.New(db, ledger.WithMaxBatch(*maxBatch))
	if *demo {
		if err := seedDemo(ctx, svc, stdout); err != nil {
			return fmt.Errorf("demo seed: %w", err)
		}
	}
	srv := &http.Server{
		Addr: *addr,
		Handler: graph.NewHandler(svc, db, graph.Options{
			DisablePlayground: *noPlayground, DisableIntrospection: *noIntrospection,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("creditd serving", "addr", *addr, "database", db.Dialect, "playground", !*noPlayground)
	fmt.Fprintf(stdout, "creditd listening on %s (database: %s)\n  playground: http://localhost%s/\n  graphql:    http://localhost%s/graphql\n", *addr, redact(url), portOf(*addr), portOf(*addr))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i:]
		}
	}
	return addr
}

// redact hides a password in a database URL before printing it.
func redact(url string) string {
	at, scheme := -1, -1
	for i := 0; i < len(url); i++ {
		if url[i] == '@' {
			at = i
		}
		if scheme < 0 && i+2 < len(url) && url[i:i+3] == "://" {
			scheme = i + 3
		}
	}
	if at < 0 || scheme < 0 {
		return url
	}
	user := url[scheme:at]
	for i := 0; i < len(user); i++ {
		if user[i] == ':' {
			return url[:scheme] + user[:i] + ":***" + url[at:]
		}
	}
	return url
}
