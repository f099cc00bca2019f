//go:build unix && !linux

package upstream

import "syscall"

// recvPeek is recv(fd, b, MSG_PEEK|MSG_DONTWAIT).
func recvPeek(fd int, b []byte) (int, error) {
	n, _, err := syscall.Recvfrom(fd, b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
