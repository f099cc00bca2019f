package h1server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"weak"
)

func hello(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "hello "+r.URL.Path)
}

func TestKeepAlive(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello))
	c := ts.dial(t)
	for i := range 200 {
		path := fmt.Sprintf("/%d", i)
		resp, body := c.roundTrip("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != 200 || body != "hello "+path || resp.Close {
			t.Fatalf("request %d: %d %q close %v", i, resp.StatusCode, body, resp.Close)
		}
	}

	// net/http's client reuses the connection.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var reused atomic.Int32
	for i := range 20 {
		req, _ := http.NewRequest("GET", "http://"+ts.addr+"/c", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				if ci.Reused {
					reused.Add(1)
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello /c" {
			t.Fatalf("body %q", b)
		}
	}
	if reused.Load() != 19 {
		t.Errorf("connection reused %d times of 19", reused.Load())
	}
}

func TestPipelining(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello))
	c := ts.dial(t)
	var all strings.Builder
	for i := range 20 {
		fmt.Fprintf(&all, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
		if i == 10 {
			all.WriteString("POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
		}
	}
	c.send(all.String())
	for i := range 20 {
		_, body := c.read("GET")
		if want := fmt.Sprintf("hello /%d", i); body != want {
			t.Fatalf("answer %d: %q, want %q", i, body, want)
		}
		if i == 10 {
			if _, body := c.read("POST"); body != "hello /post" {
				t.Fatalf("answer to the POST: %q", body)
			}
		}
	}
}

// A slowloris sending a byte every 100 ms is cut off after the header
// timeout.
func TestReadHeaderTimeout(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello), func(s *Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	c := ts.dial(t)
	req := "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + strings.Repeat("s", 100) + "\r\n\r\n"
	sent := 0
	for ; sent < len(req); sent++ {
		if _, err := io.WriteString(c.Conn, req[sent:sent+1]); err != nil {
			break
		}
		if !c.open(100 * time.Millisecond) {
			break
		}
	}
	if sent == len(req) {
		t.Fatal("the slow head was read to its end")
	}
	if !c.closed() {
		t.Error("connection open")
	}
}

// The first request's header timeout runs from accept: a connection that
// sends nothing is closed, and one that waits before its first byte has
// less time for its head.
func TestHeaderTimeoutFromAccept(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello), func(s *Server) { s.ReadHeaderTimeout = 400 * time.Millisecond })
	c := ts.dial(t)
	if !c.closed() {
		t.Fatal("a silent connection was never closed")
	}

	c = ts.dial(t)
	time.Sleep(300 * time.Millisecond)
	c.send("GET / HTTP/1.1\r\n")
	time.Sleep(200 * time.Millisecond)
	_, _ = io.WriteString(c.Conn, "Host: h\r\n\r\n")
	if !c.closed() {
		t.Error("the head was read past the timeout counted from accept")
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello), func(s *Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.ReadHeaderTimeout = time.Minute
	})
	c := ts.dial(t)
	for range 3 {
		resp, _ := c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if !c.closed() {
		t.Error("an idle connection was never closed")
	}
}

// blocker is a handler that waits for release (or its request's end) and
// says when it started.
type blocker struct {
	started chan struct{}
	release chan struct{}
	ctxErr  chan error
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 16), release: make(chan struct{}), ctxErr: make(chan error, 16)}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/block" {
		hello(w, r)
		return
	}
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
	b.ctxErr <- r.Context().Err()
	_, _ = io.WriteString(w, "released")
}

func TestShutdown(t *testing.T) {
	b := newBlocker()
	ts := start(t, b)
	busy := ts.dial(t)
	busy.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	idle := ts.dial(t)
	if resp, _ := idle.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	silent := ts.dial(t)
	// Let the server accept it.
	eventually(t, "three connections", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.conns) == 3
	})

	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Error("idle connection kept by Shutdown")
	}
	if !silent.closed() {
		t.Error("new connection kept by Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("new connection accepted after Shutdown")
	}
	close(b.release)
	resp, body := busy.read("GET")
	if body != "released" || !resp.Close {
		t.Errorf("in-flight answer %q close %v", body, resp.Close)
	}
	if !busy.closed() {
		t.Error("busy connection kept after its answer")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-ts.served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		ts.served <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
	if err := ts.Serve(mustListen(t)); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestShutdownContextExpires(t *testing.T) {
	b := newBlocker()
	ts := start(t, b)
	c := ts.dial(t)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	// Close ends what Shutdown left: the connection is closed under
	// the handler.
	_ = ts.Close()
	if !c.closed() {
		t.Error("Close left the connection open")
	}
	close(b.release)
}

func TestClose(t *testing.T) {
	b := newBlocker()
	ts := start(t, b)
	c := ts.dial(t)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	idle := ts.dial(t)
	idle.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	_ = ts.Close()
	if !c.closed() || !idle.closed() {
		t.Error("Close left a connection open")
	}
	select {
	case err := <-ts.served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		ts.served <- err
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
	close(b.release)
}

// The request's context is cancelled when the visitor closes its
// connection while the handler waits, once the watcher has started (a
// tick after the handler did).
func TestContextCancelledWhenVisitorLeaves(t *testing.T) {
	b := newBlocker()
	ts := start(t, b)
	c := ts.dial(t)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	_ = c.Close()
	select {
	case err := <-b.ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("context error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context was not cancelled after the visitor left")
	}
}

// A long request on a connection that stays is not cancelled, and a
// request pipelined behind it is served.
func TestContextNotCancelled(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			// Several ticks: the watcher starts.
			select {
			case <-r.Context().Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		fmt.Fprintf(w, "%s %v", r.URL.Path, r.Context().Err())
	}))
	c := ts.dial(t)
	if _, body := c.roundTrip("GET /long HTTP/1.1\r\nHost: h\r\n\r\n"); body != "/long <nil>" {
		t.Errorf("answer %q", body)
	}
	c.send("GET /long HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watcher is on
	c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := c.read("GET"); body != "/long <nil>" {
		t.Errorf("answer with a pipelined request behind: %q", body)
	}
	if _, body := c.read("GET"); body != "/next <nil>" {
		t.Errorf("pipelined answer %q", body)
	}
}

// Concurrent keep-alive clients while Shutdown runs: every request gets
// its answer or a clean error, and -race finds nothing.
func TestShutdownUnderLoad(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		if r.URL.Path == "/flush" {
			_, _ = io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		}
		hello(w, r)
	}))
	const clients, perClient = 6, 300
	var wg sync.WaitGroup
	var answered atomic.Int64
	shutdownAt := make(chan struct{})
	var once sync.Once
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for j := range perClient {
				if j == perClient/3 {
					once.Do(func() { close(shutdownAt) })
				}
				var resp *http.Response
				var err error
				switch j % 3 {
				case 0:
					resp, err = client.Get("http://" + ts.addr + "/g")
				case 1:
					resp, err = client.Post("http://"+ts.addr+"/p", "text/plain", strings.NewReader("body"))
				default:
					resp, err = client.Get("http://" + ts.addr + "/flush")
				}
				if err != nil {
					return // the server is shutting down
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Errorf("client %d: body cut: %v", i, err)
					return
				}
				if !strings.Contains(string(b), "hello /") {
					t.Errorf("client %d: body %q", i, b)
					return
				}
				answered.Add(1)
			}
		}()
	}
	<-shutdownAt
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	if answered.Load() == 0 {
		t.Error("no request answered")
	}
	ts.mu.Lock()
	left := len(ts.conns)
	ts.mu.Unlock()
	if left != 0 {
		t.Errorf("%d connections left after Shutdown", left)
	}
}

// wrapListener wraps every accepted connection, as gatewise's connection
// limits do; with netConn, the wrapper says what it wraps.
type wrapListener struct {
	net.Listener
	netConn bool
}

type plainWrap struct{ net.Conn }

type unwrapWrap struct{ net.Conn }

func (c unwrapWrap) NetConn() net.Conn { return c.Conn }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.netConn {
		return unwrapWrap{c}, nil
	}
	return plainWrap{c}, nil
}

// The watcher finds the socket beneath a wrapper with a NetConn method; a
// wrapper without one is served all the same (the visitor's leaving is
// then noticed at the next read or write).
func TestWrappedConns(t *testing.T) {
	for _, netConn := range []bool{true, false} {
		t.Run(fmt.Sprint("netconn=", netConn), func(t *testing.T) {
			b := newBlocker()
			ln := mustListen(t)
			s := &Server{Handler: b, Tick: 10 * time.Millisecond}
			served := make(chan error, 1)
			go func() { served <- s.Serve(wrapListener{ln, netConn}) }()
			defer func() {
				_ = s.Close()
				<-served
			}()
			ts := &testServer{Server: s, addr: ln.Addr().String()}
			c := ts.dial(t)
			if resp, body := c.roundTrip("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "hello /x" {
				t.Fatalf("answer %d %q", resp.StatusCode, body)
			}
			if !netConn {
				return
			}
			c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
			waitFor(t, b.started, "the handler")
			_ = c.Close()
			select {
			case err := <-b.ctxErr:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("context error %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the request's context was not cancelled through the wrapper")
			}
		})
	}
}

// noAddrListener accepts connections that know no remote address.
type noAddrListener struct{ net.Listener }

type noAddrConn struct{ net.Conn }

func (noAddrConn) RemoteAddr() net.Addr { return nil }

func (l noAddrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return noAddrConn{c}, nil
}

// A connection without a remote address is served, with an empty
// RemoteAddr (as net/http does), not a panic.
func TestNoRemoteAddr(t *testing.T) {
	got := make(chan string, 1)
	ln := mustListen(t)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.RemoteAddr })}
	served := make(chan error, 1)
	go func() { served <- s.Serve(noAddrListener{ln}) }()
	defer func() {
		_ = s.Close()
		<-served
	}()
	ts := &testServer{Server: s, addr: ln.Addr().String()}
	c := ts.dial(t)
	if resp, _ := c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ra := <-got; ra != "" {
		t.Errorf("RemoteAddr %q", ra)
	}
}

// retainedKey is the context key TestIdleConnectionKeepsNoRequest hangs a
// value on.
type retainedKey struct{}

// TestIdleConnectionKeepsNoRequest checks that a connection waiting for
// its next request holds nothing of the last one: the request and what the
// handler hung on its context (the access log's record, the proxy's
// exchange, in the gateway) can be collected while the connection idles.
func TestIdleConnectionKeepsNoRequest(t *testing.T) {
	var mu sync.Mutex
	var req weak.Pointer[http.Request]
	var hung weak.Pointer[[4096]byte]
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := new([4096]byte)
		if !r.Context().(interface{ SetValue(key, val any) bool }).SetValue(retainedKey{}, v) {
			t.Error("SetValue refused")
		}
		mu.Lock()
		req, hung = weak.Make(r), weak.Make(v)
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	c := ts.dial(t)
	if resp, body := c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// The connection stays open and idle. The answer may reach the client
	// just before the server lets go of the request: try for a while.
	deadline := time.Now().Add(2 * time.Second)
	for {
		runtime.GC()
		mu.Lock()
		r, v := req.Value(), hung.Value()
		mu.Unlock()
		if r == nil && v == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2s idle, the request is still reachable: %v, its context's value: %v", r != nil, v != nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleConnectionsHoldNoReadBuffer checks that a connection waiting for
// its next request gives its read buffer back (sockio's ReadWhenReady):
// once 40 connections have had a request answered and idle, the
// collector (which empties the pool) finds their buffers unreachable,
// where 40 connections keeping theirs kept 40. Each then serves a second
// request with a buffer taken again.
func TestIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start starts a server and returns a dial to it.
		start func(t *testing.T, opt func(*Server)) func() *rawClient
	}{
		{"plain", func(t *testing.T, opt func(*Server)) func() *rawClient {
			ts := start(t, http.HandlerFunc(okPath), opt)
			return func() *rawClient { return ts.dial(t) }
		}},
		{"TLS", func(t *testing.T, opt func(*Server)) func() *rawClient {
			addr, _ := startTLSServer(t, http.HandlerFunc(okPath), opt)
			return func() *rawClient { c, _ := dialTLS(t, addr); return c }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var bufs []weak.Pointer[bufio.Reader]
			countReaders := func(s *Server) {
				s.readers.New = func() any {
					br := bufio.NewReaderSize(nil, readBufferSize)
					mu.Lock()
					bufs = append(bufs, weak.Make(br))
					mu.Unlock()
					return br
				}
			}
			dial := tc.start(t, countReaders)
			const conns = 40
			cs := make([]*rawClient, conns)
			for i := range cs {
				cs[i] = dial()
				if resp, body := cs[i].roundTrip("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "ok /1" {
					t.Fatalf("connection %d: %d %q", i, resp.StatusCode, body)
				}
			}
			held := func() (n int) {
				runtime.GC()
				runtime.GC() // the pool's victim cache too
				mu.Lock()
				defer mu.Unlock()
				for _, b := range bufs {
					if b.Value() != nil {
						n++
					}
				}
				return n
			}
			// The last answer may reach its client just before the server goes
			// back to waiting: try for a while.
			deadline := time.Now().Add(5 * time.Second)
			for n := held(); n > 0; n = held() {
				if time.Now().After(deadline) {
					t.Fatalf("%d read buffers still held by %d idle connections after 5s", n, conns)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for i, c := range cs {
				if resp, body := c.roundTrip("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "ok /2" {
					t.Fatalf("connection %d, second request: %d %q", i, resp.StatusCode, body)
				}
			}
		})
	}
}

// okPath answers "ok " and the request's path.
func okPath(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok "+r.URL.Path)
}

// AcceptBackoff retries what a server outlives (no file descriptor left,
// a timeout, a connection aborted before accept), doubling its wait from
// 5 ms to at most 1 s, and not a closed listener.
func TestAcceptBackoff(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	wait, prev := time.Duration(0), time.Duration(0)
	for _, want := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		var retry bool
		if wait, retry = AcceptBackoff(emfile, prev); !retry || wait != want {
			t.Fatalf("EMFILE after %v: got %v, %v; want %v, true", prev, wait, retry, want)
		}
		prev = wait
	}
	if wait, retry := AcceptBackoff(emfile, 900*time.Millisecond); !retry || wait != time.Second {
		t.Errorf("EMFILE after 900ms: got %v, %v; want 1s, true", wait, retry)
	}
	if _, retry := AcceptBackoff(os.ErrDeadlineExceeded, 0); !retry {
		t.Errorf("a timeout is not retried")
	}
	if _, retry := AcceptBackoff(&net.OpError{Op: "accept", Net: "tcp", Err: syscall.ECONNABORTED}, 0); !retry {
		t.Errorf("ECONNABORTED is not retried")
	}
	if _, retry := AcceptBackoff(net.ErrClosed, 0); retry {
		t.Errorf("a closed listener is retried")
	}
}
