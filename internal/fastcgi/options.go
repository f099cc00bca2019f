package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The defaults of Options.
const (
	// DefaultIndex is the directory index and front controller.
	DefaultIndex = "index.php"
	// DefaultDialTimeout bounds connecting to PHP-FPM.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxIdleConns is how many idle connections are kept.
	DefaultMaxIdleConns = 4
	// DefaultIdleConnTimeout is how long an idle connection is kept.
	DefaultIdleConnTimeout = 15 * time.Second
	// DefaultMaxStderrBytes bounds the capture of PHP's error stream.
	DefaultMaxStderrBytes = 64 << 10
	// DefaultMaxHeaderBytes bounds the CGI header section of a response.
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultMaxSpoolBytes bounds a request body of unknown length.
	DefaultMaxSpoolBytes = 1 << 30
	// DefaultServerSoftware is the SERVER_SOFTWARE variable.
	DefaultServerSoftware = "gatewise"
)

// Options configures a Transport. Address and Root are required; every
// other field has a default, stated in its comment.
type Options struct {
	// Network is "tcp" or "unix". Empty means "unix" when Address is an
	// absolute path, else "tcp".
	Network string
	// Address is PHP-FPM's listen address: "127.0.0.1:9000" or a socket
	// path such as "/run/php/php8.2-fpm.sock". Required.
	Address string
	// Root is the document root: an absolute path, the same for gatewise
	// and PHP-FPM (SCRIPT_FILENAME is Root plus the script's path). It is
	// resolved (symbolic links followed) on every request, as nginx's
	// $realpath_root, so a deploy that swaps a "current" link takes effect
	// at once. Required.
	Root string
	// Index is the file name run (or served) for a directory, and the
	// front controller. Default DefaultIndex, "index.php". A directory
	// without it falls back to index.html.
	Index string
	// NoFrontController turns the front controller off: a path that is
	// neither a file nor a directory under Root is answered 404 instead of
	// running /Index with the original REQUEST_URI (nginx's
	// `try_files $uri $uri/ /index.php?$args`, as WordPress and Laravel
	// need). Default false: the front controller is on.
	NoFrontController bool
	// DialTimeout bounds connecting to PHP-FPM. Default DefaultDialTimeout
	// (5s).
	DialTimeout time.Duration
	// TerminateTimeout is the pool's request_terminate_timeout, when the
	// owner sets one: a connection that closes without a PHP message at
	// least this long after the request was sent is php_timeout (PHP-FPM
	// killed the worker) rather than fpm_worker_crashed. Zero (the
	// default) means unknown: such a close is always fpm_worker_crashed.
	TerminateTimeout time.Duration
	// MaxConns caps the connections open to PHP-FPM at once, busy and
	// idle together; requests past it wait in the gateway for one (as
	// long as their context allows) instead of in PHP-FPM's listen queue.
	// Set to pm.max_children, every connection has a worker, so kept
	// connections never leave a request queued behind them, and each is
	// reused instead of closed. Default 0: no cap.
	MaxConns int
	// MaxIdleConns is how many idle connections (FCGI_KEEP_CONN) are kept
	// for reuse. Each idle connection holds one PHP-FPM worker, which
	// waits for the next request on it, so keep this below
	// pm.max_children. Default DefaultMaxIdleConns (4); negative disables
	// reuse (a connection per request).
	MaxIdleConns int
	// IdleConnTimeout closes a connection idle that long. Default
	// DefaultIdleConnTimeout (15s), and at most half of TerminateTimeout
	// when that is set (PHP-FPM counts a worker waiting on a kept
	// connection against request_terminate_timeout).
	IdleConnTimeout time.Duration
	// MaxStderrBytes bounds how much of PHP's error stream is kept per
	// request (the rest is read and dropped). Default
	// DefaultMaxStderrBytes (64 KiB).
	MaxStderrBytes int
	// MaxHeaderBytes bounds the CGI header section of PHP's response; a
	// larger one is http_response_header_section_size. Default
	// DefaultMaxHeaderBytes (1 MiB).
	MaxHeaderBytes int
	// MaxSpoolBytes bounds a request body of unknown length (chunked),
	// which is spooled to a temporary file first because PHP needs
	// CONTENT_LENGTH; a larger one is request_body_too_large. Default
	// DefaultMaxSpoolBytes (1 GiB).
	MaxSpoolBytes int64
	// SpoolDir is where those temporary files go. Default os.TempDir().
	SpoolDir string
	// ServerSoftware is the SERVER_SOFTWARE variable. Default
	// DefaultServerSoftware, "gatewise".
	ServerSoftware string
	// Params are extra CGI variables, like nginx's fastcgi_param; they
	// override the computed ones of the same name. Default none.
	Params map[string]string
	// DialContext connects to PHP-FPM. Default a net.Dialer with
	// DialTimeout.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger receives PHP's messages that did not fail the request
	// (warnings, notices, deprecations) at level Warn, with the script.
	// Default nil: they are dropped.
	Logger *slog.Logger
}

// ErrOptions is wrapped by every error New returns for invalid Options.
var ErrOptions = errors.New("fastcgi: invalid options")

// withDefaults checks o and returns it with every default filled in.
func (o Options) withDefaults() (Options, error) {
	if o.Address == "" {
		return o, fmt.Errorf("%w: address is empty", ErrOptions)
	}
	if o.Network == "" {
		o.Network = "tcp"
		if filepath.IsAbs(o.Address) {
			o.Network = "unix"
		}
	}
	switch o.Network {
	case "unix":
		if !filepath.IsAbs(o.Address) {
			return o, fmt.Errorf("%w: unix socket path %q is not absolute", ErrOptions, o.Address)
		}
	case "tcp", "tcp4", "tcp6":
		if _, _, err := net.SplitHostPort(o.Address); err != nil {
			return o, fmt.Errorf("%w: address %q is not host:port: %w", ErrOptions, o.Address, err)
		}
	default:
		return o, fmt.Errorf("%w: network %q, want tcp or unix", ErrOptions, o.Network)
	}
	if o.Root == "" || !filepath.IsAbs(o.Root) {
		return o, fmt.Errorf("%w: root %q is not an absolute path", ErrOptions, o.Root)
	}
	if fi, err := os.Stat(o.Root); err != nil {
		return o, fmt.Errorf("%w: root: %w", ErrOptions, err)
	} else if !fi.IsDir() {
		return o, fmt.Errorf("%w: root %q is not a directory", ErrOptions, o.Root)
	}
	if o.Index == "" {
		o.Index = DefaultIndex
	}
	if strings.ContainsAny(o.Index, "/\x00") || o.Index == "." || o.Index == ".." || strings.HasPrefix(o.Index, ".") {
		return o, fmt.Errorf("%w: index %q is not a plain file name", ErrOptions, o.Index)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial timeout", o.DialTimeout}, {"terminate timeout", o.TerminateTimeout}, {"idle connection timeout", o.IdleConnTimeout}} {
		if d.v < 0 {
			return o, fmt.Errorf("%w: %s %v is negative", ErrOptions, d.name, d.v)
		}
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.TerminateTimeout > 0 && o.IdleConnTimeout > o.TerminateTimeout/2 {
		o.IdleConnTimeout = max(o.TerminateTimeout/2, time.Millisecond)
	}
	if o.MaxStderrBytes < 0 || o.MaxHeaderBytes < 0 || o.MaxSpoolBytes < 0 {
		return o, fmt.Errorf("%w: a byte limit is negative", ErrOptions)
	}
	if o.MaxStderrBytes == 0 {
		o.MaxStderrBytes = DefaultMaxStderrBytes
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxSpoolBytes == 0 {
		o.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.ServerSoftware == "" {
		o.ServerSoftware = DefaultServerSoftware
	}
	for k := range o.Params {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return o, fmt.Errorf("%w: parameter name %q", ErrOptions, k)
		}
	}
	if o.DialContext == nil {
		d := &net.Dialer{Timeout: o.DialTimeout}
		o.DialContext = d.DialContext
	}
	return o, nil
}
