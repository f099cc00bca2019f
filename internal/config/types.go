// Package config holds gatewise's configuration: the structs that a
// gatewise.yaml file decodes into, their defaults, and validation whose
// errors name the file, the line and the field.
package config

import (
	"time"
)

// Config is the whole configuration of `gatewise serve`.
type Config struct {
	// Listeners are the public addresses the gateway accepts visitors on.
	// At least one is required.
	Listeners []Listener `yaml:"listeners"`
	// Admin is the admin listener (metrics, health, dashboard). Default:
	// 127.0.0.1:9090.
	Admin Admin `yaml:"admin"`
	// AccessLog is where the JSON access log goes: "stdout" (the default),
	// "stderr", "off", or a file path (opened for append).
	AccessLog string `yaml:"access_log"`
	// AccessLogBuffer is how many bytes of access log lines are held in
	// memory and written together, as nginx's access_log buffer=: a write
	// per batch of lines rather than per request. Lines wait at most
	// AccessLogFlush, and are written at a reload and at shutdown; a crash
	// loses what is held. 0 writes each line at once. Default: 64KiB for
	// a file, 0 for stdout and stderr (where people watch lines come).
	AccessLogBuffer ByteSize `yaml:"access_log_buffer"`
	// AccessLogFlush is the longest a line waits in AccessLogBuffer
	// before it is written. Default: 1s.
	AccessLogFlush Duration `yaml:"access_log_flush"`
	// ErrorPages controls the pages the gateway answers failures with.
	ErrorPages ErrorPages `yaml:"error_pages"`
	// Forwarding controls the forwarding headers sent upstream.
	Forwarding Forwarding `yaml:"forwarding"`
	// Pools are the named upstream pools that routes send requests to.
	Pools map[string]*Pool `yaml:"pools"`
	// Routes map a request's host and path prefix to a pool. The most
	// specific route wins, whatever the order: an exact host before a
	// wildcard host before any host, then the longest path prefix. When
	// empty and there is exactly one pool, every request goes to it.
	Routes []Route `yaml:"routes"`
	// ShutdownTimeout is how long in-flight requests may take to finish
	// after SIGTERM or SIGINT. Default: 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Limits bound what visitors may send.
	Limits Limits `yaml:"limits"`
	// RateLimit is the rate limit of every route that sets none.
	// Default: none.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Dependencies are the services the upstreams depend on, for
	// `gatewise doctor` to check (the gateway itself does not use them).
	// Default: none.
	Dependencies Dependencies `yaml:"dependencies"`

	// File is the path the config was read from; empty for a config built
	// from flags. Not read from YAML.
	File string `yaml:"-"`

	// src remembers where each field was written and which fields were
	// written at all, so that defaults fill only what is missing and
	// Validate can cite lines. Nil for a config built from flags.
	src *source
}

// Dependencies lists the services behind the upstreams that `gatewise
// doctor` checks, as its --mysql, --memcached, --redis and --fpm flags do
// (the flags add to these).
type Dependencies struct {
	// MySQL lists MySQL or MariaDB servers: host:port, a socket path,
	// mysql://user:pass@host:port/db or user:pass@tcp(host:port)/db.
	// Default: none.
	MySQL []string `yaml:"mysql"`
	// Memcached lists Memcached servers: host:port or a socket path.
	// Default: none.
	Memcached []string `yaml:"memcached"`
	// Redis lists Redis servers: host:port, a socket path or
	// redis://:pass@host:port. Default: none.
	Redis []string `yaml:"redis"`
	// FPM lists PHP-FPM pools whose status page to read: host:port, a
	// socket path, fastcgi://host:port or fastcgi+unix:///path. Default:
	// none (pools with fastcgi.status_path are read anyway).
	FPM []string `yaml:"fpm"`
}

// Listener is one public address.
type Listener struct {
	// Address is host:port to listen on, such as "0.0.0.0:443". Required.
	Address string `yaml:"address"`
	// TLS, when set, serves HTTPS with the given certificate; HTTP/2 is
	// offered by ALPN. Default: plain HTTP/1.1 (and h2c is not offered).
	TLS *ListenerTLS `yaml:"tls"`
}

// ListenerTLS names a certificate and key in PEM files.
type ListenerTLS struct {
	// Cert is the path of the PEM certificate chain. Required.
	Cert string `yaml:"cert"`
	// Key is the path of the PEM private key. Required.
	Key string `yaml:"key"`
}

// Admin is the admin listener.
type Admin struct {
	// Address is host:port of the admin listener. Default: 127.0.0.1:9090.
	// "off" disables it. A non-loopback address is refused unless
	// AllowRemote is set.
	Address string `yaml:"address"`
	// AllowRemote permits a non-loopback admin address. Default: false.
	AllowRemote bool `yaml:"allow_remote"`
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// the admin listener, to profile the gateway under load. Default:
	// false.
	Pprof bool `yaml:"pprof"`
}

// ErrorPages controls the gateway's own error responses.
type ErrorPages struct {
	// Templates is a directory whose page.html, problem.json and page.txt
	// replace the built-in templates. Default: the built-in ones.
	Templates string `yaml:"templates"`
	// ShowDetailsTo lists client networks (CIDR) that see the internal
	// detail of a failure (upstream address, raw error) on the page.
	// Default: none.
	ShowDetailsTo []string `yaml:"show_details_to"`
}

// Forwarding controls the headers that tell the upstream who the visitor is.
type Forwarding struct {
	// XForwarded sends X-Forwarded-For, -Proto and -Host. Default: true.
	XForwarded *bool `yaml:"x_forwarded"`
	// Forwarded sends the RFC 7239 Forwarded header. Default: false.
	Forwarded *bool `yaml:"forwarded"`
	// Via adds "1.1 gatewise" to the Via header of requests and responses.
	// Default: true.
	Via *bool `yaml:"via"`
	// TrustedProxies lists networks (CIDR) whose X-Forwarded-For and
	// Forwarded headers are kept and appended to; from anyone else they
	// are replaced. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Limits bounds what visitors may send and what upstreams may answer.
type Limits struct {
	// RequestHeaderBytes is the largest request header section accepted.
	// Default: 64KiB.
	RequestHeaderBytes ByteSize `yaml:"request_header_bytes"`
	// ResponseHeaderBytes is the largest response header section accepted
	// from an upstream. Default: 1MiB.
	ResponseHeaderBytes ByteSize `yaml:"response_header_bytes"`
	// ReadHeaderTimeout bounds how long a visitor may take to send the
	// request headers. Default: 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ClientIdleTimeout is how long a visitor's idle keep-alive
	// connection is kept. Default: 75s.
	ClientIdleTimeout Duration `yaml:"client_idle_timeout"`
	// ClientParkAfter is how long a visitor's HTTP/1.x keep-alive
	// connection (plain or TLS) waits for its next request before it is
	// parked, on Linux: its goroutine ends (its stack, about 4 KiB, goes back to the
	// heap) and the request that wakes it costs about 0.1 ms more CPU.
	// 0 never parks. Default: 5s.
	ClientParkAfter Duration `yaml:"client_park_after"`
	// MaxHeaderCount is the most request header fields accepted; more is
	// answered 431. Default: 100.
	MaxHeaderCount int `yaml:"max_header_count"`
	// MaxURIBytes is the longest request target (path and query)
	// accepted; longer is answered 414. Default: 8KiB.
	MaxURIBytes ByteSize `yaml:"max_uri_bytes"`
	// MaxBodyBytes is the largest request body accepted; larger is
	// answered 413 (or the upload is cut when it was not announced).
	// Default: 1GiB; a route may set its own.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// BodyReadTimeout is how long a visitor may send no byte of a request
	// body before the request is dropped (slow POST). Default: 30s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// MaxConnsPerIP is the most connections one client IP may hold open
	// at once; more are closed at once. The forwarding.trusted_proxies
	// (a load balancer or CDN in front) are exempt. Default: 256; 0 means
	// no limit.
	MaxConnsPerIP *int `yaml:"max_conns_per_ip"`
	// MaxConns is the most client connections the gateway holds open at
	// once, over all its listeners together. Default: 10000; 0 means no
	// limit. The gateway warns at start when the open-files limit is
	// below it plus the pools' idle connections plus 64.
	MaxConns *int `yaml:"max_conns"`
	// MemoryLimit stops admitting new requests (503, cause
	// memory_pressure) while the gateway process's resident memory is
	// above this size. Default: 0, meaning 90% of the memory limit of the
	// process's cgroup when there is one, else no process limit.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// MinHostAvailablePercent stops admitting new requests while the
	// host's available memory (MemAvailable, as `free` shows it) is below
	// this share of its total, before the kernel's OOM killer picks a
	// victim. Default: 5; 0 disables it.
	MinHostAvailablePercent *int `yaml:"min_host_available_percent"`
}

// RateLimit is a token bucket: Rate requests per Per, with bursts of up
// to Burst, kept separately for each key.
type RateLimit struct {
	// Rate is the sustained rate, such as "50/s", "600/m" or "10000/h".
	// Required.
	Rate string `yaml:"rate"`
	// Burst is how many requests may come at once above the rate.
	// Default: the rate's count per second, at least 1 (50 for "50/s").
	Burst int `yaml:"burst"`
	// Key is what is counted separately: "client_ip" (the default; the
	// address of the connection, or X-Forwarded-For's last untrusted hop
	// when the connection comes from forwarding.trusted_proxies),
	// "header:NAME", or "route" (one bucket for the whole route).
	Key string `yaml:"key"`
}

// Concurrency bounds the requests in flight to a pool.
type Concurrency struct {
	// MaxInFlight is a fixed limit of requests in flight to the pool.
	// Default: 0, meaning the limit is learned from the pool's latency
	// (adaptive, see Adaptive).
	MaxInFlight int `yaml:"max_in_flight"`
	// Adaptive learns the pool's capacity from its latency (a gradient
	// limit, as Netflix's concurrency-limits) and sheds the excess early,
	// so admitted requests keep their normal latency. Default: true when
	// MaxInFlight is 0.
	Adaptive *bool `yaml:"adaptive"`
	// MinLimit and MaxLimit bound the adaptive limit. Default: 4 and 1000.
	MinLimit int `yaml:"min_limit"`
	// MaxLimit is the adaptive limit's ceiling. Default: 1000.
	MaxLimit int `yaml:"max_limit"`
	// Queue is how many requests may wait for a slot. Default: 100.
	Queue *int `yaml:"queue"`
	// QueueTimeout is the longest a request waits for a slot before it is
	// answered 503 connection_limit_reached. Default: 1s.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// Pool is a named group of upstream targets.
type Pool struct {
	// Targets are the servers of the pool. At least one is required.
	Targets []Target `yaml:"targets"`
	// Timeouts bound each phase of a request to a target.
	Timeouts Timeouts `yaml:"timeouts"`
	// TLS configures connections to https:// targets.
	TLS UpstreamTLS `yaml:"tls"`
	// MaxIdlePerTarget is how many idle keep-alive connections are kept
	// per target. Default: 64.
	MaxIdlePerTarget int `yaml:"max_idle_per_target"`
	// Policy picks a target for each request: "p2c_ewma" (the default:
	// the less loaded of two random targets, by outstanding requests and
	// a moving average of latency), "round_robin" (smooth weighted),
	// "least_requests" (fewest outstanding, weighted) or "hash"
	// (consistent, on HashKey, for stickiness).
	Policy string `yaml:"policy"`
	// HashKey is what policy "hash" hashes: "client_ip", "header:NAME" or
	// "cookie:NAME". Default: "client_ip". A request without the header
	// or cookie falls back to p2c_ewma.
	HashKey string `yaml:"hash_key"`
	// Health configures active health checks. Default: none (targets are
	// judged by live traffic only).
	Health *HealthCheck `yaml:"health"`
	// Outlier configures passive ejection of failing targets from live
	// traffic. On by default.
	Outlier Outlier `yaml:"outlier"`
	// Retry configures safe retries on another target. On by default.
	Retry Retry `yaml:"retry"`
	// SlowStart is how long a new or recovered target takes to ramp up
	// from a small share to its full weight. Default: 10s; 0 disables it.
	SlowStart Duration `yaml:"slow_start"`
	// Panic spreads requests over every target when all of them are
	// unhealthy, rather than failing them all with no_healthy_upstream.
	// Default: true.
	Panic *bool `yaml:"panic"`
	// Concurrency bounds the requests in flight to the pool, learned from
	// its latency by default.
	Concurrency Concurrency `yaml:"concurrency"`
	// LearnIdleTimeout learns each target's keep-alive idle timeout (from
	// its Keep-Alive header and the idle connections it closes) and stops
	// reusing pooled connections shortly before it. Default: true.
	LearnIdleTimeout *bool `yaml:"learn_idle_timeout"`
	// FastCGI configures a pool of PHP-FPM targets (fastcgi:// and
	// fastcgi+unix:// URLs): the document root, the front controller and
	// the status page. Required for such a pool (its root has no
	// default); refused for a pool of http:// targets. Default: none.
	FastCGI *FastCGI `yaml:"fastcgi"`

	// Name is the pool's key in Config.Pools. Not read from YAML.
	Name string `yaml:"-"`
}

// Target is one upstream server.
type Target struct {
	// URL is the target's address with its scheme: http://host:port,
	// https://host:port, or PHP-FPM's fastcgi://host:port or
	// fastcgi+unix:///path/to/socket. Required. A pool's targets are all
	// HTTP or all FastCGI.
	URL string `yaml:"url"`
	// Weight is the target's share of requests relative to the others.
	// Default: 1. Zero is refused; remove the target instead.
	Weight int `yaml:"weight"`
	// Backup marks a target that serves only when every primary target
	// is down. Default: false.
	Backup bool `yaml:"backup"`
}

// FastCGI configures how a pool of PHP-FPM targets serves requests: paths
// are mapped onto Root as nginx's usual WordPress and Laravel
// configuration does (try_files $uri $uri/ /index.php?$args): static files
// are served from disk, .php scripts and the front controller run in
// PHP-FPM. See docs/fastcgi.md.
type FastCGI struct {
	// Root is the document root: an absolute path to a directory, the
	// same path PHP-FPM sees (SCRIPT_FILENAME is Root plus the script).
	// Symbolic links are followed on every request. Required.
	Root string `yaml:"root"`
	// Index is the file run (or served) for a directory, and the front
	// controller. Default: "index.php".
	Index string `yaml:"index"`
	// FrontController runs /Index for a path that is neither a file nor
	// a directory, with REQUEST_URI as the visitor sent it (pretty URLs);
	// false answers 404 instead. Default: true.
	FrontController *bool `yaml:"front_controller"`
	// TerminateTimeout is the PHP-FPM pool's request_terminate_timeout,
	// when it sets one: a connection PHP-FPM closes at least this long
	// after the request is php_timeout rather than fpm_worker_crashed.
	// Default: 0, unknown.
	TerminateTimeout Duration `yaml:"terminate_timeout"`
	// MaxConns caps the connections open to each target, busy and idle:
	// requests past it wait in the gateway (within their timeouts) rather
	// than in PHP-FPM's listen queue. Set it to the pool's
	// pm.max_children: every connection then has a worker, kept
	// connections are reused instead of closed while another waits, and a
	// burst queues where the gateway can see it. Default: 0, no cap.
	MaxConns int `yaml:"max_conns"`
	// MaxIdleConns is how many idle connections to each target are kept
	// for the next request. Each one holds a PHP-FPM worker while it is
	// open: keep it well below pm.max_children. Default: 4; 0 keeps none.
	MaxIdleConns *int `yaml:"max_idle_conns"`
	// IdleTimeout closes a connection idle this long. Default: 15s, and
	// at most half of TerminateTimeout when that is set.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// StatusPath is the PHP-FPM pool's pm.status_path, such as
	// "/fpm-status": when set, each target's status page is read over
	// FastCGI every StatusInterval, exported as metrics, and a saturated
	// or unreachable pool is logged and steers requests away. Default:
	// none (no polling).
	StatusPath string `yaml:"status_path"`
	// StatusInterval is the time between two reads of a target's status
	// page. Default: 5s.
	StatusInterval Duration `yaml:"status_interval"`
	// StatusTimeout bounds one read of the status page; a pool that
	// cannot answer it in time is saturated. Default: 2s.
	StatusTimeout Duration `yaml:"status_timeout"`
	// Params are extra CGI variables sent with every request, like
	// nginx's fastcgi_param; they override the computed ones of the same
	// name. Default: none.
	Params map[string]string `yaml:"params"`
}

// HealthCheck configures active health checks of a pool's targets.
type HealthCheck struct {
	// Path is the HTTP path requested, such as "/healthz". Required
	// unless TCP is set.
	Path string `yaml:"path"`
	// TCP checks only that a connection opens. Default: false.
	TCP bool `yaml:"tcp"`
	// Interval is the time between checks of one target, with up to 10%
	// random jitter. Default: 5s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one check. Default: 2s.
	Timeout Duration `yaml:"timeout"`
	// ExpectStatus lists the statuses that pass, as codes ("200") or
	// classes ("2xx"). Default: ["2xx", "3xx"].
	ExpectStatus []string `yaml:"expect_status"`
	// ExpectBody is a regular expression the body (its first 64 KiB) must
	// match. Default: none.
	ExpectBody string `yaml:"expect_body"`
	// Rise is how many passing checks in a row make a target healthy.
	// Default: 2.
	Rise int `yaml:"rise"`
	// Fall is how many failing checks in a row make a target unhealthy.
	// Default: 3.
	Fall int `yaml:"fall"`
	// Host is the Host header sent. Default: the target's host:port.
	Host string `yaml:"host"`
}

// Outlier configures passive outlier detection: targets that fail live
// requests in a row are ejected for a while.
type Outlier struct {
	// ConsecutiveFailures is how many failures to connect (refused, DNS,
	// TLS, connect timeout) or response timeouts in a row eject a target.
	// Default: 3; 0 disables it.
	ConsecutiveFailures *int `yaml:"consecutive_failures"`
	// Consecutive5xx is how many 5xx answers or broken responses (a
	// connection cut mid-request included) in a row eject a target.
	// Default: 5; 0 disables it.
	Consecutive5xx *int `yaml:"consecutive_5xx"`
	// BaseEjection is the first ejection's length; the Nth ejection in a
	// row lasts N times as long, up to MaxEjection. Default: 10s.
	BaseEjection Duration `yaml:"base_ejection"`
	// MaxEjection caps an ejection's length. Default: 5m.
	MaxEjection Duration `yaml:"max_ejection"`
	// MaxEjectedPercent is the largest share of the pool's targets that
	// may be ejected at once, rounded up as Envoy does (50% of 3 targets
	// is 2); a pool of one target never ejects it. Default: 50.
	MaxEjectedPercent *int `yaml:"max_ejected_percent"`
}

// Retry configures retries of failed attempts on another target. A request
// whose bytes never reached the upstream is retried whatever its method;
// an idempotent one (GET, HEAD, OPTIONS, PUT, DELETE, TRACE, or with an
// Idempotency-Key header) also after a failure before the response
// headers; any other request that may have reached the upstream never is.
type Retry struct {
	// Attempts is the most tries of one request, the first included.
	// Default: 3; 1 disables retries.
	Attempts int `yaml:"attempts"`
	// BudgetPercent caps retries at this share of requests (measured over
	// the last 10 seconds), so an outage does not multiply the load.
	// Default: 20.
	BudgetPercent *int `yaml:"budget_percent"`
	// BudgetMinPerSecond is a floor of retries per second allowed whatever
	// the share, so a quiet pool can still retry. Default: 3.
	BudgetMinPerSecond *int `yaml:"budget_min_per_second"`
	// PerTryTimeout bounds the wait for response headers of each try.
	// Default: 0, meaning timeouts.response_header.
	PerTryTimeout Duration `yaml:"per_try_timeout"`
	// Backoff is the base wait before a retry; each wait is random
	// between half and all of Backoff × 2^(try-1). Default: 10ms.
	Backoff Duration `yaml:"backoff"`
	// ReplayBodyBytes is the largest request body kept for replay; a
	// request with a bigger body is retried only when none of it was
	// sent. Default: 64KiB.
	ReplayBodyBytes ByteSize `yaml:"replay_body_bytes"`
}

// Timeouts bound each phase of a request to an upstream.
type Timeouts struct {
	// Dial bounds establishing the TCP connection. Default: 5s.
	Dial Duration `yaml:"dial"`
	// TLSHandshake bounds the TLS handshake. Default: 5s.
	TLSHandshake Duration `yaml:"tls_handshake"`
	// ResponseHeader bounds the wait for the response headers after the
	// request is written. Default: 30s.
	ResponseHeader Duration `yaml:"response_header"`
	// Idle is how long an idle keep-alive connection to a target is kept.
	// Keep it shorter than the upstream's own keep-alive timeout.
	// Default: 60s.
	Idle Duration `yaml:"idle"`
	// Request bounds the whole exchange, body included. Zero (the
	// default) means no limit, so long downloads and streams work.
	Request Duration `yaml:"request"`
}

// UpstreamTLS configures TLS to https:// targets.
type UpstreamTLS struct {
	// CA is a PEM file of authorities to trust instead of the system's.
	// Default: the system's roots.
	CA string `yaml:"ca"`
	// ServerName overrides the name verified in the certificate and sent
	// in SNI. Default: the target's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns off certificate verification. Default:
	// false. Never use it across an untrusted network.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Route maps requests to a pool.
type Route struct {
	// Name identifies the route in logs and metrics. Default: "HOST PATH".
	Name string `yaml:"name"`
	// Host matches the request's host (port ignored, case-insensitive);
	// "*.example.com" matches any subdomain. Default: any host.
	Host string `yaml:"host"`
	// Path is a path prefix, such as "/api/". Default: "/".
	Path string `yaml:"path"`
	// Pool is the name of the pool serving the route. Required.
	Pool string `yaml:"pool"`
	// Priority is "high" for requests admitted before the rest when the
	// pool sheds load (checkout, login), or "low" for those shed first.
	// Default: "normal".
	Priority string `yaml:"priority"`
	// RateLimit limits the route's requests. Default: the top-level
	// rate_limit, if any.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxBodyBytes overrides limits.max_body_bytes for the route.
	// Default: 0, meaning limits.max_body_bytes.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
}

// Duration is a time.Duration written as a Go duration string ("5s",
// "1m30s") in YAML.
type Duration struct{ time.Duration }

// ByteSize is a size in bytes written as a number with an optional unit
// ("512", "64KiB", "1MiB", "2MB") in YAML.
type ByteSize int64
