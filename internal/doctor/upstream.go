package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
)

// slowUpstream is the time to the first byte above which an upstream's
// answer is called slow.
const slowUpstream = time.Second

// upstreamChecks returns a check per target of every pool of the config.
// A FastCGI target of a pool with a status page is checked by the fpm check
// instead.
func (e *env) upstreamChecks() []check {
	cfg := e.opts.Config
	names := make([]string, 0, len(cfg.Pools))
	for n := range cfg.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	var cs []check
	for _, n := range names {
		p := cfg.Pools[n]
		if p == nil {
			continue
		}
		for _, t := range p.Targets {
			if config.IsFastCGIURL(t.URL) && p.FastCGI != nil && p.FastCGI.StatusPath != "" {
				continue
			}
			target := fmt.Sprintf("pool %s: %s", n, t.URL)
			cs = append(cs, check{name: "upstream", target: target, run: func(ctx context.Context) []Finding {
				if config.IsFastCGIURL(t.URL) {
					return e.fastcgiTarget(ctx, p, t.URL)
				}
				return e.httpTarget(ctx, p, t.URL)
			}})
		}
	}
	if len(cs) == 0 {
		cs = append(cs, check{name: "upstream", run: func(context.Context) []Finding {
			return []Finding{skip("the config has no upstream target")}
		}})
	}
	return cs
}

// fpmTarget is a PHP-FPM pool from the config, with its status path.
type fpmTarget struct {
	addr, status string
}

// configFPM returns the FastCGI targets of pools that set a status page.
func configFPM(cfg *config.Config) []fpmTarget {
	names := make([]string, 0, len(cfg.Pools))
	for n := range cfg.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []fpmTarget
	for _, n := range names {
		p := cfg.Pools[n]
		if p == nil || p.FastCGI == nil || p.FastCGI.StatusPath == "" {
			continue
		}
		for _, t := range p.Targets {
			if config.IsFastCGIURL(t.URL) {
				out = append(out, fpmTarget{addr: fpmAddress(t.URL), status: p.FastCGI.StatusPath})
			}
		}
	}
	return out
}

// fpmAddress turns fastcgi://host:port and fastcgi+unix:///path into
// host:port and /path; other forms are returned as they are.
func fpmAddress(s string) string {
	switch {
	case strings.HasPrefix(s, config.SchemeFastCGIUnix+"://"):
		if u, err := url.Parse(s); err == nil && u.Path != "" {
			return u.Path
		}
		return strings.TrimPrefix(s, config.SchemeFastCGIUnix+"://")
	case strings.HasPrefix(s, config.SchemeFastCGI+"://"):
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Host
		}
		return strings.TrimPrefix(s, config.SchemeFastCGI+"://")
	}
	return s
}

// upstreamFail builds the finding of a failed step.
func (e *env) upstreamFail(ce *cause.Error, step string, ev []string) Finding {
	c := e.table.Get(ce.ID)
	summary := fmt.Sprintf("%s: %s", step, c.Title)
	if ce.Detail != "" {
		summary += " (" + ce.Detail + ")"
	}
	if ce.Err != nil {
		ev = append(ev, step+": "+ce.Err.Error())
	}
	f := newFinding(StatusFail, weightUpstream, summary, ev, c.Owner)
	f.Cause = string(ce.ID)
	return f
}

// httpTarget is check 4 for an http:// or https:// target: DNS, connect,
// TLS, a request for the health path (or /) and its latency.
func (e *env) httpTarget(ctx context.Context, p *config.Pool, raw string) []Finding {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return []Finding{skip(fmt.Sprintf("cannot read the target URL %q", raw))}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[bool]string{true: "443", false: "80"}[u.Scheme == "https"]
	}
	var ev []string
	addr := host
	if net.ParseIP(host) == nil {
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return []Finding{e.upstreamFail(cause.Classify(err, cause.Attempt{Phase: cause.PhaseDNS}), "DNS", ev)}
		}
		ev = append(ev, fmt.Sprintf("DNS: %s → %s in %s", host, strings.Join(addrs, ", "), ms(time.Since(start))))
		addr = addrs[0]
	}
	start := time.Now()
	var d net.Dialer
	if p.Timeouts.Dial.Duration > 0 {
		d.Timeout = p.Timeouts.Dial.Duration
	}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		return []Finding{e.upstreamFail(cause.Classify(err, cause.Attempt{Phase: cause.PhaseConnect}), "connect", ev)}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	ev = append(ev, fmt.Sprintf("connect: %s in %s", conn.RemoteAddr(), ms(time.Since(start))))
	if u.Scheme == "https" {
		cfg := &tls.Config{ServerName: host, InsecureSkipVerify: p.TLS.InsecureSkipVerify}
		if p.TLS.ServerName != "" {
			cfg.ServerName = p.TLS.ServerName
		}
		if p.TLS.CA != "" {
			pem, err := os.ReadFile(p.TLS.CA)
			if err != nil {
				return []Finding{skip(fmt.Sprintf("cannot read the pool's CA file: %v", err))}
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.RootCAs = pool
		}
		start = time.Now()
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return []Finding{e.upstreamFail(cause.Classify(err, cause.Attempt{Phase: cause.PhaseTLS}), "TLS", ev)}
		}
		st := tc.ConnectionState()
		tlsEv := fmt.Sprintf("TLS: %s in %s", tls.VersionName(st.Version), ms(time.Since(start)))
		if len(st.PeerCertificates) > 0 {
			leaf := st.PeerCertificates[0]
			tlsEv += fmt.Sprintf(", certificate for %s expires %s", leaf.Subject.CommonName, leaf.NotAfter.Format("2006-01-02"))
		}
		ev = append(ev, tlsEv)
		conn = tc
	}
	path, hostHeader, expect := "/", u.Host, []string(nil)
	if h := p.Health; h != nil && !h.TCP && h.Path != "" {
		path, expect = h.Path, h.ExpectStatus
		if h.Host != "" {
			hostHeader = h.Host
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+path, nil)
	if err != nil {
		return []Finding{skip(fmt.Sprintf("cannot build a request for %s: %v", path, err))}
	}
	req.Host = hostHeader
	req.Header.Set("User-Agent", "gatewise-doctor")
	req.Close = true
	start = time.Now()
	if err := req.Write(conn); err != nil {
		return []Finding{e.upstreamFail(cause.Classify(err, cause.Attempt{Phase: cause.PhaseConnected}), "request", ev)}
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return []Finding{e.upstreamFail(cause.Classify(err, cause.Attempt{Phase: cause.PhaseFirstByte}), "response", ev)}
	}
	took := time.Since(start)
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	ev = append(ev, fmt.Sprintf("GET %s → %s, first byte after %s", path, res.Status, ms(took)))
	return []Finding{e.judgeResponse(res.StatusCode, path, expect, took, ev)}
}

// judgeResponse turns a target's answer into a finding.
func (e *env) judgeResponse(code int, path string, expect []string, took time.Duration, ev []string) Finding {
	passes := code < 500
	if len(expect) > 0 {
		passes = statusMatches(code, expect)
	}
	switch {
	case !passes:
		st := StatusWarn
		if code == 502 || code == 503 || code == 504 || code >= 500 && len(expect) == 0 {
			st = StatusFail
		}
		c := e.table.Get(cause.UpstreamErrorStatus)
		f := newFinding(st, weightUpstream, fmt.Sprintf("GET %s answered %d", path, code), ev, c.Owner)
		f.Cause = string(cause.UpstreamErrorStatus)
		return f
	case took > slowUpstream:
		c := e.table.Get(cause.HTTPResponseTimeout)
		f := newFinding(StatusWarn, weightUpstream-10, fmt.Sprintf("slow: GET %s took %s to its first byte", path, ms(took)), ev, c.Owner)
		f.Cause = string(cause.HTTPResponseTimeout)
		return f
	}
	return ok(fmt.Sprintf("GET %s → %d in %s", path, code, ms(took)), ev...)
}

// statusMatches reports whether code is in a list of codes ("200") and
// classes ("2xx").
func statusMatches(code int, list []string) bool {
	for _, s := range list {
		s = strings.TrimSpace(strings.ToLower(s))
		if len(s) == 3 && strings.HasSuffix(s, "xx") && s[0] >= '1' && s[0] <= '5' {
			if code/100 == int(s[0]-'0') {
				return true
			}
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n == code {
			return true
		}
	}
	return false
}

// fpmDialCause classifies a failure to connect to PHP-FPM.
func fpmDialCause(err error) *cause.Error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return cause.New(cause.FPMNotRunning, "", err)
	case errors.Is(err, syscall.EAGAIN):
		return cause.New(cause.FPMPoolExhausted, "listen queue full", err)
	}
	return cause.Classify(err, cause.Attempt{Phase: cause.PhaseConnect})
}

// fastcgiTarget is check 4 for a PHP-FPM target without a status page:
// connect, then the health path through the FastCGI transport when the
// pool has one.
func (e *env) fastcgiTarget(ctx context.Context, p *config.Pool, raw string) []Finding {
	addr := fpmAddress(raw)
	start := time.Now()
	conn, err := dial(ctx, addr)
	if err != nil {
		return []Finding{e.upstreamFail(fpmDialCause(err), "connect", nil)}
	}
	conn.Close()
	ev := []string{fmt.Sprintf("connect: %s in %s", addr, ms(time.Since(start)))}
	h := p.Health
	if h == nil || h.TCP || h.Path == "" || p.FastCGI == nil {
		return []Finding{ok("PHP-FPM accepts connections (no health path to request; set the pool's fastcgi.status_path to read its status page)", ev...)}
	}
	tr, err := fastcgi.New(fastcgi.Options{Address: addr, Root: p.FastCGI.Root, Index: p.FastCGI.Index, Params: p.FastCGI.Params, MaxIdleConns: -1})
	if err != nil {
		return []Finding{skip("cannot set up a FastCGI client: " + err.Error())}
	}
	defer tr.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+h.Path, nil)
	if err != nil {
		return []Finding{skip(fmt.Sprintf("cannot build a request for %s: %v", h.Path, err))}
	}
	req.RemoteAddr = "127.0.0.1:0"
	if h.Host != "" {
		req.Host = h.Host
	}
	start = time.Now()
	res, err := tr.RoundTrip(req)
	if err != nil {
		ce, found := cause.Of(err)
		if !found {
			ce = cause.Classify(err, cause.Attempt{Phase: cause.PhaseRequestWritten})
		}
		return []Finding{e.upstreamFail(ce, "GET "+h.Path, ev)}
	}
	took := time.Since(start)
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	ev = append(ev, fmt.Sprintf("GET %s → %s in %s", h.Path, res.Status, ms(took)))
	return []Finding{e.judgeResponse(res.StatusCode, h.Path, h.ExpectStatus, took, ev)}
}
