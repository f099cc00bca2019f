package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/sockio"
)

// testServer is a Server on a loopback listener, shut down at the end of
// the test.
type testServer struct {
	*Server
	addr   string
	served chan error // Serve's result
	logBuf *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start serves h on a new loopback listener whose connections are read
// and written with raw system calls (sockio), as gatewise's are; opt may
// change the server's fields before it starts.
func start(t testing.TB, h http.Handler, opt ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = sockio.Listener(ln)
	logBuf := new(syncBuffer)
	s := &Server{Handler: h, ErrorLog: log.New(logBuf, "", 0), Tick: 10 * time.Millisecond}
	for _, o := range opt {
		o(s)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), served: make(chan error, 1), logBuf: logBuf}
	go func() { ts.served <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case <-ts.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// dial opens a raw connection to the server, closed at the end of the
// test, with a deadline so that no test hangs.
func (ts *testServer) dial(t testing.TB) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, Conn: c, br: bufio.NewReader(c)}
}

// rawClient writes bytes and reads answers.
type rawClient struct {
	t testing.TB
	net.Conn
	br *bufio.Reader
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads one answer to a request of method, with its whole body.
func (c *rawClient) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// roundTrip sends a request and reads its answer.
func (c *rawClient) roundTrip(req string) (*http.Response, string) {
	c.t.Helper()
	c.send(req)
	method, _, _ := strings.Cut(req, " ")
	return c.read(method)
}

// closed reports whether the server closed the connection: a read gets
// EOF (or a reset) and no bytes.
func (c *rawClient) closed() bool {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		c.t.Fatalf("unexpected byte %q after the answer", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// open reports whether the connection is still open after wait: a read
// times out.
func (c *rawClient) open(wait time.Duration) bool {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.br.Peek(1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// recorder is a handler that keeps the last request it saw.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r)
	rec.body = append(rec.body, string(b))
	rec.mu.Unlock()
	_, _ = io.WriteString(w, r.Method+" "+r.RequestURI)
}

func (rec *recorder) last(t testing.TB) (*http.Request, string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("the handler saw no request")
	}
	return rec.reqs[len(rec.reqs)-1], rec.body[len(rec.body)-1]
}

// waitFor waits up to 5 s for ch.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = context.Background

// find returns the last request the handler saw for a request URI.
func (rec *recorder) find(t testing.TB, uri string) (*http.Request, string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := len(rec.reqs) - 1; i >= 0; i-- {
		if rec.reqs[i].RequestURI == uri {
			return rec.reqs[i], rec.body[i]
		}
	}
	t.Fatalf("the handler saw no request for %s", uri)
	return nil, ""
}
