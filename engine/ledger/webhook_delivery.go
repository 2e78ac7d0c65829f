package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/webhookdelivery"
	"github.com/creditd/creditd/ent/webhookendpoint"
	"github.com/creditd/creditd/webhook"
)

// Webhook deliveries: the outbox. enqueue writes one delivery per enabled
// endpoint subscribed to the event (the organisation's and the vendor-wide
// ones) in the transaction of the event's cause; DeliverWebhooks, run by
// every server, claims due deliveries with a lease (a conditional UPDATE:
// one replica wins each), sends them outside any transaction, and records
// the answer: SUCCEEDED, or another attempt after webhook.Backoff, or
// FAILED after webhook.MaxAttempts. An endpoint whose deliveries fail
// DisableAfter times in a row is disabled with a WEBHOOK_DISABLED alert.
// A delivery is sent at least once; receivers de-duplicate on the event id.

// DisableAfter is how many deliveries in a row may use up every attempt
// before their endpoint is disabled.
const DisableAfter = 3

// leaseFor is how long a claimed delivery is a worker's: longer than one
// send may take.
const leaseFor = 2 * time.Minute

// deliverBatch bounds the deliveries one DeliverWebhooks run sends.
const deliverBatch = 100

// webhookConfig is the Service's webhook sending setup.
type webhookConfig struct {
	allowPrivate bool
	client       *http.Client // WithWebhooks' own
	fallback     *http.Client // webhook.NewClient's, made by New
}

// WithWebhooks sets whether webhook URLs may name loopback and private
// addresses (--webhooks-allow-private), and the client that sends them
// (nil: webhook.NewClient).
func WithWebhooks(allowPrivate bool, client *http.Client) Option {
	return func(s *Service) {
		s.webhooks = webhookConfig{allowPrivate: allowPrivate, client: client}
	}
}

// envelope is the body of every delivery.
type envelope struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"createdAt"`
	Data      any       `json:"data"`
}

// alertEvent is an alert as webhooks carry it: its id, the event id, the
// data.
func alertEvent(a *ent.Alert) (string, map[string]any) {
	data := map[string]any{"alert": map[string]any{
		"id": strconv.Itoa(a.ID), "kind": a.Kind, "organizationId": idString(a.OrganizationID), "poolId": idString(a.PoolID),
		"ruleId": idString(a.RuleID), "message": a.Message, "periodStart": a.PeriodStart.UTC(), "usageEventId": idString(a.UsageEventID),
		"createdAt": a.CreatedAt.UTC(), "acknowledgedAt": a.AcknowledgedAt, "acknowledgedBy": a.AcknowledgedBy,
	}}
	return "alert_" + strconv.Itoa(a.ID), data
}

func idString(id *int) any {
	if id == nil {
		return nil
	}
	return strconv.Itoa(*id)
}

// enqueue queues event eventType (id eventID) of organisation org (nil:
// vendor-wide) for every enabled endpoint that subscribed to it, in c's
// transaction.
func (s *Service) enqueue(ctx context.Context, c *ent.Client, org *int, eventType, eventID string, data any, now time.Time) error {
	q := c.WebhookEndpoint.Query().Where(webhookendpoint.Enabled(true))
	if org != nil {
		q.Where(webhookendpoint.Or(webhookendpoint.OrganizationIDIsNil(), webhookendpoint.OrganizationID(*org)))
	} else {
		q.Where(webhookendpoint.OrganizationIDIsNil())
	}
	eps, err := q.All(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(envelope{ID: eventID, Type: eventType, CreatedAt: now, Data: data})
	if err != nil {
		return err
	}
	var creates []*ent.WebhookDeliveryCreate
	for _, ep := range eps {
		if slices.Contains(ep.EventTypes, eventType) {
			creates = append(creates, c.WebhookDelivery.Create().SetEndpointID(ep.ID).SetNillableOrganizationID(org).
				SetEventID(eventID).SetEventType(eventType).SetPayload(string(body)).SetNextAttemptAt(now).SetCreatedAt(now))
		}
	}
	if len(creates) == 0 {
		return nil
	}
	return c.WebhookDelivery.CreateBulk(creates...).Exec(ctx)
}

// DeliverWebhooks sends the deliveries due at now, each by one worker among
// all replicas, and returns how many it sent (whatever the answer).
func (s *Service) DeliverWebhooks(ctx context.Context, now time.Time) (int, error) {
	due, err := s.db.Client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
		webhookdelivery.NextAttemptAtLTE(now), webhookdelivery.Or(webhookdelivery.LeaseUntilIsNil(), webhookdelivery.LeaseUntilLTE(now))).
		Order(ent.Asc(webhookdelivery.FieldNextAttemptAt), ent.Asc(webhookdelivery.FieldID)).Limit(deliverBatch).IDs(ctx)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, id := range due {
		n, err := s.db.Client.WebhookDelivery.Update().Where(webhookdelivery.ID(id), webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
			webhookdelivery.Or(webhookdelivery.LeaseUntilIsNil(), webhookdelivery.LeaseUntilLTE(now))).SetLeaseUntil(now.Add(leaseFor)).Save(ctx)
		if err != nil {
			return sent, err
		}
		if n == 0 { // another worker claimed it
			continue
		}
		if err := s.deliver(ctx, id); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, nil
}

// deliver sends one claimed delivery and records the answer.
func (s *Service) deliver(ctx context.Context, id int) error {
	d, err := s.db.Client.WebhookDelivery.Get(ctx, id)
	if err != nil {
		return err
	}
	ep, err := s.db.Client.WebhookEndpoint.Get(ctx, d.EndpointID)
	if err != nil {
		return err
	}
	var res webhook.Result
	if ep.Enabled {
		res = webhook.Send(ctx, s.webhookClient(), webhook.Request{URL: ep.URL, Secrets: signingSecrets(ep, s.Now()), DeliveryID: strconv.Itoa(d.ID),
			EventID: d.EventID, EventType: d.EventType, Body: []byte(d.Payload), Now: s.Now()})
	} else {
		res = webhook.Result{Err: "endpoint disabled"}
	}
	return s.inTx(ctx, func(tx *ent.Tx) error { return s.recordAttempt(ctx, tx, d, ep, res) })
}

// signingSecrets are the endpoint's secret and, during a rotation's
// overlap, its previous one.
func signingSecrets(ep *ent.WebhookEndpoint, now time.Time) []string {
	out := []string{ep.Secret}
	if ep.PreviousSecret != nil && ep.PreviousExpiresAt != nil && ep.PreviousExpiresAt.After(now) {
		out = append(out, *ep.PreviousSecret)
	}
	return out
}

// webhookClient is the client deliveries are sent with.
func (s *Service) webhookClient() *http.Client {
	if s.webhooks.client != nil {
		return s.webhooks.client
	}
	return s.webhooks.fallback
}

// recordAttempt writes one attempt's answer, and the endpoint's failures.
func (s *Service) recordAttempt(ctx context.Context, tx *ent.Tx, d *ent.WebhookDelivery, ep *ent.WebhookEndpoint, res webhook.Result) error {
	now, attempts := s.Now(), d.Attempts+1
	u := tx.WebhookDelivery.UpdateOneID(d.ID).SetAttempts(attempts).ClearLeaseUntil()
	if res.StatusCode != 0 {
		u.SetLastStatusCode(res.StatusCode)
	}
	switch {
	case res.OK:
		u.SetStatus(webhookdelivery.StatusSUCCEEDED).SetDeliveredAt(now).ClearLastError()
	case attempts >= webhook.MaxAttempts || !ep.Enabled:
		u.SetStatus(webhookdelivery.StatusFAILED).SetLastError(truncate(res.Err, 1000))
	default:
		u.SetNextAttemptAt(now.Add(webhook.Backoff(attempts))).SetLastError(truncate(res.Err, 1000))
	}
	if err := u.Exec(ctx); err != nil {
		return err
	}
	switch {
	case res.OK && ep.Failures > 0:
		return tx.WebhookEndpoint.UpdateOneID(ep.ID).SetFailures(0).Exec(ctx)
	case !res.OK && ep.Enabled && attempts >= webhook.MaxAttempts:
		return s.endpointFailed(ctx, tx, ep, now)
	}
	return nil
}

// endpointFailed counts a delivery that used up its attempts; at
// DisableAfter in a row the endpoint is disabled, with an alert.
func (s *Service) endpointFailed(ctx context.Context, tx *ent.Tx, ep *ent.WebhookEndpoint, now time.Time) error {
	ep, err := tx.WebhookEndpoint.UpdateOneID(ep.ID).AddFailures(1).Save(ctx)
	if err != nil || ep.Failures < DisableAfter || !ep.Enabled {
		return err
	}
	reason := fmt.Sprintf("%d deliveries in a row failed after %d attempts each", ep.Failures, webhook.MaxAttempts)
	if err := tx.WebhookEndpoint.UpdateOneID(ep.ID).SetEnabled(false).SetDisabledReason(reason).Exec(ctx); err != nil {
		return err
	}
	_, err = s.fire(ctx, tx.Client(), firing{org: ep.OrganizationID, kind: credit.AlertWebhookDisabled, condition: "endpoint:" + strconv.Itoa(ep.ID),
		periodStart: now, message: fmt.Sprintf("webhook endpoint %d (%s) disabled: %s", ep.ID, ep.URL, reason)}, now)
	return err
}

// ReplayWebhookDelivery sends a delivery's event again, whatever became of
// it: a new delivery of the same event id and body, due now.
func (s *Service) ReplayWebhookDelivery(ctx context.Context, id int) (*ent.WebhookDelivery, error) {
	var out *ent.WebhookDelivery
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		d, err := tx.WebhookDelivery.Get(ctx, id)
		if ent.IsNotFound(err) {
			return credit.NotFound("webhook delivery", id)
		} else if err != nil {
			return err
		}
		if _, err := s.endpoint(ctx, tx.Client(), d.EndpointID); err != nil {
			return credit.NotFound("webhook delivery", id)
		}
		now := s.Now()
		if out, err = tx.WebhookDelivery.Create().SetEndpointID(d.EndpointID).SetNillableOrganizationID(d.OrganizationID).SetEventID(d.EventID).
			SetEventType(d.EventType).SetPayload(d.Payload).SetNextAttemptAt(now).SetReplayOf(d.ID).SetCreatedAt(now).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "replayWebhookDelivery", "WebhookDelivery", out.ID, d.OrganizationID, nil, map[string]any{"replayOf": d.ID})
	})
	return out, err
}

// DeliveryPage is one page of an endpoint's delivery log, newest first.
type DeliveryPage struct {
	Deliveries  []*ent.WebhookDelivery
	HasNextPage bool
}

// WebhookDeliveries is the delivery log of an endpoint: up to first
// deliveries older than the one whose id is after (0: from the newest).
func (s *Service) WebhookDeliveries(ctx context.Context, endpointID, first, after int) (DeliveryPage, error) {
	if first < 1 || first > MaxPage {
		return DeliveryPage{}, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if _, err := s.endpoint(ctx, s.db.Client, endpointID); err != nil {
		return DeliveryPage{}, err
	}
	q := s.db.Client.WebhookDelivery.Query().Where(webhookdelivery.EndpointID(endpointID))
	if after > 0 {
		q.Where(webhookdelivery.IDLT(after))
	}
	ds, err := q.Order(ent.Desc(webhookdelivery.FieldID)).Limit(first + 1).All(ctx)
	if err != nil {
		return DeliveryPage{}, err
	}
	page := DeliveryPage{Deliveries: ds}
	if len(ds) > first {
		page.Deliveries, page.HasNextPage = ds[:first], true
	}
	return page, nil
}
