package limit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// connTestTimeout bounds every wait in these tests.
const connTestTimeout = 5 * time.Second

// limitedServer is a LimitListener on a real loopback TCP listener, with
// what it accepted and rejected.
type limitedServer struct {
	ln       net.Listener
	accepted chan net.Conn
	rejected chan rejection
}

type rejection struct {
	ip     netip.Addr
	reason string
}

func startLimitedServer(t *testing.T, maxConns, maxPerIP int) *limitedServer {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &limitedServer{accepted: make(chan net.Conn, 64), rejected: make(chan rejection, 64)}
	s.ln = LimitListener(raw, maxConns, maxPerIP, func(ip netip.Addr, reason string) {
		s.rejected <- rejection{ip, reason}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = s.ln.Close()
		<-done
		close(s.accepted)
		for c := range s.accepted {
			_ = c.Close()
		}
	})
	return s
}

// dial connects to the server from the local address from (any when
// empty). It returns nil when the server reset the connection before the
// dial returned (it was over a limit).
func (s *limitedServer) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: connTestTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", s.ln.Addr().String())
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		if from != "" {
			t.Skipf("cannot connect from %s (only Linux routes all of 127.0.0.0/8 to loopback): %v", from, err)
		}
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// outcome waits for the server's verdict on one connection: the accepted
// connection, or the rejection.
func (s *limitedServer) outcome(t *testing.T) (net.Conn, *rejection) {
	t.Helper()
	select {
	case c := <-s.accepted:
		return c, nil
	case r := <-s.rejected:
		return nil, &r
	case <-time.After(connTestTimeout):
		t.Fatalf("no connection accepted or rejected within %s: Accept blocked?", connTestTimeout)
		return nil, nil
	}
}

func TestLimitListenerCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc               string
		maxConns, maxPerIP int
		// from is the source address of each connection, in order.
		from []string
		// want is the verdict on each: "" for accepted, else the
		// rejection reason.
		want []string
	}{
		{
			desc: "no limits", from: []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"},
			want: []string{"", "", "", ""},
		},
		{
			desc: "total cap", maxConns: 2, from: []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"},
			want: []string{"", "", RejectMaxConns, RejectMaxConns},
		},
		{
			desc: "per-IP cap", maxPerIP: 2, from: []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"},
			want: []string{"", "", RejectMaxConnsPerIP},
		},
		{
			desc: "per-IP cap counts each IP apart", maxPerIP: 2,
			from: []string{"127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2", "127.0.0.2"},
			want: []string{"", "", "", RejectMaxConnsPerIP, "", RejectMaxConnsPerIP},
		},
		{
			desc: "total cap before per-IP cap", maxConns: 3, maxPerIP: 2,
			from: []string{"127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.1"},
			want: []string{"", "", "", RejectMaxConns, RejectMaxConns},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			s := startLimitedServer(t, tt.maxConns, tt.maxPerIP)
			for i, from := range tt.from {
				client := s.dial(t, from)
				c, rej := s.outcome(t)
				got := ""
				if rej != nil {
					got = rej.reason
					if want := netip.MustParseAddr(from); rej.ip != want {
						t.Errorf("conn %d: rejected IP = %v, want %v", i, rej.ip, want)
					}
					assertClosedByServer(t, client)
				} else {
					t.Cleanup(func() { _ = c.Close() })
				}
				if got != tt.want[i] {
					t.Errorf("conn %d from %s: verdict = %q, want %q", i, from, got, tt.want[i])
				}
			}
		})
	}
}

// assertClosedByServer checks that the server closed c at once, without
// writing anything.
func assertClosedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	if c == nil {
		return // reset before the dial returned
	}
	_ = c.SetReadDeadline(time.Now().Add(connTestTimeout))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case n > 0:
		t.Errorf("a rejected connection got %d bytes, want none", n)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("a rejected connection is still open after %s", connTestTimeout)
	case err == nil:
		t.Errorf("read on a rejected connection: no error")
	}
}

func TestLimitListenerFreesSlotsOnClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc               string
		maxConns, maxPerIP int
	}{
		{desc: "total", maxConns: 2},
		{desc: "per IP", maxPerIP: 2},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			s := startLimitedServer(t, tt.maxConns, tt.maxPerIP)
			var open []net.Conn
			for range 2 {
				s.dial(t, "")
				c, rej := s.outcome(t)
				if rej != nil {
					t.Fatalf("conn under the limit rejected: %s", rej.reason)
				}
				open = append(open, c)
			}
			s.dial(t, "")
			if _, rej := s.outcome(t); rej == nil {
				t.Fatalf("conn over the limit accepted")
			}

			// Closing one connection twice frees one slot, not two.
			if err := open[0].Close(); err != nil {
				t.Fatalf("first Close: %v", err)
			}
			_ = open[0].Close() // net: use of closed connection; must not free again
			var verdicts []string
			for range 2 {
				s.dial(t, "")
				c, rej := s.outcome(t)
				if rej != nil {
					verdicts = append(verdicts, rej.reason)
					continue
				}
				verdicts = append(verdicts, "accepted")
				open = append(open, c)
			}
			if got := verdicts[0]; got != "accepted" {
				t.Errorf("after one Close: verdict = %q, want accepted", got)
			}
			if got := verdicts[1]; got == "accepted" {
				t.Errorf("after one Close called twice: two slots freed, want one")
			}
			for _, c := range open[1:] {
				_ = c.Close()
			}
			// All closed: both slots are free again.
			for i := range 2 {
				s.dial(t, "")
				c, rej := s.outcome(t)
				if rej != nil {
					t.Fatalf("conn %d after closing all rejected: %s", i, rej.reason)
				}
				t.Cleanup(func() { _ = c.Close() })
			}
		})
	}
}

// TestLimitListenerAcceptNotBlocked fills the limit and checks that a
// burst of further connections is each closed at once while the ones
// holding the slots stay open, and that Accept returns the next connection
// as soon as a slot frees.
func TestLimitListenerAcceptNotBlocked(t *testing.T) {
	t.Parallel()
	s := startLimitedServer(t, 1, 0)
	s.dial(t, "")
	holder, rej := s.outcome(t)
	if rej != nil {
		t.Fatalf("first conn rejected: %s", rej.reason)
	}
	const burst = 20
	for i := range burst {
		client := s.dial(t, "")
		if _, rej := s.outcome(t); rej == nil {
			t.Fatalf("conn %d over the limit accepted", i)
		}
		assertClosedByServer(t, client)
	}
	// The holder still works both ways after the burst.
	if _, err := holder.Write([]byte("x")); err != nil {
		t.Errorf("write on the conn holding the slot: %v", err)
	}
	_ = holder.Close()
	s.dial(t, "")
	c, rej := s.outcome(t)
	if rej != nil {
		t.Fatalf("conn after the slot freed rejected: %s", rej.reason)
	}
	_ = c.Close()
}

func TestLimitListenerConnKeepsOptionalMethods(t *testing.T) {
	t.Parallel()
	s := startLimitedServer(t, 0, 0)
	client := s.dial(t, "")
	c, _ := s.outcome(t)
	if c == nil {
		t.Fatal("conn rejected with no limit")
	}
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite; net/http uses it to close gracefully", c)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Errorf("%T has no ReadFrom; io.Copy into it cannot use splice or sendfile", c)
	}
	if _, err := io.Copy(c, io.LimitReader(zeroReader{}, 10)); err != nil {
		t.Fatalf("io.Copy into the conn: %v", err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(connTestTimeout))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if len(got) != 10 {
		t.Errorf("client got %d bytes then EOF, want 10", len(got))
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestIPGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		addr net.Addr
		want string // the group; "" for not counted per IP
	}{
		{desc: "IPv4", addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1234}, want: "192.0.2.7"},
		{desc: "IPv4 mapped into IPv6", addr: &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1234}, want: "192.0.2.7"},
		{desc: "IPv6 host in its /64", addr: &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 1}, want: "2001:db8:1:2::"},
		{desc: "IPv6 with a zone", addr: &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 1}, want: "fe80::"},
		{desc: "IPv6 loopback", addr: &net.TCPAddr{IP: net.IPv6loopback, Port: 1}, want: "::"},
		{desc: "other address type", addr: fakeAddr("[2001:db8::5]:80"), want: "2001:db8::"},
		{desc: "unix socket", addr: &net.UnixAddr{Name: "/run/gw.sock", Net: "unix"}, want: ""},
		{desc: "no address", addr: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g, counted := ipGroup(remoteIP(tt.addr))
			got := ""
			if counted {
				got = g.String()
			}
			if got != tt.want {
				t.Errorf("group of %v = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// TestLimitListenerIPv6Groups checks the per-IP limit over IPv6 clients,
// with connections that come from a fake listener (net.Pipe ends with
// chosen remote addresses): one /64 shares one count.
func TestLimitListenerIPv6Groups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from string
		want string // "" for accepted, else the rejection reason
	}{
		{"2001:db8:1:2::1", ""},
		{"2001:db8:1:2::2", ""},
		{"2001:db8:1:2:ffff::9", RejectMaxConnsPerIP}, // same /64: over the limit of 2
		{"2001:db8:1:3::1", ""},                       // the next /64
		{"2001:db8:1:3::1", ""},
		{"2001:db8:1:3:1::1", RejectMaxConnsPerIP},
		{"192.0.2.1", ""},
		{"192.0.2.2", ""},
		{"192.0.2.1", ""},
		{"192.0.2.1", RejectMaxConnsPerIP},
		{"::ffff:192.0.2.2", ""}, // IPv4 mapped: 192.0.2.2's second
		{"192.0.2.2", RejectMaxConnsPerIP},
	}

	fl := newFakeListener()
	var mu sync.Mutex
	var rejected []rejection
	ln := LimitListener(fl, 0, 2, func(ip netip.Addr, reason string) {
		mu.Lock()
		defer mu.Unlock()
		rejected = append(rejected, rejection{ip, reason})
	})
	defer ln.Close()
	for i, tt := range tests {
		ip := netip.MustParseAddr(tt.from)
		local, remote := net.Pipe()
		defer remote.Close()
		fl.conns <- addrConn{Conn: local, remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 40000))}
		// A rejected connection is closed and Accept goes on to the
		// next: a marker connection (a unix address, not counted per
		// IP) after each tells which happened.
		marker, markerRemote := net.Pipe()
		defer markerRemote.Close()
		fl.conns <- addrConn{Conn: marker, remote: &net.UnixAddr{Name: "marker", Net: "unix"}}

		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		got := ""
		if _, isMarker := c.RemoteAddr().(*net.UnixAddr); isMarker {
			mu.Lock()
			r := rejected[len(rejected)-1]
			mu.Unlock()
			got = r.reason
			if r.ip != ip.Unmap() {
				t.Errorf("conn %d: rejection names %v, want %v", i, r.ip, ip.Unmap())
			}
		} else {
			defer c.Close() // keep it counted until the end
			m, err := ln.Accept()
			if err != nil {
				t.Fatalf("Accept marker: %v", err)
			}
			c = m
		}
		_ = c.Close() // the marker
		if got != tt.want {
			t.Errorf("conn %d from %s: verdict %q, want %q", i, tt.from, got, tt.want)
		}
	}
}

// fakeListener hands out the connections sent on conns.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newFakeListener() *fakeListener {
	return &fakeListener{conns: make(chan net.Conn, 4), closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return fakeAddr("fake:0") }

// addrConn is a net.Conn with a chosen remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// fakeAddr is a net.Addr of no known type.
type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

// TestLimitListenerChurn opens and closes many connections at once, some
// over the limits, and checks that every slot is given back in the end.
func TestLimitListenerChurn(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var rejected atomic.Int64
	ln := LimitListener(raw, 8, 6, func(netip.Addr, string) { rejected.Add(1) })
	defer ln.Close()
	var served sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				// Hold it until the client hangs up, then close twice.
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
				_ = c.Close()
			})
		}
	}()
	const clients, rounds = 20, 10
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range rounds {
				c, err := net.DialTimeout("tcp", raw.Addr().String(), connTestTimeout)
				if err != nil {
					continue // reset at once: over a limit
				}
				_, _ = c.Write([]byte("x"))
				time.Sleep(time.Millisecond)
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	l := ln.(*limitListener).l
	deadline := time.Now().Add(connTestTimeout)
	for {
		l.mu.Lock()
		total, perIP := l.total, len(l.perIP)
		l.mu.Unlock()
		if total == 0 && perIP == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every connection closed: %d slots still taken, %d IPs still counted", total, perIP)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rejected.Load() == 0 {
		t.Logf("no connection was over a limit this time (20 clients, limits 8 and 6 per IP)")
	}
}

// TestLimitListenerExempt checks that a trusted proxy's connections are not
// held to the per-IP limit, but still count toward the total.
func TestLimitListenerExempt(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListenerExempt(inner, 5, 1, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		select {
		case s := <-accepted:
			defer s.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d from an exempt address was not accepted (per-IP limit 1)", i+1)
		}
	}
}

// TestConnLimitsShared checks that two listeners wrapped by one ConnLimits
// share its max_conns: with a limit of 2, a connection to each listener
// takes both slots, and a third to either is refused until one closes.
func TestConnLimitsShared(t *testing.T) {
	t.Parallel()
	var rejected atomic.Int64
	lim := NewConnLimits(2, 0, nil, func(netip.Addr, string) { rejected.Add(1) })
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wrapped := lim.Listener(ln)
		t.Cleanup(func() { _ = wrapped.Close() })
		lns = append(lns, wrapped)
		go func() {
			for {
				c, err := wrapped.Accept()
				if err != nil {
					return
				}
				go func() {
					_, _ = io.Copy(io.Discard, c) // until the client closes
					_ = c.Close()
				}()
			}
		}()
	}
	dial := func(ln net.Listener) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	taken := func() int {
		lim.mu.Lock()
		defer lim.mu.Unlock()
		return lim.total
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(connTestTimeout); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	a, b := dial(lns[0]), dial(lns[1])
	defer a.Close()
	waitUntil("both slots taken", func() bool { return taken() == 2 })
	// The third is accepted and reset at once: the reset may reach the
	// dial itself, or the first read.
	third, err := net.Dial("tcp", lns[0].Addr().String())
	waitUntil("the third connection refused", func() bool { return rejected.Load() == 1 })
	if err == nil {
		_ = third.SetReadDeadline(time.Now().Add(connTestTimeout))
		if _, err := third.Read(make([]byte, 1)); err == nil {
			t.Errorf("read on the refused connection succeeded")
		}
		_ = third.Close()
	}
	_ = b.Close()
	waitUntil("the closed connection's slot freed", func() bool { return taken() == 1 })
	c := dial(lns[1])
	defer c.Close()
	waitUntil("the new connection counted", func() bool { return taken() == 2 })
	if got := rejected.Load(); got != 1 {
		t.Errorf("rejected %d, want 1", got)
	}
}
