// Package ledger is the transactional side of the engine: the one place that
// opens a database transaction, loads a pool's state and the versions in
// effect, asks engine for a decision and writes it as immutable ledger
// entries. Every mutation is one transaction; resolvers only call in here.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/rules"
	"github.com/creditd/creditd/store"
)

// DefaultMaxBatch is the largest recordUsageBatch accepted by default.
const DefaultMaxBatch = 1000

// Service runs the ledger's operations against one database.
type Service struct {
	db          *store.DB
	now         func() time.Time
	catalog     *catalog
	maxBatch    int
	stmts       statements // prepared hot-path statements
	holdTimeout time.Duration
	defaults    sync.Map // organisation id -> default pool id (see defaultPools)
	parents     sync.Map // pool id -> parent pool id, 0 for none (see chains)
	plans       sync.Map // plan id -> *ent.Plan (plans never change)
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock; the engine never reads the wall clock itself.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithHoldTimeout sets how long a run's hold lives unsettled.
func WithHoldTimeout(d time.Duration) Option { return func(s *Service) { s.holdTimeout = d } }

// WithMaxBatch sets the largest accepted usage batch.
func WithMaxBatch(n int) Option { return func(s *Service) { s.maxBatch = n } }

// WithCatalogTTL sets how long a snapshot of the published registers and
// policies is reused before it is reloaded. Publishing through this Service
// refreshes it at once; other replicas see a publish within the TTL.
func WithCatalogTTL(d time.Duration) Option { return func(s *Service) { s.catalog.ttl = d } }

// New returns a Service over db.
func New(db *store.DB, opts ...Option) *Service {
	s := &Service{
		db:          db,
		now:         func() time.Time { return time.Now().UTC() },
		catalog:     newCatalog(db.Client, rules.NewCache()),
		maxBatch:    DefaultMaxBatch,
		holdTimeout: DefaultHoldTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Client is the ent client, for read-only queries by the API layer.
func (s *Service) Client() *ent.Client { return s.db.Client }

// Now is the service's clock, in UTC, truncated to microseconds (the
// precision both databases keep).
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// MaxBatch is the largest accepted usage batch.
func (s *Service) MaxBatch() int { return s.maxBatch }

func (s *Service) postgres() bool { return s.db.Dialect == dialect.Postgres }

// inTx runs fn in one transaction, retrying a few times when PostgreSQL
// reports a serialization failure or deadlock, or when fn asks for a retry.
func (s *Service) inTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	return s.retry(ctx, func() error { return s.once(ctx, fn) })
}

// retry runs attempt again (a few times, with a short pause) while it fails
// with a retryable error.
func (s *Service) retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 0; n < 5; n++ {
		err = attempt()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(n+1) * 2 * time.Millisecond)
	}
	return err
}

func (s *Service) once(ctx context.Context, fn func(tx *ent.Tx) error) (err error) {
	tx, err := s.db.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// errRetry asks inTx to run the transaction again (a concurrent writer won a
// race this transaction must now observe).
var errRetry = errors.New("retry transaction")

func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// isUniqueViolation reports whether err is a unique-index violation.
func isUniqueViolation(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return ent.IsConstraintError(err)
}

// mapEntError turns ent's errors into caller-facing ones.
func mapEntError(err error, what string, id any) error {
	switch {
	case err == nil:
		return nil
	case ent.IsNotFound(err):
		return engine.NotFound(what, id)
	case ent.IsValidationError(err):
		var ve *ent.ValidationError
		errors.As(err, &ve)
		return &engine.Error{Code: engine.CodeValidation, Field: ve.Name, Message: ve.Error(), Cause: err}
	}
	return err
}
