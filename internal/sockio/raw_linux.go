package sockio

import (
	"net"
	"syscall"
	"unsafe"
)

// Wrap returns c read and written with raw system calls when c is a
// socket (it has SyscallConn), else c itself.
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc}
	w.rfn, w.wfn, w.afn = w.rawRead, w.rawWrite, w.awaitRead
	return w
}

// rawRead is the RawConn.Read callback: one read(2), or false on EAGAIN
// so that the RawConn waits for the socket to be readable.
func (c *Conn) rawRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = e
			return true
		}
	}
}

// rawWrite is the RawConn.Write callback: write(2) until all is written,
// or false on EAGAIN so that the RawConn waits for room.
func (c *Conn) rawWrite(fd uintptr) bool {
	for len(c.wbuf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.wbuf[0])), uintptr(len(c.wbuf)))
		switch e {
		case 0:
			c.wn += int(n)
			c.wbuf = c.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}
