package testkit

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// SendWithFIN writes data on c and half-closes it, both in one TCP
// segment: TCP_CORK holds the data back until the shutdown pushes it
// with the FIN, so the peer's poller reports them together (a visitor
// like `printf ... | nc -N`). c must be a *net.TCPConn.
func SendWithFIN(t testing.TB, c net.Conn, data string) {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("SendWithFIN: %T is not a *net.TCPConn", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1)
	}); err != nil || serr != nil {
		t.Fatalf("TCP_CORK: %v %v", err, serr)
	}
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
}
