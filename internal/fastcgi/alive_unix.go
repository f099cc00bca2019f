//go:build unix

package fastcgi

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: PHP-FPM closes
// a kept connection when its worker exits (pm.max_requests, a reload, a
// kill). It peeks without blocking: an idle connection has nothing to
// read, so end of file, data or an error other than EAGAIN mean it is
// unusable.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var rerr error
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		_, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		return false
	}
	return errors.Is(rerr, syscall.EAGAIN)
}
