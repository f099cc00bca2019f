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
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // p.peekFD, bound once
	res peekResult
	buf [1]byte
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
	p := &socketPeeker{rc: rc}
	p.fn = p.peekFD
	return p
}

// peek reports what is waiting on the socket.
func (p *socketPeeker) peek() peekResult {
	if p == nil {
		return peekUnknown
	}
	p.res = peekUnknown
	if err := p.rc.Read(p.fn); err != nil {
		return peekClosed // the connection is closed already
	}
	return p.res
}

func (p *socketPeeker) peekFD(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n > 0:
		p.res = peekData
	case err == nil:
		p.res = peekClosed // 0 bytes: the peer's FIN
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		p.res = peekEmpty
	default:
		p.res = peekClosed // a reset or another socket error
	}
	return true // never wait for readiness
}
