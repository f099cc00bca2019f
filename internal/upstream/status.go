package upstream

import (
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// TargetStatus is a snapshot of one target's state, for the admin API and
// the dashboard.
type TargetStatus struct {
	// Addr is the target's host:port.
	Addr string `json:"addr"`
	// Backup reports a backup target.
	Backup bool `json:"backup"`
	// Healthy is the active health checks' verdict; true when the pool has
	// no health checks.
	Healthy bool `json:"healthy"`
	// Ejected reports a target ejected by passive outlier detection.
	Ejected bool `json:"ejected"`
	// EjectedUntil is when the ejection ends; zero when not ejected.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Ejections is the target's ejections in a row: the current (or last)
	// ejection lasted BaseEjection times this. It goes back to 0 once the
	// target serves successfully for BaseEjection after returning.
	Ejections int `json:"ejections"`
	// EjectionsTotal is the target's ejections since the pool was built.
	EjectionsTotal int `json:"ejections_total"`
	// Outstanding is the requests in flight to the target.
	Outstanding int64 `json:"outstanding"`
	// EWMA is the target's moving average of latency to the response
	// headers, decayed to now; 0 before the first response.
	EWMA time.Duration `json:"ewma"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// EffectiveWeight is the weight now, lowered during slow start,
	// rounded up.
	EffectiveWeight int `json:"effective_weight"`
	// SlowStart reports a target ramping up after it returned.
	SlowStart bool `json:"slow_start"`
	// LastFailure is the cause of the target's last failure (a 5xx answer
	// is upstream_error_status); empty when it never failed.
	LastFailure cause.ID `json:"last_failure,omitempty"`
	// LastFailureAt is when the last failure happened.
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
	// LearnedIdle is the target's keep-alive idle timeout as learned; 0
	// while unknown.
	LearnedIdle time.Duration `json:"learned_idle"`
}

// Status returns a snapshot of every target, in config order.
func (p *Pool) Status() []TargetStatus {
	now := p.now().UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restoreDue(now)
	out := make([]TargetStatus, 0, len(p.Targets))
	for _, t := range p.Targets {
		ew := t.effWeight(now, p.slowStart)
		s := TargetStatus{
			Addr:            t.Addr,
			Backup:          t.Backup,
			Healthy:         t.healthy.Load(),
			Ejections:       int(t.streak.Load()),
			EjectionsTotal:  t.ejections,
			Outstanding:     t.outstanding.Load(),
			Weight:          t.Weight,
			EffectiveWeight: int((ew + 999) / 1000),
			SlowStart:       ew < int64(t.Weight)*1000,
		}
		if u := t.ejectedUntil.Load(); u != 0 {
			s.Ejected, s.EjectedUntil = true, time.Unix(0, u)
		}
		if l, ok := t.latency(now); ok {
			s.EWMA = time.Duration(l)
		}
		if t.Idle != nil {
			s.LearnedIdle = t.Idle.Learned()
		}
		t.mu.Lock()
		s.LastFailure, s.LastFailureAt = t.lastFailure, t.lastFailureAt
		t.mu.Unlock()
		out = append(out, s)
	}
	return out
}
