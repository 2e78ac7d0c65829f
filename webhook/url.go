package webhook

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/creditd/creditd/credit"
)

// MaxURLLength is the longest endpoint URL CheckURL accepts, in bytes.
const MaxURLLength = 2000

// CheckURL reports whether raw may be a webhook endpoint: an absolute http
// or https URL with a host and no user name, password or fragment, at most
// MaxURLLength bytes. Unless allowPrivate, the host must not be "localhost",
// a name under ".localhost", an IP literal IsPrivate rejects, or a number in
// one of the other forms some resolvers read as IPv4 ("127.1", "2130706433",
// "0x7f.0.0.1"). CheckURL does not resolve names: it is fast and works
// offline, and a name that resolves to a private address is stopped when
// NewClient's client dials it. Errors are credit VALIDATION errors on the
// field "url".
func CheckURL(raw string, allowPrivate bool) error {
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	return checkHost(u.Hostname())
}

// parseURL parses raw and checks its shape: everything but the host's
// address.
func parseURL(raw string) (*url.URL, error) {
	switch {
	case raw == "":
		return nil, credit.Invalid("url", "is required")
	case len(raw) > MaxURLLength:
		return nil, credit.Invalid("url", "is %d bytes long; at most %d are allowed", len(raw), MaxURLLength)
	case strings.TrimSpace(raw) != raw:
		return nil, credit.Invalid("url", "must not start or end with spaces")
	case strings.Contains(raw, "#"):
		return nil, credit.Invalid("url", "must not have a fragment (#...)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		e := credit.Invalid("url", "is not a valid URL: %v", err)
		e.Cause = err
		return nil, e
	}
	return u, checkShape(u)
}

// checkShape checks the parts of a parsed URL other than the host's address.
func checkShape(u *url.URL) error {
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return credit.Invalid("url", "must be an absolute http or https URL, like https://example.com/webhooks")
	case u.Scheme != "https" && u.Scheme != "http":
		return credit.Invalid("url", "scheme %q is not allowed; use https (or http)", u.Scheme)
	case u.User != nil:
		return credit.Invalid("url", "must not contain a user name or password")
	case u.Hostname() == "":
		return credit.Invalid("url", "must have a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return credit.Invalid("url", "port %s is not between 1 and 65535", p)
		}
	}
	return nil
}

// checkHost rejects local names and non-public IP literals, without DNS.
func checkHost(host string) error {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return credit.Invalid("url", "host %s is this machine; webhooks must go to a public host", host)
	}
	if a, err := netip.ParseAddr(name); err == nil {
		if why := privateReason(a); why != "" {
			return credit.Invalid("url", "host %s is a %s address; webhooks must go to a public address", host, why)
		}
		return nil
	}
	if endsInNumber(name) {
		return credit.Invalid("url", "host %s looks like an IP address in a non-standard form; write IPv4 addresses as four decimal numbers", host)
	}
	return nil
}

// endsInNumber reports whether the last label of name is a decimal or 0x
// hex number, which URL parsers and inet_aton read as an IPv4 address and
// no DNS name has (top-level domains are not numeric).
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// IsPrivate reports whether ip is not a public unicast address, so webhooks
// must not go there: loopback, private (RFC 1918), link-local (including
// the cloud metadata address 169.254.169.254), unspecified, multicast,
// carrier-grade NAT, IPv6 unique local, reserved ranges, and IPv6 forms of
// those (IPv4-mapped, IPv4-compatible, NAT64). A nil or malformed ip is
// private: the check fails closed.
func IsPrivate(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return !ok || privateReason(a) != ""
}

// blockedRange is a range of addresses webhooks must not reach.
type blockedRange struct {
	prefix netip.Prefix
	why    string
}

// blocked lists the non-public ranges; more specific ones come first so
// the reason is the most precise one.
var blocked = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// nat64 is the well-known NAT64 prefix; its last 32 bits are an IPv4
// address, which is what gets reached.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// privateReason says why a is not a public address ("loopback", ...), or
// "" when it is public.
func privateReason(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "invalid"
	case a.Zone() != "":
		return "scoped (zoned)"
	}
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, r := range blocked {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	return ""
}
