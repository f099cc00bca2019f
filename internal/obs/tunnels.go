package obs

import (
	"context"
	"net"
	"sync"
	"time"
)

// Tunnels tracks the connections taken over by protocol upgrades
// (WebSocket). http.Server.Shutdown neither waits for nor closes them, so
// the server asks Tunnels to wait for them up to its deadline and then
// close what is left. The zero value is ready to use.
type Tunnels struct {
	mu    sync.Mutex
	conns map[*tunnelConn]struct{}
}

// track registers c and returns a connection that unregisters itself when
// closed.
func (t *Tunnels) track(c net.Conn) net.Conn {
	tc := &tunnelConn{Conn: c, t: t}
	t.mu.Lock()
	if t.conns == nil {
		t.conns = make(map[*tunnelConn]struct{})
	}
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc
}

// Len returns how many tunnels are open.
func (t *Tunnels) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Drain waits until every tunnel has closed or ctx is done, then closes the
// tunnels still open and returns how many it closed.
func (t *Tunnels) Drain(ctx context.Context) int {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for t.Len() > 0 {
		select {
		case <-ctx.Done():
			t.mu.Lock()
			open := make([]*tunnelConn, 0, len(t.conns))
			for c := range t.conns {
				open = append(open, c)
			}
			t.mu.Unlock()
			for _, c := range open {
				_ = c.Close()
			}
			return len(open)
		case <-tick.C:
		}
	}
	return 0
}

type tunnelConn struct {
	net.Conn
	t    *Tunnels
	once sync.Once
}

func (c *tunnelConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}
