package h1server

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// idlePoller holds the parked connections: connections idle long enough
// that their goroutine ended (see Server.ParkIdleAfter). Each parked
// socket is in an epoll set of the poller's own, armed once
// (EPOLLONESHOT) for its next bytes or its close; the epoll descriptor is
// itself waited on in the runtime's poller by one goroutine, which starts
// a connection's goroutine again when its socket has something to say.
// A parked connection then costs its state on the heap and no stack.
//
// A registration lives as long as its socket: closing a socket takes it
// out of the epoll set, so a closed connection is never reported; one
// whose event was taken just before is found gone from the poller's map.
type idlePoller struct {
	epfd *os.File // the epoll set; nonblocking, so the runtime waits on it
	rc   syscall.RawConn

	mu     sync.Mutex
	parked map[uint64]*conn
	nextID uint64
}

// newIdlePoller returns a poller with its own epoll set, or an error when
// the system refuses one (the server then keeps goroutines for idle
// connections, as it would without it).
func newIdlePoller() (*idlePoller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("h1server: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("h1server: epoll set nonblocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "h1server-idle-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("h1server: epoll set: %w", err)
	}
	return &idlePoller{epfd: f, rc: rc, parked: make(map[uint64]*conn)}, nil
}

// run waits for the parked sockets' events until the poller is closed,
// and gives each connection with news a goroutine again (serve).
func (p *idlePoller) run() {
	events := make([]syscall.EpollEvent, 64)
	_ = p.rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.EpollWait(int(fd), events, 0)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || n <= 0 {
				return false // nothing ready: wait in the runtime's poller
			}
			for i := range events[:n] {
				id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
				if c := p.take(id); c != nil {
					go c.serve()
				}
			}
			if n < len(events) {
				return false
			}
		}
	})
}

// park puts c in the epoll set, armed for its next event, and in the
// map; false when the kernel refused (c then keeps its goroutine). The
// registration is made under the socket's RawConn.Control, so the
// descriptor cannot be closed (and reused by another connection) during
// it; a connection parked before is armed again with the same
// registration.
func (p *idlePoller) park(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := p.nextID
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(id)),
		Pad:    int32(uint32(id >> 32)),
	}
	op := syscall.EPOLL_CTL_ADD
	if c.inEpoll {
		op = syscall.EPOLL_CTL_MOD
	}
	ctlErr := errPollerClosed
	err := p.rc.Control(func(efd uintptr) {
		if err := c.raw.Control(func(fd uintptr) {
			ctlErr = syscall.EpollCtl(int(efd), op, int(fd), &ev)
		}); err != nil {
			ctlErr = err
		}
	})
	if err != nil || ctlErr != nil {
		return false
	}
	c.inEpoll = true
	c.parkID = id
	p.parked[id] = c
	return true
}

// take removes and returns the connection parked as id, nil when it is
// gone (taken by unpark, or by an earlier event).
func (p *idlePoller) take(id uint64) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.parked[id]
	delete(p.parked, id)
	return c
}

// unpark removes c from the poller when it is parked there and reports
// whether it was: its goroutine has ended, so the caller owns it.
func (p *idlePoller) unpark(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.parkID == 0 || p.parked[c.parkID] != c {
		return false
	}
	delete(p.parked, c.parkID)
	return true
}

// errPollerClosed is park's error when the poller's epoll set is closed.
var errPollerClosed = errors.New("h1server: idle poller closed")

// close closes the epoll set, which ends run.
func (p *idlePoller) close() {
	_ = p.epfd.Close()
}
