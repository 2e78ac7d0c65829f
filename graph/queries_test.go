package graph_test

// Query counts: a page of ledger entries with their nested objects takes a
// fixed number of database queries, whatever its length.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/graph"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// countingDriver counts the statements sent outside transactions (every
// read of the API) and keeps them, to show in a failure.
type countingDriver struct {
	dialect.Driver
	mu    *sync.Mutex
	stmts *[]string
}

func (d countingDriver) note(query string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	*d.stmts = append(*d.stmts, query)
}

func (d countingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.note(query)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d countingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.note(query)
	return d.Driver.Query(ctx, query, args, v)
}

// counter serves the API over db through a counting driver.
type counter struct {
	*env
	mu    sync.Mutex
	stmts []string
}

func newCounter(t *testing.T, db *store.DB) *counter {
	t.Helper()
	c := &counter{}
	drv := countingDriver{Driver: entsql.OpenDB(db.Dialect, db.SQL), mu: &c.mu, stmts: &c.stmts}
	// The same database, through the counting driver (never closed: it
	// shares db's pool).
	counted := &store.DB{Client: ent.NewClient(ent.Driver(drv)), SQL: db.SQL, Dialect: db.Dialect}
	svc := ledger.New(counted, ledger.WithClock(func() time.Time { return testNow }))
	srv := httptest.NewServer(graph.NewHandler(svc, counted, graph.Options{RateLimit: -1}))
	t.Cleanup(srv.Close)
	c.env = &env{t: t, db: counted, svc: svc, srv: srv}
	return c
}

// count runs an operation that has to succeed and returns the statements it
// sent.
func (c *counter) count(query string, vars map[string]any, out any) []string {
	c.t.Helper()
	c.mu.Lock()
	from := len(c.stmts)
	c.mu.Unlock()
	c.must(query, vars, out)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.stmts[from:]...)
}

// seedLedger gives a new organisation's pool n usage events of one credit
// each, drawn from five grants of n/5 credits: n BURN entries, each with its
// usage event and grant, and five GRANT entries.
func seedLedger(t *testing.T, svc *ledger.Service, name string, n int) (org, pool int) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.Client().WeightRegister.Query().First(ctx); ent.IsNotFound(err) {
		if _, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: decimal.NewFromInt(1)}}); err != nil {
			t.Fatalf("save register: %v", err)
		}
		if _, err := svc.PublishRegister(ctx, "default", 1, nil); err != nil {
			t.Fatalf("publish register: %v", err)
		}
	}
	o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: name})
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	p, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "account"})
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditPromotional,
			Amount: decimal.NewFromInt(int64(n / 5)), Priority: ptr(i)}); err != nil {
			t.Fatalf("grant: %v", err)
		}
	}
	ins := make([]engine.UsageInput, n)
	for i := range ins {
		ins[i] = engine.UsageInput{IdempotencyKey: fmt.Sprintf("%s-%d", name, i), OrganizationID: o.ID, Action: "agent.run", Status: credit.StatusSucceeded}
	}
	res, err := svc.RecordUsageBatch(ctx, ins)
	if err != nil {
		t.Fatalf("record usage: %v", err)
	}
	for i, r := range res {
		if r.Decision != credit.DecisionAllowed {
			t.Fatalf("usage %d: %s (%s), want ALLOWED", i, r.Decision, r.Reason)
		}
	}
	return o.ID, p.ID
}

const qCountedLedger = `query($id: ID!, $first: Int) { ledger(poolId: $id, first: $first) {
  edges { node { id kind amount
    pool { id name organization { id name } }
    grant { id creditType remaining pool { id } }
    usageEvent { id action credits pool { id organization { id } } } } }
  pageInfo { hasNextPage } } }`

type countedPage struct {
	L struct {
		Edges []struct {
			Node struct {
				ID   string `json:"id"`
				Kind string `json:"kind"`
				Pool struct {
					ID           string `json:"id"`
					Organization idRef  `json:"organization"`
				} `json:"pool"`
				Grant *struct {
					ID   string `json:"id"`
					Pool idRef  `json:"pool"`
				} `json:"grant"`
				UsageEvent *struct {
					ID   string `json:"id"`
					Pool struct {
						ID           string `json:"id"`
						Organization idRef  `json:"organization"`
					} `json:"pool"`
				} `json:"usageEvent"`
			} `json:"node"`
		} `json:"edges"`
	} `json:"ledger"`
}

// qPageOfLists is a page of 500 entries listing, for each entry, its
// organisation's pools and their grants: refused for its complexity (see
// TestComplexity), before anything is read.
const qPageOfLists = `query($id: ID!) { ledger(poolId: $id, first: 500) { edges { node { id amount usageEvent { id action }
  grant { id pool { organization { pools { grants { id } } } } } } } } }`

// maxLedgerQueries is what a page of qCountedLedger may cost: the key, the
// pool and the page, then one query each for the usage events, the grants,
// the pools and the organisations.
const maxLedgerQueries = 7

func TestLedgerPageQueryCount(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		seed := ledger.New(db, ledger.WithClock(func() time.Time { return testNow }))
		org, pool := seedLedger(t, seed, "Counted", ledger.MaxPage)
		seedLedger(t, seed, "Other", 10) // another organisation's rows, never shown
		c := newCounter(t, db)
		_, op, err := seed.CreateKey(ctx, ledger.KeyInput{Name: "operator", Role: credit.RoleOperator})
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		_, admin, err := seed.CreateKey(ctx, ledger.KeyInput{Name: "buyer", Role: credit.RoleOrgAdmin, OrganizationID: &org})
		if err != nil {
			t.Fatalf("create key: %v", err)
		}

		// What each entry refers to, read directly.
		rows, err := seed.Client().LedgerEntry.Query().All(ctx)
		if err != nil {
			t.Fatalf("read entries: %v", err)
		}
		want := map[string]*ent.LedgerEntry{}
		for _, r := range rows {
			want[strconv.Itoa(r.ID)] = r
		}
		ref := func(id *int) string {
			if id == nil {
				return ""
			}
			return strconv.Itoa(*id)
		}

		for _, k := range []struct{ name, key string }{{"OPERATOR", op}, {"ORG_ADMIN", admin}} {
			c.key = k.key
			c.must(`{ __typename }`, nil, nil) // the key's first use is recorded: not part of the count
			counts := map[int]int{}
			for _, first := range []int{50, ledger.MaxPage} {
				var page countedPage
				stmts := c.count(qCountedLedger, map[string]any{"id": pool, "first": first}, &page)
				counts[first] = len(stmts)
				if len(stmts) > maxLedgerQueries {
					t.Errorf("%s: ledger(first: %d) took %d queries, want at most %d; the first ones:\n%s", k.name, first, len(stmts), maxLedgerQueries,
						strings.Join(stmts[:min(len(stmts), 12)], "\n"))
				}
				if len(page.L.Edges) != first {
					t.Fatalf("%s: ledger(first: %d) returned %d entries", k.name, first, len(page.L.Edges))
				}
				burns := 0
				for _, ed := range page.L.Edges {
					n, w := ed.Node, want[ed.Node.ID]
					if w == nil {
						t.Fatalf("%s: entry %s is not in the database", k.name, n.ID)
					}
					gotGrant, gotEvent := "", ""
					if n.Grant != nil {
						gotGrant = n.Grant.ID
						if n.Grant.Pool.ID != strconv.Itoa(pool) {
							t.Errorf("%s: entry %s: grant %s of pool %s, want %d", k.name, n.ID, n.Grant.ID, n.Grant.Pool.ID, pool)
						}
					}
					if n.UsageEvent != nil {
						gotEvent = n.UsageEvent.ID
						if n.UsageEvent.Pool.ID != strconv.Itoa(pool) || n.UsageEvent.Pool.Organization.ID != strconv.Itoa(org) {
							t.Errorf("%s: entry %s: event of pool %+v, want pool %d of organization %d", k.name, n.ID, n.UsageEvent.Pool, pool, org)
						}
					}
					if gotGrant != ref(w.GrantID) || gotEvent != ref(w.UsageEventID) || n.Pool.ID != strconv.Itoa(w.PoolID) || n.Pool.Organization.ID != strconv.Itoa(org) {
						t.Errorf("%s: entry %s: grant %q, event %q, pool %+v; want grant %q, event %q, pool %d of organization %d",
							k.name, n.ID, gotGrant, gotEvent, n.Pool, ref(w.GrantID), ref(w.UsageEventID), w.PoolID, org)
					}
					if n.Kind == string(credit.EntryBurn) {
						burns++
					}
				}
				if burns == 0 {
					t.Errorf("%s: ledger(first: %d) shows no BURN entry", k.name, first)
				}
			}
			t.Logf("%s: ledger(first: 50) took %d queries, ledger(first: %d) %d", k.name, counts[50], ledger.MaxPage, counts[ledger.MaxPage])
			if counts[50] != counts[ledger.MaxPage] {
				t.Errorf("%s: ledger(first: 50) took %d queries but ledger(first: %d) %d, want the same", k.name, counts[50], ledger.MaxPage, counts[ledger.MaxPage])
			}

			c.mu.Lock()
			from := len(c.stmts)
			c.mu.Unlock()
			_, errs := c.do(qPageOfLists, map[string]any{"id": pool})
			er := wantErr(t, k.name+": a page of 500 listing lists", errs, "COMPLEXITY_LIMIT_EXCEEDED")
			if want := fmt.Sprintf("operation has complexity 61001, which exceeds the limit of %d", graph.DefaultComplexityLimit); er.Message != want {
				t.Errorf("%s: a page of 500 listing lists: %q, want %q", k.name, er.Message, want)
			}
			c.mu.Lock()
			if n := len(c.stmts) - from; n != 1 {
				t.Errorf("%s: a refused page took %d queries, want 1 (the key):\n%s", k.name, n, strings.Join(c.stmts[from:], "\n"))
			}
			c.mu.Unlock()
		}
	})
}
