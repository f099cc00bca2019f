// Package health runs active health checks of a pool's targets: an HTTP GET
// of a path, or a TCP connect, to every target on an interval. A target that
// fails Fall checks in a row is reported unhealthy to its pool, and one that
// then passes Rise checks in a row is reported healthy again; the pool stops
// and resumes sending it requests.
//
// A check's failure is classified into a cause from package cause (from the
// error's type, never its text), so the reason the owner reads names the same
// cause as a failed request would.
package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
)

// UserAgent is the User-Agent header of HTTP checks, so an upstream's
// access log can tell them from visitors' requests.
const UserAgent = "gatewise-health-check"

// MaxBodyBytes is how much of a check's response body is read (and matched
// against HealthCheck.ExpectBody); the rest is never read.
const MaxBodyBytes = 64 << 10

// Options are what a Checker needs besides the pool and its check config.
type Options struct {
	// Metrics counts every check by pool, target and result. If nil, no
	// metrics.
	Metrics *obs.Metrics
	// Logger receives each failing or inconclusive check at DEBUG, with
	// its reason, cause and error. The changes of a target's state that
	// the checks cause (WARN "target unhealthy", INFO "target healthy",
	// with the reason) are logged by the pool, to its own
	// PoolOptions.Logger, so that they are not logged twice. If nil, logs
	// are discarded.
	Logger *slog.Logger
	// Now returns the current time, used to measure how long a check
	// took. If nil, time.Now.
	Now func() time.Time
}

// Checker checks every target of one pool until stopped. Build one with
// Start.
type Checker struct {
	pool      *upstream.Pool
	hc        config.HealthCheck
	opts      Options
	transport *http.Transport
	// expectBody is hc.ExpectBody compiled; nil when none is set.
	expectBody *regexp.Regexp
	// expectBodyErr is why hc.ExpectBody did not compile (Validate
	// refuses such a config, so only a config that skipped it sees this):
	// every HTTP check then fails with it.
	expectBodyErr error
	// what names the check in reasons: "GET /healthz" or "TCP connect".
	what string

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start starts checking every target of pool per hc (already defaulted and
// validated, see config.ApplyDefaults and Validate) and returns at once.
// Each target has its own goroutine: its first check runs after a random
// delay of up to 10% of hc.Interval (so that many targets do not fire
// together), and each next one hc.Interval plus up to 10% random jitter
// after the previous one ended.
//
// A target starts as the pool sees it (healthy, for a new pool). A healthy
// target that fails hc.Fall checks in a row is reported unhealthy with
// pool.SetHealthy, and an unhealthy one that passes hc.Rise checks in a
// row is reported healthy; the pool hears of transitions only. A check
// that fails for want of the gateway's own resources (cause
// local_ports_exhausted or file_descriptors_exhausted) is inconclusive:
// it counts as neither. hc is copied; later changes to it have no effect.
// Call Stop to end the checks.
func Start(pool *upstream.Pool, hc *config.HealthCheck, opts Options) *Checker {
	c := newChecker(pool, hc, opts)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Start from the pool's view (healthy for a new pool; maybe not for a
	// pool whose previous Checker was stopped on a reload), so that
	// verdicts are reported on its transitions. Status is in config order.
	status := pool.Status()
	for i, t := range pool.Targets {
		healthy := i >= len(status) || status[i].Healthy
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.run(ctx, t, healthy)
		}()
	}
	return c
}

// newChecker returns a Checker with no goroutine started: Start's set-up.
func newChecker(pool *upstream.Pool, hc *config.HealthCheck, opts Options) *Checker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Checker{pool: pool, hc: *hc, opts: opts}
	c.hc.ExpectStatus = append([]string(nil), hc.ExpectStatus...)
	if len(c.hc.ExpectStatus) == 0 {
		c.hc.ExpectStatus = config.DefaultExpectStatus()
	}
	if c.hc.Interval.Duration <= 0 {
		c.hc.Interval.Duration = config.DefaultHealthInterval
	}
	if c.hc.Timeout.Duration <= 0 {
		c.hc.Timeout.Duration = config.DefaultHealthTimeout
	}
	c.hc.Rise = max(c.hc.Rise, 1)
	c.hc.Fall = max(c.hc.Fall, 1)
	if c.hc.TCP {
		c.what = "TCP connect"
	} else {
		c.what = "GET " + c.hc.Path
		c.transport = newTransport(pool)
		if c.hc.ExpectBody != "" {
			re, err := regexp.Compile(c.hc.ExpectBody)
			if err != nil {
				c.expectBodyErr = fmt.Errorf("expect_body is not a regular expression: %w", err)
			}
			c.expectBody = re
		}
	}
	return c
}

// Stop stops the checks, cancelling any in flight, waits for every
// goroutine to end and closes the checks' idle connections. The pool's
// view of its targets stays as the last transitions left it. Stop is safe
// to call more than once and from several goroutines.
func (c *Checker) Stop() {
	c.stopOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
		if c.transport != nil {
			c.transport.CloseIdleConnections()
		}
	})
}

// newTransport returns the checks' own transport: separate from the pool's
// so that checks never take (or are queued behind) connections meant for
// requests, with at most one idle keep-alive connection per target, and the
// pool's TLS settings.
func newTransport(pool *upstream.Pool) *http.Transport {
	tr := &http.Transport{
		Proxy:               nil, // never an environment proxy between gateway and upstream
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     config.DefaultIdleTimeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false, // HTTP/1.1, as the pool's requests
	}
	if pool.Timeouts.Idle.Duration > 0 {
		// The owner keeps it below the upstreams' own keep-alive timeout.
		tr.IdleConnTimeout = pool.Timeouts.Idle.Duration
	}
	if pool.MaxResponseHeaderBytes > 0 {
		tr.MaxResponseHeaderBytes = pool.MaxResponseHeaderBytes
	}
	if ht, ok := pool.Transport.(*upstream.Transport); ok && ht != nil && ht.TLSClientConfig() != nil {
		tr.TLSClientConfig = ht.TLSClientConfig().Clone()
	}
	return tr
}

// run checks t until ctx is cancelled, and tells the pool when t's state
// changes; healthy is the pool's view of t at the start.
func (c *Checker) run(ctx context.Context, t *upstream.Target, healthy bool) {
	interval := c.hc.Interval.Duration
	timer := time.NewTimer(jitter(interval))
	defer timer.Stop()
	log := c.opts.Logger.With("pool", c.pool.Name, "target", t.Addr)
	passes, fails := 0, 0 // checks in a row, capped at Rise and Fall
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := c.opts.Now()
		res := c.check(ctx, t)
		if ctx.Err() != nil {
			return // stopped during the check: its result means nothing
		}
		took := c.opts.Now().Sub(start)
		if !res.pass && res.cause.OwnResource() {
			// The gateway's own want (no local port or file left):
			// every target's checks fail alike, and the check says
			// nothing of t. Neither a pass nor a fail.
			if c.opts.Metrics != nil {
				c.opts.Metrics.ObserveInconclusiveHealthCheck(c.pool.Name, t.Addr)
			}
			log.Debug("health check inconclusive: the gateway's own failure", "check", c.what, "reason", res.reason, "took", took)
			timer.Reset(interval + jitter(interval))
			continue
		}
		if c.opts.Metrics != nil {
			c.opts.Metrics.ObserveHealthCheck(c.pool.Name, t.Addr, res.pass)
		}
		if res.pass {
			passes, fails = min(passes+1, c.hc.Rise), 0
			if !healthy && passes >= c.hc.Rise {
				healthy = true
				reason := fmt.Sprintf("health check %s %s", c.what, inARow("passed", passes))
				c.pool.SetHealthy(t, true, reason) // logs and counts the change
			}
		} else {
			passes, fails = 0, min(fails+1, c.hc.Fall)
			attrs := []any{"check", c.what, "reason", res.reason, "took", took}
			if res.cause != "" {
				attrs = append(attrs, "cause", string(res.cause))
			}
			if res.err != nil {
				attrs = append(attrs, "error", res.err.Error())
			}
			log.Debug("health check failed", attrs...)
			if healthy && fails >= c.hc.Fall {
				healthy = false
				reason := fmt.Sprintf("health check %s %s: %s", c.what, inARow("failed", fails), res.reason)
				c.pool.SetHealthy(t, false, reason) // logs and counts the change
			}
		}
		timer.Reset(interval + jitter(interval))
	}
}

// jitter returns a random duration from 0 up to 10% of interval.
func jitter(interval time.Duration) time.Duration {
	if j := interval / 10; j > 0 {
		return rand.N(j + 1)
	}
	return 0
}

// inARow says "passed 2 times in a row", or "passed" for once.
func inARow(verb string, n int) string {
	if n == 1 {
		return verb
	}
	return fmt.Sprintf("%s %d times in a row", verb, n)
}

// statusMatches reports whether code matches one of patterns, each a code
// ("200") or a class ("2xx").
func statusMatches(code int, patterns []string) bool {
	s := fmt.Sprintf("%03d", code)
	for _, p := range patterns {
		if len(p) != 3 {
			continue
		}
		if strings.EqualFold(p[1:], "xx") && p[0] == s[0] {
			return true
		}
		if p == s {
			return true
		}
	}
	return false
}

// drain reads at most MaxBodyBytes of body and closes it.
func drain(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes))
	if err != nil {
		return b, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}
