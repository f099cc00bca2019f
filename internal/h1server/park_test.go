//go:build linux

package h1server

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoBody answers with the request's path and body.
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = io.WriteString(w, r.URL.Path+" "+string(b))
}

// parking sets a short tick and park delay.
func parking(after time.Duration) func(*Server) {
	return func(s *Server) {
		s.Tick = 5 * time.Millisecond
		s.ParkIdleAfter = after
	}
}

// parkState reports how many connections the server tracks, how many are
// parked, and how many goroutines run a connection's serve.
func parkState(s *Server) (conns, parked, serving int) {
	s.mu.Lock()
	conns = len(s.conns)
	s.mu.Unlock()
	if s.poller != nil {
		s.poller.mu.Lock()
		parked = len(s.poller.parked)
		s.poller.mu.Unlock()
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	serving = strings.Count(string(buf), "h1server.(*conn).serve(")
	return conns, parked, serving
}

// parkedCount returns how many connections are parked.
func parkedCount(s *Server) int {
	s.poller.mu.Lock()
	defer s.poller.mu.Unlock()
	return len(s.poller.parked)
}

// waitParkState waits, bounded, until parkState is (conns, parked,
// serving).
func waitParkState(t *testing.T, s *Server, conns, parked, serving int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, p, g := parkState(s)
		if c == conns && p == parked && g == serving {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %d connections, %d parked, %d goroutines serving; want %d, %d, %d", c, p, g, conns, parked, serving)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestParkIdleConnections: connections idle past ParkIdleAfter lose their
// goroutine and keep working, plain and over TLS: their next requests (a
// GET, a POST with a body read after the park's deadline was cleared, a
// pipelined pair) are answered on them; a visitor that closes a parked
// connection ends it.
func TestParkIdleConnections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (*Server, func() *rawClient)
	}{
		{"plain", func(t *testing.T) (*Server, func() *rawClient) {
			ts := start(t, http.HandlerFunc(echoBody), parking(20*time.Millisecond))
			return ts.Server, func() *rawClient { return ts.dial(t) }
		}},
		{"TLS", func(t *testing.T) (*Server, func() *rawClient) {
			addr, s := startTLSServer(t, http.HandlerFunc(echoBody), parking(20*time.Millisecond))
			return s, func() *rawClient { c, _ := dialTLS(t, addr); return c }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dial := tc.start(t)
			const n = 20
			cs := make([]*rawClient, n)
			for i := range cs {
				cs[i] = dial()
				if _, body := cs[i].roundTrip("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"); body != "/1 " {
					t.Fatalf("connection %d: %q", i, body)
				}
			}
			waitParkState(t, s, n, n, 0)
			for i, c := range cs {
				c.send("POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
				time.Sleep(time.Millisecond) // the body in a read of its own
				c.send("hello")
				if _, body := c.read("POST"); body != "/2 hello" {
					t.Fatalf("connection %d after its park: %q", i, body)
				}
			}
			waitParkState(t, s, n, n, 0)
			for i, c := range cs {
				c.send("GET /3 HTTP/1.1\r\nHost: h\r\n\r\nGET /4 HTTP/1.1\r\nHost: h\r\n\r\n")
				if _, body := c.read("GET"); body != "/3 " {
					t.Fatalf("connection %d, first of a pipelined pair: %q", i, body)
				}
				if _, body := c.read("GET"); body != "/4 " {
					t.Fatalf("connection %d, second of a pipelined pair: %q", i, body)
				}
			}
			waitParkState(t, s, n, n, 0)
			for _, c := range cs[:n/2] {
				_ = c.Close()
			}
			waitParkState(t, s, n/2, n/2, 0)
		})
	}
}

// TestParkedConnectionsClose: parked connections are closed by the idle
// timeout, by Shutdown (which returns) and by Close.
func TestParkedConnectionsClose(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		ts := start(t, http.HandlerFunc(echoBody), parking(10*time.Millisecond), func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
		c := ts.dial(t)
		c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		waitParkState(t, ts.Server, 1, 1, 0)
		if !c.closed() {
			t.Fatal("the parked connection outlived the idle timeout")
		}
		waitParkState(t, ts.Server, 0, 0, 0)
	})
	t.Run("Shutdown", func(t *testing.T) {
		ts := start(t, http.HandlerFunc(echoBody), parking(10*time.Millisecond))
		cs := []*rawClient{ts.dial(t), ts.dial(t)}
		for _, c := range cs {
			c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		}
		waitParkState(t, ts.Server, 2, 2, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with parked connections: %v", err)
		}
		for _, c := range cs {
			if !c.closed() {
				t.Error("a parked connection is open after Shutdown")
			}
		}
	})
	t.Run("Close", func(t *testing.T) {
		ts := start(t, http.HandlerFunc(echoBody), parking(10*time.Millisecond))
		c := ts.dial(t)
		c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		waitParkState(t, ts.Server, 1, 1, 0)
		_ = ts.Close()
		if !c.closed() {
			t.Error("a parked connection is open after Close")
		}
		waitParkState(t, ts.Server, 0, 0, 0)
	})
	t.Run("never", func(t *testing.T) {
		ts := start(t, http.HandlerFunc(echoBody), parking(-1))
		c := ts.dial(t)
		c.roundTrip("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		if _, parked, serving := parkState(ts.Server); parked != 0 || serving != 1 {
			t.Errorf("ParkIdleAfter < 0: %d parked, %d serving; want 0, 1", parked, serving)
		}
	})
}

// TestParkRace sends requests at random moments around the park delay, on
// many connections at once: each arrives as its connection idles, is asked
// to park, parks or is taken back. Every answer must be whole and right.
func TestParkRace(t *testing.T) {
	ts := start(t, http.HandlerFunc(echoBody), parking(4*time.Millisecond))
	const conns, requests = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c := ts.dial(t)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range requests {
				time.Sleep(time.Duration(rng.IntN(12000)) * time.Microsecond)
				body := fmt.Sprintf("c%d-r%d", i, j)
				req := fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", j, len(body), body)
				if _, err := io.WriteString(c.Conn, req); err != nil {
					errs <- fmt.Errorf("connection %d, request %d: write: %w", i, j, err)
					return
				}
				resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
				if err != nil {
					errs <- fmt.Errorf("connection %d, request %d: %w", i, j, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("/%d %s", j, body); err != nil || string(b) != want {
					errs <- fmt.Errorf("connection %d, request %d: %q, %v; want %q", i, j, b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkParkedRequest times a request on a parked connection (its
// goroutine started again by the poller) beside one on a connection that
// kept its goroutine.
func BenchmarkParkedRequest(b *testing.B) {
	for _, parked := range []bool{false, true} {
		name := "waiting"
		if parked {
			name = "parked"
		}
		b.Run(name, func(b *testing.B) {
			after := time.Duration(-1)
			if parked {
				after = time.Microsecond
			}
			ts := start(b, http.HandlerFunc(echoBody), func(s *Server) { s.Tick = time.Millisecond; s.ParkIdleAfter = after })
			c := ts.dial(b)
			get := func() {
				// A deadline per request: the waits for the park, untimed,
				// take the whole run past the dial's 10 s.
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, body := c.roundTrip("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"); body != "/x " {
					b.Fatalf("body %q", body)
				}
			}
			get() // a new connection is not parked: an idle one is
			for b.Loop() {
				if parked {
					b.StopTimer()
					for deadline := time.Now().Add(5 * time.Second); parkedCount(ts.Server) != 1; {
						if time.Now().After(deadline) {
							b.Fatal("the connection was not parked after 5s")
						}
						time.Sleep(100 * time.Microsecond)
					}
					b.StartTimer()
				}
				get()
			}
		})
	}
}
