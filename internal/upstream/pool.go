package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
	"github.com/gatewise/gatewise/internal/obs"
)

// Target is one upstream server of a pool. Its exported fields are set by
// NewPool and never change; its state (outstanding requests, latency,
// health, ejection, slow start) changes through Pool.Pick, Begin and
// Pool.SetHealthy and is read with Pool.Status.
type Target struct {
	// URL is the target's base URL (scheme and host:port). For a PHP-FPM
	// target its host is Addr, which the pool's FastCGITransport looks
	// targets up by.
	URL *url.URL
	// Addr is host:port, the target's name in logs and metrics; for a
	// PHP-FPM target on a unix socket, "unix:" and the socket's path, as
	// nginx names it.
	Addr string
	// Weight is the target's share relative to the pool's other targets.
	// Default: 1.
	Weight int
	// Idle learns the target's keep-alive idle timeout.
	Idle *IdleLearner
	// Backup marks a target that serves only when no primary target may
	// (every primary is unhealthy, ejected or already tried by the
	// request). Default: false.
	Backup bool
	// FastCGI is the target's own transport when it is PHP-FPM (a
	// fastcgi:// or fastcgi+unix:// URL); nil for an HTTP target. The
	// pool's Transport sends requests through it; health checks and the
	// status page poll use it directly.
	FastCGI *fastcgi.Transport

	state
}

// Pool is a named group of targets with its own transport, the state of
// each target, and the policy that picks a target for each request. Its
// methods are safe for concurrent use.
type Pool struct {
	// Name is the pool's name from the config.
	Name string
	// Targets are the pool's servers, in config order.
	Targets []*Target
	// Transport carries requests to the targets: a *Transport (HTTP/1.1,
	// whose dialer is wrapped so the proxy can see how many bytes each
	// connection read) for HTTP targets, a *FastCGITransport for PHP-FPM
	// ones.
	Transport RoundTripper
	// Timeouts are the pool's configured timeouts.
	Timeouts config.Timeouts
	// MaxResponseHeaderBytes is the limit on a response's header section.
	MaxResponseHeaderBytes int64

	settings
	metrics *obs.Metrics
	log     *slog.Logger
	now     func() time.Time

	rrMu    sync.Mutex
	current []int64 // smooth weighted round robin state, one per target

	// mu serializes changes of the targets' health and ejection state
	// (and the timer that restores ejected targets).
	mu          sync.Mutex
	nextRestore atomic.Int64 // unix ns of the earliest end of an ejection; 0: none
	allDown     bool         // no target healthy and not ejected (logged once per change)
	timer       *time.Timer
	timerAt     int64
	closed      bool

	// status polls the PHP-FPM targets' status pages; nil when not
	// configured.
	status *statusPoller
}

// PoolOptions are what a pool needs besides its config.
type PoolOptions struct {
	// Metrics receives the targets' state: up or not, ejections, state
	// changes and panic picks. If nil, no metrics are recorded.
	Metrics *obs.Metrics
	// Logger receives every change of a target's state (unhealthy,
	// healthy, ejected, restored) with its reason, and the pool's entering
	// and leaving panic mode. If nil, they are discarded.
	Logger *slog.Logger
	// Now returns the current time; tests inject a clock. If nil,
	// time.Now.
	Now func() time.Time
}

// NewPool builds a pool from its config. In a config that did not go
// through config.ApplyDefaults, an empty policy or hash key, a nil pointer
// and a zero ejection length take their documented defaults (a zero
// SlowStart stays off). limits gives the response header limit. Every target starts healthy, not
// ejected and at full weight. The pool's connections are opened lazily.
func NewPool(pc *config.Pool, limits config.Limits, opts PoolOptions) (*Pool, error) {
	p := &Pool{Name: pc.Name, Timeouts: pc.Timeouts, MaxResponseHeaderBytes: int64(limits.ResponseHeaderBytes),
		metrics: opts.Metrics, log: opts.Logger, now: opts.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	var err error
	if p.settings, err = newSettings(pc); err != nil {
		return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
	}
	if pc.IsFastCGI() {
		return newFastCGIPool(p, pc, limits)
	}
	for i, tc := range pc.Targets {
		u, err := url.Parse(tc.URL)
		if err != nil {
			return nil, fmt.Errorf("pool %s: target %d: %w", pc.Name, i, err)
		}
		if config.IsFastCGIURL(tc.URL) {
			return nil, fmt.Errorf("pool %s: target %d: %s in a pool of http targets", pc.Name, i, u.Redacted())
		}
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		w := tc.Weight
		if w < 1 {
			w = 1
		}
		t := &Target{URL: &url.URL{Scheme: u.Scheme, Host: host}, Addr: host, Weight: w, Idle: &IdleLearner{}, Backup: tc.Backup}
		t.init(p)
		p.Targets = append(p.Targets, t)
	}
	p.current = make([]int64, len(p.Targets))
	for _, t := range p.Targets {
		p.setUp(t)
	}
	tlsConf, err := clientTLS(pc.TLS)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
	}
	dialer := &net.Dialer{Timeout: pc.Timeouts.Dial.Duration, KeepAlive: 30 * time.Second}
	p.Transport = NewTransport(TransportOptions{
		Dial:                   Dialer(dialer.DialContext, p.idleLearner(pc.LearnIdleTimeout == nil || *pc.LearnIdleTimeout), time.Now),
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    pc.Timeouts.TLSHandshake.Duration,
		ResponseHeaderTimeout:  pc.Timeouts.ResponseHeader.Duration,
		IdleConnTimeout:        pc.Timeouts.Idle.Duration,
		MaxIdleConnsPerHost:    pc.MaxIdlePerTarget, // 0: keep none
		MaxResponseHeaderBytes: int64(limits.ResponseHeaderBytes),
	})
	return p, nil
}

// idleLearner returns the function that finds a target's IdleLearner by
// its address for the dialer; when learning is off it finds none.
func (p *Pool) idleLearner(on bool) func(addr string) *IdleLearner {
	byAddr := make(map[string]*IdleLearner, len(p.Targets))
	for _, t := range p.Targets {
		byAddr[t.Addr] = t.Idle
	}
	return func(addr string) *IdleLearner {
		if !on {
			return nil
		}
		return byAddr[addr]
	}
}

func clientTLS(c config.UpstreamTLS) (*tls.Config, error) {
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the owner's explicit choice, documented as unsafe
		NextProtos:         []string{"http/1.1"},
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: %s holds no PEM certificate", c.CA)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// Close stops the pool's timer and releases its idle connections.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	if p.status != nil {
		p.status.stop()
	}
	p.Transport.Close()
}

// newFastCGIPool completes NewPool for a pool of PHP-FPM targets: a
// fastcgi.Transport per target, and the status page poll when
// fastcgi.status_path is set.
func newFastCGIPool(p *Pool, pc *config.Pool, limits config.Limits) (*Pool, error) {
	if pc.FastCGI == nil {
		return nil, fmt.Errorf("pool %s: fastcgi targets need fastcgi.root", pc.Name)
	}
	ft := &FastCGITransport{byAddr: make(map[string]*fastcgi.Transport, len(pc.Targets)), headerTimeout: pc.Timeouts.ResponseHeader.Duration}
	fail := func(err error) (*Pool, error) {
		ft.Close()
		return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
	}
	for i, tc := range pc.Targets {
		u, err := url.Parse(tc.URL)
		if err != nil {
			return fail(fmt.Errorf("target %d: %w", i, err))
		}
		addr, network, address, err := fastcgiTarget(u)
		if err != nil {
			return fail(fmt.Errorf("target %d: %w", i, err))
		}
		if _, dup := ft.byAddr[addr]; dup {
			return fail(fmt.Errorf("target %d: %s is listed twice", i, addr))
		}
		tr, err := fastcgi.New(fastcgiOptions(pc, limits, network, address, p.log))
		if err != nil {
			return fail(fmt.Errorf("target %d: %w", i, err))
		}
		ft.byAddr[addr] = tr
		t := &Target{URL: &url.URL{Scheme: u.Scheme, Host: addr}, Addr: addr, Weight: max(tc.Weight, 1), Backup: tc.Backup, FastCGI: tr,
			Idle: &IdleLearner{}} // never fed by a dialer; the proxy reads it for every target
		t.init(p)
		p.Targets = append(p.Targets, t)
	}
	p.Transport = ft
	p.current = make([]int64, len(p.Targets))
	for _, t := range p.Targets {
		p.setUp(t)
	}
	if pc.FastCGI.StatusPath != "" {
		p.status = startStatusPoller(p, pc)
	}
	return p, nil
}
