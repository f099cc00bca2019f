package upstream

import (
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
)

// tier is the set of targets a pick chooses from.
type tier uint8

const (
	tierPrimary tier = iota // primaries that are healthy and not ejected
	tierBackup              // backups that are healthy and not ejected
	tierPanic               // every target, whatever its state
)

// Pick returns the target for r, never one in tried (the targets this
// request already tried; nil on the first try).
//
// It chooses among the eligible targets by the pool's policy. Eligible
// are the primary targets that are healthy (by active checks), not
// ejected (by passive outlier detection) and not in tried; when there is
// none, the backup targets that are so. When no target at all, primary or
// backup, is healthy and not ejected, and panic mode is on (the default),
// it chooses among every target not in tried and panicked is true.
//
// It returns nil when no target may serve: every eligible target is
// tried, or every target is unhealthy or ejected and panic mode is off.
// It does not allocate.
func (p *Pool) Pick(r *http.Request, tried []*Target) (t *Target, panicked bool) {
	if len(p.Targets) == 0 {
		return nil, false
	}
	return p.pickAt(r, tried, p.now().UnixNano())
}

// PickAt is Pick at the time now, a reading of the pool's clock
// (PoolOptions.Now) the caller has at hand, so that the pool need not read
// it again.
func (p *Pool) PickAt(r *http.Request, tried []*Target, now time.Time) (t *Target, panicked bool) {
	if len(p.Targets) == 0 {
		return nil, false
	}
	return p.pickAt(r, tried, now.UnixNano())
}

// pickAt is Pick at now, in Unix nanoseconds.
func (p *Pool) pickAt(r *http.Request, tried []*Target, now int64) (t *Target, panicked bool) {
	if next := p.nextRestore.Load(); next != 0 && now >= next {
		p.mu.Lock()
		p.restoreDue(now)
		p.mu.Unlock()
	}
	// A state change between choosing the tier and choosing in it may
	// leave the tier empty: then choose again.
	for range 3 {
		tr, ok := p.tier(tried)
		if !ok {
			return nil, false
		}
		if t := p.choose(r, tr, tried, now); t != nil {
			if tr == tierPanic && p.metrics != nil {
				p.metrics.ObservePanicPick(p.Name)
			}
			return t, tr == tierPanic
		}
	}
	return nil, false
}

// tier returns the set of targets to choose from, and false when no
// target may serve.
func (p *Pool) tier(tried []*Target) (tier, bool) {
	switch {
	case p.any(tierPrimary, tried):
		return tierPrimary, true
	case p.any(tierBackup, tried):
		return tierBackup, true
	case p.panicOn && !p.anyAvailable() && p.any(tierPanic, tried):
		return tierPanic, true
	}
	return 0, false
}

// any reports whether some target of tier tr is eligible.
func (p *Pool) any(tr tier, tried []*Target) bool {
	for _, t := range p.Targets {
		if eligible(t, tr, tried) {
			return true
		}
	}
	return false
}

// anyAvailable reports whether some target is healthy and not ejected.
func (p *Pool) anyAvailable() bool {
	for _, t := range p.Targets {
		if t.Available() {
			return true
		}
	}
	return false
}

// eligible reports whether t belongs to tier tr and is not in tried.
func eligible(t *Target, tr tier, tried []*Target) bool {
	switch tr {
	case tierPrimary:
		if t.Backup || !t.Available() {
			return false
		}
	case tierBackup:
		if !t.Backup || !t.Available() {
			return false
		}
	}
	for _, x := range tried {
		if x == t {
			return false
		}
	}
	return true
}

// choose picks a target of tier tr by the pool's policy; nil when none is
// eligible.
func (p *Pool) choose(r *http.Request, tr tier, tried []*Target, now int64) *Target {
	switch p.policy {
	case policyRoundRobin:
		return p.roundRobin(tr, tried, now)
	case policyLeastRequests:
		return p.leastRequests(tr, tried, now)
	case policyHash:
		if key, ok := p.hashKey(r); ok {
			return p.rendezvous(key, tr, tried, now)
		}
	}
	return p.p2c(tr, tried, now)
}

// roundRobin is nginx's smooth weighted round robin over the eligible
// targets: over any window each gets its effective weight's share, spread
// out rather than in bursts.
func (p *Pool) roundRobin(tr tier, tried []*Target, now int64) *Target {
	p.rrMu.Lock()
	defer p.rrMu.Unlock()
	var total int64
	best := -1
	for i, t := range p.Targets {
		if !eligible(t, tr, tried) {
			continue
		}
		w := t.effWeight(now, p.slowStart)
		p.current[i] += w
		total += w
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	p.current[best] -= total
	return p.Targets[best]
}

// leastRequests picks the eligible target with the fewest outstanding
// requests relative to its effective weight; ties (such as every target
// idle) are broken at random in proportion to the weights.
func (p *Pool) leastRequests(tr tier, tried []*Target, now int64) *Target {
	var best *Target
	var bestO, bestW, tieW int64
	for _, t := range p.Targets {
		if !eligible(t, tr, tried) {
			continue
		}
		o, w := t.outstanding.Load(), t.effWeight(now, p.slowStart)
		switch {
		case best == nil || o*bestW < bestO*w:
			best, bestO, bestW, tieW = t, o, w, w
		case o*bestW == bestO*w:
			tieW += w
			if rand.Int64N(tieW) < w {
				best, bestO, bestW = t, o, w
			}
		}
	}
	return best
}

// p2c picks two distinct eligible targets at random, each in proportion
// to its effective weight, and returns the one of lower cost: its latency
// average times its outstanding requests plus one. A target without a
// latency sample yet counts at the mean of those that have one, so a new
// target gets its share and is measured.
func (p *Pool) p2c(tr tier, tried []*Target, now int64) *Target {
	var total int64
	n := 0
	for _, t := range p.Targets {
		if eligible(t, tr, tried) {
			total += t.effWeight(now, p.slowStart)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	a, aw := p.weightedRandom(tr, tried, now, total, nil)
	if n == 1 || a == nil {
		return a
	}
	b, _ := p.weightedRandom(tr, tried, now, total-aw, a)
	if b == nil {
		return a
	}
	la, okA := a.latency(now)
	lb, okB := b.latency(now)
	if !okA || !okB {
		mean := p.meanLatency(now)
		if !okA {
			la = mean
		}
		if !okB {
			lb = mean
		}
	}
	if lb*float64(b.outstanding.Load()+1) < la*float64(a.outstanding.Load()+1) {
		return b
	}
	return a
}

// weightedRandom picks an eligible target other than skip at random in
// proportion to its effective weight, total being the sum of those
// weights. It returns the target and its weight.
func (p *Pool) weightedRandom(tr tier, tried []*Target, now, total int64, skip *Target) (*Target, int64) {
	if total <= 0 {
		return nil, 0
	}
	x := rand.Int64N(total)
	var last *Target
	var lastW int64
	for _, t := range p.Targets {
		if t == skip || !eligible(t, tr, tried) {
			continue
		}
		w := t.effWeight(now, p.slowStart)
		if x < w {
			return t, w
		}
		x -= w
		last, lastW = t, w
	}
	// The eligible set shrank meanwhile: take the last one seen.
	return last, lastW
}

// meanLatency returns the mean latency average of the targets that have
// one, or 1 (any constant will do: the cost is then by outstanding
// requests alone) when none has.
func (p *Pool) meanLatency(now int64) float64 {
	var sum float64
	n := 0
	for _, t := range p.Targets {
		if l, ok := t.latency(now); ok {
			sum += l
			n++
		}
	}
	if n == 0 || sum == 0 {
		return 1
	}
	return sum / float64(n)
}

// rendezvous picks the eligible target of highest weighted rendezvous
// (highest random weight) score for key: score = weight / -ln(u), with u
// uniform in (0, 1) from the hash of the key and the target. Each key thus
// sticks to a target, a target gets keys in proportion to its weight, and
// a target leaving (ejected, unhealthy, tried) moves only its own keys.
func (p *Pool) rendezvous(key string, tr tier, tried []*Target, now int64) *Target {
	h := fnv64a(key)
	var best *Target
	bestScore := -1.0
	for _, t := range p.Targets {
		if !eligible(t, tr, tried) {
			continue
		}
		u := (float64(mix64(h^t.seed)>>11) + 0.5) / (1 << 53)
		score := float64(t.effWeight(now, p.slowStart)) / -math.Log(u)
		if score > bestScore {
			best, bestScore = t, score
		}
	}
	return best
}

// hashKey returns the key policy hash hashes for r, and false when r has
// none (no such header or cookie). It does not allocate.
func (p *Pool) hashKey(r *http.Request) (string, bool) {
	if r == nil {
		return "", false
	}
	switch p.hashKind {
	case hashHeader:
		if v := r.Header[p.hashName]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
		return "", false
	case hashCookie:
		return cookieValue(r.Header["Cookie"], p.hashName)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host, host != ""
	}
	return r.RemoteAddr, r.RemoteAddr != ""
}

// cookieValue returns the value of the first non-empty cookie called name
// in the Cookie header lines, without its quotes. It does not allocate.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v != "" {
				return v, true
			}
		}
	}
	return "", false
}

// PickUntried returns a target not in tried whatever its health or
// ejection, preferring one that is not ejected, or nil when every target
// was tried. A retry uses it as a last resort: a verdict of "down" may be
// stale, and failing the request is certain.
func (p *Pool) PickUntried(tried []*Target) *Target {
	var fallback *Target
	for _, t := range p.Targets {
		if containsTarget(tried, t) {
			continue
		}
		if t.Available() {
			return t
		}
		if fallback == nil {
			fallback = t
		}
	}
	return fallback
}

func containsTarget(list []*Target, t *Target) bool {
	for _, u := range list {
		if u == t {
			return true
		}
	}
	return false
}
