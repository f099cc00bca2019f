package fastcgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// Transport is an http.RoundTripper that answers requests from a document
// root and a PHP-FPM pool. Create one with New; it is safe for concurrent
// use and keeps idle connections, so share one per pool.
type Transport struct {
	opts Options
	idle idlePool
	// waiting counts new connections that have had no answer yet: they
	// may wait in PHP-FPM's listen queue for a worker. While any does,
	// finished connections are closed rather than kept, because a worker
	// serves only the kept connection it holds and would leave them
	// waiting.
	waiting atomic.Int32
	// slots holds a token per open connection when MaxConns caps them
	// (nil otherwise); avail is signalled when a connection goes back
	// to the idle pool or a slot frees, to wake requests waiting for one.
	slots chan struct{}
	avail chan struct{}
	// Read buffers of finished responses, for the next ones: a
	// connection's record reader (16 KiB) and the CGI stream's (4 KiB).
	recordReaders sync.Pool
	streamReaders sync.Pool
}

// reader returns a buffered reader of r from pool, or a new one of size.
func reader(pool *sync.Pool, r io.Reader, size int) *bufio.Reader {
	if br, ok := pool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, size)
}

// New returns a Transport for opts, or an error wrapping ErrOptions that
// names the invalid field.
func New(opts Options) (*Transport, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{opts: o, idle: idlePool{max: o.MaxIdleConns, timeout: o.IdleConnTimeout}}
	if o.MaxConns > 0 {
		t.slots = make(chan struct{}, o.MaxConns)
		t.avail = make(chan struct{}, o.MaxConns)
	}
	return t, nil
}

// signal wakes one request waiting for a connection, if any.
func (t *Transport) signal() {
	if t.avail == nil {
		return
	}
	select {
	case t.avail <- struct{}{}:
	default:
	}
}

// slotConn is a connection that holds one of the MaxConns slots until it
// is closed.
type slotConn struct {
	net.Conn
	t    *Transport
	once sync.Once
}

// SyscallConn reaches the socket under the connection, for the check of
// an idle connection before reuse.
func (c *slotConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		<-c.t.slots
		c.t.signal()
	})
	return err
}

// Options returns the Transport's options with every default filled in.
func (t *Transport) Options() Options { return t.opts }

// CloseIdleConnections closes the idle connections, which frees the
// PHP-FPM workers waiting on them. The Transport stays usable.
func (t *Transport) CloseIdleConnections() { t.idle.closeAll(false) }

// Close closes the idle connections and keeps none from then on.
// Requests in flight finish.
func (t *Transport) Close() error {
	t.idle.closeAll(true)
	return nil
}

// RoundTrip answers req from the document root: a static file from disk, a
// 301 to add a directory's slash, a 404 (missing, hidden such as .env, PHP
// source, or outside the root), or a PHP script run by PHP-FPM. It always
// closes req.Body.
//
// The error contract, for the proxy:
//
//   - A failure returns a *cause.Error (cause.Of finds it) with Phase and
//     Target set. Before the request reached PHP-FPM (Phase below
//     cause.PhaseConnected): fpm_not_running, fpm_pool_exhausted, or a
//     generic connect cause. After: fpm_worker_crashed, php_timeout,
//     php_fatal_error, php_memory_exhausted, http_protocol_error,
//     http_response_header_section_size.
//   - When PHP reported a fatal error on FCGI_STDERR before the response's
//     header section was complete, PHP's response is dropped and RoundTrip
//     returns php_fatal_error, php_memory_exhausted or php_timeout
//     (whatever the status: 500 with display_errors off, 200 with the
//     error printed into the page with it on). A 500 with an empty body
//     and nothing on FCGI_STDERR is php_fatal_error too (log_errors off).
//     Any other response, including a 500 the application rendered
//     itself, is returned as it is.
//   - The cause's Err is a *PHPError (errors.As finds it) with the PHP
//     file and line for the owner's log; the cause's Detail, which the
//     visitor may see in Proxy-Status, never holds them.
//   - A fatal error or a lost connection after the header section was
//     returned makes the response body's Read return the *cause.Error
//     (Phase cause.PhaseHeaders), so the proxy can cut the visitor's
//     connection and log the cause.
//   - When req's context ends, the connection is closed and the error
//     wraps the context's error (not a cause), for the proxy to classify.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		req.Body.Close()
	}
	return res, err
}

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, cause.New(cause.ProxyInternalError, "no url", errors.New("fastcgi: request has no URL"))
	}
	real, err := filepath.EvalSymlinks(t.opts.Root)
	if err != nil {
		return nil, t.rootError(err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, t.rootError(err)
	}
	rt := resolve(root, req.URL.Path, t.opts.Index, !t.opts.NoFrontController)
	switch rt.kind {
	case routeStatic:
		return serveStatic(req, root, rt.file)
	case routeRedirect:
		root.Close()
		loc := (&strings.Builder{})
		loc.WriteString(escapePath(rt.location))
		if req.URL.RawQuery != "" {
			loc.WriteString("?" + req.URL.RawQuery)
		}
		return plainResponse(req, http.StatusMovedPermanently, http.Header{"Location": {loc.String()}}), nil
	case routeNotFound:
		root.Close()
		return plainResponse(req, http.StatusNotFound, nil), nil
	}
	root.Close()
	return t.runScript(req, cgiRequest{req: req, root: real, script: rt.script, pathInfo: rt.pathInfo})
}

// rootError is the error for a document root that cannot be opened.
func (t *Transport) rootError(err error) error {
	ce := cause.New(cause.ProxyConfigurationError, "document root", fmt.Errorf("fastcgi: document root %s: %w", t.opts.Root, err))
	ce.Target = t.opts.Address
	return ce
}

// escapePath escapes a path for a Location header.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// plainResponse returns a small text response made by the Transport.
func plainResponse(req *http.Request, status int, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	var rc io.ReadCloser = io.NopCloser(strings.NewReader(body))
	if req.Method == http.MethodHead {
		rc = http.NoBody
	}
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: rc, ContentLength: int64(len(body)), Request: req,
	}
}

// attempt is one request to PHP-FPM on one connection.
type attempt struct {
	t     *Transport
	req   *http.Request
	conn  net.Conn
	phase atomic.Uint32
	start time.Time
	// writeDone is closed when the request (with its body) is written;
	// writeErr is then set.
	writeDone chan struct{}
	writeErr  error
	stopCtx   func() bool
	stream    *stream
	script    string
	// writing is set when writeBody runs; lost then waits for it.
	writing bool
	// waiting is set while the attempt's new connection counts in
	// Transport.waiting.
	waiting atomic.Bool
}

// answered marks the attempt's connection as no longer waiting for a
// worker.
func (a *attempt) answered() {
	if a.waiting.CompareAndSwap(true, false) {
		a.t.waiting.Add(-1)
	}
}

func (a *attempt) setPhase(p cause.Phase) {
	for {
		old := a.phase.Load()
		if uint32(p) <= old || a.phase.CompareAndSwap(old, uint32(p)) {
			return
		}
	}
}

func (a *attempt) getPhase() cause.Phase { return cause.Phase(a.phase.Load()) }

// fail returns a cause error for this attempt.
func (a *attempt) fail(id cause.ID, detail string, err error) *cause.Error {
	return &cause.Error{ID: id, Detail: detail, Phase: a.getPhase(), Target: a.t.opts.Address, Err: err}
}

// runScript runs c's script through PHP-FPM.
func (t *Transport) runScript(req *http.Request, c cgiRequest) (*http.Response, error) {
	body, length, cleanup, err := t.requestBody(req)
	if err != nil {
		return nil, err
	}
	c.contentLength = length
	head := appendBeginRequest(make([]byte, 0, 2048), t.opts.MaxIdleConns > 0)
	params := t.appendParams(make([]byte, 0, 1536), c)
	head = appendStream(head, typeParams, params)
	if body == nil {
		head = appendRecord(head, typeStdin, nil)
	}

	ctx := req.Context()
	a := &attempt{t: t, req: req, script: c.script, writeDone: make(chan struct{})}
	conn, reused, err := t.getConn(ctx, a)
	if err != nil {
		cleanup()
		return nil, err
	}
	a.conn = conn
	a.setPhase(cause.PhaseConnected)
	a.start = time.Now()
	if _, err := conn.Write(head); err != nil {
		a.answered()
		conn.Close()
		if !reused {
			cleanup()
			return nil, a.lost(err, nil)
		}
		// A reused connection closed under us: nothing of this request
		// was read, so try once on a new one.
		a = &attempt{t: t, req: req, script: c.script, writeDone: make(chan struct{})}
		if conn, err = t.newConn(ctx, a); err != nil {
			cleanup()
			return nil, err
		}
		a.conn = conn
		a.setPhase(cause.PhaseConnected)
		a.start = time.Now()
		if _, err := conn.Write(head); err != nil {
			a.answered()
			conn.Close()
			cleanup()
			return nil, a.lost(err, nil)
		}
	}
	a.stopCtx = context.AfterFunc(ctx, func() { conn.Close() })
	if body == nil {
		a.setPhase(cause.PhaseRequestWritten)
		close(a.writeDone)
		cleanup()
	} else {
		a.writing = true
		go a.writeBody(body, length, cleanup)
	}
	return a.readResponse()
}

// requestBody returns the body to send and its length, spooling a body of
// unknown length to a temporary file. body is nil when there is none;
// cleanup releases what the body holds (the spool file, req.Body).
func (t *Transport) requestBody(req *http.Request) (body io.Reader, length int64, cleanup func(), err error) {
	noop := func() {}
	if req.Body == nil || req.Body == http.NoBody {
		return nil, 0, noop, nil
	}
	closeBody := func() { req.Body.Close() }
	if req.ContentLength > 0 {
		return io.LimitReader(req.Body, req.ContentLength), req.ContentLength, closeBody, nil
	}
	// Unknown length (chunked, or 0 with a body): PHP reads no more than
	// CONTENT_LENGTH, so find it out first, on disk.
	f, err := os.CreateTemp(t.opts.SpoolDir, "gatewise-fastcgi-body-*")
	if err != nil {
		return nil, 0, nil, cause.New(cause.ProxyInternalError, "spool", fmt.Errorf("fastcgi: spooling the request body: %w", err))
	}
	os.Remove(f.Name())
	release := func() { f.Close(); req.Body.Close() }
	n, err := io.Copy(f, io.LimitReader(req.Body, t.opts.MaxSpoolBytes+1))
	if err != nil {
		release()
		return nil, 0, nil, fmt.Errorf("fastcgi: reading the request body: %w", err)
	}
	if n > t.opts.MaxSpoolBytes {
		release()
		return nil, 0, nil, cause.New(cause.RequestBodyTooLarge, "", fmt.Errorf("fastcgi: request body of unknown length over %d bytes", t.opts.MaxSpoolBytes))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		release()
		return nil, 0, nil, cause.New(cause.ProxyInternalError, "spool", fmt.Errorf("fastcgi: spooled request body: %w", err))
	}
	if n == 0 {
		release()
		return nil, 0, noop, nil
	}
	return f, n, release, nil
}

// writeBody streams the request body as FCGI_STDIN records, then the empty
// record that ends the stream. It runs beside readResponse, as PHP may
// answer before it has read the whole body.
func (a *attempt) writeBody(body io.Reader, length int64, cleanup func()) {
	defer close(a.writeDone)
	defer cleanup()
	buf := make([]byte, headerLen+32<<10)
	var sent int64
	for {
		n, rerr := body.Read(buf[headerLen : len(buf)-8])
		sent += int64(n)
		if rerr == io.EOF && sent < length {
			rerr = fmt.Errorf("request body of %d bytes ended after %d: %w", length, sent, io.ErrUnexpectedEOF)
		}
		if n > 0 {
			pad := putHeader(buf, typeStdin, n)
			clear(buf[headerLen+n : headerLen+n+pad])
			if _, err := a.conn.Write(buf[:headerLen+n+pad]); err != nil {
				a.writeErr = &connError{err}
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// The visitor's body failed (gone, too slow): PHP must not run
			// on a truncated body, so the connection goes.
			a.writeErr = fmt.Errorf("fastcgi: reading the request body: %w", rerr)
			a.conn.Close()
			return
		}
	}
	var end [headerLen]byte
	putHeader(end[:], typeStdin, 0)
	if _, err := a.conn.Write(end[:]); err != nil {
		a.writeErr = &connError{err}
		return
	}
	a.setPhase(cause.PhaseRequestWritten)
}

// connError marks an error of the connection to PHP-FPM (as opposed to
// one of the visitor's body).
type connError struct{ err error }

func (e *connError) Error() string { return "fastcgi: connection: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// getConn returns an idle connection or a new one.
func (t *Transport) getConn(ctx context.Context, a *attempt) (net.Conn, bool, error) {
	for {
		if c := t.idle.get(); c != nil {
			return c, true, nil
		}
		if t.slots == nil {
			c, err := t.dial(ctx, a)
			return c, false, err
		}
		select {
		case t.slots <- struct{}{}:
			c, err := t.dialHolding(ctx, a)
			return c, false, err
		case <-t.avail:
			// A connection came back or a slot freed: look again.
		case <-ctx.Done():
			return nil, false, fmt.Errorf("fastcgi: waiting for a connection to %s (max_conns %d): %w", t.opts.Address, t.opts.MaxConns, ctx.Err())
		}
	}
}

// newConn dials a connection outside the idle pool: under MaxConns it
// waits for a slot first.
func (t *Transport) newConn(ctx context.Context, a *attempt) (net.Conn, error) {
	if t.slots == nil {
		return t.dial(ctx, a)
	}
	select {
	case t.slots <- struct{}{}:
		return t.dialHolding(ctx, a)
	case <-ctx.Done():
		return nil, fmt.Errorf("fastcgi: waiting for a connection to %s (max_conns %d): %w", t.opts.Address, t.opts.MaxConns, ctx.Err())
	}
}

// dialHolding dials with a slot taken, which the connection holds until it
// is closed (or which is given back when the dial fails).
func (t *Transport) dialHolding(ctx context.Context, a *attempt) (net.Conn, error) {
	c, err := t.dial(ctx, a)
	if err != nil {
		<-t.slots
		t.signal()
		return nil, err
	}
	return &slotConn{Conn: c, t: t}, nil
}

// dial connects to PHP-FPM and classifies a failure.
func (t *Transport) dial(ctx context.Context, a *attempt) (net.Conn, error) {
	a.setPhase(cause.PhaseConnect)
	c, err := t.opts.DialContext(ctx, t.opts.Network, t.opts.Address)
	if err == nil {
		a.waiting.Store(true)
		t.waiting.Add(1)
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("fastcgi: connecting to %s: %w", t.opts.Address, errors.Join(ctx.Err(), err))
	}
	return nil, a.fail(dialCause(err, t.opts.Network, t.opts.Address))
}

// dialCause classifies a failure to connect to PHP-FPM.
func dialCause(err error, network, address string) (cause.ID, string, error) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ENOENT):
		return cause.FPMNotRunning, "socket missing", err
	case errors.Is(err, syscall.ECONNREFUSED):
		return cause.FPMNotRunning, "refused", err
	case errors.Is(err, syscall.EAGAIN):
		return cause.FPMPoolExhausted, "backlog full", err
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return cause.ProxyConfigurationError, "permission denied", err
	case errors.As(err, &ne) && ne.Timeout() && local(network, address):
		return cause.FPMPoolExhausted, "no accept in time", err
	}
	ce := cause.Classify(err, cause.Attempt{Phase: cause.PhaseConnect})
	return ce.ID, ce.Detail, err
}

// local reports whether address is on this host: a unix socket, or a
// loopback IP, where a connection that is not accepted in time means a
// full listen queue rather than a network problem.
func local(network, address string) bool {
	if network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lost classifies a connection that failed after it was made: the worker
// died, unless PHP said why first or the pool's terminate timeout passed.
// A nil err means the connection ended (EOF) before FCGI_END_REQUEST.
func (a *attempt) lost(err error, s *stream) error {
	if ctxErr := a.req.Context().Err(); ctxErr != nil {
		return fmt.Errorf("fastcgi: request to %s ended: %w", a.t.opts.Address, ctxErr)
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	if s != nil && s.stderr.fatal != nil {
		id, detail := s.stderr.fatal.Cause()
		return a.fail(id, detail, s.stderr.fatal)
	}
	if a.writing {
		// The connection is closed by now, so the writer returns.
		<-a.writeDone
	}
	if a.writeErr != nil && !isConnError(a.writeErr) {
		// The visitor's request body failed first; its error says why.
		return a.writeErr
	}
	cut := fmt.Errorf("fastcgi: connection to %s lost before the end of the request (script %s): %w", a.t.opts.Address, a.script, err)
	if tt := a.t.opts.TerminateTimeout; tt > 0 && !a.start.IsZero() && time.Since(a.start) >= tt {
		return a.fail(cause.PHPTimeout, "request_terminate_timeout", cut)
	}
	detail := "closed"
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		detail = "reset"
	}
	return a.fail(cause.FPMWorkerCrashed, detail, cut)
}

func isConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// finish ends the attempt: the connection goes back to the idle pool when
// the request ended cleanly (FCGI_END_REQUEST, request written), else it is
// closed.
func (a *attempt) finish(clean bool) {
	a.answered()
	if clean && a.t.waiting.Load() > 0 {
		clean = false // free the worker for a connection in the queue
	}
	if a.stopCtx != nil && !a.stopCtx() {
		clean = false // the context ended: the connection is being closed
	}
	if clean {
		// PHP has read the whole body by now (PHP-FPM reads what the
		// script left before it ends the request), so the writer is done
		// or about to be; never wait long for it.
		timer := time.NewTimer(time.Second)
		select {
		case <-a.writeDone:
			clean = a.writeErr == nil
		case <-timer.C:
			clean = false
		}
		timer.Stop()
	}
	if clean {
		a.t.idle.put(a.conn)
		a.t.signal() // a request may be waiting for it
	} else {
		a.conn.Close()
	}
}

// readResponse reads PHP's CGI response header section and returns the
// response with its body streaming from the connection.
func (a *attempt) readResponse() (*http.Response, error) {
	t := a.t
	s := &stream{a: a, br: reader(&t.recordReaders, a.conn, 16<<10), stderr: stderrCapture{max: t.opts.MaxStderrBytes}}
	a.stream = s
	lim := &headerLimit{r: s, n: t.opts.MaxHeaderBytes}
	br := reader(&t.streamReaders, lim, 4<<10)
	hdr, herr := textproto.NewReader(br).ReadMIMEHeader()
	if s.err != nil && s.err != io.EOF {
		a.finish(false)
		if ce, ok := cause.Of(s.err); ok {
			return nil, ce
		}
		return nil, a.lost(s.err, s)
	}
	if s.stderr.fatal != nil {
		a.finish(false)
		id, detail := s.stderr.fatal.Cause()
		return nil, a.fail(id, detail, s.stderr.fatal)
	}
	if herr != nil {
		a.finish(false)
		if lim.exceeded {
			return nil, a.fail(cause.HTTPResponseHeaderSectionSize, "", fmt.Errorf("fastcgi: response header section over %d bytes (script %s)", t.opts.MaxHeaderBytes, a.script))
		}
		if s.ended && !s.gotStdout {
			return nil, a.fail(cause.HTTPProtocolError, "no response", fmt.Errorf("fastcgi: PHP-FPM ended the request without a response (script %s, protocol status %d)", a.script, s.protoStatus))
		}
		return nil, a.fail(cause.HTTPProtocolError, "cgi headers", fmt.Errorf("fastcgi: invalid CGI response header section (script %s): %w", a.script, herr))
	}
	lim.n = -1
	a.setPhase(cause.PhaseHeaders)

	res := &http.Response{
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header(hdr), Request: a.req, ContentLength: -1,
	}
	code, text, err := cgiStatus(res.Header)
	if err != nil {
		a.finish(false)
		return nil, a.fail(cause.HTTPProtocolError, "cgi status", fmt.Errorf("fastcgi: script %s: %w", a.script, err))
	}
	res.StatusCode, res.Status = code, strconv.Itoa(code)+" "+text
	if v := res.Header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			res.ContentLength = n
		}
	}
	b := &responseBody{a: a, br: br}
	if code == http.StatusInternalServerError {
		// PHP answers a fatal error with 500 and an empty body: wait for
		// the first byte of the body to tell it from a page.
		if _, err := br.Peek(1); err != nil {
			if s.stderr.fatal != nil {
				a.finish(false)
				id, detail := s.stderr.fatal.Cause()
				return nil, a.fail(id, detail, s.stderr.fatal)
			}
			if s.err != nil && s.err != io.EOF {
				a.finish(false)
				if ce, ok := cause.Of(s.err); ok {
					return nil, ce
				}
				return nil, a.lost(s.err, s)
			}
			if s.ended {
				a.finish(s.cleanEnd())
				return nil, a.fail(cause.PHPFatalError, "", fmt.Errorf("fastcgi: script %s answered 500 with an empty body and no message on its error stream (is log_errors off?)", a.script))
			}
		}
	}
	res.Body = b
	return res, nil
}

// cgiStatus reads the response's status from its CGI headers: "Status:
// 404 Not Found", else 302 when there is a Location, else 200. It removes
// the Status header.
func cgiStatus(h http.Header) (int, string, error) {
	v := h.Get("Status")
	h.Del("Status")
	if v == "" {
		if h.Get("Location") != "" {
			return http.StatusFound, http.StatusText(http.StatusFound), nil
		}
		return http.StatusOK, http.StatusText(http.StatusOK), nil
	}
	codeStr, text, _ := strings.Cut(strings.TrimSpace(v), " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || len(codeStr) != 3 || code < 100 || code > 999 {
		return 0, "", fmt.Errorf("invalid CGI Status header %q", v)
	}
	if code < 200 {
		return 0, "", fmt.Errorf("CGI Status %d: informational responses are not supported", code)
	}
	if text = strings.TrimSpace(text); text == "" {
		text = http.StatusText(code)
	}
	return code, text, nil
}

// headerLimit counts the bytes of the header section; n < 0 turns it off.
type headerLimit struct {
	r        io.Reader
	n        int
	exceeded bool
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		l.exceeded = true
		return 0, errHeaderLimit
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

var errHeaderLimit = errors.New("fastcgi: header section too large")

// stream reads the records of one response and yields the content of its
// FCGI_STDOUT records; FCGI_STDERR goes to the capture. After
// FCGI_END_REQUEST it returns io.EOF.
type stream struct {
	a           *attempt
	br          *bufio.Reader
	remaining   int // content left in the current FCGI_STDOUT record
	pad         int // padding after it
	ended       bool
	appStatus   uint32
	protoStatus uint8
	gotStdout   bool
	stderr      stderrCapture
	// err is sticky: io.EOF after FCGI_END_REQUEST, a *cause.Error for a
	// fatal error after the headers, or the connection's error.
	err error
}

// endBuffered reports whether the current FCGI_STDOUT record is consumed
// and the records buffered after it (empty FCGI_STDOUT, FCGI_STDERR) end
// with a complete FCGI_END_REQUEST, so that next can reach the end of the
// response without waiting for the connection.
func (s *stream) endBuffered() bool {
	if s.remaining != 0 || s.err != nil {
		return false
	}
	buf, _ := s.br.Peek(s.br.Buffered())
	for i := s.pad; len(buf)-i >= headerLen; {
		h := buf[i : i+headerLen]
		n := int(h[4])<<8 | int(h[5]) + int(h[6])
		if h[0] != fcgiVersion || len(buf)-i-headerLen < n {
			return false
		}
		switch h[1] {
		case typeEndRequest:
			return true
		case typeStdout:
			if h[4] != 0 || h[5] != 0 {
				return false // more of the body
			}
		case typeStderr:
		default:
			return false
		}
		i += headerLen + n
	}
	return false
}

// cleanEnd reports whether the request ended with FCGI_REQUEST_COMPLETE.
func (s *stream) cleanEnd() bool { return s.ended && s.protoStatus == statusRequestComplete }

func (s *stream) Read(p []byte) (int, error) {
	for s.remaining == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if err := s.next(); err != nil {
			s.err = err
			return 0, err
		}
	}
	if len(p) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.br.Read(p)
	s.remaining -= n
	if n > 0 {
		s.gotStdout = true
		s.a.setPhase(cause.PhaseFirstByte)
	}
	if err != nil {
		s.err = &connError{noEOF(err)}
		if n > 0 {
			return n, nil
		}
		return 0, s.err
	}
	return n, nil
}

// noEOF turns a clean EOF inside a record into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next reads records until one with FCGI_STDOUT content, or the end.
func (s *stream) next() error {
	if s.pad > 0 {
		if _, err := s.br.Discard(s.pad); err != nil {
			return &connError{noEOF(err)}
		}
		s.pad = 0
	}
	for {
		h, err := readHeader(s.br)
		s.a.answered()
		if err != nil {
			if errors.Is(err, errProtocol) {
				return s.a.fail(cause.HTTPProtocolError, "fastcgi record", err)
			}
			return &connError{err}
		}
		if h.RequestID != requestID && h.Type != typeUnknownType && h.Type != typeGetValuesResult {
			return s.a.fail(cause.HTTPProtocolError, "fastcgi record", fmt.Errorf("%w: record for request %d, want %d", errProtocol, h.RequestID, requestID))
		}
		n, pad := int(h.ContentLength), int(h.PaddingLength)
		switch h.Type {
		case typeStdout:
			if n == 0 {
				if _, err := s.br.Discard(pad); err != nil {
					return &connError{noEOF(err)}
				}
				continue
			}
			s.remaining, s.pad = n, pad
			return nil
		case typeStderr:
			content, err := s.readContent(n, pad)
			if err != nil {
				return err
			}
			if s.stderr.write(content) {
				if s.a.getPhase() >= cause.PhaseHeaders {
					id, detail := s.stderr.fatal.Cause()
					return s.a.fail(id, detail, s.stderr.fatal)
				}
			}
			s.logMessages(content)
		case typeEndRequest:
			content, err := s.readContent(n, pad)
			if err != nil {
				return err
			}
			if len(content) < 8 {
				return s.a.fail(cause.HTTPProtocolError, "fastcgi record", fmt.Errorf("%w: FCGI_END_REQUEST of %d bytes", errProtocol, len(content)))
			}
			s.appStatus = uint32(content[0])<<24 | uint32(content[1])<<16 | uint32(content[2])<<8 | uint32(content[3])
			s.protoStatus = content[4]
			s.ended = true
			if s.protoStatus == statusOverloaded {
				return s.a.fail(cause.FPMPoolExhausted, "overloaded", errors.New("fastcgi: PHP-FPM answered FCGI_OVERLOADED"))
			}
			return io.EOF
		default:
			if _, err := s.br.Discard(n + pad); err != nil {
				return &connError{noEOF(err)}
			}
		}
	}
}

// readContent reads a record's content (into a fresh slice) and skips its
// padding.
func (s *stream) readContent(n, pad int) ([]byte, error) {
	b := make([]byte, n+pad)
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, &connError{noEOF(err)}
	}
	return b[:n], nil
}

// logMessages logs PHP's non-fatal messages when a Logger is set.
func (s *stream) logMessages(content []byte) {
	l := s.a.t.opts.Logger
	if l == nil {
		return
	}
	for _, m := range parseMessages(content) {
		if !m.Fatal() {
			l.Warn("PHP message", "script", s.a.script, "php", m.Error(), "target", s.a.t.opts.Address)
		}
	}
}

// responseBody is the body of a response from PHP-FPM.
type responseBody struct {
	a      *attempt
	br     *bufio.Reader
	mu     sync.Mutex
	done   bool
	result error
}

func (b *responseBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, b.result
	}
	n, err := b.br.Read(p)
	s := b.a.stream
	if err == nil {
		if n > 0 && b.br.Buffered() == 0 && s.endBuffered() {
			// The rest of the response, FCGI_END_REQUEST included, is in
			// memory already: end it now, so the connection is free
			// before the visitor has this response and sends the next
			// request (which would otherwise find no idle connection and
			// dial a new one).
			if err := s.next(); err != nil {
				s.err = err
			}
			if s.err == io.EOF && s.ended {
				b.done = true
				b.a.finish(s.cleanEnd())
				b.result = io.EOF
				b.release()
				return n, io.EOF
			}
		}
		return n, nil
	}
	b.done = true
	switch {
	case err == io.EOF && s.ended:
		b.a.finish(s.cleanEnd())
		b.result = io.EOF
	default:
		b.a.finish(false)
		if ce, ok := cause.Of(err); ok {
			b.result = ce
		} else {
			b.result = b.a.lost(err, s)
		}
	}
	b.release()
	return n, b.result
}

// release gives the response's read buffers back to the transport once
// the exchange has finished: nothing reads them after that.
func (b *responseBody) release() {
	t, s := b.a.t, b.a.stream
	if b.br != nil {
		b.br.Reset(nil)
		t.streamReaders.Put(b.br)
		b.br = nil
	}
	if s != nil && s.br != nil {
		s.br.Reset(nil)
		t.recordReaders.Put(s.br)
		s.br = nil
	}
}

// Close ends the response; a body not read to its end closes the
// connection, as PHP may still be writing.
func (b *responseBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.result = errBodyClosed
		b.a.finish(false)
		b.release()
	}
	return nil
}

var errBodyClosed = errors.New("fastcgi: read on closed response body")
