//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// peekNoWait looks at a socket's receive queue without waiting and without
// taking anything from it.
func peekNoWait(c net.Conn) peekResult {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekUnknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekUnknown
	}
	res := peekUnknown
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			res = peekData
		case rerr == nil:
			res = peekClosed // 0 bytes: the peer's FIN
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
			res = peekEmpty
		default:
			res = peekClosed // a reset or another socket error
		}
		return true // never wait for readiness
	})
	if err != nil {
		return peekClosed // the connection is closed already
	}
	return res
}
