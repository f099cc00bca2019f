package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/sockio"
)

// ErrRetiredIdle is returned, before anything is written, by a pooled
// connection that has been idle for longer than its target is known to keep
// idle connections. The transport then sends the request on a new
// connection, as it does for any connection found dead before use.
var ErrRetiredIdle = errors.New("pooled connection retired: idle longer than the target's keep-alive timeout")

// Conn is an upstream connection that counts the bytes read from it (so the
// proxy can tell an oversized response header section from other protocol
// errors by how much arrived) and watches its idle time, to learn the
// target's keep-alive timeout and retire the connection before the target
// closes it.
type Conn struct {
	net.Conn
	idle *IdleLearner // nil: no learning
	now  func() time.Time

	read      atomic.Int64
	lastRead  atomic.Int64 // unix nanoseconds of the last read that returned data
	lastWrite atomic.Int64 // unix nanoseconds of the last write
	writes    atomic.Int64
	// managed is set by a Transport that checks the connection's idle
	// time itself before each request, before any of the request's body
	// is read: Write then does not retire it halfway. The Transport also
	// sets lastWrite when it sends a request and lastRead when it puts
	// the connection back in its pool, so Read and Write read no clock.
	managed bool
}

// Read reads from the connection, counts the bytes, and reports an idle
// close by the target to its IdleLearner.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Add(int64(n))
		if !c.managed {
			c.lastRead.Store(c.now().UnixNano())
		}
	}
	if err != nil && n == 0 && peerClosed(err) {
		c.observeClosed()
	}
	return n, err
}

// observeClosed reports a close by the target to the IdleLearner when the
// connection was idle: a response arrived after the last request was
// written, and nothing was written since.
func (c *Conn) observeClosed() {
	if c.idle == nil {
		return
	}
	lr, lw := c.lastRead.Load(), c.lastWrite.Load()
	if lr != 0 && lr >= lw {
		c.idle.ObserveIdleClose(time.Duration(c.now().UnixNano() - lr))
	}
}

// Write writes to the connection, unless it is a pooled connection that
// has been idle past its target's learned keep-alive timeout: then it
// closes the connection and returns ErrRetiredIdle without writing.
func (c *Conn) Write(b []byte) (int, error) {
	if c.managed {
		c.writes.Add(1)
		return c.Conn.Write(b)
	}
	now := c.now().UnixNano()
	if c.idle != nil && c.writes.Load() > 0 {
		if limit := c.idle.RetireAfter(); limit > 0 {
			last := max(c.lastRead.Load(), c.lastWrite.Load())
			if time.Duration(now-last) > limit && c.lastRead.Load() >= c.lastWrite.Load() {
				_ = c.Conn.Close()
				return 0, ErrRetiredIdle
			}
		}
	}
	c.writes.Add(1)
	c.lastWrite.Store(now)
	return c.Conn.Write(b)
}

// BytesRead returns the bytes read so far over the connection's life.
func (c *Conn) BytesRead() int64 { return c.read.Load() }

func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// Dialer returns a dial function whose connections are *Conn. learner
// returns the IdleLearner of the target at addr, or nil.
func Dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), learner func(addr string) *IdleLearner, now func() time.Time) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &Conn{Conn: sockio.Wrap(c), idle: learner(addr), now: now}, nil
	}
}

// AsConn finds the *Conn under c, looking through a TLS connection (which
// has NetConn). It returns nil when there is none.
func AsConn(c net.Conn) *Conn {
	for c != nil {
		if cc, ok := c.(*Conn); ok {
			return cc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
