package webhook_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/webhook"
)

// handle is the receiver of the package documentation, verbatim:
// TestReceiverDoc keeps the two the same.
func handle(secret string, seen *sync.Map, process func([]byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		sig := r.Header.Get("Creditd-Signature")
		if err := webhook.Verify(sig, body, secret, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("Creditd-Event-Id")
		if _, done := seen.Load(id); done {
			w.WriteHeader(http.StatusOK) // a retry or a replay of a processed event
			return
		}
		if err := process(body); err != nil {
			http.Error(w, "try again later", http.StatusInternalServerError) // creditd retries
			return
		}
		seen.Store(id, true)
		w.WriteHeader(http.StatusOK)
	}
}

// TestReceiver delivers one event several times, as retries and replays
// do, to the documented receiver holding the old secret of a rotation.
func TestReceiver(t *testing.T) {
	var processed []string
	fail := true
	process := func(b []byte) error {
		if fail {
			fail = false
			return errors.New("database down")
		}
		processed = append(processed, string(b))
		return nil
	}
	srv, _ := server(t, handle("whsec_old", &sync.Map{}, process))
	c := webhook.NewClient(true, 5*time.Second)
	tests := []struct {
		name   string
		change func(*webhook.Request)
		ok     bool
	}{
		{"processing fails", func(*webhook.Request) {}, false},
		{"retry", func(r *webhook.Request) { r.DeliveryID = "dlv_2" }, true},
		{"replay", func(r *webhook.Request) { r.DeliveryID = "dlv_3" }, true},
		{"forged", func(r *webhook.Request) { r.Secrets = []string{"whsec_guess"} }, false},
		{"stale", func(r *webhook.Request) { r.Now = time.Now().Add(-time.Hour) }, false},
	}
	for _, tt := range tests {
		r := request(srv.URL)
		tt.change(&r)
		if res := webhook.Send(context.Background(), c, r); res.OK != tt.ok {
			t.Errorf("%s: Send() = %+v, want OK %v", tt.name, res, tt.ok)
		}
	}
	if len(processed) != 1 {
		t.Errorf("processed %q, want the event once", processed)
	}
}

// TestReceiverDoc fails when the receiver in the package documentation and
// handle above drift apart, so the documented one is known to compile and
// to work.
func TestReceiverDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := snippet(strings.Split(f.Doc.Text(), "\n"), "\tfunc handle(", "\t}")
	src, err := os.ReadFile("receiver_test.go")
	if err != nil {
		t.Fatal(err)
	}
	code := snippet(strings.Split(string(src), "\n"), "func handle(", "}")
	if doc == "" || doc != code {
		t.Errorf("the receiver in doc.go differs from handle in receiver_test.go:\n%s\nwant:\n%s", doc, code)
	}
}

// snippet is the lines from the one starting with first to the next one
// equal to last, with their common indentation removed.
func snippet(lines []string, first, last string) string {
	var out []string
	indent := strings.TrimSuffix(last, "}")
	for _, l := range lines {
		if len(out) == 0 && !strings.HasPrefix(l, first) {
			continue
		}
		out = append(out, strings.TrimPrefix(l, indent))
		if l == last {
			break
		}
	}
	return strings.Join(out, "\n")
}
