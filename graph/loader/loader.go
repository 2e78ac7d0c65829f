// Package loader batches the API's reads within one root field of a GraphQL
// operation: the objects a page of rows refers to (a ledger entry's pool,
// grant and usage event; a pool's organisation) are read in one query per
// kind however long the page is, and a value computed for an object (a
// pool's balance) is computed once however often the page shows it.
package loader

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// A Loader reads rows of one kind by id, in batches.
//
// The batches come from what the parents announce, not from a timer: a
// resolver that returns rows calls Want with the ids they refer to, and the
// first Load of an id not read yet reads it together with every id wanted
// so far, in one query, while concurrent Loads wait for that query rather
// than start their own. A row read wants what it refers to in turn (a grant
// its pool), so a page costs one query per kind of object it shows.
type Loader[V any] struct {
	read func(ctx context.Context, ids []int) ([]*V, error)
	id   func(*V) int
	// refer wants the ids a row refers to: of other kinds through their
	// loaders' Want (always in the same order of kinds, so that locks never
	// cross), of its own kind through again (the lock is held).
	refer func(v *V, again func(id int))

	mu     sync.Mutex
	wanted map[int]bool
	rows   map[int]*V // read; nil when there is no such row or the caller may not see it
}

// NewLoader returns a loader that reads with read (which leaves out rows the
// caller may not see) and knows a row's id by id; refer may be nil.
func NewLoader[V any](read func(ctx context.Context, ids []int) ([]*V, error), id func(*V) int,
	refer func(v *V, again func(id int))) *Loader[V] {
	return &Loader[V]{read: read, id: id, refer: refer, wanted: map[int]bool{}, rows: map[int]*V{}}
}

// Want notes ids that will probably be loaded, to read them in one batch.
func (l *Loader[V]) Want(ids ...int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.again(id)
	}
}

// again is Want with the lock held.
func (l *Loader[V]) again(id int) {
	if _, ok := l.rows[id]; !ok {
		l.wanted[id] = true
	}
}

// Prime stores rows already read (and visible to the caller), and wants
// what they refer to.
func (l *Loader[V]) Prime(vs ...*V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range vs {
		if _, ok := l.rows[l.id(v)]; !ok {
			l.store(v)
		}
	}
}

func (l *Loader[V]) store(v *V) {
	id := l.id(v)
	l.rows[id] = v
	delete(l.wanted, id)
	if l.refer != nil {
		l.refer(v, l.again)
	}
}

// Load returns the row with this id, nil when there is none or the caller
// may not see it. A failed read is not remembered: the ids stay wanted and
// the next Load tries again.
func (l *Loader[V]) Load(ctx context.Context, id int) (*V, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.rows[id]; ok {
		return v, nil
	}
	l.wanted[id] = true
	ids := make([]int, 0, len(l.wanted))
	for w := range l.wanted {
		ids = append(ids, w)
	}
	slices.Sort(ids)
	vs, err := l.read(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, w := range ids {
		l.rows[w] = nil
		delete(l.wanted, w)
	}
	for _, v := range vs {
		l.store(v)
	}
	return l.rows[id], nil
}

// A Memo computes a value once per key; concurrent callers of the same key
// wait for the first one's answer.
type Memo[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

var errAbandoned = errors.New("loader: the computation this value waited for did not finish")

// Do returns f's answer for key, calling f only the first time.
func (m *Memo[K, V]) Do(key K, f func() (V, error)) (V, error) {
	m.mu.Lock()
	if c, ok := m.calls[key]; ok {
		m.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	if m.calls == nil {
		m.calls = map[K]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{}), err: errAbandoned} // kept if f panics
	m.calls[key] = c
	m.mu.Unlock()
	defer close(c.done)
	c.v, c.err = f()
	return c.v, c.err
}
