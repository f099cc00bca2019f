package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Duration is a time.Duration that JSON encodes as milliseconds.
type Duration time.Duration

// MarshalJSON encodes d as a number of milliseconds with microsecond
// precision.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(time.Duration(d).Microseconds()) / 1000)
}

// String formats d for people: "12ms", "1.2s", "340µs".
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t >= time.Second:
		return strconv.FormatFloat(t.Seconds(), 'f', 2, 64) + "s"
	case t >= time.Millisecond:
		return strconv.FormatFloat(float64(t.Microseconds())/1000, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatInt(t.Microseconds(), 10) + "µs"
	}
}

// Timings are the phases of one request.
type Timings struct {
	// Connect is the TCP connection's set-up time.
	Connect Duration `json:"connect_ms"`
	// TLS is the TLS handshake's time (zero for http://).
	TLS Duration `json:"tls_ms,omitempty"`
	// FirstByte is the time from the request written to the first byte of
	// the response.
	FirstByte Duration `json:"first_byte_ms"`
	// Total is the whole request, body included.
	Total Duration `json:"total_ms"`
	// BodyBytes is how many bytes of body were read (at most
	// Options.MaxBodyBytes).
	BodyBytes int64 `json:"body_bytes"`
	// BytesPerSecond is the body's download rate; zero for bodies too small
	// to measure.
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
}

// Result is one request to the site.
type Result struct {
	// Label says which request this was: "attempt 2", "without cookies",
	// "with Cache-Control: no-cache", "at ADDRESS (second resolver)".
	Label string `json:"label"`
	// Address is the IP address and port the request went to.
	Address string `json:"address,omitempty"`
	// Status is the HTTP status, zero when no response came.
	Status int `json:"status,omitempty"`
	// Failed reports whether the request failed: no response, a 5xx, or a
	// rejected request (400, 408, 429, 431).
	Failed bool `json:"failed"`
	// Cause is the taxonomy's cause of a failure without a response (such
	// as connection_refused), or the one the response names or implies.
	Cause cause.ID `json:"cause,omitempty"`
	// Error says in words why no response came. Empty when one did.
	Error string `json:"error,omitempty"`
	// AnsweredBy names the hop that produced the response ("nginx",
	// "Cloudflare"), or "application" when it came from behind every hop
	// found. Empty when no response came.
	AnsweredBy string `json:"answered_by,omitempty"`
	// Timings are the request's phases.
	Timings Timings `json:"timings"`
	// Location is the Location header of a redirect, which is not followed.
	Location string `json:"location,omitempty"`

	fp Fingerprint
}

// probeSpec is one request to make.
type probeSpec struct {
	label   string
	url     *url.URL
	addrs   []string // IP addresses to dial, in order
	port    string
	cookie  string
	noCache bool
}

// failingStatus reports whether a response status means the request failed.
func failingStatus(status int) bool {
	switch status {
	case 400, 408, 429, 431, 494:
		return true
	}
	return status >= 500
}

// trace records how far a request got, from httptrace callbacks and the
// dialer, which may run on other goroutines.
type trace struct {
	mu                                  sync.Mutex
	phase                               cause.Phase
	start, connStart, connDone          time.Time
	tlsStart, tlsDone, wrote, firstByte time.Time
	addr                                string
}

func (t *trace) set(f func(t *trace)) {
	t.mu.Lock()
	f(t)
	t.mu.Unlock()
}

// probe makes one request and reads the response.
func (c *checker) probe(ctx context.Context, spec probeSpec) Result {
	res := Result{Label: spec.label}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	tr := &trace{start: time.Now(), phase: cause.PhaseConnect}
	dialer := &net.Dialer{Timeout: c.opts.Timeout}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if len(spec.addrs) == 0 {
				return nil, errors.New("no address to connect to")
			}
			var lastDialErr error
			for _, a := range spec.addrs {
				addr := net.JoinHostPort(a, spec.port)
				tr.set(func(t *trace) { t.connStart, t.addr, t.phase = time.Now(), addr, cause.PhaseConnect })
				conn, err := dialer.DialContext(ctx, "tcp", addr)
				if err == nil {
					tr.set(func(t *trace) { t.connDone, t.phase = time.Now(), cause.PhaseConnected })
					return conn, nil
				}
				lastDialErr = err
				if ctx.Err() != nil {
					break
				}
			}
			return nil, lastDialErr
		},
		TLSClientConfig:        c.tlsConfig(spec.url.Hostname()),
		TLSHandshakeTimeout:    c.opts.Timeout,
		ResponseHeaderTimeout:  c.opts.Timeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ct := &httptrace.ClientTrace{
		TLSHandshakeStart: func() { tr.set(func(t *trace) { t.tlsStart, t.phase = time.Now(), cause.PhaseTLS }) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				tr.set(func(t *trace) { t.tlsDone, t.phase = time.Now(), cause.PhaseConnected })
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			tr.set(func(t *trace) { t.wrote, t.phase = time.Now(), cause.PhaseRequestWritten })
		},
		GotFirstResponseByte: func() {
			tr.set(func(t *trace) { t.firstByte, t.phase = time.Now(), cause.PhaseFirstByte })
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, ct), http.MethodGet, spec.url.String(), nil)
	if err != nil {
		res.Failed, res.Error = true, "the request could not be built"
		return res
	}
	req.Header.Set("User-Agent", "gatewise-check/1 (+https://gatewise.dev/check)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if spec.cookie != "" {
		req.Header.Set("Cookie", spec.cookie)
	}
	if spec.noCache {
		req.Header.Set("Cache-Control", "no-cache")
		req.Header.Set("Pragma", "no-cache")
	}
	resp, err := client.Do(req)
	finish := func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		res.Address = tr.addr
		if !tr.connDone.IsZero() {
			res.Timings.Connect = Duration(tr.connDone.Sub(tr.connStart))
		}
		if !tr.tlsDone.IsZero() {
			res.Timings.TLS = Duration(tr.tlsDone.Sub(tr.tlsStart))
		}
		if !tr.firstByte.IsZero() && !tr.wrote.IsZero() {
			res.Timings.FirstByte = Duration(tr.firstByte.Sub(tr.wrote))
		}
		res.Timings.Total = Duration(time.Since(tr.start))
	}
	if err != nil {
		tr.mu.Lock()
		phase := tr.phase
		tr.mu.Unlock()
		ce := cause.Classify(err, cause.Attempt{Phase: phase})
		res.Failed, res.Cause = true, ce.ID
		res.Error = c.causes.Get(ce.ID).Title
		if ce.Detail != "" {
			res.Error += " (" + ce.Detail + ")"
		}
		finish()
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	res.Location = clip(resp.Header.Get("Location"), 200)
	var head bytes.Buffer
	bodyStart := time.Now()
	n, err := io.Copy(&head, io.LimitReader(resp.Body, maxScanBody))
	if err == nil && n == maxScanBody {
		var m int64
		m, err = io.Copy(io.Discard, io.LimitReader(resp.Body, c.opts.MaxBodyBytes-maxScanBody))
		n += m
	}
	bodyTime := time.Since(bodyStart)
	res.Timings.BodyBytes = n
	if n >= 16<<10 && bodyTime > 0 {
		res.Timings.BytesPerSecond = float64(n) / bodyTime.Seconds()
	}
	finish()
	res.fp = Identify(resp.StatusCode, resp.Header, head.Bytes())
	res.Failed = failingStatus(resp.StatusCode)
	if err != nil && !errors.Is(err, io.EOF) {
		// The body was cut: the response is incomplete whatever its status.
		ce := cause.Classify(err, cause.Attempt{Phase: cause.PhaseHeaders})
		res.Failed, res.Cause = true, ce.ID
		res.Error = c.causes.Get(ce.ID).Title
	}
	if res.Failed {
		if res.Cause == "" {
			res.Cause = res.fp.Cause
		}
		if res.fp.Answered >= 0 {
			res.AnsweredBy = res.fp.Hops[res.fp.Answered].Name
		} else {
			res.AnsweredBy = RoleApplication
		}
	}
	return res
}

// tlsConfig returns the TLS settings for a request to host.
func (c *checker) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// describe returns "502 Bad Gateway", or the error for a failure without
// a response.
func (r Result) describe() string {
	if r.Status == 0 {
		if r.Error == "" {
			return "no response"
		}
		return r.Error
	}
	return fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status))
}
