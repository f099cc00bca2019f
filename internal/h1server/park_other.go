//go:build !linux

package h1server

import "errors"

// idlePoller parks idle connections on Linux only; elsewhere every
// connection keeps its goroutine.
type idlePoller struct{}

func newIdlePoller() (*idlePoller, error) {
	return nil, errors.New("h1server: parking idle connections needs Linux")
}

func (p *idlePoller) run()              {}
func (p *idlePoller) park(*conn) bool   { return false }
func (p *idlePoller) unpark(*conn) bool { return false }
func (p *idlePoller) close()            {}
