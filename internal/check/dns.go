package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Outcomes of a DNS lookup, as in Lookup.Outcome.
const (
	// DNSOK means the name resolved to at least one address.
	DNSOK = "ok"
	// DNSNXDomain means the resolver said the name does not exist.
	DNSNXDomain = "nxdomain"
	// DNSNoAddress means the name exists but has no A or AAAA record.
	DNSNoAddress = "no_address"
	// DNSTimeout means the resolver did not answer in time.
	DNSTimeout = "timeout"
	// DNSServFail means the resolver failed (SERVFAIL, REFUSED).
	DNSServFail = "servfail"
	// DNSError means any other failure (the resolver unreachable, a bad
	// answer).
	DNSError = "error"
	// DNSSkipped means no lookup was made (the URL's host is an address,
	// or the second resolver is off).
	DNSSkipped = "skipped"
)

// Lookup is the result of resolving the URL's host with one resolver.
type Lookup struct {
	// Resolver names the resolver: "system", or its address.
	Resolver string `json:"resolver"`
	// Outcome is one of the DNS outcome constants.
	Outcome string `json:"outcome"`
	// Addrs are the addresses found, in the resolver's order.
	Addrs []string `json:"addrs,omitempty"`
	// Duration is how long the lookup took.
	Duration Duration `json:"duration_ms"`
	// Error says what failed, in words. Empty on success.
	Error string `json:"error,omitempty"`
}

// DNSReport compares the system resolver's answer with a second one's.
type DNSReport struct {
	// Host is the name resolved.
	Host string `json:"host"`
	// System is the answer of the system's resolver (the one the
	// visitor's browser uses).
	System Lookup `json:"system"`
	// Second is the answer of the second resolver.
	Second Lookup `json:"second"`
	// Differ reports whether both resolved the name to sets of addresses
	// with nothing in common: a stale cache on one side, or a site that
	// answers differently by location (a CDN).
	Differ bool `json:"differ"`
}

// lookupSystem resolves host with r (the system's resolver when nil).
func lookupSystem(ctx context.Context, r *net.Resolver, host string, timeout time.Duration) Lookup {
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	l := Lookup{Resolver: "system", Duration: Duration(time.Since(start))}
	if err != nil {
		var de *net.DNSError
		switch {
		case errors.As(err, &de) && de.IsNotFound:
			l.Outcome, l.Error = DNSNXDomain, "the name does not exist (NXDOMAIN)"
		case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			l.Outcome, l.Error = DNSTimeout, "no answer in time"
		case errors.As(err, &de) && de.IsTemporary:
			l.Outcome, l.Error = DNSServFail, "the resolver failed (SERVFAIL)"
		default:
			l.Outcome, l.Error = DNSError, "lookup failed"
		}
		return l
	}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, a.Unmap().String())
	}
	l.Outcome = DNSOK
	if len(l.Addrs) == 0 {
		l.Outcome, l.Error = DNSNoAddress, "no address record"
	}
	return l
}

// lookupWith resolves host's A and AAAA records by asking the resolver at
// server (host:port) directly, over UDP and, for a truncated answer, TCP.
func lookupWith(ctx context.Context, server, host string, timeout time.Duration) (l Lookup) {
	l = Lookup{Resolver: server}
	start := time.Now()
	defer func() { l.Duration = Duration(time.Since(start)) }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exists := false
	var firstErr string
	var outcome string
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(host), qtype)
		m.RecursionDesired = true
		c := &dns.Client{Net: "udp", Timeout: timeout}
		in, _, err := c.ExchangeContext(ctx, m, server)
		if err == nil && in.Truncated {
			c.Net = "tcp"
			in, _, err = c.ExchangeContext(ctx, m, server)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
				outcome, firstErr = DNSTimeout, "no answer in time"
			} else if outcome == "" {
				outcome, firstErr = DNSError, "the resolver could not be asked"
			}
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
			exists = true
			for _, rr := range in.Answer {
				var a netip.Addr
				switch v := rr.(type) {
				case *dns.A:
					a, _ = netip.AddrFromSlice(v.A.To4())
				case *dns.AAAA:
					a, _ = netip.AddrFromSlice(v.AAAA.To16())
				}
				if a.IsValid() && !slices.Contains(l.Addrs, a.Unmap().String()) && len(l.Addrs) < 32 {
					l.Addrs = append(l.Addrs, a.Unmap().String())
				}
			}
		case dns.RcodeNameError:
			if outcome == "" || outcome == DNSError {
				outcome, firstErr = DNSNXDomain, "the name does not exist (NXDOMAIN)"
			}
		default:
			if outcome == "" {
				outcome, firstErr = DNSServFail, "the resolver failed ("+dns.RcodeToString[in.Rcode]+")"
			}
		}
	}
	switch {
	case len(l.Addrs) > 0:
		l.Outcome = DNSOK
	case exists:
		l.Outcome, l.Error = DNSNoAddress, "no address record"
	default:
		l.Outcome, l.Error = outcome, firstErr
		if l.Outcome == "" {
			l.Outcome, l.Error = DNSError, "lookup failed"
		}
	}
	return l
}

// disjoint reports whether two non-empty address lists share no address.
func disjoint(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			return false
		}
	}
	return true
}
