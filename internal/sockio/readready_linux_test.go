package sockio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestReadWhenReady checks the wait without a buffer: the callback's
// reader finds nothing (EAGAIN) while the peer is silent, then the bytes
// the peer sends, read into a buffer taken only then; and at the end, the
// peer's FIN as io.EOF.
func TestReadWhenReady(t *testing.T) {
	w, peer := pair(t)
	onLinux(t, w)
	c := w.(*Conn)
	waiting := make(chan struct{})
	go func() {
		<-waiting // the peer sends once the first call has found nothing
		_, _ = peer.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	}()
	var calls, eagain int
	var br *bufio.Reader
	err := c.ReadWhenReady(func(r io.Reader) bool {
		calls++
		b := bufio.NewReaderSize(r, 64)
		_, err := b.Peek(1)
		if errors.Is(err, syscall.EAGAIN) {
			if eagain++; eagain == 1 {
				close(waiting)
			}
			return false
		}
		if err != nil {
			t.Errorf("read: %v", err)
		}
		br = b
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if eagain == 0 || calls != eagain+1 {
		t.Errorf("%d calls, %d of them finding nothing: want at least one that waits, then the one that reads", calls, eagain)
	}
	if br == nil {
		t.Fatal("no reader kept")
	}
	if got, _ := br.Peek(br.Buffered()); string(got) != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("read %q", got)
	}

	// The reader is only good inside the callback; after it, Read reads.
	_ = peer.Close()
	var last error
	if err := c.ReadWhenReady(func(r io.Reader) bool {
		_, last = r.Read(make([]byte, 8))
		return !errors.Is(last, syscall.EAGAIN)
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(last, io.EOF) {
		t.Errorf("after the peer's FIN: %v, want io.EOF", last)
	}
}

// TestReadWhenReadyEnds checks that the wait ends, with Read's errors,
// when the connection is closed or its read deadline passes.
func TestReadWhenReadyEnds(t *testing.T) {
	nothing := func(r io.Reader) bool {
		_, err := r.Read(make([]byte, 8))
		return !errors.Is(err, syscall.EAGAIN)
	}
	t.Run("deadline", func(t *testing.T) {
		w, _ := pair(t)
		onLinux(t, w)
		_ = w.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		err := w.(*Conn).ReadWhenReady(nothing)
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" {
			t.Errorf("%v, want a read OpError with os.ErrDeadlineExceeded", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		w, _ := pair(t)
		onLinux(t, w)
		time.AfterFunc(30*time.Millisecond, func() { _ = w.Close() })
		if err := w.(*Conn).ReadWhenReady(nothing); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%v, want net.ErrClosed", err)
		}
	})
}
