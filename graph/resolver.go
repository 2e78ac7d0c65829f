// Package graph is the GraphQL API: the gqlgen schema (schema/*.graphqls),
// the generated executor, and thin resolvers that validate input shapes,
// call engine/ledger and map errors to stable codes. No business rule lives
// here.
package graph

import (
	"github.com/creditd/creditd/engine/ledger"
)

// Resolver is the root resolver: it holds the ledger service.
type Resolver struct {
	svc *ledger.Service
}
