package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/observe"
	"github.com/creditd/creditd/report"
)

// CSV exports, outside GraphQL because they stream: GET
// /export/ledger.csv and /export/usage.csv with an API key (OPERATOR,
// REVOPS or the organisation's ORG_ADMIN) and the query parameters
// organizationId, from and to (RFC 3339, at most report.MaxExportDays
// apart) and optionally poolId, kind (repeatable; ledger), grantId
// (ledger), action, runId and status. Rows stream oldest first, a page at
// a time (report.ExportLedgerCSV): bad input is a JSON error with its code
// and field before any row is written; a fault mid-stream aborts the
// response, so a client never mistakes a cut file for a whole one.

// exportRoles may export.
var exportRoles = []credit.Role{credit.RoleOperator, credit.RoleRevOps, credit.RoleOrgAdmin}

// exportTimeout bounds one export.
const exportTimeout = 30 * time.Minute

func exportHandler(svc *ledger.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.From(r.Context())
		switch {
		case r.Method != http.MethodGet:
			writeError(w, http.StatusMethodNotAllowed, credit.Errorf(credit.CodeValidation, "exports are GET requests"))
			return
		case p == nil:
			writeError(w, http.StatusUnauthorized, credit.Errorf(auth.CodeUnauthenticated, "an API key is required (Authorization: Bearer <key>)"))
			return
		case !slices.Contains(exportRoles, p.Role):
			writeError(w, http.StatusForbidden, credit.Errorf(auth.CodeForbidden, "a %s key may not export; OPERATOR, REVOPS and ORG_ADMIN may", p.Role))
			return
		}
		q := r.URL.Query()
		var export func(context.Context, http.ResponseWriter) (int, error)
		var err error
		switch r.URL.Path {
		case "/export/ledger.csv":
			export, err = ledgerExport(svc, q)
		case "/export/usage.csv":
			export, err = usageExport(svc, q)
		default:
			http.NotFound(w, r)
			return
		}
		if err == nil {
			err = visible(r.Context(), svc, q)
		}
		if err != nil {
			writeExportError(w, r, err)
			return
		}
		streamExport(w, r, export)
	})
}

// streamExport runs export with a long deadline, writing the CSV headers
// before the first row.
func streamExport(w http.ResponseWriter, r *http.Request, export func(context.Context, http.ResponseWriter) (int, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), exportTimeout)
	defer cancel()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(exportTimeout))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", r.URL.Path[len("/export/"):]))
	w.Header().Set("Cache-Control", "no-store")
	rows, err := export(ctx, w)
	if err != nil {
		observe.Logger(r.Context()).Error("export", "path", r.URL.Path, "rows", rows, "error", err)
		panic(http.ErrAbortHandler) // the client sees a cut transfer, not a short file
	}
}

// writeExportError answers an export that did not start.
func writeExportError(w http.ResponseWriter, r *http.Request, err error) {
	var e *credit.Error
	switch {
	case errors.As(err, &e) && e.Code == credit.CodeNotFound:
		writeError(w, http.StatusNotFound, e)
	case errors.As(err, &e) && e.Code == credit.CodeValidation:
		writeError(w, http.StatusBadRequest, e)
	default:
		writeFault(w, r, "export", err)
	}
}

func ledgerExport(svc *ledger.Service, q url.Values) (func(context.Context, http.ResponseWriter) (int, error), error) {
	f := report.EntryFilter{Kinds: q["kind"]}
	var err error
	if f.OrganizationID, f.From, f.To, err = exportScope(q); err != nil {
		return nil, err
	}
	if f.PoolID, err = optionalID(q, "poolId"); err != nil {
		return nil, err
	}
	if f.GrantID, err = optionalID(q, "grantId"); err != nil {
		return nil, err
	}
	f.Action, f.RunID, f.Status = optional(q, "action"), optional(q, "runId"), optional(q, "status")
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, w http.ResponseWriter) (int, error) { return svc.ExportLedger(ctx, f, w) }, nil
}

func usageExport(svc *ledger.Service, q url.Values) (func(context.Context, http.ResponseWriter) (int, error), error) {
	f := report.EventFilter{}
	var err error
	if f.OrganizationID, f.From, f.To, err = exportScope(q); err != nil {
		return nil, err
	}
	if f.PoolID, err = optionalID(q, "poolId"); err != nil {
		return nil, err
	}
	f.Action, f.RunID, f.Status = optional(q, "action"), optional(q, "runId"), optional(q, "status")
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, w http.ResponseWriter) (int, error) { return svc.ExportUsage(ctx, f, w) }, nil
}

// exportScope reads organizationId, from and to.
func exportScope(q url.Values) (int, *time.Time, *time.Time, error) {
	org, err := optionalID(q, "organizationId")
	if err != nil {
		return 0, nil, nil, err
	}
	if org == nil {
		return 0, nil, nil, credit.Invalid("organizationId", "is required")
	}
	var at [2]*time.Time
	for i, name := range []string{"from", "to"} {
		v := q.Get(name)
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, nil, credit.Invalid(name, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", truncateText(v, 40))
		}
		t = t.UTC()
		at[i] = &t
	}
	if !at[1].After(*at[0]) || at[1].Sub(*at[0]) > report.MaxExportDays*24*time.Hour {
		return 0, nil, nil, credit.Invalid("to", "must be after from and at most %d days later", report.MaxExportDays)
	}
	return *org, at[0], at[1], nil
}

// visible checks, before any row is written, that the caller sees the
// organisation.
func visible(ctx context.Context, svc *ledger.Service, q url.Values) error {
	org, _ := strconv.Atoi(q.Get("organizationId"))
	o, err := svc.Organization(ctx, org)
	if err == nil && o == nil {
		err = credit.NotFound("organization", org)
	}
	return err
}

func optionalID(q url.Values, name string) (*int, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	id, err := strconv.Atoi(v)
	if err != nil || id < 1 {
		return nil, credit.Invalid(name, "must be an id, got %q", truncateText(v, 40))
	}
	return &id, nil
}

func optional(q url.Values, name string) *string {
	if v := q.Get(name); v != "" {
		return &v
	}
	return nil
}

func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
