package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// DefaultProbeTimeout bounds each probe request when Probe.Timeout is 0.
const DefaultProbeTimeout = 15 * time.Second

// maxProbeBody bounds the part of a response body matched against
// Probe.Match.
const maxProbeBody = 4 << 20

// Probe checks whether the site works: one GET of URL answered with the
// expected status and, when Match is set, a body it matches. Redirects are
// not followed: a 301 is what the URL answered.
type Probe struct {
	// URL is the page probed (http or https).
	URL string
	// ExpectStatus is the status that passes. 0 means 200.
	ExpectStatus int
	// Match, when set, must match the body (its first 4 MiB).
	Match *regexp.Regexp
	// Timeout bounds each request, body included. 0 means
	// DefaultProbeTimeout.
	Timeout time.Duration
	// Client sends the requests. Nil means a client that opens a new
	// connection per request and does not follow redirects.
	Client *http.Client
}

// ProbeResult is the outcome of one request.
type ProbeResult struct {
	// OK is set when the probe passed.
	OK bool
	// Status is the response's status, 0 when there was none.
	Status int
	// Cause is the cause gatewise named in the Proxy-Status header
	// (php_fatal_error, connection_refused, ...), empty when none.
	Cause cause.ID
	// Problem says why the probe failed, in a few words; empty when OK.
	Problem string
}

// String describes the result in a few words: "200", "500
// php_fatal_error", "connection refused".
func (r ProbeResult) String() string {
	var parts []string
	if r.Status != 0 {
		parts = append(parts, fmt.Sprint(r.Status))
	}
	if r.Cause != "" {
		parts = append(parts, string(r.Cause))
	}
	if r.Problem != "" && (r.Status == 0 || !strings.HasPrefix(r.Problem, "status")) {
		parts = append(parts, r.Problem)
	}
	return strings.Join(parts, " ")
}

// Do sends one probe. The error is set only when ctx is done; every other
// failure is a failed ProbeResult.
func (p *Probe) Do(ctx context.Context) (ProbeResult, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	want := p.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	client := p.Client
	if client == nil {
		client = &http.Client{
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		defer client.CloseIdleConnections()
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return ProbeResult{Problem: err.Error()}, nil
	}
	req.Header.Set("User-Agent", "gatewise-bisect")
	req.Header.Set("Cache-Control", "no-cache")
	res, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ProbeResult{}, ctx.Err()
		}
		return ProbeResult{Problem: transportProblem(err, timeout)}, nil
	}
	defer res.Body.Close()
	r := ProbeResult{Status: res.StatusCode, Cause: proxyStatusCause(res.Header.Values("Proxy-Status"))}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxProbeBody))
	if err != nil {
		if ctx.Err() != nil {
			return ProbeResult{}, ctx.Err()
		}
		r.Problem = "body cut: " + transportProblem(err, timeout)
		return r, nil
	}
	switch {
	case res.StatusCode != want:
		r.Problem = fmt.Sprintf("status %d, want %d", res.StatusCode, want)
	case p.Match != nil && !p.Match.Match(body):
		r.Problem = fmt.Sprintf("body does not match %q", p.Match.String())
	default:
		r.OK = true
	}
	return r, nil
}

// transportProblem names a failed request in a few words.
func transportProblem(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case errors.As(err, &dnsErr):
		return "DNS: " + dnsErr.Err
	}
	return err.Error()
}

// proxyStatusDetails finds the cause id at the start of a Proxy-Status
// details parameter: details="php_fatal_error: ...".
var proxyStatusDetails = regexp.MustCompile(`(?i);\s*details\s*=\s*"?([a-z0-9_]+)`)

// proxyStatusCause returns the cause gatewise wrote in a Proxy-Status
// header, when it is one of the taxonomy's ids.
func proxyStatusCause(values []string) cause.ID {
	table := cause.NewTable()
	for _, v := range values {
		if len(v) > 8<<10 {
			v = v[:8<<10]
		}
		for _, m := range proxyStatusDetails.FindAllStringSubmatch(v, 8) {
			if c, ok := table.Lookup(cause.ID(strings.ToLower(m[1]))); ok {
				return c.ID
			}
		}
	}
	return ""
}
