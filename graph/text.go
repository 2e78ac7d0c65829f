package graph

import (
	"context"
	"reflect"
	"sort"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
)

// checkText is a field middleware refusing, before any resolver runs, an
// argument whose text holds a NUL byte, anywhere in it: a string argument,
// an input object's string fields, a list's items, a JSON value's keys and
// strings. PostgreSQL cannot store NUL in text or jsonb and SQLite can, so
// without this the same request would fail on one dialect and pass on the
// other. The error is VALIDATION naming the innermost input field (and the
// list item, for a batch).
func checkText(ctx context.Context, next graphql.Resolver) (any, error) {
	if fc := graphql.GetFieldContext(ctx); fc != nil && len(fc.Args) > 0 {
		names := make([]string, 0, len(fc.Args))
		for name := range fc.Args {
			names = append(names, name)
		}
		sort.Strings(names) // the same request, the same error
		for _, name := range names {
			if err := textIn(name, reflect.ValueOf(fc.Args[name]), nil); err != nil {
				return nil, err
			}
		}
	}
	return next(ctx)
}

func textIn(field string, v reflect.Value, index *int) error {
	switch v.Kind() {
	case reflect.String:
		if err := engine.CheckText(field, v.String()); err != nil {
			if index != nil {
				return credit.AtIndex(err, *index)
			}
			return err
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return textIn(field, v.Elem(), index)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // bytes, not text
		}
		for i := 0; i < v.Len(); i++ {
			at := index
			if at == nil {
				j := i
				at = &j
			}
			if err := textIn(field, v.Index(i), at); err != nil {
				return err
			}
		}
	case reflect.Map:
		if m, ok := v.Interface().(map[string]any); ok { // a JSON value: its lists are not batch items
			if err := engine.CheckJSONText(field, m); err != nil {
				if index != nil {
					return credit.AtIndex(err, *index)
				}
				return err
			}
			return nil
		}
		it := v.MapRange()
		for it.Next() {
			if err := textIn(field, it.Key(), index); err != nil {
				return err
			}
			if err := textIn(field, it.Value(), index); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue // decimals, times: no text of the caller's
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
				name = tag
			}
			if err := textIn(name, v.Field(i), index); err != nil {
				return err
			}
		}
	}
	return nil
}
