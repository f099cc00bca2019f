//go:build !unix

package upstream

import (
	"errors"
	"net"
)

// socketPeeker cannot look at a socket without reading on this system.
type socketPeeker struct{}

func newSocketPeeker(net.Conn) *socketPeeker { return nil }

func (p *socketPeeker) peek() peekResult { return peekUnknown }

func (p *socketPeeker) awaitNews() error {
	return errors.New("upstream: cannot wait on a socket on this system")
}
