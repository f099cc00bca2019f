//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// socketPeeker looks at a socket's receive queue without waiting and
// without taking anything from it: one recv(MSG_PEEK|MSG_DONTWAIT). It is
// made once per connection, so a peek allocates nothing, and used by one
// goroutine at a time.
type socketPeeker struct {
	fd  int // the socket, valid while the connection is open
	buf [1]byte
	// rc is the socket's RawConn, for awaitNews; news is its callback.
	rc   syscall.RawConn
	news func(uintptr) bool
}

// newSocketPeeker returns a peeker for c's socket, or nil when c has none.
func newSocketPeeker(c net.Conn) *socketPeeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	// The descriptor is taken once: a peek needs neither the poller nor
	// the descriptor's lock (RawConn.Read takes both), because the
	// connection is held by one goroutine and open while it peeks (the
	// pool's sweep closes only connections that are in the pool).
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil || fd < 0 {
		return nil
	}
	p := &socketPeeker{fd: fd, rc: rc}
	p.news = func(uintptr) bool { return p.peek() != peekEmpty }
	return p
}

// awaitNews waits, parked in the runtime's poller and without a system
// call until the socket becomes readable, for the socket to have
// something to say (bytes, the peer's FIN, a reset), and returns nil then;
// it takes nothing from the socket. It returns an error when the socket's
// read deadline passes or the connection is closed.
func (p *socketPeeker) awaitNews() error {
	return p.rc.Read(p.news)
}

// peek reports what is waiting on the socket.
func (p *socketPeeker) peek() peekResult {
	if p == nil {
		return peekUnknown
	}
	for {
		n, err := recvPeek(p.fd, p.buf[:])
		switch {
		case n > 0:
			return peekData
		case err == nil:
			return peekClosed // 0 bytes: the peer's FIN
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return peekEmpty
		default:
			return peekClosed // a reset or another socket error
		}
	}
}
