package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/creditd/creditd/engine"
)

// presentError gives every error a stable extensions.code. Engine errors
// carry their own code, field, batch index and details; input that gqlgen
// could not coerce is VALIDATION; anything else is INTERNAL, with a generic
// message to the caller and the cause in the log.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var e *engine.Error
	if errors.As(err, &e) {
		gerr.Message = e.Error()
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
		gerr.Extensions = ext
		return gerr
	}
	if gerr.Extensions != nil && gerr.Extensions["code"] != nil {
		return gerr // gqlgen's own: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED
	}
	// A *gqlerror.Error without a code is gqlgen refusing input: its own
	// checks (no cause), or a scalar's unmarshaller (Time, JSON, Int, ...)
	// whose plain error graphql.ErrorOnPath wrapped with the argument's path.
	// Resolver errors reach the presenter unwrapped, so they are not caught
	// here.
	var ge *gqlerror.Error
	if errors.As(err, &ge) && !errors.Is(ge.Err, context.Canceled) && !errors.Is(ge.Err, context.DeadlineExceeded) {
		gerr.Extensions = map[string]any{"code": string(engine.CodeValidation)}
		return gerr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		gerr.Message = "request cancelled or timed out"
		gerr.Extensions = map[string]any{"code": "TIMEOUT"}
		return gerr
	}
	slog.ErrorContext(ctx, "internal error", "path", gerr.Path.String(), "error", err)
	gerr.Message = "internal error"
	gerr.Extensions = map[string]any{"code": string(engine.CodeInternal)}
	return gerr
}

func recoverPanic(ctx context.Context, p any) error {
	slog.ErrorContext(ctx, "panic in resolver", "panic", p)
	return &engine.Error{Code: engine.CodeInternal, Message: "internal error"}
}
