package upstream

import (
	"context"
	"net"
	"sync/atomic"
)

// CountingConn is a connection that counts the bytes read from it, so the
// proxy can tell an oversized response header section from other protocol
// errors by how much arrived, without matching error strings.
type CountingConn struct {
	net.Conn
	read atomic.Int64
}

// Read reads from the connection and counts the bytes.
func (c *CountingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// BytesRead returns the bytes read so far over the connection's life.
func (c *CountingConn) BytesRead() int64 { return c.read.Load() }

// CountingDialer wraps dial so each connection it returns is a *CountingConn.
func CountingDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &CountingConn{Conn: c}, nil
	}
}

// AsCountingConn finds the *CountingConn under c, looking through a TLS
// connection (which has NetConn). It returns nil when there is none.
func AsCountingConn(c net.Conn) *CountingConn {
	for c != nil {
		if cc, ok := c.(*CountingConn); ok {
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
