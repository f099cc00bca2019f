package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// h2Result is what h2load reported.
type h2Result struct {
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"requests_per_second"` // every answer, as h2load counts
	OKRPS     float64 `json:"ok_per_second"`       // 2xx answers
	Requests  int64   `json:"requests"`
	Succeeded int64   `json:"succeeded"`
	Failed    int64   `json:"failed"` // h2load's "failed": errors and 4xx or 5xx answers
	Errors    int64   `json:"errors"` // h2load's "errored" and "timeout"
	OK        int64   `json:"status_2xx"`
	Non2xx    int64   `json:"non_2xx"`
	Done      int64   `json:"done"` // answered in the measured time
	MeanMs    float64 `json:"mean_ms"`
	SDMs      float64 `json:"sd_ms"`
	MaxMs     float64 `json:"max_ms"`
	Protocol  string  `json:"protocol"`
}

var (
	h2FinishedRE = regexp.MustCompile(`(?m)^finished in ([\d.]+\w+), ([\d.]+) req/s`)
	h2RequestsRE = regexp.MustCompile(`(?m)^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2StatusRE   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2TimeRE     = regexp.MustCompile(`(?m)^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)`)
	h2ProtoRE    = regexp.MustCompile(`(?m)^Application protocol: (\S+)`)
)

// parseH2load reads the output of h2load. It gives no percentiles: the
// mean, the standard deviation and the maximum time for a request.
func parseH2load(out string) (h2Result, error) {
	var r h2Result
	m := h2FinishedRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no %q line: %w", "finished in", benchkit.ErrParse)
	}
	d, err := benchkit.ParseToolDuration(m[1])
	if err != nil {
		return r, err
	}
	r.Seconds = d.Seconds()
	r.RPS, _ = strconv.ParseFloat(m[2], 64)
	m = h2RequestsRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no requests line: %w", benchkit.ErrParse)
	}
	var n [6]int64
	for i := range n {
		n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	r.Requests, r.Done, r.Succeeded, r.Failed, r.Errors = n[0], n[1], n[2], n[3], n[4]+n[5]
	m = h2StatusRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no status codes line: %w", benchkit.ErrParse)
	}
	r.OK, _ = strconv.ParseInt(m[1], 10, 64)
	for _, s := range m[2:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		r.Non2xx += v
	}
	if r.Seconds > 0 {
		r.OKRPS = float64(r.OK) / r.Seconds
	}
	if m = h2ProtoRE.FindStringSubmatch(out); m != nil {
		r.Protocol = m[1]
	}
	m = h2TimeRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no %q line: %w", "time for request", benchkit.ErrParse)
	}
	for i, dst := range []*float64{&r.MaxMs, &r.MeanMs, &r.SDMs} {
		d, err := benchkit.ParseToolDuration(m[i+2])
		if err != nil {
			return r, err
		}
		*dst = float64(d) / 1e6
	}
	return r, nil
}

// idleResult is what holding many idle keep-alive connections showed.
type idleResult struct {
	Wanted  int    `json:"wanted"`
	Opened  int    `json:"opened"` // connected and answered 200
	Failed  int    `json:"failed"` // failed to connect or to get an answer
	StillOp int    `json:"open_at_measurement"`
	FirstEr string `json:"first_error,omitempty"`
}

// idleConns holds keep-alive connections that each sent one GET and read
// its answer, then idle.
type idleConns struct {
	mu    sync.Mutex
	conns []net.Conn
}

// openIdle opens n connections to addr (at most par at a time), sends
// GET path on each and reads the answer, and keeps them open. Connections
// that fail are counted, not kept.
func openIdle(ctx context.Context, addr, path string, n, par int) (*idleConns, idleResult) {
	ic := &idleConns{conns: make([]net.Conn, 0, n)}
	res := idleResult{Wanted: n}
	var next, failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: gatewise-compare\r\n\r\n"
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 1024)
			d := net.Dialer{Timeout: 5 * time.Second}
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				c, err := oneIdle(ctx, &d, br, addr, req)
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { res.FirstEr = err.Error() })
					continue
				}
				ic.mu.Lock()
				ic.conns = append(ic.conns, c)
				ic.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Opened = len(ic.conns)
	res.Failed = int(failed.Load())
	return ic, res
}

// oneIdle opens one connection and reads one answer on it.
func oneIdle(ctx context.Context, d *net.Dialer, br *bufio.Reader, addr, req string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		_ = c.Close()
		return nil, err
	}
	br.Reset(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && br.Buffered() > 0 {
		err = errors.New("bytes after the response")
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// stillOpen counts the connections the server has not closed: a peek that
// would block means open; end of file or an error means closed.
func (ic *idleConns) stillOpen() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	open := 0
	buf := make([]byte, 1)
	for _, c := range ic.conns {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			continue
		}
		raw, err := tc.SyscallConn()
		if err != nil {
			continue
		}
		alive := false
		_ = raw.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			alive = n > 0 || errors.Is(err, syscall.EAGAIN)
			return true
		})
		if alive {
			open++
		}
	}
	return open
}

// close closes every connection.
func (ic *idleConns) close() {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for _, c := range ic.conns {
		_ = c.Close()
	}
	ic.conns = nil
}
