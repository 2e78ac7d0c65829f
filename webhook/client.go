package webhook

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DefaultTimeout bounds one delivery attempt when NewClient is given no
// timeout.
const DefaultTimeout = 10 * time.Second

// ErrPrivateAddress is the cause of a dial NewClient's client refused:
// the name resolved to an address IsPrivate rejects. Send's Err carries its
// message; errors.Is finds it under the *url.Error of http.Client.Do.
var ErrPrivateAddress = errors.New("webhook: refusing to connect to a non-public address")

// NewClient returns the HTTP client for deliveries. Unless allowPrivate,
// its dialer checks each address it is about to connect to, after DNS
// resolution, and refuses non-public ones, so a name that CheckURL let
// through cannot be pointed at an internal service later (DNS rebinding).
// It never follows redirects (Send reports a 3xx as a failure), ignores
// proxy settings from the environment, and bounds the whole attempt,
// response body included, by timeout (DefaultTimeout when <= 0).
func NewClient(allowPrivate bool, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	return &http.Client{
		Transport: newTransport(dialer, timeout),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// newTransport is an http.Transport dialing with d, without a proxy.
func newTransport(d *net.Dialer, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    min(timeout, 10*time.Second),
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // the response body is discarded
	}
}

// refusePrivate is a net.Dialer Control func: it runs after resolution,
// on the address actually being connected to, and refuses non-public ones.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("webhook: refusing network %q", network)
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial address %q: %w", address, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dial address %q: %w", address, err)
	}
	if why := privateReason(a); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrPrivateAddress, a, why)
	}
	return nil
}
