package ledger

// SetVerifyPage makes Verify read n rows at a time (tests page through
// small ledgers) and returns the function that restores it.
func SetVerifyPage(n int) (restore func()) {
	old := verifyPage
	verifyPage = n
	return func() { verifyPage = old }
}
