package upstream

import (
	"syscall"
	"unsafe"
)

// recvPeek is recv(fd, b, MSG_PEEK|MSG_DONTWAIT) as a raw system call:
// it cannot block, so it skips the runtime's system-call entry and exit
// (see internal/sockio).
func recvPeek(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
