// Package sockio reads and writes the gateway's TCP sockets with raw
// system calls: Wrap returns a net.Conn whose Read and Write call read(2)
// and write(2) through the socket's syscall.RawConn with
// syscall.RawSyscall, rather than through the Go runtime's syscall
// entry and exit.
//
// The sockets are non-blocking (the runtime's poller waits for them), so
// neither call can block: a socket with nothing to read or no room to
// write answers EAGAIN at once, and the RawConn then waits in the poller
// as net.Conn does. What the raw call saves is the runtime's
// bookkeeping around a system call that may block, and with it the
// monitor thread taking the processor away from a thread preempted in
// the middle of a loopback write (which runs the receiver's TCP path):
// side by side under the same load, 1.04 to 1.07 times the requests/s of
// the same build, with p99 no worse (docs/performance.md).
//
// Errors are the ones net.Conn returns: a *net.OpError with Op "read" or
// "write" around the system call's error, io.EOF at the end of the
// stream, os.ErrDeadlineExceeded and net.ErrClosed through errors.Is.
// Deadlines set on the connection apply. On systems other than Linux,
// Wrap returns the connection unchanged.
//
// A server that waits for its next request can wait holding no read
// buffer with ReadWhenReady: it asks for the buffer only once the
// socket's read finds bytes, with the same system calls as a Read.
//
// Inside ReadWhenReady's callback, a read can also tell whether the
// socket holds more after it (bytes or the peer's FIN: TCP_INQ), so that
// a server answering inside one ReadWhenReady knows when it may wait
// without reading first (h1server's held read).
//
// A client that sends a request and then reads the answer can do both
// with WriteThenAwaitRead: the request is written from inside the read's
// wait, so the read that would find nothing before the answer comes is
// not made (the upstream transport does this for requests without a
// body).
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a TCP connection read and written with raw system calls. Make
// one with Wrap. Its methods are safe for concurrent use as net.Conn's
// are: reads are serialized with reads, writes with writes.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	rmu  sync.Mutex // serializes Read, and guards the fields the read callback uses
	rbuf []byte
	rn   int
	rerr error
	rfn  func(uintptr) bool // rawRead bound once: no closure per call
	// send is WriteThenAwaitRead's write, and sendErr its error; sent
	// says whether the callback ran it. afn is awaitRead bound once.
	send    func() error
	sendErr error
	sent    bool
	afn     func(uintptr) bool

	// ready is ReadWhenReady's callback, and readyFn its RawConn.Read
	// callback bound once; nowait is the reader handed to ready.
	ready   func(io.Reader) bool
	readyFn func(uintptr) bool
	nowait  fdReader
	// inq is whether the kernel reports, with each read, what the socket
	// holds after it (TCP_INQ: see fdReader.ReportPending): 0 not asked
	// yet, 1 it does, -1 it refused. Guarded by rmu.
	inq int8

	wmu  sync.Mutex // serializes Write, and guards the write callback's fields
	wbuf []byte
	wn   int
	werr error
	wfn  func(uintptr) bool
}

// fdReader reads a socket without waiting: inside ReadWhenReady's
// callback only, which holds its file descriptor (Linux).
type fdReader struct {
	c  *Conn
	fd uintptr
}

// Read reads from the socket, as net.Conn's Read does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.rfn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerr != nil:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// WriteThenAwaitRead calls send, which writes to the connection (a
// request), then waits until the socket has something to read (the
// answer, a FIN or a reset), its read deadline passes or it is closed,
// without reading. The Read that follows then finds its bytes at once,
// where a plain Write and Read would make a read that finds nothing
// (EAGAIN) before waiting: one system call fewer per exchange.
//
// The wait forgets any readiness the poller noted before send: bytes that
// were already waiting on the socket wake it only when more arrive. Use it
// only when the peer sends nothing before it has what send writes (a
// request to an HTTP/1.1 server on a connection with nothing pending).
//
// It returns send's error. A failed wait (the read deadline, a close) is
// not returned: the Read that follows fails the same way.
func (c *Conn) WriteThenAwaitRead(send func() error) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.send, c.sendErr, c.sent = send, nil, false
	_ = c.rc.Read(c.afn) // a failed wait: the Read that follows reports it
	sendErr := c.sendErr
	if !c.sent {
		// The RawConn did not call back (closed): send as usual.
		sendErr = send()
	}
	c.send, c.sendErr = nil, nil
	return sendErr
}

// awaitRead is WriteThenAwaitRead's RawConn.Read callback: the first call
// sends (after the RawConn reset the socket's readiness) and asks to
// wait, unless the send failed; the next, once the socket is readable,
// ends the wait.
func (c *Conn) awaitRead(uintptr) bool {
	if c.sent {
		return true
	}
	c.sent = true
	c.sendErr = c.send()
	return c.sendErr != nil
}

// Write writes all of p to the socket, waiting for room as net.Conn's
// Write does.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.wfn)
	n := c.wn
	c.wbuf = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case c.werr != nil:
		return n, c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return n, nil
}

// opError wraps err as net.Conn's methods do: a RawConn's own errors
// (closed, deadline) come as an OpError with Op "raw-read" or
// "raw-write", whose inner error is kept.
func (c *Conn) opError(op string, err error) error {
	if oe := (*net.OpError)(nil); errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// ReadFrom lets io.Copy into the connection use the wrapped connection's
// ReadFrom (splice between sockets, sendfile) when it has one.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c}, r)
}

// WriteTo lets io.Copy out of the connection use the wrapped
// connection's WriteTo when it has one.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c})
}

// Listener returns ln whose accepted connections are wrapped by Wrap.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// SyscallConn returns the socket's RawConn.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// CloseWrite shuts down the writing side of the wrapped connection when
// it can (a *net.TCPConn); else it does nothing.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
