package faults

import (
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Capacity is an upstream handler with a fixed capacity: it serves at most
// Slots requests at once, each for its service time ±10%, and the rest wait
// in its own queue (as a real server's worker pool does), so its latency
// explodes under overload. A request whose client has gone while it waits
// is dropped. The overload test and bench/overload use it.
type Capacity struct {
	sem     chan struct{}
	service time.Duration

	mu     sync.Mutex
	served []time.Duration // the time each served request held a slot
	waited []time.Duration // the time each served request waited for one
}

// NewCapacity returns a handler with slots slots and the given service
// time.
func NewCapacity(slots int, service time.Duration) *Capacity {
	return &Capacity{sem: make(chan struct{}, slots), service: service}
}

// ServeHTTP waits for a slot, holds it for the service time ±10%, and
// answers 200 "ok".
func (c *Capacity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	select {
	case c.sem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	time.Sleep(c.service*9/10 + rand.N(c.service/5+1))
	took := time.Since(start)
	<-c.sem
	c.mu.Lock()
	c.served = append(c.served, took)
	c.waited = append(c.waited, start.Sub(arrived))
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}

// Samples returns, for each request served so far, the time it held a slot
// and the time it waited for one.
func (c *Capacity) Samples() (served, waited []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.served), slices.Clone(c.waited)
}
