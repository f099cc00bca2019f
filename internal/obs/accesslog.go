package obs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/httpsyntax"
)

// RequestIDHeader is the header that carries the request ID, in both
// directions ("X-Request-ID", written in Go's canonical form so that
// http.Header lookups need not canonicalize it on every request).
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request ID that is kept.
const maxRequestIDLen = 128

// SaneRequestID reports whether an incoming request ID may be kept: 1 to 128
// characters from letters, digits and "-_.:+=/". Anything else is replaced,
// so a hostile ID cannot inject into logs or pages.
func SaneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.:+=/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a new random request ID: 20 hexadecimal characters
// (80 bits). The bits come from math/rand/v2's generator (ChaCha8, seeded
// by the runtime from the system's randomness), not crypto/rand: an ID
// names a request in logs and pages, it grants nothing, and the system
// call crypto/rand may make cost more than the rest of the ID.
func NewRequestID() string {
	var b [10]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint16(b[8:], uint16(rand.Uint32()))
	var s [20]byte
	hex.Encode(s[:], b[:])
	return string(s[:])
}

// AccessLog is the outermost middleware: it gives each request its ID and a
// Record, counts it, and writes one JSON line per request when it ends.
// The ID is the visitor's X-Request-Id when SaneRequestID accepts it,
// else a new one (NewRequestID); it is the Record's ID, and the request's
// headers are left as they came (the proxy sends the ID upstream).
type AccessLog struct {
	// Out receives one JSON line per request, each in a single Write: it
	// must be safe for concurrent use and keep each Write whole (a file,
	// or a writer behind a mutex). Nil means no access log.
	Out io.Writer
	// Metrics counts requests. Nil means no metrics.
	Metrics *Metrics
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
	// Tunnels tracks upgraded connections so shutdown can wait for them.
	// Nil means they are not tracked.
	Tunnels *Tunnels

	buffers sync.Pool // *[]byte, one line each
}

// Wrap returns next wrapped by the access log.
func (a *AccessLog) Wrap(next http.Handler) http.Handler {
	now := a.Now
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		q := &request{parent: r.Context()}
		// The visitor's headers are left as they came (no insertion
		// into the map per request): the proxy sends the record's ID
		// upstream in place of the visitor's.
		id := httpsyntax.HeaderValue(r.Header, RequestIDHeader)
		if !SaneRequestID(id) {
			id = NewRequestID()
		}
		rec := &q.rec
		rec.ID, rec.Start = id, start
		if vs, ok := r.Context().(valueSetter); !ok || !vs.SetValue(recordKey{}, rec) {
			r = r.WithContext(q)
		}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &q.body
			body.ReadCloser = r.Body
			r.Body = body
		}
		sw := &q.sw
		*sw = statusWriter{ResponseWriter: w, tunnels: a.Tunnels}
		if a.Metrics != nil {
			a.Metrics.inFlight.Inc()
		}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler { //nolint:errorlint // a panic value, not an error chain
				rec.Fail(cause.New(cause.ProxyInternalError, "panic", panicError{p}))
			}
			if p == http.ErrAbortHandler && rec.Snapshot().Err == nil { //nolint:errorlint // a panic value
				// The proxy aborted without an upstream read error: the
				// visitor's side failed while the body was being written.
				rec.Fail(cause.New(cause.ClientClosed, "write", nil))
			}
			end := now()
			a.finish(r, rec, sw, body.count(), end.Sub(start), end)
			if a.Metrics != nil {
				a.Metrics.inFlight.Dec()
			}
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// request is what the access log allocates for a request, in one piece
// rather than one allocation each: the request's context (its parent's,
// carrying the record: see RecordFrom), the record, the status writer and
// the body counter. It is never reused, so whatever keeps a part of it
// after the request (a retry's goroutine, an upgraded connection) finds
// it intact.
type request struct {
	parent context.Context
	rec    Record
	sw     statusWriter
	body   countingBody
}

// Deadline returns the parent's deadline.
func (q *request) Deadline() (time.Time, bool) { return q.parent.Deadline() }

// Done returns the parent's Done channel.
func (q *request) Done() <-chan struct{} { return q.parent.Done() }

// Err returns the parent's error.
func (q *request) Err() error { return q.parent.Err() }

// Value returns the record for the record's key, else the parent's value.
func (q *request) Value(key any) any {
	if _, ok := key.(recordKey); ok {
		return &q.rec
	}
	return q.parent.Value(key)
}

// String names the context, as the context package's own do.
func (q *request) String() string { return "obs.request" }

// valueSetter is a request context that carries one more value without
// being wrapped (h1server's): the record then rides on it, and the request
// is not copied to carry a context of the access log's own.
type valueSetter interface {
	SetValue(key, val any) bool
}

// wakeRegistry is the parent context's way to wake a blocked upstream
// exchange without context.AfterFunc (see upstream.wakeRegistry).
type wakeRegistry interface {
	RegisterWake(wake func()) int
	UnregisterWake(slot int) bool
}

// RegisterWake passes the registration to the parent when it takes
// them, else returns -1 (the caller uses context.AfterFunc).
func (q *request) RegisterWake(wake func()) int {
	if reg, ok := q.parent.(wakeRegistry); ok {
		return reg.RegisterWake(wake)
	}
	return -1
}

// UnregisterWake passes to the parent.
func (q *request) UnregisterWake(slot int) bool {
	if reg, ok := q.parent.(wakeRegistry); ok {
		return reg.UnregisterWake(slot)
	}
	return false
}

// AfterFunc runs f when the parent is done (context.AfterFunc on the
// parent): contexts derived from this one register through it rather
// than with a goroutine each, when the parent is not one of the context
// package's own.
func (q *request) AfterFunc(f func()) (stop func() bool) { return context.AfterFunc(q.parent, f) }

type panicError struct{ v any }

func (p panicError) Error() string { return "panic: " + slog.AnyValue(p.v).String() }

// finish counts the request and writes its line; end is when it ended
// (start + d), the line's time.
func (a *AccessLog) finish(r *http.Request, rec *Record, sw *statusWriter, bytesIn int64, d time.Duration, end time.Time) {
	s := rec.Snapshot()
	status := sw.status
	var id cause.ID
	if s.Err != nil {
		id = s.Err.ID
		if id == cause.ClientClosed && status == 0 {
			status = 499
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	route := s.Route
	if route == "" {
		route = "-"
	}
	if a.Metrics != nil {
		a.Metrics.ObserveRequest(route, status, id, d)
	}
	if a.Out == nil {
		return
	}
	l := accessLine{
		time:           end,
		requestID:      rec.ID,
		remote:         clientIP(r.RemoteAddr),
		method:         r.Method,
		host:           r.Host,
		path:           r.URL.RequestURI(),
		proto:          r.Proto,
		status:         status,
		cause:          string(id),
		route:          route,
		pool:           s.Pool,
		upstream:       s.Target,
		attempts:       s.Attempts,
		upstreamStatus: s.UpstreamStatus,
		bytesIn:        bytesIn,
		bytesOut:       sw.bytes,
		duration:       d,
		dns:            s.Phases.DNS,
		connect:        s.Phases.Connect,
		tls:            s.Phases.TLS,
		firstByte:      s.Phases.FirstByte,
		reused:         s.Phases.Reused,
		userAgent:      r.UserAgent(),
	}
	if s.Err != nil {
		l.phase = s.Err.Phase.String()
	}
	bp := a.getBuffer()
	*bp = l.appendJSON((*bp)[:0])
	_, _ = a.Out.Write(*bp)
	a.putBuffer(bp)
}

// getBuffer lends a buffer for one line.
func (a *AccessLog) getBuffer() *[]byte {
	if b, ok := a.buffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

// putBuffer takes it back, unless a huge line grew it.
func (a *AccessLog) putBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		a.buffers.Put(b)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// statusWriter records the status and the body bytes written. It passes
// Flush and Hijack through (via Unwrap for http.ResponseController), so
// streaming and WebSocket upgrades work behind it.
type statusWriter struct {
	http.ResponseWriter
	status  int
	bytes   int64
	tunnels *Tunnels
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || (w.status >= 100 && w.status < 200 && code != http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes over the connection (WebSocket upgrades).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errNotHijacker
	}
	c, rw, err := h.Hijack()
	if err != nil || w.tunnels == nil {
		return c, rw, err
	}
	return w.tunnels.track(c), rw, nil
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var errNotHijacker = errors.New("response writer does not support hijacking")

// countingBody counts the request body bytes read (by the proxy, as it
// streams them upstream).
type countingBody struct {
	io.ReadCloser
	n atomic.Int64 // the transport may still read after the handler returns
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// count returns the bytes read; zero for a nil body.
func (b *countingBody) count() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
}
