// Package webhook holds the pure, database-free parts of outgoing webhooks:
// endpoint secrets, Stripe-style signatures, URL checks against server-side
// request forgery, an HTTP client that refuses private addresses after DNS
// resolution, one delivery attempt (Send) and the retry schedule (Backoff).
// The outbox tables and the worker loop that uses them live elsewhere.
//
// # Deliveries
//
// A delivery is a POST of a JSON body with Content-Type application/json,
// User-Agent creditd-webhooks/1 and these headers:
//
//	Creditd-Signature:   t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]
//	Creditd-Event-Id:    the logical event; every retry and replay of it carries the same
//	Creditd-Delivery-Id: this attempt; new on every retry and replay
//	Creditd-Event-Type:  the kind of event
//	Creditd-Timestamp:   the t of the signature
//
// The HMAC key is the whole secret string ("whsec_..."), and the body is
// the raw request body, byte for byte. The header carries one v1 per
// active secret of the endpoint: while a secret is rotated the endpoint has
// two, and a receiver verifying with either the old or the new one
// succeeds, so rotation needs no downtime. The signature covers the
// timestamp and the body, not the other headers.
//
// Any 2xx response is a success; anything else, a redirect included, is
// retried after Backoff until MaxAttempts attempts were made.
//
// # Receiving
//
// A receiver verifies the signature over the raw body before parsing it,
// refuses timestamps too far from its clock (replays), answers quickly, and
// processes each event once, whatever the number of deliveries. [Verify]
// is the reference for the first two. A minimal receiver in Go:
//
//	func handle(secret string, seen *sync.Map, process func([]byte) error) http.HandlerFunc {
//		return func(w http.ResponseWriter, r *http.Request) {
//			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//			if err != nil {
//				http.Error(w, "cannot read the body", http.StatusBadRequest)
//				return
//			}
//			sig := r.Header.Get("Creditd-Signature")
//			if err := webhook.Verify(sig, body, secret, time.Now(), 5*time.Minute); err != nil {
//				http.Error(w, "bad signature", http.StatusBadRequest)
//				return
//			}
//			id := r.Header.Get("Creditd-Event-Id")
//			if _, done := seen.Load(id); done {
//				w.WriteHeader(http.StatusOK) // a retry or a replay of a processed event
//				return
//			}
//			if err := process(body); err != nil {
//				http.Error(w, "try again later", http.StatusInternalServerError) // creditd retries
//				return
//			}
//			seen.Store(id, true)
//			w.WriteHeader(http.StatusOK)
//		}
//	}
//
// It marks an event done only once processed, so a failed attempt is
// retried. A real receiver keeps the ids in its database, with a unique
// key written in the same transaction as the processing, so two concurrent
// deliveries of one event cannot both pass.
//
// The same check in Python (header is the Creditd-Signature value, body the
// raw bytes):
//
//	import hashlib, hmac, time
//	def verify(header, body, secret, tolerance=300):
//	    parts = [p.split("=", 1) for p in header.split(",")]
//	    t = next(v for k, v in parts if k == "t")
//	    mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
//	    return abs(time.time() - int(t)) <= tolerance and any(hmac.compare_digest(mac, v) for k, v in parts if k == "v1")
//
// # Addresses
//
// CheckURL vets an endpoint URL when it is saved, without DNS. The client
// of NewClient checks again, at connection time, the address a name
// resolved to, so a name re-pointed at an internal address afterwards
// (DNS rebinding) still cannot reach it.
package webhook
