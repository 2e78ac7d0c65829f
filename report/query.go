package report

import (
	"database/sql"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
)

// query is a statement being written with its arguments, in the
// placeholder style of its dialect ($n on PostgreSQL, ?n on SQLite).
type query struct {
	sql     strings.Builder
	args    []any
	dialect string
}

func newQuery(d string) *query { return &query{dialect: d} }

func (q *query) postgres() bool { return q.dialect == dialect.Postgres }

// arg binds v and returns its placeholder. Times are bound in UTC: SQLite
// stores them as text (time.Time.String of a UTC time), which compares in
// time order only against text of the same zone.
func (q *query) arg(v any) string {
	if t, ok := v.(time.Time); ok {
		v = t.UTC()
	}
	q.args = append(q.args, v)
	if q.postgres() {
		return "$" + strconv.Itoa(len(q.args))
	}
	return "?" + strconv.Itoa(len(q.args))
}

// list binds vs and returns "(p1, p2, ...)" for an IN list.
func list[T any](q *query, vs []T) string {
	ps := make([]string, len(vs))
	for i, v := range vs {
		ps[i] = q.arg(v)
	}
	return "(" + strings.Join(ps, ", ") + ")"
}

// add appends SQL text.
func (q *query) add(parts ...string) *query {
	for _, p := range parts {
		q.sql.WriteString(p)
	}
	return q
}

// and appends one more condition to a WHERE clause already begun.
func (q *query) and(cond ...string) *query { return q.add(" AND ").add(cond...) }

func (q *query) String() string { return q.sql.String() }

// nullInt is a nullable column as *int.
func nullInt(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

// kindList is the SQL IN list of entry kinds, written as literals (they
// are constants of ours, never input).
func kindList(kinds ...string) string {
	return "('" + strings.Join(kinds, "', '") + "')"
}
