//go:build linux

// The attacker's connections come from 127.0.0.2, which only Linux routes
// to loopback without configuration.

package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Sizes of TestSlowloris.
const (
	slowlorisConns = 1000
	// slowlorisNormalRequests are made by slowlorisWorkers clients, each
	// on a new connection (so each goes through accept and the
	// connection limits), once without the attack and once under it.
	slowlorisNormalRequests = 200
	slowlorisWorkers        = 4
	// slowlorisAttacker is the attacker's address; the normal clients
	// come from 127.0.0.1, so the per-IP limit tells them apart.
	slowlorisAttacker = "127.0.0.2"
	// slowlorisTrickle is the pace of the attack: one more byte of the
	// never-ending header section per connection per tick.
	slowlorisTrickle = time.Second
	// slowlorisSlack is the latency a busy 2-core machine (under -race,
	// with the other test binaries of `go test ./...` running) may add to
	// a loopback request by chance; see slowlorisBound.
	slowlorisSlack = 20 * time.Millisecond
)

// slowlorisBound is the highest median latency under attack that passes:
// three times the median without it, or the median plus slowlorisSlack,
// whichever is larger. The ratio catches a server slowed in proportion to
// the open connections (an accept loop that blocks on a full limit, work
// per connection per request); the absolute slack keeps a sub-millisecond
// baseline from failing on scheduler noise. A server that slowloris
// stops fails by far: its normal requests wait for ReadHeaderTimeout (10s)
// or fail.
func slowlorisBound(baseline time.Duration) time.Duration {
	return max(3*baseline, baseline+slowlorisSlack)
}

// TestSlowloris is the acceptance test "1,000 slowloris connections from a
// test client do not stop normal clients from being served at normal
// latency": 1,000 TCP connections from one address each send a partial
// request header, then one byte a second, while normal clients make
// requests through the gateway on new connections. Every normal request
// must succeed, with a median latency close to the one measured just
// before, without the attack.
//
// "default limits" keeps limits.max_conns_per_ip at 256: the gateway holds
// 256 of the attacker's connections and closes the other 744 at accept.
// "no per-IP limit" sets it to 0, so the gateway holds all 1,000: what
// protects the normal clients is then one cheap goroutine per connection
// and read_header_timeout (10s), which must close every attacking
// connection once it passes, however it trickles.
//
// It measures latency, so it does not run in parallel with the package's
// other tests. It takes about 12s; -short skips it.
func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 slowloris connections held for read_header_timeout (10s); skipped with -short")
	}
	// Both ends of every connection are in this process.
	raiseNoFile(t, 2*slowlorisConns+1024)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)

	tests := []struct {
		desc     string
		maxPerIP int
		// wantHeld is how many attacking connections the gateway keeps
		// open (until read_header_timeout).
		wantHeld int
		// waitReaped waits for read_header_timeout to close every held
		// connection.
		waitReaped bool
	}{
		{desc: "default limits", maxPerIP: 256, wantHeld: 256},
		{desc: "no per-IP limit", maxPerIP: 0, wantHeld: slowlorisConns, waitReaped: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			cfg := oneTargetConfig(up.URL)
			maxPerIP := tt.maxPerIP
			cfg.Limits.MaxConnsPerIP = &maxPerIP
			headerTimeout := cfg.Limits.ReadHeaderTimeout.Duration
			gw := startGateway(t, cfg)
			addr := gw.srv.Addrs()[0].String()

			_ = normalLatencies(t, gw.url, 20) // warm up
			base := normalLatencies(t, gw.url, slowlorisNormalRequests)

			attackStart := time.Now()
			atk := startSlowloris(t, addr, slowlorisConns)
			// The connections over the per-IP limit are closed at once;
			// the others stay open.
			waitFor(t, "the gateway to close the connections over the limit", func() bool {
				return atk.open() <= tt.wantHeld
			})
			time.Sleep(100 * time.Millisecond) // and no more than those
			if got := atk.open(); got != tt.wantHeld {
				t.Fatalf("gateway holds %d attacking connections, want %d", got, tt.wantHeld)
			}

			under := normalLatencies(t, gw.url, slowlorisNormalRequests)

			heldDuring := atk.open()
			measuredBy := time.Since(attackStart)
			if measuredBy < headerTimeout && heldDuring < tt.wantHeld {
				t.Errorf("only %d of %d attacking connections still open after the measurement (%s into the attack): "+
					"the attack was not in place", heldDuring, tt.wantHeld, measuredBy.Round(time.Millisecond))
			}
			if tt.maxPerIP > 0 {
				want := slowlorisConns - tt.wantHeld
				if got := rejectedMetric(t, gw, "max_conns_per_ip"); got != want {
					t.Errorf("gatewise_connections_rejected_total{reason=max_conns_per_ip} = %d, want %d", got, want)
				}
			}

			bp50, bp99 := percentile(base, 50), percentile(base, 99)
			up50, up99 := percentile(under, 50), percentile(under, 99)
			t.Logf("%d normal requests: baseline p50 %s p99 %s; under %d slowloris connections (%d held by the gateway) p50 %s p99 %s",
				len(under), bp50, bp99, slowlorisConns, heldDuring, up50, up99)
			if bound := slowlorisBound(bp50); up50 > bound {
				t.Errorf("median latency under attack %s, over %s (max(3 × %s, %s + %s))", up50, bound, bp50, bp50, slowlorisSlack)
			}

			if tt.waitReaped {
				// Every held connection goes at read_header_timeout,
				// trickle or not: the deadline is on the whole header
				// section, not on each byte.
				deadline := attackStart.Add(headerTimeout + 5*time.Second)
				for atk.open() > 0 && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if n := atk.open(); n > 0 {
					t.Errorf("%d attacking connections still open %s after the attack began (read_header_timeout %s)",
						n, time.Since(attackStart).Round(time.Millisecond), headerTimeout)
				}
				first, last := atk.closedRange()
				t.Logf("read_header_timeout %s closed the held connections between %s and %s after the attack began",
					headerTimeout, first.Sub(attackStart).Round(time.Millisecond), last.Sub(attackStart).Round(time.Millisecond))
				if early := first.Sub(attackStart); early < headerTimeout-time.Second {
					t.Errorf("a held connection was closed %s into the attack, before read_header_timeout %s", early, headerTimeout)
				}
			}
		})
	}
}

// raiseNoFile raises the soft limit on open files to need, or fails
// saying how.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("getrlimit NOFILE: %v", err)
	}
	if rl.Cur >= need {
		return
	}
	if rl.Max < need {
		t.Fatalf("this test opens %d files; the hard limit is %d: raise it (as root: ulimit -Hn %d; or LimitNOFILE= in a systemd unit)", need, rl.Max, need)
	}
	rl.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("setrlimit NOFILE to %d: %v", need, err)
	}
}

// normalLatencies makes n GETs through the gateway from slowlorisWorkers
// clients, each on a new connection, and returns their latencies. Every
// request must succeed.
func normalLatencies(t *testing.T, url string, n int) []time.Duration {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   30 * time.Second,
	}
	var (
		mu     sync.Mutex
		out    []time.Duration
		failed []string
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	for range slowlorisWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				start := time.Now()
				err := func() error {
					res, err := client.Get(url + "/")
					if err != nil {
						return err
					}
					defer res.Body.Close()
					b, err := io.ReadAll(res.Body)
					if err != nil {
						return err
					}
					if res.StatusCode != http.StatusOK || string(b) != "ok" {
						return fmt.Errorf("status %d, body %q", res.StatusCode, b)
					}
					return nil
				}()
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					failed = append(failed, err.Error())
				} else {
					out = append(out, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d normal requests failed, first: %s", len(failed), n, failed[0])
	}
	return out
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// slowloris is an attack in progress: connections that each sent a
// partial request header and add one byte per slowlorisTrickle.
type slowloris struct {
	total  int
	closed atomic.Int64 // connections the gateway closed (read EOF or reset)
	mu     sync.Mutex
	first  time.Time // when the gateway closed the first one
	last   time.Time
}

// startSlowloris opens n connections to addr from slowlorisAttacker and
// keeps them trickling until the test ends.
func startSlowloris(t *testing.T, addr string, n int) *slowloris {
	t.Helper()
	a := &slowloris{total: n}
	conns := make([]net.Conn, n)
	var (
		next    atomic.Int64
		dialErr atomic.Pointer[error]
		wg      sync.WaitGroup
	)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(slowlorisAttacker)}, Timeout: 10 * time.Second}
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := d.Dial("tcp", addr)
				if closedByPeer(err) {
					// Accepted and reset by the gateway before the
					// dial returned: over the limit.
					a.noteClosed()
					continue
				}
				if err != nil {
					dialErr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		readers.Wait()
	})
	if p := dialErr.Load(); p != nil {
		t.Fatalf("slowloris dial from %s: %v", slowlorisAttacker, *p)
	}

	for _, c := range conns {
		if c == nil {
			continue
		}
		// The first bytes of a request that never ends.
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: gatewise.test\r\nX-Slow: "); err != nil && !closedByPeer(err) {
			t.Fatalf("slowloris write: %v", err)
		}
		// A reader per connection notices when the gateway closes it.
		readers.Go(func() {
			_, err := c.Read(make([]byte, 512))
			select {
			case <-stop:
				return // closed by the test
			default:
			}
			_ = err // EOF or reset: closed by the gateway (or any answer)
			a.noteClosed()
		})
	}
	go func() {
		tick := time.NewTicker(slowlorisTrickle)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns {
				if c == nil {
					continue
				}
				_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = c.Write([]byte("a")) // fails once the gateway closed it: fine
			}
		}
	}()
	return a
}

// noteClosed counts one connection the gateway closed.
func (a *slowloris) noteClosed() {
	now := time.Now()
	a.mu.Lock()
	if a.first.IsZero() {
		a.first = now
	}
	a.last = now
	a.mu.Unlock()
	a.closed.Add(1)
}

// open returns how many attacking connections the gateway has not closed.
func (a *slowloris) open() int { return a.total - int(a.closed.Load()) }

// closedRange returns when the gateway closed the first and the last
// attacking connection so far.
func (a *slowloris) closedRange() (first, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first, a.last
}

// closedByPeer reports whether err is the peer having closed or reset the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// rejectedMetric returns gatewise_connections_rejected_total for reason.
func rejectedMetric(t *testing.T, gw *gateway, reason string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^gatewise_connections_rejected_total\{reason="` + regexp.QuoteMeta(reason) + `"\} (\d+)$`)
	m := re.FindStringSubmatch(gw.metrics(t))
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("metric value %q: %v", m[1], err)
	}
	return n
}

// TestRequestHeaderLimits checks the answers to oversized request header
// sections: over limits.request_header_bytes (64KiB) or
// limits.max_header_count (100), the gateway's 431 with the cause; far over
// the size (past twice the limit, where the HTTP server stops reading), the
// server's bare 431. The upstream sees none of them.
func TestRequestHeaderLimits(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))
	many := http.Header{}
	for i := range 101 {
		many.Set(fmt.Sprintf("X-Field-%d", i), "1")
	}
	for _, tc := range []struct {
		desc        string
		header      http.Header
		status      int
		proxyStatus string // "" for none
	}{
		{"a 60KB cookie passes", http.Header{"Cookie": {"big=" + strings.Repeat("a", 60<<10)}}, 200, ""},
		{"101 fields", many, 431, `details="request_header_too_large: too many fields"`},
		{"a 100KB cookie: the gateway's page", http.Header{"Cookie": {"big=" + strings.Repeat("a", 100<<10)}}, 431, `details="request_header_too_large: too large"`},
		{"a 200KB cookie: the server's bare 431", http.Header{"Cookie": {"big=" + strings.Repeat("a", 200<<10)}}, 431, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := reached.Load()
			req, err := http.NewRequest(http.MethodGet, g.url+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			ps := res.Header.Get("Proxy-Status")
			if (tc.proxyStatus == "") != (ps == "") || !strings.Contains(ps, tc.proxyStatus) {
				t.Errorf("Proxy-Status %q, want %q", ps, tc.proxyStatus)
			}
			if wantReached := tc.status == 200; (reached.Load() > before) != wantReached {
				t.Errorf("upstream reached: %v, want %v", reached.Load() > before, wantReached)
			}
		})
	}
}
