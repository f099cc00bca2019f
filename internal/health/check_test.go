package health

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
	"github.com/gatewise/gatewise/internal/upstream"
)

// checkOnce runs one check of the pool's first target with a checker
// built from hc, as a Checker's goroutine would.
func checkOnce(t *testing.T, pool *upstream.Pool, hc *config.HealthCheck) result {
	t.Helper()
	c := newChecker(pool, hc, Options{})
	t.Cleanup(func() {
		if c.transport != nil {
			c.transport.CloseIdleConnections()
		}
	})
	return c.check(context.Background(), pool.Targets[0])
}

func TestExpectStatus(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil {
			code = http.StatusBadRequest
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	pool := newPool(t, nil, nil, srv.URL)
	tests := []struct {
		desc       string
		status     int
		expect     []string
		wantReason string // empty: the check passes
	}{
		{"default passes 200", 200, nil, ""},
		{"default passes a redirect, not followed", 302, nil, ""},
		{"default fails 404", 404, nil, "answered 404, want 2xx/3xx"},
		{"default fails 503", 503, nil, "answered 503, want 2xx/3xx"},
		{"code matches", 200, []string{"200"}, ""},
		{"other code of the class", 204, []string{"200"}, "answered 204, want 200"},
		{"class matches", 204, []string{"2xx"}, ""},
		{"upper-case class", 500, []string{"5XX"}, ""},
		{"one of several", 404, []string{"2xx", "404"}, ""},
		{"none of several", 401, []string{"2xx", "404"}, "answered 401, want 2xx/404"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			hc := healthCheck("/status/" + strconv.Itoa(tt.status))
			if tt.expect != nil {
				hc.ExpectStatus = tt.expect
			}
			res := checkOnce(t, pool, hc)
			if got, want := res.pass, tt.wantReason == ""; got != want {
				t.Errorf("pass = %v, want %v (reason %q)", got, want, res.reason)
			}
			if got, want := res.reason, tt.wantReason; got != want {
				t.Errorf("reason = %q, want %q", got, want)
			}
		})
	}
}

func TestStatusMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code     int
		patterns []string
		want     bool
	}{
		{200, []string{"200"}, true},
		{200, []string{"2xx"}, true},
		{299, []string{"2XX"}, true},
		{300, []string{"2xx"}, false},
		{201, []string{"200"}, false},
		{404, []string{"2xx", "3xx", "404"}, true},
		{200, nil, false},
		{200, []string{"20"}, false},
		{200, []string{"x00"}, false},
	}
	for _, tt := range tests {
		if got := statusMatches(tt.code, tt.patterns); got != tt.want {
			t.Errorf("statusMatches(%d, %q) = %v, want %v", tt.code, tt.patterns, got, tt.want)
		}
	}
}

func TestExpectBody(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("a", MaxBodyBytes-len("MARK"))
	bodies := map[string]string{
		"/ok":       "status: ok\nuptime: 10s\n",
		"/degraded": "status: degraded\n",
		// MARK ends exactly at the 64 KiB limit, then more follows.
		"/mark-inside": pad + "MARK" + strings.Repeat("b", 1<<20),
		// MARK starts right after the 64 KiB limit.
		"/mark-after": pad + "aaaaMARK",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(bodies[r.URL.Path]))
	}))
	t.Cleanup(srv.Close)
	pool := newPool(t, nil, nil, srv.URL)
	tests := []struct {
		desc, path, expect string
		wantReason         string
	}{
		{"matches", "/ok", `(?m)^status: ok$`, ""},
		{"does not match", "/degraded", `(?m)^status: ok$`, `answered 200 but its body did not match expect_body "(?m)^status: ok$"`},
		{"match inside the first 64 KiB", "/mark-inside", "MARK", ""},
		{"match past the first 64 KiB", "/mark-after", "MARK", `answered 200 but its body did not match expect_body "MARK"`},
		{"only the first 64 KiB are read", "/mark-after", `^a+$`, ""},
		{"not a regular expression", "/ok", `(`, "expect_body is not a regular expression: error parsing regexp: missing closing ): `(`"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			hc := healthCheck(tt.path)
			hc.ExpectBody = tt.expect
			res := checkOnce(t, pool, hc)
			if got, want := res.pass, tt.wantReason == ""; got != want {
				t.Errorf("pass = %v, want %v (reason %q)", got, want, res.reason)
			}
			if got, want := res.reason, tt.wantReason; got != want {
				t.Errorf("reason = %q, want %q", got, want)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	type seen struct{ host, ua, path, query string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Host, r.UserAgent(), r.URL.Path, r.URL.RawQuery})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	pool := newPool(t, nil, nil, srv.URL)
	addr := pool.Targets[0].Addr

	for _, tt := range []struct {
		desc, host, path string
		want             seen
	}{
		{"default host", "", "/healthz", seen{addr, UserAgent, "/healthz", ""}},
		{"host set", "app.example.com", "/healthz", seen{"app.example.com", UserAgent, "/healthz", ""}},
		{"path with a query", "", "/status?full=1", seen{addr, UserAgent, "/status", "full=1"}},
	} {
		hc := healthCheck(tt.path)
		hc.Host = tt.host
		if res := checkOnce(t, pool, hc); !res.pass {
			t.Fatalf("%s: check failed: %s", tt.desc, res.reason)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if last != tt.want {
			t.Errorf("%s: upstream saw %+v, want %+v", tt.desc, last, tt.want)
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	srv, err := faults.Start("hang", faults.Hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	pool := newPool(t, nil, nil, srv.URL())
	hc := healthCheck("/healthz")
	hc.Timeout.Duration = 100 * time.Millisecond
	start := time.Now()
	res := checkOnce(t, pool, hc)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("check took %v, want about the 100ms timeout", took)
	}
	if got, want := res.reason, "http_response_timeout (no answer within 100ms)"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// TestFailures checks each failure an upstream can produce on a real
// socket against its cause.
func TestFailures(t *testing.T) {
	t.Parallel()
	dead, err := faults.DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsAddr := tlsSrv.Listener.Addr().String()
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)

	tests := []struct {
		desc       string
		mode       faults.Mode // -1: use url
		url        string
		tcp        bool
		tls        config.UpstreamTLS
		wantCause  cause.ID // empty: the check passes
		wantReason string
	}{
		{desc: "refused", mode: -1, url: "http://" + dead, wantCause: cause.ConnectionRefused, wantReason: "connection_refused"},
		{desc: "tcp refused", mode: -1, url: "http://" + dead, tcp: true, wantCause: cause.ConnectionRefused, wantReason: "connection_refused"},
		{desc: "tcp open", mode: faults.Hang, tcp: true},
		{desc: "closed", mode: faults.Close, wantCause: cause.ConnectionTerminated, wantReason: "connection_terminated (closed)"},
		{desc: "reset", mode: faults.Reset, wantCause: cause.ConnectionTerminated, wantReason: "connection_terminated (reset)"},
		{desc: "junk", mode: faults.Junk, wantCause: cause.HTTPProtocolError, wantReason: "http_protocol_error"},
		{desc: "truncated header", mode: faults.TruncatedHeader, wantCause: cause.HTTPResponseIncomplete, wantReason: "http_response_incomplete (headers)"},
		{desc: "502", mode: faults.Status502, wantCause: cause.UpstreamErrorStatus, wantReason: "answered 502, want 2xx/3xx"},
		{desc: "https to plain http", mode: -1, url: "https://" + plain.Listener.Addr().String(), wantCause: cause.TLSProtocolError, wantReason: "tls_protocol_error (handshake)"},
		{desc: "unknown authority", mode: -1, url: "https://" + tlsAddr, wantCause: cause.TLSCertificateError, wantReason: "tls_certificate_error"},
		{desc: "pool's CA trusted", mode: -1, url: "https://" + tlsAddr, tls: config.UpstreamTLS{CA: caFile}},
		{desc: "pool's verification off", mode: -1, url: "https://" + tlsAddr, tls: config.UpstreamTLS{InsecureSkipVerify: true}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			url := tt.url
			if tt.mode >= 0 {
				srv, err := faults.Start(tt.desc, tt.mode)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(srv.Close)
				url = srv.URL()
			}
			pool := newPool(t, func(pc *config.Pool) { pc.TLS = tt.tls }, nil, url)
			path := "/healthz"
			if tt.tcp {
				path = ""
			}
			res := checkOnce(t, pool, healthCheck(path))
			if got, want := res.pass, tt.wantCause == ""; got != want {
				t.Errorf("pass = %v, want %v (reason %q, error %v)", got, want, res.reason, res.err)
			}
			if got, want := res.cause, tt.wantCause; got != want {
				t.Errorf("cause = %q, want %q (error %v)", got, want, res.err)
			}
			if got, want := res.reason, tt.wantReason; got != want {
				t.Errorf("reason = %q, want %q", got, want)
			}
		})
	}
}

// TestClassify covers errors no loopback socket produces on demand.
func TestClassify(t *testing.T) {
	t.Parallel()
	c := newChecker(newPool(t, nil, nil, "http://127.0.0.1:1"), healthCheck("/healthz"), Options{})
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		desc       string
		ctx        context.Context
		err        error
		phase      cause.Phase
		wantID     cause.ID
		wantDetail string
	}{
		{"dns not found", context.Background(), opErr(&net.DNSError{Err: "no such host", Name: "app.internal", IsNotFound: true}), cause.PhaseDNS, cause.DNSError, "not found"},
		{"dns timeout", context.Background(), &net.DNSError{Err: "i/o timeout", Name: "app.internal", IsTimeout: true}, cause.PhaseDNS, cause.DNSError, "timeout"},
		{"dns other", context.Background(), &net.DNSError{Err: "server misbehaving", Name: "app.internal"}, cause.PhaseDNS, cause.DNSError, "lookup failed"},
		{"refused", context.Background(), opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), cause.PhaseConnect, cause.ConnectionRefused, ""},
		{"host unreachable", context.Background(), opErr(syscall.EHOSTUNREACH), cause.PhaseConnect, cause.DestinationUnavailable, "host unreachable"},
		{"connect timeout", expired, opErr(context.DeadlineExceeded), cause.PhaseConnect, cause.ConnectionTimeout, "no connection within 1s"},
		{"tls timeout", expired, context.DeadlineExceeded, cause.PhaseTLS, cause.ConnectionTimeout, "no TLS handshake within 1s"},
		{"answer timeout", expired, fmt.Errorf("wrapped: %w", context.DeadlineExceeded), cause.PhaseRequestWritten, cause.HTTPResponseTimeout, "no answer within 1s"},
		{"body timeout", expired, errors.New("request canceled"), cause.PhaseHeaders, cause.HTTPResponseTimeout, "body not read within 1s"},
		{"body broken off", context.Background(), fmt.Errorf("read body: %w", syscall.ECONNRESET), cause.PhaseHeaders, cause.HTTPResponseIncomplete, "body reset"},
		{"already a cause", context.Background(), fmt.Errorf("x: %w", cause.New(cause.NoRoute, "d", nil)), cause.PhaseNone, cause.NoRoute, "d"},
		{"unknown", context.Background(), errors.New("something else"), cause.PhaseConnected, cause.ProxyInternalError, ""},
	}
	for _, tt := range tests {
		ce := c.classify(tt.ctx, tt.err, tt.phase)
		if ce.ID != tt.wantID || ce.Detail != tt.wantDetail {
			t.Errorf("%s: classify = %s (%s), want %s (%s)", tt.desc, ce.ID, ce.Detail, tt.wantID, tt.wantDetail)
		}
		if ce.ID != cause.NoRoute && !errors.Is(ce, tt.err) {
			t.Errorf("%s: the cause does not wrap the error %v", tt.desc, tt.err)
		}
	}
}
