package graph_test

// End-to-end tests of the GraphQL API: every request goes through the real
// HTTP handler (graph.NewHandler behind httptest.NewServer) as JSON POSTed to
// /graphql, on a fresh PostgreSQL and a fresh SQLite database each.
//
// Top-level tests are deliberately not parallel: testdb.Each opens the
// PostgreSQL admin connection lazily through an unsynchronised package
// variable, so only the per-dialect subtests (which open their database
// before calling t.Parallel) run concurrently.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// ---------------------------------------------------------------------------
// Harness

// testNow is the service clock: fixed, so expiries and effective times are
// deterministic.
var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type gqlErr struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlErr) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

type env struct {
	t   *testing.T
	db  *store.DB
	svc *ledger.Service
	srv *httptest.Server
	key string // an OPERATOR key sent with every request
}

func newEnv(t *testing.T, db *store.DB, opts ...ledger.Option) *env {
	t.Helper()
	opts = append([]ledger.Option{ledger.WithClock(func() time.Time { return testNow })}, opts...)
	svc := ledger.New(db, opts...)
	srv := httptest.NewServer(graph.NewHandler(svc, db, graph.Options{RateLimit: -1}))
	t.Cleanup(srv.Close)
	_, key, err := svc.CreateKey(context.Background(), ledger.KeyInput{Name: "test operator", Role: credit.RoleOperator})
	if err != nil {
		t.Fatalf("create operator key: %v", err)
	}
	return &env{t: t, db: db, svc: svc, srv: srv, key: key}
}

// post sends a raw body to /graphql and returns the status and the body.
func (e *env) post(body []byte) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, out
}

// do POSTs {query, variables} to /graphql and returns data and errors.
func (e *env) do(query string, vars map[string]any) (json.RawMessage, []gqlErr) {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		e.t.Fatalf("marshal request: %v", err)
	}
	status, raw := e.post(body)
	var resp struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlErr        `json:"errors"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		e.t.Fatalf("decode response (HTTP %d): %v\n%s", status, err, raw)
	}
	if status != http.StatusOK && len(resp.Errors) == 0 {
		e.t.Fatalf("HTTP %d without GraphQL errors: %s", status, raw)
	}
	return resp.Data, resp.Errors
}

// must runs an operation that has to succeed and decodes its data into out.
func (e *env) must(query string, vars map[string]any, out any) {
	e.t.Helper()
	data, errs := e.do(query, vars)
	if len(errs) > 0 {
		e.t.Fatalf("unexpected errors: %v\nquery: %s\nvars: %v", errs, query, vars)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("decode data: %v\n%s", err, data)
		}
	}
}

// wantErr asserts exactly one error with extensions.code == code and
// returns it.
func wantErr(t *testing.T, what string, errs []gqlErr, code string) gqlErr {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("%s: got %d errors %v, want exactly one with code %s", what, len(errs), errs, code)
	}
	if got := errs[0].Extensions["code"]; got != code {
		t.Fatalf("%s: extensions.code = %v, want %s (error %v)", what, got, code, errs[0])
	}
	return errs[0]
}

func wantExt(t *testing.T, what string, e gqlErr, key string, want any) {
	t.Helper()
	got, ok := e.Extensions[key]
	if !ok {
		t.Errorf("%s: extensions.%s missing, want %v (error %v)", what, key, want, e)
		return
	}
	// JSON numbers decode as float64.
	if w, ok := want.(int); ok {
		want = float64(w)
	}
	if got != want {
		t.Errorf("%s: extensions.%s = %v (%T), want %v", what, key, got, got, want)
	}
}

// ---------------------------------------------------------------------------
// Operations and their shapes

const resultFields = `decision credits overage duplicate reason reasonCode
  draws { grant { id } amount }
  event { id idempotencyKey action status credits decision quantity registerVersion policyVersion pool { id } }`

const (
	qCreateOrg = `mutation($name: String!, $segment: String, $reg: String) {
  createOrganization(name: $name, segment: $segment, registerName: $reg) { id name segment registerName } }`
	qCreatePool = `mutation($org: ID!, $kind: PoolKind!, $name: String!) {
  createPool(organizationId: $org, kind: $kind, name: $name) { id kind name organization { id } } }`
	qSaveRegister = `mutation($name: String!, $weights: [WeightInput!]!) {
  saveWeightRegisterDraft(name: $name, weights: $weights) { id name version status weights { action credits expression } } }`
	qPublishRegister = `mutation($name: String!, $v: Int!) {
  publishWeightRegister(name: $name, version: $v) { name version status effectiveFrom } }`
	qSavePolicy = `mutation($in: PolicyInput!) {
  savePolicyDraft(input: $in) { id name kind version status expression } }`
	qPublishPolicy = `mutation($name: String!, $v: Int!) {
  publishPolicy(name: $name, version: $v) { name kind version status } }`
	qGrant = `mutation($in: GrantInput!) {
  grantCredits(input: $in) { id creditType amount remaining expiresAt pool { id } } }`
	qRecord      = `mutation($in: UsageInput!) { recordUsage(input: $in) { ` + resultFields + ` } }`
	qRecordBatch = `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { ` + resultFields + ` } }`
	qBalance     = `query($id: ID!) { pool(id: $id) { balance { available reserved overage byType { creditType available } } } }`
	qLedger      = `query($id: ID!, $first: Int, $after: String) {
  ledger(poolId: $id, first: $first, after: $after) {
    edges { cursor node { id kind amount memo grant { id } usageEvent { id } registerVersion policyVersion } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`
	qValidate = `query($kind: PolicyKind!, $expr: String!) {
  validateRule(kind: $kind, expression: $expr) { ok errors { message line column } } }`
)

// burnRule is rules.md's example: full charge on success, 20 % on failure,
// nothing otherwise.
const burnRule = `event.status == "SUCCEEDED" ? weight * event.quantity : (event.status == "FAILED" ? weight * decimal("0.2") : decimal(0))`

// pagesExpr prices doc.summarize by event.properties.pages, guarded.
const pagesExpr = `has(event.properties.pages) ? decimal(1) + decimal(event.properties.pages) * decimal("0.25") : decimal(1)`

// strictExpr reads a property without a has() guard.
const strictExpr = `decimal(event.properties.pages) * decimal("0.5")`

var defaultWeights = []map[string]any{
	{"action": "agent.run", "credits": "4"},
	{"action": "doc.summarize", "credits": "1", "expression": pagesExpr},
	{"action": "strict.pages", "credits": "0", "expression": strictExpr},
	{"action": "tenth", "credits": "0.1"},
}

type idRef struct {
	ID string `json:"id"`
}

type drawT struct {
	Grant  idRef  `json:"grant"`
	Amount string `json:"amount"`
}

type eventT struct {
	ID              string `json:"id"`
	IdempotencyKey  string `json:"idempotencyKey"`
	Action          string `json:"action"`
	Status          string `json:"status"`
	Credits         string `json:"credits"`
	Decision        string `json:"decision"`
	Quantity        string `json:"quantity"`
	RegisterVersion *int   `json:"registerVersion"`
	PolicyVersion   *int   `json:"policyVersion"`
	Pool            idRef  `json:"pool"`
}

type resultT struct {
	Decision   string  `json:"decision"`
	Credits    string  `json:"credits"`
	Overage    string  `json:"overage"`
	Duplicate  bool    `json:"duplicate"`
	Reason     *string `json:"reason"`
	ReasonCode *string `json:"reasonCode"`
	Draws      []drawT `json:"draws"`
	Event      eventT  `json:"event"`
}

type typeBalanceT struct {
	CreditType string `json:"creditType"`
	Available  string `json:"available"`
}

type balanceT struct {
	Available string         `json:"available"`
	Reserved  string         `json:"reserved"`
	Overage   string         `json:"overage"`
	ByType    []typeBalanceT `json:"byType"`
}

type entryT struct {
	ID              string  `json:"id"`
	Kind            string  `json:"kind"`
	Amount          string  `json:"amount"`
	Memo            *string `json:"memo"`
	Grant           *idRef  `json:"grant"`
	UsageEvent      *idRef  `json:"usageEvent"`
	RegisterVersion *int    `json:"registerVersion"`
	PolicyVersion   *int    `json:"policyVersion"`
}

type pageInfoT struct {
	HasNextPage     bool    `json:"hasNextPage"`
	HasPreviousPage bool    `json:"hasPreviousPage"`
	StartCursor     *string `json:"startCursor"`
	EndCursor       *string `json:"endCursor"`
}

type ledgerPageT struct {
	Edges []struct {
		Cursor string `json:"cursor"`
		Node   entryT `json:"node"`
	} `json:"edges"`
	PageInfo pageInfoT `json:"pageInfo"`
}

// publishPricing saves and publishes register "default" v1 and the BURN
// policy "burn-20pct-failure" v1, asserting every step.
func (e *env) publishPricing() {
	t := e.t
	t.Helper()
	var reg struct {
		R struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
			Status  string `json:"status"`
			Weights []struct {
				Action     string  `json:"action"`
				Credits    string  `json:"credits"`
				Expression *string `json:"expression"`
			} `json:"weights"`
		} `json:"saveWeightRegisterDraft"`
	}
	e.must(qSaveRegister, map[string]any{"name": "default", "weights": defaultWeights}, &reg)
	if reg.R.Name != "default" || reg.R.Version != 1 || reg.R.Status != "DRAFT" {
		t.Fatalf("saveWeightRegisterDraft = %s v%d %s, want default v1 DRAFT", reg.R.Name, reg.R.Version, reg.R.Status)
	}
	if len(reg.R.Weights) != len(defaultWeights) {
		t.Fatalf("saveWeightRegisterDraft weights = %d, want %d", len(reg.R.Weights), len(defaultWeights))
	}
	gotExpr := map[string]string{}
	for _, w := range reg.R.Weights {
		if w.Expression != nil {
			gotExpr[w.Action] = *w.Expression
		}
		if w.Action == "tenth" && w.Credits != "0.1" {
			t.Errorf("weight tenth credits = %q, want %q", w.Credits, "0.1")
		}
	}
	if gotExpr["doc.summarize"] != pagesExpr {
		t.Errorf("doc.summarize expression = %q, want %q", gotExpr["doc.summarize"], pagesExpr)
	}
	var pub struct {
		R struct {
			Version int    `json:"version"`
			Status  string `json:"status"`
		} `json:"publishWeightRegister"`
	}
	e.must(qPublishRegister, map[string]any{"name": "default", "v": 1}, &pub)
	if pub.R.Version != 1 || pub.R.Status != "PUBLISHED" {
		t.Fatalf("publishWeightRegister = v%d %s, want v1 PUBLISHED", pub.R.Version, pub.R.Status)
	}

	var pol struct {
		R struct {
			Name    string `json:"name"`
			Kind    string `json:"kind"`
			Version int    `json:"version"`
			Status  string `json:"status"`
		} `json:"savePolicyDraft"`
	}
	e.must(qSavePolicy, map[string]any{"in": map[string]any{"name": "burn-20pct-failure", "kind": "BURN", "expression": burnRule}}, &pol)
	if pol.R.Kind != "BURN" || pol.R.Version != 1 || pol.R.Status != "DRAFT" {
		t.Fatalf("savePolicyDraft = %s v%d %s, want BURN v1 DRAFT", pol.R.Kind, pol.R.Version, pol.R.Status)
	}
	var ppub struct {
		R struct {
			Version int    `json:"version"`
			Status  string `json:"status"`
		} `json:"publishPolicy"`
	}
	e.must(qPublishPolicy, map[string]any{"name": "burn-20pct-failure", "v": 1}, &ppub)
	if ppub.R.Version != 1 || ppub.R.Status != "PUBLISHED" {
		t.Fatalf("publishPolicy = v%d %s, want v1 PUBLISHED", ppub.R.Version, ppub.R.Status)
	}
}

// newOrg creates an organisation (registerName "" = default) and its
// ACCOUNT pool; it returns their ids.
func (e *env) newOrg(name, registerName string) (org, pool string) {
	t := e.t
	t.Helper()
	vars := map[string]any{"name": name, "segment": "smb"}
	if registerName != "" {
		vars["reg"] = registerName
	}
	var o struct {
		R struct {
			ID           string  `json:"id"`
			Name         string  `json:"name"`
			Segment      *string `json:"segment"`
			RegisterName string  `json:"registerName"`
		} `json:"createOrganization"`
	}
	e.must(qCreateOrg, vars, &o)
	wantReg := registerName
	if wantReg == "" {
		wantReg = "default"
	}
	if o.R.ID == "" || o.R.Name != name || o.R.RegisterName != wantReg || o.R.Segment == nil || *o.R.Segment != "smb" {
		t.Fatalf("createOrganization = %+v, want name %q, registerName %q, segment smb", o.R, name, wantReg)
	}
	var p struct {
		R struct {
			ID           string `json:"id"`
			Kind         string `json:"kind"`
			Name         string `json:"name"`
			Organization idRef  `json:"organization"`
		} `json:"createPool"`
	}
	e.must(qCreatePool, map[string]any{"org": o.R.ID, "kind": "ACCOUNT", "name": name + " account"}, &p)
	if p.R.ID == "" || p.R.Kind != "ACCOUNT" || p.R.Organization.ID != o.R.ID {
		t.Fatalf("createPool = %+v, want an ACCOUNT pool of organization %s", p.R, o.R.ID)
	}
	return o.R.ID, p.R.ID
}

// grant adds credits to a pool and returns the grant id.
func (e *env) grant(pool, creditType, amount string, expiresAt *time.Time) string {
	t := e.t
	t.Helper()
	in := map[string]any{"poolId": pool, "creditType": creditType, "amount": amount}
	if expiresAt != nil {
		in["expiresAt"] = expiresAt.Format(time.RFC3339Nano)
	}
	var g struct {
		R struct {
			ID         string  `json:"id"`
			CreditType string  `json:"creditType"`
			Amount     string  `json:"amount"`
			Remaining  string  `json:"remaining"`
			ExpiresAt  *string `json:"expiresAt"`
			Pool       idRef   `json:"pool"`
		} `json:"grantCredits"`
	}
	e.must(qGrant, map[string]any{"in": in}, &g)
	if g.R.Amount != amount || g.R.Remaining != amount || g.R.CreditType != creditType || g.R.Pool.ID != pool {
		t.Fatalf("grantCredits = %+v, want %s amount=remaining=%q on pool %s", g.R, creditType, amount, pool)
	}
	if (expiresAt == nil) != (g.R.ExpiresAt == nil) {
		t.Fatalf("grantCredits expiresAt = %v, want %v", g.R.ExpiresAt, expiresAt)
	}
	return g.R.ID
}

func (e *env) record(in map[string]any) resultT {
	e.t.Helper()
	var out struct {
		R resultT `json:"recordUsage"`
	}
	e.must(qRecord, map[string]any{"in": in}, &out)
	return out.R
}

func (e *env) balance(pool string) balanceT {
	e.t.Helper()
	var out struct {
		Pool *struct {
			Balance balanceT `json:"balance"`
		} `json:"pool"`
	}
	e.must(qBalance, map[string]any{"id": pool}, &out)
	if out.Pool == nil {
		e.t.Fatalf("pool(%s) = null", pool)
	}
	return out.Pool.Balance
}

// ledgerAll pages through a pool's ledger with first: n and returns the
// entries and the pages' pageInfo.
func (e *env) ledgerAll(pool string, n int) ([]entryT, []pageInfoT) {
	e.t.Helper()
	var entries []entryT
	var infos []pageInfoT
	var after any
	for page := 0; ; page++ {
		if page > 100 {
			e.t.Fatalf("ledger(%s) did not end after 100 pages", pool)
		}
		var out struct {
			L ledgerPageT `json:"ledger"`
		}
		e.must(qLedger, map[string]any{"id": pool, "first": n, "after": after}, &out)
		if len(out.L.Edges) > n {
			e.t.Fatalf("ledger page %d has %d edges, want at most %d", page, len(out.L.Edges), n)
		}
		for _, ed := range out.L.Edges {
			entries = append(entries, ed.Node)
		}
		infos = append(infos, out.L.PageInfo)
		if !out.L.PageInfo.HasNextPage {
			return entries, infos
		}
		if out.L.PageInfo.EndCursor == nil {
			e.t.Fatalf("ledger page %d: hasNextPage without endCursor", page)
		}
		after = *out.L.PageInfo.EndCursor
	}
}

// state is everything a failed request must leave untouched.
type state struct {
	Rows     map[string]int
	Balances map[string]balanceT
	Ledgers  map[string][]entryT
}

func (e *env) snapshot(pools ...string) state {
	e.t.Helper()
	ctx := context.Background()
	c := e.db.Client
	s := state{Rows: map[string]int{}, Balances: map[string]balanceT{}, Ledgers: map[string][]entryT{}}
	for name, count := range map[string]func(context.Context) (int, error){
		"organizations":   c.Organization.Query().Count,
		"pools":           c.Pool.Query().Count,
		"grants":          c.Grant.Query().Count,
		"ledgerEntries":   c.LedgerEntry.Query().Count,
		"usageEvents":     c.UsageEvent.Query().Count,
		"weightRegisters": c.WeightRegister.Query().Count,
		"weights":         c.Weight.Query().Count,
		"policyVersions":  c.PolicyVersion.Query().Count,
	} {
		n, err := count(ctx)
		if err != nil {
			e.t.Fatalf("count %s: %v", name, err)
		}
		s.Rows[name] = n
	}
	for _, p := range pools {
		s.Balances[p] = e.balance(p)
		s.Ledgers[p], _ = e.ledgerAll(p, 500)
	}
	return s
}

// unchanged asserts that nothing was written since before and that the
// ledger invariants hold.
func (e *env) unchanged(what string, before state, pools ...string) {
	e.t.Helper()
	after := e.snapshot(pools...)
	if !reflect.DeepEqual(before.Rows, after.Rows) {
		e.t.Errorf("%s wrote rows: before %v, after %v", what, before.Rows, after.Rows)
	}
	for _, p := range pools {
		if !reflect.DeepEqual(before.Balances[p], after.Balances[p]) {
			e.t.Errorf("%s changed pool %s balance: before %+v, after %+v", what, p, before.Balances[p], after.Balances[p])
		}
		if !reflect.DeepEqual(before.Ledgers[p], after.Ledgers[p]) {
			e.t.Errorf("%s changed pool %s ledger: before %d entries, after %d", what, p, len(before.Ledgers[p]), len(after.Ledgers[p]))
		}
	}
	e.verify(what)
}

func (e *env) verify(what string) {
	e.t.Helper()
	vs, err := e.svc.Verify(context.Background())
	if err != nil {
		e.t.Fatalf("%s: Verify: %v", what, err)
	}
	for _, v := range vs {
		e.t.Errorf("%s: ledger invariant violated: %s", what, v)
	}
}

func checkBalance(t *testing.T, what string, got balanceT, available string, byType ...typeBalanceT) {
	t.Helper()
	if got.Available != available {
		t.Errorf("%s: balance.available = %q, want %q", what, got.Available, available)
	}
	if got.Reserved != "0" || got.Overage != "0" {
		t.Errorf("%s: balance reserved/overage = %q/%q, want \"0\"/\"0\"", what, got.Reserved, got.Overage)
	}
	if byType == nil {
		byType = []typeBalanceT{}
	}
	if got.ByType == nil {
		got.ByType = []typeBalanceT{}
	}
	if !reflect.DeepEqual(got.ByType, byType) {
		t.Errorf("%s: balance.byType = %+v, want %+v", what, got.ByType, byType)
	}
}

func checkDraws(t *testing.T, what string, got []drawT, want ...drawT) {
	t.Helper()
	if want == nil {
		want = []drawT{}
	}
	if got == nil {
		got = []drawT{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: draws = %+v, want %+v", what, got, want)
	}
}

func d(grant, amount string) drawT { return drawT{Grant: idRef{grant}, Amount: amount} }

func tb(ct, amount string) typeBalanceT { return typeBalanceT{CreditType: ct, Available: amount} }

func intp(p *int) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// checkAllowed asserts an ALLOWED, first-time result priced by register v1
// and burn policy v1.
func checkAllowed(t *testing.T, what string, r resultT, key, pool, credits string) {
	t.Helper()
	if r.Decision != "ALLOWED" {
		t.Errorf("%s: decision = %q, want ALLOWED (reason %v)", what, r.Decision, r.Reason)
	}
	if r.Credits != credits {
		t.Errorf("%s: recordUsage credits = %q, want %q", what, r.Credits, credits)
	}
	if r.Event.Credits != credits {
		t.Errorf("%s: event.credits = %q, want %q", what, r.Event.Credits, credits)
	}
	if r.Duplicate {
		t.Errorf("%s: duplicate = true, want false", what)
	}
	if r.Overage != "0" {
		t.Errorf("%s: overage = %q, want \"0\"", what, r.Overage)
	}
	if r.ReasonCode != nil {
		t.Errorf("%s: reasonCode = %q, want null", what, *r.ReasonCode)
	}
	if r.Event.ID == "" || r.Event.IdempotencyKey != key || r.Event.Decision != "ALLOWED" || r.Event.Pool.ID != pool {
		t.Errorf("%s: event = %+v, want key %q, ALLOWED, pool %s", what, r.Event, key, pool)
	}
	if intp(r.Event.RegisterVersion) != "1" || intp(r.Event.PolicyVersion) != "1" {
		t.Errorf("%s: event registerVersion/policyVersion = %s/%s, want 1/1", what, intp(r.Event.RegisterVersion), intp(r.Event.PolicyVersion))
	}
}

// ---------------------------------------------------------------------------
// 1. Happy path

func TestAPIHappyPath(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")

		soon := testNow.Add(10 * 24 * time.Hour)
		sub := e.grant(pool, "SUBSCRIPTION", "5", &soon) // expires first: drawn first
		od := e.grant(pool, "ON_DEMAND", "100", nil)
		checkBalance(t, "after grants", e.balance(pool), "105", tb("SUBSCRIPTION", "5"), tb("ON_DEMAND", "100"))

		// Weight expression over event.properties.pages: 1 + 8 * 0.25 = 3.
		r1 := e.record(map[string]any{"idempotencyKey": "k1", "organizationId": org, "action": "doc.summarize",
			"properties": map[string]any{"pages": 8}})
		checkAllowed(t, "doc.summarize pages=8", r1, "k1", pool, "3")
		checkDraws(t, "doc.summarize pages=8", r1.Draws, d(sub, "3"))
		if r1.Event.Action != "doc.summarize" || r1.Event.Status != "SUCCEEDED" || r1.Event.Quantity != "1" {
			t.Errorf("event = %+v, want doc.summarize SUCCEEDED quantity 1", r1.Event)
		}
		checkBalance(t, "after k1", e.balance(pool), "102", tb("SUBSCRIPTION", "2"), tb("ON_DEMAND", "100"))

		// 4 * 2 = 8 credits: 2 left in the subscription grant, 6 from on-demand.
		r2 := e.record(map[string]any{"idempotencyKey": "k2", "organizationId": org, "poolId": pool,
			"action": "agent.run", "quantity": "2"})
		checkAllowed(t, "agent.run x2 (split)", r2, "k2", pool, "8")
		checkDraws(t, "agent.run x2 (split)", r2.Draws, d(sub, "2"), d(od, "6"))
		checkBalance(t, "after k2", e.balance(pool), "94", tb("ON_DEMAND", "94"))

		// FAILED: 20 % of the weight (4 * 0.2 = 0.8).
		r3 := e.record(map[string]any{"idempotencyKey": "k3", "organizationId": org, "action": "agent.run", "status": "FAILED"})
		checkAllowed(t, "agent.run FAILED", r3, "k3", pool, "0.8")
		checkDraws(t, "agent.run FAILED", r3.Draws, d(od, "0.8"))
		checkBalance(t, "after k3", e.balance(pool), "93.2", tb("ON_DEMAND", "93.2"))

		// Ledger, two entries a page, newest first.
		entries, infos := e.ledgerAll(pool, 2)
		if len(infos) != 3 {
			t.Fatalf("ledger(first: 2) took %d pages, want 3", len(infos))
		}
		for i, pi := range infos {
			if wantNext := i < 2; pi.HasNextPage != wantNext {
				t.Errorf("ledger page %d hasNextPage = %v, want %v", i, pi.HasNextPage, wantNext)
			}
			if wantPrev := i > 0; pi.HasPreviousPage != wantPrev {
				t.Errorf("ledger page %d hasPreviousPage = %v, want %v", i, pi.HasPreviousPage, wantPrev)
			}
		}
		type row struct{ kind, amount, grant, event string }
		want := []row{
			{"BURN", "-0.8", od, r3.Event.ID},
			{"BURN", "-6", od, r2.Event.ID},
			{"BURN", "-2", sub, r2.Event.ID},
			{"BURN", "-3", sub, r1.Event.ID},
			{"GRANT", "100", od, ""},
			{"GRANT", "5", sub, ""},
		}
		if len(entries) != len(want) {
			t.Fatalf("ledger has %d entries, want %d: %+v", len(entries), len(want), entries)
		}
		prevID := int64(1 << 62)
		for i, en := range entries {
			var id int64
			fmt.Sscan(en.ID, &id)
			if id >= prevID {
				t.Errorf("ledger entry %d id %s not older than the previous one", i, en.ID)
			}
			prevID = id
			got := row{kind: en.Kind, amount: en.Amount}
			if en.Grant != nil {
				got.grant = en.Grant.ID
			}
			if en.UsageEvent != nil {
				got.event = en.UsageEvent.ID
			}
			if got != want[i] {
				t.Errorf("ledger entry %d = %+v, want %+v", i, got, want[i])
			}
			if en.Kind == "BURN" {
				if intp(en.RegisterVersion) != "1" || intp(en.PolicyVersion) != "1" {
					t.Errorf("ledger entry %d (BURN) registerVersion/policyVersion = %s/%s, want 1/1", i, intp(en.RegisterVersion), intp(en.PolicyVersion))
				}
			} else if en.RegisterVersion != nil || en.PolicyVersion != nil {
				t.Errorf("ledger entry %d (GRANT) registerVersion/policyVersion = %s/%s, want null/null", i, intp(en.RegisterVersion), intp(en.PolicyVersion))
			}
		}
		// A bad cursor is VALIDATION on field "after".
		_, errs := e.do(qLedger, map[string]any{"id": pool, "first": 2, "after": "not-a-cursor"})
		wantExt(t, "ledger bad cursor", wantErr(t, "ledger bad cursor", errs, "VALIDATION"), "field", "after")
		e.verify("happy path")
	})
}

// ---------------------------------------------------------------------------
// 2. Idempotency

func TestAPIIdempotency(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		soon := testNow.Add(24 * time.Hour)
		sub := e.grant(pool, "SUBSCRIPTION", "2", &soon)
		od := e.grant(pool, "ON_DEMAND", "50", nil)

		in := map[string]any{"idempotencyKey": "same-key", "organizationId": org, "action": "doc.summarize",
			"properties": map[string]any{"pages": 8}}
		first := e.record(in)
		checkAllowed(t, "first", first, "same-key", pool, "3")
		checkDraws(t, "first", first.Draws, d(sub, "2"), d(od, "1"))
		before := e.snapshot(pool)
		checkBalance(t, "after first", before.Balances[pool], "49", tb("ON_DEMAND", "49"))

		// Same key, same payload (also: quantity "1" spelled out is the same payload).
		for _, replay := range []map[string]any{in, with(in, "quantity", "1")} {
			r := e.record(replay)
			if !r.Duplicate {
				t.Errorf("replay: duplicate = false, want true")
			}
			if r.Event.ID != first.Event.ID {
				t.Errorf("replay: event id = %s, want %s", r.Event.ID, first.Event.ID)
			}
			if r.Credits != first.Credits || r.Decision != first.Decision {
				t.Errorf("replay: credits/decision = %q/%s, want %q/%s", r.Credits, r.Decision, first.Credits, first.Decision)
			}
			checkDraws(t, "replay", r.Draws, first.Draws...)
			e.unchanged("replay", before, pool)
		}

		// Same key, another payload: IDEMPOTENCY_CONFLICT, nothing written.
		for name, conflicting := range map[string]map[string]any{
			"other properties": with(in, "properties", map[string]any{"pages": 9}),
			"other action":     with(in, "action", "agent.run"),
			"other quantity":   with(in, "quantity", "2"),
		} {
			_, errs := e.do(qRecord, map[string]any{"in": conflicting})
			ge := wantErr(t, "conflict: "+name, errs, "IDEMPOTENCY_CONFLICT")
			wantExt(t, "conflict: "+name, ge, "field", "idempotencyKey")
			if _, ok := ge.Extensions["index"]; ok {
				t.Errorf("conflict: %s: single recordUsage error carries extensions.index %v", name, ge.Extensions["index"])
			}
			e.unchanged("conflict: "+name, before, pool)
		}
	})
}

func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// ---------------------------------------------------------------------------
// 3. Denial

func TestAPIDenial(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		e.grant(pool, "ON_DEMAND", "10", nil)
		before := e.snapshot(pool)

		// 4 * 3 = 12 credits > 10.
		r := e.record(map[string]any{"idempotencyKey": "too-much", "organizationId": org, "action": "agent.run", "quantity": "3"})
		if r.Decision != "DENIED" {
			t.Errorf("recordUsage decision = %q, want DENIED", r.Decision)
		}
		if r.Credits != "0" {
			t.Errorf("recordUsage credits = %q, want %q", r.Credits, "0")
		}
		if r.ReasonCode == nil || *r.ReasonCode != "INSUFFICIENT_CREDITS" {
			got := "null"
			if r.ReasonCode != nil {
				got = *r.ReasonCode
			}
			t.Errorf("recordUsage reasonCode = %q, want %q", got, "INSUFFICIENT_CREDITS")
		}
		if r.Reason == nil || *r.Reason == "" {
			t.Errorf("recordUsage reason = null, want a message")
		}
		if r.Duplicate {
			t.Errorf("recordUsage duplicate = true, want false")
		}
		checkDraws(t, "denied", r.Draws)
		if r.Event.Decision != "DENIED" || r.Event.Credits != "0" {
			t.Errorf("event decision/credits = %s/%q, want DENIED/\"0\"", r.Event.Decision, r.Event.Credits)
		}
		after := e.snapshot(pool)
		checkBalance(t, "after denial", after.Balances[pool], "10", tb("ON_DEMAND", "10"))
		if !reflect.DeepEqual(before.Ledgers[pool], after.Ledgers[pool]) {
			t.Errorf("denial changed the ledger: %d entries before, %d after", len(before.Ledgers[pool]), len(after.Ledgers[pool]))
		}
		if after.Rows["ledgerEntries"] != before.Rows["ledgerEntries"] {
			t.Errorf("denial wrote %d ledger entries", after.Rows["ledgerEntries"]-before.Rows["ledgerEntries"])
		}
		e.verify("denial")
	})
}

// ---------------------------------------------------------------------------
// 4. Bad input: the specific code, and nothing written

func TestAPIBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db, ledger.WithMaxBatch(5))
		e.publishPricing()
		orgA, poolA := e.newOrg("Acme", "")
		_, poolB := e.newOrg("Globex", "")
		e.grant(poolA, "ON_DEMAND", "50", nil)
		e.grant(poolB, "ON_DEMAND", "50", nil)
		// A register with a draft only: its organisations have no published version.
		e.must(qSaveRegister, map[string]any{"name": "drafty", "weights": []map[string]any{{"action": "agent.run", "credits": "1"}}}, nil)
		orgC, poolC := e.newOrg("Initech", "drafty")
		e.grant(poolC, "ON_DEMAND", "50", nil)
		pools := []string{poolA, poolB, poolC}

		usage := func(key string, extra ...any) map[string]any {
			in := map[string]any{"idempotencyKey": key, "organizationId": orgA, "action": "agent.run"}
			for i := 0; i+1 < len(extra); i += 2 {
				in[extra[i].(string)] = extra[i+1]
			}
			return in
		}

		cases := []struct {
			name  string
			query string
			vars  map[string]any
			code  string
			field string // extensions.field, "" = not checked
			index *int   // extensions.index, nil = must be absent
			check func(t *testing.T, ge gqlErr)
		}{
			{name: "negative grant amount", query: qGrant, code: "VALIDATION", field: "amount",
				vars: map[string]any{"in": map[string]any{"poolId": poolA, "creditType": "ON_DEMAND", "amount": "-5"}}},
			{name: "zero grant amount", query: qGrant, code: "VALIDATION", field: "amount",
				vars: map[string]any{"in": map[string]any{"poolId": poolA, "creditType": "ON_DEMAND", "amount": "0"}}},
			{name: "malformed decimal", query: qGrant, code: "VALIDATION",
				vars: map[string]any{"in": map[string]any{"poolId": poolA, "creditType": "ON_DEMAND", "amount": "12.3.4"}}},
			{name: "grant to unknown pool", query: qGrant, code: "NOT_FOUND",
				vars: map[string]any{"in": map[string]any{"poolId": "999999", "creditType": "ON_DEMAND", "amount": "5"}}},
			{name: "createPool of unknown organization", query: qCreatePool, code: "NOT_FOUND",
				vars: map[string]any{"org": "999999", "kind": "ACCOUNT", "name": "ghost"}},
			{name: "recordUsage of unknown organization", query: qRecord, code: "NOT_FOUND",
				vars: map[string]any{"in": with(usage("ghost-org"), "organizationId", "999999")}},
			{name: "pool of another organisation", query: qRecord, code: "NOT_FOUND", field: "poolId",
				vars: map[string]any{"in": usage("other-pool", "poolId", poolB)}},
			{name: "unknown action", query: qRecord, code: "UNKNOWN_ACTION", field: "action",
				vars: map[string]any{"in": usage("unknown-action", "action", "no.such.action")}},
			{name: "no published register", query: qRecord, code: "NO_REGISTER",
				vars: map[string]any{"in": with(usage("no-register"), "organizationId", orgC)}},
			{name: "quantity 0", query: qRecord, code: "VALIDATION", field: "quantity",
				vars: map[string]any{"in": usage("q0", "quantity", "0")}},
			{name: "negative quantity", query: qRecord, code: "VALIDATION", field: "quantity",
				vars: map[string]any{"in": usage("q-1", "quantity", "-1")}},
			{name: "weight expression reads a missing property", query: qRecord, code: "RULE_RUNTIME",
				vars: map[string]any{"in": usage("strict", "action", "strict.pages", "properties", map[string]any{"chars": 10})}},
			{name: "policy syntax error on line 2", query: qSavePolicy, code: "RULE_COMPILE",
				vars: map[string]any{"in": map[string]any{"name": "broken", "kind": "BURN",
					"expression": "event.status == \"SUCCEEDED\"\n  ? weight * * event.quantity\n  : decimal(0)"}},
				check: func(t *testing.T, ge gqlErr) {
					list, ok := ge.Extensions["errors"].([]any)
					if !ok || len(list) == 0 {
						t.Fatalf("extensions.errors = %v, want a list of positions", ge.Extensions["errors"])
					}
					pos, _ := list[0].(map[string]any)
					if pos["line"] != float64(2) {
						t.Errorf("extensions.errors[0].line = %v, want 2", pos["line"])
					}
					if c, ok := pos["column"].(float64); !ok || c < 1 {
						t.Errorf("extensions.errors[0].column = %v, want a 1-based column", pos["column"])
					}
					if m, _ := pos["message"].(string); m == "" {
						t.Errorf("extensions.errors[0].message is empty")
					}
				}},
			{name: "BURN rule returning a string", query: qSavePolicy, code: "RULE_COMPILE",
				vars: map[string]any{"in": map[string]any{"name": "stringy", "kind": "BURN", "expression": `"free"`}}},
			{name: "register weight expression does not compile", query: qSaveRegister, code: "RULE_COMPILE",
				vars: map[string]any{"name": "default", "weights": []map[string]any{{"action": "x", "credits": "1", "expression": "decimal(1) +"}}}},
			{name: "publish an already published register", query: qPublishRegister, code: "CONFLICT",
				vars: map[string]any{"name": "default", "v": 1}},
			{name: "publish an already published policy", query: qPublishPolicy, code: "CONFLICT",
				vars: map[string]any{"name": "burn-20pct-failure", "v": 1}},
			{name: "batch over the limit", query: qRecordBatch, code: "BATCH_TOO_LARGE",
				vars: map[string]any{"ins": []any{usage("b1"), usage("b2"), usage("b3"), usage("b4"), usage("b5"), usage("b6")}}},
			{name: "batch, 3rd item unknown action", query: qRecordBatch, code: "UNKNOWN_ACTION", index: ptr(2),
				vars: map[string]any{"ins": []any{usage("c1"), usage("c2"), usage("c3", "action", "no.such.action"), usage("c4")}}},
			{name: "batch, 3rd item quantity 0", query: qRecordBatch, code: "VALIDATION", field: "quantity", index: ptr(2),
				vars: map[string]any{"ins": []any{usage("d1"), usage("d2"), usage("d3", "quantity", "0")}}},
			{name: "batch, 3rd item missing property", query: qRecordBatch, code: "RULE_RUNTIME", index: ptr(2),
				vars: map[string]any{"ins": []any{usage("e1"), usage("e2"), usage("e3", "action", "strict.pages")}}},
			{name: "batch, 3rd item reuses a key with another payload", query: qRecordBatch, code: "IDEMPOTENCY_CONFLICT", index: ptr(2),
				vars: map[string]any{"ins": []any{usage("f1"), usage("f2"), usage("f1", "quantity", "2")}}},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				e := *e
				e.t = t
				before := e.snapshot(pools...)
				data, errs := e.do(c.query, c.vars)
				ge := wantErr(t, c.name, errs, c.code)
				t.Logf("%s: %v", c.name, ge)
				if c.field != "" {
					wantExt(t, c.name, ge, "field", c.field)
				}
				if c.index != nil {
					wantExt(t, c.name, ge, "index", *c.index)
				} else if v, ok := ge.Extensions["index"]; ok {
					t.Errorf("%s: extensions.index = %v, want none", c.name, v)
				}
				if c.check != nil {
					c.check(t, ge)
				}
				if s := strings.TrimSpace(string(data)); s != "null" && s != "" {
					t.Errorf("%s: data = %s, want null", c.name, s)
				}
				e.unchanged(c.name, before, pools...)
			})
		}

		t.Run("validateRule", func(t *testing.T) {
			e := *e
			e.t = t
			before := e.snapshot(pools...)
			type validation struct {
				V struct {
					OK     bool `json:"ok"`
					Errors []struct {
						Message string `json:"message"`
						Line    int    `json:"line"`
						Column  int    `json:"column"`
					} `json:"errors"`
				} `json:"validateRule"`
			}
			var bad validation
			e.must(qValidate, map[string]any{"kind": "BURN", "expr": "weight *\n  (event.quantity +"}, &bad)
			if bad.V.OK || len(bad.V.Errors) == 0 {
				t.Fatalf("validateRule(bad) = %+v, want ok:false with errors", bad.V)
			}
			if bad.V.Errors[0].Line != 2 || bad.V.Errors[0].Column < 1 || bad.V.Errors[0].Message == "" {
				t.Errorf("validateRule(bad) errors[0] = %+v, want line 2, a column >= 1 and a message", bad.V.Errors[0])
			}
			var good validation
			e.must(qValidate, map[string]any{"kind": "BURN", "expr": burnRule}, &good)
			if !good.V.OK || len(good.V.Errors) != 0 {
				t.Errorf("validateRule(good) = %+v, want ok:true, no errors", good.V)
			}
			var order validation
			e.must(qValidate, map[string]any{"kind": "DRAW_ORDER", "expr": "[grant.priority, grant.expiresAt]"}, &order)
			if !order.V.OK {
				t.Errorf("validateRule(DRAW_ORDER FEFO) = %+v, want ok:true", order.V)
			}
			e.unchanged("validateRule", before, pools...)
		})

		// The refused requests left the service working: the same items now succeed.
		t.Run("still_works", func(t *testing.T) {
			e := *e
			e.t = t
			r := e.record(usage("after-errors"))
			checkAllowed(t, "after errors", r, "after-errors", poolA, "4")
			checkBalance(t, "after errors", e.balance(poolA), "46", tb("ON_DEMAND", "46"))
			e.verify("after errors")
		})
	})
}

func ptr[T any](v T) *T { return &v }

// ---------------------------------------------------------------------------
// 5. Batches

func TestAPIBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		soon := testNow.Add(48 * time.Hour)
		sub := e.grant(pool, "SUBSCRIPTION", "10", &soon)
		e.grant(pool, "ON_DEMAND", "100", nil)

		item1 := map[string]any{"idempotencyKey": "b-1", "organizationId": org, "action": "agent.run"}
		item2 := map[string]any{"idempotencyKey": "b-2", "organizationId": org, "action": "doc.summarize", "properties": map[string]any{"pages": 4}}
		batch := []any{item1, item2, item1}
		var out struct {
			R []resultT `json:"recordUsageBatch"`
		}
		e.must(qRecordBatch, map[string]any{"ins": batch}, &out)
		if len(out.R) != 3 {
			t.Fatalf("recordUsageBatch returned %d results, want 3", len(out.R))
		}
		checkAllowed(t, "item 1", out.R[0], "b-1", pool, "4")
		checkDraws(t, "item 1", out.R[0].Draws, d(sub, "4"))
		checkAllowed(t, "item 2", out.R[1], "b-2", pool, "2") // 1 + 4 * 0.25
		checkDraws(t, "item 2", out.R[1].Draws, d(sub, "2"))
		third := out.R[2]
		if !third.Duplicate {
			t.Errorf("item 3: duplicate = false, want true")
		}
		if third.Event.ID != out.R[0].Event.ID {
			t.Errorf("item 3: event id = %s, want item 1's %s", third.Event.ID, out.R[0].Event.ID)
		}
		if third.Credits != "4" || third.Decision != "ALLOWED" {
			t.Errorf("item 3: credits/decision = %q/%s, want \"4\"/ALLOWED", third.Credits, third.Decision)
		}
		checkDraws(t, "item 3", third.Draws, d(sub, "4"))
		if out.R[0].Event.ID == out.R[1].Event.ID {
			t.Errorf("items 1 and 2 share event id %s", out.R[0].Event.ID)
		}
		checkBalance(t, "after batch", e.balance(pool), "104", tb("SUBSCRIPTION", "4"), tb("ON_DEMAND", "100"))
		entries, _ := e.ledgerAll(pool, 50)
		if len(entries) != 4 { // 2 GRANT + 2 BURN: the duplicate wrote nothing
			t.Errorf("ledger has %d entries after the batch, want 4", len(entries))
		}
		e.verify("batch")

		// The whole batch again: every item a duplicate of its first result.
		before := e.snapshot(pool)
		var again struct {
			R []resultT `json:"recordUsageBatch"`
		}
		e.must(qRecordBatch, map[string]any{"ins": batch}, &again)
		if len(again.R) != 3 {
			t.Fatalf("replayed batch returned %d results, want 3", len(again.R))
		}
		for i, r := range again.R {
			if !r.Duplicate {
				t.Errorf("replayed item %d: duplicate = false, want true", i+1)
			}
			if r.Event.ID != out.R[i].Event.ID || r.Credits != out.R[i].Credits {
				t.Errorf("replayed item %d: event %s credits %q, want %s %q", i+1, r.Event.ID, r.Credits, out.R[i].Event.ID, out.R[i].Credits)
			}
			checkDraws(t, fmt.Sprintf("replayed item %d", i+1), r.Draws, out.R[i].Draws...)
		}
		e.unchanged("replayed batch", before, pool)
	})
}

// ---------------------------------------------------------------------------
// 6. HTTP: health and the body limit

func TestAPIHealthAndBodyLimit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)

		resp, err := e.srv.Client().Get(e.srv.URL + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", resp.StatusCode, body)
		}

		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		e.grant(pool, "ON_DEMAND", "100", nil)
		before := e.snapshot(pool)

		// A valid recordUsage padded with a GraphQL comment past 1 MiB.
		padded := func(key string, size int) []byte {
			q := qRecord + "\n#"
			vars := map[string]any{"in": map[string]any{"idempotencyKey": key, "organizationId": org, "action": "agent.run"}}
			base, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
			q += strings.Repeat("x", size-len(base))
			b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
			return b
		}
		big := padded("too-big", 1<<20+1024)
		if len(big) <= 1<<20 {
			t.Fatalf("test body is %d bytes, want over 1 MiB", len(big))
		}
		status, raw := e.post(big)
		t.Logf("over-limit body (%d bytes): HTTP %d %.200s", len(big), status, raw)
		refused := status != http.StatusOK
		if !refused {
			var resp struct {
				Errors []gqlErr `json:"errors"`
			}
			_ = json.Unmarshal(raw, &resp)
			refused = len(resp.Errors) > 0
		}
		if !refused {
			t.Errorf("a %d-byte body was accepted (HTTP %d): %.300s", len(big), status, raw)
		}
		e.unchanged("over-limit body", before, pool)

		// Control: the same request under the limit is recorded.
		small := padded("just-fits", 1<<20-4096)
		status, raw = e.post(small)
		var ok struct {
			Data struct {
				R *resultT `json:"recordUsage"`
			} `json:"data"`
			Errors []gqlErr `json:"errors"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || status != http.StatusOK || len(ok.Errors) > 0 || ok.Data.R == nil {
			t.Fatalf("a %d-byte body: HTTP %d, %.300s", len(small), status, raw)
		}
		checkAllowed(t, "under-limit body", *ok.Data.R, "just-fits", pool, "4")
		checkBalance(t, "under-limit body", e.balance(pool), "96", tb("ON_DEMAND", "96"))
	})
}

// ---------------------------------------------------------------------------
// 7. Exact decimals end to end

func TestAPIDecimalsExact(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		var gs []string
		for i := 0; i < 3; i++ {
			gs = append(gs, e.grant(pool, "PROMOTIONAL", "0.1", nil))
		}
		checkBalance(t, "three grants of 0.1", e.balance(pool), "0.3", tb("PROMOTIONAL", "0.3"))

		// Weight 0.1 x quantity 3 = 0.3, exactly the balance: allowed.
		r := e.record(map[string]any{"idempotencyKey": "tenths", "organizationId": org, "action": "tenth", "quantity": "3"})
		checkAllowed(t, "tenth x3", r, "tenths", pool, "0.3")
		checkDraws(t, "tenth x3", r.Draws, d(gs[0], "0.1"), d(gs[1], "0.1"), d(gs[2], "0.1"))
		if r.Event.Quantity != "3" {
			t.Errorf("event.quantity = %q, want %q", r.Event.Quantity, "3")
		}
		checkBalance(t, "after burning 0.3", e.balance(pool), "0")

		// One more tenth, then a FAILED tenth: 0.1 * 0.2 = 0.02.
		e.grant(pool, "PROMOTIONAL", "0.1", nil)
		f := e.record(map[string]any{"idempotencyKey": "failed-tenth", "organizationId": org, "action": "tenth", "status": "FAILED"})
		checkAllowed(t, "failed tenth", f, "failed-tenth", pool, "0.02")
		checkBalance(t, "after 0.02", e.balance(pool), "0.08", tb("PROMOTIONAL", "0.08"))

		// Many small decimals: 0.1 x 1.37 = 0.137.
		e.grant(pool, "ON_DEMAND", "1", nil)
		m := e.record(map[string]any{"idempotencyKey": "fractional", "organizationId": org, "action": "tenth", "quantity": "1.37"})
		checkAllowed(t, "tenth x1.37", m, "fractional", pool, "0.137")
		checkBalance(t, "after 0.137", e.balance(pool), "0.943", tb("ON_DEMAND", "0.943"))
		e.verify("decimals")
	})
}

// TestMain keeps the per-request access log out of test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
