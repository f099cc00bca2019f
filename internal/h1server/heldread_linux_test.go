package h1server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gatewise/gatewise/internal/testkit"
)

// noPark keeps every connection's goroutine, with no idle timeout: a
// connection that waited for a request already read would wait forever,
// where a park (whose epoll set reports what is pending) would hide it.
func noPark(s *Server) { s.ParkIdleAfter = -1 }

// A visitor that sends a request and its FIN together (a half-close, as
// `printf ... | nc` does) gets the answer and then the close at once. The
// FIN came with the request, so the poller has nothing more to report
// after the request is read: the server must know from the read itself
// that the FIN is there (TCP_INQ), or it waits for a request that never
// comes.
func TestHeldReadHalfClose(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello), noPark)
	for _, first := range []bool{false, true} {
		c := ts.dial(t)
		if first {
			// After the connection's first answer, its reads say what
			// the socket holds.
			if _, body := c.roundTrip("GET /first HTTP/1.1\r\nHost: h\r\n\r\n"); body != "hello /first" {
				t.Fatalf("first answer %q", body)
			}
		}
		testkit.SendWithFIN(t, c.Conn, "GET /last HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, body := c.read("GET"); body != "hello /last" {
			t.Fatalf("answer %q", body)
		}
		if !c.closed() {
			t.Fatalf("after a request that came with the visitor's FIN (a request before it: %v), the connection stayed open", first)
		}
	}
}

// A request that fills the read buffer exactly, with another behind it in
// the same segment: the read takes the first only, and the server must
// read again, not wait, before it can know the second is there.
func TestHeldReadBeyondBuffer(t *testing.T) {
	ts := start(t, http.HandlerFunc(hello), noPark)
	c := ts.dial(t)
	if _, body := c.roundTrip("GET /first HTTP/1.1\r\nHost: h\r\n\r\n"); body != "hello /first" {
		t.Fatalf("first answer %q", body)
	}
	head := "GET /full HTTP/1.1\r\nHost: h\r\nX-Pad: "
	full := head + strings.Repeat("p", readBufferSize-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
	if len(full) != readBufferSize {
		t.Fatalf("request of %d bytes", len(full))
	}
	c.send(full + "GET /behind HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"hello /full", "hello /behind"} {
		if _, body := c.read("GET"); body != want {
			t.Fatalf("answer %q, want %q", body, want)
		}
	}
}

// A request pipelined while the one before it is answered is answered
// next: its bytes came after the last read, and the wait after the first
// answer wakes for them.
func TestHeldReadPipelinedWhileAnswering(t *testing.T) {
	b := newBlocker()
	ts := start(t, b, noPark)
	c := ts.dial(t)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	close(b.release)
	for _, want := range []string{"released", "hello /next"} {
		if _, body := c.read("GET"); body != want {
			t.Fatalf("answer %q, want %q", body, want)
		}
	}
}

// Close ends a request answered inside a held read at once, even when its
// handler only waits for its context: the close of a socket whose read is
// held waits for the read to end, so Close cancels the request. The
// visitor sees the connection cut, not the empty 200 the server would
// send for a handler that returns without writing: the socket is shut
// down before the cancel.
func TestHeldReadClose(t *testing.T) {
	started := make(chan struct{})
	lateErr := make(chan error, 1)
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
		// Cancelled by Close: the socket is already shut down, so
		// an answer written now cannot reach the visitor.
		_, _ = io.WriteString(w, "late")
		lateErr <- http.NewResponseController(w).Flush()
	}))
	c := ts.dial(t)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, started, "the handler")
	closed := make(chan struct{})
	go func() {
		_ = ts.Close()
		close(closed)
	}()
	waitFor(t, closed, "Close")
	if err := <-lateErr; err == nil {
		t.Error("an answer written after Close cancelled the request was sent")
	}
	if !c.closed() {
		t.Error("Close left the connection open")
	}
}

// A plain request (no Upgrade field) answered inside a held read cannot be
// hijacked: the handler gets an error, not a connection whose reads would
// wait for the held read forever; a request with Upgrade can (TestHijack).
func TestHeldReadHijack(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, err := http.NewResponseController(w).Hijack()
		if !errors.Is(err, errHeldHijack) {
			t.Errorf("Hijack of a plain GET: %v", err)
		}
		_, _ = io.WriteString(w, "not hijacked")
	}))
	c := ts.dial(t)
	if _, body := c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n"); body != "not hijacked" {
		t.Errorf("answer %q", body)
	}
}

// headBuffered says a head is whole exactly when readHead takes it
// without a read: readHead is run on each input over a reader that fails
// at the first read past it.
func TestHeadBuffered(t *testing.T) {
	errMore := errors.New("readHead read past the buffered bytes")
	for _, in := range []string{
		"",
		"GET / HTTP/1.1\r\nHost: h\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next",
		"GET / HTTP/1.1\nHost: h\n\n",
		"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"\n\nGET / HTTP/1.1\r\n\r\n",
		"\r\n",
		"\r\n\r\n",
		"\r",
		"\r\nGET",
		"\rX",
		"\r\n\r\n\r\n\r\n\r\n",
		"\r\n\r\n\r\n\r\n\r\n\r\n",
		"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r",
		"GET / HTTP/1.1\r\nHost: h\n\r\n",
	} {
		c := &conn{srv: &Server{}}
		c.br = bufio.NewReaderSize(io.MultiReader(strings.NewReader(in), iotest.ErrReader(errMore)), readBufferSize)
		if _, err := c.br.Peek(len(in)); err != nil {
			t.Fatal(err)
		}
		_, err := c.readHead()
		read := errors.Is(err, errMore)
		if got := headBuffered([]byte(in)); got == read {
			t.Errorf("headBuffered(%q) = %v, but readHead read past it: %v (%v)", in, got, read, err)
		}
	}
}
