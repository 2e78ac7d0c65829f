package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/creditd/creditd/credit"
	"github.com/lib/pq"
	"modernc.org/sqlite"
)

// Fault is what a database error means for the caller.
type Fault int

const (
	// FaultNone: nil, or not a database fault this package recognises (a
	// constraint violation, a bug): the caller gets INTERNAL.
	FaultNone Fault = iota
	// FaultConflict: the transaction lost a race (serialization failure,
	// deadlock) and was rolled back, even when reported at commit: run it
	// again.
	FaultConflict
	// FaultUnavailable: the database cannot be reached or refuses work for
	// now (down, restarting, out of connections, a broken connection). Safe
	// to run again only if the transaction never reached its commit.
	FaultUnavailable
	// FaultBadText: text the database cannot store (PostgreSQL: NUL bytes,
	// characters outside the encoding). Input checks should catch it first;
	// this is the fallback.
	FaultBadText
)

func (f Fault) String() string {
	switch f {
	case FaultConflict:
		return "conflict"
	case FaultUnavailable:
		return "unavailable"
	case FaultBadText:
		return "bad text"
	}
	return "none"
}

// Classify tells what err means for the caller.
func Classify(err error) Fault {
	if err == nil {
		return FaultNone
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch code := string(pe.Code); {
		case code == "40001", code == "40P01": // serialization_failure, deadlock_detected
			return FaultConflict
		case code == "53300", // too_many_connections
			code == "57P01",               // admin_shutdown (pg_terminate_backend, a fast shutdown)
			code == "57P02",               // crash_shutdown
			code == "57P03",               // cannot_connect_now (starting up, shutting down, in recovery)
			code == "57P05",               // idle_session_timeout
			code == "25P03",               // idle_in_transaction_session_timeout
			strings.HasPrefix(code, "08"): // connection_exception class
			return FaultUnavailable
		case code == "22021", code == "22P05": // character_not_in_repertoire, untranslatable_character
			return FaultBadText
		}
		return FaultNone
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED: another process holds the file past the busy timeout
			return FaultUnavailable
		}
		return FaultNone
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed),
		errors.As(err, &ne):
		return FaultUnavailable
	}
	// database/sql's own, unexported: the pool was closed (shutting down).
	if strings.Contains(err.Error(), "sql: database is closed") {
		return FaultUnavailable
	}
	return FaultNone
}

// Unavailable is the caller-facing answer to a FaultUnavailable (or a
// FaultConflict retried to no avail): code
// UNAVAILABLE, a generic message, extensions.retryable (true: nothing was
// written, send it again; false: the fault came at the commit, so the
// outcome is unknown and the caller should look before resending a write
// that has no idempotency key).
func Unavailable(cause error, retryable bool) *credit.Error {
	msg := "the database is unavailable; retry shortly"
	switch {
	case Classify(cause) == FaultConflict:
		msg = "too many concurrent changes to the same records; retry shortly"
	case !retryable:
		msg = "the database connection failed while committing; the outcome is unknown"
	}
	return &credit.Error{Code: credit.CodeUnavailable, Message: msg,
		Details: map[string]any{"retryable": retryable}, Cause: cause}
}

// BadText is the caller-facing answer to a FaultBadText.
func BadText(cause error) *credit.Error {
	return &credit.Error{Code: credit.CodeValidation,
		Message: "text holds a character the database cannot store (e.g. NUL, \\u0000)", Cause: cause}
}
