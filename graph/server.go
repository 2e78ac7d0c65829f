package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph/loader"
	"github.com/creditd/creditd/observe"
	"github.com/creditd/creditd/store"
)

// Options tune the HTTP API; zero values take the defaults.
type Options struct {
	MaxBodyBytes         int64         // a request body's limit (default 1 MiB)
	ComplexityLimit      int           // query complexity limit (default DefaultComplexityLimit; see complexity.go)
	MaxDepth             int           // selection nesting limit (default 12)
	RequestTimeout       time.Duration // per request (default 30s)
	RateLimit            float64       // requests per second per key (default 1000; negative: off)
	RateBurst            int           // burst per key (default 2000)
	DisablePlayground    bool          // no playground at /
	DisableIntrospection bool          // no schema introspection
	Metrics              *observe.Metrics
}

func (o *Options) defaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.ComplexityLimit == 0 {
		o.ComplexityLimit = DefaultComplexityLimit
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = 12
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.RateLimit == 0 {
		o.RateLimit = 1000
	}
	if o.RateBurst == 0 {
		o.RateBurst = 2000
	}
}

// NewHandler serves the API:
//
//	/graphql   GraphQL (POST, GET), behind API keys, limits and @allow rules
//	/          the playground (unless disabled)
//	/healthz   200 while the database answers (liveness)
//	/readyz    200 when the database answers and every migration is applied
//	/metrics   Prometheus metrics (when opt.Metrics is set)
func NewHandler(svc *ledger.Service, db *store.DB, opt Options) http.Handler {
	opt.defaults()
	schema := NewExecutableSchema(Config{Resolvers: &Resolver{svc: svc, metrics: opt.Metrics}, Complexity: costs(svc.MaxBatch())})
	rules := rulesOf(schema.Schema())
	srv := handler.New(schema)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	if !opt.DisableIntrospection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(opt.ComplexityLimit))
	srv.Use(depthLimit(opt.MaxDepth))
	srv.AroundFields(rules.guard)
	// Each root field reads through loaders of its own (see resolver.load).
	srv.AroundRootFields(func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		return next(loader.With(ctx, loader.New(svc.Client())))
	})
	srv.AroundFields(checkText)
	if opt.Metrics != nil {
		srv.AroundResponses(measure(opt.Metrics))
	}
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		e := presentError(ctx, err)
		if opt.Metrics != nil {
			if c, _ := e.Extensions["code"].(string); strings.HasPrefix(c, "RULE_") {
				opt.Metrics.RuleErrors.WithLabelValues(c).Inc()
			}
		}
		return e
	})
	srv.SetRecoverFunc(recoverPanic)

	limiter := auth.NewLimiter(opt.RateLimit, opt.RateBurst, nil)
	mux := http.NewServeMux()
	mux.Handle("/graphql", limitBody(opt.MaxBodyBytes, authenticate(svc, limiter, timeout(opt.RequestTimeout, unavailableStatus(srv)))))
	mux.Handle("/export/", authenticate(svc, limiter, exportHandler(svc)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.SQL.PingContext(ctx); err != nil {
			http.Error(w, "unhealthy: database does not answer", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if opt.Metrics != nil {
		mux.Handle("/metrics", opt.Metrics.Handler())
	}
	if !opt.DisablePlayground {
		mux.Handle("/", playground.Handler("creditd", "/graphql"))
	}
	return observe.Middleware(mux)
}

// writeError answers a request refused before GraphQL ran, in the GraphQL
// response shape, with the error's code.
func writeError(w http.ResponseWriter, status int, err *credit.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	ext := map[string]any{"code": string(err.Code)}
	if err.Field != "" {
		ext["field"] = err.Field
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": err.Message, "extensions": ext}},
		"data":   nil,
	})
}

// limitBody refuses bodies over max with REQUEST_TOO_LARGE (413).
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tooLarge := credit.Errorf(CodeRequestTooLarge, "the request body is larger than %d bytes", max)
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, credit.Errorf(credit.CodeValidation, "could not read the request body"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// authenticate resolves the Bearer key into a principal. A request without
// a key goes on without one (introspection works; every field answers
// UNAUTHENTICATED); a malformed, unknown or revoked key is refused at once
// (401), and a key over its rate RATE_LIMITED (429). The secret is never
// logged.
func authenticate(svc *ledger.Service, limiter *auth.Limiter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		secret, err := bearer(h)
		if err == nil {
			var p *auth.Principal
			if p, err = svc.Authenticate(r.Context(), secret); err == nil {
				if !limiter.Allow(p.KeyID) {
					w.Header().Set("Retry-After", "1")
					writeError(w, http.StatusTooManyRequests, credit.Errorf(CodeRateLimited, "too many requests for this key; slow down"))
					return
				}
				next.ServeHTTP(w, r.WithContext(auth.With(r.Context(), p)))
				return
			}
		}
		var e *credit.Error
		if !errors.As(err, &e) || e.Code == credit.CodeUnavailable || e.Code == credit.CodeInternal {
			writeFault(w, r, "authenticate", err) // 503 UNAVAILABLE or 500 INTERNAL
			return
		}
		writeError(w, http.StatusUnauthorized, e)
	})
}

func timeout(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// measure records each operation's outcome (ok or its first error code) and
// latency, labelled by its first root field: a name from the schema, never
// the client's operation name, so the number of series stays bounded.
func measure(m *observe.Metrics) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		start := time.Now()
		resp := next(ctx)
		if !graphql.HasOperationContext(ctx) {
			return resp
		}
		oc := graphql.GetOperationContext(ctx)
		name := "unknown"
		if oc.Operation != nil {
			for _, sel := range oc.Operation.SelectionSet {
				if f, ok := sel.(*ast.Field); ok && f.Definition != nil {
					name = f.Name
					break
				}
			}
		}
		outcome := "ok"
		if resp != nil && len(resp.Errors) > 0 {
			outcome = "error"
			if c, ok := resp.Errors[0].Extensions["code"].(string); ok && len(c) <= 40 {
				outcome = c
			}
		}
		m.Operations.WithLabelValues(name, outcome).Inc()
		m.OperationSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		return resp
	}
}
