// Package proxy is the gateway's request handler: it matches a route, picks
// a target of the route's pool, makes the attempt with an httptrace to learn
// the phase reached, classifies any failure into a cause from the one
// taxonomy, and answers with the upstream's response or an error response
// that explains itself.
package proxy

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/errorpage"
	"github.com/gatewise/gatewise/internal/health"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"github.com/gatewise/gatewise/internal/limit"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
)

// Options configures a Handler.
type Options struct {
	// Config is the validated config with defaults applied. Required.
	Config *config.Config
	// Renderer writes error responses. Required.
	Renderer *errorpage.Renderer
	// Causes is the cause table. Nil means cause.NewTable().
	Causes *cause.Table
	// Metrics counts attempts and failures. Nil means no metrics.
	Metrics *obs.Metrics
	// Logger receives a warning line per failed attempt. Nil means none.
	Logger *slog.Logger
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
	// Memory reports memory pressure, when new requests are refused.
	// Nil means memory is not watched.
	Memory *limit.MemoryGuard
}

// Handler proxies requests to the pools of one config. Build a new Handler
// to apply a new config, and Close the old one when it is replaced.
type Handler struct {
	routes      *routeTable
	pools       map[string]*poolProxy
	renderer    *errorpage.Renderer
	causes      *cause.Table
	metrics     *obs.Metrics
	log         *slog.Logger
	now         func() time.Time
	systemClock bool // now is time.Now
	showDetails []netip.Prefix
	trusted     []netip.Prefix
	xForwarded  bool
	forwarded   bool
	via         bool
	checkers    []*health.Checker
	admit       admission
	buffers     *bufferPool
}

// poolProxy is a pool with the reverse proxy that serves it.
type poolProxy struct {
	pool     *upstream.Pool
	attempts *attemptTransport
	rp       *httputil.ReverseProxy
	conc     *limit.Concurrency // nil: no limit
}

// New builds a Handler from a validated config.
func New(opts Options) (*Handler, error) {
	cfg := opts.Config
	h := &Handler{
		pools:      make(map[string]*poolProxy, len(cfg.Pools)),
		renderer:   opts.Renderer,
		causes:     opts.Causes,
		metrics:    opts.Metrics,
		log:        opts.Logger,
		now:        opts.Now,
		xForwarded: boolOr(cfg.Forwarding.XForwarded, true),
		forwarded:  boolOr(cfg.Forwarding.Forwarded, false),
		via:        boolOr(cfg.Forwarding.Via, true),
	}
	if h.causes == nil {
		h.causes = cause.NewTable()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
		h.systemClock = true
	}
	var err error
	if h.showDetails, err = config.ParsePrefixes(cfg.ErrorPages.ShowDetailsTo); err != nil {
		return nil, fmt.Errorf("error_pages.show_details_to: %w", err)
	}
	if h.trusted, err = config.ParsePrefixes(cfg.Forwarding.TrustedProxies); err != nil {
		return nil, fmt.Errorf("forwarding.trusted_proxies: %w", err)
	}
	l := cfg.Limits
	h.admit = admission{
		request: limit.RequestLimits{MaxHeaderBytes: int64(l.RequestHeaderBytes), MaxHeaderCount: l.MaxHeaderCount, MaxURIBytes: int64(l.MaxURIBytes),
			MaxBodyBytes: int64(l.MaxBodyBytes), BodyReadTimeout: l.BodyReadTimeout.Duration},
		memory: opts.Memory,
		bursts: newBurstLog(10*time.Second, h.now),
	}
	h.buffers = &bufferPool{}
	for name, pc := range cfg.Pools {
		pc.Name = name
		pool, err := upstream.NewPool(pc, cfg.Limits, upstream.PoolOptions{Metrics: h.metrics, Logger: h.log, Now: h.now})
		if err != nil {
			h.Close()
			return nil, err
		}
		pp := &poolProxy{pool: pool}
		if pc.Concurrency.MaxInFlight > 0 || (pc.Concurrency.Adaptive != nil && *pc.Concurrency.Adaptive) {
			pp.conc = limit.NewConcurrency(pc.Concurrency, h.now)
		}
		pp.attempts = newAttemptTransport(h, pool, pc.Retry)
		pp.rp = &httputil.ReverseProxy{
			Rewrite:        h.rewrite,
			Transport:      pp.attempts,
			ModifyResponse: h.modifyResponse,
			ErrorHandler:   h.errorHandler,
			ErrorLog:       log.New(io.Discard, "", 0), // failures are classified and logged by us
			BufferPool:     h.buffers,
		}
		h.pools[name] = pp
		if pc.Health != nil {
			h.checkers = append(h.checkers, health.Start(pool, pc.Health, health.Options{Metrics: h.metrics, Logger: h.log, Now: h.now}))
		}
	}
	routes := make([]*route, 0, len(cfg.Routes)+1)
	for _, rc := range cfg.Routes {
		pp, ok := h.pools[rc.Pool]
		if !ok {
			h.Close()
			return nil, fmt.Errorf("route %q: unknown pool %q", rc.Name, rc.Pool)
		}
		host := strings.ToLower(strings.TrimSuffix(rc.Host, "."))
		lim, err := newRouteLimits(h, rc, cfg)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("route %q: %w", rc.Name, err)
		}
		routes = append(routes, &route{name: rc.Name, host: host, wildcard: strings.HasPrefix(host, "*."), path: rc.Path, pool: pp, limits: lim})
	}
	if len(cfg.Routes) == 0 && len(h.pools) == 1 {
		for name, pp := range h.pools {
			lim, err := newRouteLimits(h, config.Route{Name: name, Path: "/", Pool: name}, cfg)
			if err != nil {
				h.Close()
				return nil, fmt.Errorf("pool %q: %w", name, err)
			}
			routes = append(routes, &route{name: name, path: "/", pool: pp, limits: lim})
		}
	}
	h.routes = newRouteTable(routes)
	return h, nil
}

// SystemClock reports whether the handler reads the system's clock
// (Options.Now unset): its readings then stand for its transports' own,
// which saves two clock readings per request.
func (h *Handler) SystemClock() bool { return h.systemClock }

// Upstreams returns a snapshot of every pool's targets, by pool name.
func (h *Handler) Upstreams() map[string][]upstream.TargetStatus {
	out := make(map[string][]upstream.TargetStatus, len(h.pools))
	for name, pp := range h.pools {
		out[name] = pp.pool.Status()
	}
	return out
}

// PoolLoad is one pool's concurrency state.
type PoolLoad struct {
	// Limit is the current limit of requests in flight (learned or fixed).
	Limit int
	// InFlight is the requests in flight.
	InFlight int
	// Queued is the requests waiting for a slot.
	Queued int
}

// Load returns the concurrency state of every pool that has a limit, by
// pool name.
func (h *Handler) Load() map[string]PoolLoad {
	out := make(map[string]PoolLoad, len(h.pools))
	for name, pp := range h.pools {
		if pp.conc != nil {
			out[name] = PoolLoad{Limit: pp.conc.Limit(), InFlight: pp.conc.InFlight(), Queued: pp.conc.Queued()}
		}
	}
	return out
}

// Close stops the health checks and releases the idle upstream connections
// of every pool.
func (h *Handler) Close() {
	for _, c := range h.checkers {
		c.Stop()
	}
	for _, pp := range h.pools {
		pp.pool.Close()
	}
	if h.routes != nil {
		for _, rt := range h.routes.routes {
			if rt.limits.rate != nil {
				rt.limits.rate.Close()
			}
		}
	}
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func inPrefixes(remoteAddr string, prefixes []netip.Prefix) bool {
	if len(prefixes) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ServeHTTP routes the request to its pool's reverse proxy.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := obs.RecordFrom(r.Context())
	if rec == nil {
		// No access log in front: the ID is given here, as the access
		// log would (forward sends it upstream).
		id := httpsyntax.HeaderValue(r.Header, obs.RequestIDHeader)
		if !obs.SaneRequestID(id) {
			id = obs.NewRequestID()
		}
		rec = obs.NewRecord(id, h.now())
		r = r.WithContext(obs.WithRecord(r.Context(), rec))
	}
	if !h.admitBeforeRoute(w, r, rec) {
		return
	}
	rt := h.routes.match(r.Host, r.URL.Path)
	if rt == nil {
		ce := cause.New(cause.NoRoute, "", nil)
		rec.Fail(ce)
		h.respond(w, r, rec, ce, "", "")
		return
	}
	rec.SetRoute(rt.name, rt.pool.pool.Name)
	release, ok := h.admitRoute(w, r, rec, rt)
	if !ok {
		return
	}
	start := h.now()
	defer func() {
		s := rec.Snapshot()
		res := limit.Result{Latency: s.Phases.FirstByte, Failed: s.Err != nil && congestion(s.Err.ID)}
		switch {
		case res.Latency == 0:
			res.At = h.now()
			res.Latency = res.At.Sub(start)
		case s.Attempts == 1:
			// The first byte's time, near enough for the limiter's
			// windows (its phase starts at the write: microseconds
			// after start on a pooled connection, a connect after it on
			// a new one): one clock reading fewer.
			res.At = start.Add(res.Latency)
		}
		release(res)
	}()
	if d := rt.pool.pool.Timeouts.Request.Duration; d > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		r = r.WithContext(ctx)
	}
	h.forward(w, r, rt.pool, rec.ID, start)
}

// congestion reports whether a failure is a sign the pool is overloaded
// (a timeout), which lowers an adaptive concurrency limit.
func congestion(id cause.ID) bool {
	return id == cause.HTTPResponseTimeout || id == cause.ConnectionTimeout
}

// rewrite builds the outgoing request's headers for the ReverseProxy path
// (see forward). The target's address is set per attempt by
// attemptTransport.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.Host = pr.In.Host // the visitor's Host goes through, as Caddy and Traefik do
	h.setForwardingHeaders(pr.In, pr.Out.Header)
}

// forwardedElement returns the RFC 7239 element for this hop.
func forwardedElement(in *http.Request) string {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	var b strings.Builder
	b.WriteString("for=")
	if ap, err := netip.ParseAddrPort(in.RemoteAddr); err == nil {
		a := ap.Addr().Unmap()
		if a.Is6() {
			b.WriteString(`"[` + a.String() + `]"`)
		} else {
			b.WriteString(a.String())
		}
	} else {
		b.WriteString("unknown")
	}
	b.WriteString(";host=" + quotedString(in.Host))
	b.WriteString(";proto=" + proto)
	return b.String()
}

// quotedString returns s as an RFC 9110 quoted-string: only '"' and '\\'
// are escaped, and bytes that may not appear in one (controls, DEL) are
// dropped.
func quotedString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t', c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func viaValue(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1 gatewise"
	case major == 2:
		return "2 gatewise"
	case major == 1 && minor == 0:
		return "1.0 gatewise"
	}
	if major >= 2 {
		return strconv.Itoa(major) + " gatewise"
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor) + " gatewise"
}

// modifyResponse runs on each upstream response before it is copied to the
// visitor (the ReverseProxy path's ModifyResponse).
func (h *Handler) modifyResponse(res *http.Response) error {
	h.modifyResponseOf(res, nil)
	return nil
}

// modifyResponseOf is modifyResponse taking the header values it sets and
// the body's reader from ex, when not nil.
func (h *Handler) modifyResponseOf(res *http.Response, ex *exchange) {
	var vals []string // nil: a slice per value
	if ex != nil {
		vals = ex.res[:]
	}
	rec, passedError := h.noteResponse(res, ex)
	if rec != nil && httpsyntax.HeaderValue(res.Header, obs.RequestIDHeader) == "" {
		res.Header[obs.RequestIDHeader] = single(vals, 0, rec.ID) // canonical already: no Set
	}
	if h.via {
		if prior := res.Header["Via"]; len(prior) > 0 {
			res.Header["Via"] = append(prior, viaValue(res.ProtoMajor, res.ProtoMinor))
		} else {
			res.Header["Via"] = single(vals, 1, viaValue(res.ProtoMajor, res.ProtoMinor))
		}
	}
	if passedError {
		res.Header.Add("Proxy-Status", proxyStatusReceived(res.StatusCode))
	}
}

// proxyStatusReceived is the Proxy-Status value of an upstream's own error
// passed through (RFC 9209 2.1.1).
func proxyStatusReceived(status int) string {
	return fmt.Sprintf("gatewise; received-status=%d", status)
}

// noteResponse records the upstream's answer in the request's record, and
// puts the reader that classifies a cut body on it (its state in ex, when
// not nil). passedError reports an upstream's own 502, 503 or 504, passed
// through untouched but counted, logged and marked as received in
// Proxy-Status.
func (h *Handler) noteResponse(res *http.Response, ex *exchange) (rec *obs.Record, passedError bool) {
	req := res.Request
	rec = obs.RecordFrom(req.Context())
	if rec != nil {
		rec.SetUpstreamStatus(res.StatusCode)
	}
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		s := rec.Snapshot()
		ce := &cause.Error{ID: cause.UpstreamErrorStatus, Detail: strconv.Itoa(res.StatusCode), Phase: cause.PhaseHeaders, Target: s.Target}
		rec.Fail(ce)
		h.observeFailure(req, rec, s.Pool, ce, "passed through")
		passedError = true
	}
	if res.StatusCode != http.StatusSwitchingProtocols && res.Body != nil {
		var br *bodyReader
		if ex != nil {
			br = &ex.body
		} else {
			br = new(bodyReader)
		}
		*br = bodyReader{ReadCloser: res.Body, h: h, req: req}
		res.Body = br
	}
	return rec, passedError
}

// single returns a header value list of v alone: vals[i:i+1] with its
// capacity limited (an append to it reallocates rather than overwrite
// vals[i+1]), or a new slice when vals is nil.
func single(vals []string, i int, v string) []string {
	if vals == nil {
		return []string{v}
	}
	vals[i] = v
	return vals[i : i+1 : i+1]
}

// errorHandler answers a request whose attempt failed before the response
// headers were copied.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	rec := obs.RecordFrom(r.Context())
	ce, ok := cause.Of(err)
	if !ok {
		// Not from an attempt (the reverse proxy itself failed, e.g. a
		// WebSocket upgrade the writer cannot hijack).
		ce = classify(err, classification{ClientGone: r.Context().Err() != nil})
		if ce.ID == cause.ProxyInternalError {
			ce.Detail = "proxy"
		}
		h.observeFailure(r, rec, rec.Snapshot().Pool, ce, "answered")
	}
	rec.Fail(ce)
	s := rec.Snapshot()
	h.respond(w, r, rec, ce, s.Route, s.Pool)
}

// respond writes the error response for ce, unless the visitor is gone.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, rec *obs.Record, ce *cause.Error, route, pool string) {
	if ce.ID == cause.ClientClosed {
		return
	}
	p := errorpage.Problem{
		Cause:      h.causes.Get(ce.ID),
		Detail:     ce.Detail,
		RequestID:  rec.ID,
		RetryAfter: ce.RetryAfter,
	}
	if inPrefixes(r.RemoteAddr, h.showDetails) {
		p.ShowInternal = true
		p.Internal = ce.Error()
		p.Route, p.Upstream = route, pool
	}
	h.renderer.Write(w, r, p)
}

// observeFailure counts and logs a failed attempt (or an upstream's own
// error status) for the owner; action says what the gateway did about it:
// "retried", "answered" (with an error response), "passed through", or
// "closed the visitor's connection".
func (h *Handler) observeFailure(r *http.Request, rec *obs.Record, pool string, ce *cause.Error, action string) {
	if c := h.causes.Get(ce.ID); c.Hop == cause.HopVisitor {
		// The visitor's doing (gone, too slow, too large): not an
		// upstream failure, and not worth a warning.
		h.log.LogAttrs(r.Context(), slog.LevelInfo, c.Title,
			slog.String("request_id", rec.ID), slog.String("cause", string(ce.ID)),
			slog.String("pool", pool), slog.String("upstream", ce.Target), slog.String("phase", ce.Phase.String()))
		return
	}
	if h.metrics != nil {
		h.metrics.ObserveFailure(pool, ce.Target, ce.ID)
	}
	c := h.causes.Get(ce.ID)
	attrs := []slog.Attr{
		slog.String("request_id", rec.ID),
		slog.String("cause", string(ce.ID)),
		slog.String("detail", ce.Detail),
		slog.String("pool", pool),
		slog.String("upstream", ce.Target),
		slog.String("phase", ce.Phase.String()),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("action", action),
		slog.String("owner", c.Owner),
	}
	if ce.Err != nil {
		attrs = append(attrs, slog.String("error", ce.Err.Error()))
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, c.Title, attrs...)
}

// bodyReader classifies a failure while the upstream's body is copied.
type bodyReader struct {
	io.ReadCloser
	h      *Handler
	req    *http.Request
	failed bool
}

// Read reads the upstream body; a read error other than EOF is recorded as
// http_response_incomplete (or client_closed when the visitor left).
func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.failed { //nolint:errorlint // io.EOF is returned unwrapped by contract
		b.failed = true
		rec := obs.RecordFrom(b.req.Context())
		ce := classify(err, classification{Phase: cause.PhaseHeaders, ClientGone: clientGone(b.req)})
		s := rec.Snapshot()
		ce.Target = s.Target
		rec.Fail(ce)
		b.h.observeFailure(b.req, rec, s.Pool, ce, "closed the visitor's connection")
	}
	return n, err
}

// bufferPool lends 32 KiB copy buffers to the reverse proxies (Get and
// Put, httputil.BufferPool's interface) and to the direct path (get and
// put, which allocate nothing).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, 32*1024)
	return &buf
}

func (b *bufferPool) put(buf *[]byte) { b.p.Put(buf) }

// Get lends a buffer to httputil.ReverseProxy.
func (b *bufferPool) Get() []byte { return *b.get() }

// Put takes a buffer back from httputil.ReverseProxy.
func (b *bufferPool) Put(buf []byte) { b.put(&buf) }
