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
// The package has no non-test code. The tests are bounded (each well under
// a minute and a half) and run in the normal suite; -short skips them.
// CRASHTEST_SEED=<n> replays the random moments of an earlier run.
package crashtest
