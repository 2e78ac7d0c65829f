package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
)

// Access rules are declared in the schema with @allow(roles: [...]) on a
// field, or on an object type for every field without its own. They are
// read once from the schema into a table, and enforced for every resolved
// field by one field middleware: there is no check to forget in a resolver.
// A field with no rule is refused (and TestEveryFieldHasAnAccessRule fails).
// Which organisation a scoped key may touch is the service's business
// (engine/ledger), since only it knows an object's organisation.

// accessRules maps "Type.field" to the roles allowed to resolve it.
type accessRules map[string]map[credit.Role]bool

func rulesOf(s *ast.Schema) accessRules {
	out := accessRules{}
	for _, def := range s.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		typeRoles := allowed(def.Directives)
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			if roles := allowed(f.Directives); roles != nil {
				out[def.Name+"."+f.Name] = roles
			} else if typeRoles != nil {
				out[def.Name+"."+f.Name] = typeRoles
			}
		}
	}
	return out
}

func allowed(ds ast.DirectiveList) map[credit.Role]bool {
	d := ds.ForName("allow")
	if d == nil {
		return nil
	}
	roles := map[credit.Role]bool{}
	if arg := d.Arguments.ForName("roles"); arg != nil {
		for _, c := range arg.Value.Children {
			roles[credit.Role(c.Value.Raw)] = true
		}
	}
	return roles
}

// Allows reports whether role may resolve field ("Type.field").
func (a accessRules) Allows(field string, role credit.Role) bool { return a[field][role] }

// guard is the field middleware enforcing the rules.
func (a accessRules) guard(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil || strings.HasPrefix(fc.Object, "__") || strings.HasPrefix(fc.Field.Name, "__") {
		return next(ctx) // introspection stays open (turn it off with --no-introspection)
	}
	p := auth.From(ctx)
	if p == nil {
		return nil, credit.Errorf(auth.CodeUnauthenticated, "send an API key: Authorization: Bearer <key>")
	}
	name := fc.Object + "." + fc.Field.Name
	if !a.Allows(name, p.Role) {
		return nil, credit.Errorf(auth.CodeForbidden, "a %s key may not use %s", p.Role, name)
	}
	return next(ctx)
}

// depthLimit refuses operations whose selections nest deeper than max
// (fragments included), before anything is resolved.
type depthLimit int

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit(0)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, map[string]bool{}); depth > int(d) {
		return presentError(ctx, credit.Errorf(CodeQueryTooDeep, "the query nests %d levels; at most %d are allowed", depth, int(d)))
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, depth int, seen map[string]bool) int {
	max := depth
	for _, s := range set {
		var d int
		switch sel := s.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue // introspection (the playground's own query nests deep) is bounded by the schema
			}
			if len(sel.SelectionSet) == 0 {
				d = depth + 1
			} else {
				d = selectionDepth(sel.SelectionSet, depth+1, seen)
			}
		case *ast.InlineFragment:
			d = selectionDepth(sel.SelectionSet, depth, seen)
		case *ast.FragmentSpread:
			if seen[sel.Name] || sel.Definition == nil {
				continue // cycles are refused by validation anyway
			}
			seen[sel.Name] = true
			d = selectionDepth(sel.Definition.SelectionSet, depth, seen)
			delete(seen, sel.Name)
		}
		if d > max {
			max = d
		}
	}
	return max
}

// bearer extracts the key of an Authorization header.
func bearer(h string) (string, error) {
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !auth.WellFormed(strings.TrimSpace(key)) {
		return "", credit.Errorf(auth.CodeKeyMalformed, "the Authorization header must be \"Bearer <key>\"")
	}
	return strings.TrimSpace(key), nil
}
