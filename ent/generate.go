// Package ent is the generated ent client of the credit ledger; edit
// ent/schema and run `go generate ./...`, never the generated files.
package ent
