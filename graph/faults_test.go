package graph_test

// Errors tell the truth: input the databases cannot store alike is
// VALIDATION on both dialects; a database that is down, restarting or out
// of connections is UNAVAILABLE (HTTP 503, extensions.retryable), retried
// first where that is safe; anything else that is not the caller's fault is
// INTERNAL. Faults are injected between the pool and the driver
// (testdb.OpenFaulty), and one is PostgreSQL's own "too many connections".

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// reply is one HTTP answer of /graphql.
type reply struct {
	status int
	header http.Header
	data   json.RawMessage
	errs   []gqlErr
}

func (e *env) call(query string, vars map[string]any) reply {
	e.t.Helper()
	return callAt(e.t, e.srv, e.key, query, vars)
}

func callAt(t *testing.T, srv *httptest.Server, key, query string, vars map[string]any) reply {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlErr        `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode (HTTP %d): %v", resp.StatusCode, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, data: out.Data, errs: out.Errors}
}

// wantUnavailable asserts a 503 whose one error is UNAVAILABLE with
// extensions.retryable == retryable.
func wantUnavailable(t *testing.T, what string, r reply, retryable bool) {
	t.Helper()
	ge := wantErr(t, what, r.errs, "UNAVAILABLE")
	wantExt(t, what, ge, "retryable", retryable)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("%s: HTTP %d, Retry-After %q; want 503 with Retry-After", what, r.status, r.header.Get("Retry-After"))
	}
}

func (e *env) available(pool string) string {
	e.t.Helper()
	var b struct {
		Pool struct {
			Balance balanceT `json:"balance"`
		} `json:"pool"`
	}
	e.must(qBalance, map[string]any{"id": pool}, &b)
	return b.Pool.Balance.Available
}

// TestTextWithNUL: a NUL byte in any string input is VALIDATION naming the
// field, on PostgreSQL (which cannot store it) and SQLite (which could)
// alike, and nothing is written.
func TestTextWithNUL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		e.grant(pool, "ON_DEMAND", "50", nil)
		usage := func(key string, extra ...any) map[string]any {
			in := map[string]any{"idempotencyKey": key, "organizationId": org, "action": "agent.run"}
			for i := 0; i+1 < len(extra); i += 2 {
				in[extra[i].(string)] = extra[i+1]
			}
			return in
		}
		idx := func(i int) *int { return &i }
		cases := []struct {
			name  string
			query string
			vars  map[string]any
			field string
			index *int
		}{
			{"action", qRecord, map[string]any{"in": usage("nul-1", "action", "agent\x00run")}, "action", nil},
			{"idempotency key", qRecord, map[string]any{"in": usage("nul\x002")}, "idempotencyKey", nil},
			{"run id", qRecord, map[string]any{"in": usage("nul-3", "runId", "r\x00", "status", "STARTED")}, "runId", nil},
			{"property value", qRecord, map[string]any{"in": usage("nul-4", "properties", map[string]any{"note": []any{"ok", "a\x00b"}})}, "properties", nil},
			{"property key", qRecord, map[string]any{"in": usage("nul-5", "properties", map[string]any{"k\x00": 1})}, "properties", nil},
			{"batch item", qRecordBatch, map[string]any{"ins": []any{usage("nul-6a"), usage("nul-6b", "action", "\x00")}}, "action", idx(1)},
			{"string argument", qCreateOrg, map[string]any{"name": "Ac\x00me"}, "name", nil},
			{"optional string argument", qCreateOrg, map[string]any{"name": "Initech", "segment": "s\x00"}, "segment", nil},
			{"rule text", qSavePolicy, map[string]any{"in": map[string]any{"name": "p", "kind": "BURN", "expression": "weight\x00"}}, "expression", nil},
		}
		for _, c := range cases {
			r := e.call(c.query, c.vars)
			ge := wantErr(t, c.name, r.errs, "VALIDATION")
			wantExt(t, c.name, ge, "field", c.field)
			if c.index != nil {
				wantExt(t, c.name, ge, "index", *c.index)
			} else if _, ok := ge.Extensions["index"]; ok {
				t.Errorf("%s: extensions.index = %v, want none", c.name, ge.Extensions["index"])
			}
			if r.status != http.StatusOK {
				t.Errorf("%s: HTTP %d, want 200", c.name, r.status)
			}
		}
		if got := e.available(pool); got != "50" {
			t.Errorf("balance after refused inputs = %s, want 50 (nothing charged)", got)
		}
		var res struct {
			R resultT `json:"recordUsage"`
		}
		e.must(qRecord, map[string]any{"in": usage("nul-1")}, &res)
		if res.R.Duplicate || res.R.Credits != "4" {
			t.Errorf("the refused key, sent clean: %+v, want a first charge of 4", res.R)
		}
	})
}

// TestDatabaseFaults: each kind of database fault, injected under the real
// API, gets its true answer; retries happen only where they are safe.
func TestDatabaseFaults(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(testdb.Name(d), func(t *testing.T) {
			db, f := testdb.OpenFaulty(t, d)
			t.Parallel()
			e := newEnv(t, db)
			e.publishPricing()
			org, pool := e.newOrg("Acme", "")
			e.grant(pool, "ON_DEMAND", "50", nil)
			reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			grant := func(amount string) reply {
				return e.call(qGrant, map[string]any{"in": map[string]any{"poolId": pool, "creditType": "ON_DEMAND", "amount": amount}})
			}
			record := map[string]any{"in": map[string]any{"idempotencyKey": "fault-1", "organizationId": org, "action": "agent.run"}}

			// The key lookup, before GraphQL runs.
			f.Fail("api_keys", 1, reset)
			wantUnavailable(t, "key lookup, connection reset", e.call(qBalance, map[string]any{"id": pool}), true)
			f.Fail("api_keys", 1, &pq.Error{Code: "53300"})
			wantUnavailable(t, "key lookup, too many connections", e.call(qBalance, map[string]any{"id": pool}), true)
			f.Fail("api_keys", 1, errors.New("disk on fire"))
			r := e.call(qBalance, map[string]any{"id": pool})
			if ge := wantErr(t, "key lookup, a bug", r.errs, "INTERNAL"); ge.Message != "internal error" || r.status != http.StatusInternalServerError {
				t.Errorf("key lookup, a bug: HTTP %d %q, want 500 with a generic message", r.status, ge.Message)
			}

			// A read.
			f.Fail("pools", -1, reset)
			wantUnavailable(t, "read, connection reset", e.call(qBalance, map[string]any{"id": pool}), true)
			f.Clear()

			// A usage event while the database refuses transactions: nothing
			// written, so the same event later is a first charge.
			f.Fail("BEGIN", -1, &pq.Error{Code: "57P03"})
			wantUnavailable(t, "recordUsage, cannot connect now", e.call(qRecord, record), true)
			f.Clear()
			var res struct {
				R resultT `json:"recordUsage"`
			}
			e.must(qRecord, record, &res)
			if res.R.Duplicate || res.R.Credits != "4" {
				t.Errorf("recordUsage resent after UNAVAILABLE: %+v, want a first charge of 4", res.R)
			}
			balance := 46

			// Faults before the commit are retried: the caller sees success,
			// and the grant happened once.
			begin := f.Fail("BEGIN", 2, reset)
			if r := grant("1"); len(r.errs) > 0 || r.status != http.StatusOK {
				t.Errorf("grant while BEGIN fails twice: HTTP %d %v, want it retried to success", r.status, r.errs)
			}
			if begin.Hits() < 3 {
				t.Errorf("BEGIN tried %d times, want at least 3", begin.Hits())
			}
			f.Clear()
			f.Fail("INSERT INTO", 2, driver.ErrBadConn)
			if r := grant("2"); len(r.errs) > 0 {
				t.Errorf("grant while its first statement fails twice: %v, want it retried to success", r.errs)
			}
			f.Clear()
			balance += 3
			if got := e.available(pool); got != strconv.Itoa(balance) {
				t.Errorf("balance = %s, want %d (each retried grant applied once)", got, balance)
			}

			// A connection lost at the commit: the outcome is unknown to the
			// server, so it is not retried and not called retryable. (Here
			// the commit happened: the grant is there, once.)
			commit := f.LoseCommitAck(1, driver.ErrBadConn)
			wantUnavailable(t, "grant, commit acknowledgement lost", grant("5"), false)
			if commit.Hits() != 1 {
				t.Errorf("commit ran %d times, want 1 (no retry after a commit)", commit.Hits())
			}
			f.Clear()
			balance += 5
			if got := e.available(pool); got != strconv.Itoa(balance) {
				t.Errorf("balance = %s, want %d", got, balance)
			}

			// Text the database refuses, past the input checks: VALIDATION.
			f.Fail("INSERT INTO", 1, &pq.Error{Code: "22021"})
			r = e.call(qCreateOrg, map[string]any{"name": "Globex"})
			wantErr(t, "22021 from the database", r.errs, "VALIDATION")
			// A fault that is nobody's input: INTERNAL, never VALIDATION.
			f.Fail("INSERT INTO", 1, errors.New("disk on fire"))
			r = e.call(qCreateOrg, map[string]any{"name": "Globex"})
			if ge := wantErr(t, "a bug under a mutation", r.errs, "INTERNAL"); ge.Message != "internal error" || r.status != http.StatusOK {
				t.Errorf("a bug under a mutation: HTTP %d %q, want 200 with a generic message", r.status, ge.Message)
			}
			f.Clear()
			e.must(qCreateOrg, map[string]any{"name": "Globex"}, nil)
		})
	}
}

// TestClosedPool: a server whose pool is closed (shutting down) answers
// UNAVAILABLE, not a bad key.
func TestClosedPool(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		db.Close()
		wantUnavailable(t, "closed pool", e.call(`{ __typename }`, nil), true)
	})
}

// TestOutOfConnections: PostgreSQL itself refusing a connection (53300)
// while the pool's one connection is busy: 503 UNAVAILABLE, retryable.
func TestOutOfConnections(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewURL(t, dialect.Postgres)
	admin, err := store.OpenWith(ctx, url, store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	_, key, err := ledger.New(admin).CreateKey(ctx, ledger.KeyInput{Name: "ops", Role: credit.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	limited, err := store.OpenWith(ctx, testdb.LimitedURL(t, url, 1), store.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	held, err := limited.SQL.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	srv := httptest.NewServer(graph.NewHandler(ledger.New(limited), limited, graph.Options{RateLimit: -1}))
	defer srv.Close()
	wantUnavailable(t, "PostgreSQL out of connections", callAt(t, srv, key, `{ __typename }`, nil), true)
}
