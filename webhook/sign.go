package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	HeaderSignature  = "Creditd-Signature"   // t=<unix seconds>,v1=<hex hmac>[,v1=...]
	HeaderEventID    = "Creditd-Event-Id"    // the logical event; the same on every retry and replay
	HeaderDeliveryID = "Creditd-Delivery-Id" // one attempt; new on every retry and replay
	HeaderEventType  = "Creditd-Event-Type"  // e.g. "pool.balance_below"
	HeaderTimestamp  = "Creditd-Timestamp"   // the t of the signature, unix seconds
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock, either way, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify; match them with errors.Is.
var (
	ErrHeader    = errors.New("webhook: malformed signature header")
	ErrSignature = errors.New("webhook: no signature matches")
	ErrTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
	ErrNoSecret  = errors.New("webhook: empty secret")
)

// Sign returns the Creditd-Signature header value for body sent at t: the
// unix seconds of t, then one v1 per secret, in the order given, each the
// hex HMAC-SHA256 keyed by the secret string over "<t>.<body>". During a
// rotation pass both active secrets so a receiver holding either verifies.
func Sign(secrets []string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256(secret, ts + "." + body).
func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify is what a receiver does with a delivery: it parses the
// Creditd-Signature header, checks that one of its v1 signatures is the
// HMAC of body under secret (compared in constant time), then that the
// signed timestamp is within tolerance of now, either way, against replays.
// A tolerance <= 0 means DefaultTolerance. Signatures of other schemes
// than v1 are ignored. body must be the raw request body, byte for byte.
func Verify(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return ErrNoSecret
	}
	h, err := parseHeader(header)
	if err != nil {
		return err
	}
	if !h.matches(mac(secret, h.ts, body)) {
		return ErrSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	signed := time.Unix(h.unix, 0)
	if age := now.Sub(signed).Abs(); age > tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now; the tolerance is %s",
			ErrTimestamp, signed.UTC().Format(time.RFC3339), age.Round(time.Second), tolerance)
	}
	return nil
}

// signature is a parsed Creditd-Signature header.
type signature struct {
	ts   string   // the timestamp as sent, which is what was signed
	unix int64    // ts as a number
	v1   [][]byte // the decoded v1 signatures; ones that are not hex are dropped
}

// parseHeader parses "t=<digits>,v1=<hex>,...": exactly one t, at least one
// v1; parts of other keys are ignored.
func parseHeader(header string) (signature, error) {
	var s signature
	seenV1 := false
	for _, part := range strings.Split(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, fmt.Errorf("%w: part %q is not key=value", ErrHeader, part)
		}
		switch key {
		case "t":
			if s.ts != "" {
				return s, fmt.Errorf("%w: more than one t", ErrHeader)
			}
			unix, err := parseUnix(value)
			if err != nil {
				return s, err
			}
			s.ts, s.unix = value, unix
		case "v1":
			seenV1 = true
			if b, err := hex.DecodeString(value); err == nil {
				s.v1 = append(s.v1, b)
			}
		}
	}
	if s.ts == "" {
		return s, fmt.Errorf("%w: no t", ErrHeader)
	}
	if !seenV1 {
		return s, fmt.Errorf("%w: no v1 signature", ErrHeader)
	}
	return s, nil
}

// parseUnix parses a timestamp of 1 to 18 decimal digits, no sign.
func parseUnix(v string) (int64, error) {
	if v == "" || len(v) > 18 || strings.Trim(v, "0123456789") != "" {
		return 0, fmt.Errorf("%w: t=%q is not unix seconds", ErrHeader, v)
	}
	return strconv.ParseInt(v, 10, 64)
}

// matches reports whether any v1 signature equals want, in constant time.
func (s signature) matches(want []byte) bool {
	ok := false
	for _, got := range s.v1 {
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	return ok
}
