package faults

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// Unanswered is a loopback port whose listen queue is full, so new
// connections to it are never completed: the kernel drops their SYNs and
// the dialer times out. It produces connection_timeout over a real socket
// without leaving the machine.
type Unanswered struct {
	fd     int
	addr   string
	filler []net.Conn
}

// StartUnanswered binds a socket with a listen backlog of zero, never
// accepts, and fills its queue.
func StartUnanswered() (*Unanswered, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("faults: socket: %w", err)
	}
	u := &Unanswered{fd: fd}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		u.Close()
		return nil, fmt.Errorf("faults: bind: %w", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		u.Close()
		return nil, fmt.Errorf("faults: listen: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("faults: getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		u.Close()
		return nil, fmt.Errorf("faults: unexpected socket address %T", sa)
	}
	u.addr = fmt.Sprintf("127.0.0.1:%d", in4.Port)
	// A backlog of 0 still queues one connection; fill the queue until a
	// dial no longer completes.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", u.addr, 200*time.Millisecond)
		if err != nil {
			return u, nil
		}
		u.filler = append(u.filler, c)
	}
	u.Close()
	return nil, fmt.Errorf("faults: the listen queue of %s never filled", u.addr)
}

// Addr returns host:port.
func (u *Unanswered) Addr() string { return u.addr }

// Close closes the socket and the connections that filled its queue.
func (u *Unanswered) Close() {
	for _, c := range u.filler {
		_ = c.Close()
	}
	_ = syscall.Close(u.fd)
}
