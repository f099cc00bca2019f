package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/limit"
	"github.com/gatewise/gatewise/internal/obs"
)

// memoryRetryAfter is the Retry-After of a request refused for memory
// pressure.
const memoryRetryAfter = 5 * time.Second

// admission is what a Handler checks before a request may use a pool: the
// limits on what the visitor sent, the gateway's memory, the route's rate
// limit and the pool's concurrency limit. Refusals are answered with their
// cause and logged once per burst, not once per request.
type admission struct {
	request limit.RequestLimits
	memory  *limit.MemoryGuard // nil: not watched
	bursts  *burstLog
}

// routeLimits are a route's own admission settings.
type routeLimits struct {
	priority limit.Priority
	rate     *limit.RateLimiter // nil: none
	request  limit.RequestLimits
}

func newRouteLimits(h *Handler, rc config.Route, cfg *config.Config) (routeLimits, error) {
	rl := routeLimits{priority: limit.ParsePriority(rc.Priority), request: h.admit.request}
	if rc.MaxBodyBytes > 0 {
		rl.request.MaxBodyBytes = int64(rc.MaxBodyBytes)
	}
	rate := rc.RateLimit
	if rate == nil {
		rate = cfg.RateLimit
	}
	if rate != nil {
		l, err := limit.NewRateLimiter(rc.Name, *rate, h.trusted, h.now)
		if err != nil {
			return routeLimits{}, err
		}
		rl.rate = l
	}
	return rl, nil
}

// admitBeforeRoute checks what needs no route: the request's own limits
// and the gateway's memory. It answers and returns false when refused.
func (h *Handler) admitBeforeRoute(w http.ResponseWriter, r *http.Request, rec *obs.Record) bool {
	// The announced body size is checked against the route's own limit,
	// once the route is known.
	before := h.admit.request
	before.MaxBodyBytes = 0
	if ce := limit.CheckRequest(r, before); ce != nil {
		h.refuse(w, r, rec, ce, "")
		return false
	}
	if h.admit.memory != nil {
		if under, _ := h.admit.memory.Pressure(); under {
			h.refuse(w, r, rec, &cause.Error{ID: cause.MemoryPressure, RetryAfter: memoryRetryAfter}, "")
			return false
		}
	}
	return true
}

// admitRoute applies the route's rate limit and the pool's concurrency
// limit. It returns the release func of the concurrency slot, or false
// when the request was refused (and answered).
func (h *Handler) admitRoute(w http.ResponseWriter, r *http.Request, rec *obs.Record, rt *route) (func(limit.Result), bool) {
	if rt.limits.rate != nil {
		d := rt.limits.rate.Allow(r)
		rt.limits.rate.SetHeaders(w.Header(), d)
		if !d.Allowed {
			h.refuse(w, r, rec, &cause.Error{ID: cause.RateLimited, RetryAfter: max(d.RetryAfter, time.Second)}, rt.name)
			return nil, false
		}
	}
	if r.ContentLength > 0 && rt.limits.request.MaxBodyBytes > 0 && r.ContentLength > rt.limits.request.MaxBodyBytes {
		h.refuse(w, r, rec, &cause.Error{ID: cause.RequestBodyTooLarge, Detail: "announced"}, rt.name)
		return nil, false
	}
	limit.LimitBody(w, r, rt.limits.request)
	if c := rt.pool.conc; c != nil {
		release, err := c.Acquire(r.Context(), rt.limits.priority)
		if err != nil {
			ce, ok := cause.Of(err)
			if !ok {
				ce = cause.New(cause.ClientClosed, "", err)
			}
			h.refuse(w, r, rec, ce, rt.name)
			return nil, false
		}
		return release, true
	}
	return func(limit.Result) {}, true
}

// refuse answers a request the gateway turned away, and logs it once per
// burst.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, rec *obs.Record, ce *cause.Error, route string) {
	rec.Fail(ce)
	if ce.ID != cause.ClientClosed {
		h.admit.bursts.note(r.Context(), h.log, ce, route, h.causes.Get(ce.ID))
	}
	h.respond(w, r, rec, ce, route, "")
}

// burstLog logs refusals once per burst: the first of a kind at once, then
// at most one line per interval with the count since.
type burstLog struct {
	mu       sync.Mutex
	interval time.Duration
	now      func() time.Time
	last     map[burstKey]*burstState
}

type burstKey struct {
	id    cause.ID
	route string
}

type burstState struct {
	logged time.Time
	count  int
}

func newBurstLog(interval time.Duration, now func() time.Time) *burstLog {
	return &burstLog{interval: interval, now: now, last: make(map[burstKey]*burstState)}
}

func (b *burstLog) note(ctx context.Context, log *slog.Logger, ce *cause.Error, route string, c cause.Cause) {
	k := burstKey{ce.ID, route}
	now := b.now()
	b.mu.Lock()
	st := b.last[k]
	if st == nil {
		if len(b.last) > 1000 {
			clear(b.last) // bounded: a flood of routes cannot grow it
		}
		st = &burstState{}
		b.last[k] = st
	}
	st.count++
	if !st.logged.IsZero() && now.Sub(st.logged) < b.interval {
		b.mu.Unlock()
		return
	}
	n := st.count
	st.count, st.logged = 0, now
	b.mu.Unlock()
	log.LogAttrs(ctx, slog.LevelWarn, c.Title,
		slog.String("cause", string(ce.ID)), slog.String("detail", ce.Detail), slog.String("route", route),
		slog.Int("refused", n), slog.Duration("per", b.interval), slog.String("owner", c.Owner))
}
