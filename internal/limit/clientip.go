package limit

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the client's address: the connection's remote address,
// or, when that address is in trusted, the right-most address of
// X-Forwarded-For that is not in trusted.
//
// This is the standard algorithm: every proxy appends the address it got
// the request from, so entries are walked from the right (the last header
// line first, each line from its end) through the trusted proxies, and the
// first untrusted address is the client. Entries left of it were written by
// the client itself and are ignored, so they cannot be spoofed. A malformed
// entry stops the walk and the last good address is used (the address of
// the trusted proxy that wrote it); when every entry is trusted, the
// left-most one is the client. Empty list elements are skipped, as RFC 9110
// section 5.6.1 asks.
//
// An entry may be a bare address ("192.0.2.1", "2001:db8::1"), an address
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711") or a bracketed IPv6
// address ("[2001:db8::1]"). IPv4-mapped IPv6 addresses are returned as
// IPv4, and zones are dropped, both for the result and for matching
// trusted.
//
// With no trusted prefixes, X-Forwarded-For is never read. When the remote
// address is not an IP address (a unix socket), ClientIP returns the zero
// Addr. It does not allocate, except to report a malformed entry.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := clientIPRemote(r.RemoteAddr)
	if len(trusted) == 0 || !clientIPTrusted(addr, trusted) {
		return addr
	}
	lines := r.Header["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			entry := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue
			}
			a, ok := clientIPParse(entry)
			if !ok {
				return addr
			}
			addr = a
			if !clientIPTrusted(a, trusted) {
				return a
			}
		}
	}
	return addr
}

// clientIPRemote parses http.Request.RemoteAddr ("ip:port", or a bare IP
// as some tests and servers set it); the zero Addr when it is neither.
func clientIPRemote(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return clientIPNormal(ap.Addr())
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return clientIPNormal(a)
	}
	return netip.Addr{}
}

// clientIPParse parses one X-Forwarded-For entry. It picks the parser from
// the entry's shape so that well-formed entries never allocate an error.
func clientIPParse(s string) (netip.Addr, bool) {
	switch {
	case s[0] == '[':
		if s[len(s)-1] == ']' {
			a, err := netip.ParseAddr(s[1 : len(s)-1])
			if err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
			return clientIPNormal(a), true
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return clientIPNormal(ap.Addr()), true
	case strings.Count(s, ":") == 1: // IPv4 with a port
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return clientIPNormal(ap.Addr()), true
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return clientIPNormal(a), true
	}
}

// clientIPNormal returns a without its zone, and IPv4-mapped IPv6
// addresses as IPv4.
func clientIPNormal(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// clientIPTrusted reports whether a (normalized) is in one of the trusted
// prefixes. An IPv4 address also matches a prefix written in its
// IPv4-mapped IPv6 form (::ffff:10.0.0.0/104).
func clientIPTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	if a.Is4() {
		mapped := netip.AddrFrom16(a.As16())
		for _, p := range trusted {
			if p.Contains(mapped) {
				return true
			}
		}
	}
	return false
}
