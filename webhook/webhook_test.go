package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/webhook"
)

var (
	signedAt = time.Unix(1700000000, 0)
	body     = []byte(`{"id":"evt_1"}`)
)

// Computed independently with Python's hmac and hashlib.
const (
	macOld = "ef1b1b7e4b312671a75ef2a03e10529f7834a6528a49db77ad6568c8c8017843"
	macNew = "f3ac0c93c23f69e2e6046d7f0e2c82c93d0403de0f8651457189ab70fbbfcaae"
)

func TestNewSecret(t *testing.T) {
	a, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := webhook.NewSecret()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, webhook.SecretPrefix))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(raw) != 32 {
		t.Errorf("NewSecret() = %q (%d random bytes, %v), want whsec_ and 32 base64url bytes", a, len(raw), err)
	}
	if a == b {
		t.Errorf("NewSecret() twice = %q, want different secrets", a)
	}
}

func TestSign(t *testing.T) {
	tests := []struct {
		secrets []string
		want    string
	}{
		{nil, "t=1700000000"},
		{[]string{"whsec_old"}, "t=1700000000,v1=" + macOld},
		{[]string{"whsec_new", "whsec_old"}, "t=1700000000,v1=" + macNew + ",v1=" + macOld},
	}
	for _, tt := range tests {
		if got := webhook.Sign(tt.secrets, signedAt, body); got != tt.want {
			t.Errorf("Sign(%q) = %q, want %q", tt.secrets, got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	one := webhook.Sign([]string{"whsec_old"}, signedAt, body)
	two := webhook.Sign([]string{"whsec_new", "whsec_old"}, signedAt, body)
	tests := []struct {
		name      string
		header    string
		body      string
		secret    string
		age       time.Duration // now - signedAt
		tolerance time.Duration
		want      error
	}{
		{"round trip", one, string(body), "whsec_old", 0, time.Minute, nil},
		{"tampered body", one, `{"id":"evt_2"}`, "whsec_old", 0, time.Minute, webhook.ErrSignature},
		{"wrong secret", one, string(body), "whsec_new", 0, time.Minute, webhook.ErrSignature},
		{"empty secret", one, string(body), "", 0, time.Minute, webhook.ErrNoSecret},
		{"within tolerance", one, string(body), "whsec_old", 59 * time.Second, time.Minute, nil},
		{"expired", one, string(body), "whsec_old", 61 * time.Second, time.Minute, webhook.ErrTimestamp},
		{"from the future", one, string(body), "whsec_old", -61 * time.Second, time.Minute, webhook.ErrTimestamp},
		{"default tolerance", one, string(body), "whsec_old", 4 * time.Minute, 0, nil},
		{"default tolerance expired", one, string(body), "whsec_old", 6 * time.Minute, 0, webhook.ErrTimestamp},
		{"rotation, new secret", two, string(body), "whsec_new", 0, time.Minute, nil},
		{"rotation, old secret", two, string(body), "whsec_old", 0, time.Minute, nil},
		{"rotation, other secret", two, string(body), "whsec_other", 0, time.Minute, webhook.ErrSignature},
		{"spaces and other schemes", "t=1700000000, v0=abc, v1=" + macOld, string(body), "whsec_old", 0, time.Minute, nil},
		{"v1 not hex", "t=1700000000,v1=zz", string(body), "whsec_old", 0, time.Minute, webhook.ErrSignature},
		{"empty header", "", string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"no t", "v1=" + macOld, string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"no v1", "t=1700000000", string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"two t", "t=1700000000,t=1700000001,v1=" + macOld, string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"t not a number", "t=soon,v1=" + macOld, string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"t signed", "t=+1700000000,v1=" + macOld, string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
		{"part without =", "t=1700000000,v1", string(body), "whsec_old", 0, time.Minute, webhook.ErrHeader},
	}
	for _, tt := range tests {
		err := webhook.Verify(tt.header, []byte(tt.body), tt.secret, signedAt.Add(tt.age), tt.tolerance)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Verify(%q) = %v, want %v", tt.name, tt.header, err, tt.want)
		}
	}
}

// checkURLTests are the cases of TestCheckURL.
var checkURLTests = []struct {
	raw          string
	allowPrivate bool
	want         string // a part of the message; "" when valid
}{
	{"https://hooks.example.com/creditd?x=1", false, ""},
	{"http://hooks.example.com:8080/creditd", false, ""},
	{"https://8.8.8.8/hook", false, ""},
	{"https://[2606:4700::1111]/hook", false, ""},
	{"HTTPS://Hooks.Example.COM/", false, ""},
	{"", false, "is required"},
	{"https://example.com/" + strings.Repeat("a", 2000), false, "at most 2000"},
	{" https://example.com/", false, "spaces"},
	{"https://example.com/#top", false, "fragment"},
	{"ftp://example.com/", false, `scheme "ftp"`},
	{"javascript:alert(1)", false, "absolute"},
	{"/relative/path", false, "absolute"},
	{"https:///path", false, "must have a host"},
	{"https://user:pass@example.com/", false, "user name or password"},
	{"https://user@example.com/", false, "user name or password"},
	{"https://example.com:0/", false, "port 0"},
	{"https://example.com:99999/", false, "port 99999"},
	{"https://exa mple.com/", false, "not a valid URL"},
	{"http://127.0.0.1/", false, "loopback"},
	{"http://127.0.0.1./", false, "loopback"},
	{"http://[::1]:8080/", false, "loopback"},
	{"http://0.0.0.0/", false, "unspecified"},
	{"http://10.0.0.1/", false, "private"},
	{"http://172.16.5.4/", false, "private"},
	{"http://192.168.1.1/", false, "private"},
	{"http://169.254.169.254/latest/meta-data/", false, "cloud metadata"},
	{"http://100.64.0.1/", false, "carrier-grade NAT"},
	{"http://[fd00::1]/", false, "unique local"},
	{"http://[fe80::1%25eth0]/", false, "zoned"},
	{"http://[::ffff:127.0.0.1]/", false, "loopback"},
	{"http://[::ffff:169.254.169.254]/", false, "cloud metadata"},
	{"http://[64:ff9b::a00:1]/", false, "private"},
	{"http://224.0.0.1/", false, "multicast"},
	{"http://localhost:3000/", false, "this machine"},
	{"http://LOCALHOST./", false, "this machine"},
	{"http://foo.localhost/", false, "this machine"},
	{"http://2130706433/", false, "non-standard form"},
	{"http://127.1/", false, "non-standard form"},
	{"http://0x7f.0.0.1/", false, "non-standard form"},
	{"http://0177.0.0.1/", false, "non-standard form"},
	{"http://127.0.0.1:8080/", true, ""},
	{"http://localhost/", true, ""},
	{"http://[fd00::1]/", true, ""},
	{"http://169.254.169.254/", true, ""},
	{"ftp://127.0.0.1/", true, `scheme "ftp"`},
	{"https://user@localhost/", true, "user name or password"},
}

func TestCheckURL(t *testing.T) {
	for _, tt := range checkURLTests {
		err := webhook.CheckURL(tt.raw, tt.allowPrivate)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckURL(%q, %v) = %v, want nil", tt.raw, tt.allowPrivate, err)
			}
			continue
		}
		var e *credit.Error
		if !errors.As(err, &e) || e.Code != credit.CodeValidation || e.Field != "url" || !strings.Contains(e.Message, tt.want) {
			t.Errorf("CheckURL(%q, %v) = %v, want a VALIDATION error on url with %q", tt.raw, tt.allowPrivate, err, tt.want)
		}
	}
}

func TestIsPrivate(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2606:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.255.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.0.1", true},
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"100.128.0.1", false},
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"239.1.1.1", true},
		{"::", true},
		{"::1", true},
		{"fe80::1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"ff02::1", true},
		{"::ffff:10.0.0.1", true},
		{"::127.0.0.1", true},
		{"64:ff9b::7f00:1", true},
		{"64:ff9b::808:808", false},
	}
	for _, tt := range tests {
		if got := webhook.IsPrivate(net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("IsPrivate(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if !webhook.IsPrivate(nil) {
		t.Errorf("IsPrivate(nil) = false, want true (fail closed)")
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{-1, 30 * time.Second},
		{0, 30 * time.Second},
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{4, 4 * time.Minute},
		{9, 128 * time.Minute},
		{10, 256 * time.Minute},
		{11, 6 * time.Hour},
		{12, 6 * time.Hour},
		{1 << 30, 6 * time.Hour},
	}
	for _, tt := range tests {
		if got := webhook.Backoff(tt.attempt); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

// TestBackoffSpan keeps the span documented on MaxAttempts true.
func TestBackoffSpan(t *testing.T) {
	var span time.Duration
	for a := 1; a < webhook.MaxAttempts; a++ {
		span += webhook.Backoff(a)
	}
	if want := 4*time.Hour + 15*time.Minute + 30*time.Second; span != want {
		t.Errorf("first to last of %d attempts = %v, want %v", webhook.MaxAttempts, span, want)
	}
}

// server is an httptest server answering with h and counting its requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func request(url string) webhook.Request {
	return webhook.Request{
		URL: url, Secrets: []string{"whsec_new", "whsec_old"},
		DeliveryID: "dlv_1", EventID: "evt_1", EventType: "pool.balance_below",
		Body: body, Now: time.Now(),
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		code    int
		ok      bool
		err     string
	}{
		{"200", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "thanks") }, 200, true, ""},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, 204, true, ""},
		{"500", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom\x00\n", http.StatusInternalServerError)
		}, 500, false, "HTTP 500: boom"},
		{"500 empty", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, 500, false, "HTTP 500"},
		{"410", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", http.StatusGone) }, 410, false, "HTTP 410: gone"},
		{"302", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}, 302, false, "HTTP 302: redirect to http://169.254.169.254/latest/meta-data/ not followed"},
	}
	c := webhook.NewClient(true, 5*time.Second)
	for _, tt := range tests {
		srv, n := server(t, tt.handler)
		res := webhook.Send(context.Background(), c, request(srv.URL))
		if res.StatusCode != tt.code || res.OK != tt.ok || res.Err != tt.err || n.Load() != 1 {
			t.Errorf("%s: Send() = %+v after %d requests, want code %d, OK %v, Err %q after 1",
				tt.name, res, n.Load(), tt.code, tt.ok, tt.err)
		}
		if res.Duration <= 0 {
			t.Errorf("%s: Send().Duration = %v, want > 0", tt.name, res.Duration)
		}
	}
}

func TestSendHeaders(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
	})
	req := request(srv.URL)
	if res := webhook.Send(context.Background(), webhook.NewClient(true, 5*time.Second), req); !res.OK {
		t.Fatalf("Send() = %+v, want OK", res)
	}
	want := map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "creditd-webhooks/1",
		"Creditd-Event-Id":    "evt_1",
		"Creditd-Delivery-Id": "dlv_1",
		"Creditd-Event-Type":  "pool.balance_below",
		"Creditd-Timestamp":   strconv.FormatInt(req.Now.Unix(), 10),
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if got.Method != http.MethodPost || string(gotBody) != string(body) {
		t.Errorf("request = %s %q, want POST %q", got.Method, gotBody, body)
	}
	for _, secret := range req.Secrets {
		if err := webhook.Verify(got.Header.Get("Creditd-Signature"), gotBody, secret, time.Now(), time.Minute); err != nil {
			t.Errorf("Verify(delivered, %s) = %v, want nil", secret, err)
		}
	}
}

func TestSendLongErrorBody(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Repeat("é", 1<<20)) // 2 MiB, two bytes a rune
	})
	res := webhook.Send(context.Background(), webhook.NewClient(true, 5*time.Second), request(srv.URL))
	want := "HTTP 503: " + strings.Repeat("é", 100)
	if res.OK || res.StatusCode != 503 || res.Err != want {
		t.Errorf("Send() = code %d, OK %v, Err %q, want 503, false, %q", res.StatusCode, res.OK, res.Err, want)
	}
}

func TestSendTimeout(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	res := webhook.Send(context.Background(), webhook.NewClient(true, 100*time.Millisecond), request(srv.URL))
	if res.OK || res.StatusCode != 0 || !strings.Contains(res.Err, "Timeout") || res.Duration > 3*time.Second {
		t.Errorf("Send() to a slow server = %+v, want a timeout after about 100ms", res)
	}
}

func TestSendNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	res := webhook.Send(context.Background(), webhook.NewClient(true, time.Second), request(srv.URL+"/?token=s3cret"))
	if res.OK || res.StatusCode != 0 || !strings.Contains(res.Err, "connection refused") || strings.Contains(res.Err, "s3cret") {
		t.Errorf("Send() to a closed port = %+v, want connection refused, without the URL", res)
	}
	if res := webhook.Send(context.Background(), nil, request(srv.URL)); res.OK || res.Err == "" {
		t.Errorf("Send(nil client) = %+v, want an error", res)
	}
	if res := webhook.Send(context.Background(), webhook.NewClient(true, time.Second), request("::bad")); res.OK || res.Err == "" {
		t.Errorf("Send(bad URL) = %+v, want an error", res)
	}
}

// TestNewClientRefusesPrivate dials the httptest server (127.0.0.1) by
// address and by a name that resolves to it, as DNS rebinding would.
func TestNewClientRefusesPrivate(t *testing.T) {
	srv, n := server(t, func(http.ResponseWriter, *http.Request) {})
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	c := webhook.NewClient(false, 2*time.Second)
	for _, u := range []string{srv.URL, byName} {
		res := webhook.Send(context.Background(), c, request(u))
		if res.OK || !strings.Contains(res.Err, "refusing to connect to a non-public address") || !strings.Contains(res.Err, "loopback") {
			t.Errorf("Send(%s) with NewClient(false) = %+v, want refused as loopback", u, res)
		}
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, webhook.ErrPrivateAddress) {
			t.Errorf("NewClient(false).Get(%s) = %v, want ErrPrivateAddress", u, err)
		}
	}
	if n.Load() != 0 {
		t.Errorf("server got %d requests, want 0", n.Load())
	}
}

func TestNewClientSettings(t *testing.T) {
	tests := []struct {
		timeout, want time.Duration
	}{
		{0, webhook.DefaultTimeout},
		{-time.Second, webhook.DefaultTimeout},
		{3 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		c := webhook.NewClient(false, tt.timeout)
		tr, ok := c.Transport.(*http.Transport)
		if !ok || tr.Proxy != nil || c.Timeout != tt.want {
			t.Errorf("NewClient(false, %v) = transport %T, proxy set %v, timeout %v; want *http.Transport, no proxy, %v",
				tt.timeout, c.Transport, ok && tr.Proxy != nil, c.Timeout, tt.want)
		}
		if err := c.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
			t.Errorf("NewClient(false, %v).CheckRedirect = %v, want http.ErrUseLastResponse", tt.timeout, err)
		}
	}
}
