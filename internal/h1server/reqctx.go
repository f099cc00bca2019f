package h1server

import (
	"context"
	"net/url"
	"sync"
	"time"
)

// inlineValues is how many header values a request holds without a
// second allocation.
const inlineValues = 16

// requestContext is a request's context, and the memory the request
// needs besides the http.Request itself, in one allocation: its URL and
// the backing array of its header values.
//
// It is cancelled when the visitor leaves (the watcher, a failed read or
// write on the connection) and when the request ends, as net/http's
// request contexts are. It costs less than context.WithCancel's: the Done
// channel is made only when someone asks for it, and a blocked exchange
// with an upstream registers its wake function in a slot (RegisterWake)
// rather than through context.AfterFunc, which allocates twice and takes
// the parent's lock. Contexts derived from it register through AfterFunc,
// so that the context package needs no goroutine per derived context.
type requestContext struct {
	parent context.Context // the connection's: http.LocalAddrContextKey

	mu    sync.Mutex
	done  chan struct{} // made by Done only: most requests never ask
	err   error
	wakes [2]func()
	after []*afterFunc

	url  url.URL
	vals [inlineValues]string

	// key and val: the one value SetValue put on the context.
	key, val any
}

type afterFunc struct {
	f       func()
	stopped bool
	ran     bool
}

func newRequestContext(parent context.Context) *requestContext {
	return &requestContext{parent: parent}
}

// Deadline reports no deadline: a request has none of its own.
func (c *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the request is cancelled.
func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

// Err returns context.Canceled once the request is cancelled, else nil.
func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value returns the value SetValue set for key, else the connection
// context's value for key.
func (c *requestContext) Value(key any) any {
	if c.key != nil && key == c.key {
		return c.val
	}
	return c.parent.Value(key)
}

// SetValue makes Value return val for key (comparable, not nil), so that
// a middleware with one value to add (the access log's record) needs
// neither a context of its own nor a copy of the request to carry it. It
// reports false when a value is set already, and must be called before
// the context is shared with another goroutine (the handler's first
// middleware does).
func (c *requestContext) SetValue(key, val any) bool {
	if c.key != nil || key == nil {
		return false
	}
	c.key, c.val = key, val
	return true
}

// String names the context, as the context package's own do.
func (c *requestContext) String() string { return "h1server.requestContext" }

// RegisterWake arranges for wake to run on its own goroutine when the
// request is cancelled. It returns the slot for UnregisterWake, or -1
// when the context takes no more (or is cancelled already): the caller
// then uses context.AfterFunc.
func (c *requestContext) RegisterWake(wake func()) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return -1
	}
	for i, w := range c.wakes {
		if w == nil {
			c.wakes[i] = wake
			return i
		}
	}
	return -1
}

// UnregisterWake undoes RegisterWake; false when the wake function has
// been started (the request was cancelled) or slot is not registered.
func (c *requestContext) UnregisterWake(slot int) bool {
	if slot < 0 || slot >= len(c.wakes) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wakes[slot] == nil {
		return false
	}
	c.wakes[slot] = nil
	return true
}

// AfterFunc arranges for f to run on its own goroutine when the request
// is cancelled (at once if it is), as context.AfterFunc does; stop
// prevents that and reports whether it did. The context package calls it
// for contexts derived from this one.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		a.ran = true
		c.mu.Unlock()
		go f()
	} else {
		c.after = append(c.after, a)
		c.mu.Unlock()
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.ran || a.stopped {
			return false
		}
		a.stopped = true
		return true
	}
}

// cancel cancels the request: Done closes, Err turns context.Canceled,
// and the registered functions start. Later calls do nothing.
func (c *requestContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	} // else Done makes it closed if anyone asks
	wakes := c.wakes
	c.wakes = [2]func(){}
	var run []func()
	for _, a := range c.after {
		if !a.stopped {
			a.ran = true
			run = append(run, a.f)
		}
	}
	c.after = nil
	c.mu.Unlock()
	for _, w := range wakes {
		if w != nil {
			go w()
		}
	}
	for _, f := range run {
		go f()
	}
}

// parseOriginForm parses an origin-form request target ("/path?query")
// into u as url.ParseRequestURI would, without allocating, when every
// byte of the path is one ParseRequestURI keeps as it is (no escapes, no
// byte it would escape); false sends the caller to ParseRequestURI.
func parseOriginForm(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := target, "", false
	for i := 0; i < len(target); i++ {
		ch := target[i]
		if ch == '?' {
			path, query, hasQuery = target[:i], target[i+1:], true
			break
		}
		if !plainPathByte(ch) {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if ch := query[i]; ch < ' ' || ch == 0x7f {
			return false // ParseRequestURI refuses control bytes
		}
	}
	*u = url.URL{Path: path}
	if hasQuery {
		if query == "" {
			u.ForceQuery = true
		} else {
			u.RawQuery = query
		}
	}
	return true
}

// plainPathByte reports bytes url.URL keeps unescaped in a path.
func plainPathByte(ch byte) bool {
	switch {
	case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		return true
	}
	switch ch {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}
