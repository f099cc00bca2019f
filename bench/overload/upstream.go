package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// upstream is the overloaded application: at most slots requests served
// at once, each for the service time ± 10% (uniformly), and an unbounded
// FIFO queue of the requests waiting for a slot (blocked channel senders
// are served in order), as an application server has (its listen backlog,
// its worker pool's queue). A request whose client has gone while it
// waits is dropped.
type upstream struct {
	ln      net.Listener
	srv     *http.Server
	sem     chan struct{}
	service time.Duration

	mu     sync.Mutex
	served []time.Duration // the time each served request held a slot
	waited []time.Duration // the time each served request waited for one
}

// startUpstream listens on a free loopback port and serves.
func startUpstream(slots int, service time.Duration) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u := &upstream{ln: ln, sem: make(chan struct{}, slots), service: service}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("overload: upstream: %v\n", err)
		}
	}()
	return u, nil
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	select {
	case u.sem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	time.Sleep(u.service*9/10 + rand.N(u.service/5))
	took := time.Since(start)
	<-u.sem
	u.mu.Lock()
	u.served = append(u.served, took)
	u.waited = append(u.waited, start.Sub(arrived))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok\n")
}

// stop closes the listener and every connection.
func (u *upstream) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
	_ = u.srv.Close()
}

// upstreamStats is what the upstream measured.
type upstreamStats struct {
	Served        int     `json:"served"`
	ServiceMedian float64 `json:"service_median_ms"`
	WaitP50       float64 `json:"queue_wait_p50_ms"`
	WaitP99       float64 `json:"queue_wait_p99_ms"`
}

func (u *upstream) stats() upstreamStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	served := slices.Clone(u.served)
	waited := slices.Clone(u.waited)
	slices.Sort(served)
	slices.Sort(waited)
	return upstreamStats{
		Served:        len(served),
		ServiceMedian: ms(percentile(served, 50)),
		WaitP50:       ms(percentile(waited, 50)),
		WaitP99:       ms(percentile(waited, 99)),
	}
}
