package graph_test

// FuzzRecordUsageGraphQL sends fuzzed GraphQL variables to recordUsage and
// recordUsageBatch through the real HTTP handler (graph.NewHandler) on one
// SQLite database per fuzz process, and checks that every answer is a
// documented one and that the ledger's invariants survive whatever the
// fuzzer sends.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/testdb"
)

const fzResultFields = `decision credits overage reserved borrowed uncovered duplicate reason reasonCode
  draws { grant { id } amount }
  event { id idempotencyKey action status credits decision runId pool { id } }`

const (
	fzRecord      = `mutation($in: UsageInput!) { recordUsage(input: $in) { ` + fzResultFields + ` } }`
	fzRecordBatch = `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { ` + fzResultFields + ` } }`
)

// fzCodes are the extensions.code values the API documents (credit.Code,
// gqlgen's own codes kept by presentError, and TIMEOUT); INTERNAL is left
// out on purpose: no input may produce it.
var fzCodes = map[string]bool{
	string(credit.CodeValidation): true, string(credit.CodeNotFound): true, string(credit.CodeUnknownAction): true,
	string(credit.CodeNoRegister): true, string(credit.CodeRuleCompile): true, string(credit.CodeRuleRuntime): true,
	string(credit.CodeIdempotencyConflict): true, string(credit.CodeInsufficientCredits): true,
	string(credit.CodeBudgetExceeded): true, string(credit.CodeBatchTooLarge): true, string(credit.CodeConflict): true,
	string(credit.CodeSubscriptionOverlap): true, string(credit.CodeUnknownRun): true, string(credit.CodeRunSettled): true,
	string(credit.CodeRunStarted): true, string(credit.CodeNoOnDemandPrice): true, string(auth.CodeUnauthenticated): true,
	string(auth.CodeKeyMalformed): true, string(auth.CodeKeyUnknown): true, string(auth.CodeKeyRevoked): true,
	string(auth.CodeForbidden): true, string(graph.CodeRateLimited): true, string(graph.CodeQueryTooDeep): true,
	string(graph.CodeRequestTooLarge): true,
	"GRAPHQL_PARSE_FAILED":            true, "GRAPHQL_VALIDATION_FAILED": true, "COMPLEXITY_LIMIT_EXCEEDED": true, "TIMEOUT": true,
}

// fzStatuses are the HTTP statuses a request with a valid key may get: 200,
// 400 (a body that is not a GraphQL request), 413 (over the body limit) and
// 422 (a request gqlgen refuses before running it).
var fzStatuses = map[int]bool{http.StatusOK: true, http.StatusBadRequest: true, http.StatusRequestEntityTooLarge: true, http.StatusUnprocessableEntity: true}

// fzVerifyEvery: the ledger invariants are checked every this many inputs
// (and once more when the target ends).
const fzVerifyEvery = 64

// fzMaxBatch is the service's batch limit: small, so that BATCH_TOO_LARGE is
// within the fuzzer's reach.
const fzMaxBatch = 8

type fzEnv struct {
	h        http.Handler
	svc      *ledger.Service
	operator string
	service  string // a SERVICE key of organisation A
	// placeholders in the fuzz inputs, replaced by the ids of this database
	ids   [][2][]byte
	runs  atomic.Int64
	mu    sync.Mutex // one request at a time: the invariants are checked between them
	fatal func(format string, args ...any)
}

type fzErr struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func (e *fzEnv) send(key, query string, vars []byte) (int, []byte) {
	q, _ := json.Marshal(query)
	body := make([]byte, 0, len(q)+len(vars)+32)
	body = append(body, `{"query":`...)
	body = append(body, q...)
	body = append(body, `,"variables":`...)
	body = append(body, vars...)
	body = append(body, '}')
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// must runs a setup operation and returns its data.
func (e *fzEnv) must(query string, vars map[string]any) map[string]any {
	raw, err := json.Marshal(vars)
	if err != nil {
		e.fatal("marshal: %v", err)
	}
	status, body := e.send(e.operator, query, raw)
	var resp struct {
		Data   map[string]any `json:"data"`
		Errors []fzErr        `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK || len(resp.Errors) > 0 {
		e.fatal("setup %s: HTTP %d %s (%v)", query, status, body, err)
	}
	return resp.Data
}

func (e *fzEnv) id(data map[string]any, field string) string {
	m, _ := data[field].(map[string]any)
	id, _ := m["id"].(string)
	if id == "" {
		e.fatal("setup %s: no id in %v", field, data)
	}
	return id
}

func (e *fzEnv) verify(tb testing.TB, what string) {
	vs, err := e.svc.Verify(context.Background())
	if err != nil {
		tb.Fatalf("%s: Verify: %v", what, err)
	}
	for _, v := range vs {
		tb.Errorf("%s: ledger invariant violated: %s", what, v)
	}
}

func newFzEnv(f *testing.F) *fzEnv {
	db := testdb.Open(f, dialect.SQLite)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	svc := ledger.New(db, ledger.WithClock(func() time.Time { return now }), ledger.WithMaxBatch(fzMaxBatch))
	e := &fzEnv{h: graph.NewHandler(svc, db, graph.Options{RateLimit: -1}), svc: svc, fatal: f.Fatalf}
	ctx := context.Background()
	_, key, err := svc.CreateKey(ctx, ledger.KeyInput{Name: "fuzz operator", Role: credit.RoleOperator})
	if err != nil {
		f.Fatalf("create operator key: %v", err)
	}
	e.operator = key

	e.must(`mutation($name: String!, $weights: [WeightInput!]!) { saveWeightRegisterDraft(name: $name, weights: $weights) { id } }`,
		map[string]any{"name": "default", "weights": []map[string]any{
			{"action": "agent.run", "credits": "4"},
			{"action": "doc.summarize", "credits": "1", "expression": `has(event.properties.pages) ? decimal(1) + decimal(event.properties.pages) * decimal("0.25") : decimal(1)`},
			{"action": "strict.pages", "credits": "0", "expression": `decimal(event.properties.pages) * decimal("0.5")`},
			{"action": "tenth", "credits": "0.1"},
			{"action": "free", "credits": "0"},
		}})
	e.must(`mutation($name: String!, $v: Int!) { publishWeightRegister(name: $name, version: $v) { version } }`,
		map[string]any{"name": "default", "v": 1})
	e.must(`mutation($in: PolicyInput!) { savePolicyDraft(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "burn", "kind": "BURN", "expression": `event.status == "SUCCEEDED" ? weight * event.quantity
  : event.status == "PARTIAL" ? weight * event.quantity * event.completion
  : event.status == "FAILED" ? weight * decimal("0.2") : decimal(0)`}})
	e.must(`mutation($name: String!, $v: Int!) { publishPolicy(name: $name, version: $v) { version } }`,
		map[string]any{"name": "burn", "v": 1})
	// A register with a draft only: NO_REGISTER for its organisation.
	e.must(`mutation($name: String!, $weights: [WeightInput!]!) { saveWeightRegisterDraft(name: $name, weights: $weights) { id } }`,
		map[string]any{"name": "drafty", "weights": []map[string]any{{"action": "agent.run", "credits": "1"}}})

	org := func(name, reg string) (string, string) {
		o := e.id(e.must(`mutation($name: String!, $reg: String) { createOrganization(name: $name, segment: "smb", registerName: $reg) { id } }`,
			map[string]any{"name": name, "reg": reg}), "createOrganization")
		p := e.id(e.must(`mutation($org: ID!, $name: String!) { createPool(organizationId: $org, kind: ACCOUNT, name: $name) { id } }`,
			map[string]any{"org": o, "name": name + " account"}), "createPool")
		return o, p
	}
	grant := func(pool, creditType, amount string, expires *time.Time) {
		in := map[string]any{"poolId": pool, "creditType": creditType, "amount": amount}
		if expires != nil {
			in["expiresAt"] = expires.Format(time.RFC3339)
		}
		e.must(`mutation($in: GrantInput!) { grantCredits(input: $in) { id } }`, map[string]any{"in": in})
	}
	orgA, poolA := org("Acme", "default")
	orgB, poolB := org("Globex", "default")
	orgC, poolC := org("Initech", "drafty")
	soon := now.Add(48 * time.Hour)
	grant(poolA, "SUBSCRIPTION", "100", &soon)
	grant(poolA, "ON_DEMAND", "1000000000", nil)
	grant(poolA, "PROMOTIONAL", "0.3", nil)
	grant(poolB, "ON_DEMAND", "50", nil)
	grant(poolC, "ON_DEMAND", "50", nil)
	teamA := e.id(e.must(`mutation($org: ID!, $parent: ID) { createPool(organizationId: $org, kind: TEAM, name: "team", parentId: $parent) { id } }`,
		map[string]any{"org": orgA, "parent": poolA}), "createPool")
	grant(teamA, "ON_DEMAND", "10", nil)

	aID, err := strconv.Atoi(orgA)
	if err != nil {
		f.Fatalf("organisation id %q: %v", orgA, err)
	}
	if _, e.service, err = svc.CreateKey(ctx, ledger.KeyInput{Name: "fuzz service", Role: credit.RoleService, OrganizationID: &aID}); err != nil {
		f.Fatalf("create service key: %v", err)
	}
	for _, p := range [][2]string{{"@ORG_A@", orgA}, {"@POOL_A@", poolA}, {"@TEAM_A@", teamA}, {"@ORG_B@", orgB}, {"@POOL_B@", poolB}, {"@ORG_C@", orgC}, {"@POOL_C@", poolC}} {
		e.ids = append(e.ids, [2][]byte{[]byte(p[0]), []byte(p[1])})
	}
	e.verify(f, "after setup")
	f.Cleanup(func() { e.verify(f, "after fuzzing") })
	return e
}

// fzDecimal parses a non-negative decimal the API wrote.
func fzDecimal(t *testing.T, what string, v any) decimal.Decimal {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s = %v (%T), want a decimal string", what, v, v)
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.IsNegative() || d.String() != s {
		t.Fatalf("%s = %q, want a canonical decimal >= 0 (%v)", what, s, err)
	}
	return d
}

// checkResult checks one UsageResult of a successful response.
func checkResult(t *testing.T, what string, r map[string]any) {
	t.Helper()
	credits := fzDecimal(t, what+".credits", r["credits"])
	overage := fzDecimal(t, what+".overage", r["overage"])
	fzDecimal(t, what+".reserved", r["reserved"])
	borrowed := fzDecimal(t, what+".borrowed", r["borrowed"])
	uncovered := fzDecimal(t, what+".uncovered", r["uncovered"])
	ev, ok := r["event"].(map[string]any)
	if !ok {
		t.Fatalf("%s: event = %v", what, r["event"])
	}
	if ev["decision"] != r["decision"] {
		t.Fatalf("%s: decision %v, event.decision %v", what, r["decision"], ev["decision"])
	}
	if evc := fzDecimal(t, what+".event.credits", ev["credits"]); !evc.Equal(credits) {
		t.Fatalf("%s: credits %s, event.credits %s", what, credits, evc)
	}
	draws, _ := r["draws"].([]any)
	drawn := decimal.Zero
	for i, d := range draws {
		dm, _ := d.(map[string]any)
		a := fzDecimal(t, what+".draws["+strconv.Itoa(i)+"].amount", dm["amount"])
		if !a.IsPositive() {
			t.Fatalf("%s: draw %d of %s", what, i, a)
		}
		drawn = drawn.Add(a)
	}
	switch r["decision"] {
	case "DENIED":
		if !credits.IsZero() || len(draws) != 0 {
			t.Fatalf("%s: DENIED with credits %s and %d draws", what, credits, len(draws))
		}
		if rc, _ := r["reasonCode"].(string); !fzCodes[rc] {
			t.Fatalf("%s: DENIED with reasonCode %v", what, r["reasonCode"])
		}
	case "ALLOWED", "DEGRADED":
		// Outside runs (whose terminal event settles a hold), what was
		// charged is what was drawn, plus overage and borrowing.
		if ev["runId"] == nil && ev["status"] != "STARTED" {
			if sum := drawn.Add(overage).Add(borrowed).Add(uncovered); !sum.Equal(credits) {
				t.Fatalf("%s: draws %s + overage %s + borrowed %s + uncovered %s != credits %s", what, drawn, overage, borrowed, uncovered, credits)
			}
		}
	default:
		t.Fatalf("%s: decision %v", what, r["decision"])
	}
}

// FuzzRecordUsageGraphQL: flags bit 0 picks recordUsageBatch (variables
// {"ins": [...]}) over recordUsage ({"in": {...}}), bit 1 a SERVICE key of
// organisation A over the OPERATOR key. In vars, @ORG_A@, @POOL_A@,
// @TEAM_A@, @ORG_B@, @POOL_B@, @ORG_C@ and @POOL_C@ stand for this
// database's ids.
func FuzzRecordUsageGraphQL(f *testing.F) {
	for _, s := range []struct {
		flags byte
		vars  string
	}{
		// valid
		{0, `{"in":{"idempotencyKey":"k1","organizationId":"@ORG_A@","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"k2","organizationId":"@ORG_A@","poolId":"@TEAM_A@","action":"doc.summarize","status":"PARTIAL","quantity":"2.5","completion":"0.5","attempt":2,"properties":{"pages":8},"occurredAt":"2026-03-02T11:00:00Z"}}`},
		{0, `{"in":{"idempotencyKey":"k3","organizationId":"@ORG_A@","action":"tenth","status":"FAILED","quantity":"1.37"}}`},
		{0, `{"in":{"idempotencyKey":"run-1-start","organizationId":"@ORG_A@","runId":"run-1","action":"agent.run","status":"STARTED","quantity":"2"}}`},
		{0, `{"in":{"idempotencyKey":"run-1-end","organizationId":"@ORG_A@","runId":"run-1","action":"agent.run","status":"PARTIAL","quantity":"2","completion":"0.5"}}`},
		{0, `{"in":{"idempotencyKey":"run-2-end","organizationId":"@ORG_A@","runId":"run-2","action":"agent.run","status":"SUCCEEDED"}}`},
		{0, `{"in":{"idempotencyKey":"b-big","organizationId":"@ORG_B@","action":"agent.run","quantity":"1000"}}`},
		{0, `{"in":{"idempotencyKey":"free","organizationId":"@ORG_A@","action":"free"}}`},
		{2, `{"in":{"idempotencyKey":"svc","organizationId":"@ORG_A@","action":"agent.run"}}`},
		{2, `{"in":{"idempotencyKey":"svc-b","organizationId":"@ORG_B@","action":"agent.run"}}`},
		{1, `{"ins":[{"idempotencyKey":"b1","organizationId":"@ORG_A@","action":"agent.run"},{"idempotencyKey":"b2","organizationId":"@ORG_A@","action":"doc.summarize","properties":{"pages":4}},{"idempotencyKey":"b1","organizationId":"@ORG_A@","action":"agent.run"}]}`},
		{1, `{"ins":[]}`},
		{1, `{"ins":[{"idempotencyKey":"c1","organizationId":"@ORG_A@","action":"agent.run"},{"idempotencyKey":"c1","organizationId":"@ORG_A@","action":"agent.run","quantity":"2"}]}`},
		{1, `{"ins":[{"idempotencyKey":"d1","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d2","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d3","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d4","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d5","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d6","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d7","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d8","organizationId":"@ORG_A@","action":"x"},{"idempotencyKey":"d9","organizationId":"@ORG_A@","action":"x"}]}`},
		{3, `{"ins":[{"idempotencyKey":"e1","organizationId":"@ORG_A@","action":"agent.run"},{"idempotencyKey":"e2","organizationId":"@ORG_B@","action":"agent.run"}]}`},
		// missing fields
		{0, `{"in":{"organizationId":"@ORG_A@","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"m2","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"m3","organizationId":"@ORG_A@"}}`},
		{0, `{"in":{}}`},
		{0, `{}`},
		{0, `null`},
		{0, ``},
		{1, `{"ins":[null]}`},
		// negative, zero and out-of-range numbers
		{0, `{"in":{"idempotencyKey":"n1","organizationId":"@ORG_A@","action":"agent.run","quantity":"-1"}}`},
		{0, `{"in":{"idempotencyKey":"n2","organizationId":"@ORG_A@","action":"agent.run","quantity":"0"}}`},
		{0, `{"in":{"idempotencyKey":"n3","organizationId":"@ORG_A@","action":"agent.run","completion":"1.5","status":"PARTIAL"}}`},
		{0, `{"in":{"idempotencyKey":"n4","organizationId":"@ORG_A@","action":"agent.run","attempt":-7}}`},
		{0, `{"in":{"idempotencyKey":"n5","organizationId":"@ORG_A@","action":"agent.run","attempt":99999999999999999999}}`},
		{0, `{"in":{"idempotencyKey":"n6","organizationId":"@ORG_A@","action":"agent.run","quantity":1e400}}`},
		{0, `{"in":{"idempotencyKey":"n7","organizationId":"@ORG_A@","action":"agent.run","quantity":"1e-41"}}`},
		{0, `{"in":{"idempotencyKey":"n8","organizationId":"@ORG_A@","action":"agent.run","quantity":"99999999999999999999999999999999999999"}}`},
		{0, `{"in":{"idempotencyKey":"n9","organizationId":"@ORG_A@","action":"agent.run","occurredAt":"2099-01-01T00:00:00Z"}}`},
		{0, `{"in":{"idempotencyKey":"n10","organizationId":"@ORG_A@","action":"agent.run","occurredAt":"1970-01-01T00:00:00Z"}}`},
		{0, `{"in":{"idempotencyKey":"n11","organizationId":"@ORG_A@","action":"agent.run","occurredAt":"yesterday"}}`},
		// huge strings
		{0, `{"in":{"idempotencyKey":"` + string(bytes.Repeat([]byte("k"), 5000)) + `","organizationId":"@ORG_A@","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"h2","organizationId":"@ORG_A@","action":"` + string(bytes.Repeat([]byte("a."), 3000)) + `"}}`},
		{0, `{"in":{"idempotencyKey":"h3","organizationId":"@ORG_A@","runId":"` + string(bytes.Repeat([]byte("r"), 5000)) + `","action":"agent.run","status":"STARTED"}}`},
		{0, `{"in":{"idempotencyKey":"","organizationId":"@ORG_A@","action":""}}`},
		{0, `{"in":{"idempotencyKey":"h5\u0000\ud800","organizationId":"@ORG_A@","action":"agent.run\n"}}`},
		// unknown action, enum, rules failing at run time
		{0, `{"in":{"idempotencyKey":"u1","organizationId":"@ORG_A@","action":"no.such.action"}}`},
		{0, `{"in":{"idempotencyKey":"u2","organizationId":"@ORG_A@","action":"agent.run","status":"BOGUS"}}`},
		{0, `{"in":{"idempotencyKey":"u3","organizationId":"@ORG_A@","action":"strict.pages","properties":{"chars":10}}}`},
		{0, `{"in":{"idempotencyKey":"u4","organizationId":"@ORG_A@","action":"doc.summarize","properties":{"pages":"eight"}}}`},
		{0, `{"in":{"idempotencyKey":"u5","organizationId":"@ORG_A@","action":"doc.summarize","properties":{"pages":-1e300}}}`},
		// wrong organisation or pool
		{0, `{"in":{"idempotencyKey":"o1","organizationId":"999999","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"o2","organizationId":"-1","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"o3","organizationId":"@ORG_A@","poolId":"@POOL_B@","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"o4","organizationId":"@ORG_C@","action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"o5","organizationId":1,"action":"agent.run"}}`},
		{0, `{"in":{"idempotencyKey":"o6","organizationId":"abc","action":"agent.run"}}`},
		// non-numeric decimals
		{0, `{"in":{"idempotencyKey":"d1","organizationId":"@ORG_A@","action":"agent.run","quantity":"NaN"}}`},
		{0, `{"in":{"idempotencyKey":"d2","organizationId":"@ORG_A@","action":"agent.run","quantity":"12.3.4"}}`},
		{0, `{"in":{"idempotencyKey":"d3","organizationId":"@ORG_A@","action":"agent.run","quantity":"Infinity"}}`},
		{0, `{"in":{"idempotencyKey":"d4","organizationId":"@ORG_A@","action":"agent.run","quantity":true}}`},
		{0, `{"in":{"idempotencyKey":"d5","organizationId":"@ORG_A@","action":"agent.run","completion":{"x":1}}}`},
		// deep and odd JSON properties
		{0, `{"in":{"idempotencyKey":"p1","organizationId":"@ORG_A@","action":"agent.run","properties":` + string(bytes.Repeat([]byte(`{"a":`), 500)) + `1` + string(bytes.Repeat([]byte(`}`), 500)) + `}}`},
		{0, `{"in":{"idempotencyKey":"p2","organizationId":"@ORG_A@","action":"agent.run","properties":` + string(bytes.Repeat([]byte(`[`), 2000)) + string(bytes.Repeat([]byte(`]`), 2000)) + `}}`},
		{0, `{"in":{"idempotencyKey":"p3","organizationId":"@ORG_A@","action":"agent.run","properties":[1,2,3]}}`},
		{0, `{"in":{"idempotencyKey":"p4","organizationId":"@ORG_A@","action":"agent.run","properties":"str"}}`},
		{0, `{"in":{"idempotencyKey":"p5","organizationId":"@ORG_A@","action":"agent.run","properties":{"a":1,"a":2,"":null,"\u00e9":1e-400}}}`},
		// not JSON at all, and extra keys
		{0, `{"in":`},
		{0, `[1,2]`},
		{0, `{"in":{"idempotencyKey":"x1","organizationId":"@ORG_A@","action":"agent.run","extra":1}}`},
		{1, `{"in":{"idempotencyKey":"x2","organizationId":"@ORG_A@","action":"agent.run"}}`},
	} {
		f.Add(s.flags, []byte(s.vars))
	}
	e := newFzEnv(f)
	f.Fuzz(func(t *testing.T, flags byte, vars []byte) {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, p := range e.ids {
			vars = bytes.ReplaceAll(vars, p[0], p[1])
		}
		query, field, key := fzRecord, "recordUsage", e.operator
		if flags&1 != 0 {
			query, field = fzRecordBatch, "recordUsageBatch"
		}
		if flags&2 != 0 {
			key = e.service
		}
		status, body := e.send(key, query, vars)
		e.checkResponse(t, status, body, field, flags&1 != 0)
		if e.runs.Add(1)%fzVerifyEvery == 0 {
			e.verify(t, "after "+strconv.FormatInt(e.runs.Load(), 10)+" inputs")
		}
	})
}

// checkResponse checks one answer to recordUsage or recordUsageBatch: a
// documented status, a GraphQL response, documented error codes, either
// errors or data, and consistent results. It returns the results (nil when
// the request was refused).
func (e *fzEnv) checkResponse(t *testing.T, status int, body []byte, field string, batch bool) []map[string]any {
	t.Helper()
	if !fzStatuses[status] {
		t.Fatalf("HTTP %d: %.500s", status, body)
	}
	var resp struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []fzErr                    `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("HTTP %d: the body is not a GraphQL response (%v): %.500s", status, err, body)
	}
	for _, ge := range resp.Errors {
		code, _ := ge.Extensions["code"].(string)
		if !fzCodes[code] {
			t.Fatalf("HTTP %d: error %q with extensions.code %v, not a documented code: %.500s", status, ge.Message, ge.Extensions["code"], body)
		}
		if ge.Message == "" {
			t.Fatalf("HTTP %d: error without a message: %.500s", status, body)
		}
	}
	if status != http.StatusOK && len(resp.Errors) == 0 {
		t.Fatalf("HTTP %d without errors: %.500s", status, body)
	}
	raw := resp.Data[field]
	if len(resp.Errors) == 0 && (len(raw) == 0 || string(raw) == "null") {
		t.Fatalf("HTTP %d: neither errors nor %s: %.500s", status, field, body)
	}
	if len(raw) > 0 && string(raw) != "null" {
		if len(resp.Errors) > 0 {
			t.Fatalf("HTTP %d: both %s and errors: %.500s", status, field, body)
		}
		if batch {
			var rs []map[string]any
			if err := json.Unmarshal(raw, &rs); err != nil {
				t.Fatalf("%s: %v: %.500s", field, err, raw)
			}
			for i, r := range rs {
				checkResult(t, field+"["+strconv.Itoa(i)+"]", r)
			}
			return rs
		}
		var r map[string]any
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s: %v: %.500s", field, err, raw)
		}
		checkResult(t, field, r)
		return []map[string]any{r}
	}
	return nil
}

// FuzzRecordUsageFields fuzzes the fields of a well-formed recordUsage
// request (where FuzzRecordUsageGraphQL mostly finds malformed JSON), and
// sends every request twice: the second answer must be a replay of the
// first (duplicate, same event, same credits and decision) or the same
// refusal, and must write nothing. org and pool pick among this database's
// organisations and pools, and a few wrong ids; flags bit 0 sends a SERVICE
// key of organisation A, bit 1 omits quantity, bit 2 omits completion, bit
// 3 sends properties (when they are a JSON object).
func FuzzRecordUsageFields(f *testing.F) {
	f.Add("k1", byte(0), byte(0), "agent.run", "SUCCEEDED", "1", "1", "", []byte(nil), byte(6))
	f.Add("k2", byte(0), byte(2), "doc.summarize", "PARTIAL", "2.5", "0.5", "", []byte(`{"pages":8}`), byte(8))
	f.Add("k3", byte(1), byte(0), "agent.run", "SUCCEEDED", "1000", "1", "", []byte(nil), byte(4))
	f.Add("r1", byte(0), byte(0), "agent.run", "STARTED", "2", "1", "run-1", []byte(nil), byte(4))
	f.Add("r2", byte(0), byte(0), "agent.run", "FAILED", "2", "1", "run-1", []byte(nil), byte(4))
	f.Add("k4", byte(2), byte(4), "agent.run", "SUCCEEDED", "-1", "0", "", []byte(`{}`), byte(9))
	f.Add("k5", byte(0), byte(0), "strict.pages", "SUCCEEDED", "0.0000001", "1", "", []byte(`{"pages":"x"}`), byte(8))
	f.Add("k6", byte(0), byte(1), "tenth", "PARTIAL", "3", "0.333333333333333333333", "", []byte(nil), byte(0))
	f.Add("k7", byte(5), byte(0), "agent.run", "SUCCEEDED", "1", "1", "", []byte(nil), byte(7))
	e := newFzEnv(f)
	var ids [][]byte
	for _, p := range e.ids {
		ids = append(ids, p[1])
	}
	pick := func(n byte, wrong ...string) string {
		if int(n)%(len(ids)+len(wrong)) < len(ids) {
			return string(ids[int(n)%(len(ids)+len(wrong))])
		}
		return wrong[int(n)%(len(ids)+len(wrong))-len(ids)]
	}
	f.Fuzz(func(t *testing.T, key string, org, pool byte, action, status, quantity, completion, runID string, props []byte, flags byte) {
		e.mu.Lock()
		defer e.mu.Unlock()
		in := map[string]any{"idempotencyKey": key, "organizationId": pick(org, "0", "999999"), "action": action}
		if status != "" {
			in["status"] = status
		}
		if pool&1 != 0 {
			in["poolId"] = pick(pool>>1, "-5")
		}
		if flags&2 == 0 {
			in["quantity"] = quantity
		}
		if flags&4 == 0 {
			in["completion"] = completion
		}
		if runID != "" {
			in["runId"] = runID
		}
		if flags&8 != 0 {
			var m map[string]any
			if json.Unmarshal(props, &m) == nil && m != nil {
				in["properties"] = json.RawMessage(props)
			}
		}
		vars, err := json.Marshal(map[string]any{"in": in})
		if err != nil {
			t.Skip()
		}
		apiKey := e.operator
		if flags&1 != 0 {
			apiKey = e.service
		}
		code, body := e.send(apiKey, fzRecord, vars)
		first := e.checkResponse(t, code, body, "recordUsage", false)
		code2, body2 := e.send(apiKey, fzRecord, vars)
		second := e.checkResponse(t, code2, body2, "recordUsage", false)
		switch {
		case first == nil && second != nil:
			t.Fatalf("refused, then accepted on retry:\n%.500s\n%.500s", body, body2)
		case first != nil && second == nil:
			t.Fatalf("accepted, then refused on retry:\n%.500s\n%.500s", body, body2)
		case first != nil:
			a, b := first[0], second[0]
			ea, _ := a["event"].(map[string]any)
			eb, _ := b["event"].(map[string]any)
			if b["duplicate"] != true || ea["id"] != eb["id"] || a["credits"] != b["credits"] || a["decision"] != b["decision"] {
				t.Fatalf("a retry is not a replay of the first answer:\n%.500s\n%.500s", body, body2)
			}
		case code != code2:
			t.Fatalf("the same refusal answered HTTP %d, then %d:\n%.500s\n%.500s", code, code2, body, body2)
		}
		if e.runs.Add(1)%fzVerifyEvery == 0 {
			e.verify(t, "after "+strconv.FormatInt(e.runs.Load(), 10)+" inputs")
		}
	})
}
