package server_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatewise/gatewise/internal/faults"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// The overload scenario. An upstream serves at most overloadSlots requests
// at once, each in about overloadLatency, and queues the rest in its own
// unbounded queue, as a real application server does (its listen backlog,
// its worker pool's queue): its capacity is overloadSlots/overloadLatency,
// 80 requests per second. It gets overloadFactor times that, open loop.
//
// The parameters are chosen to be robust on a loaded 2-core machine with
// -race: at 100ms (not 50ms) the load is 400 requests per second, which
// such a machine serves without running out of CPU (at 800 requests per
// second under -race, the client, the gateway and the upstream of this one
// process starve each other, and the latencies measured are the
// scheduler's). The ratios compared do not depend on the scale.
const (
	overloadSlots    = 8
	overloadLatency  = 100 * time.Millisecond
	overloadFactor   = 5
	overloadDuration = 5 * time.Second
	// overloadWarmup is the start of the run left out of the p99: the
	// overload's onset is a burst, served oldest first (as a burst should
	// be) until the queue stands, which behind an adaptive limit is when
	// the limit has grown to where the upstream shows queueing.
	overloadWarmup = time.Second
	// overloadClientTimeout bounds one request; the gateway's queue
	// timeout (1s by default) is well within it.
	overloadClientTimeout = 3 * time.Second
	// overloadStarved is how much longer than overloadLatency the
	// upstream's own p99 may be before a run is taken to have been starved
	// of CPU, and is run again, up to overloadAttempts times.
	overloadStarved  = 1.5
	overloadAttempts = 3
)

// slotUpstream is the overloaded application: a semaphore of slots, a
// service time, and a FIFO queue of the requests waiting for a slot
// (blocked channel senders are served in order). A request whose client
// has gone while it waits is dropped.
//
// The service time is latency ± 10%, uniformly: real service times vary.
// With an exactly constant one, the requests that an adaptive limit lets
// queue at the upstream (it must go a little past the capacity to find
// it: about 20% by default) keep their place in lockstep cycles of
// completions and wait a whole service time each, which no real server
// does.
type slotUpstream struct {
	srv     *httptest.Server
	cap     *faults.Capacity
	latency time.Duration
}

func startSlotUpstream(t *testing.T, slots int, latency time.Duration) *slotUpstream {
	t.Helper()
	u := &slotUpstream{cap: faults.NewCapacity(slots, latency), latency: latency}
	u.srv = httptest.NewServer(u.cap)
	t.Cleanup(u.srv.Close)
	return u
}

// ownLatency returns the upstream's own latency as it measured it (the
// time a request held a slot: the service time and the scheduler's
// delays), its median and p99.
func (u *slotUpstream) ownLatency() (p50, p99 time.Duration) {
	s, _ := u.cap.Samples()
	if len(s) == 0 {
		return u.latency, u.latency
	}
	slices.Sort(s)
	return nearestRank(s, 50), nearestRank(s, 99)
}

// queueWait returns the median and p99 of the time the served requests
// waited in the upstream's own queue.
func (u *slotUpstream) queueWait() (p50, p99 time.Duration) {
	_, s := u.cap.Samples()
	slices.Sort(s)
	return nearestRank(s, 50), nearestRank(s, 99)
}

// overloadOutcome is what the clients of one open-loop run saw.
type overloadOutcome struct {
	sent     int
	duration time.Duration
	elapsed  time.Duration
	admitted int
	// steady are the latencies of the 2xx answers to the requests sent
	// after the warm-up; all, of every 2xx answer.
	steady, all []time.Duration
	// refused counts the 429 and 503 answers with a Retry-After of 1s or
	// more, whose range is retryMin to retryMax.
	refused            int
	retryMin, retryMax int
	statuses           map[string]int
	// bad counts every other outcome: other statuses, a 503 without
	// Retry-After, transport errors, client timeouts.
	bad    map[string]int
	limits []int // the pool's concurrency limit, sampled every 250ms
}

// goodput is the admitted requests per second of the load's duration.
func (o *overloadOutcome) goodput() float64   { return float64(o.admitted) / o.duration.Seconds() }
func (o *overloadOutcome) p50() time.Duration { return nearestRank(o.steady, 50) }
func (o *overloadOutcome) p99() time.Duration { return nearestRank(o.steady, 99) }

// offerOpenLoop sends rate requests per second to url for d, each started
// on schedule whatever the answers before it (an open loop, as visitors
// arrive), and waits for them all. When admin is set, the pool's limit is
// sampled from the gateway's metrics.
func offerOpenLoop(url, admin string, rate float64, d, warmup time.Duration) *overloadOutcome {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: overloadClientTimeout}
	out := &overloadOutcome{statuses: map[string]int{}, bad: map[string]int{}, duration: d, retryMin: 1 << 30}
	var mu sync.Mutex
	n := int(rate * d.Seconds())
	every := time.Duration(float64(time.Second) / rate)
	start := time.Now()

	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	if admin != "" {
		sampler.Go(func() {
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tick.C:
					if l, ok := scrapeLimit(admin); ok {
						mu.Lock()
						out.limits = append(out.limits, l)
						mu.Unlock()
					}
				}
			}
		})
	}

	var wg sync.WaitGroup
	for i := range n {
		at := start.Add(time.Duration(i) * every)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			began := time.Now()
			status, retryAfter, err := overloadGet(client, url)
			took := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				out.bad[err.Error()]++
				return
			case status >= 200 && status < 300:
				out.admitted++
				out.all = append(out.all, took)
				if at.Sub(start) >= warmup {
					out.steady = append(out.steady, took)
				}
			case (status == 503 || status == 429) && retryAfter >= 1:
				out.refused++
				out.retryMin = min(out.retryMin, retryAfter)
				out.retryMax = max(out.retryMax, retryAfter)
			default:
				out.bad[fmt.Sprintf("status %d with Retry-After %q", status, strconv.Itoa(retryAfter))]++
			}
			out.statuses[strconv.Itoa(status)]++
		})
	}
	out.sent = n
	wg.Wait()
	close(stopSampling)
	sampler.Wait()
	out.elapsed = time.Since(start)
	slices.Sort(out.steady)
	slices.Sort(out.all)
	return out
}

// overloadGet sends one GET and returns its status and Retry-After in
// seconds (0 when absent or not a number).
func overloadGet(client *http.Client, url string) (status, retryAfter int, err error) {
	resp, err := client.Get(url + "/work")
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, 0, fmt.Errorf("client timeout (%v)", overloadClientTimeout)
		}
		return 0, 0, fmt.Errorf("transport error: %v", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("body: %v", err)
	}
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, ra, nil
}

var limitMetric = regexp.MustCompile(`(?m)^gatewise_pool_concurrency_limit\{pool="app"\} (\d+)`)

// scrapeLimit reads the pool's concurrency limit from the admin metrics.
func scrapeLimit(admin string) (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	m := limitMetric.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(m[1]))
	return n, err == nil
}

// nearestRank returns the pth percentile of sorted (nearest rank).
func nearestRank(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max((len(sorted)*p+99)/100-1, 0)]
}

func (o *overloadOutcome) String() string {
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	s := fmt.Sprintf("sent %d in %v (all answered in %v): %d admitted, goodput %.0f/s; after the %v warm-up p50 %s, p99 %s; whole run p99 %s, max %s",
		o.sent, o.duration, o.elapsed.Round(time.Millisecond), o.admitted, o.goodput(), overloadWarmup,
		ms(o.p50()), ms(o.p99()), ms(nearestRank(o.all, 99)), ms(nearestRank(o.all, 100)))
	if o.refused > 0 {
		s += fmt.Sprintf("; %d refused with Retry-After %d to %ds", o.refused, o.retryMin, o.retryMax)
	}
	s += fmt.Sprintf("; statuses %v", o.statuses)
	if len(o.bad) > 0 {
		var bad []string
		for k, v := range o.bad {
			bad = append(bad, fmt.Sprintf("%d× %s", v, k))
		}
		slices.Sort(bad)
		s += "; other outcomes: " + strings.Join(bad, ", ")
	}
	if len(o.limits) > 0 {
		s += fmt.Sprintf("; the pool's limit every 250ms: %v", o.limits)
	}
	return s
}

// TestOverload is the acceptance test of admission control: an upstream
// that serves at most 8 requests at once in 100ms each (80/s) gets 5× its
// capacity, open loop, for 5s. Through gatewise, with the default adaptive
// concurrency limit and with max_in_flight: 8, the p99 latency of the
// admitted requests stays within 2× the upstream's own latency, the
// goodput is at least 90% of its capacity, and every refused request gets
// 503 (or 429) with a Retry-After. Straight to the upstream (no gateway),
// the latency explodes and most requests time out; that run is logged, for
// contrast.
//
// The upstream's own latency is measured (the time a request held a
// slot), so that a slow machine moves both sides of the comparison, and
// the p99 through gatewise is compared with its p99 (the same percentile
// of a service time that varies). The capacity is the slots over the
// median. The test does not call t.Parallel, so that the package's
// parallel tests wait until it is done; a run starved of CPU all the same
// (by other packages' tests: go test ./...) is run again (overloadRun).
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test of 20s or more; skipped with -short")
	}
	rate := float64(overloadFactor*overloadSlots) / overloadLatency.Seconds()
	for _, tc := range []struct {
		desc string
		set  func(cc *config.Concurrency)
	}{
		{"adaptive limit (the default)", func(*config.Concurrency) {}},
		{"max_in_flight 8", func(cc *config.Concurrency) {
			cc.MaxInFlight = overloadSlots
			cc.Adaptive = new(false)
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			for attempt := 1; attempt <= overloadAttempts; attempt++ {
				if overloadRun(t, tc.set, rate, attempt) {
					return
				}
			}
			t.Skipf("the machine stayed too busy to measure latencies in %d attempts", overloadAttempts)
		})
	}
	t.Run("no gateway, for contrast", func(t *testing.T) {
		up := startSlotUpstream(t, overloadSlots, overloadLatency)
		out := offerOpenLoop(up.srv.URL, "", rate, overloadDuration, overloadWarmup)
		own, _ := up.ownLatency()
		t.Logf("straight to the upstream (own latency %s): %v", own.Round(100*time.Microsecond), out)
	})
}

// overloadRun runs the scenario once through a new gateway and checks the
// outcome. It reports false, without checking, when the machine was too
// busy for the latencies to mean anything: when even the upstream's own
// p99 (a sleep of overloadLatency ± 10%) came out more than
// overloadStarved above overloadLatency, the process was starved of CPU
// (other tests, -race), not admitting too much.
func overloadRun(t *testing.T, set func(*config.Concurrency), rate float64, attempt int) bool {
	t.Helper()
	up := startSlotUpstream(t, overloadSlots, overloadLatency)
	cfg := oneTargetConfig(up.srv.URL)
	cfg.AccessLog = "off"
	// Every visitor of this test comes from 127.0.0.1: lift the
	// per-address connection limit (256), which would otherwise reset the
	// connections of the requests waiting in the queue.
	cfg.Limits.MaxConnsPerIP = new(0)
	set(&cfg.Pools["app"].Concurrency)
	g := startGateway(t, cfg)
	out := offerOpenLoop(g.url, g.admin, rate, overloadDuration, overloadWarmup)
	own, ownP99 := up.ownLatency()
	capacity := float64(overloadSlots) / own.Seconds()
	qp50, qp99 := up.queueWait()
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	t.Logf("attempt %d: upstream: %d slots, own latency p50 %s, p99 %s, capacity %.0f/s, waits in its own queue p50 %s, p99 %s; offered %.0f/s",
		attempt, overloadSlots, r(own), r(ownP99), capacity, r(qp50), r(qp99), rate)
	t.Logf("attempt %d: through gatewise: %v", attempt, out)
	if float64(ownP99) > float64(overloadLatency)*overloadStarved {
		t.Logf("attempt %d: the machine was too busy to measure (load average %s): the upstream's own p99 is %s for a sleep of %s ± 10%%",
			attempt, loadAverage(), r(ownP99), overloadLatency)
		return false
	}
	if len(out.bad) > 0 {
		t.Errorf("answers other than 2xx, or 429/503 with Retry-After: %v", out.bad)
	}
	if out.refused == 0 {
		t.Errorf("no request refused at %d× the upstream's capacity", overloadFactor)
	} else if out.retryMin < 1 || out.retryMax > 5 {
		t.Errorf("Retry-After from %ds to %ds, want 1 to 5", out.retryMin, out.retryMax)
	}
	if max := 2 * ownP99; out.p99() > max {
		t.Errorf("p99 latency of the admitted requests %v, want at most %v (2× the upstream's own p99)", out.p99(), max)
	}
	if min := 0.9 * capacity; out.goodput() < min {
		t.Errorf("goodput %.0f/s, want at least %.0f/s (90%% of the upstream's capacity)", out.goodput(), min)
	}
	return true
}

// loadAverage returns the 1, 5 and 15 minute load averages, for the log.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
