package upstream

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// guard bounds every wait of these tests: reaching it is a failure (a hang
// turned into an error), never a timing assertion.
const guard = 10 * time.Second

// rawServer is a TCP server on loopback whose connections are served by a
// hand-written function, for the responses net/http would never send.
type rawServer struct {
	addr    string
	accepts atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
}

func newRawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawServer) url(path string) string { return "http://" + s.addr + path }

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

// eachRequest serves every request on a connection with serve, until a
// read fails or serve returns false.
func eachRequest(serve func(c net.Conn, br *bufio.Reader, req *http.Request) bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequest(br)
			if err != nil || !serve(c, br, req) {
				return
			}
		}
	}
}

// respondEach answers every request on a connection with resp.
func respondEach(resp string) func(net.Conn, *bufio.Reader) {
	return eachRequest(func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool {
		_, err := io.WriteString(c, resp)
		return err == nil
	})
}

// hang waits until the client or the test's end closes the connection.
func hang(c net.Conn, br *bufio.Reader) { _, _ = io.Copy(io.Discard, br) }

// httpServer starts a net/http server on loopback and counts the
// connections it accepted.
func httpServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// newTestTransport returns a Transport closed at the test's end.
func newTestTransport(t *testing.T, o TransportOptions) *Transport {
	t.Helper()
	tr := NewTransport(o)
	t.Cleanup(tr.Close)
	return tr
}

// phaseTrace follows a round trip with the hooks the proxy uses (see
// internal/proxy/trace.go) to learn how far it got, and records what the
// other hooks saw.
type phaseTrace struct {
	mu        sync.Mutex
	phase     cause.Phase
	reused    []bool
	got1xx    []int
	links     []string
	tlsDone   int
	tlsErr    error
	on1xx     func(code int) error
	firstByte int
}

func (p *phaseTrace) advance(ph cause.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ph > p.phase {
		p.phase = ph
	}
}

func (p *phaseTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { p.advance(cause.PhaseDNS) },
		ConnectStart:      func(string, string) { p.advance(cause.PhaseConnect) },
		TLSHandshakeStart: func() { p.advance(cause.PhaseTLS) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			p.mu.Lock()
			p.tlsDone++
			p.tlsErr = err
			p.mu.Unlock()
		},
		GotConn: func(info httptrace.GotConnInfo) {
			p.advance(cause.PhaseConnected)
			p.mu.Lock()
			p.reused = append(p.reused, info.Reused)
			p.mu.Unlock()
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				p.advance(cause.PhaseRequestWritten)
			}
		},
		GotFirstResponseByte: func() {
			p.advance(cause.PhaseFirstByte)
			p.mu.Lock()
			p.firstByte++
			p.mu.Unlock()
		},
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			p.mu.Lock()
			p.got1xx = append(p.got1xx, code)
			p.links = append(p.links, h.Get("Link"))
			on := p.on1xx
			p.mu.Unlock()
			if on != nil {
				return on(code)
			}
			return nil
		},
	})
}

// state returns the phase reached and whether the connections handed over
// were reused.
func (p *phaseTrace) state() (cause.Phase, []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase, slices.Clone(p.reused)
}

// classify classifies err as the proxy does, from the phase reached.
func (p *phaseTrace) classify(err error) *cause.Error {
	ph, _ := p.state()
	return cause.Classify(err, cause.Attempt{Phase: ph})
}

// roundTrip makes a request with method to u through tr, traced by p
// (when not nil), and returns the response.
func roundTrip(tr *Transport, p *phaseTrace, method, u string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	if p != nil {
		req = req.WithContext(p.context(req.Context()))
	}
	return tr.RoundTrip(req)
}

// fetch makes a GET and returns the response with its body read and
// closed; any error fails the test.
func fetch(t *testing.T, tr *Transport, p *phaseTrace, u string) (*http.Response, string) {
	t.Helper()
	res, err := roundTrip(tr, p, http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", u, err)
	}
	_ = res.Body.Close()
	return res, string(b)
}

// wait receives from ch, failing the test after guard.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("gave up waiting for %s", what)
		var zero T
		return zero
	}
}

func TestTransportRoundTrips(t *testing.T) {
	t.Parallel()
	srv, conns := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("X-Kind", "length")
			_, _ = io.WriteString(w, "hello world")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "hello ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "world")
			w.Header().Set("X-Sum", "42")
		case "/head":
			w.Header().Set("Content-Length", "11")
			_, _ = io.WriteString(w, "hello world")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	tests := []struct {
		desc, method, path string
		status             int
		body               string
		length             int64
		chunked            bool
	}{
		{"a length", http.MethodGet, "/length", 200, "hello world", 11, false},
		{"chunked with a trailer", http.MethodGet, "/chunked", 200, "hello world", -1, true},
		{"HEAD keeps the length of the GET", http.MethodHead, "/head", 200, "", 11, false},
		{"204", http.MethodGet, "/204", 204, "", 0, false},
		{"304", http.MethodGet, "/304", 304, "", 0, false},
		{"a length again, on the same connection", http.MethodGet, "/length", 200, "hello world", 11, false},
	}
	for i, tt := range tests {
		p := &phaseTrace{}
		res, err := roundTrip(tr, p, tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		if tt.chunked && res.Trailer.Get("X-Sum") != "" {
			t.Errorf("%s: trailer %q before the body's end", tt.desc, res.Trailer)
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil {
			t.Fatalf("%s: body: %v", tt.desc, err)
		}
		if res.StatusCode != tt.status || string(b) != tt.body || res.ContentLength != tt.length {
			t.Errorf("%s: %d %q length %d, want %d %q length %d", tt.desc, res.StatusCode, b, res.ContentLength, tt.status, tt.body, tt.length)
		}
		if got := len(res.TransferEncoding) > 0; got != tt.chunked {
			t.Errorf("%s: chunked %v, want %v", tt.desc, got, tt.chunked)
		}
		if tt.chunked && res.Trailer.Get("X-Sum") != "42" {
			t.Errorf("%s: trailer %q after the body's end, want X-Sum: 42", tt.desc, res.Trailer)
		}
		if res.Request == nil || res.Request.URL.Path != tt.path {
			t.Errorf("%s: Request not set", tt.desc)
		}
		if _, reused := p.state(); len(reused) != 1 || reused[0] != (i > 0) {
			t.Errorf("%s: GotConn reused %v, want [%v]", tt.desc, reused, i > 0)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for %d requests, want 1", n, len(tests))
	}
}

func TestTransportUntilClose(t *testing.T) {
	t.Parallel()
	for _, resp := range []string{
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the close",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the close",
	} {
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err == nil {
				_, _ = io.WriteString(c, resp)
			}
		})
		tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
		for range 2 {
			res, body := fetch(t, tr, nil, srv.url("/"))
			if body != "read until the close" || res.ContentLength != -1 {
				t.Errorf("%.8s: body %q length %d, want the whole body and -1", resp, body, res.ContentLength)
			}
		}
		if n := srv.accepts.Load(); n != 2 {
			t.Errorf("%.8s: %d connections for 2 requests, want 2", resp, n)
		}
	}
}

func TestTransportInterimResponses(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, respondEach("HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	p := &phaseTrace{}
	res, body := fetch(t, tr, p, srv.url("/"))
	if res.StatusCode != 200 || body != "ok" {
		t.Errorf("got %d %q, want 200 ok", res.StatusCode, body)
	}
	if !slices.Equal(p.got1xx, []int{100, 103}) || p.links[1] != "</style.css>; rel=preload" {
		t.Errorf("Got1xxResponse saw %v %q, want [100 103] with the Link", p.got1xx, p.links)
	}
	if p.firstByte != 1 {
		t.Errorf("GotFirstResponseByte called %d times, want 1", p.firstByte)
	}

	// A hook's error ends the round trip.
	errStop := errors.New("stop at the interim response")
	p = &phaseTrace{on1xx: func(int) error { return errStop }}
	if _, err := roundTrip(tr, p, http.MethodGet, srv.url("/"), nil); !errors.Is(err, errStop) {
		t.Errorf("err = %v, want the hook's", err)
	}
}

// TestTransportInterimResponsesLimited sends interim responses without
// end: they count against the header limit with the final response.
func TestTransportInterimResponsesLimited(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		w := bufio.NewWriter(c)
		for range 2000 {
			_, _ = w.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
		if w.Flush() == nil {
			hang(c, br)
		}
	})
	// The header timeout only turns the old endless wait into a failure.
	tr := newTestTransport(t, TransportOptions{MaxResponseHeaderBytes: 4096, ResponseHeaderTimeout: guard})
	_, err := roundTrip(tr, nil, http.MethodGet, srv.url("/"), nil)
	var ce *cause.Error
	if !errors.As(err, &ce) || ce.ID != cause.HTTPResponseHeaderSectionSize {
		t.Fatalf("err = %v, want %s", err, cause.HTTPResponseHeaderSectionSize)
	}
	// With a hook that takes them (the proxy relays 103 Early Hints),
	// the first few get a fresh limit each, and then they count again.
	p := &phaseTrace{}
	_, err = roundTrip(tr, p, http.MethodGet, srv.url("/"), nil)
	if !errors.As(err, &ce) || ce.ID != cause.HTTPResponseHeaderSectionSize {
		t.Fatalf("with a hook: err = %v, want %s", err, cause.HTTPResponseHeaderSectionSize)
	}
	if n := len(p.got1xx); n <= maxRelayedInterims {
		t.Errorf("the hook saw %d interim responses, want more than %d", n, maxRelayedInterims)
	}
}

func TestTransportUpgrade(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "echo" {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		// The first bytes of the new protocol in the same write.
		if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello"); err != nil {
			return
		}
		_, _ = io.Copy(c, br)
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	req, _ := http.NewRequest(http.MethodGet, srv.url("/ws"), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("the body of a 101 is a %T, not an io.ReadWriteCloser", res.Body)
	}
	defer rwc.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("first bytes %q, %v; want hello", buf, err)
	}
	for _, msg := range []string{"ping", "a longer message"} {
		if _, err := io.WriteString(rwc, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v; want %q", buf, err, msg)
		}
	}
}

// captured is a request as the upstream read it.
type captured struct {
	req  *http.Request
	body []byte
	err  error
}

// captureServer answers every request with an empty 200 and sends what it
// read on the channel.
func captureServer(t *testing.T) (*rawServer, chan captured) {
	ch := make(chan captured, 16)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, body, err := readRequest(br)
			if errors.Is(err, io.EOF) && req == nil {
				return
			}
			ch <- captured{req, body, err}
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
		}
	})
	return srv, ch
}

// closeTracker is a request body that records its Close.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestTransportWritesRequest(t *testing.T) {
	t.Parallel()
	srv, ch := captureServer(t)
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	send := func(t *testing.T, req *http.Request) captured {
		t.Helper()
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return wait(t, ch, "the request")
	}

	t.Run("host and headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.url("/p?q=1"), nil)
		req.Host = "site.example"
		req.Header["X-Multi"] = []string{"a", "b"}
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Te", "trailers")
		req.Header.Set("X-Hop", "1")
		req.Header["User-Agent"] = []string{""}
		got := send(t, req)
		if got.req.Host != "site.example" || got.req.RequestURI != "/p?q=1" || got.req.Method != "GET" {
			t.Errorf("request %s %s Host %q, want GET /p?q=1 Host site.example", got.req.Method, got.req.RequestURI, got.req.Host)
		}
		h := got.req.Header
		if !slices.Equal(h["X-Multi"], []string{"a", "b"}) || h.Get("Connection") != "keep-alive, X-Hop" ||
			h.Get("Keep-Alive") != "timeout=5" || h.Get("Te") != "trailers" || h.Get("X-Hop") != "1" {
			t.Errorf("headers %q, want them as given", h)
		}
		if _, ok := h["User-Agent"]; ok {
			t.Errorf("User-Agent %q sent for an empty value", h["User-Agent"])
		}
		if _, ok := h["Content-Length"]; ok {
			t.Errorf("Content-Length %q on a GET without a body", h["Content-Length"])
		}
	})
	t.Run("an empty method is GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.url("/"), nil)
		req.Method = ""
		if got := send(t, req); got.req.Method != http.MethodGet {
			t.Errorf("method %q, want GET", got.req.Method)
		}
	})
	t.Run("host from the URL", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.url("/"), nil)
		if got := send(t, req); got.req.Host != srv.addr {
			t.Errorf("Host %q, want %q", got.req.Host, srv.addr)
		}
	})
	t.Run("no header injection", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.url("/"), nil)
		req.Header["X-Evil"] = []string{"a\r\nInjected: yes", "b\nInjected: yes", "c\x00"}
		req.Header["Bad Name"] = []string{"x"}
		req.Header["X-Ok"] = []string{"fine"}
		got := send(t, req)
		if h := got.req.Header; h.Get("Injected") != "" || h["X-Evil"] != nil || h["Bad Name"] != nil || h.Get("X-Ok") != "fine" {
			t.Errorf("headers %q, want only X-Ok of these", h)
		}
	})
	t.Run("a body of known length", func(t *testing.T) {
		body := &closeTracker{Reader: strings.NewReader("hello")}
		req, _ := http.NewRequest(http.MethodPost, srv.url("/"), body)
		req.ContentLength = 5
		got := send(t, req)
		if got.req.ContentLength != 5 || got.req.TransferEncoding != nil || string(got.body) != "hello" {
			t.Errorf("length %d coding %q body %q, want 5, none, hello", got.req.ContentLength, got.req.TransferEncoding, got.body)
		}
		if !body.closed.Load() {
			t.Error("the request body was not closed")
		}
	})
	t.Run("a body of unknown length is chunked, with trailers", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", 8<<10) // several chunks
		req, _ := http.NewRequest(http.MethodPut, srv.url("/"), io.NopCloser(strings.NewReader(big)))
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Sum": {"abc"}, "Bad Name": {"x"}, "X-Evil": {"a\r\nInjected: yes"}}
		got := send(t, req)
		if !slices.Equal(got.req.TransferEncoding, []string{"chunked"}) || string(got.body) != big {
			t.Fatalf("coding %q, %d bytes of body, want chunked and %d", got.req.TransferEncoding, len(got.body), len(big))
		}
		tr := got.req.Trailer
		if _, bad := tr["Bad Name"]; bad || tr.Get("X-Sum") != "abc" || tr.Get("Injected") != "" || tr.Get("X-Evil") != "" {
			t.Errorf("trailer %q, want X-Sum: abc and no other value", tr)
		}
	})
	t.Run("POST without a body has a zero length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.url("/"), nil)
		if got := send(t, req); got.req.Header.Get("Content-Length") != "0" {
			t.Errorf("Content-Length %q, want 0", got.req.Header.Get("Content-Length"))
		}
	})
	t.Run("Close asks for the connection's close", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.url("/"), nil)
		req.Close = true
		if got := send(t, req); !got.req.Close {
			t.Errorf("Connection %q, want close", got.req.Header["Connection"])
		}
	})
}

// TestTransportRoundTripTarget checks that RoundTripTarget sends the
// request to the target it is given, not to its URL's host, with the URL's
// path and query, the request's Host (the target when it has none), and
// the request itself as the response's Request, on a reused connection.
func TestTransportRoundTripTarget(t *testing.T) {
	t.Parallel()
	srv, ch := captureServer(t)
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	tests := []struct {
		desc, host, wantHost string
		now                  time.Time
	}{
		{"the request's Host", "site.example", "site.example", time.Time{}},
		{"no Host: the target's", "", srv.addr, time.Now()},
	}
	for _, tt := range tests {
		// Port 9 on a documentation address: nothing must go there.
		req, err := http.NewRequest(http.MethodGet, "http://192.0.2.1:9/p?q=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		res, err := tr.RoundTripTarget(req, "http", srv.addr, tt.now, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		got := wait(t, ch, "the request")
		if got.req.RequestURI != "/p?q=1" || got.req.Host != tt.wantHost {
			t.Errorf("%s: got %s Host %q, want /p?q=1 Host %q", tt.desc, got.req.RequestURI, got.req.Host, tt.wantHost)
		}
		if res.Request != req {
			t.Errorf("%s: the response's Request is not the request sent", tt.desc)
		}
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections for %d requests, want 1", n, len(tests))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://192.0.2.1:9/", nil)
	if _, err := tr.RoundTripTarget(req, "http", "", time.Time{}, nil); !errors.Is(err, errNoTargetHost) {
		t.Errorf("no target host: got %v, want errNoTargetHost", err)
	}
}

// fieldsObserver takes the final response's fields raw and the interim
// responses as maps.
type fieldsObserver struct {
	fields  *Fields
	interim []http.Header
}

func (o *fieldsObserver) DNSStart()              {}
func (o *fieldsObserver) DNSDone()               {}
func (o *fieldsObserver) ConnectStart()          {}
func (o *fieldsObserver) ConnectDone(error)      {}
func (o *fieldsObserver) TLSHandshakeStart()     {}
func (o *fieldsObserver) TLSHandshakeDone(error) {}
func (o *fieldsObserver) GotConn(net.Conn, bool) {}
func (o *fieldsObserver) WroteRequest()          {}
func (o *fieldsObserver) GotFirstResponseByte()  {}
func (o *fieldsObserver) GotFields(f *Fields)    { o.fields = f }
func (o *fieldsObserver) Got1xxResponse(code int, h http.Header) error {
	o.interim = append(o.interim, h)
	return nil
}

// addingObserver adds header fields to the request (FieldAdder).
type addingObserver struct {
	fieldsObserver
	added []string
}

func (o *addingObserver) AddedFields() []string { return o.added }

// TestTransportAddedFields: a FieldAdder's fields are written after the
// header map's, in their order, and those that would break the head (a
// name that is not a token, a value with CR, LF or NUL) or that the
// transport writes itself (Host, the framing) are left out, as the map's
// are.
func TestTransportAddedFields(t *testing.T) {
	t.Parallel()
	srv, ch := captureServer(t)
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	req, err := http.NewRequest(http.MethodGet, "http://192.0.2.1:9/p", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Via"] = []string{"1.0 earlier"}
	o := &addingObserver{added: []string{
		"X-Forwarded-For", "127.0.0.1",
		"Via", "1.1 gatewise",
		"Bad Name", "x",
		"X-Evil", "a\r\nInjected: yes",
		"X-Nul", "a\x00",
		"Host", "other.example", // the transport writes the request's own
		"Trailer", "X-Late",
		"X-Odd", // a name without its value: ignored
	}}
	res, err := tr.RoundTripTarget(req, "http", srv.addr, time.Time{}, o)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	sent := wait(t, ch, "the request").req
	got := sent.Header
	if sent.Host != "192.0.2.1:9" {
		t.Errorf("Host %q, want the request's", sent.Host)
	}
	if v := got["Via"]; !slices.Equal(v, []string{"1.0 earlier", "1.1 gatewise"}) {
		t.Errorf("Via %q, want the map's value, then the added one", v)
	}
	if v := got["X-Forwarded-For"]; !slices.Equal(v, []string{"127.0.0.1"}) {
		t.Errorf("X-Forwarded-For %q, want [127.0.0.1]", v)
	}
	for _, k := range []string{"Bad Name", "X-Evil", "Injected", "X-Nul", "X-Odd", "Trailer"} {
		if v, ok := got[k]; ok {
			t.Errorf("%s %q sent, want it left out", k, v)
		}
	}
	if len(req.Header) != 1 {
		t.Errorf("the request's header map changed: %q", req.Header)
	}
}

// timedObserver takes the first byte's time from the transport
// (TimedObserver) and counts the first-byte events of each kind.
type timedObserver struct {
	fieldsObserver
	untimed int
	timed   []time.Time
}

func (o *timedObserver) GotFirstResponseByte()              { o.untimed++ }
func (o *timedObserver) GotFirstResponseByteAt(t time.Time) { o.timed = append(o.timed, t) }

// TestTransportTimedObserver: with the system clock, a TimedObserver gets
// the transport's reading at the first byte, and the connection's idle
// time starts at that reading when the body came with the head; after an
// interim answer, or on another clock, it does not.
func TestTransportTimedObserver(t *testing.T) {
	t.Parallel()
	const interimPause = 5 * time.Millisecond
	srv := newRawServer(t, eachRequest(func(c net.Conn, _ *bufio.Reader, req *http.Request) bool {
		if req.URL.Path == "/interim" {
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
			time.Sleep(interimPause)
		}
		_, err := io.WriteString(c, ok2)
		return err == nil
	}))
	get := func(tr *Transport, path string) (*timedObserver, time.Time, time.Time) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+srv.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := &timedObserver{}
		before := time.Now()
		res, err := tr.RoundTripTarget(req, "http", srv.addr, time.Time{}, o)
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return o, before, after
	}
	idleSince := func(tr *Transport) time.Time {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, l := range tr.idle {
			if len(l.conns) == 1 {
				return l.conns[0].idleSince
			}
		}
		t.Fatal("no pooled connection")
		return time.Time{}
	}

	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 1})
	o, before, after := get(tr, "/")
	if o.untimed != 0 || len(o.timed) != 1 || o.timed[0].Before(before) || o.timed[0].After(after) {
		t.Fatalf("system clock: untimed %d, timed %v; want one reading between %v and %v", o.untimed, o.timed, before, after)
	}
	if got := idleSince(tr); !got.Equal(o.timed[0]) {
		t.Errorf("idle since %v, want the first byte's reading %v", got, o.timed[0])
	}
	o, _, _ = get(tr, "/interim")
	if len(o.timed) != 1 {
		t.Fatalf("after an interim answer: %d timed first bytes, want 1", len(o.timed))
	}
	if got := idleSince(tr); got.Sub(o.timed[0]) < interimPause {
		t.Errorf("after an interim answer: idle since %v, want a reading taken at the end, %v or more after the first byte %v", got, interimPause, o.timed[0])
	}

	clk := newClock()
	other := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 1, Now: clk.Now})
	if o, _, _ := get(other, "/"); o.untimed != 1 || len(o.timed) != 0 {
		t.Errorf("another clock: untimed %d, timed %d; want the observer to read its own", o.untimed, len(o.timed))
	}
	if got := idleSince(other); !got.Equal(clk.Now()) {
		t.Errorf("another clock: idle since %v, want its reading %v", got, clk.Now())
	}
}

// TestTransportFields checks a round trip for a FieldsObserver: the
// response has no header map, its fields come in order with their names
// canonical, an interim response still comes as a map, the framing is set
// (a chunked body is read whole), and the connection is reused after.
func TestTransportFields(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, respondEach("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nX-App: v\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n0\r\n\r\n"))
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: guard})
	for i := range 2 {
		o := &fieldsObserver{}
		req, err := http.NewRequest(http.MethodGet, srv.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := tr.RoundTripTarget(req, "http", srv.addr, time.Time{}, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header != nil || o.fields == nil {
			t.Fatalf("round trip %d: header map %v, fields %v", i, res.Header, o.fields)
		}
		var got []string
		for j := range o.fields.Len() {
			if !o.fields.framing(j) {
				got = append(got, string(o.fields.Name(j))+"="+string(o.fields.Value(j)))
			}
		}
		if want := []string{"Set-Cookie=a=1", "X-App=v", "Set-Cookie=b=2"}; !slices.Equal(got, want) {
			t.Errorf("round trip %d: fields %q, want %q", i, got, want)
		}
		if len(o.interim) != 1 || o.interim[0].Get("Link") != "</a.css>; rel=preload" {
			t.Errorf("round trip %d: interim responses %v", i, o.interim)
		}
		if !slices.Equal(res.TransferEncoding, []string{"chunked"}) || res.ContentLength != -1 {
			t.Errorf("round trip %d: framing %v %d", i, res.TransferEncoding, res.ContentLength)
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil || string(b) != "hello" {
			t.Fatalf("round trip %d: body %q, %v", i, b, err)
		}
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestTransportRefusesBadRequests(t *testing.T) {
	t.Parallel()
	got := make(chan int, 16)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		n, _ := io.Copy(io.Discard, br)
		got <- int(n)
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	tests := []struct {
		desc string
		mod  func(r *http.Request)
	}{
		{"a space in the method", func(r *http.Request) { r.Method = "GE T" }},
		{"a space in the query", func(r *http.Request) { r.URL.RawQuery = "a=b c" }},
		{"a control byte in the target", func(r *http.Request) { r.URL.Opaque = "/a\x01b" }},
		{"a line break in the Host", func(r *http.Request) { r.Host = "a\r\nX-Injected: 1" }},
		{"a tab in the Host", func(r *http.Request) { r.Host = "a\tb" }},
		{"NUL in the Host", func(r *http.Request) { r.Host = "a\x00b" }},
	}
	for _, tt := range tests {
		body := &closeTracker{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPost, srv.url("/"), body)
		tt.mod(req)
		if res, err := tr.RoundTrip(req); err == nil {
			_ = res.Body.Close()
			t.Errorf("%s: sent", tt.desc)
		}
		if n := wait(t, got, "the connection's close"); n != 0 {
			t.Errorf("%s: %d bytes reached the upstream, want 0", tt.desc, n)
		}
		if !body.closed.Load() {
			t.Errorf("%s: the request body was not closed", tt.desc)
		}
	}
}

func TestTransportShortRequestBody(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, hang)
	tr := newTestTransport(t, TransportOptions{})
	req, _ := http.NewRequest(http.MethodPost, srv.url("/"), io.NopCloser(strings.NewReader("abc")))
	req.ContentLength = 10
	if _, err := tr.RoundTrip(req); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestTransportResponseBeforeBodyFailed: the request's body failed after
// the upstream had answered (413 to a large upload, say): the answer is
// returned and reads whole, however late its body comes.
func TestTransportResponseBeforeBodyFailed(t *testing.T) {
	t.Parallel()
	answered, sendBody := make(chan struct{}), make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"); err != nil {
			return
		}
		close(answered)
		select {
		case <-sendBody:
		case <-time.After(guard):
		}
		_, _ = io.WriteString(c, "0123456789")
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	errBody := errors.New("the visitor's upload failed")
	req, _ := http.NewRequest(http.MethodPost, srv.url("/"), io.NopCloser(readerFunc(func([]byte) (int, error) {
		wait(t, answered, "the answer")
		return 0, errBody
	})))
	req.ContentLength = -1
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 413 {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
	// Past the 50 ms the transport gives a waiting response to show up:
	// that wait must not bound the body's read.
	time.Sleep(100 * time.Millisecond)
	close(sendBody)
	b, err := io.ReadAll(res.Body)
	if err != nil || string(b) != "0123456789" {
		t.Errorf("body %q, %v; want it whole", b, err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestTransportReusesConnections(t *testing.T) {
	t.Parallel()
	srv, conns := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path)
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	for i := range 5 {
		p := &phaseTrace{}
		path := fmt.Sprintf("/%d", i)
		if _, body := fetch(t, tr, p, srv.URL+path); body != path {
			t.Fatalf("body %q, want %q", body, path)
		}
		if _, reused := p.state(); !slices.Equal(reused, []bool{i > 0}) {
			t.Errorf("request %d: reused %v, want [%v]", i, reused, i > 0)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests, want 1", n)
	}
}

func TestTransportDoesNotReuse(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 256<<10)
	tests := []struct {
		desc    string
		handler http.HandlerFunc
		read    func(t *testing.T, body io.ReadCloser)
		maxIdle int
		want    int64 // connections for 3 requests
	}{
		{desc: "Connection: close", maxIdle: 4, want: 3,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				_, _ = io.WriteString(w, "bye")
			}},
		{desc: "a body closed before its end", maxIdle: 4, want: 3,
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) },
			read: func(t *testing.T, body io.ReadCloser) {
				if _, err := io.ReadFull(body, make([]byte, 10)); err != nil {
					t.Fatal(err)
				}
				_ = body.Close()
			}},
		{desc: "a body read to its end and not closed", maxIdle: 4, want: 1,
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) },
			read: func(t *testing.T, body io.ReadCloser) {
				if b, err := io.ReadAll(body); err != nil || len(b) != len(big) {
					t.Fatalf("%d bytes, %v", len(b), err)
				}
			}},
		{desc: "MaxIdleConnsPerHost 0 keeps none", maxIdle: 0, want: 3,
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			srv, conns := httpServer(t, tt.handler)
			tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: tt.maxIdle})
			for range 3 {
				res, err := roundTrip(tr, nil, http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.read != nil {
					tt.read(t, res.Body)
				} else {
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
				}
			}
			if n := conns.Load(); n != tt.want {
				t.Errorf("%d connections for 3 requests, want %d", n, tt.want)
			}
		})
	}
}

// TestTransportMaxIdleConnsPerHost checks the idle pool's bounds: the
// connections of a burst past MaxIdleConnsPerHost are kept for
// SurplusIdle, so a steady load above the count reuses them rather than
// closing and dialling one per request; the sweep then closes the surplus
// down to the count; and past SurplusFactor times the count more, a
// returning connection is closed at once.
func TestTransportMaxIdleConnsPerHost(t *testing.T) {
	t.Parallel()
	srv, conns := httpServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	clk := newClock()
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 2, Now: clk.Now})
	// n at once (no body read yet: n connections), then done.
	batch := func(n int) {
		t.Helper()
		var res []*http.Response
		for range n {
			r, err := roundTrip(tr, nil, http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, r)
		}
		for _, r := range res {
			_, _ = io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
		}
	}
	idle := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.nIdle
	}
	batch(3)
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 requests at once, want 3", n)
	}
	for range 5 {
		batch(3)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections after five more batches of 3 with 2 kept idle, want the 3 reused", n)
	}
	clk.Add(SurplusIdle - time.Millisecond)
	tr.sweepIdle()
	if n := idle(); n != 3 {
		t.Errorf("%d idle just before SurplusIdle, want 3", n)
	}
	clk.Add(time.Millisecond)
	tr.sweepIdle()
	if n := idle(); n != 2 {
		t.Errorf("%d idle after SurplusIdle, want the count, 2", n)
	}
	batch(3)
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections after the surplus was closed, want 4 (2 kept idle, 1 dialled)", n)
	}

	ceiling := 2 * (1 + SurplusFactor)
	batch(ceiling + 3)
	if n := idle(); n != ceiling {
		t.Errorf("%d idle after %d at once, want the ceiling, %d", n, ceiling+3, ceiling)
	}
}

// closeWatch is a raw server answering with keep-alive responses that
// reports each connection's close by the client.
func closeWatch(t *testing.T) (*rawServer, chan struct{}) {
	closed := make(chan struct{}, 16)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		respondEach("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(c, br)
		closed <- struct{}{}
	})
	return srv, closed
}

func TestTransportIdleTimeoutSweep(t *testing.T) {
	t.Parallel()
	srv, closed := closeWatch(t)
	clk := newClock()
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Second, Now: clk.Now})
	fetch(t, tr, nil, srv.url("/"))
	clk.Add(2 * time.Second)
	// No request: the sweep alone closes the expired connection.
	wait(t, closed, "the sweep to close the idle connection")
	fetch(t, tr, nil, srv.url("/"))
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestTransportIdleTimeoutAtReuse(t *testing.T) {
	t.Parallel()
	srv, _ := closeWatch(t)
	clk := newClock()
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Second, Now: clk.Now})
	fetch(t, tr, nil, srv.url("/"))
	fetch(t, tr, nil, srv.url("/"))
	clk.Add(2 * time.Second)
	p := &phaseTrace{}
	fetch(t, tr, p, srv.url("/"))
	if _, reused := p.state(); !slices.Equal(reused, []bool{false}) {
		t.Errorf("reused %v after the idle timeout, want a new connection", reused)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestTransportDeadlinesUseSystemClock: an injected clock (here months
// behind the system's) ages idle connections but sets no socket deadline.
func TestTransportDeadlinesUseSystemClock(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, respondEach("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	clk := &clock{now: time.Now().Add(-90 * 24 * time.Hour)}
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: guard, Now: clk.Now})
	for range 2 {
		if _, body := fetch(t, tr, nil, srv.url("/")); body != "ok" {
			t.Errorf("body %q", body)
		}
	}
}

// TestTransportHeaderDeadlineKept checks the response header timeout's
// deadline, which stays set on a connection after an answer that came
// whole with its head: a connection idle past it is set again before its
// next request, a body slower than the timeout is not cut, and a reused
// connection whose upstream does not answer still times out.
func TestTransportHeaderDeadlineKept(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	srv := newRawServer(t, eachRequest(func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
		switch req.URL.Path {
		case "/hang":
			hang(c, br)
			return false
		case "/slow-body":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
			time.Sleep(3 * timeout)
			_, _ = io.WriteString(c, "cd")
		default:
			_, _ = io.WriteString(c, ok2)
		}
		return true
	}))
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: timeout})
	if _, body := fetch(t, tr, nil, srv.url("/")); body != "ok" {
		t.Fatalf("body %q", body)
	}
	// Idle past the deadline the first answer left set.
	time.Sleep(3 * timeout)
	p := &phaseTrace{}
	if _, body := fetch(t, tr, p, srv.url("/")); body != "ok" {
		t.Fatalf("after idling: body %q", body)
	}
	if _, reused := p.state(); !slices.Equal(reused, []bool{true}) {
		t.Fatalf("after idling: reused %v, want the same connection", reused)
	}
	if _, body := fetch(t, tr, nil, srv.url("/slow-body")); body != "abcd" {
		t.Fatalf("slow body %q", body)
	}
	p = &phaseTrace{}
	res, err := roundTrip(tr, p, http.MethodGet, srv.url("/hang"), nil)
	if err == nil {
		_ = res.Body.Close()
		t.Fatal("no error from an upstream that never answers")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, not a net.Error timeout", err)
	}
	if _, reused := p.state(); !slices.Equal(reused, []bool{true}) {
		t.Errorf("hang: reused %v, want the same connection", reused)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestTransportCloseIdleConnections(t *testing.T) {
	t.Parallel()
	srv, closed := closeWatch(t)
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	fetch(t, tr, nil, srv.url("/"))
	tr.CloseIdleConnections()
	wait(t, closed, "the idle connection's close")
	fetch(t, tr, nil, srv.url("/"))
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestTransportReturnAfterCloseIdle: a connection carrying a request while
// CloseIdleConnections empties the pool (or the sweep drops its target's
// empty list) goes back into the pool when its answer ends, and is reused
// and closed from there like any other.
func TestTransportReturnAfterCloseIdle(t *testing.T) {
	t.Parallel()
	release := make(chan struct{}, 4)
	srv := newRawServer(t, eachRequest(func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool {
		// The head and one byte, the rest when released: the round trip
		// returns with the connection still busy.
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no"); err != nil {
			return false
		}
		select {
		case <-release:
		case <-time.After(guard):
			return false
		}
		_, err := io.WriteString(c, "k")
		return err == nil
	}))
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	for i, emptied := range []func(){tr.CloseIdleConnections, tr.sweepIdle} {
		res, err := roundTrip(tr, nil, http.MethodGet, srv.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		emptied()
		release <- struct{}{}
		if b, err := io.ReadAll(res.Body); err != nil || string(b) != "ok" {
			t.Fatalf("case %d: body %q, %v", i, b, err)
		}
		_ = res.Body.Close()
		if idle, _ := poolState(tr); idle != 1 {
			t.Fatalf("case %d: %d idle connections after the answer, want 1", i, idle)
		}
	}
	release <- struct{}{}
	fetch(t, tr, nil, srv.url("/"))
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want the one reused", n)
	}
}

func TestTransportClose(t *testing.T) {
	t.Parallel()
	srv, closed := closeWatch(t)
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	busy, err := roundTrip(tr, nil, http.MethodGet, srv.url("/busy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, tr, nil, srv.url("/idle"))
	tr.Close()
	wait(t, closed, "the idle connection's close")
	// The busy connection ends with its body, and is not kept.
	if b, err := io.ReadAll(busy.Body); err != nil || string(b) != "ok" {
		t.Fatalf("body after Close: %q, %v", b, err)
	}
	wait(t, closed, "the busy connection's close")
	if _, err := roundTrip(tr, nil, http.MethodGet, srv.url("/"), nil); !errors.Is(err, errTransportClosed) {
		t.Errorf("after Close: err = %v, want errTransportClosed", err)
	}
}

// learningTransport returns a transport on a settable clock whose
// connections report their targets' idle closes to one IdleLearner.
func learningTransport(t *testing.T) (*Transport, *clock, *IdleLearner) {
	clk := newClock()
	learner := &IdleLearner{}
	dialer := &net.Dialer{}
	tr := newTestTransport(t, TransportOptions{
		MaxIdleConnsPerHost: 4,
		Dial:                Dialer(dialer.DialContext, func(string) *IdleLearner { return learner }, clk.Now),
		Now:                 clk.Now,
	})
	return tr, clk, learner
}

// TestTransportIdleCloseDetected: the target closed a pooled connection;
// the next request gets its answer without an error, and the target's
// IdleLearner learns how long the connection had been idle. A replayable
// request (GET) takes the pooled connection unchecked, finds it closed and
// goes again on a new one; any other (POST) finds it closed by the check
// and goes on a new one at once.
func TestTransportIdleCloseDetected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		reused []bool
	}{
		{http.MethodGet, []bool{true, false}},
		{http.MethodHead, []bool{true, false}},
		{http.MethodPost, []bool{false}},
		{http.MethodDelete, []bool{false}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			closedByServer := make(chan struct{}, 4)
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
				_ = c.Close() // an idle timeout of zero
				closedByServer <- struct{}{}
			})
			tr, clk, learner := learningTransport(t)
			fetch(t, tr, nil, srv.url("/"))
			wait(t, closedByServer, "the server's close")
			clk.Add(3 * time.Second)
			p := &phaseTrace{}
			res, err := roundTrip(tr, p, tc.method, srv.url("/"), nil)
			if err != nil {
				t.Fatalf("%s after the idle close: %v", tc.method, err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("status %d", res.StatusCode)
			}
			if _, reused := p.state(); !slices.Equal(reused, tc.reused) {
				t.Errorf("reused %v, want %v", reused, tc.reused)
			}
			if got := learner.Learned(); got != 3*time.Second {
				t.Errorf("learned idle timeout %v, want 3s", got)
			}
			if n := srv.accepts.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestTransportResend: a replayable request that takes a pooled
// connection the target closed under it (a FIN, a reset, an unasked 408
// before the close) is sent again once, on a new connection, and gets its
// answer; one that meets the same on the new connection too gets that as
// its answer (no loop); a POST on a connection that passed the check and
// then closed is not sent twice.
func TestTransportResend(t *testing.T) {
	t.Parallel()
	// Each server answers the first request on its first connection with
	// 200 and keeps the connection; then that connection does after, and
	// later connections do fresh.
	const (
		closeNow      = "close"          // close at once
		reset         = "reset"          // reset at once
		unasked408    = "unasked 408"    // send a 408, then close
		answer200     = "answer 200"     // answer each request with 200
		answer408     = "answer 408"     // answer each request with 408
		readThenClose = "read and close" // read a request, close without an answer
	)
	for _, tc := range []struct {
		name          string
		method        string
		after, fresh  string
		status        int // the answer (0: an error)
		reused        []bool
		conns, posted int64
	}{
		{name: "FIN", method: http.MethodGet, after: closeNow, fresh: answer200, status: 200, reused: []bool{true, false}, conns: 2},
		{name: "reset", method: http.MethodGet, after: reset, fresh: answer200, status: 200, reused: []bool{true, false}, conns: 2},
		{name: "unasked 408", method: http.MethodHead, after: unasked408, fresh: answer200, status: 200, reused: []bool{true, false}, conns: 2},
		{name: "408 both times", method: http.MethodGet, after: answer408, fresh: answer408, status: 408, reused: []bool{true, false}, conns: 2},
		{name: "closed both times", method: http.MethodGet, after: readThenClose, fresh: readThenClose, reused: []bool{true, false}, conns: 2},
		{name: "POST closed after the check", method: http.MethodPost, after: readThenClose, fresh: answer200, reused: []bool{true}, conns: 1, posted: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var conns, posted atomic.Int64
			closed := make(chan struct{}, 1)
			// go on: the client has read the first answer (and could
			// not have read with it what after sends).
			goOn := make(chan struct{})
			read := func(br *bufio.Reader) bool {
				req, _, err := readRequest(br)
				if err == nil && req.Method == http.MethodPost {
					posted.Add(1)
				}
				return err == nil
			}
			do := func(what string, c net.Conn, br *bufio.Reader) {
				switch what {
				case closeNow:
				case reset:
					_ = c.(*net.TCPConn).SetLinger(0)
				case unasked408:
					<-goOn
					_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				case answer200, answer408:
					answer := ok2
					if what == answer408 {
						answer = timeout408
					}
					for read(br) {
						if _, err := io.WriteString(c, answer); err != nil {
							return
						}
					}
					return
				case readThenClose:
					read(br)
					return
				}
				_ = c.Close()
				closed <- struct{}{}
			}
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if conns.Add(1) > 1 {
					do(tc.fresh, c, br)
					return
				}
				if !read(br) {
					return
				}
				if _, err := io.WriteString(c, ok2); err != nil {
					return
				}
				do(tc.after, c, br)
			})
			tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
			fetch(t, tr, nil, srv.url("/"))
			close(goOn)
			switch tc.after {
			case closeNow, reset, unasked408:
				wait(t, closed, "the server's close")
			}
			p := &phaseTrace{}
			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader("x")
			}
			res, err := roundTrip(tr, p, tc.method, srv.url("/"), body)
			switch {
			case tc.status == 0 && err == nil:
				_ = res.Body.Close()
				t.Fatalf("status %d, want an error", res.StatusCode)
			case tc.status == 0:
				if !closedUnder(err) {
					t.Errorf("error %v, want the target's close", err)
				}
			case err != nil:
				t.Fatalf("%s: %v", tc.method, err)
			default:
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if res.StatusCode != tc.status {
					t.Errorf("status %d, want %d", res.StatusCode, tc.status)
				}
			}
			if _, reused := p.state(); !slices.Equal(reused, tc.reused) {
				t.Errorf("reused %v, want %v", reused, tc.reused)
			}
			if n := srv.accepts.Load(); n != tc.conns {
				t.Errorf("%d connections, want %d", n, tc.conns)
			}
			if n := posted.Load(); n != tc.posted {
				t.Errorf("the server read %d POSTs, want %d", n, tc.posted)
			}
		})
	}
}

// ok2 and timeout408 are whole answers.
const (
	ok2        = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	timeout408 = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
)

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	deadLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadLn.Addr().String()
	_ = deadLn.Close()

	// writeThen reads the request, writes resp and closes, or hangs when
	// hold is set.
	writeThen := func(resp string, hold bool) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, resp); err == nil && hold {
				hang(c, br)
			}
		}
	}
	tests := []struct {
		desc  string
		serve func(net.Conn, *bufio.Reader) // nil: nothing listens
		opts  TransportOptions
		is    error // errors.Is target
		check func(t *testing.T, err error)
		phase cause.Phase
		cause cause.ID
	}{
		{desc: "refused", is: syscall.ECONNREFUSED, phase: cause.PhaseConnect, cause: cause.ConnectionRefused},
		{desc: "closed before any byte", serve: writeThen("", false),
			is: io.EOF, phase: cause.PhaseRequestWritten, cause: cause.ConnectionTerminated},
		{desc: "junk", serve: writeThen("SSH-2.0-OpenSSH_9.2p1\r\n\r\n", false),
			is: ErrMalformedResponse, phase: cause.PhaseFirstByte, cause: cause.HTTPProtocolError},
		{desc: "header section over the limit", serve: writeThen("HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 4000)+"\r\n\r\n", true),
			opts: TransportOptions{MaxResponseHeaderBytes: 1024},
			is:   ErrResponseHeaderTooLarge, phase: cause.PhaseFirstByte, cause: cause.HTTPResponseHeaderSectionSize,
			check: func(t *testing.T, err error) {
				var ce *cause.Error
				if !errors.As(err, &ce) || ce.ID != cause.HTTPResponseHeaderSectionSize {
					t.Errorf("err = %#v, not a *cause.Error %s", err, cause.HTTPResponseHeaderSectionSize)
				}
			}},
		{desc: "truncated header", serve: writeThen("HTTP/1.1 200 OK\r\nX-A: b", false),
			is: io.ErrUnexpectedEOF, phase: cause.PhaseFirstByte, cause: cause.HTTPResponseIncomplete},
		{desc: "conflicting lengths", serve: writeThen("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", true),
			is: ErrMalformedResponse, phase: cause.PhaseFirstByte, cause: cause.HTTPProtocolError},
		{desc: "response header timeout", serve: writeThen("", true), opts: TransportOptions{ResponseHeaderTimeout: 50 * time.Millisecond},
			phase: cause.PhaseRequestWritten, cause: cause.HTTPResponseTimeout,
			check: func(t *testing.T, err error) {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("err = %v, not a net.Error timeout", err)
				}
			}},
		{desc: "header timeout after the first byte", serve: writeThen("HTTP/1.1 200 OK\r\n", true),
			opts:  TransportOptions{ResponseHeaderTimeout: 50 * time.Millisecond},
			phase: cause.PhaseFirstByte, cause: cause.HTTPResponseTimeout,
			check: func(t *testing.T, err error) {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("err = %v, not a net.Error timeout", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			addr := dead
			if tt.serve != nil {
				addr = newRawServer(t, tt.serve).addr
			}
			tr := newTestTransport(t, tt.opts)
			p := &phaseTrace{}
			res, err := roundTrip(tr, p, http.MethodGet, "http://"+addr+"/", nil)
			if err == nil {
				_ = res.Body.Close()
				t.Fatalf("no error; status %d", res.StatusCode)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if ph, _ := p.state(); ph != tt.phase {
				t.Errorf("phase %v, want %v", ph, tt.phase)
			}
			if ce := p.classify(err); ce.ID != tt.cause {
				t.Errorf("cause %s (%v), want %s", ce.ID, ce, tt.cause)
			}
		})
	}
}

func TestTransportBodyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, resp string
		body       string
	}{
		{"shorter than its length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde", "abcde"},
		{"a chunk cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "ab"},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", "abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err == nil {
					_, _ = io.WriteString(c, tt.resp)
				}
			})
			tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
			res, err := roundTrip(tr, nil, http.MethodGet, srv.url("/"), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			if string(b) != tt.body || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("body %q, err %v; want %q and io.ErrUnexpectedEOF", b, err, tt.body)
			}
			if ce := cause.Classify(err, cause.Attempt{Phase: cause.PhaseHeaders}); ce.ID != cause.HTTPResponseIncomplete {
				t.Errorf("cause %s, want %s", ce.ID, cause.HTTPResponseIncomplete)
			}
			// The error stays.
			if _, err := res.Body.Read(make([]byte, 1)); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read again: %v", err)
			}
			_ = res.Body.Close()
		})
	}
}

func TestTransportChunkedAndLength(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, respondEach("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	for range 2 {
		if res, body := fetch(t, tr, nil, srv.url("/")); body != "hello" || res.ContentLength != -1 || res.Header.Get("Content-Length") != "" {
			t.Errorf("body %q length %d header %q; want the chunked body", body, res.ContentLength, res.Header)
		}
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("%d connections for 2 requests, want 2 (never reused)", n)
	}
}

func TestTransportCancel(t *testing.T) {
	t.Parallel()
	errGone := errors.New("the visitor left")
	t.Run("waiting for headers", func(t *testing.T) {
		t.Parallel()
		got := make(chan struct{}, 1)
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err == nil {
				got <- struct{}{}
				hang(c, br)
			}
		})
		tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() {
			select {
			case <-got:
				cancel(errGone)
			case <-time.After(guard):
				cancel(errors.New("the request never arrived"))
			}
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url("/"), nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, errGone) {
			t.Errorf("err = %v, want the context's cause", err)
		}
	})
	t.Run("reading the body", func(t *testing.T) {
		t.Parallel()
		closed := make(chan struct{}, 1)
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
				hang(c, br)
				closed <- struct{}{}
			}
		})
		tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
		ctx, cancel := context.WithCancelCause(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url("/"), nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(res.Body, make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		cancel(errGone)
		if _, err := io.ReadAll(res.Body); !errors.Is(err, errGone) {
			t.Errorf("err = %v, want the context's cause", err)
		}
		wait(t, closed, "the connection's close")
	})
	t.Run("right after the headers, with a header timeout", func(t *testing.T) {
		t.Parallel()
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err == nil {
				// Everything but the body, in one write.
				_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
				hang(c, br)
			}
		})
		pastDeadline := make(chan struct{})
		var once sync.Once
		dialer := &net.Dialer{}
		tr := newTestTransport(t, TransportOptions{
			ResponseHeaderTimeout: guard,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &deadlineConn{Conn: c, past: func() { once.Do(func() { close(pastDeadline) }) }}, nil
			},
		})
		ctx, cancel := context.WithCancelCause(context.Background())
		// Cancelled during the interim response; once the cancellation
		// has set its deadline, the final response's headers are read
		// from the buffer and the header deadline is cleared.
		p := &phaseTrace{on1xx: func(int) error {
			cancel(errGone)
			wait(t, pastDeadline, "the cancellation's deadline")
			return nil
		}}
		req, _ := http.NewRequestWithContext(p.context(ctx), http.MethodGet, srv.url("/"), nil)
		res, err := tr.RoundTrip(req)
		if err == nil {
			// The body must not wait for ever.
			done := make(chan error, 1)
			go func() { _, err := io.ReadAll(res.Body); done <- err }()
			err = wait(t, done, "the body's read after the cancellation")
		}
		if !errors.Is(err, errGone) {
			t.Errorf("err = %v, want the context's cause", err)
		}
	})
}

// deadlineConn reports a deadline set in the past (a cancellation).
type deadlineConn struct {
	net.Conn
	past func()
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	if !t.IsZero() && t.Before(time.Now()) {
		c.past()
	}
	return err
}

// tlsServer starts a net/http server over TLS and returns it with a client
// config that trusts it.
func tlsServer(t *testing.T, h http.HandlerFunc, state func(http.ConnState)) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if state != nil {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) { state(s) }
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failures are on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// dialers are the two kinds of dial function a Transport meets: the
// default (plain net.Conn) and Dialer's counting *Conn.
func dialers() map[string]func(context.Context, string, string) (net.Conn, error) {
	d := &net.Dialer{}
	return map[string]func(context.Context, string, string) (net.Conn, error){
		"default": nil,
		"Dialer":  Dialer(d.DialContext, func(string) *IdleLearner { return nil }, time.Now),
	}
}

func TestTransportTLS(t *testing.T) {
	t.Parallel()
	for name, dial := range dialers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int64
			srv, conf := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, r.URL.Path)
			}, func(s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			})
			tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, TLSClientConfig: conf, Dial: dial})
			for i := range 3 {
				p := &phaseTrace{}
				path := fmt.Sprintf("/%d", i)
				if _, body := fetch(t, tr, p, srv.URL+path); body != path {
					t.Errorf("body %q, want %q", body, path)
				}
				if _, reused := p.state(); !slices.Equal(reused, []bool{i > 0}) {
					t.Errorf("request %d: reused %v", i, reused)
				}
				want := 0
				if i == 0 {
					want = 1
				}
				if p.tlsDone != want || p.tlsErr != nil {
					t.Errorf("request %d: TLSHandshakeDone %d times (%v), want %d", i, p.tlsDone, p.tlsErr, want)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections for 3 requests, want 1", n)
			}
		})
	}
}

// TestTransportTLSIdleClose: the target closed an idle TLS connection
// (close_notify, then FIN); the next request goes out on a new connection
// without an error, whatever the dial function.
func TestTransportTLSIdleClose(t *testing.T) {
	t.Parallel()
	for name, dial := range dialers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			idle, closed := make(chan struct{}, 4), make(chan struct{}, 4)
			srv, conf := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			}, func(s http.ConnState) {
				switch s {
				case http.StateIdle:
					idle <- struct{}{}
				case http.StateClosed:
					closed <- struct{}{}
				}
			})
			tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, TLSClientConfig: conf, Dial: dial})
			fetch(t, tr, nil, srv.URL)
			wait(t, idle, "the server's idle state")
			srv.Config.SetKeepAlivesEnabled(false) // closes the idle connections
			wait(t, closed, "the server's close")
			p := &phaseTrace{}
			if _, body := fetch(t, tr, p, srv.URL); body != "ok" {
				t.Errorf("body %q", body)
			}
			// A GET takes the pooled connection unchecked, finds it
			// closed, and goes again on a new one.
			if _, reused := p.state(); !slices.Equal(reused, []bool{true, false}) {
				t.Errorf("reused %v, want the pooled connection, then a new one", reused)
			}
		})
	}
}

func TestTransportTLSErrors(t *testing.T) {
	t.Parallel()
	srv, _ := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {}, nil)
	plain := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	})
	silent := newRawServer(t, hang)
	tests := []struct {
		desc  string
		url   string
		opts  TransportOptions
		cause cause.ID
		check func(t *testing.T, err error)
	}{
		{desc: "unknown authority", url: srv.URL, cause: cause.TLSCertificateError,
			check: func(t *testing.T, err error) {
				var verr *tls.CertificateVerificationError
				if !errors.As(err, &verr) {
					t.Errorf("err = %v, want a certificate verification error", err)
				}
			}},
		{desc: "not TLS", url: "https://" + plain.addr + "/", cause: cause.TLSProtocolError,
			check: func(t *testing.T, err error) {
				var rerr tls.RecordHeaderError
				if !errors.As(err, &rerr) {
					t.Errorf("err = %v, want a record header error", err)
				}
			}},
		{desc: "handshake timeout", url: "https://" + silent.addr + "/", opts: TransportOptions{TLSHandshakeTimeout: 50 * time.Millisecond},
			cause: cause.ConnectionTimeout,
			check: func(t *testing.T, err error) {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("err = %v, not a net.Error timeout", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tr := newTestTransport(t, tt.opts)
			p := &phaseTrace{}
			res, err := roundTrip(tr, p, http.MethodGet, tt.url, nil)
			if err == nil {
				_ = res.Body.Close()
				t.Fatal("no error")
			}
			tt.check(t, err)
			if ph, _ := p.state(); ph != cause.PhaseTLS {
				t.Errorf("phase %v, want %v", ph, cause.PhaseTLS)
			}
			if p.tlsDone != 1 || p.tlsErr == nil {
				t.Errorf("TLSHandshakeDone %d times with %v, want once with the error", p.tlsDone, p.tlsErr)
			}
			if ce := p.classify(err); ce.ID != tt.cause {
				t.Errorf("cause %s (%v), want %s", ce.ID, ce, tt.cause)
			}
		})
	}
}

// TestTransportTLSPostHandshakeMessageWhileIdle: a TLS 1.3 target sends a
// post-handshake message (a session ticket, a key update) on a pooled
// connection; the check before reuse reads it through TLS and keeps the
// connection. Go's TLS server sends its session tickets before the first
// response, so it never does this; OpenSSL's s_server sends a KeyUpdate,
// handled by the client exactly as a late NewSessionTicket, on demand.
func TestTransportTLSPostHandshakeMessageWhileIdle(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{"openssl", "stdbuf"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s is missing: apt-get install -y openssl coreutils", prog)
		}
	}
	dir := t.TempDir()
	roots := writeSelfSigned(t, dir)
	s := startSServer(t, dir)

	learner := &IdleLearner{}
	d := &net.Dialer{}
	tr := newTestTransport(t, TransportOptions{
		MaxIdleConnsPerHost: 4,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13},
		Dial:                Dialer(d.DialContext, func(string) *IdleLearner { return learner }, time.Now),
	})
	exchange := func(path string) []bool {
		t.Helper()
		type result struct {
			body string
			err  error
		}
		done := make(chan result, 1)
		p := &phaseTrace{}
		go func() {
			res, err := roundTrip(tr, p, http.MethodGet, "https://"+s.addr+path, nil)
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			done <- result{string(b), err}
		}()
		s.waitFor(t, "GET "+path+" HTTP/1.1", 1)
		s.send(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(path), path))
		r := wait(t, done, "the response to "+path)
		if r.err != nil || r.body != path {
			t.Fatalf("%s: %q, %v", path, r.body, r.err)
		}
		_, reused := p.state()
		return reused
	}
	if reused := exchange("/one"); !slices.Equal(reused, []bool{false}) {
		t.Fatalf("first request reused %v", reused)
	}
	for i, cmd := range []string{"k\n", "K\n"} { // key update; and one asking for the client's
		s.send(t, cmd)
		s.waitFor(t, "SSL_do_handshake -> 1", i+1)
		path := fmt.Sprintf("/after-%c", cmd[0])
		if reused := exchange(path); !slices.Equal(reused, []bool{true}) {
			t.Errorf("%s: reused %v, want the pooled connection", path, reused)
		}
	}
}

// sServer is an openssl s_server whose stdin is sent to the connected
// client and whose stdout shows what it received.
type sServer struct {
	addr  string
	stdin io.Writer
	mu    sync.Mutex
	out   strings.Builder
}

func startSServer(t *testing.T, dir string) *sServer {
	t.Helper()
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		s := &sServer{addr: addr}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, "stdbuf", "-o0", "openssl", "s_server", "-accept", addr, "-tls1_3",
			"-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem"))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		s.stdin = stdin
		cmd.Stdout = writerFunc(func(p []byte) (int, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.out.Write(p)
		})
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cancel(); <-exited })
		if s.ready(exited) {
			return s
		}
		if try == 2 {
			t.Fatalf("openssl s_server did not start:\n%s", s.output())
		}
	}
}

// ready waits for s_server's ACCEPT, or its exit (its port taken).
func (s *sServer) ready(exited chan struct{}) bool {
	deadline := time.After(guard)
	for !strings.Contains(s.output(), "ACCEPT") {
		select {
		case <-exited:
			return false
		case <-deadline:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

func (s *sServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// waitFor waits until the output holds text n times.
func (s *sServer) waitFor(t *testing.T, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for strings.Count(s.output(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("s_server never showed %q %d times:\n%s", text, n, s.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *sServer) send(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, text); err != nil {
		t.Fatal(err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// writeSelfSigned writes cert.pem and key.pem for 127.0.0.1 into dir and
// returns a pool trusting the certificate.
func writeSelfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return roots
}

// TestTransportConcurrent sends requests from several goroutines through
// one Transport (run with -race), some bodies closed early, and some
// answers empty: their connection is back in the pool, another
// goroutine's, before the round trip returns.
func TestTransportConcurrent(t *testing.T) {
	t.Parallel()
	srv, conns := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/empty") {
			w.Header().Set("Content-Length", "0")
			return
		}
		_, _ = io.WriteString(w, r.URL.Path+strings.Repeat(".", 1000))
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				path := fmt.Sprintf("/%d/%d", w, i)
				if i%3 == 2 {
					path += "/empty"
				}
				res, err := roundTrip(tr, nil, http.MethodGet, srv.URL+path, nil)
				if err != nil {
					errs <- err
					continue
				}
				if i%3 == 2 {
					if b, err := io.ReadAll(res.Body); err != nil || len(b) != 0 {
						errs <- fmt.Errorf("%s: %q, %v; want an empty body", path, b, err)
					}
					_ = res.Body.Close()
					continue
				}
				if i%5 == 4 {
					_ = res.Body.Close() // early
					continue
				}
				b, err := io.ReadAll(res.Body)
				_ = res.Body.Close()
				if err != nil || !strings.HasPrefix(string(b), path+".") {
					errs <- fmt.Errorf("%s: %.20q, %v", path, b, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Most requests reuse a connection: without reuse there would be one
	// connection per request.
	if n := conns.Load(); n >= workers*each/2 {
		t.Errorf("%d connections for %d requests", n, workers*each)
	}
}

// BenchmarkTransportGET measures a small GET (request, headers, a 13-byte
// body) against a local net/http server, serially and from parallel
// goroutines, through this Transport and through net/http's, so the
// difference is measured.
func BenchmarkTransportGET(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello, world\n")
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/bench")
	if err != nil {
		b.Fatal(err)
	}
	transports := []struct {
		name string
		rt   func() (http.RoundTripper, func())
	}{
		{"gatewise", func() (http.RoundTripper, func()) {
			t := NewTransport(TransportOptions{MaxIdleConnsPerHost: 64})
			return t, t.Close
		}},
		{"net-http", func() (http.RoundTripper, func()) {
			t := &http.Transport{MaxIdleConnsPerHost: 64}
			return t, t.CloseIdleConnections
		}},
	}
	get := func(rt http.RoundTripper, req *http.Request, buf []byte) error {
		res, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		for {
			_, err := res.Body.Read(buf)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	for _, tt := range transports {
		b.Run(tt.name+"/serial", func(b *testing.B) {
			rt, done := tt.rt()
			defer done()
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{"User-Agent": {"bench"}}, Host: u.Host}
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				if err := get(rt, req, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			rt, done := tt.rt()
			defer done()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{"User-Agent": {"bench"}}, Host: u.Host}
				buf := make([]byte, 512)
				for pb.Next() {
					if err := get(rt, req, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// poolState reports, under the transport's lock, how many connections are
// idle and how many of them are watched.
func poolState(tr *Transport) (idle, watched int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, l := range tr.idle {
		for _, cc := range l.conns {
			idle++
			if cc.watchDone != nil {
				watched++
			}
		}
	}
	return idle, watched
}

// waitPool polls poolState until it is (idle, watched), failing the test
// after guard.
func waitPool(t *testing.T, tr *Transport, idle, watched int) {
	t.Helper()
	for deadline := time.Now().Add(guard); ; {
		i, w := poolState(tr)
		if i == idle && w == watched {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool: %d idle, %d watched after %v; want %d, %d", i, w, guard, idle, watched)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTransportIdleWatch: a connection idle in the pool for sweepEvery is
// watched; when its target closes it, the pool drops it without a request
// (nothing else looks at the socket: the sweep only starts the watch), and
// the target's IdleLearner learns how long it had been idle; the next
// request dials a new connection rather than meeting the closed one.
func TestTransportIdleWatch(t *testing.T) {
	t.Parallel()
	closeFirst := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(closeFirst) }) })
	srv := newRawServer(t, eachRequest(func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool {
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return false
		}
		<-closeFirst
		return false // closes
	}))
	tr, clk, learner := learningTransport(t)
	fetch(t, tr, nil, srv.url("/"))
	clk.Add(sweepEvery)
	waitPool(t, tr, 1, 1)
	clk.Add(2 * time.Second)
	once.Do(func() { close(closeFirst) })
	waitPool(t, tr, 0, 0)
	if got, want := learner.Learned(), sweepEvery+2*time.Second; got != want {
		t.Errorf("learned idle timeout %v, want %v", got, want)
	}
	p := &phaseTrace{}
	if _, body := fetch(t, tr, p, srv.url("/")); body != "ok" {
		t.Errorf("body %q", body)
	}
	if _, reused := p.state(); !slices.Equal(reused, []bool{false}) {
		t.Errorf("reused %v after the watched close, want a new connection only", reused)
	}
}

// TestTransportIdleWatchEndsAtReuse: a request takes a watched connection
// from the pool, ending the watch without harm to the connection: the
// request and its slow answer go through on it (the deadline that ended
// the watch is gone), and back in the pool it is watched again.
func TestTransportIdleWatchEndsAtReuse(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, eachRequest(func(c net.Conn, _ *bufio.Reader, req *http.Request) bool {
		if req.URL.Path == "/slow" {
			time.Sleep(20 * time.Millisecond)
		}
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return err == nil
	}))
	clk := newClock()
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 4, Now: clk.Now})
	fetch(t, tr, nil, srv.url("/"))
	for i := range 3 {
		clk.Add(sweepEvery)
		waitPool(t, tr, 1, 1)
		p := &phaseTrace{}
		if _, body := fetch(t, tr, p, srv.url("/slow")); body != "ok" {
			t.Errorf("request %d: body %q", i, body)
		}
		if _, reused := p.state(); !slices.Equal(reused, []bool{true}) {
			t.Errorf("request %d: reused %v, want the watched connection", i, reused)
		}
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// BenchmarkTransportIdleReuse measures what a watch (watchIdle) costs the
// request that takes a watched connection: "watched" starts a watch on the
// pooled connection before each GET (the sweep, as after 50 ms idle) and
// the GET ends it; "unwatched" makes the same GETs on a connection no
// watch was started on.
func BenchmarkTransportIdleReuse(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello, world\n")
	}))
	defer srv.Close()
	for _, watched := range []bool{false, true} {
		name := "unwatched"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			clk := newClock()
			tr := NewTransport(TransportOptions{MaxIdleConnsPerHost: 4, Now: clk.Now})
			defer tr.Close()
			get := func() {
				res, err := roundTrip(tr, nil, http.MethodGet, srv.URL, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
			}
			get()
			for b.Loop() {
				if watched {
					clk.Add(sweepEvery)
					tr.sweepIdle()
				}
				get()
			}
		})
	}
}
