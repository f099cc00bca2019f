// Package faults provides upstream servers that fail on purpose over real
// loopback sockets: refusing, resetting, hanging, closing early, sending
// bytes that are not HTTP, oversized headers, truncated bodies and error
// statuses. The integration tests use them to produce each cause, and
// `gatewise demo` uses them to show the causes to a newcomer.
package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/loopport"
)

// Mode is how a fault server answers a request.
type Mode int

// The modes. Each names what the server does after reading a request.
const (
	// OK answers 200 with a short text body, keeping the connection alive.
	OK Mode = iota
	// Reset closes the connection with a TCP RST (SO_LINGER 0).
	Reset
	// Close closes the connection cleanly without answering.
	Close
	// Hang never answers and keeps the connection open until the server
	// is closed.
	Hang
	// Junk answers with bytes that are not HTTP and closes.
	Junk
	// HugeHeader answers 200 with a 2 MiB header section.
	HugeHeader
	// TruncatedBody announces a 1,000,000-byte body, sends half and closes.
	TruncatedBody
	// TruncatedHeader sends part of a header section and closes.
	TruncatedHeader
	// Status502 answers 502 Bad Gateway with a body of its own, like a
	// proxy further upstream would.
	Status502
	// Slow waits Server.SlowDelay (default 3s) and then answers 200.
	Slow
)

// String returns the mode's name, such as "reset".
func (m Mode) String() string {
	names := [...]string{"ok", "reset", "close", "hang", "junk", "huge-header", "truncated-body", "truncated-header", "status-502", "slow"}
	if m >= 0 && int(m) < len(names) {
		return names[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// HugeHeaderBytes is the size of the header section HugeHeader sends.
const HugeHeaderBytes = 2 << 20

// TruncatedBodyBytes is the Content-Length TruncatedBody announces.
const TruncatedBodyBytes = 1_000_000

// Server is a fault server on a loopback port.
type Server struct {
	// Name is shown in OK bodies, so a visitor sees which target answered.
	Name string
	// SlowDelay is how long Slow waits. Zero means 3s.
	SlowDelay time.Duration
	// ResetEveryNthConn, when positive, resets every Nth connection the
	// server accepts (after reading its first request) whatever the mode.
	// Set it before the first connection arrives.
	ResetEveryNthConn int
	// IDHeader, when set, names a request header whose values the server
	// counts (see Seen), such as a load generator's unique request ID: a
	// value seen twice is a request delivered twice. Set it before the
	// first request arrives.
	IDHeader string

	ln     net.Listener
	modes  []Mode
	next   atomic.Uint64
	served atomic.Int64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	nconns atomic.Int64
	seen   map[string]int
}

// Start starts a server on 127.0.0.1 with a free port that answers with the
// given modes in rotation (one mode per request). It needs at least one.
func Start(name string, modes ...Mode) (*Server, error) {
	if len(modes) == 0 {
		return nil, errors.New("faults: no mode")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Name: name, ln: ln, modes: modes, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{}), seen: make(map[string]int)}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Served returns how many requests the server has read.
func (s *Server) Served() int64 { return s.served.Load() }

// Seen returns how many times each value of IDHeader arrived.
func (s *Server) Seen() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.seen))
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

// Close stops the server and closes every connection, hanging ones too.
func (s *Server) Close() {
	s.cancel()
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *Server) handle(c net.Conn) {
	br := bufio.NewReader(c)
	nth := s.nconns.Add(1)
	first := true
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if s.IDHeader != "" {
			if id := req.Header.Get(s.IDHeader); id != "" {
				s.mu.Lock()
				s.seen[id]++
				s.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
		_ = req.Body.Close()
		s.served.Add(1)
		mode := s.modes[int((s.next.Add(1)-1)%uint64(len(s.modes)))]
		if first && s.ResetEveryNthConn > 0 && nth%int64(s.ResetEveryNthConn) == 0 {
			mode = Reset
		}
		first = false
		if !s.answer(c, req, mode) {
			return
		}
	}
}

// answer writes the response for mode and reports whether the connection
// may serve another request.
func (s *Server) answer(c net.Conn, req *http.Request, mode Mode) bool {
	switch mode {
	case OK:
		body := fmt.Sprintf("Hello from %s: %s %s answered by a healthy upstream.\n", s.Name, req.Method, req.URL.RequestURI())
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nX-Upstream: %s\r\n\r\n%s", len(body), s.Name, body)
		return err == nil
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return false
	case Close:
		return false
	case Hang:
		<-s.ctx.Done()
		return false
	case Junk:
		_, _ = io.WriteString(c, "+OK this is not HTTP at all\r\n\r\n")
		return false
	case HugeHeader:
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for b.Len() < HugeHeaderBytes {
			b.WriteString(line)
		}
		b.WriteString("\r\n")
		_, _ = io.WriteString(c, b.String())
		return false
	case TruncatedBody:
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", TruncatedBodyBytes)
		_, _ = c.Write(make([]byte, TruncatedBodyBytes/2))
		return false
	case TruncatedHeader:
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/ht")
		return false
	case Status502:
		body := "<html><body><h1>502 Bad Gateway</h1><p>upstream of " + s.Name + " failed</p></body></html>\n"
		_, err := fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: %d\r\nX-Upstream: %s\r\n\r\n%s", len(body), s.Name, body)
		return err == nil
	case Slow:
		d := s.SlowDelay
		if d == 0 {
			d = 3 * time.Second
		}
		select {
		case <-time.After(d):
		case <-s.ctx.Done():
			return false
		}
		return s.answer(c, req, OK)
	}
	return false
}

// DeadAddr returns a loopback host:port where nothing listens: a port
// that was free a moment ago, below the kernel's ephemeral range
// (loopport.Free), where no listener on port 0 or outgoing connection can
// land later. Connections to it are refused.
func DeadAddr() (string, error) {
	addr, err := loopport.Free()
	if err != nil {
		return "", fmt.Errorf("faults: %w", err)
	}
	return addr, nil
}
