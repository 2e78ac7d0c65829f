package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// SecretPrefix starts every endpoint secret, so a leaked one is easy to
// recognise (and to scan for).
const SecretPrefix = "whsec_"

// NewSecret returns a new endpoint secret: SecretPrefix followed by 32 bytes
// from crypto/rand in unpadded base64url (43 characters, 49 in all). The HMAC
// key is the whole string, prefix included.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}
