package sockio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection: the client's
// end wrapped by Wrap, and the server's end as net.Conn.
func pair(t *testing.T) (wrapped, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	w := Wrap(c)
	t.Cleanup(func() { _ = w.Close(); _ = p.Close() })
	return w, p
}

func onLinux(t *testing.T, c net.Conn) {
	t.Helper()
	if runtime.GOOS != "linux" {
		if _, ok := c.(*Conn); ok {
			t.Fatal("Wrap wrapped a connection outside Linux")
		}
		t.Skip("raw system calls are used on Linux only")
	}
	if _, ok := c.(*Conn); !ok {
		t.Fatalf("Wrap returned %T, want *Conn", c)
	}
}

func TestReadWriteBothWays(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	onLinux(t, w)
	if n, err := w.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadFull(p, buf[:5]); n != 5 || err != nil || string(buf[:5]) != "hello" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if _, err := p.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(w, buf[:5]); n != 5 || err != nil || string(buf[:5]) != "world" {
		t.Fatalf("Read %q, %v", buf[:n], err)
	}
	if n, err := w.Read(nil); n != 0 || err != nil {
		t.Errorf("Read of nothing: %d, %v", n, err)
	}
	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Errorf("Write of nothing: %d, %v", n, err)
	}
}

// TestLargeWriteWaitsForRoom writes more than the socket buffers hold
// while the peer reads slowly: the write must wait (EAGAIN, then the
// poller) and deliver every byte in order.
func TestLargeWriteWaitsForRoom(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	onLinux(t, w)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		chunk := make([]byte, 64<<10)
		for b.Len() < len(data) {
			n, err := p.Read(chunk)
			b.Write(chunk[:n])
			if err != nil {
				break
			}
			if b.Len() < 1<<20 {
				time.Sleep(time.Millisecond) // slow at first: the writer fills the buffers
			}
		}
		got <- b.Bytes()
	}()
	if n, err := w.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write: %d of %d, %v", n, len(data), err)
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the peer got %d bytes, not the %d written in order", len(b), len(data))
	}
}

func TestEOFAndCloseWrite(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	onLinux(t, w)
	// CloseWrite passes through: the peer sees the end.
	if err := w.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer after CloseWrite: %d, %v", n, err)
	}
	_ = p.Close()
	if n, err := w.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed: %d, %v, want io.EOF", n, err)
	}
}

// TestErrorsMatchNetConn puts a wrapped and a plain connection through
// the same failures and compares what their errors say.
func TestErrorsMatchNetConn(t *testing.T) {
	t.Parallel()
	type outcome struct {
		op                      string
		timeout, closed, reset  bool
		deadline, eof, writeErr bool
	}
	describe := func(err error) outcome {
		var o outcome
		var oe *net.OpError
		if errors.As(err, &oe) {
			o.op = oe.Op
		}
		var ne net.Error
		o.timeout = errors.As(err, &ne) && ne.Timeout()
		o.closed = errors.Is(err, net.ErrClosed)
		o.reset = errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		o.deadline = errors.Is(err, os.ErrDeadlineExceeded)
		o.eof = errors.Is(err, io.EOF)
		return o
	}
	scenarios := map[string]func(c, p net.Conn) error{
		"read deadline": func(c, _ net.Conn) error {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(make([]byte, 1))
			return err
		},
		"read after close": func(c, _ net.Conn) error {
			_ = c.Close()
			_, err := c.Read(make([]byte, 1))
			return err
		},
		"close during a read": func(c, _ net.Conn) error {
			go func() { time.Sleep(20 * time.Millisecond); _ = c.Close() }()
			_, err := c.Read(make([]byte, 1))
			return err
		},
		"read after a reset": func(c, p net.Conn) error {
			_ = p.(*net.TCPConn).SetLinger(0)
			_ = p.Close()
			time.Sleep(20 * time.Millisecond)
			_, err := c.Read(make([]byte, 1))
			return err
		},
		"write after a reset": func(c, p net.Conn) error {
			_ = p.(*net.TCPConn).SetLinger(0)
			_ = p.Close()
			time.Sleep(20 * time.Millisecond)
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = c.Write(make([]byte, 1024))
			}
			return err
		},
		"write after close": func(c, _ net.Conn) error {
			_ = c.Close()
			_, err := c.Write([]byte("x"))
			return err
		},
	}
	for name, run := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, wp := pair(t)
			onLinux(t, w)
			plain, pp := pair(t)
			plain = plain.(*Conn).Conn // the same kind of socket, unwrapped
			got, want := describe(run(w, wp)), describe(run(plain, pp))
			if got != want {
				t.Errorf("wrapped: %+v\n plain: %+v", got, want)
			}
			if got.op == "" {
				t.Errorf("no *net.OpError: %+v", got)
			}
		})
	}
}

// TestConcurrentWritersKeepMessagesWhole: Writes from several goroutines
// never interleave within one Write, as net.Conn's do not.
func TestConcurrentWritersKeepMessagesWhole(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	onLinux(t, w)
	const writers, each, size = 4, 500, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + g)}, size)
			for range each {
				if _, err := w.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for i := 0; i < writers*each; i++ {
			if _, err := io.ReadFull(p, buf); err != nil {
				done <- err
				return
			}
			if !bytes.Equal(buf, bytes.Repeat(buf[:1], size)) {
				done <- fmt.Errorf("message %d mixed: %q", i, buf)
				return
			}
		}
		done <- nil
	}()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Errorf("Wrap(net.Pipe) = %T, want it unchanged", got)
	}
	w, _ := pair(t)
	onLinux(t, w)
	c := w.(*Conn)
	if rc, err := c.SyscallConn(); rc == nil || err != nil {
		t.Errorf("SyscallConn: %v, %v", rc, err)
	}
	if _, ok := c.NetConn().(*net.TCPConn); !ok {
		t.Errorf("NetConn = %T", c.NetConn())
	}
}

// TestWriteThenAwaitRead: the request goes out, the call returns once the
// answer is there to read (not before), and the Read that follows gets
// it; the peer's FIN ends the wait too.
func TestWriteThenAwaitRead(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	onLinux(t, w)
	c := w.(*Conn)
	answer := make(chan struct{})
	go func() {
		buf := make([]byte, 7)
		if _, err := io.ReadFull(p, buf); err != nil || string(buf) != "request" {
			t.Errorf("peer read %q, %v", buf, err)
			return
		}
		<-answer
		_, _ = p.Write([]byte("answer"))
		buf = buf[:5]
		if _, err := io.ReadFull(p, buf); err != nil || string(buf) != "again" {
			t.Errorf("peer read %q, %v", buf, err)
		}
		_ = p.Close()
	}()
	sends := 0
	done := make(chan error, 1)
	go func() {
		done <- c.WriteThenAwaitRead(func() error {
			sends++
			_, err := c.Write([]byte("request"))
			return err
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("returned before the answer was sent: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(answer)
	if err := <-done; err != nil || sends != 1 {
		t.Fatalf("WriteThenAwaitRead: %v after %d sends", err, sends)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("Read after the wait: %q, %v", buf[:n], err)
	}
	// The peer closes after the second request: that ends the wait.
	if err := c.WriteThenAwaitRead(func() error { _, err := c.Write([]byte("again")); return err }); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer's close: %d, %v, want io.EOF", n, err)
	}
}

// TestWriteThenAwaitReadFailures: a failed send is returned at once
// without waiting; a read deadline ends the wait and the Read that
// follows reports it; on a closed connection the send runs and fails.
func TestWriteThenAwaitReadFailures(t *testing.T) {
	t.Parallel()
	w, _ := pair(t)
	onLinux(t, w)
	c := w.(*Conn)
	errSend := errors.New("send failed")
	if err := c.WriteThenAwaitRead(func() error { return errSend }); !errors.Is(err, errSend) {
		t.Fatalf("failed send: %v, want %v", err, errSend)
	}
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteThenAwaitRead(func() error { return nil }); err != nil {
		t.Fatalf("wait past the deadline: %v, want nil (the read reports it)", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v", err)
	}
	_ = c.Close()
	sent := false
	err := c.WriteThenAwaitRead(func() error {
		sent = true
		_, err := c.Write([]byte("x"))
		return err
	})
	if !sent || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("on a closed connection: sent %v, %v; want the send's net.ErrClosed", sent, err)
	}
}
