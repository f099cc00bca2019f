package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
)

// timeoutErr is a net.Error that reports a timeout, as the transport's
// response header timeout does.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func opErr(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		err        error
		c          classification
		wantID     cause.ID
		wantDetail string
	}{
		{"NXDOMAIN", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, classification{Phase: cause.PhaseDNS}, cause.DNSError, "not found"},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, classification{Phase: cause.PhaseDNS}, cause.DNSError, "timeout"},
		{"refused", opErr("connect", syscall.ECONNREFUSED), classification{Phase: cause.PhaseConnect}, cause.ConnectionRefused, ""},
		{"host unreachable", opErr("connect", syscall.EHOSTUNREACH), classification{Phase: cause.PhaseConnect}, cause.DestinationUnavailable, "host unreachable"},
		{"network unreachable", opErr("connect", syscall.ENETUNREACH), classification{Phase: cause.PhaseConnect}, cause.DestinationUnavailable, "network unreachable"},
		{"no local port", opErr("connect", syscall.EADDRNOTAVAIL), classification{Phase: cause.PhaseConnect}, cause.LocalPortsExhausted, ""},
		{"out of files, the process's", &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}, classification{Phase: cause.PhaseConnect}, cause.FileDescriptorsExhausted, "process limit"},
		{"out of files, the host's", &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.ENFILE)}, classification{Phase: cause.PhaseConnect}, cause.FileDescriptorsExhausted, "system limit"},
		{"dial timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, classification{Phase: cause.PhaseConnect}, cause.ConnectionTimeout, ""},
		{"whole-request deadline while connecting", fmt.Errorf("dial: %w", context.DeadlineExceeded), classification{Phase: cause.PhaseConnect}, cause.ConnectionTimeout, ""},
		{"TLS handshake timeout", timeoutErr{}, classification{Phase: cause.PhaseTLS}, cause.ConnectionTimeout, "tls handshake"},
		{"certificate unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, classification{Phase: cause.PhaseTLS}, cause.TLSCertificateError, ""},
		{"certificate wrong host", x509.HostnameError{Host: "x"}, classification{Phase: cause.PhaseTLS}, cause.TLSCertificateError, ""},
		{"plain HTTP answering TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, classification{Phase: cause.PhaseTLS}, cause.TLSProtocolError, "handshake"},
		{"TLS alert after the handshake phase", tls.AlertError(40), classification{Phase: cause.PhaseConnected}, cause.TLSProtocolError, ""},
		{"reset after the request", fmt.Errorf("read: %w", opErr("read", syscall.ECONNRESET)), classification{Phase: cause.PhaseRequestWritten}, cause.ConnectionTerminated, "reset"},
		{"closed after the request", fmt.Errorf("transport: %w", io.EOF), classification{Phase: cause.PhaseRequestWritten}, cause.ConnectionTerminated, "closed"},
		{"broken pipe while writing", opErr("write", syscall.EPIPE), classification{Phase: cause.PhaseConnected}, cause.ConnectionTerminated, "reset"},
		{"response header timeout", timeoutErr{}, classification{Phase: cause.PhaseRequestWritten}, cause.HTTPResponseTimeout, ""},
		{"timeout inside the header section", timeoutErr{}, classification{Phase: cause.PhaseFirstByte}, cause.HTTPResponseTimeout, "headers"},
		{"oversized header section", errors.New("server response headers exceeded 1048576 bytes; aborted"), classification{Phase: cause.PhaseFirstByte, BytesRead: 2 << 20, MaxHeaderBytes: 1 << 20}, cause.HTTPResponseHeaderSectionSize, ""},
		{"malformed status line", errors.New(`malformed HTTP response "+OK"`), classification{Phase: cause.PhaseFirstByte, BytesRead: 30, MaxHeaderBytes: 1 << 20}, cause.HTTPProtocolError, ""},
		{"closed inside the header section", io.ErrUnexpectedEOF, classification{Phase: cause.PhaseFirstByte, BytesRead: 30, MaxHeaderBytes: 1 << 20}, cause.HTTPResponseIncomplete, "headers"},
		{"body cut short", io.ErrUnexpectedEOF, classification{Phase: cause.PhaseHeaders}, cause.HTTPResponseIncomplete, "body"},
		{"body reset", opErr("read", syscall.ECONNRESET), classification{Phase: cause.PhaseHeaders}, cause.HTTPResponseIncomplete, "body reset"},
		{"visitor left", fmt.Errorf("roundtrip: %w", context.Canceled), classification{Phase: cause.PhaseRequestWritten, ClientGone: true}, cause.ClientClosed, ""},
		{"a cause passes through", fmt.Errorf("wrapped: %w", cause.New(cause.NoHealthyUpstream, "no targets", nil)), classification{}, cause.NoHealthyUpstream, "no targets"},
		{"unknown error", errors.New("something else"), classification{Phase: cause.PhaseNone}, cause.ProxyInternalError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got := classify(tc.err, tc.c)
			if got.ID != tc.wantID || got.Detail != tc.wantDetail {
				t.Errorf("classify(%v): got %s (%q), want %s (%q)", tc.err, got.ID, got.Detail, tc.wantID, tc.wantDetail)
			}
			if tc.wantID != cause.NoHealthyUpstream && !errors.Is(got, tc.err) {
				t.Errorf("the cause does not wrap the original error")
			}
		})
	}
}

func TestRouteTable(t *testing.T) {
	t.Parallel()
	mk := func(name, host, path string) *route {
		return &route{name: name, host: host, wildcard: len(host) > 1 && host[:2] == "*.", path: path}
	}
	table := newRouteTable([]*route{
		mk("any", "", "/"),
		mk("any-api", "", "/api"),
		mk("wild", "*.example.test", "/"),
		mk("deep-wild", "*.eu.example.test", "/"),
		mk("exact", "www.example.test", "/"),
		mk("exact-static", "www.example.test", "/static/"),
	})
	tests := []struct{ desc, host, path, want string }{
		{"any host, root", "other.test", "/", "any"},
		{"prefix matches its own path", "other.test", "/api", "any-api"},
		{"prefix matches below a slash", "other.test", "/api/v1", "any-api"},
		{"prefix does not match a longer segment", "other.test", "/apix", "any"},
		{"exact host beats wildcard", "www.example.test", "/x", "exact"},
		{"longest prefix within a host", "www.example.test", "/static/app.js", "exact-static"},
		{"trailing-slash prefix does not match without it", "www.example.test", "/static", "exact"},
		{"host is case-insensitive and port-free", "WWW.Example.Test:8443", "/", "exact"},
		{"trailing dot in the host", "www.example.test.", "/", "exact"},
		{"wildcard matches a subdomain", "shop.example.test", "/", "wild"},
		{"longer wildcard wins", "a.eu.example.test", "/", "deep-wild"},
		{"wildcard does not match the bare domain", "example.test", "/", "any"},
		{"IPv6 literal host", "[::1]:8080", "/", "any"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got := table.match(tc.host, tc.path)
			if got == nil || got.name != tc.want {
				name := "<nil>"
				if got != nil {
					name = got.name
				}
				t.Errorf("match(%q, %q): got %s, want %s", tc.host, tc.path, name, tc.want)
			}
		})
	}
}
