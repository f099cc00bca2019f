package limit

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The reasons LimitListener gives onReject for closing a connection.
const (
	// RejectMaxConns means the gateway already held maxConns connections
	// (limits.max_conns).
	RejectMaxConns = "max_conns"
	// RejectMaxConnsPerIP means the client's IP (or, for IPv6, its /64)
	// already held maxPerIP connections (limits.max_conns_per_ip).
	RejectMaxConnsPerIP = "max_conns_per_ip"
)

// ipv6GroupBits is the prefix length IPv6 clients are grouped by for the
// per-IP limit: one host or home network usually gets a whole /64, so
// counting each address alone would let one client take 2^64 slots.
const ipv6GroupBits = 64

// LimitListener wraps ln: at most maxConns connections open at once over
// all (0: no limit) and maxPerIP per client IP (IPv6 grouped by /64; 0: no
// limit). An accepted connection over a limit is closed at once, without
// any HTTP answer (an answer would cost the work the limit saves), with a
// TCP reset so that no TIME_WAIT socket is left on the gateway's side, and
// is reported to onReject (may be nil) with the client's address and
// RejectMaxConns or RejectMaxConnsPerIP. onReject runs on the accepting
// goroutine: it must be quick (count, or log with a rate limit).
//
// Accept never blocks on a full limit and never returns an error for a
// rejection: it goes on to the next connection. Closing a connection it
// returned frees the connection's slots exactly once, however often Close
// is called. A connection whose remote address is not an IP address (a
// unix socket) counts against maxConns only.
//
// The connections it returns keep the optional methods net/http looks for
// (CloseWrite, ReadFrom) when the wrapped connections have them.
func LimitListener(ln net.Listener, maxConns, maxPerIP int, onReject func(ip netip.Addr, reason string)) net.Listener {
	return LimitListenerExempt(ln, maxConns, maxPerIP, nil, onReject)
}

// LimitListenerExempt is LimitListener whose per-IP limit does not apply
// to the addresses in exempt: the trusted proxies in front of the gateway
// (a load balancer or CDN), whose connections carry many clients each.
// They still count toward maxConns.
func LimitListenerExempt(ln net.Listener, maxConns, maxPerIP int, exempt []netip.Prefix, onReject func(ip netip.Addr, reason string)) net.Listener {
	return NewConnLimits(maxConns, maxPerIP, exempt, onReject).Listener(ln)
}

// ConnLimits counts the open connections of several listeners together, so
// that maxConns bounds them all: a gateway on :80 and :443 holds at most
// maxConns connections, not that many per port. Its zero value is not
// usable; make one with NewConnLimits.
type ConnLimits struct {
	maxConns int
	maxPerIP int
	exempt   []netip.Prefix
	onReject func(ip netip.Addr, reason string)

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int // by group (ipGroup); entries at zero are removed
}

// NewConnLimits returns the shared limits of LimitListenerExempt: at most
// maxConns connections over all the listeners it wraps (0: no limit) and
// maxPerIP per client IP (0: no limit; not for the addresses in exempt).
func NewConnLimits(maxConns, maxPerIP int, exempt []netip.Prefix, onReject func(ip netip.Addr, reason string)) *ConnLimits {
	return &ConnLimits{maxConns: maxConns, maxPerIP: maxPerIP, exempt: exempt, onReject: onReject, perIP: make(map[netip.Addr]int)}
}

// Listener wraps ln in the limits, as LimitListener describes; every
// listener it wraps shares the counts.
func (l *ConnLimits) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l}
}

// limitListener is a listener whose connections count in l.
type limitListener struct {
	net.Listener
	l *ConnLimits
}

// Accept returns the next connection within the limits, closing the ones
// over them as they come.
func (ll *limitListener) Accept() (net.Conn, error) {
	l := ll.l
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		group, counted := ipGroup(ip)
		for _, p := range l.exempt {
			if p.Contains(ip) {
				counted = false
				break
			}
		}
		if reason := l.acquire(group, counted); reason != "" {
			if tc := tcpConnOf(c); tc != nil {
				_ = tc.SetLinger(0) // reset: no TIME_WAIT left behind
			}
			_ = c.Close()
			if l.onReject != nil {
				l.onReject(ip, reason)
			}
			continue
		}
		return wrapConn(c, func() { l.release(group, counted) }), nil
	}
}

// tcpConnOf returns the *net.TCPConn under c, looking through wrappers
// that have NetConn (internal/sockio's), or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for c != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// acquire takes a slot for a connection from group (counted against the
// per-IP limit only when counted) and returns "", or the reason there is
// none.
func (l *ConnLimits) acquire(group netip.Addr, counted bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxConns > 0 && l.total >= l.maxConns {
		return RejectMaxConns
	}
	if counted && l.maxPerIP > 0 && l.perIP[group] >= l.maxPerIP {
		return RejectMaxConnsPerIP
	}
	l.total++
	if counted {
		l.perIP[group]++
	}
	return ""
}

// release gives back the slots acquire took.
func (l *ConnLimits) release(group netip.Addr, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if counted {
		if n := l.perIP[group]; n <= 1 {
			delete(l.perIP, group)
		} else {
			l.perIP[group] = n - 1
		}
	}
}

// remoteIP returns the IP address of a connection's remote end, IPv4
// addresses mapped into IPv6 unmapped, or the zero Addr when it has none.
func remoteIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ipGroup returns the key the per-IP limit counts ip under: an IPv4
// address itself, an IPv6 address's /64 (without zone), and false for the
// zero Addr (not counted per IP).
func ipGroup(ip netip.Addr) (netip.Addr, bool) {
	switch {
	case !ip.IsValid():
		return netip.Addr{}, false
	case ip.Is4():
		return ip, true
	}
	p, err := ip.WithZone("").Prefix(ipv6GroupBits)
	if err != nil {
		return netip.Addr{}, false
	}
	return p.Addr(), true
}

// limitConn frees its slots when closed.
type limitConn struct {
	net.Conn
	released atomic.Bool
	release  func()
}

func wrapConn(c net.Conn, release func()) net.Conn {
	return &limitConn{Conn: c, release: release}
}

// Close closes the connection and frees its slots, the first time only.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.release()
	}
	return err
}

// CloseWrite shuts down the writing side when the wrapped connection can
// (net/http uses it to flush a response before closing); else it does
// nothing.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom lets io.Copy into the connection use the wrapped connection's
// ReadFrom (sendfile, splice) when it has one.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn returns the wrapped connection.
func (c *limitConn) NetConn() net.Conn { return c.Conn }
