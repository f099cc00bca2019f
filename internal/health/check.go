package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/upstream"
)

// result is the outcome of one check.
type result struct {
	// pass reports whether the check passed.
	pass bool
	// reason says why a failing check failed, in the owner's words, such
	// as "connection_refused" or "answered 500, want 2xx/3xx".
	reason string
	// cause is the failure's cause, when it has one (a status or body
	// that did not match has none).
	cause cause.ID
	// err is the underlying error, for the DEBUG log. May be nil.
	err error
}

// fail returns the result of a check that failed with ce.
func fail(ce *cause.Error) result {
	reason := string(ce.ID)
	if ce.Detail != "" {
		reason += " (" + ce.Detail + ")"
	}
	return result{reason: reason, cause: ce.ID, err: ce.Err}
}

// check runs one check of t. A PHP-FPM target is checked through its own
// FastCGI transport: the path is run (or served) from the document root
// as a visitor's request would be, and a TCP check connects to its socket.
func (c *Checker) check(ctx context.Context, t *upstream.Target) result {
	if t.FastCGI != nil {
		if c.hc.TCP {
			o := t.FastCGI.Options()
			return c.checkTCP(ctx, o.Network, o.Address, true)
		}
		return c.checkHTTP(ctx, t.FastCGI, "http://localhost"+c.hc.Path)
	}
	if c.hc.TCP {
		return c.checkTCP(ctx, "tcp", t.Addr, false)
	}
	return c.checkHTTP(ctx, c.transport, t.URL.Scheme+"://"+t.URL.Host+c.hc.Path)
}

// checkTCP checks that a connection to addr opens within the timeout; fpm
// says the address is PHP-FPM's, whose failures to connect have causes of
// their own.
func (c *Checker) checkTCP(parent context.Context, network, addr string, fpm bool) result {
	ctx, cancel := context.WithTimeout(parent, c.hc.Timeout.Duration)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		if fpm {
			switch {
			case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
				return fail(&cause.Error{ID: cause.FPMNotRunning, Phase: cause.PhaseConnect, Err: err})
			case errors.Is(err, syscall.EAGAIN):
				return fail(&cause.Error{ID: cause.FPMPoolExhausted, Detail: "backlog full", Phase: cause.PhaseConnect, Err: err})
			}
		}
		return fail(c.classify(ctx, err, cause.PhaseConnect))
	}
	_ = conn.Close()
	return result{pass: true}
}

// checkHTTP sends one GET to url through rt and judges the answer.
func (c *Checker) checkHTTP(parent context.Context, rt http.RoundTripper, url string) result {
	if c.expectBodyErr != nil {
		return result{reason: c.expectBodyErr.Error(), cause: cause.ProxyConfigurationError, err: c.expectBodyErr}
	}
	ctx, cancel := context.WithTimeout(parent, c.hc.Timeout.Duration)
	defer cancel()
	var ph phase
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, ph.trace()), http.MethodGet, url, nil)
	if err != nil {
		return result{reason: "cannot build the request: " + err.Error(), cause: cause.ProxyConfigurationError, err: fmt.Errorf("health check request: %w", err)}
	}
	if c.hc.Host != "" {
		req.Host = c.hc.Host
	}
	req.RemoteAddr = "127.0.0.1:0" // for a PHP-FPM target's REMOTE_ADDR
	req.Header.Set("User-Agent", UserAgent)
	res, err := rt.RoundTrip(req)
	if err != nil {
		return fail(c.classify(ctx, fmt.Errorf("GET %s: %w", url, err), ph.get()))
	}
	ph.set(cause.PhaseHeaders)
	body, err := drain(res.Body)
	if !statusMatches(res.StatusCode, c.hc.ExpectStatus) {
		return result{reason: fmt.Sprintf("answered %d, want %s", res.StatusCode, strings.Join(c.hc.ExpectStatus, "/")), cause: cause.UpstreamErrorStatus}
	}
	if err != nil {
		return fail(c.classify(ctx, fmt.Errorf("GET %s: %w", url, err), cause.PhaseHeaders))
	}
	if c.expectBody != nil && !c.expectBody.Match(body) {
		return result{reason: fmt.Sprintf("answered %d but its body did not match expect_body \"%s\"", res.StatusCode, c.hc.ExpectBody)}
	}
	return result{pass: true}
}

// phase records how far an HTTP check got, from its httptrace. The
// transport may call the hooks from other goroutines, so it is atomic, and
// it only moves forward.
type phase struct{ v atomic.Uint32 }

func (p *phase) get() cause.Phase { return cause.Phase(p.v.Load()) }

func (p *phase) set(to cause.Phase) {
	for {
		old := p.v.Load()
		if uint32(to) <= old || p.v.CompareAndSwap(old, uint32(to)) {
			return
		}
	}
}

func (p *phase) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              func(string) { p.set(cause.PhaseDNS) },
		DNSStart:             func(httptrace.DNSStartInfo) { p.set(cause.PhaseDNS) },
		ConnectStart:         func(string, string) { p.set(cause.PhaseConnect) },
		TLSHandshakeStart:    func() { p.set(cause.PhaseTLS) },
		GotConn:              func(httptrace.GotConnInfo) { p.set(cause.PhaseConnected) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { p.set(cause.PhaseRequestWritten) },
		GotFirstResponseByte: func() { p.set(cause.PhaseFirstByte) },
	}
}

// classify maps a check's error to a cause with cause.Classify (the same
// classification as the proxy's failed attempts), from the error and the
// phase ph the check reached; ctx is the check's context, whose deadline
// is the check's timeout. Timeouts get details in the owner's words.
func (c *Checker) classify(ctx context.Context, err error, ph cause.Phase) *cause.Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	}
	ce := cause.Classify(err, cause.Attempt{Phase: ph})
	within := "within " + c.hc.Timeout.Duration.String()
	switch {
	case ce.ID == cause.ConnectionTimeout && ph == cause.PhaseTLS:
		ce.Detail = "no TLS handshake " + within
	case ce.ID == cause.ConnectionTimeout:
		ce.Detail = "no connection " + within
	case ce.ID == cause.HTTPResponseTimeout && ph < cause.PhaseHeaders:
		ce.Detail = "no answer " + within
	case ce.ID == cause.HTTPResponseTimeout:
		ce.Detail = "body not read " + within
	}
	return ce
}
