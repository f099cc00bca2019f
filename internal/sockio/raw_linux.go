package sockio

import (
	"io"
	"net"
	"os"
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
	w.rfn, w.wfn, w.afn, w.readyFn = w.rawRead, w.rawWrite, w.awaitRead, w.readReady
	w.nowait.c = w
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

// ReadWhenReady is Read for a reader that holds no buffer while it waits
// (a server between two requests): it calls ready with a reader of the
// socket whose Read makes one read(2) and never waits: when the socket
// has nothing, that Read returns syscall.EAGAIN (errors.Is), and ready
// gives back its buffer and returns false to wait until the socket is
// readable, when ready is called again. ready returns true when it is
// done (it read bytes, io.EOF or an error). The system calls are a
// Read's: the read that finds nothing, then the one that finds bytes.
//
// The error is the wait's: the read deadline passed or the connection was
// closed (as Read's). Only ready reads the socket meanwhile: Read waits.
func (c *Conn) ReadWhenReady(ready func(io.Reader) bool) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.ready = ready
	err := c.rc.Read(c.readyFn)
	c.ready, c.nowait.fd = nil, 0
	if err != nil {
		return c.opError("read", err)
	}
	return nil
}

// readReady is ReadWhenReady's RawConn.Read callback.
func (c *Conn) readReady(fd uintptr) bool {
	c.nowait.fd = fd
	return c.ready(&c.nowait)
}

// Read makes one read(2): syscall.EAGAIN when there is nothing to read,
// io.EOF at the end of the stream, else a *net.OpError as Conn.Read's.
func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, r.fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, syscall.EAGAIN
		default:
			return 0, r.c.opError("read", os.NewSyscallError("read", e))
		}
	}
}
