package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// The bounds of RetryAfter.
const (
	// retryAfterUnknown is RetryAfter when no target's return can be
	// foreseen (the down targets are unhealthy by active checks).
	retryAfterUnknown = 5 * time.Second
	retryAfterMin     = time.Second
	retryAfterMax     = 60 * time.Second
)

// The states counted by obs.Metrics.ObserveStateChange.
const (
	stateHealthy   = "healthy"
	stateUnhealthy = "unhealthy"
	stateEjected   = "ejected"
	stateRestored  = "restored"
)

// observe feeds the outcome of a request to t into its latency average
// and its passive outlier detection: connection failures and timeouts in
// a row, and 5xx or broken responses in a row, eject t when they reach
// their threshold; a success (an answer below 500) resets both counts. A
// failure of one kind does not reset the count of the other. Outcomes that
// say nothing about the target (client_closed, the gateway's own causes)
// are ignored.
func (p *Pool) observe(t *Target, o Outcome) {
	v := judge(o)
	if v == verdictIgnore {
		return
	}
	now := o.At
	if now.IsZero() {
		now = p.now()
	}
	ns := now.UnixNano()
	var why string
	var last cause.ID
	t.mu.Lock()
	t.observeLatency(o.Latency, ns, v != verdictSuccess)
	switch v {
	case verdictSuccess:
		t.connFailures, t.badAnswers = 0, 0
	case verdictFailure:
		t.connFailures++
		last = o.Err.ID
		t.lastFailure, t.lastFailureAt = last, now
		if p.failThreshold > 0 && t.connFailures >= p.failThreshold {
			why = fmt.Sprintf("%d connection failures in a row, last %s", t.connFailures, last)
		}
	case verdictError:
		t.badAnswers++
		last = cause.UpstreamErrorStatus
		what := strconv.Itoa(o.Status)
		if o.Err != nil {
			last, what = o.Err.ID, string(o.Err.ID)
		}
		t.lastFailure, t.lastFailureAt = last, now
		if p.errorThreshold > 0 && t.badAnswers >= p.errorThreshold {
			why = fmt.Sprintf("%d 5xx or broken responses in a row, last %s", t.badAnswers, what)
		}
	}
	t.mu.Unlock()
	switch {
	case why != "":
		p.eject(t, ns, why, last)
	case v == verdictSuccess && t.streak.Load() > 0 && ns-t.restoredAt.Load() >= int64(p.baseEjection):
		p.mu.Lock()
		p.forgive(t, ns)
		p.mu.Unlock()
	}
}

// forgive resets t's count of ejections in a row once it has served
// successfully for at least BaseEjection since it returned: the next
// ejection is short again. Called with p.mu held.
func (p *Pool) forgive(t *Target, now int64) {
	if t.ejectedUntil.Load() == 0 && now-t.restoredAt.Load() >= int64(p.baseEjection) {
		t.streak.Store(0)
	}
}

// eject ejects t for BaseEjection times its ejections in a row (capped at
// MaxEjection), unless it is ejected already or max_ejected_percent of the
// pool's targets are. Either way the failure counts start again from 0.
func (p *Pool) eject(t *Target, now int64, why string, last cause.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restoreDue(now)
	if t.ejectedUntil.Load() != 0 {
		return
	}
	t.mu.Lock()
	due := (p.failThreshold > 0 && t.connFailures >= p.failThreshold) || (p.errorThreshold > 0 && t.badAnswers >= p.errorThreshold)
	if due {
		t.connFailures, t.badAnswers = 0, 0
	}
	t.mu.Unlock()
	if !due { // another outcome ejected it meanwhile, or reset the counts
		return
	}
	ejected := 0
	for _, x := range p.Targets {
		if x.ejectedUntil.Load() != 0 {
			ejected++
		}
	}
	if limit := p.maxEjected(); ejected >= limit {
		// A deliberate setting (one target, or ejection off) is no news.
		level, msg := slog.LevelWarn, "target not ejected: too many targets ejected"
		detail := fmt.Sprintf("%d of %d targets ejected already (max_ejected_percent %d)", ejected, len(p.Targets), p.maxEjectedPct)
		if limit == 0 {
			level, msg, detail = slog.LevelDebug, "target not ejected: ejection is off", "the pool's only target"
			if len(p.Targets) > 1 {
				detail = "max_ejected_percent is 0"
			}
		}
		p.log.LogAttrs(context.Background(), level, msg,
			slog.String("pool", p.Name), slog.String("target", t.Addr), slog.String("reason", why+"; "+detail))
		return
	}
	n := t.streak.Add(1)
	d := p.maxEjection
	if n <= int64(p.maxEjection/p.baseEjection) {
		d = p.baseEjection * time.Duration(n)
	}
	until := now + int64(d)
	t.ejectedUntil.Store(until)
	t.ejectedFor = d
	t.ejections++
	t.rampFrom.Store(0)
	if next := p.nextRestore.Load(); next == 0 || until < next {
		p.nextRestore.Store(until)
	}
	p.log.LogAttrs(context.Background(), slog.LevelWarn, "target ejected",
		slog.String("pool", p.Name), slog.String("target", t.Addr),
		slog.String("reason", fmt.Sprintf("%s; ejected for %s (ejection %d)", why, d, n)),
		slog.String("cause", string(last)), slog.Duration("duration", d), slog.Int64("ejection", n))
	if p.metrics != nil {
		p.metrics.ObserveEjection(p.Name, t.Addr, last)
		p.metrics.ObserveStateChange(p.Name, t.Addr, stateEjected)
	}
	p.setUp(t)
	p.schedule(until, now)
	p.recount()
}

// maxEjected returns how many targets may be ejected at once: the pool's
// size times MaxEjectedPercent, rounded up. This is Envoy's rule (a target
// may be ejected while fewer than max_ejection_percent of the targets are):
// with the default 50%, one of two targets, two of three, two of four. A
// pool of one target never ejects it: there is nothing to send its
// requests to, and panic mode would send them to it anyway.
func (p *Pool) maxEjected() int {
	n := len(p.Targets)
	if n < 2 {
		return 0
	}
	return (n*p.maxEjectedPct + 99) / 100
}

// restoreDue ends the ejections whose time is over at now. Called with
// p.mu held.
func (p *Pool) restoreDue(now int64) {
	var next int64
	changed := false
	for _, t := range p.Targets {
		u := t.ejectedUntil.Load()
		if u == 0 {
			continue
		}
		if now < u {
			if next == 0 || u < next {
				next = u
			}
			continue
		}
		t.ejectedUntil.Store(0)
		t.restoredAt.Store(now)
		t.mu.Lock()
		t.connFailures, t.badAnswers = 0, 0
		t.mu.Unlock()
		changed = true
		reason := fmt.Sprintf("ejection of %s ended", t.ejectedFor)
		if t.healthy.Load() {
			p.startRamp(t, now)
		} else {
			reason += "; still unhealthy by active checks"
		}
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "target restored",
			slog.String("pool", p.Name), slog.String("target", t.Addr), slog.String("reason", reason))
		if p.metrics != nil {
			p.metrics.ObserveStateChange(p.Name, t.Addr, stateRestored)
		}
		p.setUp(t)
	}
	p.nextRestore.Store(next)
	if changed {
		p.recount()
	}
}

// SetHealthy records an active health check verdict on t (one of
// p.Targets; any other target is ignored), with the reason for the log.
// An unhealthy target receives no requests, except in panic mode, until it
// is healthy again; then it ramps up by slow start unless it is ejected.
// Each change is logged and counted; a verdict that changes nothing is
// not.
func (p *Pool) SetHealthy(t *Target, healthy bool, reason string) {
	if t == nil || t.pool != p {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now().UnixNano()
	p.restoreDue(now)
	if t.healthy.Load() == healthy {
		return
	}
	t.healthy.Store(healthy)
	level, msg, st := slog.LevelWarn, "target unhealthy", stateUnhealthy
	if healthy {
		level, msg, st = slog.LevelInfo, "target healthy", stateHealthy
		if t.ejectedUntil.Load() == 0 {
			t.restoredAt.Store(now)
			p.startRamp(t, now)
		} else {
			reason += "; still ejected"
		}
	}
	p.log.LogAttrs(context.Background(), level, msg,
		slog.String("pool", p.Name), slog.String("target", t.Addr), slog.String("reason", reason))
	if p.metrics != nil {
		p.metrics.ObserveStateChange(p.Name, t.Addr, st)
	}
	p.setUp(t)
	p.recount()
}

// startRamp starts t's slow start at now, when slow start is on. Called
// with p.mu held.
func (p *Pool) startRamp(t *Target, now int64) {
	if p.slowStart > 0 {
		t.rampFrom.Store(max(now, 1))
	}
}

// setUp records in the metrics whether t may serve.
func (p *Pool) setUp(t *Target) {
	if p.metrics != nil {
		p.metrics.SetTargetUp(p.Name, t.Addr, t.Available())
	}
}

// recount logs the pool's entering or leaving the state where no target
// is healthy and not ejected (panic mode, when it is on). Called with p.mu
// held.
func (p *Pool) recount() {
	down := !p.anyAvailable()
	if down == p.allDown {
		return
	}
	p.allDown = down
	attrs := []slog.Attr{slog.String("pool", p.Name), slog.Int("targets", len(p.Targets))}
	switch {
	case down && p.panicOn:
		p.log.LogAttrs(context.Background(), slog.LevelError, "every target is down: panic mode, requests are spread over every target", attrs...)
	case down:
		p.log.LogAttrs(context.Background(), slog.LevelError, "every target is down: requests fail with no_healthy_upstream (panic mode is off)", attrs...)
	case p.panicOn:
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "a target is up again: panic mode over", attrs...)
	default:
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "a target is up again", attrs...)
	}
}

// schedule arms the pool's timer to restore ejected targets at until (unix
// ns), unless it is armed earlier already. Called with p.mu held.
func (p *Pool) schedule(until, now int64) {
	if p.closed || (p.timerAt != 0 && p.timerAt <= until) {
		return
	}
	p.timerAt = until
	d := time.Duration(until - now)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.onTimer)
		return
	}
	p.timer.Reset(d)
}

// onTimer restores the targets whose ejection is over, so that they are
// logged and counted as up even when no request comes to do it.
func (p *Pool) onTimer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.timerAt = 0
	now := p.now().UnixNano()
	p.restoreDue(now)
	if next := p.nextRestore.Load(); next != 0 {
		p.schedule(next, now)
	}
}

// RetryAfter is how long until a target may serve again, for the
// Retry-After header of a no_healthy_upstream answer: the time until the
// earliest end of an ejection of a target that is healthy by active
// checks, rounded up to a whole second, at least 1s and at most 60s; 5s
// when no return can be foreseen (the down targets are unhealthy by active
// checks, or none is down).
func (p *Pool) RetryAfter() time.Duration {
	now := p.now().UnixNano()
	p.mu.Lock()
	p.restoreDue(now)
	var earliest int64
	for _, t := range p.Targets {
		if u := t.ejectedUntil.Load(); u != 0 && t.healthy.Load() && (earliest == 0 || u < earliest) {
			earliest = u
		}
	}
	p.mu.Unlock()
	if earliest == 0 {
		return retryAfterUnknown
	}
	d := time.Duration(earliest - now)
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(max(d, retryAfterMin), retryAfterMax)
}
