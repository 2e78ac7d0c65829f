package rules

import (
	"sync"
	"sync/atomic"
)

// Cache holds compiled programs by a caller's key, such as a policy id and
// version. It is safe for concurrent use; each key compiles once, and a
// compile error is remembered like a program.
type Cache struct {
	m        sync.Map // string -> *cacheEntry
	compiles atomic.Int64
}

type cacheEntry struct {
	kind Kind
	expr string
	once sync.Once
	prog *Program
	err  error
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{} }

// Get returns the program for key, compiling expr as kind the first time.
// If key was seen with a different kind or expression, it is compiled again
// and replaces the old entry.
func (c *Cache) Get(key string, kind Kind, expr string) (*Program, error) {
	for {
		v, _ := c.m.LoadOrStore(key, &cacheEntry{kind: kind, expr: expr})
		e := v.(*cacheEntry)
		if e.kind != kind || e.expr != expr {
			c.m.CompareAndSwap(key, e, &cacheEntry{kind: kind, expr: expr})
			continue
		}
		e.once.Do(func() {
			c.compiles.Add(1)
			e.prog, e.err = Compile(kind, expr)
		})
		return e.prog, e.err
	}
}

// Forget drops key from the cache.
func (c *Cache) Forget(key string) { c.m.Delete(key) }
