package h1server

import (
	"errors"
	"io"
	"net/http"
	"syscall"
)

// A held read: the requests of a plain TCP connection (sockio's, on Linux)
// are read, answered and waited for inside one read of its socket
// (ReadWhenReady), for as long as they can be.
//
// Why: Go's poller forgets a socket's readiness at the start of every read
// (net.Conn's, a RawConn's), so a server that answers and then reads
// again must make a read that finds nothing (EAGAIN) before it waits, as
// the next request has mostly not come yet: 0.84 reads per request more
// than nginx makes, measured under wrk. Held inside one read, the
// readiness the poller notes after the last read stays: after an answer
// the connection waits without a read, and wakes for the next request's
// bytes, for pipelined bytes that came while it answered, or for the
// visitor's FIN. That is only right when the last read left nothing
// behind, whose readiness the poller has already spent: bytes beyond the
// buffer's room, or a FIN that came with the request (a visitor that
// half-closes after sending it). The kernel says so with each read
// (TCP_INQ, asked for once per connection after its first answer:
// sockio's ReportPending); until it does, and where it cannot, an answer
// is followed by a read, as before.
//
// What it costs: the socket's descriptor is held while a request is
// answered, so nothing else may read the socket meanwhile. Hence only
// requests without a body, not CONNECT and without an Upgrade field are
// answered inside (the others end the held read and are answered as
// before), and a head that needs more bytes than the read found is read
// outside, where a read may wait. A request answered inside cannot be
// hijacked; its watch for the visitor leaving is a look at the socket per
// sweep tick (checkGone) rather than a goroutine waiting on it; and
// closeNow cancels it and shuts the socket down before the close, which
// waits for the held read to end.

// heldOutcome is what ended a held read: a request to answer outside,
// or an error that ends the connection (errLinger: after an answer). Both
// zero: a head that needs more bytes, read outside.
type heldOutcome struct {
	req    *http.Request
	cancel *requestContext
	err    error
}

// errLinger ends a connection after an answer, lingering when bytes of
// the visitor's are unread.
var errLinger = errors.New("h1server: connection closes after the answer")

// errHeldHijack refuses to hijack a request answered inside a held read.
var errHeldHijack = errors.New("h1server: a request without an Upgrade field cannot be hijacked")

// nextRequest returns the next request to answer outside a held read:
// it answers the connection's requests inside one while it can (see
// above), when the connection has one.
func (c *conn) nextRequest() (*http.Request, *requestContext, error) {
	if c.heldFn == nil {
		return c.readRequest()
	}
	for {
		if c.br != nil && c.br.Buffered() == 0 {
			c.putReader(c.br) // no buffer while waiting
			c.br = nil
		}
		c.held.Store(true)
		err := c.idle.ReadWhenReady(c.heldFn)
		c.held.Store(false)
		if err != nil {
			if retry, err := c.waitFailed(err); !retry {
				return nil, nil, err
			}
			continue
		}
		out := c.heldOut
		c.heldOut = heldOutcome{}
		switch {
		case out.err != nil:
			return nil, nil, out.err
		case out.req != nil:
			return out.req, out.cancel, nil
		}
		return c.readRequest()
	}
}

// serveHeld is the held read's callback (ReadWhenReady's), r the socket's
// reader that never waits: it answers requests until the socket has
// nothing more (false: wait, and call again when it has), or until one
// must be answered outside or the connection ends (true, with heldOut).
func (c *conn) serveHeld(r io.Reader) bool {
	// Every read of the buffer's goes to r while the callback runs: none
	// may wait on the socket, whose read this is.
	c.src.r = r
	defer func() { c.src.r = nil }()
	for {
		if c.closing.Load() {
			c.heldOut.err = errClosed
			return true
		}
		if c.br == nil || c.br.Buffered() == 0 {
			if c.br == nil {
				c.br = c.getReader()
			}
			if _, err := c.br.Peek(1); err != nil {
				if errors.Is(err, syscall.EAGAIN) {
					c.putReader(c.br)
					c.br = nil
					return false
				}
				c.heldOut.err = err
				return true
			}
		}
		if buf, _ := c.br.Peek(c.br.Buffered()); !headBuffered(buf) {
			return true // read outside
		}
		req, cancel, err := c.readRequest()
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) {
				err = errClosed // headBuffered promised no read: never expected
			}
			c.heldOut.err = err
			return true
		}
		if req.Body != http.NoBody || req.Method == http.MethodConnect || req.Header["Upgrade"] != nil {
			c.heldOut.req, c.heldOut.cancel = req, cancel
			return true
		}
		switch c.answer(req, cancel) {
		case answerLinger:
			c.heldOut.err = errLinger
			return true
		case answerClose:
			c.heldOut.err = errClosed
			return true
		}
		if c.br.Buffered() > 0 {
			continue // a pipelined request
		}
		c.putReader(c.br)
		c.br = nil
		if !c.src.more {
			return false
		}
		if pr, ok := r.(pendingReader); ok {
			pr.ReportPending() // from the next read on: one system call per connection
		}
	}
}

// headBuffered reports whether buf holds a whole request head, so that
// readHead takes it without a read: its end found after the empty lines
// readHead skips, or a malformed start it refuses at once.
func headBuffered(buf []byte) bool {
	for range maxLeadingEmptyLines {
		if len(buf) == 0 || buf[0] != '\r' && buf[0] != '\n' {
			break
		}
		if buf[0] == '\n' {
			buf = buf[1:]
			continue
		}
		if len(buf) < 2 {
			return false
		}
		if buf[1] != '\n' {
			return true // readHead refuses it
		}
		buf = buf[2:]
	}
	end, _ := headEnd(buf, 0)
	return end >= 0
}
