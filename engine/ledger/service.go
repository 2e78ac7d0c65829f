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

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/rules"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/webhook"
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
	// paymentWindow is how long credits may wait for payment (see
	// FailUnpaid).
	paymentWindow time.Duration
	webhooks      webhookConfig
	defaults      sync.Map // organisation id -> default pool id (see defaultPools)
	parents       sync.Map // pool id -> parent pool id, 0 for none (see chains)
	plans         sync.Map // plan id -> *ent.Plan (plans never change)
	addOns        sync.Map // add-on id -> *ent.AddOn (add-ons never change)
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock; the engine never reads the wall clock itself.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithHoldTimeout sets how long a run's hold lives unsettled.
func WithHoldTimeout(d time.Duration) Option { return func(s *Service) { s.holdTimeout = d } }

// WithPaymentWindow sets how long a purchase or grant made pending may
// wait for its payment before FailUnpaid fails it.
func WithPaymentWindow(d time.Duration) Option { return func(s *Service) { s.paymentWindow = d } }

// WithMaxBatch sets the largest accepted usage batch.
func WithMaxBatch(n int) Option { return func(s *Service) { s.maxBatch = n } }

// WithCatalogTTL sets how long a snapshot of the published registers and
// policies is reused before it is reloaded. Publishing through this Service
// refreshes it at once; other replicas see a publish within the TTL.
func WithCatalogTTL(d time.Duration) Option { return func(s *Service) { s.catalog.ttl = d } }

// New returns a Service over db.
func New(db *store.DB, opts ...Option) *Service {
	s := &Service{
		db:            db,
		now:           func() time.Time { return time.Now().UTC() },
		catalog:       newCatalog(db.Client, rules.NewCache()),
		maxBatch:      DefaultMaxBatch,
		holdTimeout:   DefaultHoldTimeout,
		paymentWindow: DefaultPaymentWindow,
	}
	for _, o := range opts {
		o(s)
	}
	s.webhooks.fallback = webhook.NewClient(s.webhooks.allowPrivate, 10*time.Second)
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
// reports a serialization failure or deadlock, when fn asks for a retry, or
// when the connection failed before the commit (the transaction was rolled
// back, so running it again cannot apply it twice).
func (s *Service) inTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	return s.retry(ctx, func() error { return s.once(ctx, fn) })
}

// retry runs attempt again (a few times, with a short pause) while it fails
// with a retryable error. A database fault it gives up on is answered as
// the caller should see it: UNAVAILABLE (with extensions.retryable) for a
// database that is down, restarting, out of connections or too contended,
// VALIDATION for text the database cannot store.
func (s *Service) retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 0; n < 5; n++ {
		err = s.admitted(ctx, attempt)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		pause := time.Duration(n+1) * 2 * time.Millisecond
		if store.Classify(err) == store.FaultUnavailable {
			pause = 25 * time.Millisecond << n // 25, 50, 100, 200 ms: a connection may take a moment
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return answer(ctx, err)
}

// txSlots bounds the transactions open at once on a PostgreSQL pool to one
// less than its connections (per pool, shared by every Service over it). A
// transaction may need a second connection while it holds its own: the hot
// path prepares a statement on the pool the first time it meets it (see
// prepared). With every connection held by transactions queued behind one
// another's row locks, that preparation would wait for ever, and so would
// they. Keeping one connection out of transactions' reach makes a pool
// smaller than the number of concurrent callers safe (store refuses a
// PostgreSQL pool of one).
var txSlots sync.Map // *sql.DB -> chan struct{}

// admitted runs attempt once a transaction slot is free (see txSlots).
func (s *Service) admitted(ctx context.Context, attempt func() error) error {
	if !s.postgres() { // SQLite prepares nothing
		return attempt()
	}
	n := s.db.SQL.Stats().MaxOpenConnections
	if n < 2 { // 0: an unbounded pool
		return attempt()
	}
	v, ok := txSlots.Load(s.db.SQL)
	if !ok {
		v, _ = txSlots.LoadOrStore(s.db.SQL, make(chan struct{}, n-1))
	}
	slots := v.(chan struct{})
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-slots }()
	return attempt()
}

// answer turns a database fault retry gave up on into a caller-facing error;
// other errors pass unchanged.
func answer(ctx context.Context, err error) error {
	var e *credit.Error
	if err == nil || ctx.Err() != nil || errors.As(err, &e) {
		return err
	}
	switch store.Classify(err) {
	case store.FaultConflict: // rolled back, even at commit
		return store.Unavailable(err, true)
	case store.FaultUnavailable:
		var tf *txFault
		return store.Unavailable(err, !(errors.As(err, &tf) && tf.committing))
	case store.FaultBadText:
		return store.BadText(err)
	}
	return err
}

// txFault marks a connection fault with where the transaction was: before
// its commit (rolled back: safe to run again) or at it (the outcome is
// unknown). Unmarked faults are not retried.
type txFault struct {
	err        error
	committing bool
}

func (e *txFault) Error() string { return e.err.Error() }
func (e *txFault) Unwrap() error { return e.err }

// beginFailed, rolledBack and commitFailed mark a transaction's error with
// its phase (see txFault); errors that are not connection faults pass
// unchanged, so callers comparing them keep working.
func beginFailed(err error) error { return &txFault{err: fmt.Errorf("begin transaction: %w", err)} }

func rolledBack(err error) error {
	if store.Classify(err) == store.FaultUnavailable {
		return &txFault{err: err}
	}
	return err
}

func commitFailed(err error) error {
	return &txFault{err: fmt.Errorf("commit: %w", err), committing: true}
}

func (s *Service) once(ctx context.Context, fn func(tx *ent.Tx) error) (err error) {
	tx, err := s.db.Client.Tx(ctx)
	if err != nil {
		return beginFailed(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return rolledBack(err)
	}
	if err := tx.Commit(); err != nil {
		return commitFailed(err)
	}
	return nil
}

// errRetry asks inTx to run the transaction again (a concurrent writer won a
// race this transaction must now observe).
var errRetry = errors.New("retry transaction")

// retryable reports whether a failed transaction may simply run again: it
// asked to (errRetry), it lost a race (serialization failure, deadlock:
// rolled back even when reported at commit), or its connection failed
// before the commit (marked by once; see txFault).
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	switch store.Classify(err) {
	case store.FaultConflict:
		return true
	case store.FaultUnavailable:
		var tf *txFault
		return errors.As(err, &tf) && !tf.committing
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
		return credit.NotFound(what, id)
	case ent.IsValidationError(err):
		var ve *ent.ValidationError
		errors.As(err, &ve)
		return &credit.Error{Code: credit.CodeValidation, Field: ve.Name, Message: ve.Error(), Cause: err}
	case store.Classify(err) == store.FaultBadText:
		return store.BadText(err)
	}
	// Anything else (a database fault, a bug) stays as it is: retry and the
	// API answer it as UNAVAILABLE or INTERNAL, never as bad input.
	return err
}
