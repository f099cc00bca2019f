package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/sockio"
)

// startTLS serves h over TLS (crypto/tls over sockio, as gatewise does)
// and returns a client to it, closed at the end of the test.
func startTLS(t *testing.T, h http.Handler, opt ...func(*Server)) (*rawClient, *tls.Conn) {
	t.Helper()
	addr, _ := startTLSServer(t, h, opt...)
	return dialTLS(t, addr)
}

// startTLSServer serves h over TLS (crypto/tls over sockio, as gatewise
// does) until the test ends, and returns its address and server.
func startTLSServer(t *testing.T, h http.Handler, opt ...func(*Server)) (string, *Server) {
	t.Helper()
	// httptest's certificate, for 127.0.0.1; the client does not check it.
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	cert := certSrv.TLS.Certificates[0]
	certSrv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(sockio.Listener(ln), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	s := &Server{Handler: h, ErrorLog: log.New(new(syncBuffer), "", 0), Tick: 10 * time.Millisecond}
	for _, o := range opt {
		o(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(tln) }()
	t.Cleanup(func() {
		_ = s.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ln.Addr().String(), s
}

// dialTLS returns a TLS client to addr, closed at the end of the test.
func dialTLS(t *testing.T, addr string) (*rawClient, *tls.Conn) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, Conn: c, br: bufio.NewReader(c)}, c
}

// Over TLS, a visitor that sends its close_notify alert and leaves while
// the handler waits cancels the request's context, as one that just
// closes the socket does: the alert is bytes on the socket, so a watch
// that only peeks at the socket would take it for a pipelined request.
func TestTLSContextCancelledWhenVisitorLeaves(t *testing.T) {
	b := newBlocker()
	c, tc := startTLS(t, b)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, b.started, "the handler")
	_ = tc.Close() // the close_notify alert, then the FIN
	select {
	case err := <-b.ctxErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("context error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context was not cancelled after the visitor sent close_notify and left")
	}
}

// Over TLS, a long request on a connection that stays is not cancelled,
// a request pipelined behind it while the watch runs is served, and each
// request carries the connection's TLS state.
func TestTLSContextNotCancelled(t *testing.T) {
	c, _ := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			// Several ticks: the watch starts.
			select {
			case <-r.Context().Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		proto := ""
		if r.TLS != nil {
			proto = r.TLS.NegotiatedProtocol
		}
		fmt.Fprintf(w, "%s %v %s", r.URL.Path, r.Context().Err(), proto)
	}))
	if _, body := c.roundTrip("GET /long HTTP/1.1\r\nHost: h\r\n\r\n"); body != "/long <nil> http/1.1" {
		t.Errorf("answer %q", body)
	}
	c.send("GET /long HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watch is on
	c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := c.read("GET"); body != "/long <nil> http/1.1" {
		t.Errorf("answer with a pipelined request behind: %q", body)
	}
	if _, body := c.read("GET"); body != "/next <nil> http/1.1" {
		t.Errorf("pipelined answer %q", body)
	}
}
