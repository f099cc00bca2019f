package config

import (
	"strconv"
	"time"
)

// Defaults, as documented on the fields of Config and what it holds.
const (
	// DefaultAdminAddress is Admin.Address when not set.
	DefaultAdminAddress = "127.0.0.1:9090"
	// DefaultAccessLog is Config.AccessLog when not set.
	DefaultAccessLog = "stdout"
	// DefaultAccessLogFileBuffer is Config.AccessLogBuffer when not set
	// and the access log is a file; for stdout and stderr it is 0.
	DefaultAccessLogFileBuffer ByteSize = 64 << 10
	// DefaultAccessLogFlush is Config.AccessLogFlush when not set.
	DefaultAccessLogFlush = time.Second
	// DefaultShutdownTimeout is Config.ShutdownTimeout when not set.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultXForwarded is Forwarding.XForwarded when not set.
	DefaultXForwarded = true
	// DefaultForwarded is Forwarding.Forwarded when not set.
	DefaultForwarded = false
	// DefaultVia is Forwarding.Via when not set.
	DefaultVia = true
	// DefaultRequestHeaderBytes is Limits.RequestHeaderBytes when not set.
	DefaultRequestHeaderBytes ByteSize = 64 << 10
	// DefaultResponseHeaderBytes is Limits.ResponseHeaderBytes when not set.
	DefaultResponseHeaderBytes ByteSize = 1 << 20
	// DefaultReadHeaderTimeout is Limits.ReadHeaderTimeout when not set.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultClientIdleTimeout is Limits.ClientIdleTimeout when not set.
	DefaultClientIdleTimeout = 75 * time.Second
	// DefaultClientParkAfter is Limits.ClientParkAfter when not set.
	DefaultClientParkAfter = 5 * time.Second
	// DefaultDialTimeout is Timeouts.Dial when not set.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout is Timeouts.TLSHandshake when not set.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout is Timeouts.ResponseHeader when not set.
	DefaultResponseHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout is Timeouts.Idle when not set.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultRequestTimeout is Timeouts.Request when not set: no limit.
	DefaultRequestTimeout = 0
	// DefaultMaxIdlePerTarget is Pool.MaxIdlePerTarget when not set.
	DefaultMaxIdlePerTarget = 64
	// DefaultWeight is Target.Weight when not set.
	DefaultWeight = 1
	// DefaultRoutePath is Route.Path when not set.
	DefaultRoutePath = "/"
	// DefaultPolicy is Pool.Policy when not set.
	DefaultPolicy = "p2c_ewma"
	// DefaultHashKey is Pool.HashKey when not set.
	DefaultHashKey = "client_ip"
	// DefaultSlowStart is Pool.SlowStart when not set.
	DefaultSlowStart = 10 * time.Second
	// DefaultPanic is Pool.Panic when not set.
	DefaultPanic = true
	// DefaultLearnIdleTimeout is Pool.LearnIdleTimeout when not set.
	DefaultLearnIdleTimeout = true
	// DefaultHealthInterval is HealthCheck.Interval when not set.
	DefaultHealthInterval = 5 * time.Second
	// DefaultHealthTimeout is HealthCheck.Timeout when not set.
	DefaultHealthTimeout = 2 * time.Second
	// DefaultHealthRise is HealthCheck.Rise when not set.
	DefaultHealthRise = 2
	// DefaultHealthFall is HealthCheck.Fall when not set.
	DefaultHealthFall = 3
	// DefaultConsecutiveFailures is Outlier.ConsecutiveFailures when not set.
	DefaultConsecutiveFailures = 3
	// DefaultConsecutive5xx is Outlier.Consecutive5xx when not set.
	DefaultConsecutive5xx = 5
	// DefaultBaseEjection is Outlier.BaseEjection when not set.
	DefaultBaseEjection = 10 * time.Second
	// DefaultMaxEjection is Outlier.MaxEjection when not set.
	DefaultMaxEjection = 5 * time.Minute
	// DefaultMaxEjectedPercent is Outlier.MaxEjectedPercent when not set.
	DefaultMaxEjectedPercent = 50
	// DefaultRetryAttempts is Retry.Attempts when not set.
	DefaultRetryAttempts = 3
	// DefaultRetryBudgetPercent is Retry.BudgetPercent when not set.
	DefaultRetryBudgetPercent = 20
	// DefaultRetryBudgetMinPerSecond is Retry.BudgetMinPerSecond when not set.
	DefaultRetryBudgetMinPerSecond = 3
	// DefaultRetryBackoff is Retry.Backoff when not set.
	DefaultRetryBackoff = 10 * time.Millisecond
	// DefaultReplayBodyBytes is Retry.ReplayBodyBytes when not set.
	DefaultReplayBodyBytes ByteSize = 64 << 10
	// DefaultMaxHeaderCount is Limits.MaxHeaderCount when not set.
	DefaultMaxHeaderCount = 100
	// DefaultMaxURIBytes is Limits.MaxURIBytes when not set.
	DefaultMaxURIBytes ByteSize = 8 << 10
	// DefaultMaxBodyBytes is Limits.MaxBodyBytes when not set.
	DefaultMaxBodyBytes ByteSize = 1 << 30
	// DefaultBodyReadTimeout is Limits.BodyReadTimeout when not set.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultMaxConnsPerIP is Limits.MaxConnsPerIP when not set.
	DefaultMaxConnsPerIP = 256
	// DefaultMaxConns is Limits.MaxConns when not set.
	DefaultMaxConns = 10000
	// DefaultMinHostAvailablePercent is Limits.MinHostAvailablePercent when not set.
	DefaultMinHostAvailablePercent = 5
	// DefaultRateLimitKey is RateLimit.Key when not set.
	DefaultRateLimitKey = "client_ip"
	// DefaultRoutePriority is Route.Priority when not set.
	DefaultRoutePriority = "normal"
	// DefaultConcurrencyMinLimit is Concurrency.MinLimit when not set.
	DefaultConcurrencyMinLimit = 4
	// DefaultConcurrencyMaxLimit is Concurrency.MaxLimit when not set.
	DefaultConcurrencyMaxLimit = 1000
	// DefaultConcurrencyQueue is Concurrency.Queue when not set.
	DefaultConcurrencyQueue = 1000
	// DefaultQueueTimeout is Concurrency.QueueTimeout when not set.
	DefaultQueueTimeout = time.Second
	// DefaultFastCGIIndex is FastCGI.Index when not set.
	DefaultFastCGIIndex = "index.php"
	// DefaultFastCGIFrontController is FastCGI.FrontController when not set.
	DefaultFastCGIFrontController = true
	// DefaultFastCGIMaxIdleConns is FastCGI.MaxIdleConns when not set.
	DefaultFastCGIMaxIdleConns = 4
	// DefaultFastCGIIdleTimeout is FastCGI.IdleTimeout when not set.
	DefaultFastCGIIdleTimeout = 15 * time.Second
	// DefaultFastCGIStatusInterval is FastCGI.StatusInterval when not set.
	DefaultFastCGIStatusInterval = 5 * time.Second
	// DefaultFastCGIStatusTimeout is FastCGI.StatusTimeout when not set.
	DefaultFastCGIStatusTimeout = 2 * time.Second
)

// DefaultExpectStatus is HealthCheck.ExpectStatus when not set.
func DefaultExpectStatus() []string { return []string{"2xx", "3xx"} }

// ApplyDefaults fills every field that was not set with its documented
// default (see the Default constants). A field is "not set" when it has
// its zero value and, for a config from Parse, was not written in the
// file: a zero written explicitly, such as "weight: 0", is kept so that
// Validate can refuse it. It also sets each Pool.Name from its key and
// replaces a nil *Pool with an empty one. It is idempotent.
func (c *Config) ApplyDefaults() {
	if c.Admin.Address == "" && !c.isSet("admin.address") {
		c.Admin.Address = DefaultAdminAddress
	}
	if c.AccessLog == "" && !c.isSet("access_log") {
		c.AccessLog = DefaultAccessLog
	}
	if c.AccessLogBuffer == 0 && !c.isSet("access_log_buffer") {
		switch c.AccessLog {
		case "stdout", "stderr", "off", "":
		default:
			c.AccessLogBuffer = DefaultAccessLogFileBuffer
		}
	}
	c.setDuration(&c.AccessLogFlush, "access_log_flush", DefaultAccessLogFlush)
	c.setDuration(&c.ShutdownTimeout, "shutdown_timeout", DefaultShutdownTimeout)
	c.Forwarding.XForwarded = boolOr(c.Forwarding.XForwarded, DefaultXForwarded)
	c.Forwarding.Forwarded = boolOr(c.Forwarding.Forwarded, DefaultForwarded)
	c.Forwarding.Via = boolOr(c.Forwarding.Via, DefaultVia)

	if c.Limits.RequestHeaderBytes == 0 && !c.isSet("limits.request_header_bytes") {
		c.Limits.RequestHeaderBytes = DefaultRequestHeaderBytes
	}
	if c.Limits.ResponseHeaderBytes == 0 && !c.isSet("limits.response_header_bytes") {
		c.Limits.ResponseHeaderBytes = DefaultResponseHeaderBytes
	}
	c.setDuration(&c.Limits.ReadHeaderTimeout, "limits.read_header_timeout", DefaultReadHeaderTimeout)
	c.setDuration(&c.Limits.ClientIdleTimeout, "limits.client_idle_timeout", DefaultClientIdleTimeout)
	c.setDuration(&c.Limits.ClientParkAfter, "limits.client_park_after", DefaultClientParkAfter)
	c.abuseDefaults()
	if c.RateLimit != nil {
		rateLimitDefaults(c.RateLimit)
	}

	for name, p := range c.Pools {
		if p == nil {
			p = &Pool{}
			c.Pools[name] = p
		}
		if p.Name == "" {
			p.Name = name
		}
		pp := "pools." + name
		t := &p.Timeouts
		c.setDuration(&t.Dial, pp+".timeouts.dial", DefaultDialTimeout)
		c.setDuration(&t.TLSHandshake, pp+".timeouts.tls_handshake", DefaultTLSHandshakeTimeout)
		c.setDuration(&t.ResponseHeader, pp+".timeouts.response_header", DefaultResponseHeaderTimeout)
		c.setDuration(&t.Idle, pp+".timeouts.idle", DefaultIdleTimeout)
		c.setDuration(&t.Request, pp+".timeouts.request", DefaultRequestTimeout)
		if p.MaxIdlePerTarget == 0 && !c.isSet(pp+".max_idle_per_target") {
			p.MaxIdlePerTarget = DefaultMaxIdlePerTarget
		}
		c.poolDefaults(p, pp)
		for i := range p.Targets {
			if p.Targets[i].Weight == 0 && !c.isSet(pp+".targets["+strconv.Itoa(i)+"].weight") {
				p.Targets[i].Weight = DefaultWeight
			}
		}
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Path == "" && !c.isSet("routes["+strconv.Itoa(i)+"].path") {
			r.Path = DefaultRoutePath
		}
		if r.Name == "" {
			r.Name = DefaultRouteName(r.Host, r.Path)
		}
		if r.Priority == "" {
			r.Priority = DefaultRoutePriority
		}
		if r.RateLimit != nil {
			rateLimitDefaults(r.RateLimit)
		}
	}
}

// DefaultRouteName is Route.Name when not set: "HOST PATH", with "*" for
// the host when the route matches any host, such as "api.example.com /"
// or "* /static/".
func DefaultRouteName(host, path string) string {
	if host == "" {
		host = "*"
	}
	return host + " " + path
}

// setDuration sets *d to def when it is zero and field was not set.
func (c *Config) setDuration(d *Duration, field string, def time.Duration) {
	if d.Duration == 0 && !c.isSet(field) {
		d.Duration = def
	}
}

// boolOr returns b, or a new pointer to def when b is nil.
func boolOr(b *bool, def bool) *bool {
	if b != nil {
		return b
	}
	return &def
}

// poolDefaults fills the defaults of a pool's selection, health, outlier
// and retry settings; pp is the pool's field path.
func (c *Config) poolDefaults(p *Pool, pp string) {
	if p.Policy == "" && !c.isSet(pp+".policy") {
		p.Policy = DefaultPolicy
	}
	if p.HashKey == "" && !c.isSet(pp+".hash_key") {
		p.HashKey = DefaultHashKey
	}
	c.setDuration(&p.SlowStart, pp+".slow_start", DefaultSlowStart)
	p.Panic = boolOr(p.Panic, DefaultPanic)
	p.LearnIdleTimeout = boolOr(p.LearnIdleTimeout, DefaultLearnIdleTimeout)
	if h := p.Health; h != nil {
		hp := pp + ".health"
		c.setDuration(&h.Interval, hp+".interval", DefaultHealthInterval)
		c.setDuration(&h.Timeout, hp+".timeout", DefaultHealthTimeout)
		if h.ExpectStatus == nil && !c.isSet(hp+".expect_status") {
			h.ExpectStatus = DefaultExpectStatus()
		}
		if h.Rise == 0 && !c.isSet(hp+".rise") {
			h.Rise = DefaultHealthRise
		}
		if h.Fall == 0 && !c.isSet(hp+".fall") {
			h.Fall = DefaultHealthFall
		}
	}
	if f := p.FastCGI; f != nil {
		fp := pp + ".fastcgi"
		if f.Index == "" && !c.isSet(fp+".index") {
			f.Index = DefaultFastCGIIndex
		}
		f.FrontController = boolOr(f.FrontController, DefaultFastCGIFrontController)
		f.MaxIdleConns = intOr(f.MaxIdleConns, DefaultFastCGIMaxIdleConns)
		c.setDuration(&f.IdleTimeout, fp+".idle_timeout", DefaultFastCGIIdleTimeout)
		c.setDuration(&f.StatusInterval, fp+".status_interval", DefaultFastCGIStatusInterval)
		c.setDuration(&f.StatusTimeout, fp+".status_timeout", DefaultFastCGIStatusTimeout)
	}
	o := &p.Outlier
	o.ConsecutiveFailures = intOr(o.ConsecutiveFailures, DefaultConsecutiveFailures)
	o.Consecutive5xx = intOr(o.Consecutive5xx, DefaultConsecutive5xx)
	c.setDuration(&o.BaseEjection, pp+".outlier.base_ejection", DefaultBaseEjection)
	c.setDuration(&o.MaxEjection, pp+".outlier.max_ejection", DefaultMaxEjection)
	o.MaxEjectedPercent = intOr(o.MaxEjectedPercent, DefaultMaxEjectedPercent)
	cc := &p.Concurrency
	if cc.Adaptive == nil {
		cc.Adaptive = boolOr(nil, cc.MaxInFlight == 0)
	}
	if cc.MinLimit == 0 && !c.isSet(pp+".concurrency.min_limit") {
		cc.MinLimit = DefaultConcurrencyMinLimit
	}
	if cc.MaxLimit == 0 && !c.isSet(pp+".concurrency.max_limit") {
		cc.MaxLimit = DefaultConcurrencyMaxLimit
	}
	cc.Queue = intOr(cc.Queue, DefaultConcurrencyQueue)
	c.setDuration(&cc.QueueTimeout, pp+".concurrency.queue_timeout", DefaultQueueTimeout)
	r := &p.Retry
	if r.Attempts == 0 && !c.isSet(pp+".retry.attempts") {
		r.Attempts = DefaultRetryAttempts
	}
	r.BudgetPercent = intOr(r.BudgetPercent, DefaultRetryBudgetPercent)
	r.BudgetMinPerSecond = intOr(r.BudgetMinPerSecond, DefaultRetryBudgetMinPerSecond)
	c.setDuration(&r.Backoff, pp+".retry.backoff", DefaultRetryBackoff)
	if r.ReplayBodyBytes == 0 && !c.isSet(pp+".retry.replay_body_bytes") {
		r.ReplayBodyBytes = DefaultReplayBodyBytes
	}
}

// intOr returns i, or a new pointer to def when i is nil.
func intOr(i *int, def int) *int {
	if i != nil {
		return i
	}
	return &def
}

// abuseDefaults fills the defaults of the limits on what visitors send.
func (c *Config) abuseDefaults() {
	l := &c.Limits
	if l.MaxHeaderCount == 0 && !c.isSet("limits.max_header_count") {
		l.MaxHeaderCount = DefaultMaxHeaderCount
	}
	if l.MaxURIBytes == 0 && !c.isSet("limits.max_uri_bytes") {
		l.MaxURIBytes = DefaultMaxURIBytes
	}
	if l.MaxBodyBytes == 0 && !c.isSet("limits.max_body_bytes") {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.setDuration(&l.BodyReadTimeout, "limits.body_read_timeout", DefaultBodyReadTimeout)
	l.MaxConnsPerIP = intOr(l.MaxConnsPerIP, DefaultMaxConnsPerIP)
	l.MaxConns = intOr(l.MaxConns, DefaultMaxConns)
	l.MinHostAvailablePercent = intOr(l.MinHostAvailablePercent, DefaultMinHostAvailablePercent)
}

// rateLimitDefaults fills a rate limit's key and burst; the burst defaults
// to the rate's count per second (at least 1), so it needs a valid rate.
func rateLimitDefaults(r *RateLimit) {
	if r.Key == "" {
		r.Key = DefaultRateLimitKey
	}
	if r.Burst == 0 {
		if perSecond, err := ParseRate(r.Rate); err == nil {
			r.Burst = max(1, int(perSecond+0.5))
		}
	}
}
