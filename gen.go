// Package creditd is a credit-based pricing platform: a GraphQL API over an
// exact, immutable credit ledger whose pricing is data (versioned weight
// registers) and CEL rules. See README.md.
package creditd

// The one code-generation entry point, in a fixed order: ent first (the
// GraphQL layer binds to its types), then gqlgen.
//go:generate go run -mod=mod ./ent/entc.go
//go:generate go run github.com/99designs/gqlgen generate --config gqlgen.yml
