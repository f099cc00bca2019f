package limit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// MaxRateBuckets is how many buckets (keys) one RateLimiter keeps at most:
// about 4 MB of memory when full. See RateLimiter for what happens at the
// cap.
const MaxRateBuckets = 100_000

// ErrInvalidRateLimit is wrapped by the errors of NewRateLimiter.
var ErrInvalidRateLimit = errors.New("invalid rate limit")

const (
	// rateShards is the number of independently locked parts of a
	// limiter's table; a power of two.
	rateShards = 64
	// rateEpsilon absorbs the rounding of fractional tokens, so that a
	// token refilled in exactly 1/rate is whole.
	rateEpsilon = 1e-9
	// rateIPv6Bits is the prefix length IPv6 clients are grouped by: a
	// host usually gets a whole /64, so one host cannot evade its limit by
	// switching addresses.
	rateIPv6Bits = 64
	// rateSweepEvery is the least time between two sweeps of a shard, so
	// that a flood of new keys, while buckets keep refilling, costs at
	// most about 100 scans of a shard a second (some microseconds each).
	rateSweepEvery = int64(10 * time.Millisecond)
	// rateMaxNanos bounds computed durations, so that absurd rates such
	// as "0.001/h" with a large burst do not overflow int64.
	rateMaxNanos = 1 << 62
	// rateMaxSeconds bounds t and w to what a Structured Field Integer
	// can hold (15 digits).
	rateMaxSeconds = 999_999_999_999_999
)

// rateKey is what a limiter counts separately.
type rateKey int

const (
	rateKeyClientIP rateKey = iota
	rateKeyHeader
	rateKeyRoute
)

// RateLimiter is a set of token buckets, one per key, for one rate limit
// config: each bucket holds up to Burst tokens, refills at Rate (in
// fractional tokens, computed lazily from the clock when a request comes),
// and each allowed request takes one token.
//
// Keys are hashed with a per-limiter random seed, so the table holds 8
// bytes per key whatever the key's length (a huge header value costs no
// memory) and a client cannot choose which part of the table it lands in.
// Two keys sharing a hash (odds of about 1 in 10^9 at the cap) share a
// bucket, which is only stricter.
//
// Memory is bounded: the table holds at most MaxRateBuckets buckets, split
// over 64 shards, each with its own mutex and its own share of the cap.
// A bucket that has refilled completely is exactly the same as a new one,
// so when a shard is full it first drops its full buckets (lazily, on the
// request path; no goroutine runs). If none is full, the new key is not
// given a bucket: it shares its shard's overflow bucket (same rate and
// burst) with every other key that found no room. This is the safest
// choice: refusing every new key would let a flood of spoofed keys lock
// out every new visitor, and allowing them would let the same flood switch
// the limit off; with the overflow buckets the limit still holds for the
// flood as a whole, clients already tracked keep their own buckets, and
// memory stays bounded. A shard sweeps only once one of its buckets can
// have refilled, and at most every 10ms, so a flood cannot make every
// request scan.
//
// A RateLimiter is safe for concurrent use. Allow does not allocate for a
// key that has a bucket.
type RateLimiter struct {
	rate      float64 // tokens per second
	burst     float64
	limit     int
	kind      rateKey
	header    string // canonical header name, for rateKeyHeader
	trusted   []netip.Prefix
	now       func() time.Time
	start     time.Time // the clock's origin: bucket times count from it
	seed      maphash.Seed
	perShard  int
	policy    string // the RateLimit-Policy field value
	itemStart string // `"NAME";r=`, the start of the RateLimit field value
	shards    [rateShards]rateShard
}

// rateShard is one locked part of a limiter's table.
type rateShard struct {
	mu      sync.Mutex
	buckets map[uint64]rateBucket
	// overflow is shared by the keys that found the shard full.
	overflow rateBucket
	// sweepAt is the earliest time a bucket of the shard can be full:
	// sweeping before it cannot free anything.
	sweepAt int64
	// sweptAt is the time of the last sweep.
	sweptAt int64
	_       [64]byte // keep shards on separate cache lines
}

// rateBucket is one key's token bucket: tokens at time last.
type rateBucket struct {
	tokens float64
	last   int64 // nanoseconds since RateLimiter.start
}

// RateDecision is the outcome of Allow.
type RateDecision struct {
	// Allowed reports whether the request may go on.
	Allowed bool
	// Limit is the quota: the burst.
	Limit int
	// Remaining is the number of whole tokens left after this request; 0
	// when refused.
	Remaining int
	// RetryAfter is, when refused, the time until one token is back (the
	// caller rounds it up to whole seconds for Retry-After); 0 when
	// allowed.
	RetryAfter time.Duration
	// Reset is the time until the bucket is full again.
	Reset time.Duration
}

// NewRateLimiter builds a limiter for rc, normally validated and with its
// defaults applied (config.ApplyDefaults); a zero Burst or empty Key still
// gets its default here (the rate's count per second rounded, at least 1,
// and config.DefaultRateLimitKey, "client_ip"). name names the limit in the
// RateLimit-Policy header: the route's name, or "default" when empty.
// trusted are the proxies whose X-Forwarded-For is believed for the
// "client_ip" key (see ClientIP); nil trusts none. now is the clock;
// nil means time.Now.
//
// The errors wrap ErrInvalidRateLimit.
func NewRateLimiter(name string, rc config.RateLimit, trusted []netip.Prefix, now func() time.Time) (*RateLimiter, error) {
	if name == "" {
		name = "default"
	}
	rate, err := config.ParseRate(rc.Rate)
	if err != nil {
		return nil, fmt.Errorf("%w %q: rate: %w", ErrInvalidRateLimit, name, err)
	}
	burst := rc.Burst
	if burst == 0 {
		burst = max(1, int(rate+0.5))
	}
	if burst < 1 || burst > 1_000_000 {
		return nil, fmt.Errorf("%w %q: burst: must be 1 to 1000000, got %d", ErrInvalidRateLimit, name, burst)
	}
	key := rc.Key
	if key == "" {
		key = config.DefaultRateLimitKey
	}
	if now == nil {
		now = time.Now
	}
	l := &RateLimiter{
		rate:    rate,
		burst:   float64(burst),
		limit:   burst,
		trusted: append([]netip.Prefix(nil), trusted...),
		now:     now,
		start:   now(),
		seed:    maphash.MakeSeed(),
	}
	switch key {
	case "client_ip":
		l.kind = rateKeyClientIP
	case "route":
		l.kind = rateKeyRoute
	default:
		kind, header, ok := strings.Cut(key, ":")
		if !ok || kind != "header" || header == "" || strings.ContainsAny(header, " \t:;,=") {
			return nil, fmt.Errorf("%w %q: key: want client_ip, route or header:NAME, got %q", ErrInvalidRateLimit, name, key)
		}
		l.kind = rateKeyHeader
		l.header = http.CanonicalHeaderKey(header)
	}
	l.setMaxBuckets(MaxRateBuckets)
	item := rateSFString(name)
	window := min(rateMaxSeconds, max(1, rateCeilSeconds(l.duration(l.burst))))
	l.policy = item + ";q=" + strconv.Itoa(burst) + ";w=" + strconv.FormatInt(window, 10)
	l.itemStart = item + ";r="
	return l, nil
}

// setMaxBuckets sets the cap on the number of buckets and resets the
// table; only for NewRateLimiter and tests.
func (l *RateLimiter) setMaxBuckets(n int) {
	l.perShard = max(1, n/rateShards)
	for i := range l.shards {
		s := &l.shards[i]
		s.buckets = make(map[uint64]rateBucket)
		s.overflow = rateBucket{tokens: l.burst, last: l.nanos(l.start)}
		s.sweepAt = 0
		s.sweptAt = math.MinInt64 / 2
	}
}

// Allow takes one token from r's bucket. The key is, by the config's Key:
// "client_ip", ClientIP(r, trusted) with IPv6 addresses grouped by /64
// (requests without an IP address, such as over a unix socket, share one
// bucket); "header:NAME", the header's first value (requests without it
// share the bucket of ""); "route", one bucket for all.
func (l *RateLimiter) Allow(r *http.Request) RateDecision {
	h := l.hash(r)
	now := l.nanos(l.now())
	s := &l.shards[h&(rateShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[h]
	if !ok {
		if len(s.buckets) >= l.perShard && !l.sweep(s, now) {
			return l.take(&s.overflow, now)
		}
		b = rateBucket{tokens: l.burst, last: now}
	}
	d := l.take(&b, now)
	s.buckets[h] = b
	if !ok {
		s.sweepAt = min(s.sweepAt, l.fullAt(b))
	}
	return d
}

// hash returns r's key, hashed.
func (l *RateLimiter) hash(r *http.Request) uint64 {
	switch l.kind {
	case rateKeyRoute:
		return 0
	case rateKeyHeader:
		v := ""
		if vs := r.Header[l.header]; len(vs) > 0 {
			v = vs[0]
		}
		return maphash.String(l.seed, v)
	default:
		a := ClientIP(r, l.trusted)
		if a.Is6() {
			p, _ := a.Prefix(rateIPv6Bits)
			a = p.Addr()
		}
		b := a.As16() // IPv4 as IPv4-mapped: distinct from every grouped IPv6 key
		return maphash.Bytes(l.seed, b[:])
	}
}

// take refills b up to now and takes one token if there is one.
func (l *RateLimiter) take(b *rateBucket, now int64) RateDecision {
	if elapsed := now - b.last; elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)*l.rate/1e9)
		b.last = now
	}
	d := RateDecision{Limit: l.limit}
	if b.tokens >= 1-rateEpsilon {
		b.tokens = max(0, b.tokens-1)
		d.Allowed = true
		d.Remaining = int(b.tokens + rateEpsilon)
	} else {
		d.RetryAfter = l.duration(1 - b.tokens)
	}
	d.Reset = l.duration(l.burst - b.tokens)
	return d
}

// sweep drops the shard's full buckets and reports whether that made room.
// It does nothing before s.sweepAt, when it cannot free anything, and
// within rateSweepEvery of the last sweep.
func (l *RateLimiter) sweep(s *rateShard, now int64) bool {
	if now < s.sweepAt || now < s.sweptAt+rateSweepEvery {
		return false
	}
	s.sweptAt = now
	next := int64(math.MaxInt64)
	for k, b := range s.buckets {
		if at := l.fullAt(b); at <= now {
			delete(s.buckets, k)
		} else {
			next = min(next, at)
		}
	}
	s.sweepAt = next
	return len(s.buckets) < l.perShard
}

// fullAt returns the time b has refilled completely.
func (l *RateLimiter) fullAt(b rateBucket) int64 {
	d := int64(l.duration(l.burst - b.tokens))
	if b.last > math.MaxInt64-d {
		return math.MaxInt64
	}
	return b.last + d
}

// duration returns the time the bucket takes to refill tokens, rounded up
// to the nanosecond; 0 for (nearly) no tokens. A result a rounding error
// above a whole nanosecond (as 1e9/(1/60.0) can be) is that nanosecond:
// else 60s would become 60.000000001s, and 61 whole seconds.
func (l *RateLimiter) duration(tokens float64) time.Duration {
	if tokens <= rateEpsilon {
		return 0
	}
	ns := math.Ceil(tokens * 1e9 / l.rate * (1 - 1e-12))
	if ns >= rateMaxNanos {
		return rateMaxNanos
	}
	return time.Duration(ns)
}

// nanos returns t as nanoseconds since the limiter's start (monotonic when
// the clock gives a monotonic reading, as time.Now does).
func (l *RateLimiter) nanos(t time.Time) int64 {
	return int64(t.Sub(l.start))
}

// buckets returns the number of buckets held, for tests.
func (l *RateLimiter) buckets() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// SetHeaders writes the RateLimit-Policy and RateLimit fields of d to h, in
// the form of draft-ietf-httpapi-ratelimit-headers-11 (May 2026; the same
// as drafts 07 to 10), a List of one Structured Field Item named by the
// limit:
//
//	RateLimit-Policy: "NAME";q=BURST;w=WINDOW
//	RateLimit: "NAME";r=REMAINING;t=SECONDS
//
// q is the burst (the quota) and w the time the bucket takes to refill it,
// in whole seconds rounded up, at least 1 (the draft has no sub-second
// windows: when a burst refills faster than a second, the policy
// understates the rate, which the draft allows: it is only more
// restrictive). r is the remaining whole tokens. t is, when allowed, the
// time until the bucket is full again, and when refused the time until one
// token is back: the draft asks that Retry-After not end before the
// effective window, so t matches the Retry-After the caller writes
// (RetryAfter rounded up to whole seconds). Both are rounded up to whole
// seconds. Retry-After itself is the caller's.
func (l *RateLimiter) SetHeaders(h http.Header, d RateDecision) {
	t := d.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	v := make([]byte, 0, len(l.itemStart)+24)
	v = append(v, l.itemStart...)
	v = strconv.AppendInt(v, int64(max(0, d.Remaining)), 10)
	v = append(v, ";t="...)
	v = strconv.AppendInt(v, min(rateMaxSeconds, rateCeilSeconds(t)), 10)
	h.Set("RateLimit-Policy", l.policy)
	h.Set("RateLimit", string(v))
}

// Close releases the limiter. Nothing runs in the background (full buckets
// are dropped lazily by Allow), so there is nothing to stop: Close is there
// so that callers may treat every limiter alike. It may be called more
// than once, and Allow still works after it.
func (l *RateLimiter) Close() {}

// rateCeilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func rateCeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// rateSFString returns s as a Structured Field String (RFC 9651 section
// 3.3.3): '"' and '\' are escaped, and bytes outside printable ASCII,
// which a String cannot hold, become '_'.
func rateSFString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
