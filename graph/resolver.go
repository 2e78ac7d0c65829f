// Package graph is the GraphQL API: the gqlgen schema (schema/*.graphqls),
// the generated executor, and thin resolvers that validate input shapes,
// call engine/ledger and map errors to stable codes. No business rule lives
// here.
package graph

import (
	"context"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/graph/loader"
	"github.com/creditd/creditd/observe"
)

// Resolver is the root resolver: it holds the ledger service.
type Resolver struct {
	svc     *ledger.Service
	metrics *observe.Metrics // nil: not measured
}

// load returns the loaders of the root field being resolved (NewHandler
// gives each its own); without them (a resolver called outside the
// server), fresh ones, which batch nothing.
func (r *Resolver) load(ctx context.Context) *loader.Loaders {
	if l := loader.From(ctx); l != nil {
		return l
	}
	return loader.New(r.svc.Client())
}

// countUsage feeds the usage metrics from results.
func (r *Resolver) countUsage(results ...*ledger.UsageResult) {
	if r.metrics == nil {
		return
	}
	for _, res := range results {
		if res.Duplicate {
			r.metrics.UsageEvents.WithLabelValues("duplicate").Inc()
			continue
		}
		r.metrics.UsageEvents.WithLabelValues(string(res.Decision)).Inc()
		if res.Decision != credit.DecisionDenied {
			f, _ := res.Credits.Float64()
			r.metrics.CreditsBurned.Add(f)
		}
	}
}
