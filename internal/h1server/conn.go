package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection states, read by the sweeper.
const (
	stateNew    uint32 = iota // accepted, no byte of the first request yet
	stateIdle                 // between requests
	stateHeader               // reading a request's head
	stateActive               // the handler runs
	stateDone                 // closed or hijacked
	// stateParked: between requests, and asked to park (the sweeper set
	// a read deadline in the past to wake its goroutine) or parked (no
	// goroutine: see idlePoller). Changes to and from it are made under
	// parkMu, so that a request that comes as the park is asked for
	// clears the deadline after it was set.
	stateParked
)

// Buffer sizes: the read buffer holds most request heads whole; the
// write buffer takes a small answer's head and body in one write.
const (
	readBufferSize  = 4 << 10
	writeBufferSize = 4 << 10
	// maxDiscardBytes is how much of a body the handler left unread is
	// read and dropped to keep the connection; past it, it is closed
	// (net/http's maxPostHandlerReadBytes).
	maxDiscardBytes = 256 << 10
	// lingerTime is how long an answer after which the connection
	// closes with request bytes unread (an error answer, a body the
	// handler left) waits for the visitor to read it: the server reads
	// and drops what comes meanwhile, up to lingerMaxBytes, so that the
	// close is not a reset that destroys the answer (as nginx's
	// lingering_close; net/http waits as long).
	lingerTime     = 500 * time.Millisecond
	lingerMaxBytes = 16 << 20
)

// conn is one visitor connection.
type conn struct {
	srv        *Server
	rwc        net.Conn
	raw        syscall.RawConn // for the watcher; nil when the connection has none
	remoteAddr string
	baseCtx    context.Context
	// tlsConn is the connection when it is TLS, and tlsState its state,
	// taken at its first request (the handshake is done by then) and
	// shared by its requests as req.TLS, as net/http does.
	tlsConn  *tls.Conn
	tlsState *tls.ConnectionState

	br *bufio.Reader // nil while the connection waits for a request (when idle is set, or over TLS)
	bw *bufio.Writer // nil while idle

	// idle is the socket's wait without a read buffer (sockio's
	// ReadWhenReady), nil when the connection has none; awaitFn is
	// awaitRequest bound once, src what br reads from, and idleErr the
	// error of awaitRequest's read.
	idle    readyReader
	awaitFn func(io.Reader) bool
	src     source
	idleErr error
	// tlsFirst holds the first byte of a request over TLS, read while
	// the connection waited without a read buffer (awaitTLSRequest).
	tlsFirst [1]byte

	state atomic.Uint32
	since atomic.Int64 // coarse time the state began

	resp     response
	contMu   sync.Mutex  // orders a 100 Continue sent by a body read with the answer's head
	bodyDone atomic.Bool // the request has no body left to read
	readErr  atomic.Bool // a read on the connection failed (the body may be read on another goroutine)
	answered bool        // the current request's answer is complete
	hijacked bool

	watchMu      sync.Mutex
	watchAllowed bool // the current request may be watched
	watching     bool
	watchDone    chan struct{}
	cancel       *requestContext // the current request's
	peekBuf      [1]byte
	deadlineSet  bool // the handler set a deadline on the connection

	parkMu sync.Mutex
	// noPark: parking failed once (the kernel refused the epoll
	// registration); the connection keeps its goroutine.
	noPark atomic.Bool
	// parkID is the connection's key in the idlePoller while parked, and
	// inEpoll whether its socket is in the poller's epoll set; both
	// guarded by the poller's mutex.
	parkID  uint64
	inEpoll bool

	// held: the connection's requests are read, answered and waited for
	// inside one read of its socket (heldread.go), heldFn that callback
	// bound once, and heldOut what ended the held read. closing: closeNow
	// has shut the socket down (a held request is cancelled, and no more
	// are read).
	held    atomic.Bool
	heldFn  func(io.Reader) bool
	heldOut heldOutcome
	closing atomic.Bool
}

func newConn(s *Server, rw net.Conn) *conn {
	c := &conn{srv: s, rwc: rw}
	if ra := rw.RemoteAddr(); ra != nil {
		c.remoteAddr = ra.String() // (none on some wrapped or piped connections)
	}
	c.raw = rawConn(rw)
	c.tlsConn, _ = rw.(*tls.Conn)
	c.src.c = c
	if c.idle = readyReaderOf(rw); c.idle != nil {
		c.awaitFn = c.awaitRequest
		c.heldFn = c.serveHeld
	}
	c.baseCtx = context.WithValue(context.Background(), http.LocalAddrContextKey, rw.LocalAddr())
	c.since.Store(s.clock.Load())
	c.state.Store(stateNew)
	c.resp.c = c
	return c
}

// rawConn returns the socket beneath c (through wrappers with a NetConn
// method, as *tls.Conn has), or nil.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}

// serve reads and answers the connection's requests until it closes or
// parks (then the idlePoller calls serve again when the next request
// comes).
func (c *conn) serve() {
	if c.idle == nil && c.tlsConn == nil && c.br == nil {
		c.br = c.getReader()
	}
	parked := false
	defer func() {
		if !parked {
			c.end()
		}
	}()
	for {
		req, cancel, err := c.nextRequest()
		if err != nil {
			if errors.Is(err, errParked) {
				// Another goroutine may own the connection now:
				// nothing more of it is touched here.
				parked = true
				return
			}
			if errors.Is(err, errLinger) {
				c.lingerIfUnread()
				return
			}
			var re *requestError
			if errors.As(err, &re) {
				c.answerError(re)
			}
			return
		}
		switch c.answer(req, cancel) {
		case answerLinger:
			c.lingerIfUnread()
			return
		case answerClose:
			return
		}
	}
}

// answerOutcome is what follows an answer: the next request, or the
// close (after a linger when the visitor's bytes are unread).
type answerOutcome int

const (
	answerNext answerOutcome = iota
	answerLinger
	answerClose
)

// answer serves a request and makes the connection idle again.
func (c *conn) answer(req *http.Request, cancel *requestContext) answerOutcome {
	keep := c.serveRequest(req, cancel)
	c.resp.release()
	if !keep || c.srv.closed.Load() {
		return answerLinger
	}
	c.since.Store(c.srv.clock.Load())
	if !c.state.CompareAndSwap(stateActive, stateIdle) {
		return answerClose // closed meanwhile
	}
	if c.br.Buffered() == 0 {
		c.putWriter()
	}
	return answerNext
}

// lingerIfUnread lingers before the close when bytes of the visitor's are
// unread after a complete answer: a close now would be a reset that can
// destroy the answer before the visitor reads it.
func (c *conn) lingerIfUnread() {
	if c.answered && c.resp.err == nil && c.br != nil && (!c.bodyDone.Load() || c.br.Buffered() > 0) {
		c.linger()
	}
}

// end closes the connection (unless hijacked) and gives its buffers back.
func (c *conn) end() {
	c.state.Store(stateDone)
	if !c.hijacked {
		_ = c.rwc.Close()
		c.putWriter()
		if c.br != nil {
			c.putReader(c.br)
			c.br = nil
		}
	}
	c.srv.forget(c)
}

// closeIfIdle closes the connection when it waits for a request
// (Shutdown), parked or not.
func (c *conn) closeIfIdle() {
	c.parkMu.Lock()
	closing := c.state.CompareAndSwap(stateIdle, stateDone) || c.state.CompareAndSwap(stateNew, stateDone) ||
		c.state.CompareAndSwap(stateParked, stateDone)
	c.parkMu.Unlock()
	if closing {
		c.closeParked()
	}
}

// closeNow closes the connection whatever it is doing (a timeout,
// Close): as closeParked, after marking a connection asked to park closed,
// so that its goroutine ends it rather than parks it.
//
// A request answered inside a held read holds the socket's descriptor, and
// a close waits for the read to end: the socket is shut down, then the
// request cancelled, so that its handler returns at once rather than when
// it would have, and whatever it writes after fails (the visitor sees the
// connection cut, never an answer the handler gave up on: net/http's
// default 200 for a handler that wrote nothing). closing is set once the
// socket is shut down.
func (c *conn) closeNow() {
	c.parkMu.Lock()
	c.state.CompareAndSwap(stateParked, stateDone)
	c.parkMu.Unlock()
	if c.raw != nil && c.idle != nil {
		_ = c.raw.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	}
	c.closing.Store(true)
	if c.held.Load() {
		c.cancelCurrent()
	}
	c.closeParked()
}

// closeParked closes the connection, and ends it when it is parked (it has
// no goroutine to notice the close); a goroutine waiting on it sees the
// close and ends it itself.
func (c *conn) closeParked() {
	_ = c.rwc.Close()
	if p := c.srv.poller; p != nil && p.unpark(c) {
		c.end()
	}
}

// requestPark asks the goroutine of a connection idle since the last
// sweep to end (see Server.ParkIdleAfter): it wakes it with a read
// deadline in the past, and the goroutine parks the connection (park).
func (c *conn) requestPark() {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if c.state.CompareAndSwap(stateIdle, stateParked) {
		_ = c.rwc.SetReadDeadline(aLongTimeAgo())
	}
}

// errParked ends serve without ending the connection: it is parked.
var errParked = errors.New("h1server: connection parked")

// park is called by the connection's goroutine when its wait for a request
// ended in an error while the park was asked for: it clears the deadline
// and hands the connection to the idlePoller, and reports whether it did
// (the goroutine must then return without touching the connection). When
// the poller refuses, the connection goes back to waiting with its
// goroutine; when it was closed meanwhile, the error stands.
func (c *conn) park() (parked, retry bool) {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if c.state.Load() != stateParked {
		return false, false
	}
	_ = c.rwc.SetReadDeadline(time.Time{})
	if c.srv.poller.park(c) {
		return true, false
	}
	c.noPark.Store(true)
	c.state.Store(stateIdle)
	return false, true
}

// leavePark takes a connection asked to park, or parked, whose next
// request has come back to reading it: the park's deadline is cleared.
// False when it was closed meanwhile.
func (c *conn) leavePark() bool {
	c.parkMu.Lock()
	defer c.parkMu.Unlock()
	if !c.state.CompareAndSwap(stateParked, stateHeader) {
		return false
	}
	_ = c.rwc.SetReadDeadline(time.Time{})
	return true
}

func (c *conn) getReader() *bufio.Reader {
	if br, ok := c.srv.readers.Get().(*bufio.Reader); ok {
		br.Reset(&c.src)
		return br
	}
	return bufio.NewReaderSize(&c.src, readBufferSize)
}

func (c *conn) putReader(br *bufio.Reader) {
	br.Reset(nil)
	c.srv.readers.Put(br)
}

// readyReader is a socket that can wait for something to read without a
// buffer (sockio.Conn on Linux).
type readyReader interface {
	ReadWhenReady(ready func(io.Reader) bool) error
}

// readyReaderOf returns the readyReader beneath c's wrappers (those with
// a NetConn method), or nil: none beneath TLS, whose bytes are not the
// socket's.
func readyReaderOf(c net.Conn) readyReader {
	for {
		if _, ok := c.(*tls.Conn); ok {
			return nil
		}
		if r, ok := c.(readyReader); ok {
			return r
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}

// source is what the read buffer fills from: the connection, or, while
// awaitRequest runs, the socket itself (r); first the bytes pending, read
// by awaitTLSRequest before the buffer was taken.
type source struct {
	c       *conn
	r       io.Reader
	pending []byte
	// more: the socket may hold more after the last read (bytes or the
	// visitor's FIN), or nothing says it does not.
	more bool
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if s.r == nil {
		s.more = true
		return s.c.rwc.Read(p)
	}
	if pr, ok := s.r.(pendingReader); ok {
		n, pending, known, err := pr.ReadPending(p)
		s.more = pending || !known
		return n, err
	}
	s.more = true
	return s.r.Read(p)
}

// pendingReader is a reader of the socket that can say whether the socket
// holds more after a read (sockio's, on Linux: see serveHeld).
type pendingReader interface {
	ReportPending() bool
	ReadPending(p []byte) (n int, pending, known bool, err error)
}

// waitForRequest waits until the next request's first bytes are in the
// read buffer. A connection with nothing buffered gives its buffer back
// while it waits, when its socket allows (readyReader) or over TLS
// (awaitTLSRequest): an idle connection then holds 4 KiB less, for the
// same system calls.
func (c *conn) waitForRequest() error {
	if c.br != nil && c.br.Buffered() > 0 {
		return nil
	}
	if c.idle == nil {
		if c.tlsConn != nil {
			return c.awaitTLSRequest()
		}
		_, err := c.br.Peek(1)
		return err
	}
	if c.br != nil {
		c.putReader(c.br)
		c.br = nil
	}
	for {
		c.idleErr = nil
		err := c.idle.ReadWhenReady(c.awaitFn)
		if err == nil {
			return c.idleErr
		}
		if retry, err := c.waitFailed(err); !retry {
			return err
		}
	}
}

// waitFailed says what a failed wait for a request means. Only the park's
// deadline parks: a timeout while the park is asked for, which crypto/tls
// survives too (a record cut by it is read on at the next Read). Then the
// error is errParked, or, when the poller refused, retry is true and the
// connection waits again with its goroutine. Anything else (the visitor's
// FIN or close_notify, a close) is the wait's error, parked or not.
func (c *conn) waitFailed(err error) (retry bool, _ error) {
	var ne net.Error
	if c.state.Load() != stateParked || !errors.As(err, &ne) || !ne.Timeout() {
		return false, err
	}
	parked, retry := c.park()
	if parked {
		return false, errParked
	}
	return retry, err
}

// awaitRequest is waitForRequest's callback: it takes a read buffer and
// fills it from the socket, and gives it back when the socket has nothing
// yet (false: wait).
func (c *conn) awaitRequest(r io.Reader) bool {
	br := c.getReader()
	c.src.r = r
	_, err := br.Peek(1)
	c.src.r = nil
	if errors.Is(err, syscall.EAGAIN) {
		c.putReader(br)
		return false
	}
	c.br, c.idleErr = br, err
	return true
}

// awaitTLSRequest is waitForRequest over TLS: the connection waits in a
// one-byte read through TLS, without a read buffer, and takes one when the
// byte comes, with the byte pending in front of what it fills. crypto/tls
// decrypts the whole record that brought the byte into its own buffer,
// so the rest of the request costs no system call more.
func (c *conn) awaitTLSRequest() error {
	if c.br != nil {
		c.putReader(c.br)
		c.br = nil
	}
	var n int
	for {
		var err error
		n, err = c.tlsConn.Read(c.tlsFirst[:])
		if n > 0 {
			break
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		if retry, err := c.waitFailed(err); !retry {
			return err
		}
	}
	// An error with the byte comes again at the next read.
	c.src.pending = c.tlsFirst[:n]
	c.br = c.getReader()
	return nil
}

// writer returns the connection's write buffer, taking one from the pool
// when it has none.
func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		if bw, ok := c.srv.writers.Get().(*bufio.Writer); ok {
			bw.Reset(c.rwc)
			c.bw = bw
		} else {
			c.bw = bufio.NewWriterSize(c.rwc, writeBufferSize)
		}
	}
	return c.bw
}

func (c *conn) putWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		c.srv.writers.Put(c.bw)
		c.bw = nil
	}
}

// serveRequest runs the handler and finishes the answer; it reports
// whether the connection can take another request.
func (c *conn) serveRequest(req *http.Request, cancel *requestContext) bool {
	w := &c.resp
	w.reset(req)
	c.bodyDone.Store(req.Body == http.NoBody)
	c.watchMu.Lock()
	c.cancel, c.watchAllowed = cancel, true
	c.watchMu.Unlock()
	if c.closing.Load() && c.held.Load() {
		cancel.cancel() // closeNow came before c.cancel was set
	}
	c.since.Store(c.srv.clock.Load())
	c.state.Store(stateActive)

	reqBody := req.Body // the handler may wrap it (http.MaxBytesReader)
	c.answered = false
	ok := c.runHandler(w, req)
	if c.hijacked {
		cancel.cancel()
		return false
	}
	c.stopWatch()
	if !ok {
		cancel.cancel()
		return false
	}
	w.finish()
	c.answered = true
	cancel.cancel()
	if c.deadlineSet {
		c.deadlineSet = false
		_ = c.rwc.SetDeadline(time.Time{})
	}
	if w.closeAfter || c.readErr.Load() || req.Close {
		return false
	}
	if !c.bodyDone.Load() {
		return c.discardBody(reqBody)
	}
	return true
}

// runHandler calls the handler; false when it panicked (an
// http.ErrAbortHandler panic is the handler's way to abort the answer and
// is not logged).
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if err, isErr := v.(error); isErr && errors.Is(err, http.ErrAbortHandler) {
				return
			}
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logf("h1server: panic serving %s: %v\n%s", c.remoteAddr, v, buf)
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// discardBody reads what is left of a body the handler did not read
// (the server's own, whatever the handler put in req.Body), up to
// maxDiscardBytes; true when it ended within that.
func (c *conn) discardBody(reqBody io.ReadCloser) bool {
	if c.resp.expectContinue {
		c.contMu.Lock()
		sent := c.resp.sentContinue
		c.contMu.Unlock()
		if !sent {
			return false // the visitor waits for a 100 that never came
		}
	}
	b, ok := reqBody.(*body)
	if !ok || b.c != c {
		return false
	}
	return b.drain(maxDiscardBytes) && !c.readErr.Load()
}

// noteReadError records a failed read on the connection and cancels the
// request's context: net/http treats a read error as the visitor leaving,
// and so do we.
func (c *conn) noteReadError() {
	c.readErr.Store(true)
	c.cancelCurrent()
}

// cancelCurrent cancels the context of the request the handler runs, if
// one does.
func (c *conn) cancelCurrent() {
	c.watchMu.Lock()
	cancel := c.cancel
	c.watchMu.Unlock()
	if cancel != nil {
		cancel.cancel()
	}
}

// startWatch starts watching the socket for the visitor leaving while the
// handler runs; called by the sweeper for requests running for a tick.
func (c *conn) startWatch() {
	if c.raw == nil || !c.bodyDone.Load() {
		return
	}
	if c.held.Load() {
		c.checkGone()
		return
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watching || !c.watchAllowed || c.state.Load() != stateActive {
		return
	}
	c.watching = true
	c.watchDone = make(chan struct{})
	go c.watch(c.cancel, c.watchDone)
}

// watch waits until the socket has something to say: the visitor's FIN or
// a reset cancels the request's context; bytes (a pipelined request) end
// the watch without taking them. A deadline set by stopWatch ends it too.
func (c *conn) watch(cancel *requestContext, done chan struct{}) {
	defer close(done)
	if c.tlsConn != nil {
		c.watchTLS(cancel)
		return
	}
	gone := false
	err := c.raw.Read(func(fd uintptr) bool {
		said, g := peekGone(fd, &c.peekBuf)
		gone = g
		return said
	})
	if err == nil && gone {
		cancel.cancel()
	}
}

// peekGone looks at the socket without taking its bytes or waiting: said
// when it has something to say, gone when that is the visitor's FIN or a
// reset (not bytes: a pipelined request).
func peekGone(fd uintptr, buf *[1]byte) (said, gone bool) {
	n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n > 0:
		return true, false
	case err == nil:
		return true, true // the FIN
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return false, false
	default:
		return true, true // a reset
	}
}

// checkGone is the watch of a request answered inside a held read, whose
// socket no other goroutine can wait on: the sweeper looks at the socket
// once per tick, and cancels the request when the visitor has gone.
func (c *conn) checkGone() {
	c.watchMu.Lock()
	cancel, allowed := c.cancel, c.watchAllowed
	c.watchMu.Unlock()
	if !allowed || cancel == nil || c.state.Load() != stateActive {
		return
	}
	var buf [1]byte
	gone := false
	if err := c.raw.Control(func(fd uintptr) { _, gone = peekGone(fd, &buf) }); err == nil && gone {
		cancel.cancel()
	}
}

// watchTLS is watch over TLS. The socket's bytes cannot tell a pipelined
// request from the visitor's close_notify alert (TLS 1.3 encrypts both),
// so it reads through TLS into the read buffer: a pipelined request's
// bytes stay there for the next request, and the end of the stream (the
// alert, a FIN) or an error cancels the request. A deadline set by
// stopWatch ends it without a cancel (crypto/tls can read on after one).
func (c *conn) watchTLS(cancel *requestContext) {
	_, err := c.br.Peek(1)
	if err == nil {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return
	}
	c.readErr.Store(true)
	cancel.cancel()
}

// stopWatch ends the watch of the request that just finished, if one
// started, and waits for it.
func (c *conn) stopWatch() {
	c.watchMu.Lock()
	watching, done := c.watching, c.watchDone
	c.watching, c.watchAllowed, c.watchDone = false, false, nil
	c.cancel = nil
	c.watchMu.Unlock()
	if !watching {
		return
	}
	_ = c.rwc.SetReadDeadline(aLongTimeAgo())
	<-done
	_ = c.rwc.SetReadDeadline(time.Time{})
}

func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// hijack hands the connection to the handler.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter, error) {
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if c.held.Load() {
		return nil, nil, errHeldHijack
	}
	c.stopWatch()
	bw := c.writer()
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	c.state.Store(stateDone)
	c.srv.forget(c)
	return c.rwc, bufio.NewReadWriter(c.br, bw), nil
}

// requestError is a request the server answers itself and then closes
// the connection: a malformed one, or one over a limit.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.reason)
}

func badRequest(reason string) *requestError {
	return &requestError{status: http.StatusBadRequest, reason: reason}
}

// answerError writes the bare answer net/http writes for the same
// failure and closes the connection after a short linger.
func (c *conn) answerError(e *requestError) {
	text := fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	body := text
	if e.reason != "" && e.status == http.StatusBadRequest {
		body += ": " + e.reason
	}
	msg := "HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	_ = c.rwc.SetWriteDeadline(time.Now().Add(lingerTime))
	if _, err := io.WriteString(c.rwc, msg); err != nil {
		return
	}
	c.linger()
}

// linger closes the writing side and reads (and drops) what the visitor
// still sends for a moment, so that the answer is read before the close.
func (c *conn) linger() {
	cw := closeWriter(c.rwc)
	if cw == nil || cw.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.rwc, lingerMaxBytes)
}

// closeWriter returns what can shut the writing side of c (through
// wrappers with a NetConn method, as gatewise's connection limits have),
// or nil.
func closeWriter(c net.Conn) interface{ CloseWrite() error } {
	for {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			return cw
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}
