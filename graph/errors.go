package graph

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/observe"
	"github.com/creditd/creditd/store"
)

// presentError gives every error a stable extensions.code and tells the
// truth about whose fault it is:
//   - engine errors carry their own code, field, batch index and details;
//   - gqlgen's own errors keep their code (GRAPHQL_PARSE_FAILED, ...);
//   - a cancelled or timed-out request is TIMEOUT;
//   - a database that is down, restarting, out of connections or too
//     contended is UNAVAILABLE with extensions.retryable (the ledger retries
//     what it safely can first); text the database cannot store is
//     VALIDATION;
//   - an argument gqlgen could not coerce (a scalar's unmarshaller, an
//     enum) is VALIDATION;
//   - anything else is INTERNAL, with a generic message to the caller and
//     the cause in the log.
//
// gqlgen wraps every error, a resolver's included, in a *gqlerror.Error
// with a path, so "a gqlerror without a code" alone says nothing about
// whose fault it is: an argument error is one whose path goes below the
// field into one of its arguments.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	gerr := present(ctx, err)
	if c, _ := gerr.Extensions["code"].(string); c != "" {
		tallyCode(ctx, c)
	}
	return gerr
}

func present(ctx context.Context, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var e *credit.Error
	if errors.As(err, &e) {
		if e.Code == credit.CodeUnavailable || e.Code == credit.CodeInternal {
			slog.WarnContext(ctx, "database fault", "path", gerr.Path.String(), "code", e.Code, "error", err)
		}
		gerr.Message = e.Error()
		gerr.Extensions = extensions(e)
		return gerr
	}
	if gerr.Extensions != nil && gerr.Extensions["code"] != nil {
		return gerr // gqlgen's own: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		gerr.Message = "request cancelled or timed out"
		gerr.Extensions = map[string]any{"code": "TIMEOUT"}
		return gerr
	}
	switch store.Classify(err) {
	case store.FaultUnavailable, store.FaultConflict:
		// Outside a ledger transaction (reads): nothing was written.
		slog.WarnContext(ctx, "database unavailable", "path", gerr.Path.String(), "error", err)
		u := store.Unavailable(err, true)
		gerr.Message, gerr.Extensions = u.Error(), extensions(u)
		return gerr
	case store.FaultBadText:
		b := store.BadText(err)
		gerr.Message, gerr.Extensions = b.Error(), extensions(b)
		return gerr
	}
	if argumentError(ctx, err) {
		gerr.Extensions = map[string]any{"code": string(credit.CodeValidation)}
		return gerr
	}
	slog.ErrorContext(ctx, "internal error", "path", gerr.Path.String(), "error", err)
	gerr.Message = "internal error"
	gerr.Extensions = map[string]any{"code": string(credit.CodeInternal)}
	return gerr
}

// extensions are an engine error's GraphQL extensions.
func extensions(e *credit.Error) map[string]any {
	ext := map[string]any{"code": string(e.Code)}
	if e.Field != "" {
		ext["field"] = e.Field
	}
	if e.Index != nil {
		ext["index"] = *e.Index
	}
	for k, v := range e.Details {
		ext[k] = v
	}
	return ext
}

// argumentError reports whether err is gqlgen refusing input: its own
// checks (a gqlerror without a cause), or an argument it could not coerce,
// whose path runs from the field into one of the field's arguments
// (["recordUsage", "input", "quantity"] under the field ["recordUsage"]).
func argumentError(ctx context.Context, err error) bool {
	var ge *gqlerror.Error
	if !errors.As(err, &ge) {
		return false
	}
	if ge.Err == nil {
		return true
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return false
	}
	fp := fc.Path()
	if len(ge.Path) <= len(fp) {
		return false
	}
	for i := range fp {
		if ge.Path[i] != fp[i] {
			return false
		}
	}
	name, ok := ge.Path[len(fp)].(ast.PathName)
	return ok && fc.Field.Arguments.ForName(string(name)) != nil
}

func recoverPanic(ctx context.Context, p any) error {
	slog.ErrorContext(ctx, "panic in resolver", "panic", p)
	return &credit.Error{Code: credit.CodeInternal, Message: "internal error"}
}

// writeFault answers a request that failed before GraphQL ran for a reason
// that is not the caller's (what names the step for the log): 503
// UNAVAILABLE with Retry-After when the database is down, restarting or out
// of connections, else 500 INTERNAL.
func writeFault(w http.ResponseWriter, r *http.Request, what string, err error) {
	var e *credit.Error
	if !errors.As(err, &e) || (e.Code != credit.CodeUnavailable && e.Code != credit.CodeInternal) {
		switch store.Classify(err) {
		case store.FaultUnavailable, store.FaultConflict:
			e = store.Unavailable(err, true)
		default:
			e = &credit.Error{Code: credit.CodeInternal, Message: "internal error", Cause: err}
		}
	}
	status := http.StatusInternalServerError
	if e.Code == credit.CodeUnavailable {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
		observe.Logger(r.Context()).Warn(what, "code", e.Code, "error", err)
	} else {
		e = &credit.Error{Code: credit.CodeInternal, Message: "internal error"}
		observe.Logger(r.Context()).Error(what, "error", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": e.Error(), "extensions": extensions(e)}},
		"data":   nil,
	})
}

// A GraphQL response whose errors are all UNAVAILABLE goes out as HTTP 503
// with Retry-After, so load balancers and HTTP clients see what the body
// says; any other response keeps gqlgen's status. The presenter counts the
// codes of one request (tallyCode); the writer picks the status when the
// response starts.

type tallyKey struct{}

type tally struct {
	mu                 sync.Mutex
	unavailable, other int
}

func tallyCode(ctx context.Context, code string) {
	t, _ := ctx.Value(tallyKey{}).(*tally)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if code == string(credit.CodeUnavailable) {
		t.unavailable++
	} else {
		t.other++
	}
}

func (t *tally) onlyUnavailable() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unavailable > 0 && t.other == 0
}

// unavailableStatus wraps the GraphQL handler (see tally).
func unavailableStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &tally{}
		next.ServeHTTP(&tallyWriter{ResponseWriter: w, t: t}, r.WithContext(context.WithValue(r.Context(), tallyKey{}, t)))
	})
}

type tallyWriter struct {
	http.ResponseWriter
	t     *tally
	wrote bool
}

func (w *tallyWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code == http.StatusOK && w.t.onlyUnavailable() {
		w.Header().Set("Retry-After", "1")
		code = http.StatusServiceUnavailable
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tallyWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *tallyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The codes of the HTTP transport: request rate, size and shape.
const (
	CodeRateLimited     credit.Code = "RATE_LIMITED"      // the key sent more requests than its rate allows
	CodeQueryTooDeep    credit.Code = "QUERY_TOO_DEEP"    // selections nested deeper than the limit
	CodeRequestTooLarge credit.Code = "REQUEST_TOO_LARGE" // a request body over the limit
)
