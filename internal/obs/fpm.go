package obs

import "github.com/prometheus/client_golang/prometheus"

// FPMStatus is what a PHP-FPM pool's status page (pm.status_path) said,
// as the metrics export it.
type FPMStatus struct {
	// ListenQueue is the connections waiting in the pool's socket queue.
	ListenQueue int64
	// MaxListenQueue is the most that ever waited there.
	MaxListenQueue int64
	// IdleProcesses, ActiveProcesses and TotalProcesses count the
	// pool's workers.
	IdleProcesses, ActiveProcesses, TotalProcesses int64
	// MaxChildrenReached counts the times pm.max_children stopped the
	// pool from starting a worker, since the pool started.
	MaxChildrenReached uint64
	// SlowRequests counts the requests past request_slowlog_timeout.
	SlowRequests uint64
	// AcceptedConn counts the requests the pool accepted.
	AcceptedConn uint64
}

// fpmMetrics are the gauges of the PHP-FPM status page poll, by pool and
// target.
type fpmMetrics struct {
	up, saturated, listenQueue, maxListenQueue            *prometheus.GaugeVec
	idle, active, total, maxChildren, slow, acceptedConns *prometheus.GaugeVec
}

func newFPMMetrics() *fpmMetrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"pool", "target"})
	}
	return &fpmMetrics{
		up:             g("gatewise_fpm_up", "1 when the last read of a PHP-FPM target's status page succeeded, else 0."),
		saturated:      g("gatewise_fpm_saturated", "1 when a PHP-FPM target had no idle worker and connections queued, or could not answer its status page in time (fpm_pool_exhausted), else 0."),
		listenQueue:    g("gatewise_fpm_listen_queue", "Connections waiting in a PHP-FPM pool's listen queue at the last read of its status page."),
		maxListenQueue: g("gatewise_fpm_max_listen_queue", "The most connections that ever waited in a PHP-FPM pool's listen queue."),
		idle:           g("gatewise_fpm_idle_processes", "PHP-FPM workers waiting for a request at the last read of the status page."),
		active:         g("gatewise_fpm_active_processes", "PHP-FPM workers serving a request (or holding a kept connection) at the last read of the status page."),
		total:          g("gatewise_fpm_total_processes", "PHP-FPM workers in all at the last read of the status page."),
		maxChildren:    g("gatewise_fpm_max_children_reached", "Times pm.max_children stopped a PHP-FPM pool from starting a worker since the pool started (a counter kept by PHP-FPM)."),
		slow:           g("gatewise_fpm_slow_requests", "Requests past request_slowlog_timeout since the PHP-FPM pool started (a counter kept by PHP-FPM)."),
		acceptedConns:  g("gatewise_fpm_accepted_connections", "Requests accepted since the PHP-FPM pool started (a counter kept by PHP-FPM)."),
	}
}

func (f *fpmMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.up, f.saturated, f.listenQueue, f.maxListenQueue, f.idle, f.active, f.total, f.maxChildren, f.slow, f.acceptedConns}
}

// SetFPMStatus records a PHP-FPM target's status page as read.
func (m *Metrics) SetFPMStatus(pool, target string, s FPMStatus) {
	f := m.fpm
	f.listenQueue.WithLabelValues(pool, target).Set(float64(s.ListenQueue))
	f.maxListenQueue.WithLabelValues(pool, target).Set(float64(s.MaxListenQueue))
	f.idle.WithLabelValues(pool, target).Set(float64(s.IdleProcesses))
	f.active.WithLabelValues(pool, target).Set(float64(s.ActiveProcesses))
	f.total.WithLabelValues(pool, target).Set(float64(s.TotalProcesses))
	f.maxChildren.WithLabelValues(pool, target).Set(float64(s.MaxChildrenReached))
	f.slow.WithLabelValues(pool, target).Set(float64(s.SlowRequests))
	f.acceptedConns.WithLabelValues(pool, target).Set(float64(s.AcceptedConn))
}

// SetFPMHealth records whether a PHP-FPM target's status page could be
// read (up) and whether the pool was saturated.
func (m *Metrics) SetFPMHealth(pool, target string, up, saturated bool) {
	m.fpm.up.WithLabelValues(pool, target).Set(b2f(up))
	m.fpm.saturated.WithLabelValues(pool, target).Set(b2f(saturated))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
