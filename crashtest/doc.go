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
// The package has no non-test code. The test is bounded (well under a
// minute and a half) and runs in the normal suite; -short skips it.
// CRASHTEST_SEED=<n> replays the random kill moments of an earlier run.
package crashtest
