package h1server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBodies(t *testing.T) {
	rec := new(recorder)
	ts := start(t, rec)
	c := ts.dial(t)

	resp, _ := c.roundTrip("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, b := rec.find(t, "/cl")
	if b != "hello world" || r.ContentLength != 11 {
		t.Errorf("body %q, length %d", b, r.ContentLength)
	}

	resp, _ = c.roundTrip("POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\n\r\n" +
		"5;name=value;x\r\nhello\r\n6;ext\r\n world\r\n0\r\nX-Sum: 42\r\nx-other: o\r\nX-Undeclared: u\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, b = rec.find(t, "/chunked")
	if b != "hello world" || r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		t.Errorf("body %q, length %d, te %v", b, r.ContentLength, r.TransferEncoding)
	}
	if r.Trailer.Get("X-Sum") != "42" || r.Trailer.Get("X-Other") != "o" || r.Trailer.Get("X-Undeclared") != "u" {
		t.Errorf("trailer %v", r.Trailer)
	}
	if r.Header.Get("Transfer-Encoding") != "" || r.Header.Get("Trailer") != "" {
		t.Errorf("framing left in the header: %v", r.Header)
	}

	// The connection is still good.
	resp, body := c.roundTrip("GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET /after" {
		t.Fatalf("next answer %d %q", resp.StatusCode, body)
	}
}

// errHandler answers with the error its body read ended with.
func errHandler(got chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
}

func TestBodyErrors(t *testing.T) {
	got := make(chan error, 1)
	ts := start(t, errHandler(got))
	cases := []struct {
		name, req string
		want      error // nil: any error
	}{
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", nil},
		{"chunk without crlf", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", nil},
		{"bad trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", errBadTrailer},
		{"control byte in trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\x01b\r\n\r\n", errBadTrailer},
		{"bare cr in trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\rb\r\n\r\n", errBadTrailer},
		{"cl cut short", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello", io.ErrUnexpectedEOF},
		{"chunk cut short", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", io.ErrUnexpectedEOF},
		{"trailer cut short", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tc.req)
			if tc.want == io.ErrUnexpectedEOF {
				_ = c.CloseWrite()
			}
			var err error
			select {
			case err = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's read did not end")
			}
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("read error %v, want %v", err, tc.want)
			}
			resp, _ := c.read("POST")
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("answer %d close %v", resp.StatusCode, resp.Close)
			}
			if !c.closed() {
				t.Error("connection kept after a broken body")
			}
		})
	}
}

func (c *rawClient) CloseWrite() error {
	type closeWriter interface{ CloseWrite() error }
	return c.Conn.(closeWriter).CloseWrite()
}

// A body the handler did not read is dropped, up to 256 KiB, and the
// connection serves the next request; past that it closes.
func TestUnreadBody(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ignored "+r.URL.Path)
	}))
	for _, tc := range []struct {
		size int
		keep bool
	}{{10, true}, {maxDiscardBytes, true}, {maxDiscardBytes + 1, false}, {1 << 20, false}} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			c := ts.dial(t)
			go func() {
				// Written on its own: the server does not read the
				// whole of the larger ones.
				_, _ = io.WriteString(c.Conn, fmt.Sprintf("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", tc.size))
				_, _ = io.WriteString(c.Conn, strings.Repeat("x", tc.size))
				_, _ = io.WriteString(c.Conn, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
			}()
			resp, body := c.read("POST")
			if resp.StatusCode != 200 || body != "ignored /a" {
				t.Fatalf("answer %d %q", resp.StatusCode, body)
			}
			if resp.Close == tc.keep {
				t.Errorf("Connection: close is %v, want %v", resp.Close, !tc.keep)
			}
			if !tc.keep {
				if !c.closed() {
					t.Error("connection kept after a large unread body")
				}
				return
			}
			resp, body = c.read("GET")
			if resp.StatusCode != 200 || body != "ignored /b" {
				t.Fatalf("next answer %d %q", resp.StatusCode, body)
			}
		})
	}
}

// A body the handler wrapped (as gatewise's limit.LimitBody does) and did
// not read is dropped too: the connection stays.
func TestUnreadWrappedBody(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		_, _ = io.WriteString(w, "not read")
	}))
	c := ts.dial(t)
	for range 3 {
		resp, body := c.roundTrip("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != 200 || body != "not read" || resp.Close {
			t.Fatalf("answer %d %q close %v", resp.StatusCode, body, resp.Close)
		}
	}
}

// A chunked body the handler did not read closes the connection (its
// length is unknown).
func TestUnreadChunkedBody(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := ts.dial(t)
	resp, _ := c.roundTrip("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if !resp.Close || !c.closed() {
		t.Error("connection kept after an unread chunked body")
	}
}

func TestExpectContinue(t *testing.T) {
	read := make(chan struct{})
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/noread" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		<-read
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	}))

	t.Run("read", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /read HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		// No 100 before the handler reads.
		if !c.open(50 * time.Millisecond) {
			t.Fatal("the server answered before the handler read")
		}
		read <- struct{}{}
		resp, _ := c.read("POST")
		if resp.StatusCode != http.StatusContinue {
			t.Fatalf("interim status %d, want 100", resp.StatusCode)
		}
		c.send("hello")
		resp, body := c.read("POST")
		if resp.StatusCode != 200 || body != "hello" || resp.Close {
			t.Fatalf("answer %d %q close %v", resp.StatusCode, body, resp.Close)
		}
		resp, _ = c.roundTrip("GET /noread HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != 403 {
			t.Fatalf("next answer %d", resp.StatusCode)
		}
	})

	t.Run("not read", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /noread HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		resp, _ := c.read("POST")
		if resp.StatusCode != http.StatusForbidden || !resp.Close {
			t.Fatalf("answer %d close %v, want 403 and a close", resp.StatusCode, resp.Close)
		}
		if !c.closed() {
			t.Error("connection kept: the body that was never asked for would be read as a request")
		}
	})

	t.Run("http10 ignores expect", func(t *testing.T) {
		c := ts.dial(t)
		c.send("POST /read HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
		read <- struct{}{}
		resp, body := c.read("POST")
		if resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("answer %d %q", resp.StatusCode, body)
		}
	})
}

// The net/http client sends Expect: 100-continue and waits for the 100.
func TestExpectContinueClient(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", "http://"+ts.addr+"/", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	var got100 atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{Got100Continue: func() { got100.Store(true) }}))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "payload" {
		t.Errorf("body %q", b)
	}
	if !got100.Load() {
		t.Error("no 100 Continue came")
	}
}

// The answer to a request whose large body the handler did not read
// reaches a visitor that reads it only after it has sent its body: the
// server does not reset the connection under it (a close with unread
// bytes sends a RST, which destroys what the visitor has not read yet).
func TestUnreadBodyAnswerNotReset(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, "too large")
	}))
	c := ts.dial(t)
	size := 4 << 20
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = io.WriteString(c.Conn, fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size))
		_, _ = io.WriteString(c.Conn, strings.Repeat("x", size))
	}()
	// A visitor that writes its whole body before it reads.
	waitFor(t, written, "the body written or refused")
	time.Sleep(100 * time.Millisecond)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("the answer was lost: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(b) != "too large" || err != nil || !resp.Close {
		t.Fatalf("answer %d %q %v close %v", resp.StatusCode, b, err, resp.Close)
	}
}

// The same with an answer larger than the socket buffers, read slowly:
// the tail still in the server's send buffer when it closes must reach
// the visitor; also through a listener that wraps its connections (as
// gatewise's connection limits do).
func TestUnreadBodyLargeAnswerNotReset(t *testing.T) {
	answer := strings.Repeat("a", 4<<20)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		_, _ = io.WriteString(w, answer)
	})
	for _, wrapped := range []bool{false, true} {
		t.Run(fmt.Sprint("wrapped=", wrapped), func(t *testing.T) {
			ln := mustListen(t)
			var l net.Listener = ln
			if wrapped {
				l = wrapListener{ln, true}
			}
			s := &Server{Handler: h, Tick: 10 * time.Millisecond}
			served := make(chan error, 1)
			go func() { served <- s.Serve(l) }()
			defer func() {
				_ = s.Close()
				<-served
			}()
			ts := &testServer{Server: s, addr: ln.Addr().String()}
			c := ts.dial(t)
			size := 4 << 20
			go func() {
				_, _ = io.WriteString(c.Conn, fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size))
				_, _ = io.WriteString(c.Conn, strings.Repeat("x", size))
			}()
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("the answer was lost: %v", err)
			}
			buf := make([]byte, 64<<10)
			n := 0
			for {
				m, err := resp.Body.Read(buf)
				n += m
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("answer cut after %d bytes of %d: %v", n, len(answer), err)
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
			if n != len(answer) {
				t.Fatalf("%d bytes of %d", n, len(answer))
			}
		})
	}
}

// A body read on another goroutine than the handler's (as net/http's
// Transport does when a ReverseProxy forwards it) fails while the handler
// answers: no data race (run with -race).
func TestBodyReadElsewhereFails(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, r.Body)
		}()
		_, _ = io.WriteString(w, "answer")
		w.(http.Flusher).Flush()
		<-done
	}))
	for range 5 {
		c := ts.dial(t)
		c.send("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		resp, _ := c.read("POST")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// An Expect: 100-continue body read on another goroutine while the
// handler answers (full duplex): the 100 and the answer do not race
// (run with -race) and the visitor reads a well-formed stream.
func TestExpectContinueReadElsewhere(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, r.Body)
		}()
		_, _ = io.WriteString(w, "answer")
		w.(http.Flusher).Flush()
		<-done
	}))
	for range 10 {
		c := ts.dial(t)
		c.send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		c.send("hello")
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "answer" || err != nil {
			t.Fatalf("answer %d %q %v", resp.StatusCode, b, err)
		}
	}
}
