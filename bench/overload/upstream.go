package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatewise/gatewise/internal/faults"
	"net"
	"net/http"
	"slices"
	"time"
)

// upstream is the overloaded application: at most slots requests served
// at once, each for the service time ± 10% (uniformly), and an unbounded
// FIFO queue of the requests waiting for a slot (blocked channel senders
// are served in order), as an application server has (its listen backlog,
// its worker pool's queue). A request whose client has gone while it
// waits is dropped.
type upstream struct {
	ln  net.Listener
	srv *http.Server
	cap *faults.Capacity
}

// startUpstream listens on a free loopback port and serves.
func startUpstream(slots int, service time.Duration) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u := &upstream{ln: ln, cap: faults.NewCapacity(slots, service)}
	u.srv = &http.Server{Handler: u.cap, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("overload: upstream: %v\n", err)
		}
	}()
	return u, nil
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

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
	served, waited := u.cap.Samples()
	slices.Sort(served)
	slices.Sort(waited)
	return upstreamStats{
		Served:        len(served),
		ServiceMedian: ms(percentile(served, 50)),
		WaitP50:       ms(percentile(waited, 50)),
		WaitP99:       ms(percentile(waited, 99)),
	}
}
