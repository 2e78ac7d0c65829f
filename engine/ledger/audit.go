package ledger

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/auditentry"
	"github.com/creditd/creditd/observe"
)

// audit appends one entry to the audit log, inside the transaction of the
// change it records: a change and its audit entry commit together or not at
// all. before and after are the object's JSON (nil when it did not exist or
// no longer does).
func (s *Service) audit(ctx context.Context, tx *ent.Tx, action, objectType string, objectID int, org *int, before, after any) error {
	c := tx.AuditEntry.Create().SetAction(action).SetObjectType(objectType).
		SetObjectID(strconv.Itoa(objectID)).SetNillableOrganizationID(org).
		SetRequestID(observe.RequestID(ctx)).SetCreatedAt(s.Now())
	if p := auth.From(ctx); p != nil {
		c.SetActorKeyID(p.KeyID).SetActor(p.Name)
	} else {
		c.SetActor("system")
	}
	if before != nil {
		c.SetBefore(asMap(before))
	}
	if after != nil {
		c.SetAfter(asMap(after))
	}
	return c.Exec(ctx)
}

// asMap is an object's JSON form as a map (ent entities marshal their fields
// by their json tags; secrets are never part of them).
func asMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{"value": string(b)}
	}
	delete(m, "edges")
	return m
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Entries     []*ent.AuditEntry
	HasNextPage bool
}

// AuditLog returns up to first entries older than the entry id after (0:
// from the newest), of one organisation when org is set. A scoped caller
// sees its own organisation's entries only.
func (s *Service) AuditLog(ctx context.Context, org *int, first, after int) (AuditPage, error) {
	if first < 1 || first > MaxPage {
		return AuditPage{}, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if p := auth.From(ctx); p.Scoped() {
		if org != nil && *org != *p.OrgID {
			return AuditPage{}, credit.NotFound("organization", *org)
		}
		org = p.OrgID
	}
	q := s.db.Client.AuditEntry.Query()
	if org != nil {
		q.Where(auditentry.OrganizationID(*org))
	}
	if after > 0 {
		q.Where(auditentry.IDLT(after))
	}
	es, err := q.Order(ent.Desc(auditentry.FieldID)).Limit(first + 1).All(ctx)
	if err != nil {
		return AuditPage{}, err
	}
	page := AuditPage{Entries: es}
	if len(es) > first {
		page.Entries, page.HasNextPage = es[:first], true
	}
	return page, nil
}
