package sockio

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// tcpInq is TCP_INQ (linux/tcp.h, Linux 4.18): the socket option that
// makes the kernel add to each recvmsg(2) a control message, of the same
// type, with the bytes left to read (1 when none but the peer's FIN).
const tcpInq = 36

// ReportPending asks the kernel to say, with every read made by
// ReadPending from now on, whether the socket holds more after it
// (TCP_INQ). It makes one system call, the first time only, and reports
// whether the kernel agreed.
func (r *fdReader) ReportPending() bool {
	if r.c.inq == 0 {
		r.c.inq = -1
		if syscall.SetsockoptInt(int(r.fd), syscall.IPPROTO_TCP, tcpInq, 1) == nil {
			r.c.inq = 1
		}
	}
	return r.c.inq == 1
}

// ReadPending reads as Read does, and says whether the socket holds more
// after the read: bytes not read yet, or the peer's FIN not met yet
// (pending). known is false when the kernel does not say (ReportPending
// not called or refused): then the caller must read again to know.
func (r *fdReader) ReadPending(p []byte) (n int, pending, known bool, err error) {
	if r.c.inq != 1 || len(p) == 0 {
		n, err = r.Read(p)
		return n, false, false, err
	}
	var oob [24]byte // syscall.CmsgSpace(4) on 64-bit systems; more than enough on 32-bit ones
	iov := syscall.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := syscall.Msghdr{Iov: &iov, Control: &oob[0]}
	msg.Iovlen = 1
	msg.SetControllen(len(oob))
	for {
		m, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, r.fd, uintptr(unsafe.Pointer(&msg)), 0)
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, false, true, syscall.EAGAIN
		default:
			return 0, false, false, r.c.opError("read", os.NewSyscallError("recvmsg", e))
		}
		if m == 0 {
			return 0, false, true, io.EOF
		}
		inq, ok := inqOf(oob[:msg.Controllen])
		return int(m), inq > 0, ok, nil
	}
}

// inqOf returns the TCP_INQ control message's count in oob, and whether
// there was one.
func inqOf(oob []byte) (int32, bool) {
	h := syscall.CmsgLen(0)
	if len(oob) < h+4 {
		return 0, false
	}
	cm := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if cm.Level != syscall.IPPROTO_TCP || cm.Type != tcpInq || int(cm.Len) < h+4 {
		return 0, false
	}
	return *(*int32)(unsafe.Pointer(&oob[h])), true
}
