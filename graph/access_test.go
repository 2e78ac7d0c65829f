package graph_test

// Access-control tests of the GraphQL API: the @allow rules (read from the
// schema, so a new field or role is covered without touching this file),
// authentication, tenant isolation, secrets, rate and size limits, the audit
// log and what operators observe. Every request goes through the real HTTP
// handler (graph.NewHandler behind httptest.NewServer), on a fresh PostgreSQL
// and a fresh SQLite database each (testdb.Each).
//
// Like api_test.go, top-level tests are not parallel; only the per-dialect
// subtests are (except TestAccessSecretsNeverLeak, which swaps the default
// slog logger).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent/apikey"
	"github.com/creditd/creditd/ent/schema"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/observe"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// ---------------------------------------------------------------------------
// Harness

// accessNow is the service clock of these tests.
var accessNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

type aErr struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// aResp is one HTTP answer, decoded as a GraphQL response when it is one.
type aResp struct {
	Status int
	Header http.Header
	Raw    []byte
	Data   json.RawMessage
	Errors []aErr
}

// code is the first error's extensions.code, "" without errors.
func (r aResp) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r aResp) String() string { return fmt.Sprintf("HTTP %d %.600s", r.Status, r.Raw) }

// aSeen is a request and its answer, kept for the leak checks.
type aSeen struct {
	body []byte
	resp aResp
}

type accessEnv struct {
	t    *testing.T
	db   *store.DB
	svc  *ledger.Service
	srv  *httptest.Server
	op   string // an OPERATOR key's secret
	opID int
	seen *[]aSeen // every request and answer of this env (and its copies)
}

func newAccessEnv(t *testing.T, db *store.DB, opt graph.Options) *accessEnv {
	t.Helper()
	svc := ledger.New(db, ledger.WithClock(func() time.Time { return accessNow }))
	e := &accessEnv{t: t, db: db, svc: svc, seen: new([]aSeen)}
	e = e.with(opt)
	e.op, e.opID = e.newKey("access operator", credit.RoleOperator, "")
	return e
}

// with returns a copy of e served by a new handler with opt (same database,
// service and keys). A zero RateLimit means off here.
func (e *accessEnv) with(opt graph.Options) *accessEnv {
	e.t.Helper()
	if opt.RateLimit == 0 {
		opt.RateLimit = -1
	}
	c := *e
	c.srv = httptest.NewServer(graph.NewHandler(e.svc, e.db, opt))
	e.t.Cleanup(c.srv.Close)
	return &c
}

// newKey creates a key in process (no HTTP, no rate limit spent); org "" is
// vendor-wide.
func (e *accessEnv) newKey(name string, role credit.Role, org string) (secret string, id int) {
	e.t.Helper()
	in := ledger.KeyInput{Name: name, Role: role}
	if org != "" {
		n := atoi(e.t, org)
		in.OrganizationID = &n
	}
	k, s, err := e.svc.CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatalf("create %s key %q: %v", role, name, err)
	}
	return s, k.ID
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not an id: %q", s)
	}
	return n
}

// send makes one HTTP request; authz "" sends no Authorization header.
func (e *accessEnv) send(method, path, authz string, hdr map[string]string, body io.Reader) aResp {
	e.t.Helper()
	var raw []byte
	if body != nil {
		if b, ok := body.(*bytes.Reader); ok {
			raw = make([]byte, b.Len())
			_, _ = b.ReadAt(raw, 0)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	r := aResp{Status: resp.StatusCode, Header: resp.Header, Raw: out}
	var g struct {
		Data   json.RawMessage `json:"data"`
		Errors []aErr          `json:"errors"`
	}
	if json.Unmarshal(out, &g) == nil {
		r.Data, r.Errors = g.Data, g.Errors
	}
	*e.seen = append(*e.seen, aSeen{body: raw, resp: r})
	return r
}

// gqlBody is the JSON body of an operation.
func gqlBody(t *testing.T, query string, vars map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	return b
}

// aDo POSTs an operation with key ("" = no Authorization header).
func (e *accessEnv) aDo(key, query string, vars map[string]any) aResp {
	e.t.Helper()
	return e.aDoH(key, nil, query, vars)
}

// aDoH is aDo with extra headers.
func (e *accessEnv) aDoH(key string, hdr map[string]string, query string, vars map[string]any) aResp {
	e.t.Helper()
	authz := ""
	if key != "" {
		authz = "Bearer " + key
	}
	return e.send(http.MethodPost, "/graphql", authz, hdr, bytes.NewReader(gqlBody(e.t, query, vars)))
}

// aMust runs an operation that has to succeed and decodes its data into out.
func (e *accessEnv) aMust(key, query string, vars map[string]any, out any) aResp {
	e.t.Helper()
	r := e.aDo(key, query, vars)
	if r.Status != http.StatusOK || len(r.Errors) > 0 || r.Data == nil {
		e.t.Fatalf("unexpected answer: %v\nquery: %s\nvars: %v", r, query, vars)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			e.t.Fatalf("decode data: %v\n%s", err, r.Data)
		}
	}
	return r
}

// aWant asserts that the first error has code (and, unless status is 0, the
// HTTP status); it reports and goes on, so one finding does not hide others.
func aWant(t *testing.T, what string, r aResp, status int, code string) aErr {
	t.Helper()
	if len(r.Errors) == 0 {
		t.Errorf("%s: no error, want %s: %v", what, code, r)
		return aErr{}
	}
	if r.code() != code {
		t.Errorf("%s: extensions.code = %q, want %s: %v", what, r.code(), code, r)
	}
	if status != 0 && r.Status != status {
		t.Errorf("%s: HTTP %d, want %d: %v", what, r.Status, status, r)
	}
	return r.Errors[0]
}

// rows counts every table a refused request must not write.
func (e *accessEnv) rows() map[string]int {
	e.t.Helper()
	ctx := context.Background()
	c := e.db.Client
	out := map[string]int{}
	for name, count := range map[string]func(context.Context) (int, error){
		"organizations":    c.Organization.Query().Count,
		"pools":            c.Pool.Query().Count,
		"grants":           c.Grant.Query().Count,
		"ledger_entries":   c.LedgerEntry.Query().Count,
		"usage_events":     c.UsageEvent.Query().Count,
		"api_keys":         c.APIKey.Query().Count,
		"revoked_api_keys": c.APIKey.Query().Where(apikey.RevokedAtNotNil()).Count,
		"audit_entries":    c.AuditEntry.Query().Count,
		"weight_registers": c.WeightRegister.Query().Count,
		"weights":          c.Weight.Query().Count,
		"policy_versions":  c.PolicyVersion.Query().Count,
	} {
		n, err := count(ctx)
		if err != nil {
			e.t.Fatalf("count %s: %v", name, err)
		}
		out[name] = n
	}
	return out
}

func (e *accessEnv) sameRows(what string, before map[string]int) {
	e.t.Helper()
	if after := e.rows(); !reflect.DeepEqual(before, after) {
		e.t.Errorf("%s wrote rows: before %v, after %v", what, before, after)
	}
}

const (
	aqCreateOrg  = `mutation($name: String!) { createOrganization(name: $name) { id } }`
	aqCreatePool = `mutation($org: ID!, $name: String!) { createPool(organizationId: $org, kind: ACCOUNT, name: $name) { id } }`
	aqGrant      = `mutation($in: GrantInput!) { grantCredits(input: $in) { id } }`
	aqRecord     = `mutation($in: UsageInput!) { recordUsage(input: $in) {
  decision credits duplicate draws { grant { id pool { id organization { id } } } amount }
  event { id idempotencyKey pool { id organization { id } } } } }`
	aqOrg       = `query($id: ID!) { organization(id: $id) { id name } }`
	aqPool      = `query($id: ID!) { pool(id: $id) { id organization { id } } }`
	aqLedger    = `query($id: ID!) { ledger(poolId: $id) { edges { node { id pool { id } } } } }`
	aqCreateKey = `mutation($name: String!, $role: Role!, $org: ID) {
  createApiKey(name: $name, role: $role, organizationId: $org) { secret key { id name role hint organization { id } } } }`
	aqRevokeKey = `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`
	aqKeys      = `query { apiKeys { id name role hint createdAt lastUsedAt revokedAt organization { id } } }`
	aqAudit     = `query($org: ID, $first: Int) { auditLog(organizationId: $org, first: $first) {
  edges { node { id actorKeyId actor organizationId action objectType objectId before after requestId createdAt } }
  pageInfo { hasNextPage } } }`
)

// pricing publishes register "default" v1 (agent.run: 1 credit).
func (e *accessEnv) pricing() {
	e.t.Helper()
	e.aMust(e.op, `mutation { saveWeightRegisterDraft(name: "default", weights: [{action: "agent.run", credits: "1"}]) { id } }`, nil, nil)
	e.aMust(e.op, `mutation { publishWeightRegister(name: "default", version: 1) { version } }`, nil, nil)
}

// org creates an organisation with an ACCOUNT pool holding a grant of 100.
func (e *accessEnv) org(name string) (org, pool, grant string) {
	e.t.Helper()
	var o struct {
		R struct{ ID string } `json:"createOrganization"`
	}
	e.aMust(e.op, aqCreateOrg, map[string]any{"name": name}, &o)
	var p struct {
		R struct{ ID string } `json:"createPool"`
	}
	e.aMust(e.op, aqCreatePool, map[string]any{"org": o.R.ID, "name": name + " account"}, &p)
	return o.R.ID, p.R.ID, e.grantTo(e.op, p.R.ID, "100")
}

func (e *accessEnv) grantTo(key, pool, amount string) string {
	e.t.Helper()
	var g struct {
		R struct{ ID string } `json:"grantCredits"`
	}
	e.aMust(key, aqGrant, map[string]any{"in": map[string]any{"poolId": pool, "creditType": "ON_DEMAND", "amount": amount}}, &g)
	return g.R.ID
}

type aUsage struct {
	Decision  string `json:"decision"`
	Credits   string `json:"credits"`
	Duplicate bool   `json:"duplicate"`
	Draws     []struct {
		Grant struct {
			ID   string `json:"id"`
			Pool struct {
				ID           string `json:"id"`
				Organization struct {
					ID string `json:"id"`
				} `json:"organization"`
			} `json:"pool"`
		} `json:"grant"`
	} `json:"draws"`
	Event struct {
		ID             string `json:"id"`
		IdempotencyKey string `json:"idempotencyKey"`
		Pool           struct {
			ID           string `json:"id"`
			Organization struct {
				ID string `json:"id"`
			} `json:"organization"`
		} `json:"pool"`
	} `json:"event"`
}

// use records one agent.run for org with key.
func (e *accessEnv) use(key, org, idem string) aUsage {
	e.t.Helper()
	var out struct {
		R aUsage `json:"recordUsage"`
	}
	e.aMust(key, aqRecord, map[string]any{"in": map[string]any{"idempotencyKey": idem, "organizationId": org, "action": "agent.run"}}, &out)
	if out.R.Decision != "ALLOWED" {
		e.t.Fatalf("recordUsage %s for %s: decision %s, want ALLOWED", idem, org, out.R.Decision)
	}
	return out.R
}

// ---------------------------------------------------------------------------
// 1. Every field has an access rule

// allowRoles reads @allow(roles: [...]); ok is false without the directive.
func allowRoles(ds ast.DirectiveList) (roles []string, ok bool) {
	d := ds.ForName("allow")
	if d == nil {
		return nil, false
	}
	if arg := d.Arguments.ForName("roles"); arg != nil && arg.Value != nil {
		for _, c := range arg.Value.Children {
			roles = append(roles, c.Value.Raw)
		}
	}
	return roles, true
}

func accessSchema(t *testing.T) *ast.Schema {
	t.Helper()
	s := graph.NewExecutableSchema(graph.Config{}).Schema()
	if s == nil || s.Query == nil || s.Mutation == nil {
		t.Fatalf("schema without Query or Mutation")
	}
	return s
}

// schemaRoles are the values of enum Role.
func schemaRoles(t *testing.T, s *ast.Schema) []string {
	t.Helper()
	def := s.Types["Role"]
	if def == nil || def.Kind != ast.Enum || len(def.EnumValues) == 0 {
		t.Fatalf("the schema has no enum Role")
	}
	var out []string
	for _, v := range def.EnumValues {
		out = append(out, v.Name)
	}
	return out
}

// fieldRoles is the effective rule of Type.field: its own @allow, else its
// type's (graph.rulesOf's lookup, reimplemented from the directives).
func fieldRoles(def *ast.Definition, f *ast.FieldDefinition) ([]string, bool) {
	if r, ok := allowRoles(f.Directives); ok {
		return r, true
	}
	return allowRoles(def.Directives)
}

func TestEveryFieldHasAnAccessRule(t *testing.T) {
	s := accessSchema(t)
	valid := map[string]bool{}
	for _, r := range schemaRoles(t, s) {
		valid[r] = true
	}
	roots := map[string]bool{s.Query.Name: true, s.Mutation.Name: true}
	if s.Subscription != nil {
		roots[s.Subscription.Name] = true
	}
	var missing, notExplicit, bad []string
	checked := 0
	names := make([]string, 0, len(s.Types))
	for n := range s.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	checkRoles := func(where string, roles []string) {
		if len(roles) == 0 {
			bad = append(bad, where+": @allow with no roles")
		}
		for _, r := range roles {
			if !valid[r] {
				bad = append(bad, fmt.Sprintf("%s: @allow names %q, not a value of enum Role", where, r))
			}
		}
	}
	for _, n := range names {
		def := s.Types[n]
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		if r, ok := allowRoles(def.Directives); ok {
			checkRoles("type "+def.Name, r)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			checked++
			name := def.Name + "." + f.Name
			own, explicit := allowRoles(f.Directives)
			if explicit {
				checkRoles(name, own)
			}
			if _, ok := fieldRoles(def, f); !ok {
				missing = append(missing, name)
			}
			if roots[def.Name] && !explicit {
				notExplicit = append(notExplicit, name)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d fields checked: the schema was not read", checked)
	}
	if len(missing) > 0 {
		t.Errorf("fields without an access rule (neither the field nor its type has @allow): %s", strings.Join(missing, ", "))
	}
	if len(notExplicit) > 0 {
		t.Errorf("root fields without their own @allow: %s", strings.Join(notExplicit, ", "))
	}
	if len(bad) > 0 {
		t.Errorf("malformed access rules: %s", strings.Join(bad, "; "))
	}
	t.Logf("%d object fields checked", checked)
}

// ---------------------------------------------------------------------------
// 2. The role matrix, generated from the schema

// matrixOp builds an operation calling root field f with every required
// argument filled from its type; ids names the id for an ID argument.
func matrixOp(s *ast.Schema, opType string, f *ast.FieldDefinition, ids func(arg string) string) (string, map[string]any, error) {
	vars := map[string]any{}
	var defs, args []string
	for i, a := range f.Arguments {
		if !a.Type.NonNull || a.DefaultValue != nil {
			continue
		}
		v, err := sampleValue(s, a.Type, a.Name, ids)
		if err != nil {
			return "", nil, fmt.Errorf("%s(%s): %w", f.Name, a.Name, err)
		}
		name := fmt.Sprintf("a%d", i)
		vars[name] = v
		defs = append(defs, "$"+name+": "+a.Type.String())
		args = append(args, a.Name+": $"+name)
	}
	q := opType
	if len(defs) > 0 {
		q += "(" + strings.Join(defs, ", ") + ")"
	}
	q += " { " + f.Name
	if len(args) > 0 {
		q += "(" + strings.Join(args, ", ") + ")"
	}
	if def := s.Types[f.Type.Name()]; def != nil && (def.Kind == ast.Object || def.Kind == ast.Interface || def.Kind == ast.Union) {
		q += " { __typename }"
	}
	return q + " }", vars, nil
}

// sampleValue is a harmless value of type t.
func sampleValue(s *ast.Schema, t *ast.Type, arg string, ids func(string) string) (any, error) {
	if t.Elem != nil {
		v, err := sampleValue(s, t.Elem, arg, ids)
		return []any{v}, err
	}
	def := s.Types[t.NamedType]
	if def == nil {
		return nil, fmt.Errorf("unknown type %s", t.NamedType)
	}
	switch def.Kind {
	case ast.Scalar:
		switch def.Name {
		case "ID":
			return ids(arg), nil
		case "String":
			return "access-matrix", nil
		case "Int":
			return 1, nil
		case "Float":
			return 1.0, nil
		case "Boolean":
			return false, nil
		case "Decimal":
			return "1", nil
		case "Time":
			return accessNow.Format(time.RFC3339), nil
		case "JSON":
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("no sample value for scalar %s: teach sampleValue", def.Name)
	case ast.Enum:
		switch def.Name {
		case "Role":
			return string(credit.RoleService), nil
		case "PolicyKind":
			return "BURN", nil
		}
		return def.EnumValues[0].Name, nil
	case ast.InputObject:
		m := map[string]any{}
		for _, f := range def.Fields {
			if f.Type.NonNull && f.DefaultValue == nil {
				v, err := sampleValue(s, f.Type, f.Name, ids)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", def.Name, f.Name, err)
				}
				m[f.Name] = v
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot build an input of kind %s (%s)", def.Kind, def.Name)
}

func TestRoleMatrix(t *testing.T) {
	s := accessSchema(t)
	roles := schemaRoles(t, s)
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{})
		e.pricing()
		org, pool, _ := e.org("Matrix")
		keys := map[string]string{}
		for _, r := range roles {
			scope := ""
			if r == string(credit.RoleOrgAdmin) || r == string(credit.RoleService) {
				scope = org
			}
			keys[r], _ = e.newKey("matrix "+r, credit.Role(r), scope)
		}
		var table []string
		cells := 0
		for _, root := range []*ast.Definition{s.Query, s.Mutation} {
			opType := strings.ToLower(string(root.Name)) // "query", "mutation"
			for _, f := range root.Fields {
				if strings.HasPrefix(f.Name, "__") {
					continue
				}
				allowedList, _ := fieldRoles(root, f)
				allowed := map[string]bool{}
				for _, r := range allowedList {
					allowed[r] = true
				}
				name := root.Name + "." + f.Name
				row := name + ":"
				for _, role := range roles {
					// An id for each ID argument: the test organisation's
					// objects; revokeApiKey gets a fresh victim key of the
					// organisation, so that no role's key is revoked.
					ids := func(arg string) string {
						a := strings.ToLower(arg)
						switch {
						case a == "id" && f.Type.Name() == "ApiKey":
							_, id := e.newKey("matrix victim", credit.RoleService, org)
							return strconv.Itoa(id)
						case a == "id" && f.Type.Name() == "Organization", strings.Contains(a, "organization"):
							return org
						case a == "id" && f.Type.Name() == "Pool", strings.Contains(a, "pool"), strings.Contains(a, "parent"):
							return pool
						}
						t.Logf("%s: ID argument %q filled with 1", name, arg)
						return "1"
					}
					q, vars, err := matrixOp(s, opType, f, ids)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						break
					}
					before := e.rows()
					r := e.aDo(keys[role], q, vars)
					cells++
					code := r.code()
					if code == "" {
						row += " " + role + "=ok"
					} else {
						row += " " + role + "=" + code
					}
					if !allowed[role] {
						if code != string(auth.CodeForbidden) || r.Status != http.StatusOK {
							t.Errorf("%s as %s (not in @allow %v): want FORBIDDEN, got %v\nquery: %s", name, role, allowedList, r, q)
						}
						e.sameRows(fmt.Sprintf("refused %s as %s", name, role), before)
						var data map[string]any
						if err := json.Unmarshal(r.Data, &data); err == nil && data != nil && data[f.Name] != nil {
							t.Errorf("%s as %s: refused but data.%s = %v", name, role, f.Name, data[f.Name])
						}
						continue
					}
					for _, er := range r.Errors {
						if c := er.Extensions["code"]; c == string(auth.CodeForbidden) || c == string(auth.CodeUnauthenticated) {
							t.Errorf("%s as %s (allowed by @allow %v): got %v\nquery: %s\nvars: %v", name, role, allowedList, r, q, vars)
							break
						}
					}
					if r.Status != http.StatusOK {
						t.Errorf("%s as %s: HTTP %d: %v", name, role, r.Status, r)
					}
				}
				table = append(table, row)
			}
		}
		if want := len(roles) * (len(s.Query.Fields) + len(s.Mutation.Fields)); cells < want-2*len(roles) {
			t.Errorf("only %d cells sent, want about %d", cells, want)
		}
		t.Logf("role matrix (%d cells):\n%s", cells, strings.Join(table, "\n"))
	})
}

// ---------------------------------------------------------------------------
// 3. Authentication: no key, malformed, unknown and revoked keys

func TestAccessAuthentication(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{})
		org, _, _ := e.org("Acme")
		before := e.rows()

		// No key: every field answers UNAUTHENTICATED, nothing is written.
		r := e.aDo("", aqOrg, map[string]any{"id": org})
		aWant(t, "organization without a key", r, 0, string(auth.CodeUnauthenticated))
		if !strings.Contains(string(r.Data), `"organization":null`) && string(r.Data) != "null" {
			t.Errorf("organization without a key: data = %s, want no organisation", r.Data)
		}
		r = e.aDo("", aqCreateOrg, map[string]any{"name": "no key"})
		aWant(t, "createOrganization without a key", r, 0, string(auth.CodeUnauthenticated))
		e.sameRows("requests without a key", before)

		// Introspection works without a key.
		var in struct {
			S struct {
				QueryType struct{ Name string } `json:"queryType"`
			} `json:"__schema"`
		}
		e.aMust("", `{ __schema { queryType { name } } }`, nil, &in)
		if in.S.QueryType.Name != "Query" {
			t.Errorf("introspection without a key: queryType = %q, want Query", in.S.QueryType.Name)
		}
		// The full introspection query of graphql-js (what the bundled
		// playground sends) works without a key under the default limits.
		r = e.aDo("", accessIntrospectionQuery, nil)
		if r.Status != http.StatusOK || len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"name":"ApiKey"`) {
			t.Errorf("the standard introspection query under the default limits: %v", r)
		}

		// GET cannot run mutations (no writes through links or images).
		q := "/graphql?query=" + strings.ReplaceAll(`mutation{createOrganization(name:"by-get"){id}}`, " ", "")
		if r := e.send(http.MethodGet, q, "Bearer "+e.op, nil, nil); len(r.Errors) == 0 {
			t.Errorf("a mutation over GET was not refused: %v", r)
		}
		e.sameRows("a mutation over GET", before)

		// Malformed Authorization headers: 401 KEY_MALFORMED, whatever follows.
		body := gqlBody(t, aqOrg, map[string]any{"id": org})
		for _, h := range []string{"Basic x", "Bearer short", "Bearer", "Bearer ", "Basic " + e.op, "Token " + e.op, e.op,
			"Bearer " + e.op[:len(e.op)-21], "Bearer " + strings.Repeat("k", 201), "Bearer cdk_ key with spaces in it 0123456789"} {
			r := e.send(http.MethodPost, "/graphql", h, nil, bytes.NewReader(body))
			aWant(t, fmt.Sprintf("Authorization %.30q", h), r, http.StatusUnauthorized, string(auth.CodeKeyMalformed))
			if string(r.Data) != "null" {
				t.Errorf("Authorization %.30q: data = %s, want null", h, r.Data)
			}
		}

		// Well-formed keys no one issued: 401 KEY_UNKNOWN.
		for _, k := range []string{"cdk_" + strings.Repeat("A", 40), e.op[:len(e.op)-1] + flip(e.op[len(e.op)-1]), e.op + "x"} {
			r := e.send(http.MethodPost, "/graphql", "Bearer "+k, nil, bytes.NewReader(body))
			aWant(t, "an unknown key", r, http.StatusUnauthorized, string(auth.CodeKeyUnknown))
		}
		// The scheme is case-insensitive.
		if r := e.send(http.MethodPost, "/graphql", "bearer "+e.op, nil, bytes.NewReader(body)); r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Errorf("lower-case bearer: %v", r)
		}

		// Revocation takes effect at once.
		key, id := e.newKey("soon revoked", credit.RoleService, org)
		e.aMust(key, aqOrg, map[string]any{"id": org}, nil)
		var rev struct {
			R struct {
				ID        string  `json:"id"`
				RevokedAt *string `json:"revokedAt"`
			} `json:"revokeApiKey"`
		}
		e.aMust(e.op, aqRevokeKey, map[string]any{"id": strconv.Itoa(id)}, &rev)
		if rev.R.ID != strconv.Itoa(id) || rev.R.RevokedAt == nil {
			t.Errorf("revokeApiKey = %+v, want key %d with revokedAt", rev.R, id)
		}
		before = e.rows()
		r = e.aDo(key, aqOrg, map[string]any{"id": org})
		aWant(t, "the revoked key's next request", r, http.StatusUnauthorized, string(auth.CodeKeyRevoked))
		r = e.aDo(key, aqRecord, map[string]any{"in": map[string]any{"idempotencyKey": "revoked", "organizationId": org, "action": "agent.run"}})
		aWant(t, "recordUsage with a revoked key", r, http.StatusUnauthorized, string(auth.CodeKeyRevoked))
		e.sameRows("requests with a revoked key", before)

		// Revoking twice keeps the first time.
		var rev2 struct {
			R struct {
				RevokedAt *string `json:"revokedAt"`
			} `json:"revokeApiKey"`
		}
		e.aMust(e.op, aqRevokeKey, map[string]any{"id": strconv.Itoa(id)}, &rev2)
		if rev2.R.RevokedAt == nil || rev.R.RevokedAt == nil || *rev2.R.RevokedAt != *rev.R.RevokedAt {
			t.Errorf("second revoke: revokedAt %v, want %v", rev2.R.RevokedAt, rev.R.RevokedAt)
		}
		// The operator key still works.
		e.aMust(e.op, aqOrg, map[string]any{"id": org}, nil)
	})
}

// flip changes a base62 character.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// ---------------------------------------------------------------------------
// 4. Tenant isolation

var idInMessage = regexp.MustCompile(`\b\d+\b`)

// sameAsMissing asserts that r (about another organisation's id) is the
// same answer as missing (about an id that does not exist): same status,
// data and errors, the id in the message aside.
func sameAsMissing(t *testing.T, what string, r, missing aResp) {
	t.Helper()
	norm := func(x aResp) string {
		errs := make([]aErr, len(x.Errors))
		for i, er := range x.Errors {
			er.Message = idInMessage.ReplaceAllString(er.Message, "<id>")
			errs[i] = er
		}
		b, _ := json.Marshal(map[string]any{"status": x.Status, "data": x.Data, "errors": errs})
		return string(b)
	}
	if a, b := norm(r), norm(missing); a != b {
		t.Errorf("%s: another organisation's id and a nonexistent id answer differently:\n  theirs:  %s\n  missing: %s", what, a, b)
	}
}

// climbCheck walks a response and fails on any organisation, pool or grant
// that is not the caller's own.
func climbCheck(t *testing.T, what string, data json.RawMessage, org string, pools, grants map[string]bool) int {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	seen := 0
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case []any:
			for _, y := range x {
				walk(y, key)
			}
		case map[string]any:
			if id, ok := x["id"].(string); ok {
				seen++
				switch key {
				case "organization":
					if id != org {
						t.Errorf("%s: organisation %s reached, want only %s", what, id, org)
					}
				case "pool", "pools", "parent":
					if !pools[id] {
						t.Errorf("%s: pool %s reached, not one of the caller's %v", what, id, pools)
					}
				case "grant", "grants":
					if !grants[id] {
						t.Errorf("%s: grant %s reached, not one of the caller's %v", what, id, grants)
					}
				}
			}
			for k, y := range x {
				walk(y, k)
			}
		}
	}
	walk(v, "")
	return seen
}

func TestAccessTenantIsolation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{})
		e.pricing()
		orgA, poolA, grantA := e.org("Tenant A")
		orgB, poolB, grantB := e.org("Tenant B")
		admin, adminID := e.newKey("admin A", credit.RoleOrgAdmin, orgA)
		service, serviceID := e.newKey("service A", credit.RoleService, orgA)
		serviceB, serviceBID := e.newKey("service B", credit.RoleService, orgB)
		_, adminBID := e.newKey("admin B", credit.RoleOrgAdmin, orgB)
		e.use(service, orgA, "a-1")
		e.use(serviceB, orgB, "b-1")
		e.use(e.op, orgB, "b-2")
		const missing = "999999"

		// Positive controls: A's keys see A.
		e.aMust(admin, aqOrg, map[string]any{"id": orgA}, nil)
		e.aMust(service, aqPool, map[string]any{"id": poolA}, nil)
		e.aMust(admin, aqLedger, map[string]any{"id": poolA}, nil)

		before := e.rows()
		for _, k := range []struct{ name, key string }{{"ORG_ADMIN of A", admin}, {"SERVICE of A", service}} {
			for _, c := range []struct {
				what, query, id string
			}{
				{"organization(B)", aqOrg, orgB},
				{"pool(B's pool)", aqPool, poolB},
			} {
				theirs := e.aDo(k.key, c.query, map[string]any{"id": c.id})
				aWant(t, k.name+": "+c.what, theirs, http.StatusOK, string(credit.CodeNotFound))
				sameAsMissing(t, k.name+": "+c.what, theirs, e.aDo(k.key, c.query, map[string]any{"id": missing}))
			}
		}
		theirs := e.aDo(admin, aqLedger, map[string]any{"id": poolB})
		aWant(t, "ORG_ADMIN of A: ledger(B's pool)", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "ORG_ADMIN of A: ledger(B's pool)", theirs, e.aDo(admin, aqLedger, map[string]any{"id": missing}))
		// ledger is not a SERVICE field at all.
		aWant(t, "SERVICE of A: ledger(B's pool)", e.aDo(service, aqLedger, map[string]any{"id": poolB}), http.StatusOK, string(auth.CodeForbidden))

		// recordUsage in B, or in A on B's pool.
		usage := func(org string, pool any) map[string]any {
			return map[string]any{"in": map[string]any{"idempotencyKey": "cross-" + org, "organizationId": org, "poolId": pool, "action": "agent.run"}}
		}
		theirs = e.aDo(service, aqRecord, usage(orgB, nil))
		aWant(t, "recordUsage for B by A's service key", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "recordUsage for B by A's service key", theirs, e.aDo(service, aqRecord, usage(missing, nil)))
		theirs = e.aDo(service, aqRecord, usage(orgA, poolB))
		aWant(t, "recordUsage for A on B's pool", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "recordUsage for A on B's pool", theirs, e.aDo(service, aqRecord, usage(orgA, missing)))
		// ... and by an OPERATOR: a pool of another organisation than the one named.
		aWant(t, "OPERATOR: recordUsage for A on B's pool", e.aDo(e.op, aqRecord, usage(orgA, poolB)), http.StatusOK, string(credit.CodeNotFound))
		// A batch with one item of B writes nothing, not even A's item.
		r := e.aDo(service, `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { decision } }`, map[string]any{"ins": []any{
			map[string]any{"idempotencyKey": "batch-a", "organizationId": orgA, "action": "agent.run"},
			map[string]any{"idempotencyKey": "batch-b", "organizationId": orgB, "action": "agent.run"},
		}})
		if er := aWant(t, "recordUsageBatch with an item of B", r, http.StatusOK, string(credit.CodeNotFound)); er.Extensions != nil && er.Extensions["index"] != float64(1) {
			t.Errorf("recordUsageBatch with an item of B: index = %v, want 1", er.Extensions["index"])
		}

		// createPool in B; keys for B; an OPERATOR key; revoking B's key.
		pool := func(org string) map[string]any { return map[string]any{"org": org, "name": "intruder"} }
		theirs = e.aDo(admin, aqCreatePool, pool(orgB))
		aWant(t, "createPool in B by A's admin", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "createPool in B by A's admin", theirs, e.aDo(admin, aqCreatePool, pool(missing)))
		// A parent pool of B for a pool of A.
		theirs = e.aDo(admin, `mutation($org: ID!, $parent: ID) { createPool(organizationId: $org, kind: TEAM, name: "team", parentId: $parent) { id } }`,
			map[string]any{"org": orgA, "parent": poolB})
		aWant(t, "createPool in A under B's pool", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "createPool in A under B's pool", theirs, e.aDo(admin, `mutation($org: ID!, $parent: ID) { createPool(organizationId: $org, kind: TEAM, name: "team", parentId: $parent) { id } }`,
			map[string]any{"org": orgA, "parent": missing}))
		key := func(role, org string) map[string]any {
			m := map[string]any{"name": "intruder", "role": role}
			if org != "" {
				m["org"] = org
			}
			return m
		}
		for _, role := range []string{"ORG_ADMIN", "SERVICE"} {
			theirs = e.aDo(admin, aqCreateKey, key(role, orgB))
			aWant(t, "createApiKey "+role+" for B by A's admin", theirs, http.StatusOK, string(credit.CodeNotFound))
			sameAsMissing(t, "createApiKey "+role+" for B by A's admin", theirs, e.aDo(admin, aqCreateKey, key(role, missing)))
		}
		for _, role := range []string{"OPERATOR", "PRICING", "REVOPS"} {
			aWant(t, "A's admin creating a vendor-wide "+role+" key", e.aDo(admin, aqCreateKey, key(role, "")), http.StatusOK, string(auth.CodeForbidden))
			aWant(t, "A's admin creating an "+role+" key of A", e.aDo(admin, aqCreateKey, key(role, orgA)), http.StatusOK, string(auth.CodeForbidden))
		}
		for _, victim := range []struct {
			what string
			id   int
		}{{"B's SERVICE key", serviceBID}, {"B's ORG_ADMIN key", adminBID}, {"the OPERATOR key", e.opID}} {
			theirs = e.aDo(admin, aqRevokeKey, map[string]any{"id": strconv.Itoa(victim.id)})
			aWant(t, "revokeApiKey of "+victim.what+" by A's admin", theirs, http.StatusOK, string(credit.CodeNotFound))
			sameAsMissing(t, "revokeApiKey of "+victim.what+" by A's admin", theirs, e.aDo(admin, aqRevokeKey, map[string]any{"id": missing}))
		}
		// B's key still works.
		e.aMust(serviceB, aqOrg, map[string]any{"id": orgB}, nil)

		// apiKeys: only A's keys.
		var keys struct {
			Keys []struct {
				ID           string `json:"id"`
				Organization *struct {
					ID string `json:"id"`
				} `json:"organization"`
			} `json:"apiKeys"`
		}
		e.aMust(admin, aqKeys, nil, &keys)
		got := map[string]bool{}
		for _, k := range keys.Keys {
			got[k.ID] = true
			if k.Organization == nil || k.Organization.ID != orgA {
				t.Errorf("apiKeys as A's admin: key %s of organisation %v, want only %s's", k.ID, k.Organization, orgA)
			}
		}
		if !got[strconv.Itoa(adminID)] || !got[strconv.Itoa(serviceID)] || len(got) != 2 {
			t.Errorf("apiKeys as A's admin = %v, want exactly A's keys %d and %d", got, adminID, serviceID)
		}

		// auditLog: only A's entries; B's log is not found.
		var audit struct {
			L struct {
				Edges []struct {
					Node struct {
						ID             string  `json:"id"`
						OrganizationID *string `json:"organizationId"`
						Action         string  `json:"action"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"auditLog"`
		}
		e.aMust(admin, aqAudit, map[string]any{"first": 500}, &audit)
		if len(audit.L.Edges) == 0 {
			t.Errorf("auditLog as A's admin is empty; A's organisation, pool, grant and keys were audited")
		}
		for _, ed := range audit.L.Edges {
			if ed.Node.OrganizationID == nil || *ed.Node.OrganizationID != orgA {
				t.Errorf("auditLog as A's admin: entry %s (%s) of organisation %v, want only %s's", ed.Node.ID, ed.Node.Action, ed.Node.OrganizationID, orgA)
			}
		}
		e.aMust(admin, aqAudit, map[string]any{"org": orgA}, nil)
		theirs = e.aDo(admin, aqAudit, map[string]any{"org": orgB})
		aWant(t, "auditLog(B) as A's admin", theirs, http.StatusOK, string(credit.CodeNotFound))
		sameAsMissing(t, "auditLog(B) as A's admin", theirs, e.aDo(admin, aqAudit, map[string]any{"org": missing}))
		e.sameRows("refused cross-tenant calls", before)

		// Nested fields cannot climb out.
		poolsA, grantsA := map[string]bool{poolA: true}, map[string]bool{grantA: true}
		_ = grantB
		climb := `query($id: ID!) { organization(id: $id) { id pools { id organization { id pools { id
  grants(includeEmpty: true) { id pool { id organization { id pools { id parent { id } } } } } } } } } }`
		for _, k := range []struct{ name, key string }{{"ORG_ADMIN of A", admin}, {"SERVICE of A", service}} {
			r := e.aMust(k.key, climb, map[string]any{"id": orgA}, nil)
			if n := climbCheck(t, k.name+": nested organisation", r.Data, orgA, poolsA, grantsA); n < 8 {
				t.Errorf("%s: nested query saw %d objects, want the whole tree: %s", k.name, n, r.Data)
			}
		}
		r = e.aMust(admin, `query($id: ID!) { ledger(poolId: $id, first: 500) { edges { node { id pool { id organization { id } }
  grant { id pool { id organization { id } } } usageEvent { id pool { id organization { id pools { id } } } } } } } }`, map[string]any{"id": poolA}, nil)
		climbCheck(t, "ORG_ADMIN of A: nested ledger", r.Data, orgA, poolsA, grantsA)
		r = e.aMust(admin, `query { apiKeys { id organization { id pools { id grants { id } } } } }`, nil, nil)
		climbCheck(t, "ORG_ADMIN of A: nested apiKeys", r.Data, orgA, poolsA, grantsA)
		// Usage recorded by A's service key draws on A only, and reuses no
		// idempotency key of B ("b-1" is B's).
		u := e.use(service, orgA, "b-1")
		if u.Duplicate || u.Event.Pool.ID != poolA || u.Event.Pool.Organization.ID != orgA {
			t.Errorf("A's recordUsage with B's idempotency key: %+v, want a new event on A's pool %s", u, poolA)
		}
		for _, d := range u.Draws {
			if d.Grant.ID != grantA || d.Grant.Pool.Organization.ID != orgA {
				t.Errorf("A's recordUsage drew on grant %s of organisation %s, want %s of %s", d.Grant.ID, d.Grant.Pool.Organization.ID, grantA, orgA)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 5. Secrets never leak

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAccessSecretsNeverLeak(t *testing.T) {
	// Not parallel: the default logger is process-wide.
	logs := &lockedBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	testdb.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db, graph.Options{})
		e.pricing()
		org, _, _ := e.org("Secretive")
		secrets := []string{e.op}

		type created struct {
			R struct {
				Secret string `json:"secret"`
				Key    struct {
					ID   string `json:"id"`
					Hint string `json:"hint"`
				} `json:"key"`
			} `json:"createApiKey"`
		}
		create := func(by, name, role, org string) (string, string) {
			t.Helper()
			vars := map[string]any{"name": name, "role": role}
			if org != "" {
				vars["org"] = org
			}
			var c created
			e.aMust(by, aqCreateKey, vars, &c)
			s := c.R.Secret
			if !strings.HasPrefix(s, auth.KeyPrefix) || len(s) != len(auth.KeyPrefix)+40 || !auth.WellFormed(s) {
				t.Errorf("createApiKey secret %q: want cdk_ and 40 characters", s)
			}
			if c.R.Key.Hint != auth.Hint(s) || len(c.R.Key.Hint) >= len(s) {
				t.Errorf("createApiKey hint = %q, want a short prefix of the secret", c.R.Key.Hint)
			}
			secrets = append(secrets, s)
			return s, c.R.Key.ID
		}
		admin, _ := create(e.op, "leak admin", "ORG_ADMIN", org)
		service, serviceID := create(admin, "leak service", "SERVICE", "")
		pricing, _ := create(e.op, "leak pricing", "PRICING", "")

		// Use them, revoke one, send bad keys.
		e.aMust(admin, aqOrg, map[string]any{"id": org}, nil)
		e.use(service, org, "leak-1")
		e.aMust(pricing, `query { validateRule(kind: BURN, expression: "weight") { ok } }`, nil, nil)
		aWant(t, "PRICING creating an organisation", e.aDo(pricing, aqCreateOrg, map[string]any{"name": "x"}), http.StatusOK, string(auth.CodeForbidden))
		e.aDo(admin, `query { organization(id: `, nil) // a parse error
		e.aMust(admin, aqRevokeKey, map[string]any{"id": serviceID}, nil)
		aWant(t, "the revoked key", e.aDo(service, aqOrg, map[string]any{"id": org}), http.StatusUnauthorized, string(auth.CodeKeyRevoked))
		body := gqlBody(t, aqOrg, map[string]any{"id": org})
		for _, h := range []string{"Basic " + admin, admin, "Bearer " + admin + "x", "Bearer " + admin + " " + admin, "Bearer " + pricing[:20]} {
			r := e.send(http.MethodPost, "/graphql", h, nil, bytes.NewReader(body))
			if r.Status != http.StatusUnauthorized {
				t.Errorf("Authorization %.12q…: %v, want 401", h, r)
			}
		}

		// Lists and the audit log, as OPERATOR and as the organisation's admin.
		e.aMust(e.op, aqKeys, nil, nil)
		e.aMust(admin, aqKeys, nil, nil)
		auditRaw := e.aMust(e.op, aqAudit, map[string]any{"first": 500}, nil).Raw
		e.aMust(admin, aqAudit, map[string]any{"first": 500}, nil)
		if !strings.Contains(string(auditRaw), `"createApiKey"`) || !strings.Contains(string(auditRaw), `"revokeApiKey"`) {
			t.Errorf("the audit log has no createApiKey/revokeApiKey entries: %.500s", auditRaw)
		}

		leaks := func(where, text string) {
			t.Helper()
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s contains the secret %s…", where, s[:8])
				}
				if h := auth.Hash(s); strings.Contains(text, h) {
					t.Errorf("%s contains the secret hash of %s…", where, s[:8])
				}
			}
		}
		answers := 0
		for i, s := range *e.seen {
			if bytes.Contains(s.body, []byte("createApiKey")) {
				continue // the one answer that shows the secret
			}
			answers++
			leaks(fmt.Sprintf("answer %d (%.60s)", i, s.body), string(s.resp.Raw))
			for k, vs := range s.resp.Header {
				leaks(fmt.Sprintf("answer %d header %s", i, k), strings.Join(vs, " "))
			}
		}
		leaks("the audit log (OPERATOR)", string(auditRaw))
		out := logs.String()
		if !strings.Contains(out, `"msg":"request"`) {
			t.Errorf("the log capture saw no request lines: %.300s", out)
		}
		leaks("the server log", out)
		// The database keeps the hash only.
		for _, s := range secrets {
			n, err := db.Client.APIKey.Query().Where(apikey.Or(apikey.SecretHash(s), apikey.Hint(s))).Count(context.Background())
			if err != nil || n != 0 {
				t.Errorf("api_keys stores a secret in clear (%d rows, %v)", n, err)
			}
		}
		t.Logf("%d answers, %d log bytes checked for %d secrets", answers, len(out), len(secrets))
	})
}

// ---------------------------------------------------------------------------
// 6. The rate limit trips and recovers

func TestAccessRateLimit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{}).with(graph.Options{RateLimit: 2, RateBurst: 2})
		k1, _ := e.newKey("busy", credit.RoleOperator, "")
		k2, _ := e.newKey("calm", credit.RoleOperator, "")
		before := e.rows()
		start := time.Now()
		for i := 0; i < 2; i++ {
			e.aMust(k1, `{ __typename }`, nil, nil)
		}
		r := e.aDo(k1, aqCreateOrg, map[string]any{"name": "over the limit"})
		took := time.Since(start)
		aWant(t, fmt.Sprintf("third request in %v", took), r, http.StatusTooManyRequests, string(graph.CodeRateLimited))
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		if string(r.Data) != "null" {
			t.Errorf("rate limited: data = %s, want null", r.Data)
		}
		e.sameRows("a rate-limited mutation", before)
		// Another key is not affected.
		e.aMust(k2, `{ __typename }`, nil, nil)
		// A refused key is refused before the limiter, and does not spend k1's tokens.
		e.send(http.MethodPost, "/graphql", "Bearer cdk_"+strings.Repeat("Z", 40), nil, bytes.NewReader(gqlBody(t, `{ __typename }`, nil)))
		time.Sleep(1100 * time.Millisecond)
		e.aMust(k1, `{ __typename }`, nil, nil)
	})
}

// ---------------------------------------------------------------------------
// 7. Depth, body size and complexity limits

func TestAccessLimits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		base := newAccessEnv(t, db, graph.Options{})
		_, pool, _ := base.org("Limits")
		before := base.rows()

		// Depth.
		e := base.with(graph.Options{MaxDepth: 5})
		deep := `query($id: ID!) { pool(id: $id) { organization { pools { organization { pools { id } } } } } }`
		r := e.aDo(e.op, deep, map[string]any{"id": pool})
		er := aWant(t, "a query 6 deep (max 5)", r, 0, string(graph.CodeQueryTooDeep))
		if !strings.Contains(er.Message, "6") || !strings.Contains(er.Message, "5") {
			t.Errorf("QUERY_TOO_DEEP message %q does not name the depth and the limit", er.Message)
		}
		if string(r.Data) != "null" && len(r.Data) != 0 {
			t.Errorf("too deep: data = %s, want none", r.Data)
		}
		aWant(t, "a mutation 6 deep", e.aDo(e.op, `mutation { createOrganization(name: "deep") { pools { organization { pools { organization { id } } } } } }`, nil),
			0, string(graph.CodeQueryTooDeep))
		aWant(t, "6 deep through a fragment", e.aDo(e.op, `query($id: ID!) { pool(id: $id) { ...P } }
fragment P on Pool { organization { pools { organization { pools { id } } } } }`, map[string]any{"id": pool}), 0, string(graph.CodeQueryTooDeep))
		aWant(t, "6 deep through an inline fragment", e.aDo(e.op, `query($id: ID!) { pool(id: $id) { ... on Pool { organization { pools { organization { pools { id } } } } } } }`,
			map[string]any{"id": pool}), 0, string(graph.CodeQueryTooDeep))
		base.sameRows("too-deep operations", before)
		e.aMust(e.op, `query($id: ID!) { pool(id: $id) { organization { pools { organization { id } } } } }`, map[string]any{"id": pool}, nil)

		// Body size: with a Content-Length, and chunked.
		e = base.with(graph.Options{MaxBodyBytes: 1024})
		big := gqlBody(t, aqCreateOrg+"\n#"+strings.Repeat("x", 1100), map[string]any{"name": "too big"})
		r = e.send(http.MethodPost, "/graphql", "Bearer "+e.op, nil, bytes.NewReader(big))
		aWant(t, fmt.Sprintf("a %d-byte body (max 1024)", len(big)), r, http.StatusRequestEntityTooLarge, string(graph.CodeRequestTooLarge))
		r = e.send(http.MethodPost, "/graphql", "Bearer "+e.op, nil, io.MultiReader(bytes.NewReader(big)))
		aWant(t, "a chunked over-limit body", r, http.StatusRequestEntityTooLarge, string(graph.CodeRequestTooLarge))
		r = e.send(http.MethodPost, "/graphql", "", nil, bytes.NewReader(big))
		aWant(t, "an over-limit body without a key", r, http.StatusRequestEntityTooLarge, string(graph.CodeRequestTooLarge))
		base.sameRows("over-limit bodies", before)
		e.aMust(e.op, `{ __typename }`, nil, nil)

		// Complexity.
		e = base.with(graph.Options{ComplexityLimit: 10})
		var qs, ms []string
		for i := 0; i < 12; i++ {
			qs = append(qs, fmt.Sprintf("a%d: pool(id: $id) { id }", i))
			ms = append(ms, fmt.Sprintf("a%d: createOrganization(name: \"c%d\") { id }", i, i))
		}
		aWant(t, "12 aliased pools (limit 10)", e.aDo(e.op, `query($id: ID!) { `+strings.Join(qs, " ")+` }`, map[string]any{"id": pool}),
			0, "COMPLEXITY_LIMIT_EXCEEDED")
		aWant(t, "12 aliased createOrganization (limit 10)", e.aDo(e.op, `mutation { `+strings.Join(ms, " ")+` }`, nil),
			0, "COMPLEXITY_LIMIT_EXCEEDED")
		base.sameRows("too complex operations", before)
		e.aMust(e.op, `query($id: ID!) { `+strings.Join(qs[:3], " ")+` }`, map[string]any{"id": pool}, nil)
	})
}

// ---------------------------------------------------------------------------
// 8. The audit log

type aAuditEntry struct {
	ID             string         `json:"id"`
	ActorKeyID     *string        `json:"actorKeyId"`
	Actor          string         `json:"actor"`
	OrganizationID *string        `json:"organizationId"`
	Action         string         `json:"action"`
	ObjectType     string         `json:"objectType"`
	ObjectID       string         `json:"objectId"`
	Before         map[string]any `json:"before"`
	After          map[string]any `json:"after"`
	RequestID      *string        `json:"requestId"`
	CreatedAt      string         `json:"createdAt"`
}

func (e *accessEnv) auditLog(key string, org any) []aAuditEntry {
	e.t.Helper()
	var out struct {
		L struct {
			Edges []struct {
				Node aAuditEntry `json:"node"`
			} `json:"edges"`
		} `json:"auditLog"`
	}
	e.aMust(key, aqAudit, map[string]any{"first": 500, "org": org}, &out)
	es := make([]aAuditEntry, len(out.L.Edges))
	for i, ed := range out.L.Edges {
		es[i] = ed.Node
	}
	return es
}

func TestAccessAuditLog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{})
		orgA, poolA, _ := e.org("Audit A")
		orgB, poolB, _ := e.org("Audit B")
		auditor, auditorID := e.newKey("audit operator", credit.RoleOperator, "")
		revops, _ := e.newKey("audit revops", credit.RoleRevOps, "")
		adminA, _ := e.newKey("audit admin A", credit.RoleOrgAdmin, orgA)

		// grantCredits, savePolicyDraft, publishPolicy by the auditor.
		var g struct {
			R struct{ ID string } `json:"grantCredits"`
		}
		gr := e.aMust(auditor, aqGrant, map[string]any{"in": map[string]any{"poolId": poolA, "creditType": "PROMOTIONAL", "amount": "25", "memo": "audit"}}, &g)
		var sp struct {
			R struct{ ID string } `json:"savePolicyDraft"`
		}
		sr := e.aMust(auditor, `mutation { savePolicyDraft(input: {name: "audit-burn", kind: BURN, expression: "weight"}) { id } }`, nil, &sp)
		var pp struct {
			R struct{ ID string } `json:"publishPolicy"`
		}
		pr := e.aMust(auditor, `mutation { publishPolicy(name: "audit-burn", version: 1) { id } }`, nil, &pp)
		e.grantTo(e.op, poolB, "7")

		es := e.auditLog(auditor, nil)
		for i := 1; i < len(es); i++ {
			if atoi(t, es[i-1].ID) <= atoi(t, es[i].ID) {
				t.Errorf("auditLog not newest first: %s before %s", es[i-1].ID, es[i].ID)
			}
		}
		var mine []aAuditEntry
		for _, x := range es {
			if x.ActorKeyID != nil && *x.ActorKeyID == strconv.Itoa(auditorID) {
				mine = append(mine, x)
			}
		}
		if len(mine) != 3 {
			t.Fatalf("auditLog has %d entries by the auditor, want 3: %+v", len(mine), mine)
		}
		want := []struct {
			action, objectType, objectID string
			org                          *string
			resp                         aResp
		}{
			{"publishPolicy", "Policy", pp.R.ID, nil, pr},
			{"savePolicyDraft", "Policy", sp.R.ID, nil, sr},
			{"grantCredits", "Grant", g.R.ID, &orgA, gr},
		}
		for i, w := range want {
			x := mine[i]
			what := fmt.Sprintf("audit entry %d (%s)", i, w.action)
			if x.Action != w.action || x.ObjectType != w.objectType || x.ObjectID != w.objectID {
				t.Errorf("%s: %s %s %s, want %s %s %s", what, x.Action, x.ObjectType, x.ObjectID, w.action, w.objectType, w.objectID)
			}
			if x.Actor != "audit operator" {
				t.Errorf("%s: actor %q, want the key's name", what, x.Actor)
			}
			if (w.org == nil) != (x.OrganizationID == nil) || (w.org != nil && *w.org != *x.OrganizationID) {
				t.Errorf("%s: organizationId %v, want %v", what, x.OrganizationID, w.org)
			}
			rid := w.resp.Header.Get("X-Request-Id")
			if rid == "" || x.RequestID == nil || *x.RequestID != rid {
				t.Errorf("%s: requestId %v, want the X-Request-Id %q of its request", what, x.RequestID, rid)
			}
			if _, err := time.Parse(time.RFC3339Nano, x.CreatedAt); err != nil {
				t.Errorf("%s: createdAt %q: %v", what, x.CreatedAt, err)
			}
		}
		if g := mine[2]; g.Before != nil || g.After == nil || fmt.Sprint(g.After["amount"]) != "25" || fmt.Sprint(g.After["credit_type"]) != "PROMOTIONAL" {
			t.Errorf("grantCredits entry: before %v, after %v; want null and the grant of 25 PROMOTIONAL", g.Before, g.After)
		}
		if p := mine[0]; p.Before == nil || p.After == nil || p.Before["status"] != "DRAFT" || p.After["status"] != "PUBLISHED" {
			t.Errorf("publishPolicy entry: before %v, after %v; want the DRAFT and the PUBLISHED version", p.Before, p.After)
		}

		// REVOPS sees every organisation's entries; A's admin only A's.
		orgsOf := func(es []aAuditEntry) map[string]bool {
			m := map[string]bool{}
			for _, x := range es {
				if x.OrganizationID == nil {
					m["none"] = true
				} else {
					m[*x.OrganizationID] = true
				}
			}
			return m
		}
		if got := orgsOf(e.auditLog(revops, nil)); !got[orgA] || !got[orgB] || !got["none"] {
			t.Errorf("auditLog as REVOPS covers %v, want %s, %s and vendor-wide entries", got, orgA, orgB)
		}
		if got := orgsOf(e.auditLog(revops, orgB)); len(got) != 1 || !got[orgB] {
			t.Errorf("auditLog(B) as REVOPS covers %v, want only %s", got, orgB)
		}
		esA := e.auditLog(adminA, nil)
		if got := orgsOf(esA); len(got) != 1 || !got[orgA] {
			t.Errorf("auditLog as A's admin covers %v, want only %s", got, orgA)
		}
		found := false
		for _, x := range esA {
			found = found || (x.Action == "grantCredits" && x.ObjectID == g.R.ID)
		}
		if !found {
			t.Errorf("auditLog as A's admin lacks A's grant %s", g.R.ID)
		}

		// Append-only, even to code holding the ent client.
		ctx := context.Background()
		n := e.rows()["audit_entries"]
		if _, err := db.Client.AuditEntry.Update().Save(ctx); !errors.Is(err, schema.ErrAppendOnly) {
			t.Errorf("AuditEntry.Update: %v, want ErrAppendOnly", err)
		}
		if err := db.Client.AuditEntry.UpdateOneID(atoi(t, mine[0].ID)).Exec(ctx); !errors.Is(err, schema.ErrAppendOnly) {
			t.Errorf("AuditEntry.UpdateOneID: %v, want ErrAppendOnly", err)
		}
		if _, err := db.Client.AuditEntry.Delete().Exec(ctx); !errors.Is(err, schema.ErrAppendOnly) {
			t.Errorf("AuditEntry.Delete: %v, want ErrAppendOnly", err)
		}
		if err := db.Client.AuditEntry.DeleteOneID(atoi(t, mine[0].ID)).Exec(ctx); !errors.Is(err, schema.ErrAppendOnly) {
			t.Errorf("AuditEntry.DeleteOneID: %v, want ErrAppendOnly", err)
		}
		if m := e.rows()["audit_entries"]; m != n {
			t.Errorf("audit entries: %d before the attempts, %d after", n, m)
		}
	})
}

// ---------------------------------------------------------------------------
// 9. Observability: request ids, metrics, readiness

func TestAccessObservability(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{}).with(graph.Options{Metrics: observe.NewMetrics(db.SQL), MaxBodyBytes: 4096})
		e.pricing()
		org, _, _ := e.org("Observed")

		// Every response has a request id.
		body := func() io.Reader { return bytes.NewReader(gqlBody(t, `{ __typename }`, nil)) }
		all := map[string]aResp{
			"GET /healthz":           e.send(http.MethodGet, "/healthz", "", nil, nil),
			"GET /readyz":            e.send(http.MethodGet, "/readyz", "", nil, nil),
			"GET /metrics":           e.send(http.MethodGet, "/metrics", "", nil, nil),
			"POST /graphql":          e.send(http.MethodPost, "/graphql", "Bearer "+e.op, nil, body()),
			"POST /graphql (no key)": e.send(http.MethodPost, "/graphql", "", nil, body()),
			"POST /graphql (401)":    e.send(http.MethodPost, "/graphql", "Basic x", nil, body()),
			"POST /graphql (413)":    e.send(http.MethodPost, "/graphql", "Bearer "+e.op, nil, bytes.NewReader(make([]byte, 5000))),
			"GET /nowhere":           e.send(http.MethodGet, "/nowhere/else", "", nil, nil),
		}
		ids := map[string]string{}
		for what, r := range all {
			id := r.Header.Get("X-Request-Id")
			if id == "" || len(id) > 64 {
				t.Errorf("%s (HTTP %d): X-Request-Id %q", what, r.Status, id)
			}
			if other, dup := ids[id]; dup {
				t.Errorf("%s and %s share the request id %q", what, other, id)
			}
			ids[id] = what
		}
		if r := all["GET /readyz"]; r.Status != http.StatusOK || strings.TrimSpace(string(r.Raw)) != "ready" {
			t.Errorf("GET /readyz = %v, want 200 \"ready\"", r)
		}

		// A sane caller id is echoed, and is the audit entry's request id; an
		// over-long one is replaced.
		const mine = "req-access-42.A_b"
		r := e.aDoH(e.op, map[string]string{"X-Request-Id": mine}, aqCreateOrg, map[string]any{"name": "traced"})
		if got := r.Header.Get("X-Request-Id"); got != mine {
			t.Errorf("X-Request-Id %q echoed as %q", mine, got)
		}
		if es := e.auditLog(e.op, nil); len(es) == 0 || es[0].Action != "createOrganization" || es[0].RequestID == nil || *es[0].RequestID != mine {
			t.Errorf("newest audit entry does not carry the caller's request id %q: %+v", mine, es[:min(1, len(es))])
		}
		if got := e.send(http.MethodGet, "/healthz", "", map[string]string{"X-Request-Id": mine}, nil).Header.Get("X-Request-Id"); got != mine {
			t.Errorf("GET /healthz: X-Request-Id %q echoed as %q", mine, got)
		}
		long := strings.Repeat("r", 65)
		if got := e.send(http.MethodGet, "/healthz", "", map[string]string{"X-Request-Id": long}, nil).Header.Get("X-Request-Id"); got == long || got == "" || len(got) > 64 {
			t.Errorf("an over-long X-Request-Id came back as %q, want a new id", got)
		}
		// An id that is not printable ASCII is not sane: it must be replaced,
		// and the request (here an audited mutation, whose audit entry keeps
		// the request id) must still work.
		for _, bad := range []string{"r\xff\xfe-not-utf8"} {
			r := e.aDoH(e.op, map[string]string{"X-Request-Id": bad}, aqCreateOrg, map[string]any{"name": "odd id"})
			if got := r.Header.Get("X-Request-Id"); got == bad || got == "" {
				t.Errorf("X-Request-Id %q (not printable ASCII) came back as %q, want a new id", bad, got)
			}
			if r.Status != http.StatusOK || len(r.Errors) > 0 {
				t.Errorf("createOrganization with X-Request-Id %q failed: %v", bad, r)
			}
		}

		// Metrics.
		e.use(e.op, org, "observed-1")
		key, _ := e.newKey("observed service", credit.RoleService, org)
		aWant(t, "SERVICE reading the ledger", e.aDo(key, `query ObservedLedger($id: ID!) { ledger(poolId: $id) { edges { cursor } } }`, map[string]any{"id": "1"}),
			http.StatusOK, string(auth.CodeForbidden))
		m := e.send(http.MethodGet, "/metrics", "", nil, nil)
		text := string(m.Raw)
		if m.Status != http.StatusOK {
			t.Fatalf("GET /metrics: %v", m)
		}
		missing := false
		for _, want := range []string{
			`creditd_usage_events_total{decision="ALLOWED"} 1`,
			`creditd_graphql_operations_total{operation="recordUsage",outcome="ok"}`,
			`outcome="FORBIDDEN"} 1`,
			`creditd_graphql_operation_seconds_bucket`,
			"\ngo_goroutines ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %q", want)
				missing = true
			}
		}
		if missing {
			t.Logf("/metrics:\n%s", grepLines(text, "creditd_"))
		}
	})
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// accessIntrospectionQuery is graphql-js 16's getIntrospectionQuery() (the
// query GraphiQL, the bundled playground, sends), with its seven levels of
// ofType.
const accessIntrospectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// Metric labels must stay bounded whatever callers send: operation names
// are chosen by the client, and requests without a key still reach the
// GraphQL handler (every field answers UNAUTHENTICATED).
func TestAccessMetricsCardinality(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAccessEnv(t, db, graph.Options{}).with(graph.Options{Metrics: observe.NewMetrics(db.SQL)})
		series := func() int {
			return strings.Count(string(e.send(http.MethodGet, "/metrics", "", nil, nil).Raw), "\ncreditd_graphql_operations_total{")
		}
		before := series()
		const n = 25
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("Probe%04d", i)
			body, _ := json.Marshal(map[string]any{"query": "query " + name + " { organization(id: 1) { id } }", "operationName": name})
			r := e.send(http.MethodPost, "/graphql", "", nil, bytes.NewReader(body))
			aWant(t, "an unauthenticated probe", r, 0, string(auth.CodeUnauthenticated))
		}
		if grew := series() - before; grew >= n {
			t.Errorf("%d unauthenticated requests with made-up operation names added %d series to creditd_graphql_operations_total: "+
				"label values are unbounded and chosen by anyone", n, grew)
		}
	})
}
