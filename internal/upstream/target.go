package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Outcome is how one request to a target ended, as far as choosing targets
// is concerned.
type Outcome struct {
	// Err is the classified failure; nil when the upstream answered.
	Err *cause.Error
	// Status is the upstream's status when it answered (Err is nil).
	Status int
	// Latency is the time from the request's start to the response
	// headers (or to the failure); it feeds the target's moving average.
	Latency time.Duration
	// At is when the outcome was known, read from the pool's clock
	// (PoolOptions.Now) by the caller, which often has that reading at
	// hand. Zero (the default) means the pool reads its clock.
	At time.Time
}

// ewmaDecay is the time constant of the latency moving average: the weight
// of a sample falls by a factor e every ewmaDecay, whatever the request
// rate (Finagle's and linkerd's peak EWMA use the same 10s).
const ewmaDecay = 10 * time.Second

// slowStartFloor is the share of its weight, in thousandths, a target gets
// when its slow start begins; it ramps linearly to 1000 over the window.
const slowStartFloor = 100

// state is a target's changing state. Fields read by Pick are atomics, so
// picking takes no lock (except round robin's).
type state struct {
	pool *Pool
	end  func(Outcome) // the target's finish method, bound once so Begin does not allocate
	seed uint64        // the target's hash for rendezvous hashing

	outstanding atomic.Int64
	// Written under pool.mu.
	healthy      atomic.Bool  // by active health checks
	ejectedUntil atomic.Int64 // unix ns; 0: not ejected
	rampFrom     atomic.Int64 // unix ns when slow start began; 0: not ramping
	restoredAt   atomic.Int64 // unix ns of the last return to service
	streak       atomic.Int64 // ejections in a row
	ejectedFor   time.Duration
	ejections    int // since the pool was built

	// The moving average of latency, in nanoseconds (float64 bits), and
	// when it was last updated (unix ns; 0: no sample yet). Written under
	// mu, read without it.
	ewma  atomic.Uint64
	stamp atomic.Int64

	mu            sync.Mutex // guards the fields below, and the writes of ewma and stamp
	connFailures  int        // connection failures and timeouts in a row
	badAnswers    int        // 5xx answers and broken responses in a row
	lastFailure   cause.ID
	lastFailureAt time.Time
	lastStatus    int // the last 5xx status, for the ejection's reason
}

// init sets up t's state as a member of p: healthy, not ejected.
func (t *Target) init(p *Pool) {
	t.pool = p
	t.end = t.finish
	t.seed = mix64(fnv64a(t.Addr))
	t.healthy.Store(true)
}

// Begin marks a request started on t (one more outstanding request) and
// returns the func that ends it with its outcome, which feeds the target's
// latency average and its passive outlier detection. Call end exactly
// once per Begin. Begin and end do not allocate.
func (t *Target) Begin() (end func(Outcome)) {
	t.outstanding.Add(1)
	if t.end == nil { // a Target not built by NewPool
		return t.finish
	}
	return t.end
}

// finish ends a request started by Begin.
func (t *Target) finish(o Outcome) {
	t.outstanding.Add(-1)
	if t.pool != nil {
		t.pool.observe(t, o)
	}
}

// verdict is what an outcome says about a target.
type verdict uint8

const (
	verdictIgnore  verdict = iota // says nothing about the target (client_closed, gateway-side causes)
	verdictSuccess                // the upstream answered with a status below 500
	verdictFailure                // a connection failure or a timeout
	verdictError                  // a 5xx answer or a broken response
)

// judge classifies an outcome for outlier detection.
func judge(o Outcome) verdict {
	if o.Err == nil {
		if o.Status >= 500 && o.Status <= 599 {
			return verdictError
		}
		return verdictSuccess
	}
	switch o.Err.ID {
	case cause.DNSError, cause.ConnectionRefused, cause.ConnectionTimeout, cause.DestinationUnavailable,
		cause.TLSProtocolError, cause.TLSCertificateError, cause.HTTPResponseTimeout,
		cause.FPMNotRunning, cause.FPMPoolExhausted:
		return verdictFailure
	case cause.ConnectionTerminated, cause.HTTPProtocolError, cause.HTTPResponseHeaderSectionSize,
		cause.HTTPResponseIncomplete, cause.UpstreamErrorStatus,
		// PHP's failures are its 5xx answers.
		cause.FPMWorkerCrashed, cause.PHPFatalError, cause.PHPMemoryExhausted, cause.PHPTimeout:
		// A connection cut during a request is a broken answer, counted
		// with the 5xx: a target that resets now and then still serves.
		return verdictError
	}
	return verdictIgnore
}

// observeLatency adds a sample to t's peak EWMA. Called with t.mu held.
// A sample above the (decayed) average replaces it at once, so a target
// that slows down is avoided at once; a lower one is blended in with the
// weight of the time since the last sample.
func (t *Target) observeLatency(sample time.Duration, now int64, failed bool) {
	rtt := float64(sample)
	stamp := t.stamp.Load()
	if stamp == 0 {
		t.ewma.Store(math.Float64bits(rtt))
		t.stamp.Store(now)
		return
	}
	w := math.Exp(-float64(max(now-stamp, 0)) / float64(ewmaDecay))
	cost := math.Float64frombits(t.ewma.Load())
	if failed {
		// A failure counts as at least twice the average: failing fast
		// must not make a target look fast.
		rtt = max(rtt, 2*cost*w)
	}
	if rtt > cost {
		cost = rtt
	} else {
		cost = cost*w + rtt*(1-w)
	}
	t.ewma.Store(math.Float64bits(cost))
	t.stamp.Store(now)
}

// latency returns t's moving average of latency decayed to now (as if a
// zero sample had been seen, so an idle target is tried again), and false
// when t has no sample yet.
func (t *Target) latency(now int64) (float64, bool) {
	stamp := t.stamp.Load()
	if stamp == 0 {
		return 0, false
	}
	cost := math.Float64frombits(t.ewma.Load())
	if d := now - stamp; d > 0 {
		cost *= math.Exp(-float64(d) / float64(ewmaDecay))
	}
	return cost, true
}

// effWeight returns t's weight in thousandths, lowered during slow start:
// from slowStartFloor/1000 of it when the target returned, linearly to all
// of it at the end of the window. It is at least 1.
func (t *Target) effWeight(now int64, window time.Duration) int64 {
	w := int64(t.Weight) * 1000
	from := t.rampFrom.Load()
	if from == 0 {
		return w
	}
	el := now - from
	if window <= 0 || el >= int64(window) {
		t.rampFrom.CompareAndSwap(from, 0)
		return w
	}
	el = max(el, 0)
	permille := slowStartFloor + (1000-slowStartFloor)*el/int64(window)
	return max(w*permille/1000, 1)
}

// Available reports whether t may take requests outside panic mode:
// healthy by its active checks (or with none) and not ejected.
func (t *Target) Available() bool {
	return t.healthy.Load() && t.ejectedUntil.Load() == 0
}

// fnv64a is FNV-1a of s; it does not allocate.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer: it spreads every input bit over the
// output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
