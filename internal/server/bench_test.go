package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/faults"
	"github.com/gatewise/gatewise/internal/server"
)

// The benchmarks of this file measure a proxied GET of a 13-byte body.
//
// End to end (client -> gateway -> upstream, all on loopback in this
// process): BenchmarkProxyGET, with BenchmarkProxyGETDirect (client ->
// upstream) as the limit and BenchmarkErrorPage for the failure path. Their
// allocs/op count the client's and the upstream's allocations too, since
// the three share the process.
//
// The gateway's own cost: BenchmarkServeHTTP and BenchmarkServeHTTPErrorPage
// call Server.ServeHTTP directly with a reused request and ResponseWriter
// (the harness allocates nothing: see the "harness" sub-benchmark), in
// front of benchCannedUpstream, a real HTTP/1.1 server on loopback that
// allocates nothing per request either. Their allocs/op are the gateway's
// alone: handler chain, access log, metrics, httputil.ReverseProxy and the
// upstream http.Transport.
//
// See docs/performance.md for how to run them and the figures measured.

// benchBody is what the upstreams answer.
const benchBody = "hello, world\n"

// benchParallelism multiplies GOMAXPROCS for the RunParallel variants: the
// client, gateway and upstream share the CPUs, so more requests in flight
// than cores keeps them busy while others wait on loopback.
const benchParallelism = 4

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start as
// "cpu-ns/op": on a shared machine it moves less than ns/op, which is wall
// time and grows when other processes take the CPUs.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

// startBenchUpstream starts an httptest.Server (keep-alive, as net/http
// does by default) answering every request with the 13-byte benchBody.
func startBenchUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, benchBody)
	}))
	tb.Cleanup(up.Close)
	return up
}

// benchConfig is oneTargetConfig without the admin listener, with the JSON
// access log on ("stdout", which the benchmarks point at io.Discard) or off.
func benchConfig(target string, accessLog bool) *config.Config {
	cfg := oneTargetConfig(target)
	cfg.Admin.Address = "off"
	cfg.AccessLog = "off"
	if accessLog {
		cfg.AccessLog = "stdout"
	}
	return cfg
}

// benchLogger is the process log of the benchmarked gateways: JSON, as in
// production, into io.Discard, so that a warning per failure costs what it
// costs for real minus the write.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// newBenchServer builds a gateway for cfg whose access log ("stdout") and
// process log go to io.Discard. It does not start listening; it is shut
// down at the end of the benchmark or test.
func newBenchServer(tb testing.TB, cfg *config.Config) *server.Server {
	tb.Helper()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("config: %v", err)
	}
	srv, err := server.New(cfg, server.Options{Stdout: io.Discard, Logger: benchLogger()})
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

// startBenchGateway starts a gateway for cfg on loopback (see
// newBenchServer) and returns its base URL.
func startBenchGateway(tb testing.TB, cfg *config.Config) string {
	tb.Helper()
	srv := newBenchServer(tb, cfg)
	if err := srv.Start(); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	return "http://" + srv.Addrs()[0].String()
}

// newBenchClient returns a keep-alive client with room for every
// benchmark goroutine's idle connection.
func newBenchClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Minute,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchGet makes one GET with accept as the Accept header (none when
// empty), reads the whole body and checks the status and the body length.
// The body is drained so the connection goes back to the pool.
func benchGet(c *http.Client, url, accept string, wantStatus, wantLen int) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if err != nil {
		return err
	}
	if res.StatusCode != wantStatus || (wantLen >= 0 && n != int64(wantLen)) {
		return fmt.Errorf("GET %s: status %d (Proxy-Status %q), %d body bytes; want %d, %d bytes", url, res.StatusCode, res.Header.Get("Proxy-Status"), n, wantStatus, wantLen)
	}
	return nil
}

// benchGetLoop runs benchGet serially with b.Loop and, as the "parallel"
// sub-benchmark, with b.RunParallel.
func benchGetLoop(b *testing.B, url, accept string, wantStatus, wantLen int) {
	c := newBenchClient(b)
	// One request outside the measure opens the first connection.
	if err := benchGet(c, url, accept, wantStatus, wantLen); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPU(b)
		for b.Loop() {
			if err := benchGet(c, url, accept, wantStatus, wantLen); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		cpu := processCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := benchGet(c, url, accept, wantStatus, wantLen); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCPU(b, cpu)
	})
}

// BenchmarkProxyGET measures a GET through a real gateway on loopback to a
// real upstream, end to end, with the access log off and on (JSON into
// io.Discard). allocs/op include the client's and the upstream's.
func BenchmarkProxyGET(b *testing.B) {
	up := startBenchUpstream(b)
	for _, accessLog := range []bool{false, true} {
		name := "log=off"
		if accessLog {
			name = "log=on"
		}
		b.Run(name, func(b *testing.B) {
			gw := startBenchGateway(b, benchConfig(up.URL, accessLog))
			benchGetLoop(b, gw+"/", "", http.StatusOK, len(benchBody))
		})
	}
}

// BenchmarkProxyGETDirect measures the same GET from the same client
// straight to the upstream: the limit BenchmarkProxyGET can approach.
func BenchmarkProxyGETDirect(b *testing.B) {
	up := startBenchUpstream(b)
	benchGetLoop(b, up.URL+"/", "", http.StatusOK, len(benchBody))
}

// benchAccepts are the Accept headers of the error-page benchmarks: curl's
// (no Accept: the text page), a browser's (the HTML page, with its hashed
// Content-Security-Policy) and an API client's (problem+json).
var benchAccepts = []struct{ name, accept string }{
	{"accept=none", ""},
	{"accept=html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
	{"accept=json", "application/problem+json"},
}

// BenchmarkErrorPage measures a failure storm end to end: every request
// goes to an upstream port where nothing listens (connection refused) and
// is answered with the 502 error page. The warning line per failure is
// formatted (JSON into io.Discard) and the access log is on.
func BenchmarkErrorPage(b *testing.B) {
	dead, err := faults.DeadAddr()
	if err != nil {
		b.Fatal(err)
	}
	gw := startBenchGateway(b, benchConfig("http://"+dead, true))
	for _, a := range benchAccepts {
		b.Run(a.name, func(b *testing.B) {
			benchGetLoop(b, gw+"/", a.accept, http.StatusBadGateway, -1)
		})
	}
}

// benchCannedResponse is benchCannedUpstream's answer: the same status,
// headers and body as startBenchUpstream's.
var benchCannedResponse = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Length: 13\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
	"\r\n" + benchBody)

var benchEndOfHeader = []byte("\r\n\r\n")

// startBenchCannedUpstream starts a minimal HTTP/1.1 server on loopback:
// it answers every request on a connection (keep-alive) with
// benchCannedResponse, and allocates nothing per request, so that an
// in-process benchmark's allocs/op are the gateway's alone. It reads only
// the header section: requests must not have a body. It returns the URL.
func startBenchCannedUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveBenchCanned(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				_ = c.Close()
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

func serveBenchCanned(c net.Conn) {
	buf := make([]byte, 16<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], benchEndOfHeader)
			if i < 0 {
				break
			}
			if _, err := c.Write(benchCannedResponse); err != nil {
				return
			}
			n = copy(buf, buf[i+len(benchEndOfHeader):n])
		}
		if n == len(buf) {
			return // a header section too big for a benchmark
		}
	}
}

// benchWriter is a minimal reusable http.ResponseWriter that discards the
// body. Its header map is cleared, not reallocated, between requests.
type benchWriter struct {
	header http.Header
	status int
	bytes  int64
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += int64(len(p))
	return len(p), nil
}

// benchInProcess serves requests with a handler in-process, reusing the
// request, its header map and the writer, so that it allocates nothing of
// its own per request. Not safe for concurrent use: one per goroutine.
type benchInProcess struct {
	h      http.Handler
	req    *http.Request
	w      *benchWriter
	ua     []string
	accept []string
}

// newBenchInProcess returns a harness for GET / on host example.com from
// 127.0.0.1, with a cancellable context as a server request has (the
// reverse proxy then watches it rather than CloseNotify).
func newBenchInProcess(tb testing.TB, h http.Handler, accept string) *benchInProcess {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: "/"},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
		Host:       "example.com",
		RemoteAddr: "127.0.0.1:54321",
		RequestURI: "/",
	}).WithContext(ctx)
	p := &benchInProcess{h: h, req: req, w: &benchWriter{header: http.Header{}}, ua: []string{"bench/1.0"}}
	if accept != "" {
		p.accept = []string{accept}
	}
	return p
}

// serve resets the request header and the writer and serves one request.
func (p *benchInProcess) serve() {
	clear(p.req.Header)
	p.req.Header["User-Agent"] = p.ua
	if p.accept != nil {
		p.req.Header["Accept"] = p.accept
	}
	clear(p.w.header)
	p.w.status, p.w.bytes = 0, 0
	p.h.ServeHTTP(p.w, p.req)
}

// check reports whether the last response had the status wanted and, when
// wantLen >= 0, that many body bytes.
func (p *benchInProcess) check(wantStatus, wantLen int) error {
	if p.w.status != wantStatus || (wantLen >= 0 && p.w.bytes != int64(wantLen)) {
		return fmt.Errorf("in-process: status %d, %d body bytes; want %d, %d bytes", p.w.status, p.w.bytes, wantStatus, wantLen)
	}
	return nil
}

// benchServeLoop runs h in-process serially with b.Loop and, as the
// "parallel" sub-benchmark, with b.RunParallel (one harness per goroutine).
func benchServeLoop(b *testing.B, h http.Handler, accept string, wantStatus, wantLen int) {
	warm := newBenchInProcess(b, h, accept)
	warm.serve() // opens the first upstream connection
	if err := warm.check(wantStatus, wantLen); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		p := newBenchInProcess(b, h, accept)
		b.ReportAllocs()
		cpu := processCPU(b)
		for b.Loop() {
			p.serve()
			if err := p.check(wantStatus, wantLen); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		cpu := processCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			p := newBenchInProcess(b, h, accept)
			for pb.Next() {
				p.serve()
				if err := p.check(wantStatus, wantLen); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportCPU(b, cpu)
	})
}

// BenchmarkServeHTTP measures the gateway's own cost per request: the
// server's handler called in-process (no client, no listener) in front of
// a real upstream over loopback. With upstream=canned (a server that
// allocates nothing) allocs/op and B/op are the gateway's alone; with
// upstream=httptest they include a net/http upstream's, for comparison with
// BenchmarkProxyGET. "harness" serves a handler that only writes the body
// (without allocating): it shows the harness itself allocates nothing.
func BenchmarkServeHTTP(b *testing.B) {
	b.Run("harness", func(b *testing.B) {
		contentType, body := []string{"text/plain; charset=utf-8"}, []byte(benchBody)
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = contentType
			_, _ = w.Write(body)
		})
		benchServeLoop(b, h, "", http.StatusOK, len(benchBody))
	})
	canned := startBenchCannedUpstream(b)
	for _, accessLog := range []bool{false, true} {
		name := "upstream=canned/log=off"
		if accessLog {
			name = "upstream=canned/log=on"
		}
		b.Run(name, func(b *testing.B) {
			srv := newBenchServer(b, benchConfig(canned, accessLog))
			benchServeLoop(b, srv, "", http.StatusOK, len(benchBody))
		})
	}
	// The cost of the admission checks on a healthy upstream: the default
	// (adaptive concurrency limit, request limits, memory guard) against
	// no concurrency limit, and with a rate limit on top.
	b.Run("upstream=canned/log=off/limits=none", func(b *testing.B) {
		cfg := benchConfig(canned, false)
		off := false
		cfg.Pools["app"].Concurrency.Adaptive = &off
		srv := newBenchServer(b, cfg)
		benchServeLoop(b, srv, "", http.StatusOK, len(benchBody))
	})
	b.Run("upstream=canned/log=off/limits=rate", func(b *testing.B) {
		cfg := benchConfig(canned, false)
		cfg.RateLimit = &config.RateLimit{Rate: "1000000000/s", Burst: 1_000_000, Key: "client_ip"}
		srv := newBenchServer(b, cfg)
		benchServeLoop(b, srv, "", http.StatusOK, len(benchBody))
	})
	b.Run("upstream=httptest/log=on", func(b *testing.B) {
		up := startBenchUpstream(b)
		srv := newBenchServer(b, benchConfig(up.URL, true))
		benchServeLoop(b, srv, "", http.StatusOK, len(benchBody))
	})
}

// BenchmarkServeHTTPErrorPage is BenchmarkErrorPage in-process: the
// gateway's own cost of a failed attempt (connection refused) and its 502
// page, warning line and access-log line.
func BenchmarkServeHTTPErrorPage(b *testing.B) {
	dead, err := faults.DeadAddr()
	if err != nil {
		b.Fatal(err)
	}
	srv := newBenchServer(b, benchConfig("http://"+dead, true))
	for _, a := range benchAccepts {
		b.Run(a.name, func(b *testing.B) {
			benchServeLoop(b, srv, a.accept, http.StatusBadGateway, -1)
		})
	}
}
