// Package server wires a gatewise config into running listeners: the public
// listeners (plain HTTP/1.1, or TLS with HTTP/2 by ALPN), the middleware
// chain in front of the proxy, the admin listener with metrics, live reload
// of a new config, and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/errorpage"
	"github.com/gatewise/gatewise/internal/h1server"
	"github.com/gatewise/gatewise/internal/limit"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/proxy"
	"github.com/gatewise/gatewise/internal/sockio"
)

// Options are what a Server needs besides its config.
type Options struct {
	// Stdout is where access_log "stdout" writes. Nil means os.Stdout.
	Stdout io.Writer
	// Logger is the process log (warnings per failure, state changes).
	// Nil means a JSON logger on os.Stderr.
	Logger *slog.Logger
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
}

// Server is a running gateway.
type Server struct {
	opts    Options
	log     *slog.Logger
	causes  *cause.Table
	reg     *prometheus.Registry
	metrics *obs.Metrics

	mu        sync.Mutex // serialises Start, Reload and Shutdown
	cfg       *config.Config
	root      atomic.Pointer[generation]
	certs     atomic.Pointer[map[string]*tls.Certificate] // by listener address
	listeners []net.Listener
	servers   []listenerServer
	admin     *http.Server
	adminLn   net.Listener
	errs      chan error
	tunnels   obs.Tunnels
	memory    *limit.MemoryGuard
	connLog   rejectLog
	acceptLog acceptLog
}

// parkIdleAfter is h1server's ParkIdleAfter for limits.client_park_after:
// 0 there never parks (h1server takes a negative value for that).
func parkIdleAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// listenerServer is what serves a public listener: h1server.Server on
// plain listeners; on TLS ones, tlsServer, which hands HTTP/1.x to
// h1server and HTTP/2 (by ALPN) to net/http's server.
type listenerServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// generation is everything built from one config that a reload replaces.
type generation struct {
	handler   http.Handler
	proxy     *proxy.Handler
	accessLog *obs.LineBuffer // nil when the access log is off
}

// New builds a server for cfg, which must be validated with defaults
// applied. It does not listen yet: call Start.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	// opts.Now stays nil when not given: each part then reads time.Now
	// itself and knows its clock is the system's, so that the proxy and
	// its transports share readings (proxy.Handler's systemClock).
	s := &Server{opts: opts, log: opts.Logger, causes: cause.NewTable(), reg: prometheus.NewRegistry(), errs: make(chan error, 8)}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newLoadCollector(s))
	m, err := obs.NewMetrics(s.reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s.metrics = m
	s.memory = limit.StartMemoryGuard(cfg.Limits, time.Second, s.log)
	gen, err := s.build(cfg)
	if err != nil {
		s.memory.Stop()
		return nil, err
	}
	if err := s.loadCerts(cfg); err != nil {
		gen.close()
		s.memory.Stop()
		return nil, err
	}
	s.cfg = cfg
	s.root.Store(gen)
	return s, nil
}

// build makes the handler chain for cfg. The order, outermost first:
// access log (request ID, record, metrics) -> proxy (route, attempt,
// classify, respond). Limits and the cache slot in between as they land.
func (s *Server) build(cfg *config.Config) (*generation, error) {
	renderer, err := errorpage.New(errorpage.Options{TemplatesDir: cfg.ErrorPages.Templates, Now: s.opts.Now})
	if err != nil {
		return nil, fmt.Errorf("error_pages: %w", err)
	}
	access, err := s.accessLogger(cfg)
	if err != nil {
		return nil, err
	}
	ph, err := proxy.New(proxy.Options{Config: cfg, Renderer: renderer, Causes: s.causes, Metrics: s.metrics, Logger: s.log, Now: s.opts.Now, Memory: s.memory})
	if err != nil {
		if access != nil {
			_ = access.Close()
		}
		return nil, err
	}
	al := &obs.AccessLog{Metrics: s.metrics, Now: s.opts.Now, Tunnels: &s.tunnels}
	if access != nil {
		al.Out = access // not a nil *LineBuffer in the interface: off is a nil Out
	}
	return &generation{handler: al.Wrap(ph), proxy: ph, accessLog: access}, nil
}

// close stops the generation's proxy and writes and closes its access log.
func (g *generation) close() {
	g.proxy.Close()
	if g.accessLog != nil {
		_ = g.accessLog.Close()
	}
}

// closeInto is close for a reload to next: the lines of this generation's
// requests still in flight go to next's access log, not to a closed file.
func (g *generation) closeInto(next *generation) {
	g.proxy.Close()
	if g.accessLog == nil {
		return
	}
	if next.accessLog != nil {
		_ = g.accessLog.CloseInto(next.accessLog)
		return
	}
	_ = g.accessLog.CloseInto(nil)
}

// accessLogger opens the access-log destination behind a LineBuffer of
// access_log_buffer bytes (0: each line written at once, under its lock
// so that lines never interleave), whose Close writes what it holds and
// closes a file; nil for "off".
func (s *Server) accessLogger(cfg *config.Config) (*obs.LineBuffer, error) {
	dest := cfg.AccessLog
	var w io.Writer
	var file io.Closer // closed by the LineBuffer after its last write
	switch dest {
	case "off":
		return nil, nil
	case "", "stdout":
		w = s.opts.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("access_log: %w", err)
		}
		w, file = f, f
	}
	lb := obs.NewLineBuffer(w, int(cfg.AccessLogBuffer), cfg.AccessLogFlush.Duration, file, func(err error) {
		s.log.Warn("access log: cannot write: the lines of this write are lost, and of the next ones until a write succeeds",
			slog.String("access_log", dest), slog.Any("error", err))
	})
	return lb, nil
}

func (s *Server) loadCerts(cfg *config.Config) error {
	certs := make(map[string]*tls.Certificate)
	for i, l := range cfg.Listeners {
		if l.TLS == nil {
			continue
		}
		c, err := tls.LoadX509KeyPair(l.TLS.Cert, l.TLS.Key)
		if err != nil {
			return fmt.Errorf("listeners[%d].tls: %w", i, err)
		}
		certs[l.Address] = &c
	}
	s.certs.Store(&certs)
	return nil
}

// ServeHTTP serves a request with the current config's handler chain.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 {
		markEmptyBody(r)
	}
	s.root.Load().handler.ServeHTTP(w, r)
}

// markEmptyBody gives an HTTP/2 request without a body http.NoBody as its
// Body, as net/http's and h1server's HTTP/1 servers do. net/http's HTTP/2
// server gives every request a Body, one that reads io.EOF at once when
// the stream ended with its headers; the gateway took that for a body of
// unknown length, so it sent every HTTP/2 GET to the upstream chunked,
// with an empty body, checked the pooled connection before reusing it,
// and could not send it again when that connection turned out closed.
//
// ContentLength is 0 only when the stream ended with its headers or the
// request declared content-length: 0, which net/http's HTTP/2 server
// holds the stream to (more DATA is a stream error). A request that
// announced trailers keeps its Body, which brings them.
func markEmptyBody(r *http.Request) {
	if r.ContentLength == 0 && len(r.Trailer) == 0 && r.Body != nil && r.Body != http.NoBody {
		_ = r.Body.Close()
		r.Body = http.NoBody
	}
}

// Start opens every listener and starts serving. A failure to bind any of
// them closes the others and returns an error naming the address.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	maxConns, maxPerIP := derefInt(cfg.Limits.MaxConns), derefInt(cfg.Limits.MaxConnsPerIP)
	trusted, err := config.ParsePrefixes(cfg.Forwarding.TrustedProxies)
	if err != nil {
		return fmt.Errorf("forwarding.trusted_proxies: %w", err)
	}
	s.warnFileLimit(cfg)
	// One count for every listener: limits.max_conns bounds them all.
	conns := limit.NewConnLimits(maxConns, maxPerIP, trusted, s.rejectConn)
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listen on %s: %w", l.Address, err)
		}
		// Sockets read and written with raw system calls
		// (internal/sockio), under the connection limits.
		ln = sockio.Listener(acceptWatch{Listener: ln, s: s})
		if maxConns > 0 || maxPerIP > 0 {
			ln = conns.Listener(ln)
		}
		// HTTP/1.x, plain or over TLS, is served by h1server.
		h1 := &h1server.Server{
			Handler:           s,
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.Duration,
			IdleTimeout:       cfg.Limits.ClientIdleTimeout.Duration,
			// The handler answers requests over the limit with the 431
			// page and its cause; past the cap the server answers a
			// bare 431.
			MaxHeaderBytes: limit.HeaderReadCap(int64(cfg.Limits.RequestHeaderBytes)),
			ErrorLog:       errLog,
			ParkIdleAfter:  parkIdleAfter(cfg.Limits.ClientParkAfter.Duration),
		}
		var srv listenerServer = h1
		if l.TLS != nil {
			addr := l.Address
			tlsConfig := &tls.Config{
				MinVersion: tls.VersionTLS12,
				NextProtos: []string{"h2", "http/1.1"},
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
					return (*s.certs.Load())[addr], nil
				},
			}
			// net/http's server, for the connections that chose HTTP/2
			// by ALPN (its TLSConfig names "h2", so Serve enables it).
			h2 := &http.Server{
				Handler:           s,
				ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.Duration,
				IdleTimeout:       cfg.Limits.ClientIdleTimeout.Duration,
				MaxHeaderBytes:    limit.HeaderReadCap(int64(cfg.Limits.RequestHeaderBytes)),
				ErrorLog:          errLog,
				TLSConfig:         tlsConfig,
			}
			srv = newTLSServer(tlsConfig, cfg.Limits.ReadHeaderTimeout.Duration, errLog, h1, h2)
		}
		s.listeners = append(s.listeners, ln)
		s.servers = append(s.servers, srv)
	}
	if cfg.Admin.Address != "off" && cfg.Admin.Address != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("admin listen on %s: %w", cfg.Admin.Address, err)
		}
		s.adminLn = ln
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	}
	for i, srv := range s.servers {
		go s.serve(srv, s.listeners[i])
	}
	if s.admin != nil {
		go s.serve(s.admin, s.adminLn) // net/http: the admin API is not a hot path
	}
	for i, ln := range s.listeners {
		proto := "http"
		if cfg.Listeners[i].TLS != nil {
			proto = "https"
		}
		s.log.Info("listening", slog.String("address", ln.Addr().String()), slog.String("scheme", proto))
	}
	if s.adminLn != nil {
		s.log.Info("admin listening", slog.String("address", s.adminLn.Addr().String()))
	}
	return nil
}

func (s *Server) serve(srv listenerServer, ln net.Listener) {
	err := srv.Serve(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		select {
		case s.errs <- fmt.Errorf("serve %s: %w", ln.Addr(), err):
		default:
		}
	}
}

// rejectConn counts a connection closed at accept and logs it once per
// burst.
func (s *Server) rejectConn(ip netip.Addr, reason string) {
	s.metrics.ObserveConnRejected(reason)
	s.connLog.note(s.log, ip, reason)
}

// burst lets one of a run of events through at most once every 10
// seconds: take returns how many came since the last one it let through
// (this one included), or 0 when it lets none through.
type burst struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

func (b *burst) take(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count++
	if !b.last.IsZero() && now.Sub(b.last) < 10*time.Second {
		return 0
	}
	n := b.count
	b.count, b.last = 0, now
	return n
}

// rejectLog logs connections closed at accept at most once every 10
// seconds, with the count since the last line.
type rejectLog struct{ burst }

func (l *rejectLog) note(log *slog.Logger, ip netip.Addr, reason string) {
	if n := l.take(time.Now()); n > 0 {
		log.Warn("closed client connections over a connection limit", slog.String("reason", reason),
			slog.Int("closed", n), slog.String("last_client", ip.String()))
	}
}

// acceptWatch is a listener whose accepts that fail for want of file
// descriptors are counted and logged at WARN (acceptLog): the servers
// retry them, waiting up to a second, and log each at DEBUG only.
type acceptWatch struct {
	net.Listener
	s *Server
}

func (l acceptWatch) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		ce := cause.Classify(err, cause.Attempt{})
		l.s.metrics.ObserveAcceptError(ce.ID)
		l.s.acceptLog.note(l.s.log, ce, err)
	}
	return c, err
}

// acceptLog logs failed accepts at most once every 10 seconds, with the
// count since the last line.
type acceptLog struct{ burst }

func (l *acceptLog) note(log *slog.Logger, ce *cause.Error, err error) {
	if n := l.take(time.Now()); n > 0 {
		log.Warn("cannot accept client connections: the gateway is out of file descriptors; they wait until one is free",
			slog.String("cause", string(ce.ID)), slog.String("detail", ce.Detail), slog.Int("failed", n), slog.String("error", err.Error()))
	}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// Errors delivers a listener's fatal error (it stopped serving).
func (s *Server) Errors() <-chan error { return s.errs }

func (s *Server) closeListeners() {
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	s.listeners, s.servers = nil, nil
	if s.adminLn != nil {
		_ = s.adminLn.Close()
		s.adminLn, s.admin = nil, nil
	}
}

// Addrs returns the addresses of the public listeners, in config order.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// AdminAddr returns the admin listener's address, or nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Registry returns the Prometheus registry the server's metrics are on.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Reload applies a new validated config: routes, pools, forwarding, error
// pages, the access log (reopened, for logrotate) and certificates change at
// once for new requests; requests in flight finish on the old config.
// Listener and admin addresses cannot change without a restart: Reload
// logs a warning and keeps the running ones. On error the running config is
// kept.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen, err := s.build(cfg)
	if err != nil {
		s.metrics.ObserveReload(false)
		return err
	}
	oldCerts := s.certs.Load()
	if err := s.loadCerts(cfg); err != nil {
		s.certs.Store(oldCerts)
		gen.close()
		s.metrics.ObserveReload(false)
		return err
	}
	if !sameListeners(s.cfg, cfg) {
		s.log.Warn("listener or admin addresses changed: restart gatewise to apply them; other changes are applied")
	}
	old := s.root.Swap(gen)
	s.cfg = cfg
	s.metrics.ObserveReload(true)
	old.closeInto(gen)
	return nil
}

// CountInvalidReload counts a reload whose config file was invalid (the
// running config is kept).
func (s *Server) CountInvalidReload() { s.metrics.ObserveReload(false) }

func sameListeners(a, b *config.Config) bool {
	if len(a.Listeners) != len(b.Listeners) || a.Admin.Address != b.Admin.Address {
		return false
	}
	for i := range a.Listeners {
		if a.Listeners[i].Address != b.Listeners[i].Address || (a.Listeners[i].TLS == nil) != (b.Listeners[i].TLS == nil) {
			return false
		}
	}
	return true
}

// MemoryLimit returns the resident memory the gateway may use, as its
// memory guard last read it: limits.memory_limit, else 90% of the
// cgroup's memory limit, else 0 (none).
func (s *Server) MemoryLimit() int64 { return s.memory.ProcessLimit() }

// Shutdown stops accepting connections and waits for in-flight requests
// and upgraded connections (WebSocket) to finish until ctx is done; then it
// closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(s.servers)+1)
	for i, srv := range s.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
				errs[i] = fmt.Errorf("shutdown %s: %w", s.listeners[i].Addr(), err)
			}
		}()
	}
	wg.Wait()
	if n := s.tunnels.Len(); n > 0 {
		s.log.Info("waiting for upgraded connections (WebSocket) to close", slog.Int("open", n))
		if closed := s.tunnels.Drain(ctx); closed > 0 {
			errs[len(s.servers)] = fmt.Errorf("shutdown: closed %d upgraded connections still open at the deadline", closed)
		}
	}
	if s.admin != nil {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := s.admin.Shutdown(actx); err != nil {
			_ = s.admin.Close()
		}
		cancel()
	}
	s.root.Load().close()
	s.memory.Stop()
	return errors.Join(errs...)
}

// adminHandler serves the admin API: metrics, health and the cause table.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/causes", s.serveCauses)
	mux.HandleFunc("GET /api/upstreams", s.serveUpstreams)
	if s.cfg.Admin.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
