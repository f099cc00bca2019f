package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
)

// causeCase is one failure produced by a real socket.
type causeCase struct {
	desc string
	// target starts the upstream and returns its URL.
	target func(t *testing.T) string
	// tune adjusts the config (shorter timeouts).
	tune       func(cfg *config.Config)
	wantStatus int
	wantType   string // Proxy-Status error type
	wantCause  string
	wantDetail string // "" means any
	// wantAttempts is how many tries the GET takes: a cut connection is
	// tried again on the same target (the pool has one), up to
	// retry.attempts (3); other causes are not. Zero means 1.
	wantAttempts int
}

func startFault(t *testing.T, modes ...faults.Mode) string {
	t.Helper()
	s, err := faults.Start(t.Name(), modes...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.URL()
}

func causeCases() []causeCase {
	shortHeaderTimeout := func(cfg *config.Config) { cfg.Pools["app"].Timeouts.ResponseHeader.Duration = 300 * time.Millisecond }
	return []causeCase{
		{
			desc: "dead port: connection refused",
			target: func(t *testing.T) string {
				addr, err := faults.DeadAddr()
				if err != nil {
					t.Fatal(err)
				}
				return "http://" + addr
			},
			wantStatus: 502, wantType: "connection_refused", wantCause: "connection_refused",
		},
		{
			desc: "full listen queue: connect times out",
			target: func(t *testing.T) string {
				u, err := faults.StartUnanswered()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(u.Close)
				return "http://" + u.Addr()
			},
			tune:       func(cfg *config.Config) { cfg.Pools["app"].Timeouts.Dial.Duration = 300 * time.Millisecond },
			wantStatus: 504, wantType: "connection_timeout", wantCause: "connection_timeout",
		},
		{
			desc:       "reset after the request: connection terminated (reset)",
			target:     func(t *testing.T) string { return startFault(t, faults.Reset) },
			wantStatus: 502, wantType: "connection_terminated", wantCause: "connection_terminated", wantDetail: "reset", wantAttempts: 3,
		},
		{
			desc:       "close before headers: connection terminated (closed)",
			target:     func(t *testing.T) string { return startFault(t, faults.Close) },
			wantStatus: 502, wantType: "connection_terminated", wantCause: "connection_terminated", wantDetail: "closed", wantAttempts: 3,
		},
		{
			desc:       "hang past the response header timeout",
			target:     func(t *testing.T) string { return startFault(t, faults.Hang) },
			tune:       shortHeaderTimeout,
			wantStatus: 504, wantType: "http_response_timeout", wantCause: "http_response_timeout",
		},
		{
			desc:       "bytes that are not HTTP",
			target:     func(t *testing.T) string { return startFault(t, faults.Junk) },
			wantStatus: 502, wantType: "http_protocol_error", wantCause: "http_protocol_error",
		},
		{
			desc:       "2 MiB response header",
			target:     func(t *testing.T) string { return startFault(t, faults.HugeHeader) },
			wantStatus: 502, wantType: "http_response_header_section_size", wantCause: "http_response_header_section_size",
		},
		{
			desc:       "header section cut short",
			target:     func(t *testing.T) string { return startFault(t, faults.TruncatedHeader) },
			wantStatus: 502, wantType: "http_response_incomplete", wantCause: "http_response_incomplete", wantDetail: "headers", wantAttempts: 3,
		},
		{
			desc:       "unresolvable host name",
			target:     func(*testing.T) string { return "http://gatewise-test-upstream.invalid:8080" },
			wantStatus: 502, wantType: "dns_error", wantCause: "dns_error",
		},
		{
			desc:       "TLS to a plain-HTTP port",
			target:     func(t *testing.T) string { return strings.Replace(startFault(t, faults.OK), "http://", "https://", 1) },
			wantStatus: 502, wantType: "tls_protocol_error", wantCause: "tls_protocol_error",
		},
		{
			desc: "self-signed upstream certificate",
			target: func(t *testing.T) string {
				s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "secret") }))
				t.Cleanup(s.Close)
				return s.URL
			},
			wantStatus: 502, wantType: "tls_certificate_error", wantCause: "tls_certificate_error",
		},
	}
}

// TestCauses produces each cause over a real socket and checks everything
// the gateway says about it: the status, Proxy-Status, the request ID, the
// problem+json body, the access-log line, the warning line and the metric.
func TestCauses(t *testing.T) {
	t.Parallel()
	for _, tc := range causeCases() {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := oneTargetConfig(tc.target(t))
			if tc.tune != nil {
				tc.tune(cfg)
			}
			g := startGateway(t, cfg)

			reqID := "test-" + strings.ReplaceAll(tc.wantCause, "_", "-")
			req, err := http.NewRequest(http.MethodGet, g.url+"/some/path?q=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/problem+json")
			req.Header.Set("X-Request-ID", reqID)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatalf("read body: %v", err)
			}

			if got, want := res.StatusCode, tc.wantStatus; got != want {
				t.Errorf("status: got %d, want %d (body %s)", got, want, body)
			}
			ps := res.Header.Get("Proxy-Status")
			if !strings.HasPrefix(ps, "gatewise;") || !strings.Contains(ps, "error="+tc.wantType) {
				t.Errorf("Proxy-Status: got %q, want gatewise; error=%s", ps, tc.wantType)
			}
			if !strings.Contains(ps, `details="`+tc.wantCause) {
				t.Errorf("Proxy-Status: got %q, want details naming %s", ps, tc.wantCause)
			}
			if got := res.Header.Get("X-Request-ID"); got != reqID {
				t.Errorf("X-Request-ID: got %q, want %q", got, reqID)
			}
			if got, want := res.Header.Get("Content-Type"), "application/problem+json"; !strings.HasPrefix(got, want) {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
			var problem map[string]any
			if err := json.Unmarshal(body, &problem); err != nil {
				t.Fatalf("problem+json: %v: %s", err, body)
			}
			if got := problem["cause"]; got != tc.wantCause {
				t.Errorf("problem cause: got %v, want %s", got, tc.wantCause)
			}
			if got := problem["status"]; got != float64(tc.wantStatus) {
				t.Errorf("problem status: got %v, want %d", got, tc.wantStatus)
			}
			if got := problem["request_id"]; got != reqID {
				t.Errorf("problem request_id: got %v, want %s", got, reqID)
			}
			// Nothing internal reaches the visitor: no loopback address, no
			// Go error text.
			if regexp.MustCompile(`127\.0\.0\.1|dial tcp|x509|EOF|i/o timeout|\.invalid`).Match(body) {
				t.Errorf("body leaks internal detail: %s", body)
			}

			var access map[string]any
			waitFor(t, "access log line", func() bool {
				access = findLine(g.access.lines(t), map[string]any{"request_id": reqID})
				return access != nil
			})
			if got := access["cause"]; got != tc.wantCause {
				t.Errorf("access log cause: got %v, want %s", got, tc.wantCause)
			}
			if got := access["status"]; got != float64(tc.wantStatus) {
				t.Errorf("access log status: got %v, want %d", got, tc.wantStatus)
			}
			wantAttempts := max(tc.wantAttempts, 1)
			if got := access["attempts"]; got != float64(wantAttempts) {
				t.Errorf("access log attempts: got %v, want %d", got, wantAttempts)
			}
			warn := findLine(g.log.lines(t), map[string]any{"level": "WARN", "request_id": reqID})
			if warn == nil {
				t.Fatalf("no warning line for %s in:\n%s", reqID, g.log.String())
			}
			if got := warn["cause"]; got != tc.wantCause {
				t.Errorf("warning cause: got %v, want %s", got, tc.wantCause)
			}
			if tc.wantDetail != "" && warn["detail"] != tc.wantDetail {
				t.Errorf("warning detail: got %v, want %s", warn["detail"], tc.wantDetail)
			}
			if owner, _ := warn["owner"].(string); owner == "" {
				t.Errorf("warning line has no owner sentence: %v", warn)
			}
			m := g.metrics(t)
			wantMetric := fmt.Sprintf(`gatewise_upstream_failures_total{cause=%q,pool="app",`, tc.wantCause)
			if !strings.Contains(m, wantMetric) {
				t.Errorf("metrics lack %s", wantMetric)
			}
			wantReq := fmt.Sprintf(`gatewise_requests_total{cause=%q,code="%d",route="app"} 1`, tc.wantCause, tc.wantStatus)
			if !strings.Contains(m, wantReq) {
				t.Errorf("metrics lack %s", wantReq)
			}
		})
	}
}

// TestTruncatedBody checks a body cut short after the headers went out: the
// visitor's connection is closed so the truncation shows, and the owner gets
// http_response_incomplete in the log and the metrics.
func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	g := startGateway(t, oneTargetConfig(startFault(t, faults.TruncatedBody)))
	req, _ := http.NewRequest(http.MethodGet, g.url+"/big", nil)
	req.Header.Set("X-Request-ID", "test-truncated")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got, want := res.StatusCode, 200; got != want {
		t.Errorf("status: got %d, want %d (headers were already sent)", got, want)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the body: got %v after %d bytes, want unexpected EOF", err, n)
	}
	if n >= faults.TruncatedBodyBytes {
		t.Errorf("read %d bytes, want fewer than %d", n, faults.TruncatedBodyBytes)
	}
	var access map[string]any
	waitFor(t, "access log line", func() bool {
		access = findLine(g.access.lines(t), map[string]any{"request_id": "test-truncated"})
		return access != nil
	})
	if got, want := access["cause"], "http_response_incomplete"; got != want {
		t.Errorf("access log cause: got %v, want %s", got, want)
	}
	if warn := findLine(g.log.lines(t), map[string]any{"level": "WARN", "cause": "http_response_incomplete"}); warn == nil {
		t.Errorf("no warning line in:\n%s", g.log.String())
	}
	if m := g.metrics(t); !strings.Contains(m, `gatewise_upstream_failures_total{cause="http_response_incomplete",pool="app"`) {
		t.Errorf("metrics lack the failure")
	}
}

// TestUpstreamErrorStatus checks that an upstream's own 502 is passed
// through untouched but counted, logged and marked in Proxy-Status.
func TestUpstreamErrorStatus(t *testing.T) {
	t.Parallel()
	g := startGateway(t, oneTargetConfig(startFault(t, faults.Status502)))
	req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
	req.Header.Set("X-Request-ID", "test-upstream-502")
	req.Header.Set("Accept", "application/problem+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if got, want := res.StatusCode, 502; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	if !strings.Contains(string(body), "upstream of ") || res.Header.Get("Content-Type") != "text/html" {
		t.Errorf("body or type changed: %q %q", res.Header.Get("Content-Type"), body)
	}
	if got, want := res.Header.Get("Proxy-Status"), "gatewise; received-status=502"; got != want {
		t.Errorf("Proxy-Status: got %q, want %q", got, want)
	}
	if got := res.Header.Get("X-Request-ID"); got != "test-upstream-502" {
		t.Errorf("X-Request-ID: got %q", got)
	}
	var access map[string]any
	waitFor(t, "access log line", func() bool {
		access = findLine(g.access.lines(t), map[string]any{"request_id": "test-upstream-502"})
		return access != nil
	})
	if got, want := access["cause"], "upstream_error_status"; got != want {
		t.Errorf("access cause: got %v, want %v", got, want)
	}
	if got, want := access["upstream_status"], float64(502); got != want {
		t.Errorf("access upstream_status: got %v, want %v", got, want)
	}
	if findLine(g.log.lines(t), map[string]any{"level": "WARN", "cause": "upstream_error_status"}) == nil {
		t.Errorf("no warning line")
	}
	if m := g.metrics(t); !strings.Contains(m, `gatewise_upstream_failures_total{cause="upstream_error_status",pool="app"`) {
		t.Errorf("metrics lack the failure")
	}
}

// TestClientClosed checks that a visitor who gives up is logged as 499
// client_closed, not blamed on the upstream.
func TestClientClosed(t *testing.T) {
	t.Parallel()
	g := startGateway(t, oneTargetConfig(startFault(t, faults.Hang)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/", nil)
	req.Header.Set("X-Request-ID", "test-client-closed")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("request succeeded with %d, want the client to give up", res.StatusCode)
	}
	var access map[string]any
	waitFor(t, "access log line", func() bool {
		access = findLine(g.access.lines(t), map[string]any{"request_id": "test-client-closed"})
		return access != nil
	})
	if got, want := access["cause"], "client_closed"; got != want {
		t.Errorf("cause: got %v, want %v", got, want)
	}
	if got, want := access["status"], float64(499); got != want {
		t.Errorf("status: got %v, want %v", got, want)
	}
	if strings.Contains(g.metrics(t), `gatewise_upstream_failures_total{cause="client_closed"`) {
		t.Errorf("client_closed counted as an upstream failure")
	}
}

// TestNoRoute checks a request that no route matches.
func TestNoRoute(t *testing.T) {
	t.Parallel()
	cfg := oneTargetConfig(startFault(t, faults.OK))
	cfg.Routes = []config.Route{{Name: "site", Host: "example.test", Path: "/", Pool: "app"}}
	g := startGateway(t, cfg)
	req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
	req.Host = "other.test"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.StatusCode, 404; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	if got := res.Header.Get("Proxy-Status"); !strings.Contains(got, "error=destination_not_found") {
		t.Errorf("Proxy-Status: got %q", got)
	}
	if id := res.Header.Get("X-Request-ID"); len(id) != 20 {
		t.Errorf("generated X-Request-ID: got %q, want 20 characters", id)
	}
	req.Host = "example.test"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.StatusCode, 200; got != want {
		t.Errorf("routed status: got %d, want %d", got, want)
	}
}
