package ledger_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/webhookdelivery"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
	"github.com/creditd/creditd/webhook"
)

// receiver is a webhook endpoint in the test: it answers each request
// with the next status of its script (the last one once the script ends)
// and keeps what it received.
type receiver struct {
	mu     sync.Mutex
	script []int
	got    []received
	srv    *httptest.Server
}

type received struct {
	eventID, deliveryID, signature string
	body                           []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Get(webhook.HeaderEventID), req.Header.Get(webhook.HeaderDeliveryID), req.Header.Get(webhook.HeaderSignature), body})
		status := r.script[min(len(r.got)-1, len(r.script)-1)]
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// webhooks is the fixture's service, sending webhooks to loopback
// receivers, with an endpoint for its organisation at r.
func (f *fixture) webhooks(t *testing.T, r *receiver) (*ledger.Service, *ent.WebhookEndpoint, string) {
	t.Helper()
	svc := ledger.New(f.db, ledger.WithClock(f.clock.now), ledger.WithWebhooks(true, nil))
	ep, secret, err := svc.CreateWebhookEndpoint(context.Background(), ledger.WebhookInput{OrganizationID: &f.org.ID, URL: r.srv.URL + "/hooks",
		EventTypes: []string{ledger.EventAlertFired}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, ep, secret
}

// raise makes the fixture's pool raise one BALANCE_BELOW alert.
func (f *fixture) raise(t *testing.T, svc *ledger.Service) {
	t.Helper()
	f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp("1")})
	if rep, err := svc.EvaluateAlerts(context.Background(), f.clock.now()); err != nil || rep.Fired != 1 {
		t.Fatalf("EvaluateAlerts = %+v, %v", rep, err)
	}
}

// deliverAll runs the worker until nothing is due, moving the clock to
// each retry, at most n runs.
func (f *fixture) deliverAll(t *testing.T, svc *ledger.Service, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := svc.DeliverWebhooks(context.Background(), f.clock.now()); err != nil {
			t.Fatal(err)
		}
		f.clock.add(webhook.Backoff(i + 1))
	}
}

// A receiver that fails twice then succeeds gets one logical delivery in
// three attempts, each signed, each with the same event id; a replay sends
// it once more, with the same event id.
func TestWebhookRetriesThenSucceeds(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		r := newReceiver(t, 500, 503, 200)
		svc, ep, secret := f.webhooks(t, r)
		f.raise(t, svc)
		f.deliverAll(t, svc, 5)
		got := r.requests()
		if len(got) != 3 {
			t.Fatalf("%d requests, want 3 (two failures, one success)", len(got))
		}
		for i, g := range got {
			if g.eventID != got[0].eventID || g.deliveryID != got[0].deliveryID {
				t.Errorf("attempt %d: event %s delivery %s, want the first's", i, g.eventID, g.deliveryID)
			}
		}
		var body struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Alert struct{ Kind string } `json:"alert"`
			} `json:"data"`
		}
		if err := json.Unmarshal(got[2].body, &body); err != nil || body.ID != got[2].eventID || body.Type != "alert.fired" || body.Data.Alert.Kind != "BALANCE_BELOW" {
			t.Fatalf("body %s (%v): want the event id, alert.fired and the alert kind", got[2].body, err)
		}
		page, err := svc.WebhookDeliveries(context.Background(), ep.ID, 10, 0)
		if err != nil || len(page.Deliveries) != 1 {
			t.Fatalf("deliveries %v, %v; want one", page.Deliveries, err)
		}
		d := page.Deliveries[0]
		if d.Status != webhookdelivery.StatusSUCCEEDED || d.Attempts != 3 || *d.LastStatusCode != 200 || d.DeliveredAt == nil {
			t.Fatalf("delivery %+v; want SUCCEEDED after 3 attempts", d)
		}
		if err := webhook.Verify(got[2].signature, got[2].body, secret, f.clock.now(), 24*3600e9); err != nil {
			t.Fatalf("signature: %v", err)
		}
		replay, err := svc.ReplayWebhookDelivery(context.Background(), d.ID)
		if err != nil || replay.EventID != d.EventID || *replay.ReplayOf != d.ID {
			t.Fatalf("replay = %+v, %v", replay, err)
		}
		f.deliverAll(t, svc, 1)
		if got := r.requests(); len(got) != 4 || got[3].eventID != d.EventID || got[3].deliveryID == d.EventID {
			t.Fatalf("after the replay: %d requests; want a 4th with the same event id", len(got))
		}
	})
}

// Two workers at once send each delivery once.
func TestWebhookWorkersShareDeliveries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		r := newReceiver(t, 200)
		svc, _, _ := f.webhooks(t, r)
		other := ledger.New(db, ledger.WithClock(f.clock.now), ledger.WithWebhooks(true, nil))
		for _, th := range []string{"1", "2", "3"} { // three alerts
			f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp(th)})
		}
		if _, err := svc.EvaluateAlerts(context.Background(), f.clock.now()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, s := range []*ledger.Service{svc, other, svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.DeliverWebhooks(context.Background(), f.clock.now()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		seen := map[string]int{}
		for _, g := range r.requests() {
			seen[g.deliveryID]++
		}
		if len(seen) != 3 {
			t.Fatalf("deliveries received %v; want 3, each once", seen)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s sent %d times", id, n)
			}
		}
	})
}

// An endpoint whose deliveries keep failing is disabled with an alert, and
// sends nothing more.
func TestWebhookEndpointDisabledAfterFailures(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		r := newReceiver(t, 500)
		svc, ep, _ := f.webhooks(t, r)
		for _, th := range []string{"1", "2", "3", "4"} {
			f.rule(t, ledger.AlertRuleInput{PoolID: &f.pool.ID, Kind: credit.AlertBalanceBelow, Threshold: dp(th)})
		}
		if _, err := svc.EvaluateAlerts(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		f.deliverAll(t, svc, webhook.MaxAttempts+2)
		ep, err := f.db.Client.WebhookEndpoint.Get(ctx, ep.ID)
		if err != nil || ep.Enabled || ep.DisabledReason == nil {
			t.Fatalf("endpoint %+v, %v; want disabled with a reason", ep, err)
		}
		var disabled int
		for _, a := range f.alerts(t) {
			if a.Kind == string(credit.AlertWebhookDisabled) {
				disabled++
			}
		}
		if disabled != 1 {
			t.Fatalf("%d WEBHOOK_DISABLED alerts, want 1", disabled)
		}
		// The four deliveries were due together, each run tried them in
		// turn; the third to use up its attempts disabled the endpoint, so
		// the fourth's last attempt was never sent (it FAILED unsent, and
		// can be replayed once the endpoint is enabled again).
		if n := len(r.requests()); n != 4*webhook.MaxAttempts-1 {
			t.Fatalf("%d requests, want %d", n, 4*webhook.MaxAttempts-1)
		}
	})
}

// Endpoint URLs and ownership are checked; a rotated secret signs beside
// the new one until the overlap ends.
func TestWebhookEndpointRules(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		admin := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "admin", Role: credit.RoleOrgAdmin, OrgID: &f.org.ID})
		for _, c := range []struct {
			name string
			ctx  context.Context
			in   ledger.WebhookInput
			code credit.Code
		}{
			{"loopback", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "http://127.0.0.1:9/x", EventTypes: []string{"alert.fired"}}, credit.CodeValidation},
			{"private", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "https://10.1.2.3/x", EventTypes: []string{"alert.fired"}}, credit.CodeValidation},
			{"metadata", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "http://169.254.169.254/latest", EventTypes: []string{"alert.fired"}}, credit.CodeValidation},
			{"not http", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "ftp://example.com/x", EventTypes: []string{"alert.fired"}}, credit.CodeValidation},
			{"an unknown event type", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "https://example.com/x", EventTypes: []string{"ledger.everything"}}, credit.CodeValidation},
			{"no event type", ctx, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "https://example.com/x"}, credit.CodeValidation},
			{"vendor-wide by an ORG_ADMIN", admin, ledger.WebhookInput{URL: "https://example.com/x", EventTypes: []string{"alert.fired"}}, auth.CodeForbidden},
		} {
			if _, _, err := f.svc.CreateWebhookEndpoint(c.ctx, c.in); credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		ep, old, err := f.svc.CreateWebhookEndpoint(admin, ledger.WebhookInput{OrganizationID: &f.org.ID, URL: "https://example.com/hooks", EventTypes: []string{"alert.fired"}})
		if err != nil || !strings.HasPrefix(old, webhook.SecretPrefix) {
			t.Fatalf("create = %v, %q, %v", ep, old, err)
		}
		if _, fresh, err := f.svc.RotateWebhookSecret(admin, ep.ID, nil); err != nil || fresh == old {
			t.Fatalf("rotate: %v", err)
		}
		if eps, err := f.svc.WebhookEndpoints(admin, nil); err != nil || len(eps) != 1 {
			t.Fatalf("endpoints = %v, %v; want the admin's one", eps, err)
		}
	})
}
