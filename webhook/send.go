package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// UserAgent is the User-Agent of every delivery.
const UserAgent = "creditd-webhooks/1"

const (
	maxResponseBytes = 64 << 10 // read of a response, then discarded
	maxErrBytes      = 500      // of Result.Err
	maxBodyInErr     = 200      // of the response body quoted in Result.Err
)

// Request is one delivery attempt of one event to one endpoint.
type Request struct {
	URL        string
	Secrets    []string // the endpoint's active secrets, one v1 each
	DeliveryID string   // new for every attempt
	EventID    string   // the same for every attempt of the event
	EventType  string
	Body       []byte    // the JSON payload, sent and signed byte for byte
	Now        time.Time // when this attempt is made (not when the event happened): the signature's t; time.Now() when zero
}

// Result is the outcome of one attempt.
type Result struct {
	StatusCode int           // 0 when no response came
	Err        string        // why it failed, at most 500 bytes of valid UTF-8 without control characters; "" when OK
	Duration   time.Duration // from sending to the end of reading the response
	OK         bool          // a 2xx response came
}

// Send makes one delivery attempt: a signed POST of r.Body to r.URL with
// client c (from NewClient). It is OK iff the response is 2xx; it reads at
// most 64 KiB of the response and discards it. Err says why it failed: a
// network error, or "HTTP <code>: <the first 200 bytes of the body>".
// Send does not check r.URL (CheckURL does, when the endpoint is saved)
// and does not retry (see Backoff).
func Send(ctx context.Context, c *http.Client, r Request) Result {
	start := time.Now()
	res := deliver(ctx, c, r)
	res.Duration = time.Since(start)
	res.Err = clean(res.Err, maxErrBytes)
	return res
}

// deliver sends r and reads the response.
func deliver(ctx context.Context, c *http.Client, r Request) Result {
	if c == nil {
		return Result{Err: "webhook: nil http client"}
	}
	req, err := newRequest(ctx, r)
	if err != nil {
		return Result{Err: err.Error()}
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: transportError(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return outcome(resp, body)
}

// newRequest builds the signed POST of r.
func newRequest(ctx context.Context, r Request) (*http.Request, error) {
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("webhook: bad request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set(HeaderSignature, Sign(r.Secrets, now, r.Body))
	h.Set(HeaderEventID, r.EventID)
	h.Set(HeaderDeliveryID, r.DeliveryID)
	h.Set(HeaderEventType, r.EventType)
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	return req, nil
}

// transportError is the message of an error of http.Client.Do, without the
// "Post <url>:" prefix (the URL is known and may carry a token).
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// outcome judges a response whose body (at most 64 KiB of it) was read.
func outcome(resp *http.Response, body []byte) Result {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return Result{StatusCode: code, OK: true}
	}
	msg := fmt.Sprintf("HTTP %d", code)
	if loc := resp.Header.Get("Location"); code >= 300 && code < 400 && loc != "" {
		msg += ": redirect to " + loc + " not followed"
	} else if b := clean(string(body), maxBodyInErr); b != "" {
		msg += ": " + b
	}
	return Result{StatusCode: code, Err: msg}
}

// clean makes s safe to store and show: valid UTF-8, control characters
// (NUL included, which PostgreSQL text refuses) as spaces, trimmed, and cut
// to at most n bytes on a rune boundary.
func clean(s string, n int) string {
	if len(s) > n+utf8.UTFMax {
		s = s[:n+utf8.UTFMax] // enough for the cut below; bounds the work
	}
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}
