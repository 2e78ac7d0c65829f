// Package auth is who is calling: API key secrets (generated, hashed,
// compared in constant time), the principal a request acts as, and the
// per-key rate limiter. What each role may do is declared in the GraphQL
// schema (@allow) and enforced in one place, graph's field middleware; what
// organisation a scoped key may touch is enforced by engine/ledger.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"math/big"
	"strings"

	"github.com/creditd/creditd/credit"
)

// Principal is the caller a request acts as.
type Principal struct {
	KeyID int
	Name  string
	Role  credit.Role
	OrgID *int // the organisation a scoped key is confined to; nil: every organisation
}

// Scoped reports whether the principal is confined to one organisation.
func (p *Principal) Scoped() bool { return p != nil && p.OrgID != nil }

// Sees reports whether the principal may see objects of organisation org.
func (p *Principal) Sees(org int) bool { return p == nil || p.OrgID == nil || *p.OrgID == org }

type ctxKey struct{}

// With returns ctx acting as p.
func With(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal of ctx, nil for in-process callers (the demo
// seed, jobs, tests), which act as the system with every right. Requests
// over HTTP always carry a principal or are refused before any resolver runs.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// KeyPrefix starts every generated key, so leaked keys are easy to scan for.
const KeyPrefix = "cdk_"

// MinSecretLen is the shortest secret accepted (CREDITD_ADMIN_KEY included).
const MinSecretLen = 24

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSecret returns a new random key: "cdk_" and 40 base62 characters
// (about 238 bits).
func NewSecret() (string, error) {
	var b strings.Builder
	b.WriteString(KeyPrefix)
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < 40; i++ {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// Hash is what is stored of a secret: its SHA-256, hex. Secrets are long and
// random, so a fast hash is enough; the database never holds the secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches compares a secret with a stored hash in constant time.
func Matches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(secret)), []byte(hash)) == 1
}

// Hint is the part of a secret safe to show in lists: its first characters.
func Hint(secret string) string {
	if len(secret) > 8 {
		return secret[:8] + "…"
	}
	return "…"
}

// WellFormed reports whether s can be a secret: printable ASCII without
// spaces, MinSecretLen to 200 characters.
func WellFormed(s string) bool {
	if len(s) < MinSecretLen || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// The codes of API keys and access: the API's vocabulary, not the credit
// model's (see package credit).
const (
	CodeUnauthenticated credit.Code = "UNAUTHENTICATED" // no API key
	CodeKeyMalformed    credit.Code = "KEY_MALFORMED"   // an Authorization header that is not "Bearer <key>"
	CodeKeyUnknown      credit.Code = "KEY_UNKNOWN"     // a key no one issued
	CodeKeyRevoked      credit.Code = "KEY_REVOKED"     // a revoked key
	CodeForbidden       credit.Code = "FORBIDDEN"       // the key's role may not do this
)
