package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/config"
	"github.com/gatewise/gatewise/internal/fastcgi"
)

// RoundTripper is a pool's transport: it carries a request to the target
// whose Target.URL scheme and host the request's URL holds (the proxy sets
// them per attempt). A pool of HTTP targets has a *Transport; a pool of
// PHP-FPM targets a *FastCGITransport.
type RoundTripper interface {
	http.RoundTripper
	// CloseIdleConnections closes the connections not carrying a request.
	CloseIdleConnections()
	// Close closes the idle connections and keeps none from then on;
	// requests in flight finish.
	Close()
}

// FastCGITransport carries a pool's requests to its PHP-FPM targets: one
// fastcgi.Transport per target, chosen by the request URL's host, which is
// the target's Addr. It bounds the wait for PHP's response headers by the
// pool's timeouts.response_header, as the HTTP Transport does.
type FastCGITransport struct {
	byAddr map[string]*fastcgi.Transport
	// headerTimeout bounds the wait for the response headers; 0: none.
	headerTimeout time.Duration
}

// errHeaderTimeout is the cause of an attempt's context when
// timeouts.response_header passed before PHP's response headers.
var errHeaderTimeout = errors.New("fastcgi: no response headers in time")

// fastcgiTarget returns the Addr and URL of a fastcgi:// or
// fastcgi+unix:// target: "127.0.0.1:9000", or "unix:/run/php/fpm.sock"
// (nginx's way of naming a socket upstream), with the fastcgi.Options'
// network and address.
func fastcgiTarget(u *url.URL) (addr, network, address string, err error) {
	switch u.Scheme {
	case config.SchemeFastCGI:
		if u.Port() == "" {
			return "", "", "", fmt.Errorf("fastcgi target %s has no port", u.Redacted())
		}
		return u.Host, "tcp", u.Host, nil
	case config.SchemeFastCGIUnix:
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return "", "", "", fmt.Errorf("fastcgi+unix target %s: want fastcgi+unix:///absolute/path.sock", u.Redacted())
		}
		p := filepath.Clean(u.Path)
		return "unix:" + p, "unix", p, nil
	}
	return "", "", "", fmt.Errorf("target %s is not fastcgi:// or fastcgi+unix://", u.Redacted())
}

// fastcgiOptions returns the fastcgi.Options of a target of pool pc.
func fastcgiOptions(pc *config.Pool, limits config.Limits, network, address string, log *slog.Logger) fastcgi.Options {
	f := pc.FastCGI
	o := fastcgi.Options{
		Network:           network,
		Address:           address,
		Root:              f.Root,
		Index:             f.Index,
		NoFrontController: f.FrontController != nil && !*f.FrontController,
		DialTimeout:       pc.Timeouts.Dial.Duration,
		TerminateTimeout:  f.TerminateTimeout.Duration,
		IdleConnTimeout:   f.IdleTimeout.Duration,
		MaxConns:          f.MaxConns,
		MaxHeaderBytes:    int(limits.ResponseHeaderBytes),
		Params:            f.Params,
		Logger:            log,
	}
	switch {
	case f.MaxIdleConns == nil:
		// fastcgi's default
	case *f.MaxIdleConns == 0:
		o.MaxIdleConns = -1 // keep none
	default:
		o.MaxIdleConns = *f.MaxIdleConns
	}
	return o
}

// RoundTrip sends req to the target its URL's host names, and returns the
// response or the fastcgi.Transport's error (a *cause.Error for PHP's and
// PHP-FPM's failures). Past the response header timeout it fails with
// http_response_timeout.
func (t *FastCGITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ft := t.byAddr[req.URL.Host]
	if ft == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, cause.New(cause.ProxyInternalError, "fastcgi target", fmt.Errorf("upstream: no fastcgi target %q in the pool", req.URL.Host))
	}
	if t.headerTimeout <= 0 {
		return ft.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.headerTimeout, func() { cancel(errHeaderTimeout) })
	res, err := ft.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	if err != nil {
		timedOut := errors.Is(context.Cause(ctx), errHeaderTimeout)
		cancel(nil)
		if _, ok := cause.Of(err); !ok && timedOut {
			// The phase reached is not known here: say the request may
			// have reached PHP, so a POST is never sent again.
			return nil, &cause.Error{ID: cause.HTTPResponseTimeout, Detail: "no response headers within " + t.headerTimeout.String(),
				Phase: cause.PhaseRequestWritten, Target: req.URL.Host, Err: fmt.Errorf("%w: %w", errHeaderTimeout, err)}
		}
		return nil, err
	}
	res.Body = &cancelBody{ReadCloser: res.Body, cancel: func() { cancel(nil) }}
	return res, nil
}

// cancelBody ends a request's context when its response body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// CloseIdleConnections closes every target's idle connections, which
// frees the PHP-FPM workers waiting on them.
func (t *FastCGITransport) CloseIdleConnections() {
	for _, ft := range t.byAddr {
		ft.CloseIdleConnections()
	}
}

// Close closes every target's idle connections and keeps none from then
// on; requests in flight finish.
func (t *FastCGITransport) Close() {
	for _, ft := range t.byAddr {
		_ = ft.Close() // never fails
	}
}
