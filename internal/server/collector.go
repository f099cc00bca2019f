package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// loadCollector exports each pool's concurrency limit, requests in flight
// and queued requests, read from the running config's handler at scrape
// time (so a reload never leaves stale series or double registrations).
type loadCollector struct {
	s                      *Server
	limit, inFlight, queue *prometheus.Desc
}

func newLoadCollector(s *Server) *loadCollector {
	return &loadCollector{
		s:        s,
		limit:    prometheus.NewDesc("gatewise_pool_concurrency_limit", "Each pool's current limit of requests in flight (learned, or fixed).", []string{"pool"}, nil),
		inFlight: prometheus.NewDesc("gatewise_pool_in_flight", "Requests in flight to each pool.", []string{"pool"}, nil),
		queue:    prometheus.NewDesc("gatewise_pool_queued", "Requests waiting for a slot of each pool.", []string{"pool"}, nil),
	}
}

// Describe sends the descriptors of the pool load metrics.
func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.inFlight
	ch <- c.queue
}

// Collect sends each pool's current load.
func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	gen := c.s.root.Load()
	if gen == nil {
		return
	}
	for pool, l := range gen.proxy.Load() {
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(l.Limit), pool)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(l.InFlight), pool)
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(l.Queued), pool)
	}
}
