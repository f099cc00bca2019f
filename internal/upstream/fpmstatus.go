package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
	"github.com/gatewise/gatewise/internal/obs"
)

// statusPoller reads the status page (pm.status_path) of each PHP-FPM
// target of a pool every interval, exports it as metrics, logs each change
// of the pool's state (saturated, unreadable, fine) once, and, when it may
// steer, marks a target unhealthy after Fall bad reads in a row and
// healthy again after Rise good ones, as an active health check does.
type statusPoller struct {
	pool              *Pool
	path              string
	interval, timeout time.Duration
	// steer says whether the reads' verdicts are reported to the pool
	// (SetHealthy): only when the pool has no health check of its own,
	// which then decides alone, and more than one target, so there is
	// somewhere else to send requests (marking a pool's only target down
	// would only rename its fpm_pool_exhausted failures
	// no_healthy_upstream).
	steer      bool
	rise, fall int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startStatusPoller starts polling every target of p, whose config is pc
// (with fastcgi.status_path set), and returns at once.
func startStatusPoller(p *Pool, pc *config.Pool) *statusPoller {
	f := pc.FastCGI
	s := &statusPoller{
		pool: p, path: f.StatusPath,
		interval: f.StatusInterval.Duration, timeout: f.StatusTimeout.Duration,
		steer: pc.Health == nil && len(p.Targets) > 1,
		rise:  config.DefaultHealthRise, fall: config.DefaultHealthFall,
	}
	if s.interval <= 0 {
		s.interval = config.DefaultFastCGIStatusInterval
	}
	if s.timeout <= 0 || s.timeout > s.interval {
		s.timeout = min(config.DefaultFastCGIStatusTimeout, s.interval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, t := range p.Targets {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, t)
		}()
	}
	return s
}

// stop ends the polls and waits for them.
func (s *statusPoller) stop() {
	s.cancel()
	s.wg.Wait()
}

// fpmState is what one read of a status page says about a target.
type fpmState uint8

const (
	fpmFine       fpmState = iota // read, with an idle worker or nothing queued
	fpmSaturated                  // no idle worker and connections queued, or no answer in time
	fpmDown                       // not running, or failing otherwise
	fpmUnreadable                 // answered, but not with a status page: a config problem
)

// reading is the outcome of one read.
type reading struct {
	state  fpmState
	status *fastcgi.Status // nil when the read failed
	cause  cause.ID        // the failure's cause; "" when none
	detail string          // why, in the owner's words
	err    error
}

// run polls t until ctx ends: the first read after a random delay of up
// to a tenth of the interval, each next one an interval (plus up to 10%)
// after the previous one ended.
func (s *statusPoller) run(ctx context.Context, t *Target) {
	timer := time.NewTimer(rand.N(s.interval/10 + 1))
	defer timer.Stop()
	p := s.pool
	last := fpmFine
	lastCause := cause.ID("")
	passes, fails := 0, 0
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r := s.read(ctx, t)
		if ctx.Err() != nil {
			return
		}
		if p.metrics != nil {
			p.metrics.SetFPMHealth(p.Name, t.Addr, r.status != nil, r.state == fpmSaturated)
			if st := r.status; st != nil {
				p.metrics.SetFPMStatus(p.Name, t.Addr, obs.FPMStatus{
					ListenQueue: st.ListenQueue, MaxListenQueue: st.MaxListenQueue,
					IdleProcesses: st.IdleProcesses, ActiveProcesses: st.ActiveProcesses, TotalProcesses: st.TotalProcesses,
					MaxChildrenReached: st.MaxChildrenReached, SlowRequests: st.SlowRequests, AcceptedConn: st.AcceptedConn,
				})
			}
		}
		if r.state != last || (r.state == fpmDown && r.cause != lastCause) {
			s.logChange(t, last, r)
			last, lastCause = r.state, r.cause
		}
		switch r.state {
		case fpmFine:
			passes, fails = min(passes+1, s.rise), 0
			if s.steer && !healthy && passes >= s.rise {
				healthy = true
				p.SetHealthy(t, true, fmt.Sprintf("php-fpm status page %s: fine %d times in a row", s.path, passes))
			}
		case fpmSaturated, fpmDown:
			passes, fails = 0, min(fails+1, s.fall)
			if s.steer && healthy && fails >= s.fall {
				healthy = false
				p.SetHealthy(t, false, fmt.Sprintf("php-fpm status page %s: %s %d times in a row", s.path, r.detail, fails))
			}
		}
		timer.Reset(s.interval + rand.N(s.interval/10+1))
	}
}

// read reads t's status page once, within the timeout.
func (s *statusPoller) read(parent context.Context, t *Target) reading {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	st, err := t.FastCGI.Status(ctx, s.path)
	switch {
	case err == nil && st.Saturated():
		return reading{state: fpmSaturated, status: st, cause: cause.FPMPoolExhausted,
			detail: fmt.Sprintf("saturated (listen queue %d, %d idle of %d workers)", st.ListenQueue, st.IdleProcesses, st.TotalProcesses)}
	case err == nil:
		return reading{state: fpmFine, status: st}
	}
	if ce, ok := cause.Of(err); ok {
		r := reading{state: fpmDown, cause: ce.ID, detail: string(ce.ID), err: err}
		if ce.Detail != "" {
			r.detail += " (" + ce.Detail + ")"
		}
		if ce.ID == cause.FPMPoolExhausted {
			r.state = fpmSaturated
		}
		return r
	}
	if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		// PHP-FPM answers the status page from a worker: none was free
		// in time.
		return reading{state: fpmSaturated, cause: cause.FPMPoolExhausted, detail: "no answer within " + s.timeout.String(), err: err}
	}
	// Answered, but not with a status page (a 404: pm.status_path is not
	// this path), or a broken page.
	return reading{state: fpmUnreadable, detail: "not a status page", err: err}
}

// logChange logs t's new state r, once per change.
func (s *statusPoller) logChange(t *Target, from fpmState, r reading) {
	p := s.pool
	attrs := []slog.Attr{slog.String("pool", p.Name), slog.String("target", t.Addr), slog.String("status_path", s.path)}
	if st := r.status; st != nil {
		attrs = append(attrs, slog.String("fpm_pool", st.Pool), slog.Int64("listen_queue", st.ListenQueue),
			slog.Int64("idle_processes", st.IdleProcesses), slog.Int64("active_processes", st.ActiveProcesses),
			slog.Int64("total_processes", st.TotalProcesses), slog.Uint64("max_children_reached", st.MaxChildrenReached))
	}
	if r.cause != "" {
		attrs = append(attrs, slog.String("cause", string(r.cause)))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("error", r.err.Error()))
	}
	level, msg := slog.LevelWarn, ""
	switch r.state {
	case fpmSaturated:
		msg = "php-fpm pool saturated: " + r.detail
	case fpmDown:
		msg = "php-fpm status page failed: " + r.detail
	case fpmUnreadable:
		msg = "php-fpm status page unreadable (is pm.status_path set to fastcgi.status_path?)"
	case fpmFine:
		level = slog.LevelInfo
		switch from {
		case fpmSaturated:
			msg = "php-fpm pool no longer saturated"
		default:
			msg = "php-fpm status page readable again"
		}
	}
	p.log.LogAttrs(context.Background(), level, msg, attrs...)
}
