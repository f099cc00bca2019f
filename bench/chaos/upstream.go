package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// chaosHeader carries the unique id of each request of the load, so the
// upstreams can tell a retried copy from a new request.
const chaosHeader = "X-Chaos-ID"

// fault is what a chaos target does wrong.
type fault int

const (
	// faultKilled answers every request until it is killed: then its
	// listener and every connection are closed and connections are refused.
	faultKilled fault = iota
	// faultReset resets every third connection it accepts (SO_LINGER 0
	// after reading the first request on it) and serves the others.
	faultReset
	// faultHang reads each request and never answers.
	faultHang
)

func (f fault) String() string {
	switch f {
	case faultKilled:
		return "killed at 1/3 of the run"
	case faultReset:
		return "resets every 3rd connection"
	case faultHang:
		return "hangs (never answers)"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// ledger counts, across every target of one run, how many times each
// request id reached an upstream (counted when its headers are read).
type ledger struct {
	mu   sync.Mutex
	seen map[string]*sighting
}

type sighting struct {
	method string
	count  int
}

func newLedger() *ledger { return &ledger{seen: make(map[string]*sighting)} }

func (l *ledger) record(id, method string) {
	l.mu.Lock()
	s := l.seen[id]
	if s == nil {
		s = &sighting{method: method}
		l.seen[id] = s
	}
	s.count++
	l.mu.Unlock()
}

// ledgerSummary is what the upstreams saw of the load's ids.
type ledgerSummary struct {
	// DuplicatePOSTs is how many POST ids reached the upstreams more than
	// once.
	DuplicatePOSTs int `json:"duplicate_posts"`
	// ExtraPOSTCopies is how many copies beyond the first those ids had.
	ExtraPOSTCopies int `json:"extra_post_copies"`
	// RetriedGETs is how many GET ids reached the upstreams more than once
	// (safe: a retried GET is what a proxy should do).
	RetriedGETs int `json:"retried_gets"`
	// MaxCopies is the most times one id reached the upstreams.
	MaxCopies int `json:"max_copies"`
	// Distinct is how many ids reached an upstream at all.
	Distinct int `json:"distinct_ids"`
}

func (l *ledger) summary() ledgerSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s ledgerSummary
	s.Distinct = len(l.seen)
	for _, v := range l.seen {
		s.MaxCopies = max(s.MaxCopies, v.count)
		if v.count < 2 {
			continue
		}
		if v.method == http.MethodPost {
			s.DuplicatePOSTs++
			s.ExtraPOSTCopies += v.count - 1
		} else {
			s.RetriedGETs++
		}
	}
	return s
}

// duplicatePOSTIDs returns up to n POST ids seen more than once, sorted,
// for the JSON results.
func (l *ledger) duplicatePOSTIDs(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, v := range l.seen {
		if v.method == http.MethodPost && v.count > 1 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > n {
		ids = ids[:n]
	}
	return ids
}

// target is one chaos upstream on a loopback port. It speaks HTTP/1.1 over
// raw connections so that it controls exactly when a connection is reset,
// hung or closed.
type target struct {
	name   string
	fault  fault
	ledger *ledger
	ln     net.Listener

	accepted atomic.Int64 // connections accepted
	requests atomic.Int64 // requests whose headers were read
	checks   atomic.Int64 // of which without X-Chaos-ID: health checks
	answered atomic.Int64 // 200s written
	resets   atomic.Int64 // connections reset after a request
	hung     atomic.Int64 // requests never answered

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
	wg     sync.WaitGroup
}

// startTarget listens on a free loopback port and serves until kill.
func startTarget(name string, f fault, l *ledger) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	t := &target{name: name, fault: f, ledger: l, ln: ln, conns: make(map[net.Conn]struct{})}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

func (t *target) addr() string { return t.ln.Addr().String() }

// kill closes the listener and every connection, hung ones included, and
// waits for the connection goroutines. It may be called more than once.
func (t *target) kill() {
	t.mu.Lock()
	if !t.killed {
		t.killed = true
		_ = t.ln.Close()
		for c := range t.conns {
			_ = c.Close()
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *target) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		n := t.accepted.Add(1)
		t.mu.Lock()
		if t.killed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			t.serve(c, n)
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// serve reads requests on c, the nth connection accepted, and answers them
// according to the target's fault.
func (t *target) serve(c net.Conn, n int64) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		t.requests.Add(1)
		if id := req.Header.Get(chaosHeader); id != "" {
			t.ledger.record(id, req.Method)
		} else {
			t.checks.Add(1)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
		_ = req.Body.Close()
		switch {
		case t.fault == faultReset && n%3 == 0:
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			t.resets.Add(1)
			return
		case t.fault == faultHang:
			t.hung.Add(1)
			// Never answer; return when the peer gives up or kill
			// closes the connection.
			_, _ = io.Copy(io.Discard, br)
			return
		}
		if _, err := io.WriteString(c, t.response(req.Close)); err != nil {
			return
		}
		t.answered.Add(1)
		if req.Close {
			return
		}
	}
}

func (t *target) response(closing bool) string {
	body := `{"ok":true,"upstream":"` + t.name + `"}` + "\n"
	conn := ""
	if closing {
		conn = "Connection: close\r\n"
	}
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\nX-Upstream: " + t.name + "\r\n" + conn + "\r\n" + body
}

// targetStats is what one target saw during a run.
type targetStats struct {
	Name     string `json:"name"`
	Fault    string `json:"fault"`
	Addr     string `json:"addr"`
	Accepted int64  `json:"connections_accepted"`
	Requests int64  `json:"requests"`
	Checks   int64  `json:"health_checks"`
	Answered int64  `json:"answered"`
	Resets   int64  `json:"resets"`
	Hung     int64  `json:"hung"`
}

func (t *target) stats() targetStats {
	return targetStats{
		Name: t.name, Fault: t.fault.String(), Addr: t.addr(),
		Accepted: t.accepted.Load(), Requests: t.requests.Load(), Checks: t.checks.Load(),
		Answered: t.answered.Load(), Resets: t.resets.Load(), Hung: t.hung.Load(),
	}
}
