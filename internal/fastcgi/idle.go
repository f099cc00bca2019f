package fastcgi

import (
	"net"
	"sync"
	"time"
)

// idlePool keeps connections whose last request ended with a complete
// FCGI_END_REQUEST, for reuse. The most recently used is handed out first.
type idlePool struct {
	max     int
	timeout time.Duration

	mu     sync.Mutex
	conns  []*idleConn
	closed bool
}

type idleConn struct {
	c     net.Conn
	timer *time.Timer
}

// put keeps c for reuse, or closes it when the pool is full or closed.
func (p *idlePool) put(c net.Conn) {
	if p.max <= 0 {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.closed || len(p.conns) >= p.max {
		p.mu.Unlock()
		c.Close()
		return
	}
	ic := &idleConn{c: c}
	ic.timer = time.AfterFunc(p.timeout, func() { p.expire(ic) })
	p.conns = append(p.conns, ic)
	p.mu.Unlock()
}

// expire closes ic if it is still idle.
func (p *idlePool) expire(ic *idleConn) {
	p.mu.Lock()
	for i, x := range p.conns {
		if x == ic {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			p.mu.Unlock()
			ic.c.Close()
			return
		}
	}
	p.mu.Unlock()
}

// get returns an idle connection that is still open, or nil.
func (p *idlePool) get() net.Conn {
	for {
		p.mu.Lock()
		n := len(p.conns)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		ic := p.conns[n-1]
		p.conns = p.conns[:n-1]
		p.mu.Unlock()
		ic.timer.Stop()
		if alive(ic.c) {
			return ic.c
		}
		ic.c.Close()
	}
}

// closeAll closes every idle connection; when final, the pool keeps none
// from then on.
func (p *idlePool) closeAll(final bool) {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	if final {
		p.closed = true
	}
	p.mu.Unlock()
	for _, ic := range conns {
		ic.timer.Stop()
		ic.c.Close()
	}
}

// len returns the number of idle connections.
func (p *idlePool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
