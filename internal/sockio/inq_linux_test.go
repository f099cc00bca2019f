package sockio

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// pendingReads runs steps inside one ReadWhenReady, each called again
// when it asks to wait (false), with the socket's reader.
func pendingReads(t *testing.T, c *Conn, steps ...func(r *fdReader) bool) {
	t.Helper()
	i := 0
	err := c.ReadWhenReady(func(r io.Reader) bool {
		fr := r.(*fdReader)
		for i < len(steps) {
			if !steps[i](fr) {
				return false
			}
			i++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadPending checks what a read says the socket holds after it: not
// known before ReportPending; then the bytes left, and the peer's FIN
// when it came with the last bytes, before the read that meets it.
func TestReadPending(t *testing.T) {
	w, peer := pair(t)
	onLinux(t, w)
	c := w.(*Conn)
	buf := make([]byte, 64)
	if _, err := peer.Write([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	pendingReads(t, c,
		func(r *fdReader) bool {
			n, _, known, err := r.ReadPending(buf[:2])
			if errors.Is(err, syscall.EAGAIN) {
				return false
			}
			if err != nil || n != 2 || known {
				t.Errorf("before ReportPending: %d %v known %v", n, err, known)
			}
			if !r.ReportPending() {
				t.Fatal("the kernel refused TCP_INQ")
			}
			return true
		},
		func(r *fdReader) bool {
			n, pending, known, err := r.ReadPending(buf[:3])
			if err != nil || n != 3 || !pending || !known {
				t.Errorf("a read that leaves 6 bytes: %d %v pending %v known %v", n, err, pending, known)
			}
			n, pending, known, err = r.ReadPending(buf)
			if err != nil || string(buf[:n]) != " world" || pending || !known {
				t.Errorf("the last bytes: %q %v pending %v known %v", buf[:n], err, pending, known)
			}
			n, _, known, err = r.ReadPending(buf)
			if !errors.Is(err, syscall.EAGAIN) || n != 0 || !known {
				t.Errorf("nothing left: %d %v known %v", n, err, known)
			}
			return true
		})

	// The last bytes and the FIN in one segment.
	rc, err := peer.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) })
	if _, err := peer.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := peer.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	pendingReads(t, c, func(r *fdReader) bool {
		n, pending, known, err := r.ReadPending(buf)
		if errors.Is(err, syscall.EAGAIN) {
			return false
		}
		if err != nil || string(buf[:n]) != "bye" || !pending || !known {
			t.Errorf("bytes before the FIN: %q %v pending %v known %v", buf[:n], err, pending, known)
		}
		n, _, _, err = r.ReadPending(buf)
		if !errors.Is(err, io.EOF) || n != 0 {
			t.Errorf("the FIN: %d %v", n, err)
		}
		return true
	})
}
