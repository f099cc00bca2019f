package obs

import (
	"strconv"
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
}

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
	for _, c := range []prometheus.Collector{m.requests, m.requestDuration, m.upstreamFailures,
		m.upstreamAttempts, m.upstreamTTFB, m.inFlight, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRequest counts a finished request.
func (m *Metrics) ObserveRequest(route string, code int, id cause.ID, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code), string(id)).Inc()
	m.requestDuration.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveAttempt counts an attempt to target of pool.
func (m *Metrics) ObserveAttempt(pool, target string) {
	m.upstreamAttempts.WithLabelValues(pool, target).Inc()
}

// ObserveFailure counts a failed attempt to target of pool with cause id.
func (m *Metrics) ObserveFailure(pool, target string, id cause.ID) {
	m.upstreamFailures.WithLabelValues(pool, target, string(id)).Inc()
}

// ObserveFirstByte records the time to first byte of an attempt to pool.
func (m *Metrics) ObserveFirstByte(pool string, d time.Duration) {
	m.upstreamTTFB.WithLabelValues(pool).Observe(d.Seconds())
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
