// Package upstream holds the pools of upstream targets: each target's
// address and weight, the choice of a target for a request, and the HTTP
// transport that keeps connections to them.
package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// Target is one upstream server of a pool.
type Target struct {
	// URL is the target's base URL (scheme and host:port).
	URL *url.URL
	// Addr is host:port, the target's name in logs and metrics.
	Addr string
	// Weight is the target's share relative to the pool's other targets.
	Weight int
	// Idle learns the target's keep-alive idle timeout.
	Idle *IdleLearner
}

// Pool is a named group of targets with its own transport.
type Pool struct {
	// Name is the pool's name from the config.
	Name string
	// Targets are the pool's servers, in config order.
	Targets []*Target
	// Transport carries requests to the targets; its dialer is wrapped so
	// the proxy can see how many bytes each connection read.
	Transport *http.Transport
	// Timeouts are the pool's configured timeouts.
	Timeouts config.Timeouts
	// MaxResponseHeaderBytes is the limit on a response's header section.
	MaxResponseHeaderBytes int64

	mu      sync.Mutex
	current []int // smooth weighted round robin state, one per target
}

// NewPool builds a pool from its config. limits gives the response header
// limit. The pool's connections are opened lazily.
func NewPool(pc *config.Pool, limits config.Limits) (*Pool, error) {
	p := &Pool{Name: pc.Name, Timeouts: pc.Timeouts, MaxResponseHeaderBytes: int64(limits.ResponseHeaderBytes)}
	for i, tc := range pc.Targets {
		u, err := url.Parse(tc.URL)
		if err != nil {
			return nil, fmt.Errorf("pool %s: target %d: %w", pc.Name, i, err)
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
		p.Targets = append(p.Targets, &Target{URL: &url.URL{Scheme: u.Scheme, Host: host}, Addr: host, Weight: w, Idle: &IdleLearner{}})
	}
	p.current = make([]int, len(p.Targets))
	tlsConf, err := clientTLS(pc.TLS)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
	}
	dialer := &net.Dialer{Timeout: pc.Timeouts.Dial.Duration, KeepAlive: 30 * time.Second}
	p.Transport = &http.Transport{
		Proxy:                  nil, // never an environment proxy between gateway and upstream
		DialContext:            Dialer(dialer.DialContext, p.idleLearner(pc.LearnIdleTimeout == nil || *pc.LearnIdleTimeout), time.Now),
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    pc.Timeouts.TLSHandshake.Duration,
		ResponseHeaderTimeout:  pc.Timeouts.ResponseHeader.Duration,
		IdleConnTimeout:        pc.Timeouts.Idle.Duration,
		MaxIdleConns:           0, // bounded per host below
		MaxIdleConnsPerHost:    pc.MaxIdlePerTarget,
		MaxResponseHeaderBytes: int64(limits.ResponseHeaderBytes),
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      false, // HTTP/1.1 to upstreams
		DisableCompression:     true,  // pass encodings through untouched
		// max_idle_per_target: 0 means keep no idle connection; the
		// transport would read 0 as its default of 2.
		DisableKeepAlives: pc.MaxIdlePerTarget == 0,
	}
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

// Pick returns the next target by smooth weighted round robin (nginx's
// algorithm: over any window each target gets its weight's share, spread
// out rather than in bursts). It returns nil when the pool has no target.
func (p *Pool) Pick() *Target {
	if len(p.Targets) == 0 {
		return nil
	}
	if len(p.Targets) == 1 {
		return p.Targets[0]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	total, best := 0, 0
	for i, t := range p.Targets {
		p.current[i] += t.Weight
		total += t.Weight
		if p.current[i] > p.current[best] {
			best = i
		}
	}
	p.current[best] -= total
	return p.Targets[best]
}

// Close releases the pool's idle connections.
func (p *Pool) Close() { p.Transport.CloseIdleConnections() }
