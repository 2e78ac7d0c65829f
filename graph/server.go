package graph

import (
	"context"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
)

// Options tune the HTTP API.
type Options struct {
	// MaxBodyBytes caps a request body (default 1 MiB).
	MaxBodyBytes int64
	// ComplexityLimit caps a query's complexity (default 5000).
	ComplexityLimit int
	// Playground serves the GraphQL playground at / (default on).
	DisablePlayground bool
	// DisableIntrospection turns schema introspection off.
	DisableIntrospection bool
}

// NewHandler serves the API: the playground at /, GraphQL at /graphql and
// /healthz (200 when the database answers and its migrations are applied).
func NewHandler(svc *ledger.Service, db *store.DB, opt Options) http.Handler {
	if opt.MaxBodyBytes == 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	if opt.ComplexityLimit == 0 {
		opt.ComplexityLimit = 5000
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{svc: svc}}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	if !opt.DisableIntrospection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(opt.ComplexityLimit))
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)

	mux := http.NewServeMux()
	mux.Handle("/graphql", http.MaxBytesHandler(srv, opt.MaxBodyBytes))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ready(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if !opt.DisablePlayground {
		mux.Handle("/", playground.Handler("creditd", "/graphql"))
	}
	return mux
}
