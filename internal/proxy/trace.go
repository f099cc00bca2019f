package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/obs"
	"github.com/gatewise/gatewise/internal/upstream"
)

// attemptTrace follows one attempt through net/http/httptrace: the phase it
// reached, the time of each phase, and the connection it used. Its hooks run
// on the transport's goroutines, hence the mutex.
type attemptTrace struct {
	mu sync.Mutex

	phase                         cause.Phase
	dnsStart, connStart, tlsStart time.Time
	wrote                         time.Time
	firstByte                     time.Time // when the response's first byte came
	interimSeen                   bool      // an interim (1xx) response came first
	phases                        obs.Phases
	conn                          *upstream.Conn
	readAtGotConn                 int64
	now                           func() time.Time
	// systemClock: now is time.Now, so the transport's readings of the
	// system clock may stand for its own (GotFirstResponseByteAt).
	systemClock bool
	// start is the attempt's start, on now's clock; bodiless: the
	// request has no body. On a reused connection such a request is
	// written microseconds after start, which then stands for the time
	// of the write (WroteRequest) and saves a clock reading.
	start    time.Time
	bodiless bool
	// interim relays the upstream's interim responses to the visitor on
	// the direct path; on httputil.ReverseProxy's, its ClientTrace's
	// Got1xxResponse does (rp1xx). Neither: they are dropped.
	interim *interimRelay
	rp1xx   func(code int, header textproto.MIMEHeader) error
	// wantFields: the attempt takes the response's header fields raw
	// (fieldsTrace), into fields, on the direct path.
	wantFields bool
	fields     *upstream.Fields
	// added: the fields the direct path adds to the request, as name,
	// value pairs (fieldsTrace.AddedFields).
	added []string
	// resent: the request went again on another connection (Resending).
	resent bool
}

// fieldsTrace is an attemptTrace that takes the final response's header
// fields raw (upstream.FieldsObserver): the response then comes without a
// header map, which the direct path builds only when it cannot relay the
// fields as they are (see Handler.relayFields). It is called on the
// request's goroutine, the one that reads fields.
type fieldsTrace struct{ *attemptTrace }

// AddedFields returns the fields the direct path adds to the request: the
// forwarding fields and X-Request-Id (upstream.FieldAdder).
func (f fieldsTrace) AddedFields() []string { return f.added }

// GotFields keeps the response's fields.
func (a fieldsTrace) GotFields(f *upstream.Fields) { a.fields = f }

// advance moves the phase forward, never back (a dial racing in the
// background may report late).
func (a *attemptTrace) advance(p cause.Phase) {
	if p > a.phase {
		a.phase = p
	}
}

// The attempt's events, as an upstream.Observer.

// DNSStart notes a name lookup starting.
func (a *attemptTrace) DNSStart() {
	a.mu.Lock()
	a.advance(cause.PhaseDNS)
	a.dnsStart = a.now()
	a.mu.Unlock()
}

// DNSDone notes the lookup's end.
func (a *attemptTrace) DNSDone() {
	a.mu.Lock()
	a.phases.DNS = a.now().Sub(a.dnsStart)
	a.mu.Unlock()
}

// ConnectStart notes a connection attempt starting.
func (a *attemptTrace) ConnectStart() {
	a.mu.Lock()
	a.advance(cause.PhaseConnect)
	if a.connStart.IsZero() {
		a.connStart = a.now()
	}
	a.mu.Unlock()
}

// ConnectDone notes a connection made (failures are the error's to tell).
func (a *attemptTrace) ConnectDone(err error) {
	if err != nil {
		return
	}
	a.mu.Lock()
	a.phases.Connect = a.now().Sub(a.connStart)
	a.mu.Unlock()
}

// TLSHandshakeStart notes the TLS handshake starting.
func (a *attemptTrace) TLSHandshakeStart() {
	a.mu.Lock()
	a.advance(cause.PhaseTLS)
	a.tlsStart = a.now()
	a.mu.Unlock()
}

// TLSHandshakeDone notes its end.
func (a *attemptTrace) TLSHandshakeDone(error) {
	a.mu.Lock()
	a.phases.TLS = a.now().Sub(a.tlsStart)
	a.mu.Unlock()
}

// GotConn notes the connection the request goes on.
func (a *attemptTrace) GotConn(c net.Conn, reused bool) {
	a.mu.Lock()
	a.advance(cause.PhaseConnected)
	a.phases.Reused = reused
	a.conn = upstream.AsConn(c)
	if a.conn != nil {
		a.readAtGotConn = a.conn.BytesRead()
	}
	a.mu.Unlock()
}

// Resending forgets the connection the request first went on: the
// transport found it closed by the target before any answer and sends the
// request again on another (upstream.ResendObserver). The attempt's phase
// and timings start over with the new connection.
func (a *attemptTrace) Resending() {
	a.mu.Lock()
	a.phase = cause.PhaseNone
	a.phases = obs.Phases{}
	a.dnsStart, a.connStart, a.tlsStart, a.wrote, a.firstByte = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	a.interimSeen = false
	a.conn, a.readAtGotConn = nil, 0
	a.fields = nil
	a.resent = true
	a.mu.Unlock()
}

// The attempt hears of a request sent again on another connection, and
// takes the transport's reading of the first byte's time.
var (
	_ upstream.ResendObserver = (*attemptTrace)(nil)
	_ upstream.TimedObserver  = (*attemptTrace)(nil)
)

// WroteRequest notes the whole request written: now, or the attempt's
// start for a request without a body on a reused connection (see start).
func (a *attemptTrace) WroteRequest() {
	a.mu.Lock()
	a.advance(cause.PhaseRequestWritten)
	if a.bodiless && a.phases.Reused && !a.start.IsZero() {
		a.wrote = a.start
	} else {
		a.wrote = a.now()
	}
	a.mu.Unlock()
}

// GotFirstResponseByte notes the response's first byte.
func (a *attemptTrace) GotFirstResponseByte() { a.gotFirstByte(a.now()) }

// GotFirstResponseByteAt notes the response's first byte, which came at
// t by the system clock (upstream.TimedObserver): t is taken when the
// trace's clock is the system's too.
func (a *attemptTrace) GotFirstResponseByteAt(t time.Time) {
	if !a.systemClock {
		t = a.now()
	}
	a.gotFirstByte(t)
}

func (a *attemptTrace) gotFirstByte(t time.Time) {
	a.mu.Lock()
	a.advance(cause.PhaseFirstByte)
	a.firstByte = t
	if !a.wrote.IsZero() {
		a.phases.FirstByte = a.firstByte.Sub(a.wrote)
	}
	a.mu.Unlock()
}

// clientTrace reports the same events from net/http/httptrace, for
// transports that have no upstream.Observer entry point.
// Got1xxResponse relays an interim response (103 Early Hints and the
// like) to the visitor on the direct path (upstream.InterimObserver).
func (a *attemptTrace) Got1xxResponse(code int, header http.Header) error {
	a.mu.Lock()
	a.interimSeen = true
	a.mu.Unlock()
	switch {
	case code == http.StatusContinue:
		// The visitor's 100 Continue is the gateway's own to send
		// (when the body is first read), not the upstream's.
		return nil
	case a.interim != nil:
		return a.interim.relay(code, header)
	case a.rp1xx != nil:
		return a.rp1xx(code, textproto.MIMEHeader(header))
	}
	return nil
}

func (a *attemptTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { a.DNSStart() },
		DNSDone:           func(httptrace.DNSDoneInfo) { a.DNSDone() },
		ConnectStart:      func(string, string) { a.ConnectStart() },
		ConnectDone:       func(_, _ string, err error) { a.ConnectDone(err) },
		TLSHandshakeStart: a.TLSHandshakeStart,
		TLSHandshakeDone:  func(_ tls.ConnectionState, err error) { a.TLSHandshakeDone(err) },
		GotConn:           func(info httptrace.GotConnInfo) { a.GotConn(info.Conn, info.Reused) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				a.WroteRequest()
			}
		},
		GotFirstResponseByte: a.GotFirstResponseByte,
	}
}

// state returns the phase reached, the phase timings, the bytes read on
// the attempt's connection since it was handed to the request, and when the
// final response's first byte came (zero: it did not, or an interim
// response's came first, so the time is not the final one's).
func (a *attemptTrace) state() (cause.Phase, obs.Phases, int64, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var read int64
	if a.conn != nil {
		read = a.conn.BytesRead() - a.readAtGotConn
	}
	if a.interimSeen {
		return a.phase, a.phases, read, time.Time{}
	}
	return a.phase, a.phases, read, a.firstByte
}
