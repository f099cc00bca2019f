package cause

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// Attempt is what Classify needs to know about a request to an upstream
// (a proxied attempt or a health check) besides its error.
type Attempt struct {
	// Phase is how far the attempt got.
	Phase Phase
	// BytesRead is how many bytes the attempt's connection read after it
	// was handed to the request. Zero when unknown.
	BytesRead int64
	// MaxHeaderBytes is the response header limit in force; zero skips the
	// header-size check.
	MaxHeaderBytes int64
	// ClientGone reports whether the visitor's request context was
	// cancelled (they closed the connection).
	ClientGone bool
}

// Classify maps the error of a request to an upstream to a cause, from the
// error's type (errors.Is and errors.As only, never its text) and the phase
// the attempt reached. An error that already carries a cause keeps it.
func Classify(err error, a Attempt) *Error {
	if ce, ok := Of(err); ok {
		return ce
	}
	mk := func(id ID, detail string) *Error {
		return &Error{ID: id, Detail: detail, Phase: a.Phase, Err: err}
	}
	if a.ClientGone && errors.Is(err, context.Canceled) {
		return mk(ClientClosed, "")
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return mk(DNSError, "not found")
		case dnsErr.IsTimeout:
			return mk(DNSError, "timeout")
		default:
			return mk(DNSError, "lookup failed")
		}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return mk(ConnectionRefused, "")
	}
	if errors.Is(err, syscall.EHOSTUNREACH) {
		return mk(DestinationUnavailable, "host unreachable")
	}
	if errors.Is(err, syscall.ENETUNREACH) {
		return mk(DestinationUnavailable, "network unreachable")
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return mk(LocalPortsExhausted, "")
	}
	if errors.Is(err, syscall.EMFILE) {
		return mk(FileDescriptorsExhausted, "process limit")
	}
	if errors.Is(err, syscall.ENFILE) {
		return mk(FileDescriptorsExhausted, "system limit")
	}
	if certificateError(err) {
		return mk(TLSCertificateError, "")
	}
	timeout := isTimeout(err)
	if a.Phase == PhaseTLS && !timeout {
		return mk(TLSProtocolError, "handshake")
	}
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	if errors.As(err, &recErr) || errors.As(err, &alert) {
		return mk(TLSProtocolError, "")
	}
	if timeout {
		switch {
		case a.Phase == PhaseTLS:
			return mk(ConnectionTimeout, "tls handshake")
		case a.Phase < PhaseConnected:
			return mk(ConnectionTimeout, "")
		case a.Phase == PhaseFirstByte:
			return mk(HTTPResponseTimeout, "headers")
		default:
			return mk(HTTPResponseTimeout, "")
		}
	}
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	switch {
	case a.Phase >= PhaseHeaders:
		if reset {
			return mk(HTTPResponseIncomplete, "body reset")
		}
		return mk(HTTPResponseIncomplete, "body")
	case a.Phase == PhaseFirstByte:
		if a.MaxHeaderBytes > 0 && a.BytesRead >= a.MaxHeaderBytes {
			return mk(HTTPResponseHeaderSectionSize, "")
		}
		if reset || closed {
			return mk(HTTPResponseIncomplete, "headers")
		}
		return mk(HTTPProtocolError, "")
	case a.Phase >= PhaseConnected:
		if reset {
			return mk(ConnectionTerminated, "reset")
		}
		if closed {
			return mk(ConnectionTerminated, "closed")
		}
	}
	if a.ClientGone {
		return mk(ClientClosed, "")
	}
	if reset {
		return mk(ConnectionTerminated, "reset")
	}
	if closed {
		return mk(ConnectionTerminated, "closed")
	}
	return mk(ProxyInternalError, "")
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
