package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/h1server"
)

// defaultHandshakeTimeout bounds a TLS handshake when
// limits.read_header_timeout is 0.
const defaultHandshakeTimeout = 10 * time.Second

// tlsServer serves a TLS listener. It completes each connection's
// handshake itself, then hands a connection that chose HTTP/2 by ALPN to
// net/http's server (h2) and any other (HTTP/1.1, or no ALPN) to
// h1server (h1), which costs less per request than net/http's HTTP/1
// server: no background read per request, no deadline set and cleared per
// request, fewer allocations.
type tlsServer struct {
	config           *tls.Config
	handshakeTimeout time.Duration
	errorLog         *log.Logger
	h1               *h1server.Server
	h2               *http.Server
	h1Conns, h2Conns *connQueue

	mu         sync.Mutex
	closed     bool
	ln         net.Listener
	handshakes map[net.Conn]struct{} // connections in their handshake
	served     sync.WaitGroup        // the two servers' Serve calls
}

func newTLSServer(config *tls.Config, handshakeTimeout time.Duration, errorLog *log.Logger, h1 *h1server.Server, h2 *http.Server) *tlsServer {
	if handshakeTimeout <= 0 {
		handshakeTimeout = defaultHandshakeTimeout
	}
	return &tlsServer{
		config: config, handshakeTimeout: handshakeTimeout, errorLog: errorLog,
		h1: h1, h2: h2,
		handshakes: make(map[net.Conn]struct{}),
	}
}

// Serve accepts connections on ln (TCP, not TLS) until Shutdown or
// Close, when it returns http.ErrServerClosed; an accept error that is not
// temporary is returned as it is. Serve closes ln when it returns.
func (t *tlsServer) Serve(ln net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	t.ln = ln
	t.h1Conns, t.h2Conns = newConnQueue(ln.Addr()), newConnQueue(ln.Addr())
	t.served.Add(2)
	t.mu.Unlock()
	go func() { defer t.served.Done(); _ = t.h1.Serve(t.h1Conns) }()
	go func() { defer t.served.Done(); _ = t.h2.Serve(t.h2Conns) }()
	defer ln.Close()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if t.isClosed() {
				return http.ErrServerClosed
			}
			var retry bool
			if backoff, retry = h1server.AcceptBackoff(err, backoff); retry {
				t.errorLog.Printf("tls: accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !t.track(c) {
			_ = c.Close()
			return http.ErrServerClosed
		}
		go t.handshake(c)
	}
}

// handshake runs c's TLS handshake, bounded by handshakeTimeout, and hands
// the connection to the server of the protocol it chose. A failed
// handshake is logged as net/http logs it.
func (t *tlsServer) handshake(c net.Conn) {
	tc := tls.Server(c, t.config)
	ctx, cancel := context.WithTimeout(context.Background(), t.handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if !t.untrack(c) {
		_ = c.Close() // Close came first; it closed c too
		return
	}
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// Someone typed http:// for an https:// address: say so,
			// as net/http does, rather than close without a word.
			_ = re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		t.errorLog.Printf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
		_ = c.Close()
		return
	}
	q := t.h1Conns
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		q = t.h2Conns
	}
	if !q.push(tc) {
		_ = tc.Close()
	}
}

// looksLikeHTTP reports whether a TLS record header's five bytes are the
// start of an HTTP/1.x request line.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

func (t *tlsServer) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// track notes c as in its handshake; false once the server is closed.
func (t *tlsServer) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.handshakes[c] = struct{}{}
	return true
}

// untrack ends c's handshake; false when Shutdown or Close has closed it.
func (t *tlsServer) untrack(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.handshakes[c]; !ok {
		return false
	}
	delete(t.handshakes, c)
	return !t.closed
}

// stop stops accepting and closes the connections still in their
// handshake (no request of theirs has begun) and the queues.
func (t *tlsServer) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if t.ln != nil {
		_ = t.ln.Close()
	}
	for c := range t.handshakes {
		_ = c.Close()
		delete(t.handshakes, c)
	}
	if t.h1Conns != nil {
		t.h1Conns.close()
		t.h2Conns.close()
	}
}

// Shutdown stops accepting and shuts both servers down gracefully: each
// waits for its requests to finish until ctx is done.
func (t *tlsServer) Shutdown(ctx context.Context) error {
	t.stop()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = t.h1.Shutdown(ctx) }()
	go func() { defer wg.Done(); errs[1] = t.h2.Shutdown(ctx) }()
	wg.Wait()
	t.served.Wait()
	return errors.Join(errs...)
}

// Close closes the listener and every connection at once.
func (t *tlsServer) Close() error {
	t.stop()
	err := errors.Join(t.h1.Close(), t.h2.Close())
	t.served.Wait()
	return err
}

// connQueue is a net.Listener whose connections are pushed to it: those
// whose handshake chose one server's protocol.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server's Accept; false once the queue is closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

// Accept returns the next connection pushed, or net.ErrClosed once the
// queue is closed.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close closes the queue: Accept and push fail from then on.
func (q *connQueue) Close() error {
	q.close()
	return nil
}

func (q *connQueue) close() { q.once.Do(func() { close(q.done) }) }

// Addr is the TLS listener's address.
func (q *connQueue) Addr() net.Addr { return q.addr }
