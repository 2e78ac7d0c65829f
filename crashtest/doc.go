// Package crashtest holds a crash-and-restart test of the real creditd
// binary: it builds cmd/creditd, drives concurrent recordUsage calls over
// loopback HTTP, kills the server with SIGKILL at random moments, restarts
// it on the same database (PostgreSQL and an SQLite file), retries every
// call whose outcome was lost with the same payload, and then checks the
// database directly: each acknowledged idempotency key has exactly one
// usage event, no event exists that no client sent, the grant's remaining
// credits match the events, and the ledger's invariants hold
// (ledger.Service.Verify). On PostgreSQL it also terminates the server's
// database connections under load and checks that the server recovers by
// itself.
//
// TestPostgresRestart restarts PostgreSQL itself under the same load while
// one creditd process keeps running: pg_ctl restart -m fast, pg_ctl restart
// -m immediate (crash-like, WAL recovery at start), and a stop, a pause of
// 1.5 s and a start. After each, calls must be acknowledged again within
// 15 s of PostgreSQL accepting connections, without restarting creditd;
// every call whose outcome was lost is retried with the same payload and
// idempotency key, fresh calls must all succeed, and at the end the database
// is checked as above. The shared PostgreSQL other packages test against is
// never restarted: the test initdbs a private cluster (trust auth, fsync on)
// into a temporary directory and runs it on a free loopback port, as the
// postgres OS user when the test runs as root, and stops it (immediate) and
// removes it when the test ends. It finds initdb, pg_ctl and postgres in
// $CREDITD_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else on
// $PATH; without them it skips loudly, and under CI=true it fails.
//
// TestPeriodCloseCrash proves the period-close job exactly-once under
// SIGKILL, on PostgreSQL and an SQLite file. Before any server runs, it
// sets up in-process (ledger.Service) a daily plan (10 included credits, a
// platform fee, CAPPED rollover, HARD overage) and 200 organisations, each
// with an ACCOUNT pool subscribed 40 days ago: period 0 opens at subscribe
// and 8,000 periods are due. The real server (--period-close-every 200ms)
// catches up on the backlog; it is SIGKILLed three times at random moments
// of the catch-up (once a random 10-30 % of what is left has been opened,
// plus a random few milliseconds) and restarted on the same database; on
// PostgreSQL two servers then race on the same subscriptions and one of
// them is killed. On SQLite the test's own handle is closed before each
// kill, so the restarted server is the first to open the file and recovers
// its WAL. Once no subscription is due, the database is checked directly:
// every subscription has periods 0..40 (the count its engine.Schedule
// gives), each exactly once with its bounds and the allocation, rollover
// and expiry the rollover rule gives; each pool has exactly one allocation
// grant (one GRANT entry) and at most one rollover grant per period, each
// period's close entries once, the balance the rule leaves; each period has
// exactly one PLATFORM_FEE charge; the job run again changes nothing, and
// ledger.Service.Verify finds no violation. It logs which process opened
// how many periods (by the rows' created_at, the start of the run that
// opened them) and how many were opened by each kill.
//
// The package has no non-test code. The tests are bounded (each well under
// a minute and a half) and run in the normal suite; -short skips them.
// CRASHTEST_SEED=<n> replays the random moments of an earlier run.
package crashtest
