package limit

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
)

// Priority is how a route's requests fare when a pool sheds load: higher
// priorities are admitted from the queue first, and may take the place of
// a lower-priority waiter when the queue is full.
type Priority int

// The priorities, from the first shed to the last.
const (
	// PriorityLow is for requests that may be shed first (crawlers,
	// prefetches, reports).
	PriorityLow Priority = iota
	// PriorityNormal is the default.
	PriorityNormal
	// PriorityHigh is for requests admitted before the rest (checkout,
	// login).
	PriorityHigh

	numPriorities = 3
)

// ParsePriority maps a route's priority setting to a Priority: "low",
// "normal" (or ""), "high", in any case. Anything else is PriorityNormal
// (the config's validation refuses it before).
func ParsePriority(s string) Priority {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return PriorityLow
	case "high":
		return PriorityHigh
	}
	return PriorityNormal
}

// String returns "low", "normal" or "high".
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityHigh:
		return "high"
	}
	return "normal"
}

func (p Priority) valid() Priority {
	if p < PriorityLow || p > PriorityHigh {
		return PriorityNormal
	}
	return p
}

// The details of a connection_limit_reached refusal.
const (
	// DetailQueueFull: no slot was free and the queue was full of
	// requests of the same or a higher priority.
	DetailQueueFull = "queue full"
	// DetailQueueTimeout: the request waited its whole queue_timeout
	// without getting a slot.
	DetailQueueTimeout = "queue timeout"
	// DetailShed: the request was waiting and was turned away before its
	// queue timeout: for a newer request of a higher priority when the
	// queue was full, or because the queue was standing (sustained
	// overload, see codelTarget).
	DetailShed = "shed"
)

// The bounds of the Retry-After sent with a refusal. The value is random
// between them, so that refused clients do not all come back at once.
const (
	minRetryAfter = time.Second
	maxRetryAfter = 5 * time.Second
)

// The queue discipline under sustained overload, after CoDel (Nichols and
// Jacobson, "Controlling Queue Delay", 2012) and Facebook's adaptive LIFO
// with CoDel ("Fail at Scale", 2015). When the oldest waiter has waited
// longer than the interval, the queue has not drained within about one
// round trip of the upstream: it is a standing queue, not a burst. Until
// the overload ends, it is served newest first (those clients are surely
// still there, and their wait is short), and the waiters that have waited
// longer than codelTarget are shed at once: under LIFO they would be served
// only after every newer request, that is when the overload ends and with
// a long wait, and their clients are better told now. The overload ends
// when the queue has stayed empty, with a slot free, for an interval. A
// burst is served oldest first and may wait up to the queue timeout.
// Behind an adaptive limit, the queue stands only while the upstream is
// seen to queue (the last window found it congested): until then a queue
// is taken for a burst, or for a limit still growing to the upstream's
// capacity.
//
// The interval is min(standingInterval, queue_timeout/2), as CoDel's and
// Facebook's 100ms: bursts of up to that long are served in order even in
// front of a fast upstream.
const (
	standingInterval = 100 * time.Millisecond
	codelTarget      = 5 * time.Millisecond
)

// Result is the outcome of a request that held a slot, given to the release
// func that Acquire returned.
type Result struct {
	// Latency is the upstream's latency for the request, such as the time
	// from the request written to the first byte of the response. It feeds
	// an adaptive limit; zero or negative is ignored.
	Latency time.Duration
	// Failed means the attempt errored or timed out in a way that signals
	// overload (a timeout): the adaptive limit backs off multiplicatively.
	Failed bool
	// At is when the latency ended, read from the limiter's clock (the
	// one given to NewConcurrency). Zero: the limiter reads its clock.
	At time.Time
}

// Concurrency limits the requests in flight to one pool. A request gets a
// slot at once when one is free; else it waits in a bounded queue, ordered
// by priority, for at most the queue timeout. The limit is fixed
// (max_in_flight) or learned from the pool's latency (adaptive, see
// gradientLimit). Health checks do not go through it.
//
// A Concurrency is safe for use by many goroutines.
type Concurrency struct {
	mu sync.Mutex
	// limit is the admission limit now: the fixed limit, or the learned
	// one (halved during a probe); math.MaxInt when there is none.
	limit    int
	inFlight int
	queued   int
	queues   [numPriorities]waitList
	maxQueue int
	timeout  time.Duration
	// interval is how long the oldest waiter may wait before the queue
	// counts as standing.
	interval time.Duration
	// standing is set when the queue becomes a standing one; drainedAt is
	// when the queue was left empty with a slot free while standing (zero
	// when it has not been, or has filled again since).
	standing  bool
	drainedAt time.Time
	now       func() time.Time
	grad      *gradientLimit // nil: a fixed limit (or none)
	// releaseFn is c.done, bound once so that the fast path of Acquire
	// does not allocate a closure.
	releaseFn func(Result)
}

// NewConcurrency returns the limit of a pool configured with cc, which has
// been validated and given its defaults (zero values get the defaults
// anyway). The limit is fixed when cc.MaxInFlight > 0; otherwise it is
// learned when cc.Adaptive is true, and there is none when it is false.
// now returns the time (nil: time.Now); the queue timeout runs on real
// timers whatever now is.
func NewConcurrency(cc config.Concurrency, now func() time.Time) *Concurrency {
	if now == nil {
		now = time.Now
	}
	c := &Concurrency{now: now, limit: math.MaxInt}
	c.maxQueue = config.DefaultConcurrencyQueue
	if cc.Queue != nil {
		c.maxQueue = max(*cc.Queue, 0)
	}
	c.timeout = cc.QueueTimeout.Duration
	if c.timeout <= 0 {
		c.timeout = config.DefaultQueueTimeout
	}
	c.interval = min(standingInterval, c.timeout/2)
	switch {
	case cc.MaxInFlight > 0:
		c.limit = cc.MaxInFlight
	case cc.Adaptive != nil && *cc.Adaptive:
		lo, hi := cc.MinLimit, cc.MaxLimit
		if lo < 1 {
			lo = config.DefaultConcurrencyMinLimit
		}
		if hi < lo {
			hi = max(lo, config.DefaultConcurrencyMaxLimit)
		}
		c.grad = newGradientLimit(lo, hi, now())
		c.limit = c.grad.admission()
	}
	c.releaseFn = c.done
	return c
}

// Acquire waits for a slot to send a request of priority p to the pool. It
// returns at once when a slot is free; else the request waits in the
// queue. The release func must be called exactly once, when the request
// is done, with its Result.
//
// A refused request gets a *cause.Error with ID
// cause.ConnectionLimitReached, Detail DetailQueueFull, DetailQueueTimeout
// or DetailShed, and RetryAfter set (1s to 5s). When ctx is done while the
// request waits, the error is a *cause.Error with ID cause.ClientClosed
// wrapping ctx's error.
func (c *Concurrency) Acquire(ctx context.Context, p Priority) (release func(Result), err error) {
	c.mu.Lock()
	if c.inFlight < c.limit {
		// Fast path. When the queue holds anyone, every slot is taken:
		// grantLocked runs whenever a slot frees or the limit rises.
		c.inFlight++
		if c.grad != nil {
			c.grad.inFlight(c.inFlight)
		}
		c.mu.Unlock()
		return c.releaseFn, nil
	}
	return c.wait(ctx, p.valid())
}

// Limit returns the limit of requests in flight now (math.MaxInt when there
// is none). During an adaptive limit's probe it is half the learned limit.
func (c *Concurrency) Limit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit
}

// InFlight returns the requests holding a slot now.
func (c *Concurrency) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// Queued returns the requests waiting for a slot now.
func (c *Concurrency) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// waiter is a request in the queue.
type waiter struct {
	prev, next *waiter
	prio       Priority
	since      time.Time
	// ready receives nil when the waiter was given a slot, or the
	// refusal when it was shed; it is sent to once, by the goroutine that
	// removed the waiter from the queue, under c.mu.
	ready chan error
	// inQueue is true while the waiter is in its list.
	inQueue bool
}

// waitList is a doubly linked list of waiters of one priority, oldest at
// the head.
type waitList struct {
	head, tail *waiter
}

func (l *waitList) pushBack(w *waiter) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
}

func (l *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

// wait queues a request of priority p; c.mu is held and is released.
func (c *Concurrency) wait(ctx context.Context, p Priority) (func(Result), error) {
	now := c.now()
	if c.queued == 0 && c.standing && !c.drainedAt.IsZero() && now.Sub(c.drainedAt) >= c.interval {
		c.standing = false // the overload has ended
	}
	c.drainedAt = time.Time{}
	if c.queued >= c.maxQueue && !c.displaceLocked(p, now) {
		c.mu.Unlock()
		return nil, refusal(DetailQueueFull)
	}
	w := &waiter{prio: p, since: now, ready: make(chan error, 1), inQueue: true}
	c.queues[p].pushBack(w)
	c.queued++
	c.mu.Unlock()

	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case err := <-w.ready:
		if err != nil {
			return nil, err
		}
		return c.releaseFn, nil
	case <-timer.C:
		if c.leave(w) {
			return nil, refusal(DetailQueueTimeout)
		}
		// Given a slot (or shed) just as the time ran out: take it.
		if err := <-w.ready; err != nil {
			return nil, err
		}
		return c.releaseFn, nil
	case <-ctx.Done():
		gone := cause.New(cause.ClientClosed, "while queued", ctx.Err())
		if c.leave(w) {
			return nil, gone
		}
		if err := <-w.ready; err == nil {
			c.releaseUnused() // given a slot as the client left: pass it on
		}
		return nil, gone
	}
}

// leave removes w from the queue and reports whether it was still there
// (neither given a slot nor shed).
func (c *Concurrency) leave(w *waiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !w.inQueue {
		return false
	}
	c.removeLocked(w)
	return true
}

func (c *Concurrency) removeLocked(w *waiter) {
	c.queues[w.prio].remove(w)
	w.inQueue = false
	c.queued--
}

// displaceLocked makes room in the full queue for a request of priority p
// by shedding a waiter: the oldest of the lowest priority below p, or else
// the oldest of priority p when the queue is standing (CoDel drops from
// the head). It reports whether it made room.
func (c *Concurrency) displaceLocked(p Priority, now time.Time) bool {
	for q := PriorityLow; q <= p; q++ {
		l := &c.queues[q]
		if l.head != nil && (q < p || c.standingLocked(now)) {
			c.shedLocked(l.head)
			return true
		}
	}
	return false
}

// standingLocked reports whether the queue is standing, and marks it so
// when its oldest waiter has waited longer than the interval.
func (c *Concurrency) standingLocked(now time.Time) bool {
	for q := range c.queues {
		if c.standing {
			break
		}
		// A queue behind an adaptive limit stands only while the
		// upstream is seen to queue (its latency is up): a burst in front
		// of a healthy upstream waits its turn instead of being shed.
		if h := c.queues[q].head; h != nil && now.Sub(h.since) > c.interval && (c.grad == nil || c.grad.congested) {
			c.standing = true
		}
	}
	return c.standing
}

func (c *Concurrency) shedLocked(w *waiter) {
	c.removeLocked(w)
	w.ready <- refusal(DetailShed)
}

// grantLocked gives free slots to waiters (see nextLocked).
func (c *Concurrency) grantLocked() {
	if c.queued > 0 && c.inFlight < c.limit {
		now := c.now()
		for c.queued > 0 && c.inFlight < c.limit {
			w := c.nextLocked(now)
			if w == nil {
				break // every waiter was shed
			}
			c.removeLocked(w)
			c.inFlight++
			if c.grad != nil {
				c.grad.inFlight(c.inFlight)
			}
			w.ready <- nil
		}
	}
	if c.standing && c.inFlight < c.limit && c.drainedAt.IsZero() {
		c.drainedAt = c.now()
	}
}

// nextLocked returns the waiter to give a slot to, or nil when the queue is
// empty: the highest priority first; within a priority the oldest first,
// or in a standing queue the newest first, after shedding the waiters
// older than codelTarget.
func (c *Concurrency) nextLocked(now time.Time) *waiter {
	standing := c.standingLocked(now)
	if standing {
		for q := range c.queues {
			l := &c.queues[q]
			for l.head != nil && now.Sub(l.head.since) > codelTarget {
				c.shedLocked(l.head)
			}
		}
	}
	for q := PriorityHigh; q >= PriorityLow; q-- {
		l := &c.queues[q]
		switch {
		case l.head == nil:
		case standing:
			return l.tail
		default:
			return l.head
		}
	}
	return nil
}

// done is the release func: it frees the slot, feeds the adaptive limit,
// and passes free slots to waiters.
func (c *Concurrency) done(r Result) {
	now := r.At
	if c.grad != nil && now.IsZero() {
		now = c.now()
	}
	c.mu.Lock()
	c.inFlight--
	if c.grad != nil && c.grad.sample(now, r, c.inFlight) {
		c.limit = c.grad.admission()
	}
	c.grantLocked()
	c.mu.Unlock()
}

// releaseUnused frees a slot that was never used, without a sample.
func (c *Concurrency) releaseUnused() {
	c.mu.Lock()
	c.inFlight--
	c.grantLocked()
	c.mu.Unlock()
}

// refusal returns a connection_limit_reached error with a random
// Retry-After in [minRetryAfter, maxRetryAfter).
func refusal(detail string) *cause.Error {
	return &cause.Error{
		ID:         cause.ConnectionLimitReached,
		Detail:     detail,
		RetryAfter: minRetryAfter + rand.N(maxRetryAfter-minRetryAfter),
	}
}

// The parameters of the adaptive limit.
const (
	// gradTolerance is how much longer than the no-load RTT the window's
	// RTT may be before the limit is lowered: the upstream may queue up
	// to about 20% of its capacity, so that the noise of the measurement
	// (the gateway's own delays when it is busy) does not starve it, and
	// admitted requests keep a latency close to its own.
	gradTolerance = 1.2
	// gradMinGradient bounds one decrease, so that one outlier window (a
	// GC pause) cannot cut the limit by more than a quarter.
	gradMinGradient = 0.5
	// gradSmoothing is the share of a decrease applied at once.
	gradSmoothing = 0.5
	// gradWindowSamples is the most samples a window needs (it needs
	// the limit's worth when the limit is lower); a window also lasts at
	// least one no-load RTT, so that every request in flight at its start
	// has completed within it, and at least gradMinWindow.
	gradWindowSamples = 10
	gradMinWindow     = 5 * time.Millisecond
	// gradProbeEvery is the time between probes of the no-load RTT: the
	// admission limit is halved, which drains any queue at the upstream,
	// for gradProbeRTTs no-load RTTs, and the mean latency of the
	// requests admitted in the first of them replaces the no-load RTT
	// (as BBR's ProbeRTT does every 10s). Without it the no-load RTT could
	// never rise again after the upstream became slower for good.
	gradProbeEvery = 10 * time.Second
	gradProbeRTTs  = 3
	// gradInitialLimit is the first limit, within the bounds. It is low
	// so that the first no-load RTT is measured without a queue at the
	// upstream; with room, the limit grows by up to gradTolerance per
	// window from there.
	gradInitialLimit = 4
	// gradSlack is added to the tolerated window RTT: an upstream whose
	// latency rose by less than this is not held to be queueing. Without
	// it, the jitter of an upstream that answers in a fraction of a
	// millisecond (a GC pause, a busy core) reads as a doubling of its
	// latency and drives the limit down to MinLimit for no reason. It is
	// 5ms because a gateway whose own cores are saturated (a benchmark,
	// or a host shared with the upstream) sees every latency lengthened
	// by its scheduling delays, milliseconds at a time: at 2ms, 50
	// keep-alive clients of a sub-millisecond upstream were shed now and
	// then on this 2-core machine while nothing queued at the upstream.
	gradSlack = 5 * time.Millisecond
)

// gradientLimit learns a pool's concurrency limit from its latency. It is
// the gradient algorithm of Netflix's concurrency-limits (GradientLimit,
// https://github.com/Netflix/concurrency-limits), simplified:
//
//   - Samples are grouped in windows of at least one no-load RTT and
//     gradWindowSamples samples (or the limit's worth, if lower); the
//     window's RTT is the mean latency of its successful samples.
//   - The no-load RTT is the first window's RTT, then moves halfway down
//     to any lower window RTT (of gradWindowSamples samples or more: the
//     lowest of many noisy means is lower than the truth), and is measured
//     again by a probe every gradProbeEvery.
//   - gradient = max(0.5, (gradTolerance × noLoad + gradSlack) / rtt).
//     Below 1, the upstream queues more than the tolerance: the limit
//     shrinks, limit ×= 1 − gradSmoothing×(1 − gradient).
//   - Above 1 it grows, limit ×= min(gradient, gradTolerance), but only
//     when the window's peak in flight reached half the limit (as
//     Gradient2: a limit that is not used is not raised, or it would mean
//     nothing when the load comes). Until the first window that finds
//     the upstream queueing or failing, it doubles instead (a slow start,
//     as TCP's): the limit reaches the capacity of an upstream that can
//     serve hundreds at once in a few round trips, rather than queueing
//     the first visitors of a peak for a second while it grows by 20% a
//     round trip. A slow-start window counts only the requests sent
//     after it began, so that it sees the queueing its own limit caused;
//     the overshoot, at most twice the capacity, is taken back by the
//     next window.
//   - A window with failed results (timeouts) lowers the limit by half the
//     failed share: limit ×= 1 − failed/2 (a multiplicative decrease, as
//     in AIMD and TCP).
//   - The limit stays within [MinLimit, MaxLimit].
//
// Under a load above the upstream's capacity C (at a steady service time
// S) the limit settles near (gradTolerance + gradSlack/S) × C: the
// upstream always has work queued (full goodput) and admitted requests
// wait there about 20% of its service time (plus up to gradSlack). The
// rest wait in the gateway's queue or are refused.
type gradientLimit struct {
	lo, hi float64
	limit  float64
	noLoad time.Duration // 0 until the first window

	// The current window.
	start  time.Time
	n      int           // samples
	failed int           // failed samples
	ok     int           // successful samples with a latency
	sum    time.Duration // their latencies
	peak   int           // most requests in flight

	// congested reports that the last window found the upstream queueing
	// (a gradient below 1) or timing out.
	congested bool
	// slowStart is true until a window finds the upstream congested: the
	// limit doubles while there is room.
	slowStart bool

	nextProbe time.Time
	// probeStart is when the current probe began; zero when none.
	probeStart time.Time
}

func newGradientLimit(lo, hi int, now time.Time) *gradientLimit {
	g := &gradientLimit{lo: float64(lo), hi: float64(hi), start: now, nextProbe: now.Add(gradProbeEvery), slowStart: true}
	g.limit = math.Max(g.lo, math.Min(g.hi, gradInitialLimit))
	return g
}

// admission returns the limit to admit requests with.
func (g *gradientLimit) admission() int {
	l := g.limit
	if !g.probeStart.IsZero() {
		l = math.Max(g.lo, l/2)
	}
	return max(int(math.Round(l)), 1)
}

// inFlight notes the requests in flight after an admission.
func (g *gradientLimit) inFlight(n int) {
	g.peak = max(g.peak, n)
}

// sample adds a result at now, with inFlight requests left in flight, and
// reports whether the admission limit may have changed.
func (g *gradientLimit) sample(now time.Time, r Result, inFlight int) bool {
	if !g.probeStart.IsZero() {
		return g.probeSample(now, r)
	}
	if g.slowStart && r.Latency > 0 && now.Add(-r.Latency).Before(g.start) {
		// Sent before the window began, under the previous limit: in a
		// slow start, where the limit doubles a window, such a sample
		// says nothing of the new limit. Those sent under it include the
		// ones it queued at the upstream.
		return false
	}
	g.n++
	switch {
	case r.Failed:
		g.failed++
	case r.Latency > 0:
		g.ok++
		g.sum += r.Latency
	}
	if g.n < min(gradWindowSamples, int(g.limit)) || now.Sub(g.start) < max(g.noLoad, gradMinWindow) {
		return false
	}
	g.update(now, inFlight)
	return true
}

// probeSample adds a result during a probe. Only the requests admitted in
// its first no-load RTT count: the queue at the upstream has drained by
// then, and they all complete within the probe (a window that closed at a
// number of samples would keep the fastest).
func (g *gradientLimit) probeSample(now time.Time, r Result) bool {
	if !r.Failed && r.Latency > 0 {
		if started := now.Add(-r.Latency); !started.Before(g.probeStart) && started.Sub(g.probeStart) < g.noLoad {
			g.ok++
			g.sum += r.Latency
		}
	}
	if now.Sub(g.probeStart) < gradProbeRTTs*g.noLoad {
		return false
	}
	if g.ok > 0 {
		g.noLoad = g.sum / time.Duration(g.ok)
	}
	g.probeStart = time.Time{}
	g.nextProbe = now.Add(gradProbeEvery)
	g.start, g.n, g.failed, g.ok, g.sum, g.peak = now, 0, 0, 0, 0, 0
	return true
}

// update closes the window at now, with inFlight requests in flight.
func (g *gradientLimit) update(now time.Time, inFlight int) {
	if g.ok > 0 {
		rtt := g.sum / time.Duration(g.ok)
		switch {
		case g.noLoad == 0:
			g.noLoad = rtt
		case rtt < g.noLoad && g.ok >= gradWindowSamples:
			g.noLoad = (g.noLoad + rtt) / 2
		}
		// gradSlack keeps scheduling noise from counting as queueing
		// when the upstream answers in well under a millisecond.
		grad := math.Max(gradMinGradient, (gradTolerance*float64(g.noLoad)+float64(gradSlack))/float64(rtt))
		g.congested = grad < 1
		switch {
		case grad < 1:
			g.limit *= 1 + gradSmoothing*(grad-1)
		case float64(g.peak) < g.limit/2:
		case g.slowStart:
			g.limit *= 2
		default:
			g.limit *= math.Min(grad, gradTolerance)
		}
	}
	if g.failed > 0 {
		g.congested = true
	}
	if g.congested {
		g.slowStart = false
	}
	if g.failed > 0 {
		g.limit *= 1 - float64(g.failed)/float64(g.n)/2
	}
	g.limit = math.Max(g.lo, math.Min(g.hi, g.limit))
	g.start, g.n, g.failed, g.ok, g.sum, g.peak = now, 0, 0, 0, 0, inFlight
	if !now.Before(g.nextProbe) && g.noLoad > 0 {
		g.probeStart = now
	}
}
