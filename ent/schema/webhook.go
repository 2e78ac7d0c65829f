package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// WebhookEndpoint is where an organisation (or, with organization_id null,
// the vendor) receives events. Deliveries are signed with secret, and with
// previous_secret too until previous_expires_at, so a rotation never breaks
// a receiver that still checks the old one.
type WebhookEndpoint struct{ ent.Schema }

func (WebhookEndpoint) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (WebhookEndpoint) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Optional().Nillable().Immutable(),
		field.String("url").MaxLen(2000).Immutable(),
		field.Strings("event_types").Immutable(),
		field.String("description").Optional().MaxLen(500).Immutable(),
		field.String("secret").Sensitive(),
		field.String("previous_secret").Optional().Nillable().Sensitive(),
		field.Time("previous_expires_at").Optional().Nillable(),
		field.Bool("enabled").Default(true),
		field.String("disabled_reason").Optional().Nillable(),
		// failures counts deliveries in a row that used up every attempt;
		// at the limit the endpoint is disabled.
		field.Int("failures").Default(0),
	}
}

func (WebhookEndpoint) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id")}
}

// WebhookDelivery is one event to send to one endpoint: the outbox row,
// written in the transaction of its cause, and its delivery log (status,
// attempts, the last answer). A replay is a new delivery of the same event.
type WebhookDelivery struct{ ent.Schema }

func (WebhookDelivery) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (WebhookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.Int("endpoint_id").Immutable(),
		field.Int("organization_id").Optional().Nillable().Immutable(),
		field.String("event_id").Immutable(), // the receiver de-duplicates on it
		field.String("event_type").Immutable(),
		field.Text("payload").Immutable(),
		field.Enum("status").Values("PENDING", "SUCCEEDED", "FAILED").Default("PENDING"),
		field.Int("attempts").Default(0),
		field.Time("next_attempt_at"),
		// lease_until: a worker claimed it until then (one sender among
		// replicas).
		field.Time("lease_until").Optional().Nillable(),
		field.Int("last_status_code").Optional().Nillable(),
		field.String("last_error").Optional().Nillable().MaxLen(1000),
		field.Time("delivered_at").Optional().Nillable(),
		field.Int("replay_of").Optional().Nillable().Immutable(),
	}
}

func (WebhookDelivery) Indexes() []ent.Index {
	return []ent.Index{index.Fields("status", "next_attempt_at"), index.Fields("endpoint_id", "id")}
}
