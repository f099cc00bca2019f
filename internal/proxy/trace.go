package proxy

import (
	"crypto/tls"
	"net/http/httptrace"
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
	phases                        obs.Phases
	conn                          *upstream.Conn
	readAtGotConn                 int64
	now                           func() time.Time
}

func newAttemptTrace(now func() time.Time) *attemptTrace {
	return &attemptTrace{now: now}
}

// advance moves the phase forward, never back (a dial racing in the
// background may report late).
func (a *attemptTrace) advance(p cause.Phase) {
	if p > a.phase {
		a.phase = p
	}
}

func (a *attemptTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) {
			a.mu.Lock()
			a.advance(cause.PhaseDNS)
			a.dnsStart = a.now()
			a.mu.Unlock()
		},
		DNSDone: func(httptrace.DNSDoneInfo) {
			a.mu.Lock()
			a.phases.DNS = a.now().Sub(a.dnsStart)
			a.mu.Unlock()
		},
		ConnectStart: func(string, string) {
			a.mu.Lock()
			a.advance(cause.PhaseConnect)
			if a.connStart.IsZero() {
				a.connStart = a.now()
			}
			a.mu.Unlock()
		},
		ConnectDone: func(_, _ string, err error) {
			if err != nil {
				return
			}
			a.mu.Lock()
			a.phases.Connect = a.now().Sub(a.connStart)
			a.mu.Unlock()
		},
		TLSHandshakeStart: func() {
			a.mu.Lock()
			a.advance(cause.PhaseTLS)
			a.tlsStart = a.now()
			a.mu.Unlock()
		},
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			a.mu.Lock()
			a.phases.TLS = a.now().Sub(a.tlsStart)
			a.mu.Unlock()
		},
		GotConn: func(info httptrace.GotConnInfo) {
			a.mu.Lock()
			a.advance(cause.PhaseConnected)
			a.phases.Reused = info.Reused
			a.conn = upstream.AsConn(info.Conn)
			if a.conn != nil {
				a.readAtGotConn = a.conn.BytesRead()
			}
			a.mu.Unlock()
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			a.mu.Lock()
			a.advance(cause.PhaseRequestWritten)
			a.wrote = a.now()
			a.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			a.mu.Lock()
			a.advance(cause.PhaseFirstByte)
			if !a.wrote.IsZero() {
				a.phases.FirstByte = a.now().Sub(a.wrote)
			}
			a.mu.Unlock()
		},
	}
}

// state returns the phase reached, the phase timings, and the bytes read on
// the attempt's connection since it was handed to the request.
func (a *attemptTrace) state() (cause.Phase, obs.Phases, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var read int64
	if a.conn != nil {
		read = a.conn.BytesRead() - a.readAtGotConn
	}
	return a.phase, a.phases, read
}
