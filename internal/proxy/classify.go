package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/upstream"
)

// classification is what classify needs to know about an attempt besides
// its error.
type classification struct {
	// phase is how far the attempt got.
	phase cause.Phase
	// bytesRead is how many bytes the attempt's connection read after it
	// was handed to the request.
	bytesRead int64
	// maxHeaderBytes is the response header limit in force.
	maxHeaderBytes int64
	// clientGone reports whether the visitor's request context was
	// cancelled (they closed the connection).
	clientGone bool
}

// classify maps an attempt's error to a cause from its type (errors.Is and
// errors.As only, never its text) and from the phase the attempt reached.
func classify(err error, c classification) *cause.Error {
	if ce, ok := cause.Of(err); ok {
		return ce
	}
	mk := func(id cause.ID, detail string) *cause.Error {
		return &cause.Error{ID: id, Detail: detail, Phase: c.phase, Err: err}
	}
	if c.clientGone && errors.Is(err, context.Canceled) {
		return mk(cause.ClientClosed, "")
	}
	if errors.Is(err, upstream.ErrRetiredIdle) {
		// A pooled connection dropped before a byte was written: the
		// upstream saw nothing, so any request may be retried.
		return &cause.Error{ID: cause.ConnectionTerminated, Detail: "idle connection retired", Phase: cause.PhaseConnect, Err: err}
	}
	if errors.Is(err, errSuperseded) || errors.Is(err, errNotReplayable) {
		return mk(cause.ConnectionTerminated, "body")
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return mk(cause.DNSError, "not found")
		case dnsErr.IsTimeout:
			return mk(cause.DNSError, "timeout")
		default:
			return mk(cause.DNSError, "lookup failed")
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return mk(cause.ConnectionRefused, "")
	}
	if errors.Is(err, syscall.EHOSTUNREACH) {
		return mk(cause.DestinationUnavailable, "host unreachable")
	}
	if errors.Is(err, syscall.ENETUNREACH) {
		return mk(cause.DestinationUnavailable, "network unreachable")
	}
	if certificateError(err) {
		return mk(cause.TLSCertificateError, "")
	}
	timeout := isTimeout(err)
	if c.phase == cause.PhaseTLS && !timeout {
		return mk(cause.TLSProtocolError, "handshake")
	}
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	if errors.As(err, &recErr) || errors.As(err, &alert) {
		return mk(cause.TLSProtocolError, "")
	}
	if timeout {
		switch {
		case c.phase == cause.PhaseTLS:
			return mk(cause.ConnectionTimeout, "tls handshake")
		case c.phase < cause.PhaseConnected:
			return mk(cause.ConnectionTimeout, "")
		case c.phase == cause.PhaseFirstByte:
			return mk(cause.HTTPResponseTimeout, "headers")
		default:
			return mk(cause.HTTPResponseTimeout, "")
		}
	}
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	switch {
	case c.phase >= cause.PhaseHeaders:
		if reset {
			return mk(cause.HTTPResponseIncomplete, "body reset")
		}
		return mk(cause.HTTPResponseIncomplete, "body")
	case c.phase == cause.PhaseFirstByte:
		if c.maxHeaderBytes > 0 && c.bytesRead >= c.maxHeaderBytes {
			return mk(cause.HTTPResponseHeaderSectionSize, "")
		}
		if reset || closed {
			return mk(cause.HTTPResponseIncomplete, "headers")
		}
		return mk(cause.HTTPProtocolError, "")
	case c.phase >= cause.PhaseConnected:
		if reset {
			return mk(cause.ConnectionTerminated, "reset")
		}
		if closed {
			return mk(cause.ConnectionTerminated, "closed")
		}
	}
	if c.clientGone {
		return mk(cause.ClientClosed, "")
	}
	if reset {
		return mk(cause.ConnectionTerminated, "reset")
	}
	if closed {
		return mk(cause.ConnectionTerminated, "closed")
	}
	return mk(cause.ProxyInternalError, "")
}

// certificateError reports whether err is a failure to verify the peer's
// certificate.
func certificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// isTimeout reports whether err is a timeout: a net.Error that says so, or
// a context deadline.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
