package webhook

import "time"

// MaxAttempts is how many times a delivery is attempted before it is given
// up. With Backoff the attempts come at 0s, 30s, 1m30s, 3m30s, 7m30s,
// 15m30s, 31m30s, 1h3m30s, 2h7m30s and 4h15m30s after the first: the last
// is about 4¼ hours after the first (the 6-hour cap is not reached before
// the 11th attempt).
const MaxAttempts = 10

const (
	firstBackoff = 30 * time.Second
	maxBackoff   = 6 * time.Hour
)

// Backoff is how long to wait after the attempt-th attempt failed before
// the next: 30s after the first, doubling each time, capped at 6h. It is
// deterministic (no jitter), so schedules are reproducible and testable;
// a worker that wants to spread a burst adds its own jitter. An attempt
// below 1 counts as 1. After attempt MaxAttempts fails there is no next.
func Backoff(attempt int) time.Duration {
	d := firstBackoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}
