package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/httpsyntax"
)

// IdleLearner learns how long a target keeps an idle keep-alive connection
// open, from its Keep-Alive response header ("timeout=5") and from the idle
// connections it is seen to close. Pooled connections are retired shortly
// before that, so a request is never sent on a connection the target is
// about to close (the keep-alive race behind many "random" 502s). The zero
// value knows nothing and retires nothing.
type IdleLearner struct {
	learned  atomic.Int64 // nanoseconds; 0 = unknown
	reported atomic.Int64 // the value TakeChange last returned
}

// minIdleObservation ignores closes that come so soon after a response that
// they are not idle timeouts (a target that closes after every response).
const minIdleObservation = 50 * time.Millisecond

// ObserveHeader learns from a response's Keep-Alive header.
func (l *IdleLearner) ObserveHeader(h http.Header) {
	l.ObserveKeepAlive(httpsyntax.HeaderValue(h, "Keep-Alive"))
}

// ObserveKeepAlive is ObserveHeader given the value of the response's
// Keep-Alive field ("" when it has none).
func (l *IdleLearner) ObserveKeepAlive(v string) {
	if v == "" {
		return
	}
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		secs, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || secs <= 0 || secs > 3600 {
			return
		}
		l.lower(time.Duration(secs) * time.Second)
		return
	}
}

// ObserveIdleClose learns from a connection the target closed after it had
// been idle for d.
func (l *IdleLearner) ObserveIdleClose(d time.Duration) {
	if d < minIdleObservation {
		return
	}
	l.lower(d)
}

// lower sets the learned timeout to d when d is shorter than what is known.
func (l *IdleLearner) lower(d time.Duration) {
	for {
		cur := l.learned.Load()
		if cur != 0 && cur <= int64(d) {
			return
		}
		if l.learned.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Learned returns the learned idle timeout, or 0 when unknown.
func (l *IdleLearner) Learned() time.Duration { return time.Duration(l.learned.Load()) }

// RetireAfter returns how long a connection may stay idle before it is
// retired: the learned timeout less a margin of a quarter of it, at most
// one second; 0 when nothing is learned.
func (l *IdleLearner) RetireAfter() time.Duration {
	d := l.Learned()
	if d == 0 {
		return 0
	}
	return d - min(d/4, time.Second)
}

// TakeChange returns the learned timeout and true when it changed since the
// last call, so a caller can export it only when it changes.
func (l *IdleLearner) TakeChange() (time.Duration, bool) {
	cur := l.learned.Load()
	if l.reported.Swap(cur) == cur {
		return 0, false
	}
	return time.Duration(cur), true
}
