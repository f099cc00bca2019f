// Package check answers a visitor's question "is it me, or is it the
// site?" for one URL, as `gatewise check` does: it requests the URL a few
// times with backoff (a persistent or an intermittent failure), resolves
// its host with the system's resolver and with a second one (a stale cache,
// NXDOMAIN or a timeout), reaches control URLs (your connection or theirs),
// times each phase, compares the request with and without cookies and with
// Cache-Control: no-cache, reads which hop produced an error response from
// its headers and its body (the default error pages of nginx, Apache,
// HAProxy, Varnish, Cloudflare, AWS load balancers, CloudFront, Caddy,
// Traefik and gatewise), and gives a verdict in the words of the cause
// taxonomy (internal/cause): the chain with the failing hop, what the
// visitor can do, and a message for the site's owner.
//
// It only sends requests to the URL, to the resolvers and to the control
// URLs it is given (or their documented defaults); every request is
// bounded by a timeout, and the attempts and their backoff are capped.
package check

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Defaults and bounds of Options.
const (
	// DefaultAttempts is how many times the URL is requested.
	DefaultAttempts = 3
	// MaxAttempts bounds Options.Attempts.
	MaxAttempts = 10
	// DefaultBackoff is the wait before the second attempt; it doubles
	// after each attempt.
	DefaultBackoff = time.Second
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff = 8 * time.Second
	// DefaultTimeout bounds each request (with its body) and each DNS
	// lookup.
	DefaultTimeout = 10 * time.Second
	// MaxTimeout bounds Options.Timeout.
	MaxTimeout = 2 * time.Minute
	// DefaultResolver is the second resolver compared with the system's:
	// Cloudflare's public resolver, 1.1.1.1 on port 53.
	DefaultResolver = "1.1.1.1:53"
	// ResolverOff, as Options.Resolver, skips the second resolver.
	ResolverOff = "off"
	// DefaultMaxBodyBytes is how much of each response body is read, for
	// the download rate.
	DefaultMaxBodyBytes = 4 << 20
	// MaxControls bounds the number of control URLs.
	MaxControls = 8
	// MaxCookieBytes bounds the Cookie header sent.
	MaxCookieBytes = 64 << 10
)

// DefaultControls returns the control URLs reached when Options.Controls is
// nil: two large sites on different networks (Google's connectivity-check
// URL and Wikipedia).
func DefaultControls() []string {
	return []string{"https://www.google.com/generate_204", "https://www.wikipedia.org/"}
}

// ErrBadURL is wrapped by the error for a URL that cannot be checked.
var ErrBadURL = errors.New("bad URL")

// ErrBadOption is wrapped by the error for an option out of its bounds.
var ErrBadOption = errors.New("bad option")

// Options say how to check a URL. The zero value checks with the defaults.
type Options struct {
	// Attempts is how many times the URL is requested, 1 to MaxAttempts.
	// Zero means DefaultAttempts.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles after each
	// attempt, capped at MaxBackoff. Zero means DefaultBackoff; negative
	// means no wait.
	Backoff time.Duration
	// Timeout bounds each request (with its body), each DNS lookup and
	// each control URL, up to MaxTimeout. Zero means DefaultTimeout.
	Timeout time.Duration
	// Cookie is the Cookie header sent with the attempts (name=value pairs
	// joined by "; "). Empty sends none; otherwise the URL is also
	// requested without it, to see whether the cookies are the problem.
	Cookie string
	// Resolver is the second resolver's address (IP or IP:port, port 53 by
	// default). Empty means DefaultResolver; ResolverOff skips it.
	Resolver string
	// SystemResolver resolves names as the visitor's system does. Nil
	// means net.DefaultResolver (the system's configuration).
	SystemResolver *net.Resolver
	// Controls are URLs of other sites reached to tell the visitor's
	// connection from the site's, at most MaxControls. Nil means
	// DefaultControls(); an empty slice checks none.
	Controls []string
	// TLSConfig is the TLS configuration for https:// URLs (the server
	// name is set per request). Nil means the system's roots.
	TLSConfig *tls.Config
	// MaxBodyBytes is how much of each body is read. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
}

// ControlResult is one control URL reached, or not.
type ControlResult struct {
	// URL is the control URL.
	URL string `json:"url"`
	// Reached reports whether any HTTP response came.
	Reached bool `json:"reached"`
	// Status is the response's status, zero when none came.
	Status int `json:"status,omitempty"`
	// Error says why no response came.
	Error string `json:"error,omitempty"`
	// Duration is how long it took.
	Duration Duration `json:"duration_ms"`
}

// Speed summarises the timings of the first request that connected.
type Speed struct {
	// DNS is the system resolver's lookup time (zero for an address).
	DNS Duration `json:"dns_ms"`
	// Connect, TLS and FirstByte are the phases of that request.
	Connect   Duration `json:"connect_ms"`
	TLS       Duration `json:"tls_ms,omitempty"`
	FirstByte Duration `json:"first_byte_ms"`
	// BytesPerSecond is the best download rate measured (zero when no
	// body was large enough to measure).
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
}

// Report is the outcome of a check. Its JSON form is what `gatewise check
// --json` prints.
type Report struct {
	// URL is the URL checked.
	URL string `json:"url"`
	// Time is when the check started.
	Time time.Time `json:"time"`
	// Verdict says in one or two sentences what is wrong, and where.
	Verdict string `json:"verdict"`
	// AtFault is the part at fault: visitor, network, cdn, proxy or
	// application; "none" when the site works.
	AtFault string `json:"at_fault"`
	// Cause is the taxonomy's cause when one applies, such as
	// connection_refused or request_header_too_large.
	Cause cause.ID `json:"cause,omitempty"`
	// Pattern is "ok" (every attempt worked), "persistent" (every attempt
	// failed) or "intermittent".
	Pattern string `json:"pattern"`
	// Hops is the chain from the visitor ("you") to the application, with
	// the failing hop's State "failed".
	Hops []Hop `json:"hops"`
	// Advice lists what the visitor can do, most useful first.
	Advice []string `json:"advice"`
	// OwnerMessage is a short message to send to the site's owner; empty
	// when the site works or the fault is on the visitor's side.
	OwnerMessage string `json:"owner_message,omitempty"`
	// RequestID is the request ID (or Ray ID) of a failed response, to
	// quote to the owner.
	RequestID string `json:"request_id,omitempty"`
	// DNS compares the resolvers' answers.
	DNS DNSReport `json:"dns"`
	// Controls are the control URLs reached.
	Controls []ControlResult `json:"controls"`
	// Attempts are the requests made with backoff.
	Attempts []Result `json:"attempts"`
	// Variants are the comparison requests: without cookies, with
	// Cache-Control: no-cache, at the second resolver's address.
	Variants []Result `json:"variants"`
	// Speed summarises the timings.
	Speed Speed `json:"speed"`
	// CookieBytes is the size of the Cookie header sent, zero when none.
	CookieBytes int `json:"cookie_bytes,omitempty"`
}

// ParseURL parses what a visitor typed: an http:// or https:// URL, or a
// host name with an optional path, which is taken as https://. The error
// wraps ErrBadURL and says what is wrong in one line.
func ParseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if len(raw) > 8192 {
		return nil, fmt.Errorf("%w: longer than 8192 bytes", ErrBadURL)
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return nil, fmt.Errorf("%w %q: contains spaces or control characters", ErrBadURL, clip(raw, 80))
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w %q: %w", ErrBadURL, clip(raw, 80), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: the scheme must be http or https, not %q", ErrBadURL, clip(raw, 80), clip(u.Scheme, 20))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrBadURL, clip(raw, 80))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w %q: user information in URLs is not sent; remove it", ErrBadURL, clip(raw, 80))
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return nil, fmt.Errorf("%w %q: port %q is not 1-65535", ErrBadURL, clip(raw, 80), clip(p, 10))
		}
	}
	u.Fragment = ""
	return u, nil
}

func parsePort(p string) (int, error) {
	n := 0
	if p == "" || len(p) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// ParseResolver parses a resolver address: an IP address, or IP:port
// ([IPv6]:port), port 53 by default; ResolverOff is returned as it is. The
// error wraps ErrBadOption.
func ParseResolver(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == ResolverOff || s == "none" {
		return ResolverOff, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return ap.String(), nil
	}
	return "", fmt.Errorf("%w: resolver %q: want an IP address or IP:port (such as 1.1.1.1 or [2606:4700:4700::1111]:53), or off", ErrBadOption, clip(s, 80))
}

// checker is one check in progress.
type checker struct {
	opts   Options
	causes *cause.Table
}

// normalize fills in the defaults and checks the bounds.
func normalize(o Options) (Options, error) {
	switch {
	case o.Attempts == 0:
		o.Attempts = DefaultAttempts
	case o.Attempts < 0 || o.Attempts > MaxAttempts:
		return o, fmt.Errorf("%w: attempts %d: must be 1 to %d", ErrBadOption, o.Attempts, MaxAttempts)
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultBackoff
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0 || o.Timeout > MaxTimeout:
		return o, fmt.Errorf("%w: timeout %s: must be positive and at most %s", ErrBadOption, o.Timeout, MaxTimeout)
	}
	if o.Resolver == "" {
		o.Resolver = DefaultResolver
	}
	r, err := ParseResolver(o.Resolver)
	if err != nil {
		return o, err
	}
	o.Resolver = r
	if o.Controls == nil {
		o.Controls = DefaultControls()
	}
	if len(o.Controls) > MaxControls {
		return o, fmt.Errorf("%w: %d control URLs: at most %d", ErrBadOption, len(o.Controls), MaxControls)
	}
	for _, c := range o.Controls {
		if _, err := ParseURL(c); err != nil {
			return o, fmt.Errorf("%w: control URL: %w", ErrBadOption, err)
		}
	}
	if len(o.Cookie) > MaxCookieBytes {
		return o, fmt.Errorf("%w: the cookies are %d bytes: at most %d", ErrBadOption, len(o.Cookie), MaxCookieBytes)
	}
	if strings.ContainsAny(o.Cookie, "\r\n\x00") {
		return o, fmt.Errorf("%w: the cookies contain a line break or a NUL byte", ErrBadOption)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxBodyBytes < maxScanBody {
		o.MaxBodyBytes = maxScanBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Run checks rawURL and returns the report. It fails only for a bad URL
// or option (errors wrapping ErrBadURL or ErrBadOption) or when ctx ends;
// every failure of the site is part of the report.
func Run(ctx context.Context, rawURL string, opts Options) (*Report, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts, err = normalize(opts)
	if err != nil {
		return nil, err
	}
	c := &checker{opts: opts, causes: cause.NewTable()}
	rep := &Report{URL: u.String(), Time: opts.Now().UTC(), CookieBytes: len(opts.Cookie)}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}

	// Control URLs, in the background.
	var wg sync.WaitGroup
	rep.Controls = make([]ControlResult, len(opts.Controls))
	for i, cu := range opts.Controls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Controls[i] = c.control(ctx, cu)
		}()
	}
	defer wg.Wait()

	// DNS.
	rep.DNS.Host = host
	var addrs []string
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []string{a.Unmap().String()}
		rep.DNS.System = Lookup{Resolver: "system", Outcome: DNSSkipped}
		rep.DNS.Second = Lookup{Resolver: opts.Resolver, Outcome: DNSSkipped}
	} else {
		var dwg sync.WaitGroup
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			if opts.Resolver == ResolverOff {
				rep.DNS.Second = Lookup{Resolver: ResolverOff, Outcome: DNSSkipped}
				return
			}
			rep.DNS.Second = lookupWith(ctx, opts.Resolver, host, opts.Timeout)
		}()
		rep.DNS.System = lookupSystem(ctx, opts.SystemResolver, host, opts.Timeout)
		dwg.Wait()
		addrs = rep.DNS.System.Addrs
		rep.DNS.Differ = disjoint(rep.DNS.System.Addrs, rep.DNS.Second.Addrs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The attempts, with backoff.
	if len(addrs) > 0 {
		wait := opts.Backoff
		for i := range opts.Attempts {
			if i > 0 && wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
				wait = min(wait*2, MaxBackoff)
			}
			rep.Attempts = append(rep.Attempts, c.probe(ctx, probeSpec{
				label: fmt.Sprintf("attempt %d", i+1), url: u, addrs: addrs, port: port, cookie: opts.Cookie,
			}))
		}
		// The comparisons.
		if opts.Cookie != "" {
			rep.Variants = append(rep.Variants, c.probe(ctx, probeSpec{label: "without cookies", url: u, addrs: addrs, port: port}))
		}
		rep.Variants = append(rep.Variants, c.probe(ctx, probeSpec{label: "with Cache-Control: no-cache", url: u, addrs: addrs, port: port, cookie: opts.Cookie, noCache: true}))
	}
	if alt := altAddrs(rep.DNS); len(alt) > 0 {
		rep.Variants = append(rep.Variants, c.probe(ctx, probeSpec{
			label: "at " + alt[0] + " (the second resolver's address)", url: u, addrs: alt[:1], port: port, cookie: opts.Cookie,
		}))
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.decide(rep)
	return rep, nil
}

// altAddrs returns the second resolver's addresses when the system's
// answer failed or differs from it.
func altAddrs(d DNSReport) []string {
	if d.Second.Outcome != DNSOK {
		return nil
	}
	if d.System.Outcome != DNSOK || d.Differ {
		return d.Second.Addrs
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// control requests one control URL with the system's resolver.
func (c *checker) control(ctx context.Context, raw string) ControlResult {
	res := ControlResult{URL: raw}
	u, err := ParseURL(raw)
	if err != nil {
		res.Error = "bad URL"
		return res
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	var addrs []string
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []string{a.String()}
	} else {
		l := lookupSystem(ctx, c.opts.SystemResolver, u.Hostname(), c.opts.Timeout)
		if l.Outcome != DNSOK {
			res.Error = "DNS: " + l.Error
			res.Duration = Duration(time.Since(start))
			return res
		}
		addrs = l.Addrs
	}
	r := c.probe(ctx, probeSpec{label: "control", url: u, addrs: addrs, port: port})
	res.Duration = Duration(time.Since(start))
	res.Status = r.Status
	res.Reached = r.Status != 0
	res.Error = r.Error
	return res
}
