// Command creditd is the credit platform's server and admin tool.
//
//	creditd serve [--addr :8080] [--database-url URL] [--db-max-conns 20] [--metrics-addr ADDR] [--demo] [limits...]
//	creditd migrate [--database-url URL]
//	creditd keys create --role ROLE --name NAME [--organization ID] [--database-url URL]
//	creditd verify  [--database-url URL]
//	creditd kpis    --from DATE --to DATE [--group-by KEYS] [--currency USD] [--database-url URL]
//	creditd kpis journal --from DATE --to DATE [--currency USD] [--database-url URL]
//	creditd playbook diff FILE | apply FILE [--dry-run] | export [--url URL] [--key KEY]
//	creditd loadtest [--url http://127.0.0.1:8080] [--key KEY] [--duration 10s | --ops N] [...]
//
// CREDITD_ADMIN_KEY, when set at serve time, makes sure an OPERATOR key with
// that secret exists, so scripts and containers start non-interactively.
//
// The database URL comes from --database-url, else CREDITD_DATABASE_URL, else
// sqlite://creditd.db (an embedded file; nothing to install). The PostgreSQL
// pool size comes from --db-max-conns, else CREDITD_DB_MAX_CONNS, else 20.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/migrations"
	"github.com/creditd/creditd/observe"
	"github.com/creditd/creditd/store"
)

const usage = `creditd: credit-based pricing platform

usage:
  creditd serve   [--addr :8080] [--database-url URL] [--db-max-conns 20]
                  [--metrics-addr ADDR] [--demo] [limits...]
  creditd migrate [--database-url URL]
  creditd keys create --role ROLE --name NAME [--organization ID] [--database-url URL]
  creditd verify  [--database-url URL]
  creditd kpis    --from DATE --to DATE [--group-by ORGANIZATION,SEGMENT,PLAN,MONTH]
                  [--currency USD] [--database-url URL]
  creditd kpis journal --from DATE --to DATE [--currency USD] [--database-url URL]
  creditd playbook diff FILE | apply FILE [--dry-run] | export  [--url URL] [--key KEY]
  creditd loadtest [--url http://127.0.0.1:8080] [--key KEY] [--duration 10s | --ops N]
                  [--concurrency 16] [--orgs 50] [--batch 100] [--setup=true]
                  [--mix single=60,batch=10,run=20,balance=10]

'verify' checks every ledger invariant and exits non-zero if one is broken.
'kpis' prints the KPI report as CSV (one line per group, then the totals);
'kpis journal' the revenue journal a general ledger imports (CSV).
'playbook' plans (diff), applies or exports the credit playbook through a
running server (default http://127.0.0.1:8080, key $CREDITD_ADMIN_KEY).
'loadtest' drives a running server's API (loopback addresses only) with an
OPERATOR key (default $CREDITD_ADMIN_KEY) and reports throughput, latency
and errors.

Roles: OPERATOR PRICING REVOPS ORG_ADMIN SERVICE. CREDITD_ADMIN_KEY at serve
time ensures an OPERATOR key with that secret exists. 'creditd serve -h'
lists the limits.

The database URL is sqlite://PATH or postgres://...; default from
CREDITD_DATABASE_URL, else sqlite://creditd.db. --db-max-conns bounds the
server's PostgreSQL connections (default $CREDITD_DB_MAX_CONNS, else 20).
--metrics-addr serves /metrics on that address only (default: on --addr).
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
	case "keys":
		return keys(ctx, args[1:], stdout)
	case "verify":
		return verify(ctx, args[1:], stdout)
	case "kpis":
		return kpis(ctx, args[1:], stdout)
	case "playbook":
		return playbookCmd(ctx, args[1:], stdout)
	case "loadtest":
		return loadtest(ctx, args[1:], stdout)
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

// dbMaxConnsDefault is --db-max-conns' default: CREDITD_DB_MAX_CONNS when it
// is a positive integer, else store.DefaultMaxConns.
func dbMaxConnsDefault() (int, error) {
	v := os.Getenv("CREDITD_DB_MAX_CONNS")
	if v == "" {
		return store.DefaultMaxConns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("CREDITD_DB_MAX_CONNS=%q: want a positive integer", v)
	}
	return n, nil
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
	defConns, err := dbMaxConnsDefault()
	if err != nil {
		return err
	}
	dbMaxConns := fs.Int("db-max-conns", defConns, "most PostgreSQL connections this server opens; size it so every replica, migrations and operators fit in the server's max_connections (default $CREDITD_DB_MAX_CONNS, else 20; SQLite always uses 1)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this address only (e.g. 127.0.0.1:9090), not on --addr; empty: /metrics on --addr")
	demo := fs.Bool("demo", false, "seed an example organisation, register, burn rule and grants")
	maxBatch := fs.Int("max-batch", ledger.DefaultMaxBatch, "largest recordUsageBatch accepted")
	noPlayground := fs.Bool("no-playground", false, "do not serve the GraphQL playground at /")
	noIntrospection := fs.Bool("no-introspection", false, "turn GraphQL introspection off")
	maxBody := fs.Int64("max-body", 1<<20, "largest request body in bytes")
	maxDepth := fs.Int("max-depth", 12, "deepest selection nesting of a query")
	complexity := fs.Int("max-complexity", 5000, "largest query complexity")
	rateLimit := fs.Float64("rate-limit", 1000, "requests per second per API key (negative: no limit)")
	rateBurst := fs.Int("rate-burst", 2000, "burst of requests per API key")
	closeEvery := fs.Duration("period-close-every", time.Minute, "how often to run the lifecycle jobs: period close, expired holds, unpaid credits and alerts (0: never; runPeriodClose still works)")
	holdTimeout := fs.Duration("hold-timeout", ledger.DefaultHoldTimeout, "how long an agent run's hold lives unsettled before it is released")
	paymentWindow := fs.Duration("payment-window", ledger.DefaultPaymentWindow, "how long credits bought or granted with pendingPayment wait for confirmPayment before their payment fails and their charge is reversed")
	allowPrivate := fs.Bool("webhooks-allow-private", false, "let webhook endpoints name loopback and private addresses (tests, a receiver on the same network)")
	webhookEvery := fs.Duration("webhook-every", 5*time.Second, "how often to send due webhook deliveries (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbMaxConns < 1 {
		return fmt.Errorf("--db-max-conns must be at least 1, got %d", *dbMaxConns)
	}
	url := databaseURL(*dbURL)
	db, err := store.OpenMigratedWith(ctx, url, store.Options{MaxConns: *dbMaxConns})
	if err != nil {
		return err
	}
	defer db.Close()
	svc := ledger.New(db, ledger.WithMaxBatch(*maxBatch), ledger.WithHoldTimeout(*holdTimeout), ledger.WithPaymentWindow(*paymentWindow),
		ledger.WithWebhooks(*allowPrivate, nil))
	if secret := os.Getenv("CREDITD_ADMIN_KEY"); secret != "" {
		created, err := svc.EnsureKey(ctx, "admin (CREDITD_ADMIN_KEY)", secret)
		if err != nil {
			return fmt.Errorf("CREDITD_ADMIN_KEY: %w", err)
		}
		slog.Info("admin key from CREDITD_ADMIN_KEY", "created", created)
	}
	if *demo {
		if err := seedDemo(ctx, svc, stdout); err != nil {
			return fmt.Errorf("demo seed: %w", err)
		}
	}
	metrics := observe.NewMetrics(db.SQL)
	var api http.Handler = graph.NewHandler(svc, db, graph.Options{
		DisablePlayground: *noPlayground, DisableIntrospection: *noIntrospection,
		MaxBodyBytes: *maxBody, MaxDepth: *maxDepth, ComplexityLimit: *complexity,
		RateLimit: *rateLimit, RateBurst: *rateBurst,
		Metrics: metrics,
	})
	servers := httpServers(api, metrics, *addr, *metricsAddr)
	listeners, err := listenAll(servers)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *closeEvery > 0 {
		go runPeriodCloses(ctx, svc, *closeEvery)
	}
	if *webhookEvery > 0 {
		go runWebhooks(ctx, svc, *webhookEvery)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	announce(stdout, db, url, *addr, *metricsAddr, !*noPlayground)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	return drain(servers, serveErr)
}

// announce logs and prints where the server listens.
func announce(stdout io.Writer, db *store.DB, url, addr, metricsAddr string, playground bool) {
	slog.Info("creditd serving", "addr", addr, "metrics_addr", metricsAddr, "database", db.Dialect,
		"db_max_conns", db.SQL.Stats().MaxOpenConnections, "playground", playground)
	fmt.Fprintf(stdout, "creditd listening on %s (database: %s)\n  playground: http://localhost%s/\n  graphql:    http://localhost%s/graphql\n", addr, redact(url), portOf(addr), portOf(addr))
	if metricsAddr != "" {
		fmt.Fprintf(stdout, "  metrics:    http://%s/metrics (not on %s)\n", metricsAddr, addr)
	}
}

// httpServers are the API's server on addr and, with metricsAddr, the
// metrics' own (then /metrics is not on the API's), with their timeouts.
func httpServers(api http.Handler, metrics *observe.Metrics, addr, metricsAddr string) []*http.Server {
	servers := []*http.Server{{Addr: addr}}
	if metricsAddr != "" {
		api = withoutMetrics(api)
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		servers = append(servers, &http.Server{Addr: metricsAddr, Handler: mux})
	}
	servers[0].Handler = api
	for _, srv := range servers {
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 30 * time.Second
		srv.WriteTimeout = 60 * time.Second
		srv.IdleTimeout = 120 * time.Second
	}
	return servers
}

// listenAll binds every address before any serves, so a taken port fails
// start-up.
func listenAll(servers []*http.Server) ([]net.Listener, error) {
	listeners := make([]net.Listener, len(servers))
	for i, srv := range servers {
		l, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			for _, l := range listeners[:i] {
				l.Close()
			}
			return nil, err
		}
		listeners[i] = l
	}
	return listeners, nil
}

// drain shuts the servers down, letting in-flight requests finish.
func drain(servers []*http.Server, serveErr error) error {
	slog.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
			serveErr = err
		}
	}
	return serveErr
}

// withoutMetrics answers 404 at /metrics: with --metrics-addr, metrics are
// served there and nowhere else.
func withoutMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// runPeriodCloses runs the lifecycle jobs on a schedule: release the holds
// of runs that timed out, fail the payment of credits unpaid past their
// payment window, raise the alerts rules watch, and open due subscription
// periods. Safe with
// several replicas: each happens once (see ledger.ReleaseExpiredHolds,
// ledger.FailUnpaid, ledger.EvaluateAlerts and ledger.RunPeriodClose).
func runPeriodCloses(ctx context.Context, svc *ledger.Service, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := svc.ReleaseExpiredHolds(ctx, svc.Now()); err != nil && ctx.Err() == nil {
			slog.Error("release expired holds", "error", err)
		} else if n > 0 {
			slog.Info("released expired holds", "holds", n)
		}
		if n, err := svc.FailUnpaid(ctx, svc.Now()); err != nil && ctx.Err() == nil {
			slog.Error("fail unpaid credits", "error", err)
		} else if n > 0 {
			slog.Info("failed unpaid credits", "grants", n)
		}
		if rep, err := svc.EvaluateAlerts(ctx, svc.Now()); err != nil && ctx.Err() == nil {
			slog.Error("alerts", "error", err)
		} else if rep.Fired > 0 {
			slog.Info("alerts", "pools", rep.Pools, "fired", rep.Fired)
		}
		rep, err := svc.RunPeriodClose(ctx, svc.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			slog.Error("period close", "error", err)
		case rep.SubscriptionsClosed > 0:
			slog.Info("period close", "subscriptions", rep.SubscriptionsClosed, "expired", rep.Expired.String(),
				"rolled_over", rep.RolledOver.String(), "allocated", rep.Allocated.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runWebhooks sends due webhook deliveries on a schedule; safe with
// several replicas (see ledger.DeliverWebhooks).
func runWebhooks(ctx context.Context, svc *ledger.Service, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := svc.DeliverWebhooks(ctx, svc.Now()); err != nil && ctx.Err() == nil {
			slog.Error("webhooks", "error", err)
		} else if n > 0 {
			slog.Info("webhooks", "sent", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func keys(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: creditd keys create --role ROLE --name NAME [--organization ID]")
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	dbURL := fs.String("database-url", "", "sqlite://PATH or postgres://... (default $CREDITD_DATABASE_URL or "+store.DefaultURL+")")
	role := fs.String("role", "", "OPERATOR, PRICING, REVOPS, ORG_ADMIN or SERVICE")
	name := fs.String("name", "", "what the key is for")
	org := fs.Int("organization", 0, "the organisation an ORG_ADMIN or SERVICE key is confined to")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r := credit.Role(*role)
	if !slices.Contains(r.Values(), *role) {
		return fmt.Errorf("--role: %q is not a valid Role", *role)
	}
	db, err := store.OpenMigrated(ctx, databaseURL(*dbURL))
	if err != nil {
		return err
	}
	defer db.Close()
	in := ledger.KeyInput{Name: *name, Role: r}
	if *org != 0 {
		in.OrganizationID = org
	}
	k, secret, err := ledger.New(db).CreateKey(ctx, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s key %d %q; it is shown once:\n%s\n", k.Role, k.ID, k.Name, secret)
	return nil
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
