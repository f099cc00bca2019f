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
)

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
