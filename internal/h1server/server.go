// Package h1server serves HTTP/1.0 and HTTP/1.1 to any http.Handler, at
// a fraction of net/http's cost per request. It is what gatewise's
// listeners run for HTTP/1.x, plain or over TLS (gatewise completes the
// TLS handshake and hands over the connections that did not choose HTTP/2
// by ALPN; those that did go to net/http's HTTP/2 server). Over a
// *tls.Conn each request's TLS field is the connection's state, taken at
// its first request.
//
// What it saves against net/http.Server, per request: no background read
// goroutine (net/http starts one per request to notice a visitor who
// leaves: a goroutine, a read system call and two deadline changes); no
// read deadline set and cleared per request (one timer goroutine sweeps
// every connection's timeouts instead, as nginx and HAProxy do with their
// timer trees); one string for the whole request head, with every header
// key and value a slice of it; a Date header formatted once per tick; the
// write buffer returned to a pool while the connection waits.
//
// What it keeps: the http.Handler contract, http.ResponseController
// (Flush, Hijack, SetReadDeadline, SetWriteDeadline, EnableFullDuplex),
// http.ErrAbortHandler, Content-Length or chunked framing chosen as
// net/http does, 100-continue, request trailers, keep-alive and pipelining,
// the request's context cancelled when the visitor goes away (noticed by a
// watcher started only for requests still running after one sweep tick;
// over TLS it reads through TLS, so that a close_notify alert counts as
// leaving and a pipelined request's bytes wait in the read buffer; for a
// request answered inside a held read, by a look at the socket per tick),
// graceful Shutdown and Close with http.ErrServerClosed.
//
// On Linux, requests without a body on a plain connection are read,
// answered and waited for inside one read of the socket (a held read:
// heldread.go), so that the wait after an answer needs no read that finds
// nothing first: one system call fewer per request, as nginx makes.
//
// A connection idle for ParkIdleAfter (5 s) is parked on Linux: its
// goroutine ends, one epoll set for the whole server watches its socket,
// and a new goroutine serves its next request (see idlePoller). The idle
// and header timeouts, Shutdown and Close treat it as any idle connection.
//
// Where it differs from net/http.Server on purpose:
//   - no Content-Type sniffing: an answer without one goes out without one;
//   - header fields go out in map order, not sorted;
//   - a request with both Transfer-Encoding and Content-Length is refused
//     (400; RFC 9112 6.3 allows it, and it is how requests are smuggled),
//     as is Transfer-Encoding in an HTTP/1.0 request, which net/http
//     ignores;
//   - obsolete line folding (a field line starting with a space or tab) is
//     refused (400; RFC 9112 5.2), where net/http joins the lines;
//   - up to four empty lines before a request line are skipped (RFC 9112
//     2.2), where net/http's ReadRequest fails;
//   - an "Expect" other than one "100-continue" is refused (417), where
//     net/http looks for the token in the first field's list;
//   - a head over MaxHeaderBytes gets 431 at exactly that many bytes (net/http
//     allows 4 KiB more);
//   - a chunked body the handler did not read closes the connection, where
//     net/http reads up to 256 KiB of it (a body of known length is read
//     and dropped after the answer up to 256 KiB, as net/http does before
//     it);
//   - the head goes out when the body needs it or the handler ends, so a
//     field changed after WriteHeader still counts until then (net/http
//     takes a copy of the map at WriteHeader); a declared trailer is never
//     sent as a header field;
//   - a HEAD answer says the length of what the handler wrote, however
//     long; an HTTP/1.0 answer with trailers declared is framed by its
//     length, not by a close; a trailer set with http.TrailerPrefix after
//     a short body's first write is sent (chunked), where net/http drops it;
//   - on Linux, a plain request without a body and without an Upgrade
//     field cannot be hijacked (it is answered inside a held read), and
//     Close cancels the requests still running before it closes their
//     connections.
package h1server

import (
	"cmp"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTick is how often the sweeper checks timeouts, refreshes the
// Date header and starts watchers for long requests, when Server.Tick is 0.
const DefaultTick = 100 * time.Millisecond

// DefaultParkIdleAfter is how long a connection waits for its next request
// before it is parked, when Server.ParkIdleAfter is 0: 5 s. The request
// that wakes a parked connection costs about 0.1 ms more CPU (the
// goroutine woken to end, the poller's wake-up, a new goroutine and its
// stack's growth), so a visitor coming back within seconds keeps the
// goroutine it had, and a connection idle until the idle timeout (75 s by
// default in gatewise) spends most of it parked.
const DefaultParkIdleAfter = 5 * time.Second

// Server serves HTTP/1.x over the connections of one or more listeners.
// Its fields must not change after the first call to Serve.
type Server struct {
	// Handler answers every request. Required.
	Handler http.Handler
	// ReadHeaderTimeout bounds the time from a request's first byte
	// (or from accept, for a connection's first request, so that a
	// connection that never sends a byte is closed too) to the end of
	// its header section; the connection is closed when it is over.
	// 0 means no limit (a new connection then gets IdleTimeout).
	ReadHeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. 0 means ReadHeaderTimeout; both 0, no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's head (request line and header
	// fields); over it the answer is a bare 431 and the connection is
	// closed. 0 means http.DefaultMaxHeaderBytes (1 MiB).
	MaxHeaderBytes int
	// ErrorLog receives handler panics and accept errors. Nil means
	// the log package's standard logger.
	ErrorLog *log.Logger
	// Tick is the sweeper's period: the granularity of the timeouts
	// above and the delay before a long request's visitor is watched.
	// 0 means DefaultTick.
	Tick time.Duration
	// ParkIdleAfter is how long a keep-alive connection waits for its
	// next request before its goroutine ends, on Linux:
	// the connection is parked, its socket watched by one epoll set for
	// the whole server, and a goroutine starts again when the next
	// request comes (or the visitor closes). A parked connection keeps
	// its state and no stack. 0 means DefaultParkIdleAfter; a negative
	// value never parks.
	ParkIdleAfter time.Duration

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	sweeping   bool
	stopSweep  chan struct{}
	sweepDone  chan struct{}
	closed     atomic.Bool   // Shutdown or Close called
	connsGone  chan struct{} // made by Shutdown or Close; closed when no connection is left
	goneClosed bool

	// poller holds the parked connections; nil when parking is off or
	// the system has no epoll. Made with the sweeper, closed with it.
	poller *idlePoller

	clock atomic.Int64           // coarse time, unix nanoseconds, set by the sweeper
	date  atomic.Pointer[[]byte] // "Date: ...\r\n", set by the sweeper

	// blank is a zero request, never changed, that each request is
	// made from (http.Request.WithContext copies it with the context).
	blank http.Request

	writers sync.Pool // *bufio.Writer
	readers sync.Pool // *bufio.Reader
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, when it returns http.ErrServerClosed; any other
// accept error that is not temporary is returned as it is. Serve closes ln
// when it returns.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		return errNoHandler
	}
	if !s.track(&ln) {
		_ = ln.Close()
		return http.ErrServerClosed
	}
	defer s.untrack(&ln)
	var backoff time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return http.ErrServerClosed
			}
			var retry bool
			if backoff, retry = AcceptBackoff(err, backoff); retry {
				s.logf("h1server: accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(rw)
		if c == nil {
			_ = rw.Close()
			continue
		}
		go c.serve()
	}
}

var errNoHandler = errors.New("h1server: no handler")

// AcceptBackoff reports whether a failed Accept is worth retrying (a
// timeout, running out of file descriptors or memory, a connection aborted
// before accept) and how long to wait first: twice the last wait (prev, 0
// after a success), from 5 ms up to 1 s, as net/http waits.
func AcceptBackoff(err error, prev time.Duration) (wait time.Duration, retry bool) {
	var ne net.Error
	var t interface{ Temporary() bool }
	if !(errors.As(err, &ne) && ne.Timeout()) && !(errors.As(err, &t) && t.Temporary()) {
		return 0, false
	}
	return min(max(2*prev, 5*time.Millisecond), time.Second), true
}

// track registers a listener and starts the sweeper; false after
// Shutdown or Close.
func (s *Server) track(ln *net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		s.stopSweep = make(chan struct{})
		s.sweepDone = make(chan struct{})
		s.refreshClock(time.Now())
		if s.ParkIdleAfter >= 0 && s.poller == nil {
			if p, err := newIdlePoller(); err == nil {
				s.poller = p
				go p.run()
			}
		}
		go s.sweep()
	}
	return true
}

func (s *Server) untrack(ln *net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[ln]; ok {
		delete(s.listeners, ln)
		_ = (*ln).Close()
	}
}

// newConn registers a connection; nil after Shutdown or Close.
func (s *Server) newConn(rw net.Conn) *conn {
	c := newConn(s, rw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return c
}

// forget drops a connection that closed or was hijacked.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.connsGone != nil && !s.goneClosed {
		close(s.connsGone)
		s.goneClosed = true
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish their request (each closes after its answer) until ctx
// is done, when it returns ctx's error and leaves them to Close. Hijacked
// connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	gone := s.beginClose()
	s.closeIdle()
	tick := time.NewTicker(s.tick())
	defer tick.Stop()
	for {
		select {
		case <-gone:
			s.stopSweeper()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			// A connection that went idle after the first pass.
			s.closeIdle()
		}
	}
}

// Close closes every listener and connection now (hijacked ones excepted).
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	s.stopSweeper()
	return nil
}

// beginClose marks the server closed, closes its listeners and returns a
// channel closed when no connection is left.
func (s *Server) beginClose() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	for ln := range s.listeners {
		_ = (*ln).Close()
		delete(s.listeners, ln)
	}
	if s.connsGone == nil {
		s.connsGone = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.connsGone)
			s.goneClosed = true
		}
	}
	return s.connsGone
}

// closeIdle closes the connections waiting for a request, including new
// ones that have not sent a byte yet.
func (s *Server) closeIdle() {
	s.mu.Lock()
	var idle []*conn
	for c := range s.conns {
		if st := c.state.Load(); st == stateIdle || st == stateNew || st == stateParked {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		c.closeIfIdle()
	}
}

func (s *Server) stopSweeper() {
	s.mu.Lock()
	if !s.sweeping {
		s.mu.Unlock()
		return
	}
	s.sweeping = false
	stop, done := s.stopSweep, s.sweepDone
	s.mu.Unlock()
	close(stop)
	<-done
	// Every parked connection was closed by Close or Shutdown first.
	if s.poller != nil {
		s.poller.close()
	}
}

func (s *Server) tick() time.Duration {
	if s.Tick > 0 {
		return s.Tick
	}
	return DefaultTick
}

func (s *Server) parkIdleAfter() time.Duration {
	if s.ParkIdleAfter != 0 {
		return s.ParkIdleAfter
	}
	return DefaultParkIdleAfter
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

// sweep runs every tick: it refreshes the clock and the Date header,
// closes connections over their idle or header timeout, and starts a
// watcher on connections whose request is still running after a tick.
func (s *Server) sweep() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.tick())
	defer t.Stop()
	var expired, park []*conn
	for {
		select {
		case <-s.stopSweep:
			return
		case now := <-t.C:
			s.refreshClock(now)
			expired, park = s.sweepConns(now.UnixNano(), expired[:0], park[:0])
			for _, c := range expired {
				c.closeNow()
			}
			for _, c := range park {
				c.requestPark()
			}
			clear(expired)
			clear(park)
		}
	}
}

// sweepConns returns the connections over their timeouts, and those idle
// long enough to park.
func (s *Server) sweepConns(now int64, expired, park []*conn) ([]*conn, []*conn) {
	idle, header, tick := int64(s.idleTimeout()), int64(s.ReadHeaderTimeout), int64(s.tick())
	parkAfter := int64(s.parkIdleAfter())
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		since := now - c.since.Load()
		switch c.state.Load() {
		case stateIdle:
			switch {
			case idle > 0 && since > idle:
				expired = append(expired, c)
			case s.poller != nil && c.raw != nil && (c.idle != nil || c.tlsConn != nil) && since >= parkAfter && !c.noPark.Load():
				park = append(park, c)
			}
		case stateParked:
			if idle > 0 && since > idle {
				expired = append(expired, c)
			}
		case stateNew:
			// A connection that has not sent a byte yet: its first
			// head's time runs from accept (the idle timeout when
			// there is no header timeout).
			if limit := cmp.Or(header, idle); limit > 0 && since > limit {
				expired = append(expired, c)
			}
		case stateHeader:
			if header > 0 && since > header {
				expired = append(expired, c)
			}
		case stateActive:
			if since >= tick {
				c.startWatch()
			}
		}
	}
	return expired, park
}

// refreshClock stores the coarse time and the Date header for now.
func (s *Server) refreshClock(now time.Time) {
	s.clock.Store(now.UnixNano())
	b := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\n"...)
	s.date.Store(&b)
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}
