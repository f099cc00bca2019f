package cause

import (
	"errors"
	"fmt"
	"time"
)

// Phase is how far a request to an upstream got before it failed, as
// observed with net/http/httptrace. The phase decides the cause of many
// errors and whether a retry is safe: before PhaseRequestWritten the
// upstream has seen none of the request.
type Phase uint8

// The phases of one attempt, in order.
const (
	// PhaseNone means the attempt had not started (no target was picked).
	PhaseNone Phase = iota
	// PhaseDNS means the host name was being resolved.
	PhaseDNS
	// PhaseConnect means a TCP (or unix socket) connection was being made.
	PhaseConnect
	// PhaseTLS means the TLS handshake was in progress.
	PhaseTLS
	// PhaseConnected means a connection was ready and the request was
	// being written.
	PhaseConnected
	// PhaseRequestWritten means the whole request had been written and the
	// gateway was waiting for the first byte of the response.
	PhaseRequestWritten
	// PhaseFirstByte means some of the response had arrived but not all of
	// its header section.
	PhaseFirstByte
	// PhaseHeaders means the response's header section had arrived and its
	// body was being read.
	PhaseHeaders
)

// String returns the phase's name as used in logs, such as "request_written".
func (p Phase) String() string {
	phaseNames := [...]string{"none", "dns", "connect", "tls", "connected", "request_written", "first_byte", "headers"}
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// RequestMayHaveReached reports whether the upstream may have received any
// of the request in this phase. A request whose bytes provably never left
// the gateway is safe to send again whatever its method.
func (p Phase) RequestMayHaveReached() bool { return p >= PhaseConnected }

// Error is a failure classified into a cause. It wraps the underlying error
// so that errors.Is and errors.As see through it.
type Error struct {
	// ID is the cause.
	ID ID
	// Detail says more about the cause in words safe to show to anyone,
	// such as "reset" or "closed" for connection_terminated. It never holds
	// an address or a raw error string. May be empty.
	Detail string
	// Phase is how far the attempt got.
	Phase Phase
	// Target is the upstream target (host:port or socket path) the attempt
	// went to, for the owner's log. Empty when no target was picked.
	Target string
	// Err is the underlying error, for the owner's log. May be nil.
	Err error
	// RetryAfter, when positive, is how long the visitor should wait before
	// trying again (the Retry-After header).
	RetryAfter time.Duration
}

// Error returns the cause, the detail and the underlying error, for logs.
// It is never shown to a visitor.
func (e *Error) Error() string {
	s := string(e.ID)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Target != "" {
		s += " to " + e.Target
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error for the cause id wrapping err.
func New(id ID, detail string, err error) *Error {
	return &Error{ID: id, Detail: detail, Err: err}
}

// Of returns the cause carried by err and whether there was one. It uses
// errors.As, so a cause wrapped with %w anywhere in the chain is found.
func Of(err error) (*Error, bool) {
	var ce *Error
	if errors.As(err, &ce) {
		return ce, true
	}
	return nil, false
}
