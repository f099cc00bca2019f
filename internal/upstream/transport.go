package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/httpsyntax"
	"github.com/gatewise/gatewise/internal/sockio"
)

// Transport is the gateway's HTTP/1.1 client to upstream targets, an
// http.RoundTripper. Unlike net/http's Transport, which hands each request
// to two goroutines per connection (a writer and a reader) and back, it
// makes the whole exchange on the caller's goroutine: write the request,
// read the response headers, and read the body as the caller reads it.
// That saves two goroutine switches, their channel operations and most of
// the allocations of a round trip, which is most of what a proxied request
// costs the gateway beyond its system calls.
//
// It reports the exchange to an Observer (RoundTripObserved) or to a
// net/http/httptrace ClientTrace in the
// request's context (DNS and connect through the dialer, then TLS,
// GotConn, WroteRequest, GotFirstResponseByte), as net/http does, so the
// proxy learns the phase a failure happened in.
//
// Keep-alive connections are pooled per target, most recently used first.
// A request that may be sent twice (replayable: GET, HEAD, OPTIONS or TRACE
// without a body) takes a pooled connection as it is, and is sent again,
// once, on a new connection when the one it took turns out
// closed before any byte of an answer (an EOF or a reset, on the write or
// the read), or answers 408 (a target's notice that it timed out the idle
// connection): the keep-alive race costs it a round trip, never an error.
// Any other request takes a pooled connection only after a check, a read
// that does not wait: one the target has closed (or sent anything unasked
// on) is dropped and the request goes out on another, so that request
// meets the keep-alive race only in the microseconds between that check
// and the write. A connection idle for 50 ms or more is watched: a
// goroutine parked in the runtime's poller wakes when its target closes it
// (or sends anything unasked), drops it from the pool and tells the
// target's IdleLearner, so the learner knows of the targets' idle closes
// without a request and without looking at idle sockets in turn. A sweep,
// every 50 ms while connections not yet watched are idle and every second
// otherwise, starts the watches and closes the connections idle past
// IdleConnTimeout or their target's learned keep-alive timeout.
//
// A Transport must be built with NewTransport. It is safe for use by many
// goroutines.
type Transport struct {
	dial                  func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig             *tls.Config
	tlsHandshakeTimeout   time.Duration
	responseHeaderTimeout time.Duration
	// systemClock: now is time.Now, so its readings may time socket
	// deadlines.
	systemClock    bool
	idleTimeout    time.Duration
	maxIdlePerHost int
	maxHeaderBytes int64
	now            func() time.Time
	learner        func(addr string) *IdleLearner

	buffers sync.Pool // *[]byte of 32 KiB

	mu    sync.Mutex
	idle  map[connKey]*idleList
	nIdle int
	sweep *time.Timer
	// sweepFast: the sweep is set to run after sweepEvery (else after
	// sweepIdleEvery); youngIdle: the pool holds connections that are
	// not watched yet (see sweepIdle).
	sweepFast, youngIdle bool
	closed               bool
}

// TransportOptions configures a Transport. The zero value of a field is
// its default.
type TransportOptions struct {
	// Dial makes a TCP connection. Default: a net.Dialer with a 10s
	// timeout, its connections read and written with raw system calls
	// (sockio.Wrap). Its connections should be *Conn (see Dialer) for the byte
	// counts and the idle learning.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig is used for https:// targets. Default: an empty
	// config (system roots; the target's host as server name).
	TLSClientConfig *tls.Config
	// TLSHandshakeTimeout bounds the TLS handshake. Default: none beyond
	// the request's context.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response's header
	// section once the request is written. Default: none.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long an idle connection is kept. Default: 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections are kept per
	// target for as long as IdleConnTimeout. After a burst, up to
	// SurplusFactor times as many more are kept for SurplusIdle (see
	// there). Default (0): none; every connection is closed after its
	// request.
	MaxIdleConnsPerHost int
	// MaxResponseHeaderBytes bounds a response's header section. Default:
	// 1 MiB.
	MaxResponseHeaderBytes int64
	// Learner returns the IdleLearner of the target at addr, or nil.
	// Default: none.
	Learner func(addr string) *IdleLearner
	// Now returns the time, for the idle connections' ages (socket
	// deadlines always follow the system clock). Default: time.Now.
	Now func() time.Time
}

// NewTransport returns a Transport configured by o.
func NewTransport(o TransportOptions) *Transport {
	t := &Transport{
		dial:                  o.Dial,
		tlsConfig:             o.TLSClientConfig,
		tlsHandshakeTimeout:   o.TLSHandshakeTimeout,
		responseHeaderTimeout: o.ResponseHeaderTimeout,
		idleTimeout:           o.IdleConnTimeout,
		maxIdlePerHost:        o.MaxIdleConnsPerHost,
		maxHeaderBytes:        o.MaxResponseHeaderBytes,
		learner:               o.Learner,
		now:                   o.Now,
		idle:                  make(map[connKey]*idleList),
	}
	if t.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		t.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return sockio.Wrap(c), nil
		}
	}
	if t.tlsConfig == nil {
		t.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if t.idleTimeout <= 0 {
		t.idleTimeout = 90 * time.Second
	}
	if t.maxHeaderBytes <= 0 {
		t.maxHeaderBytes = 1 << 20
	}
	if t.now == nil {
		t.now = time.Now
		t.systemClock = true
	}
	return t
}

// TLSClientConfig returns the TLS config used for https:// targets. It must
// not be modified.
func (t *Transport) TLSClientConfig() *tls.Config { return t.tlsConfig }

// connKey identifies the connections that may carry a request.
type connKey struct {
	tls  bool
	addr string
}

// clientConn is one connection to a target, with its buffers.
type clientConn struct {
	t   *Transport
	key connKey
	// list, guarded by t.mu, is the idle list of key the connection
	// last went into (see idleListOf).
	list      *idleList
	conn      net.Conn // the TLS connection for https
	raw       *Conn    // the counting connection under it; may be nil
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	// scratch holds a response's header section while it is parsed.
	scratch []byte
	// peeker looks at the socket under conn (nil: it cannot).
	peeker *socketPeeker
	// watchDone, guarded by t.mu, is set while the connection is in the
	// pool with a watchIdle goroutine waiting on its socket, and closed
	// when that goroutine ends.
	watchDone chan struct{}
	// wake wakes any blocked read or write on conn; made once per
	// connection so that each request's context.AfterFunc need not.
	wake func()
	// awaiter sends a request and waits for the answer without the read
	// that finds nothing (nil: over TLS, or no raw socket under conn).
	// sendFn is sendPending bound once, and pending the request it sends.
	awaiter readAwaiter
	sendFn  func() error
	pending pendingRequest
	// fields holds a response's header fields for a FieldsObserver,
	// in scratch, until the response's body ends.
	fields Fields
	// firstByte is the system clock's reading at the answer's first
	// byte, when a TimedObserver took it (zero: none, or an interim
	// answer came first); bodyWithHead: the answer's body came whole
	// with its head. putIdle then uses firstByte for the end of the
	// answer.
	firstByte    time.Time
	bodyWithHead bool
	// unchecked: the connection came from the pool without the check
	// (alive) for a replayable request, which is sent again elsewhere
	// when it turns out closed. silent: no byte of an answer has come
	// on it for the request.
	unchecked, silent bool
	// readDeadline is the read deadline set on conn (zero: none), so
	// that the response header timeout's deadline need not be set for
	// every request (see armHeaderDeadline).
	readDeadline time.Time
}

// The errors of the exchange itself. Each is a protocol error in the cause
// taxonomy unless the phase says otherwise.
var (
	// ErrMalformedResponse is a response that is not HTTP/1.x: a bad
	// status line, a bad header line, conflicting lengths.
	ErrMalformedResponse = errors.New("malformed HTTP response")
	// ErrResponseHeaderTooLarge is a response header section over the
	// limit.
	ErrResponseHeaderTooLarge = errors.New("response header section too large")
	// errTransportClosed is returned by a round trip on a closed Transport.
	errTransportClosed = errors.New("upstream transport closed")
)

// malformed returns an error wrapping ErrMalformedResponse that says what
// was wrong, for the owner's log.
func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, what)
}

// aLongTimeAgo returns a deadline in the past: setting it wakes a blocked
// read or write at once.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// RoundTrip sends req and returns its response. The response's body reads
// from the connection; closing it (or reading it to the end) returns the
// connection to the pool when it may carry another request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var o Observer
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil {
		o = clientTraceObserver{trace}
	}
	return t.roundTrip(req, "", "", time.Time{}, o, false)
}

// RoundTripObserved is RoundTrip reporting the exchange to o rather than to
// an httptrace.ClientTrace in the request's context: the same events,
// without the hooks' allocations. o may be nil.
func (t *Transport) RoundTripObserved(req *http.Request, o Observer) (*http.Response, error) {
	return t.roundTrip(req, "", "", time.Time{}, o, true)
}

// SystemClock reports whether the transport's clock is the system's
// (TransportOptions.Now unset), so that a caller may pass its own
// time.Now readings to RoundTripTarget.
func (t *Transport) SystemClock() bool { return t.systemClock }

// RoundTripTarget is RoundTripObserved sending req to the target
// scheme://host ("http" or "https", and host:port) instead of req.URL's
// scheme and host, which it ignores (the request line carries req.URL's
// path and query), so that a caller sending one request to several
// targets in turn needs no copy of the request and of its URL per target.
// A request without a Host is sent with host as its Host. now, when not
// zero, is the caller's reading of the Transport's clock (see
// TransportOptions.Now) taken just before the call, used instead of a
// reading of its own. The response's Request is req.
func (t *Transport) RoundTripTarget(req *http.Request, scheme, host string, now time.Time, o Observer) (*http.Response, error) {
	if host == "" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errNoTargetHost
	}
	return t.roundTrip(req, scheme, host, now, o, true)
}

// errNoTargetHost is the error of a round trip without a target host.
var errNoTargetHost = errors.New("upstream transport: request without a target host")

// roundTrip is RoundTrip to scheme://host, or to req.URL's scheme and host
// when host is ""; now is the time of the call, or zero; traceDial reports
// the dial's DNS and connect events to o through an httptrace for the dial
// (false when the request's context has a ClientTrace already, which
// receives them).
func (t *Transport) roundTrip(req *http.Request, scheme, host string, now time.Time, o Observer, traceDial bool) (*http.Response, error) {
	if req.Body != nil {
		// As http.RoundTripper requires, on success and on error; the
		// body is written (or given up) before RoundTrip returns.
		defer req.Body.Close()
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if host == "" {
		if req.URL == nil || req.URL.Host == "" {
			return nil, errNoTargetHost
		}
		scheme, host = req.URL.Scheme, req.URL.Host
	}
	if req.URL == nil {
		return nil, errors.New("upstream transport: request without a URL")
	}
	key := connKey{tls: scheme == "https", addr: host}
	if now.IsZero() {
		now = t.now()
	}
	replay := replayable(req)
	cc, err := t.getConn(ctx, key, now, o, traceDial, !replay)
	if err != nil {
		return nil, err
	}
	// Read before the exchange: a connection whose answer ended with its
	// head is back in the pool, another request's, when send returns.
	// On the paths below it is not (closed on an error or a 408).
	unchecked := cc.unchecked
	res, err := cc.send(ctx, req, scheme, o, now)
	if !unchecked || ctx.Err() != nil {
		return res, err
	}
	switch {
	case err != nil && cc.silent && closedUnder(err):
	case err == nil && res.StatusCode == http.StatusRequestTimeout:
		_ = res.Body.Close()
	default:
		return res, err
	}
	// The pooled connection was closed under the request: again, on a
	// new one (the other pooled ones have been idle as long, and may be
	// closing too). The close is the target's idle close, as a check
	// would have found it.
	if cc.raw != nil && cc.raw.idle != nil {
		cc.raw.idle.ObserveIdleClose(now.Sub(cc.idleSince))
	}
	if ro, ok := o.(ResendObserver); ok {
		ro.Resending()
	}
	if cc, err = t.dialTraced(ctx, key, o, traceDial); err != nil {
		return nil, err
	}
	return cc.send(ctx, req, scheme, o, t.now())
}

// replayable reports whether req may be sent again on another connection
// when the pooled one it went out on was found closed: its method is safe
// (RFC 9110 9.2.1) and it has no body.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, "", http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// closedUnder reports whether err says the peer closed or reset the
// connection: an EOF, a reset, or a broken pipe on a write.
func closedUnder(err error) bool {
	return peerClosed(err) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// send makes the exchange on cc, noting the write for the idle learning.
func (cc *clientConn) send(ctx context.Context, req *http.Request, scheme string, o Observer, now time.Time) (*http.Response, error) {
	if cc.raw != nil {
		// The request's write, for the idle learning: the Conn of a
		// transport reads no clock of its own (see Conn.managed).
		cc.raw.lastWrite.Store(now.UnixNano())
	}
	return cc.roundTrip(ctx, req, scheme, o, now)
}

// TimedObserver is an Observer that takes the transport's clock reading
// at the response's first byte rather than reading a clock of its own:
// when the transport's clock is the system's (SystemClock), it calls
// GotFirstResponseByteAt instead of GotFirstResponseByte, and uses the
// same reading for the end of an answer whose body came with its head,
// saving a clock reading per request.
type TimedObserver interface {
	Observer
	// GotFirstResponseByteAt reports the first byte of the response,
	// which came at t (a time.Now reading).
	GotFirstResponseByteAt(t time.Time)
}

// ResendObserver is an Observer told when a replayable request is sent
// again on another connection because the pooled one it took was closed
// under it (see Transport): the connection events that follow are the new
// connection's, and the first one's are void.
type ResendObserver interface {
	Observer
	// Resending is called before the request is sent again.
	Resending()
}

// Observer follows one round trip, as an httptrace.ClientTrace does. The
// transport calls it on the caller's goroutine, except the dial's DNS and
// connect events, which a dial racing addresses may report from its own.
type Observer interface {
	// DNSStart and DNSDone bracket a name lookup.
	DNSStart()
	DNSDone()
	// ConnectStart and ConnectDone bracket a connection attempt.
	ConnectStart()
	ConnectDone(err error)
	// TLSHandshakeStart and TLSHandshakeDone bracket a TLS handshake.
	TLSHandshakeStart()
	TLSHandshakeDone(err error)
	// GotConn reports the connection the request goes on.
	GotConn(c net.Conn, reused bool)
	// WroteRequest reports the whole request written.
	WroteRequest()
	// GotFirstResponseByte reports the first byte of the response.
	GotFirstResponseByte()
}

// clientTraceObserver reports to an httptrace.ClientTrace.
type clientTraceObserver struct{ t *httptrace.ClientTrace }

func (c clientTraceObserver) DNSStart()             {}
func (c clientTraceObserver) DNSDone()              {}
func (c clientTraceObserver) ConnectStart()         {}
func (c clientTraceObserver) ConnectDone(err error) {}
func (c clientTraceObserver) TLSHandshakeStart() {
	if c.t.TLSHandshakeStart != nil {
		c.t.TLSHandshakeStart()
	}
}
func (c clientTraceObserver) TLSHandshakeDone(err error) {
	if c.t.TLSHandshakeDone != nil {
		c.t.TLSHandshakeDone(tls.ConnectionState{}, err)
	}
}
func (c clientTraceObserver) GotConn(conn net.Conn, reused bool) {
	if c.t.GotConn != nil {
		c.t.GotConn(httptrace.GotConnInfo{Conn: conn, Reused: reused, WasIdle: reused})
	}
}
func (c clientTraceObserver) WroteRequest() {
	if c.t.WroteRequest != nil {
		c.t.WroteRequest(httptrace.WroteRequestInfo{})
	}
}
func (c clientTraceObserver) GotFirstResponseByte() {
	if c.t.GotFirstResponseByte != nil {
		c.t.GotFirstResponseByte()
	}
}

// InterimObserver is an Observer that takes the interim (1xx) responses
// other than 101, such as 103 Early Hints, to relay them to the visitor.
type InterimObserver interface {
	Observer
	// Got1xxResponse is called for each interim response, with its
	// header fields; an error ends the exchange with it.
	Got1xxResponse(code int, header http.Header) error
}

// FieldAdder is an Observer that adds header fields to the request it
// follows, written after those of the request's header map: a proxy's
// own fields (X-Forwarded-For, Via) then need no insertions into the
// visitor's map, and it is not changed.
type FieldAdder interface {
	Observer
	// AddedFields returns the fields to add as name, value pairs, names
	// in canonical form. A pair whose name is not a token or is one the
	// transport writes itself (Host, Content-Length, Transfer-Encoding,
	// Trailer), or whose value holds a CR, LF or NUL, is left out, as the
	// map's are. It is called each time the request is written (once more
	// when it is sent again on another connection).
	AddedFields() []string
}

// FieldsObserver is an Observer that takes the final response's header
// fields as they came (Fields) rather than as a header map, to relay them
// without building one: the response the transport returns has a nil
// Header, and GotFields was called with its fields just before the round
// trip returned. The Fields are valid until the response's body is closed
// or read to its end. Interim responses still come as maps.
type FieldsObserver interface {
	Observer
	// GotFields is called with the final response's fields.
	GotFields(f *Fields)
}

// got1xx passes an interim response to o when it takes them (an
// InterimObserver, or a ClientTrace with Got1xxResponse); it reports
// whether it did.
func got1xx(o Observer, code int, h http.Header) (bool, error) {
	switch o := o.(type) {
	case clientTraceObserver:
		if o.t.Got1xxResponse != nil {
			return true, o.t.Got1xxResponse(code, textproto.MIMEHeader(h))
		}
	case InterimObserver:
		return true, o.Got1xxResponse(code, h)
	}
	return false, nil
}

// dialTrace returns ctx with an httptrace that reports the dial's DNS and
// connect events to o.
func dialTrace(ctx context.Context, o Observer) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { o.DNSStart() },
		DNSDone:      func(httptrace.DNSDoneInfo) { o.DNSDone() },
		ConnectStart: func(string, string) { o.ConnectStart() },
		ConnectDone:  func(_, _ string, err error) { o.ConnectDone(err) },
	})
}

// getConn returns an idle connection to key, or dials one; now is the
// time, read from the Transport's clock. check: a pooled connection is
// checked before it is returned (alive); else it is returned unchecked
// (unchecked is set) unless bytes are waiting in its buffer.
func (t *Transport) getConn(ctx context.Context, key connKey, now time.Time, o Observer, traceDial, check bool) (*clientConn, error) {
	for {
		cc := t.popIdle(key)
		if cc == nil {
			break
		}
		idle := now.Sub(cc.idleSince)
		if idle > t.idleTimeout || cc.retire(idle) || cc.br.Buffered() > 0 || (check && !cc.alive()) {
			cc.close()
			continue
		}
		cc.unchecked = !check
		if o != nil {
			o.GotConn(cc.conn, true)
		}
		return cc, nil
	}
	return t.dialTraced(ctx, key, o, traceDial)
}

// dialTraced is dialConn reporting the dial's DNS and connect events to o
// through an httptrace when traceDial is set.
func (t *Transport) dialTraced(ctx context.Context, key connKey, o Observer, traceDial bool) (*clientConn, error) {
	if traceDial && o != nil {
		ctx = dialTrace(ctx, o)
	}
	return t.dialConn(ctx, key, o)
}

// popIdle takes the latest idle connection to key from the pool, nil when
// there is none, and ends its watch (see watchIdle) if it has one.
func (t *Transport) popIdle(key connKey) *clientConn {
	t.mu.Lock()
	il := t.idle[key]
	if il == nil || len(il.conns) == 0 {
		t.mu.Unlock()
		return nil
	}
	l := il.conns
	cc := l[len(l)-1]
	l[len(l)-1] = nil
	il.conns = l[:len(l)-1]
	t.nIdle--
	done := cc.watchDone
	cc.watchDone = nil
	t.mu.Unlock()
	if done != nil {
		// The watch ends at the deadline (or at once, if it found news
		// and saw the connection gone from the pool).
		_ = cc.conn.SetReadDeadline(aLongTimeAgo())
		<-done
		_ = cc.conn.SetReadDeadline(time.Time{})
		cc.readDeadline = time.Time{}
	}
	return cc
}

// removeIdle takes cc out of its target's idle list, keeping the list's
// order; false when it is not there. The caller holds t.mu.
func (t *Transport) removeIdle(cc *clientConn) bool {
	il := cc.list
	if il == nil || il.gone {
		return false // a list is dropped empty, or with its connections closed
	}
	i := slices.Index(il.conns, cc)
	if i < 0 {
		return false
	}
	il.conns = slices.Delete(il.conns, i, i+1)
	if len(il.conns) == 0 {
		t.dropIdleList(cc.key, il)
	}
	t.nIdle--
	return true
}

// idleList is the idle connections to one target, from the longest idle
// to the latest. A connection keeps the list it went into, so that it
// goes back without a lookup by its key; a list taken out of the pool's
// map is marked gone, and the next connection to its target makes a new
// one. Guarded by the Transport's mu.
type idleList struct {
	conns []*clientConn
	gone  bool
}

// idleListOf returns cc's target's idle list, made when missing. The
// caller holds t.mu.
func (t *Transport) idleListOf(cc *clientConn) *idleList {
	if cc.list != nil && !cc.list.gone {
		return cc.list
	}
	il := t.idle[cc.key]
	if il == nil {
		il = new(idleList)
		t.idle[cc.key] = il
	}
	cc.list = il
	return il
}

// dropIdleList takes the empty list il of key out of the pool's map. The
// caller holds t.mu.
func (t *Transport) dropIdleList(key connKey, il *idleList) {
	il.gone = true
	delete(t.idle, key)
}

// watchIdle waits on the socket of a pooled connection, parked in the
// runtime's poller, until the target closes it or sends anything unasked:
// it then takes the connection from the pool and closes it, and the
// target's IdleLearner learns the close (alive). It ends without touching
// the connection when popIdle took it (which sets a read deadline to end
// the wait) or the sweep closed it. done is closed when it ends.
func (t *Transport) watchIdle(cc *clientConn, done chan struct{}) {
	defer close(done)
	for {
		if cc.peeker.awaitNews() != nil {
			return // taken (the deadline) or closed
		}
		t.mu.Lock()
		mine := cc.watchDone == done && t.removeIdle(cc)
		if mine {
			cc.watchDone = nil
		}
		t.mu.Unlock()
		if !mine {
			return
		}
		if !cc.alive() {
			cc.close()
			return
		}
		// Bytes read through TLS that left it open (a session ticket):
		// back in the pool, watched still.
		if !t.requeue(cc, done) {
			return
		}
	}
}

// retire reports whether the connection has been idle past its target's
// learned keep-alive timeout (less a margin).
func (cc *clientConn) retire(idle time.Duration) bool {
	if cc.raw == nil || cc.raw.idle == nil {
		return false
	}
	d := cc.raw.idle.RetireAfter()
	return d > 0 && idle > d
}

// alive reports whether an idle connection may carry a request: nothing
// has arrived on it (a close, a reset, or bytes nobody asked for). The
// check is a peek at the socket that does not wait (one system call); a
// close it finds is reported to the target's IdleLearner. Over TLS, bytes
// waiting may be a session ticket or a close_notify: they are read through
// TLS, for a millisecond at most.
func (cc *clientConn) alive() bool {
	if cc.br.Buffered() > 0 {
		return false
	}
	switch cc.peeker.peek() {
	case peekEmpty:
		return true
	case peekClosed:
		if cc.raw != nil {
			cc.raw.observeClosed()
		}
		return false
	case peekData:
		if !cc.key.tls {
			return false
		}
		if err := cc.setReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
			return false
		}
		_, err := cc.br.Peek(1)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return false // application data, close_notify or EOF
		}
		return cc.setReadDeadline(time.Time{}) == nil
	}
	return true // cannot tell: the write or the response will
}

func (cc *clientConn) close() {
	_ = cc.conn.Close()
}

// dialConn makes a new connection to key.
func (t *Transport) dialConn(ctx context.Context, key connKey, o Observer) (*clientConn, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, errTransportClosed
	}
	conn, err := t.dial(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	raw := AsConn(conn)
	sock := conn // the socket, under any wrapper
	if raw != nil {
		raw.managed = true
		raw.now = t.now // one clock for its idle times and the pool's
		sock = raw.Conn
	}
	if key.tls {
		tc, err := t.handshake(ctx, conn, key.addr, o)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	cc := &clientConn{t: t, key: key, conn: conn, raw: raw, peeker: newSocketPeeker(sock),
		br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 4096)}
	cc.wake = func() { _ = cc.conn.SetDeadline(aLongTimeAgo()) }
	if a, ok := sock.(readAwaiter); ok && !key.tls {
		cc.awaiter, cc.sendFn = a, cc.sendPending
	}
	if o != nil {
		o.GotConn(conn, false)
	}
	return cc, nil
}

func (t *Transport) handshake(ctx context.Context, conn net.Conn, addr string, o Observer) (*tls.Conn, error) {
	conf := t.tlsConfig
	if conf.ServerName == "" {
		conf = conf.Clone()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	if o != nil {
		o.TLSHandshakeStart()
	}
	hctx := ctx
	if t.tlsHandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, t.tlsHandshakeTimeout)
		defer cancel()
	}
	err := tc.HandshakeContext(hctx)
	if o != nil {
		o.TLSHandshakeDone(err)
	}
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			return nil, tlsTimeoutError{err}
		}
		return nil, err
	}
	return tc, nil
}

// tlsTimeoutError is a TLS handshake cut by its timeout: a net.Error
// timeout, so it is classified as one.
type tlsTimeoutError struct{ err error }

func (e tlsTimeoutError) Error() string   { return "TLS handshake timeout: " + e.err.Error() }
func (e tlsTimeoutError) Unwrap() error   { return e.err }
func (e tlsTimeoutError) Timeout() bool   { return true }
func (e tlsTimeoutError) Temporary() bool { return true }

// putIdle returns a connection to the pool, or closes it when the pool is
// closed or its target has the ceiling of idle connections (see
// SurplusIdle).
func (t *Transport) putIdle(cc *clientConn) {
	if !cc.firstByte.IsZero() && cc.bodyWithHead {
		// The answer ended with its head: the reading at its first
		// byte, microseconds earlier, will do.
		cc.idleSince = cc.firstByte
	} else {
		cc.idleSince = t.now()
	}
	if cc.raw != nil {
		// The end of the response: the idle time starts here.
		cc.raw.lastRead.Store(cc.idleSince.UnixNano())
	}
	t.mu.Lock()
	il := t.idleListOf(cc)
	if t.closed || len(il.conns) >= t.idleCeiling() {
		t.mu.Unlock()
		cc.close()
		return
	}
	il.conns = append(il.conns, cc)
	t.nIdle++
	if cc.peeker != nil {
		// To be watched after sweepEvery: the sweep must come by then.
		t.youngIdle = true
		if t.sweep == nil || !t.sweepFast {
			t.scheduleSweep()
		}
	} else if t.sweep == nil {
		t.scheduleSweep()
	}
	t.mu.Unlock()
}

// SurplusIdle is how long an idle connection beyond MaxIdleConnsPerHost
// stays in the pool: 1s. A connection coming back while the target's idle
// connections are at that count is kept rather than closed, and closed
// by the sweep once it has been idle this long, the longest idle first.
// Under a steady load that needs more connections than the count (an
// HTTP/2 visitor's streams, or more visitors than the count), they are
// reused instead of closed after each request and dialled again for the
// next: each such close leaves a socket in TIME_WAIT for a minute, and at
// a few thousand a second they would use up the ephemeral ports.
const SurplusIdle = time.Second

// SurplusFactor bounds the surplus: at most this many times
// MaxIdleConnsPerHost more idle connections per target (16: 1,024 beyond
// the default 64). What comes back past that is closed.
const SurplusFactor = 16

// idleCeiling is how many idle connections a target may have, the
// surplus included.
func (t *Transport) idleCeiling() int { return t.maxIdlePerHost * (1 + SurplusFactor) }

// sweepEvery is how long a connection stays idle before its socket is
// watched (see watchIdle), and how often the pool is swept while it holds
// connections not watched yet. A target's idle close is noticed when it
// happens, except in a connection's first 50 ms in the pool, where it is
// noticed at the next sweep (IdleLearner ignores closes that soon).
const sweepEvery = 50 * time.Millisecond

// sweepIdleEvery is how often the pool is swept when every idle connection
// is watched: the sweep then only closes those idle past IdleConnTimeout,
// their target's learned keep-alive timeout or SurplusIdle, and may do so
// up to this late. An idle pool makes no system call between sweeps.
const sweepIdleEvery = time.Second

// sweepIdle closes the idle connections that have expired, starts a watch
// (watchIdle) on those idle for sweepEvery, and runs again while any are
// left: after sweepEvery while some are not watched yet, else after
// sweepIdleEvery.
func (t *Transport) sweepIdle() {
	now := t.now()
	var watch []*clientConn
	t.mu.Lock()
	t.youngIdle = false
	for key, il := range t.idle {
		// The list runs from the longest idle to the latest, so the
		// surplus closed is the longest idle.
		l := il.conns
		surplus := len(l) - t.maxIdlePerHost
		kept := l[:0]
		for _, cc := range l {
			idle := now.Sub(cc.idleSince)
			switch {
			case idle > t.idleTimeout || cc.retire(idle) || surplus > 0 && idle >= SurplusIdle:
				// A watch sees the close and ends.
				cc.watchDone = nil
				defer cc.close()
				t.nIdle--
				surplus--
			case cc.watchDone == nil && cc.peeker != nil && idle >= sweepEvery:
				cc.watchDone = make(chan struct{})
				watch = append(watch, cc)
				kept = append(kept, cc)
			default:
				if cc.watchDone == nil && cc.peeker != nil {
					t.youngIdle = true
				}
				kept = append(kept, cc)
			}
		}
		clear(l[len(kept):])
		il.conns = kept
		if len(kept) == 0 {
			t.dropIdleList(key, il)
		}
	}
	for _, cc := range watch {
		go t.watchIdle(cc, cc.watchDone)
	}
	t.scheduleSweep()
	t.mu.Unlock()
}

// scheduleSweep sets the sweep's next run (see sweepIdle), or stops it
// when the pool is empty or closed. The caller holds t.mu.
func (t *Transport) scheduleSweep() {
	if t.nIdle == 0 || t.closed {
		if t.sweep != nil {
			t.sweep.Stop()
			t.sweep = nil
		}
		return
	}
	every := sweepIdleEvery
	if t.youngIdle {
		every = sweepEvery
	}
	if t.sweep == nil {
		t.sweep = time.AfterFunc(every, t.sweepIdle)
	} else {
		t.sweep.Reset(every)
	}
	t.sweepFast = t.youngIdle
}

// requeue puts back a connection its watch found open, keeping its idle
// time and its watch (done); false when it was closed instead (the pool
// is closed or full).
func (t *Transport) requeue(cc *clientConn, done chan struct{}) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	il := t.idleListOf(cc)
	if t.closed || len(il.conns) >= t.idleCeiling() {
		cc.close()
		return false
	}
	// Older than anything pooled since it was taken: at the bottom.
	l := append(il.conns, nil)
	copy(l[1:], l)
	l[0] = cc
	il.conns = l
	t.nIdle++
	cc.watchDone = done
	if t.sweep == nil {
		t.scheduleSweep()
	}
	return true
}

// CloseIdleConnections closes the connections not carrying a request.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[connKey]*idleList)
	t.nIdle = 0
	for _, il := range idle {
		il.gone = true
	}
	t.mu.Unlock()
	for _, il := range idle {
		for _, cc := range il.conns {
			cc.close()
		}
	}
}

// Close closes the idle connections, and every connection when its
// request is done; later round trips fail.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// response is what a round trip allocates for its answer, in one piece:
// the response, and its body's state and reader. They live as long as the
// response.
type response struct {
	res  http.Response
	body responseBody
	lr   io.LimitedReader
}

// mapResponse is a response read into a header map, with the backing
// array of the map's values in the same piece. A response whose fields
// go to a FieldsObserver has no map, and is allocated without it.
type mapResponse struct {
	response
	vals [responseVals]string
}

// responseVals is how many header fields a response may have without a
// second allocation for their values.
const responseVals = 10

// wakeRegistry is a context that wakes a blocked exchange when it is
// cancelled without context.AfterFunc's allocations and lock: the request
// contexts of gatewise's HTTP/1.x server (internal/h1server), and the
// access log's context above them, have it.
type wakeRegistry interface {
	// RegisterWake arranges for wake to run when the context is done;
	// it returns a slot for UnregisterWake, or -1 when it cannot (the
	// caller then uses context.AfterFunc).
	RegisterWake(wake func()) int
	// UnregisterWake undoes RegisterWake; false when wake has started.
	UnregisterWake(slot int) bool
}

// wakeOnCancel is how an exchange is woken when its context is
// cancelled: a slot in a wakeRegistry, or context.AfterFunc's stop
// function, or nothing for a context that cannot be cancelled.
type wakeOnCancel struct {
	reg  wakeRegistry
	slot int
	fn   func() bool
}

// onCancel arranges for wake to run when ctx is cancelled.
func onCancel(ctx context.Context, wake func()) wakeOnCancel {
	if reg, ok := ctx.(wakeRegistry); ok {
		if slot := reg.RegisterWake(wake); slot >= 0 {
			return wakeOnCancel{reg: reg, slot: slot}
		}
	}
	if ctx.Done() == nil {
		return wakeOnCancel{}
	}
	return wakeOnCancel{fn: context.AfterFunc(ctx, wake)}
}

// stop undoes onCancel; false when the wake has started (the context was
// cancelled), as context.AfterFunc's stop reports.
func (w wakeOnCancel) stop() bool {
	switch {
	case w.reg != nil:
		return w.reg.UnregisterWake(w.slot)
	case w.fn != nil:
		return w.fn()
	}
	return true
}

// roundTrip makes one exchange on cc, which the caller no longer holds;
// scheme is the target's.
func (cc *clientConn) roundTrip(ctx context.Context, req *http.Request, scheme string, o Observer, now time.Time) (*http.Response, error) {
	// A cancelled request (visitor gone, request or per-try timeout)
	// wakes any blocked read or write.
	wake := onCancel(ctx, cc.wake)
	cc.silent, cc.firstByte, cc.bodyWithHead = true, time.Time{}, false
	fail := func(err error) (*http.Response, error) {
		wake.stop()
		cc.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return nil, err
	}
	var writeErr error
	if cc.awaiter != nil && (req.Body == nil || req.Body == http.NoBody) {
		// Sent, and the answer awaited, in one step: the deadline goes
		// first.
		if cc.t.responseHeaderTimeout > 0 {
			if err := cc.armHeaderDeadline(req, now); err != nil {
				return fail(err)
			}
		}
		cc.pending = pendingRequest{req: req, scheme: scheme, o: o}
		writeErr = cc.awaiter.WriteThenAwaitRead(cc.sendFn)
		cc.pending = pendingRequest{}
		if writeErr != nil {
			return fail(writeErr)
		}
	} else {
		writeErr = cc.sendRequest(req, scheme, o)
		// A request that was not written whole (the target closed, the
		// body failed) has no answer worth waiting for, except one the
		// target sent before it stopped reading (413 to a large body).
		if writeErr != nil && (req.Body == nil || req.Body == http.NoBody || !cc.responseWaiting()) {
			return fail(writeErr)
		}
		if cc.t.responseHeaderTimeout > 0 {
			if err := cc.armHeaderDeadline(req, now); err != nil {
				return fail(err)
			}
		}
	}
	resp, err := cc.readResponse(req, o)
	if err != nil {
		return fail(err)
	}
	res := &resp.res
	cc.bodyWithHead = cc.bodyBuffered(req, res)
	if cc.t.responseHeaderTimeout > 0 {
		if !cc.bodyWithHead {
			if err := cc.setReadDeadline(time.Time{}); err != nil {
				return fail(err)
			}
		}
		if ctx.Err() != nil {
			// Cancelled after the headers: its deadline, set by stop's
			// function, may have just been cleared.
			return fail(ctx.Err())
		}
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		if !wake.stop() {
			return fail(context.Cause(ctx))
		}
		res.ContentLength = 0 // no body but the connection itself, as net/http has it
		res.Body = &upgradedConn{cc: cc}
		return res, nil
	}
	// A 408 on an unchecked connection is sent again elsewhere (see
	// Transport): this connection is done.
	keep := !res.Close && !req.Close && cc.t.maxIdlePerHost > 0 && writeErr == nil &&
		!(cc.unchecked && res.StatusCode == http.StatusRequestTimeout)
	body := &resp.body
	*body = responseBody{cc: cc, wake: wake, keep: keep, ctx: ctx}
	switch {
	case req.Method == http.MethodHead || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified:
		res.Body = http.NoBody
		res.ContentLength = max(res.ContentLength, 0)
		if req.Method != http.MethodHead {
			res.ContentLength = 0
		}
		body.done(nil)
		return res, nil
	case len(res.TransferEncoding) > 0:
		body.r = &chunkedBody{br: cc.br, res: res}
	case res.ContentLength >= 0:
		if res.ContentLength == 0 {
			res.Body = http.NoBody
			body.done(nil)
			return res, nil
		}
		resp.lr = io.LimitedReader{R: cc.br, N: res.ContentLength}
		body.r = &resp.lr
	default:
		// Until the target closes the connection.
		body.keep = false
		body.r = cc.br
		body.untilClose = true
	}
	res.Body = body
	return res, nil
}

// readAwaiter is a socket that sends and then waits for the answer
// without the read that would find nothing (sockio.Conn).
type readAwaiter interface {
	WriteThenAwaitRead(send func() error) error
}

// pendingRequest is what sendPending sends.
type pendingRequest struct {
	req    *http.Request
	scheme string
	o      Observer
}

// sendPending sends cc.pending: the awaiter's send.
func (cc *clientConn) sendPending() error {
	p := &cc.pending
	return cc.sendRequest(p.req, p.scheme, p.o)
}

// sendRequest writes req and flushes it, then reports the write to o.
func (cc *clientConn) sendRequest(req *http.Request, scheme string, o Observer) error {
	var added []string
	if fa, ok := o.(FieldAdder); ok {
		added = fa.AddedFields()
	}
	err := cc.writeRequest(req, scheme, added)
	if err == nil {
		err = cc.bw.Flush()
	}
	if err == nil && o != nil {
		o.WroteRequest()
	}
	return err
}

// responseWaiting reports whether a response has arrived on a connection
// whose request could not be written whole.
func (cc *clientConn) responseWaiting() bool {
	if cc.br.Buffered() > 0 {
		return true
	}
	if err := cc.setReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		return false
	}
	_, err := cc.br.Peek(1)
	// The response is read without this deadline (or with the response
	// header timeout).
	return err == nil && cc.setReadDeadline(time.Time{}) == nil
}

// setReadDeadline sets conn's read deadline and notes it.
func (cc *clientConn) setReadDeadline(t time.Time) error {
	cc.readDeadline = t
	return cc.conn.SetReadDeadline(t)
}

// armHeaderDeadline makes sure the response's head arrives within the
// response header timeout of the request's write. Setting a socket
// deadline costs a runtime timer update, so the deadline is set a slack
// later than the timeout (a sixteenth of it, at most a second) and left in
// place after an answer whose body was already read with its head
// (bodyBuffered): a later request on the connection sets it again only
// when less than the timeout is left. The timeout thus fires between the
// timeout and the timeout plus the slack after the request was written.
//
// start is the transport's clock read when the round trip began; it stands
// for the time of the write, saving a reading, when it is the system clock,
// the request had no body to send and the connection was reused (a
// deadline is set), so that only a short write lies between: less than
// the slack.
func (cc *clientConn) armHeaderDeadline(req *http.Request, start time.Time) error {
	d := cc.t.responseHeaderTimeout
	now := start
	if !cc.t.systemClock || now.IsZero() || cc.readDeadline.IsZero() || (req.Body != nil && req.Body != http.NoBody) {
		now = time.Now()
	}
	if !cc.readDeadline.IsZero() && !cc.readDeadline.Before(now.Add(d)) {
		return nil
	}
	return cc.setReadDeadline(now.Add(d + min(d/16, time.Second)))
}

// bodyBuffered reports whether the body of res, the answer to req, needs
// no further read from the socket: it has none, or all of it came with the
// head. The response header timeout's deadline may then stay set.
func (cc *clientConn) bodyBuffered(req *http.Request, res *http.Response) bool {
	switch {
	case res.StatusCode == http.StatusSwitchingProtocols:
		return false
	case req.Method == http.MethodHead || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified:
		return true
	case len(res.TransferEncoding) > 0:
		return false
	case res.ContentLength >= 0:
		return int64(cc.br.Buffered()) >= res.ContentLength
	}
	return false
}

// writeRequest writes the request line, the headers and the body into the
// connection's buffer; scheme is the target's, added the name, value
// pairs written after the header map's fields (see FieldAdder).
func (cc *clientConn) writeRequest(req *http.Request, scheme string, added []string) error {
	w := cc.bw
	uri := req.URL.RequestURI()
	if strings.HasPrefix(req.URL.Opaque, "//") && req.URL.Scheme != scheme {
		// The only form whose request-target names the scheme.
		u := *req.URL
		u.Scheme = scheme
		uri = u.RequestURI()
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet // as http.Request documents for clients
	}
	if !validRequestTarget(uri) || !validMethod(method) {
		return errors.New("upstream transport: invalid method or request target")
	}
	host := req.Host
	if host == "" {
		host = cc.key.addr
	}
	if !validRequestTarget(host) { // no spaces or control bytes
		return errors.New("upstream transport: invalid Host")
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		switch {
		case framingField(k):
			continue
		case k == "User-Agent":
			// An empty value means none, as with net/http.
			if len(vs) == 0 || vs[0] == "" {
				continue
			}
		}
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			if httpsyntax.BreaksField(v) {
				continue // never a header split on its way to the upstream
			}
			writeField(w, k, v)
		}
	}
	for i := 0; i+1 < len(added); i += 2 {
		if k, v := added[i], added[i+1]; validHeaderName(k) && !framingField(k) && !httpsyntax.BreaksField(v) {
			writeField(w, k, v)
		}
	}
	if req.Close && req.Header.Get("Connection") == "" {
		w.WriteString("Connection: close\r\n")
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	chunked := false
	switch {
	case hasBody && req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		var num [20]byte
		w.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		w.WriteString("\r\n")
	case hasBody:
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			names := make([]string, 0, len(req.Trailer))
			for k := range req.Trailer {
				if validHeaderName(k) {
					names = append(names, k)
				}
			}
			if len(names) > 0 {
				w.WriteString("Trailer: " + strings.Join(names, ", ") + "\r\n")
			}
		}
	case methodExpectsBody(req.Method):
		w.WriteString("Content-Length: 0\r\n")
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	if !hasBody {
		return nil
	}
	buf := cc.t.getCopyBuffer()
	defer cc.t.putCopyBuffer(buf)
	if !chunked {
		n, err := io.CopyBuffer(w, io.LimitReader(req.Body, req.ContentLength), *buf)
		if err == nil && n < req.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for {
		n, rerr := req.Body.Read(*buf)
		if n > 0 {
			var size [16]byte
			w.Write(strconv.AppendUint(size[:0], uint64(n), 16))
			w.WriteString("\r\n")
			w.Write((*buf)[:n])
			if _, err := w.WriteString("\r\n"); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	w.WriteString("0\r\n")
	for k, vs := range req.Trailer {
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			if !strings.ContainsAny(v, "\r\n\x00") {
				w.WriteString(k + ": " + v + "\r\n")
			}
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// framingField reports whether k is a field the transport writes itself
// (the request's Host and framing), never taken from the caller's.
func framingField(k string) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeField writes one header field line, "k: v".
func writeField(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString("\r\n")
}

// methodExpectsBody reports whether a request with this method and no body
// is sent with "Content-Length: 0", as net/http does.
func methodExpectsBody(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// getCopyBuffer lends a 32 KiB buffer for copying request bodies.
func (t *Transport) getCopyBuffer() *[]byte {
	if b, ok := t.buffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 32*1024)
	return &b
}

func (t *Transport) putCopyBuffer(b *[]byte) { t.buffers.Put(b) }

// maxRelayedInterims is how many interim responses an observer that takes
// them gets a fresh header limit for (net/http's client allows 5).
const maxRelayedInterims = 5

// readResponse reads the status line and the header section, skipping
// interim (1xx) responses other than 101.
func (cc *clientConn) readResponse(req *http.Request, o Observer) (*response, error) {
	first := true
	budget := cc.t.maxHeaderBytes
	interims := 0
	fo, raw := o.(FieldsObserver)
	for {
		if first {
			if _, err := cc.br.Peek(1); err != nil {
				return nil, err
			}
			cc.silent = false
			if to, ok := o.(TimedObserver); ok && cc.t.systemClock {
				cc.firstByte = time.Now()
				to.GotFirstResponseByteAt(cc.firstByte)
			} else if o != nil {
				o.GotFirstResponseByte()
			}
			first = false
		}
		// A new one per head: an interim response's header map may be
		// kept by its hook.
		var resp *response
		if raw {
			resp = new(response)
			if err := readHeadFields(cc.br, &budget, &cc.scratch, &resp.res, &cc.fields); err != nil {
				return nil, err
			}
		} else {
			mr := new(mapResponse)
			resp = &mr.response
			if err := readHead(cc.br, &budget, &cc.scratch, &resp.res, mr.vals[:]); err != nil {
				return nil, err
			}
		}
		res := &resp.res
		interim := res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols
		if raw && interim {
			res.Header = cc.fields.Header()
		}
		if interim {
			cc.firstByte = time.Time{} // not the final answer's
			// Interim responses share the header limit with the final
			// one, so a target cannot send them for ever; one handed to
			// Got1xxResponse is the hook's to limit, as with net/http.
			if o != nil {
				taken, err := got1xx(o, res.StatusCode, res.Header)
				if err != nil {
					return nil, err
				}
				// A hook that takes them gets a fresh header limit
				// for each of the first few; after that they share
				// the limit again, so none can come for ever.
				if interims++; taken && interims <= maxRelayedInterims {
					budget = cc.t.maxHeaderBytes
				}
			}
			continue
		}
		res.Request = req
		if raw {
			fo.GotFields(&cc.fields)
		}
		return resp, nil
	}
}

// responseBody is a response's body as the proxy reads it. At its end the
// connection goes back to the pool when it may carry another request;
// closed early, the connection is closed.
type responseBody struct {
	cc         *clientConn
	r          io.Reader
	ctx        context.Context
	wake       wakeOnCancel
	keep       bool
	untilClose bool
	finished   bool
	err        error
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.finished {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	//nolint:errorlint // io.EOF is returned unwrapped by contract
	n, err := b.r.Read(p)
	if lr, ok := b.r.(*io.LimitedReader); ok {
		if err == io.EOF && lr.N > 0 {
			err = io.ErrUnexpectedEOF
		} else if err == nil && lr.N == 0 {
			err = io.EOF
		}
	}
	switch {
	case err == nil:
	case err == io.EOF:
		b.done(nil)
	default:
		if b.ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(b.ctx), err)
		}
		b.done(err)
	}
	return n, err
}

// done ends the exchange: the connection is pooled after a clean end of a
// keep-alive response, else closed.
func (b *responseBody) done(err error) {
	if b.finished {
		return
	}
	b.finished = true
	b.err = err
	stopped := b.wake.stop()
	if err == nil && b.keep && stopped {
		b.cc.t.putIdle(b.cc)
		return
	}
	b.cc.close()
}

// Close ends the body; a body not read to its end closes the connection.
func (b *responseBody) Close() error {
	if !b.finished {
		b.keep = false
		b.done(nil)
	}
	return nil
}

// upgradedConn is the body of a 101 response: the connection itself, for
// the reverse proxy to copy both ways.
type upgradedConn struct {
	cc *clientConn
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.cc.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.cc.conn.Write(p) }
func (u *upgradedConn) Close() error                { return u.cc.conn.Close() }

// peekResult is what a socketPeeker found on an idle socket.
type peekResult uint8

const (
	// peekUnknown: the socket could not be looked at.
	peekUnknown peekResult = iota
	// peekEmpty: nothing to read; the connection is open.
	peekEmpty
	// peekClosed: the peer closed or reset the connection.
	peekClosed
	// peekData: bytes are waiting.
	peekData
)
