package obs

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatewise/gatewise/internal/cause"
)

// Metrics are the gateway's Prometheus metrics. Build them with NewMetrics
// on a registry of the caller's; they are never registered globally.
type Metrics struct {
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamFailures *prometheus.CounterVec
	upstreamAttempts *prometheus.CounterVec
	upstreamTTFB     *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	reloads          *prometheus.CounterVec
	targetHealthy    *prometheus.GaugeVec
	ejections        *prometheus.CounterVec
	panics           *prometheus.CounterVec
	healthChecks     *prometheus.CounterVec
	transitions      *prometheus.CounterVec
	retries          *prometheus.CounterVec
	retriesDenied    *prometheus.CounterVec
	idleTimeout      *prometheus.GaugeVec
	resends          *prometheus.CounterVec
	connsOpened      *prometheus.CounterVec
	connsRejected    *prometheus.CounterVec
	acceptErrors     *prometheus.CounterVec
	fpm              *fpmMetrics
	// codes holds the status codes 100 to 599 as label values, so that
	// counting a request formats none.
	codes [500]string
	// The series each request touches, by their label values: a map
	// lookup instead of the vector's label hashing and checks. No series
	// is ever deleted, so a handle stays valid.
	requestSeries  seriesMap[requestKey, prometheus.Counter]
	durationSeries seriesMap[string, prometheus.Observer]
	attemptSeries  seriesMap[poolTarget, prometheus.Counter]
	ttfbSeries     seriesMap[string, prometheus.Observer]
}

// seriesMap holds a metric's series handles by their labels. A lookup
// reads an immutable map through an atomic pointer, without a lock: the
// requests of every core look their series up at once, and a read lock's
// shared counter would bounce between the cores on each. A missing series
// is added under mu, to a copy of the map: each series is added once, and
// their number is bounded by the routes, pools, targets, status codes and
// causes, so the copies cost little beside the lookups they save.
type seriesMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// get returns the handle under k (made by make when missing).
func (s *seriesMap[K, V]) get(k K, make func() V) V {
	if m := s.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	m := map[K]V{}
	if old != nil {
		m = maps.Clone(*old)
	}
	v := make()
	m[k] = v
	s.m.Store(&m)
	return v
}

type requestKey struct {
	route string
	code  int
	cause cause.ID
}

type poolTarget struct{ pool, target string }

// NewMetrics creates the metrics and registers them on reg. It fails when
// reg already holds metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewise_requests_total",
			Help: "Requests answered, by route, status code and cause (empty when the request did not fail).",
		}, []string{"route", "code", "cause"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatewise_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its response, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		upstreamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewise_upstream_failures_total",
			Help: "Failed attempts to upstream targets, by pool, target and cause.",
		}, []string{"pool", "target", "cause"}),
		upstreamAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewise_upstream_attempts_total",
			Help: "Attempts sent to upstream targets, by pool and target.",
		}, []string{"pool", "target"}),
		upstreamTTFB: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatewise_upstream_first_byte_seconds",
			Help:    "Time from the request written to the first response byte, by pool.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"pool"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatewise_requests_in_flight",
			Help: "Requests being served now.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewise_config_reloads_total",
			Help: "Config reloads by result (ok or invalid).",
		}, []string{"result"}),
	}
	m.targetHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatewise_upstream_target_up",
		Help: "1 when a target may receive requests (healthy and not ejected), else 0, by pool and target.",
	}, []string{"pool", "target"})
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_upstream_ejections_total",
		Help: "Targets ejected by passive outlier detection, by pool, target and the cause of the last failure.",
	}, []string{"pool", "target", "cause"})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_upstream_panic_picks_total",
		Help: "Targets picked in panic mode (every target unhealthy, requests spread over all), by pool.",
	}, []string{"pool"})
	m.healthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_health_checks_total",
		Help: "Active health checks, by pool, target and result (pass, fail, or inconclusive: the gateway's own failure).",
	}, []string{"pool", "target", "result"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_upstream_state_changes_total",
		Help: "Target state changes, by pool, target and new state (healthy, unhealthy, ejected, restored).",
	}, []string{"pool", "target", "state"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_retries_total",
		Help: "Retries made on another target, by pool and the cause of the failed attempt.",
	}, []string{"pool", "cause"})
	m.retriesDenied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_retries_denied_total",
		Help: "Failed attempts not retried, by pool, cause and reason (unsafe, budget, attempts, body, deadline, no_target).",
	}, []string{"pool", "cause", "reason"})
	m.idleTimeout = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatewise_upstream_learned_idle_timeout_seconds",
		Help: "Each target's keep-alive idle timeout as learned by the gateway (0 while unknown).",
	}, []string{"pool", "target"})
	m.resends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_upstream_resends_total",
		Help: "Requests sent again on another connection because the target had closed the pooled keep-alive connection they took (the keep-alive race, met and survived), by pool and target.",
	}, []string{"pool", "target"})
	m.connsOpened = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_upstream_connections_opened_total",
		Help: "Connections opened to targets, by pool and target: the attempts that found no idle keep-alive connection to reuse.",
	}, []string{"pool", "target"})
	m.connsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_connections_rejected_total",
		Help: "Client connections closed at accept for a connection limit, by reason (max_conns or max_conns_per_ip).",
	}, []string{"reason"})
	m.acceptErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatewise_accept_errors_total",
		Help: "Client connections a listener could not accept for want of the gateway's own resources, by cause (file_descriptors_exhausted); they wait in the kernel's queue while the listener retries.",
	}, []string{"cause"})
	collectors := []prometheus.Collector{m.connsRejected, m.acceptErrors, m.requests, m.requestDuration, m.upstreamFailures,
		m.upstreamAttempts, m.upstreamTTFB, m.inFlight, m.reloads, m.targetHealthy, m.ejections,
		m.panics, m.healthChecks, m.transitions, m.retries, m.retriesDenied, m.idleTimeout, m.resends, m.connsOpened}
	m.fpm = newFPMMetrics()
	for _, c := range append(collectors, m.fpm.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for i := range m.codes {
		m.codes[i] = strconv.Itoa(100 + i)
	}
	return m, nil
}

// codeLabel returns code as a label value.
func (m *Metrics) codeLabel(code int) string {
	if i := code - 100; i >= 0 && i < len(m.codes) {
		return m.codes[i]
	}
	return strconv.Itoa(code)
}

// ObserveRequest counts a finished request.
func (m *Metrics) ObserveRequest(route string, code int, id cause.ID, d time.Duration) {
	m.requestSeries.get(requestKey{route: route, code: code, cause: id}, func() prometheus.Counter {
		return m.requests.WithLabelValues(route, m.codeLabel(code), string(id))
	}).Inc()
	m.durationSeries.get(route, func() prometheus.Observer {
		return m.requestDuration.WithLabelValues(route)
	}).Observe(d.Seconds())
}

// ObserveAttempt counts an attempt to target of pool.
func (m *Metrics) ObserveAttempt(pool, target string) {
	m.attemptSeries.get(poolTarget{pool: pool, target: target}, func() prometheus.Counter {
		return m.upstreamAttempts.WithLabelValues(pool, target)
	}).Inc()
}

// ObserveFailure counts a failed attempt to target of pool with cause id.
func (m *Metrics) ObserveFailure(pool, target string, id cause.ID) {
	m.upstreamFailures.WithLabelValues(pool, target, string(id)).Inc()
}

// ObserveFirstByte records the time to first byte of an attempt to pool.
func (m *Metrics) ObserveFirstByte(pool string, d time.Duration) {
	m.ttfbSeries.get(pool, func() prometheus.Observer {
		return m.upstreamTTFB.WithLabelValues(pool)
	}).Observe(d.Seconds())
}

// InFlight returns the gauge of requests being served.
func (m *Metrics) InFlight() prometheus.Gauge { return m.inFlight }

// ObserveReload counts a config reload; ok is false when the new file was
// invalid and the running config was kept.
func (m *Metrics) ObserveReload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		return
	}
	m.reloads.WithLabelValues("invalid").Inc()
}

// SetTargetUp records whether a target may receive requests.
func (m *Metrics) SetTargetUp(pool, target string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.targetHealthy.WithLabelValues(pool, target).Set(v)
}

// ObserveEjection counts an ejection of target, whose last failure had
// cause id.
func (m *Metrics) ObserveEjection(pool, target string, id cause.ID) {
	m.ejections.WithLabelValues(pool, target, string(id)).Inc()
}

// ObservePanicPick counts a target picked in panic mode.
func (m *Metrics) ObservePanicPick(pool string) { m.panics.WithLabelValues(pool).Inc() }

// ObserveHealthCheck counts an active health check's result.
func (m *Metrics) ObserveHealthCheck(pool, target string, pass bool) {
	r := "fail"
	if pass {
		r = "pass"
	}
	m.healthChecks.WithLabelValues(pool, target, r).Inc()
}

// ObserveInconclusiveHealthCheck counts an active health check that
// failed for want of the gateway's own resources (result inconclusive).
func (m *Metrics) ObserveInconclusiveHealthCheck(pool, target string) {
	m.healthChecks.WithLabelValues(pool, target, "inconclusive").Inc()
}

// ObserveStateChange counts a target's change to state (healthy,
// unhealthy, ejected or restored).
func (m *Metrics) ObserveStateChange(pool, target, state string) {
	m.transitions.WithLabelValues(pool, target, state).Inc()
}

// ObserveRetry counts a retry after a failed attempt with cause id.
func (m *Metrics) ObserveRetry(pool string, id cause.ID) {
	m.retries.WithLabelValues(pool, string(id)).Inc()
}

// ObserveRetryDenied counts a failed attempt that was not retried, and why:
// unsafe, budget, attempts, body, deadline or no_target.
func (m *Metrics) ObserveRetryDenied(pool string, id cause.ID, reason string) {
	m.retriesDenied.WithLabelValues(pool, string(id), reason).Inc()
}

// SetLearnedIdleTimeout records a target's learned keep-alive timeout.
func (m *Metrics) SetLearnedIdleTimeout(pool, target string, d time.Duration) {
	m.idleTimeout.WithLabelValues(pool, target).Set(d.Seconds())
}

// ObserveResend counts a request sent again on another connection to
// target of pool, the pooled one having been closed under it.
func (m *Metrics) ObserveResend(pool, target string) { m.resends.WithLabelValues(pool, target).Inc() }

// ObserveConnOpened counts a connection opened to a target for an attempt
// (none idle to reuse).
func (m *Metrics) ObserveConnOpened(pool, target string) {
	m.connsOpened.WithLabelValues(pool, target).Inc()
}

// ObserveConnRejected counts a client connection closed at accept.
func (m *Metrics) ObserveConnRejected(reason string) { m.connsRejected.WithLabelValues(reason).Inc() }

// ObserveAcceptError counts a listener's accept that failed with cause id
// (file_descriptors_exhausted).
func (m *Metrics) ObserveAcceptError(id cause.ID) { m.acceptErrors.WithLabelValues(string(id)).Inc() }
