package limit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// The errors a request limit wraps, inside a *cause.Error, to say which
// limit was broken. Match them with errors.Is; the cause is found with
// cause.Of.
var (
	// ErrTooManyHeaders means the request had more header fields than
	// RequestLimits.MaxHeaderCount (cause request_header_too_large).
	ErrTooManyHeaders = errors.New("too many request header fields")
	// ErrHeaderTooLarge means the request's header section was larger
	// than RequestLimits.MaxHeaderBytes (cause request_header_too_large).
	ErrHeaderTooLarge = errors.New("request header section too large")
	// ErrURITooLong means the request target was longer than
	// RequestLimits.MaxURIBytes (cause uri_too_long).
	ErrURITooLong = errors.New("request target too long")
	// ErrBodyTooLarge means the request body was, or was announced to be,
	// larger than RequestLimits.MaxBodyBytes (cause
	// request_body_too_large).
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBodyTimeout means no byte of the request body came within
	// RequestLimits.BodyReadTimeout (cause client_timeout).
	ErrBodyTimeout = errors.New("request body read timed out")
)

// RequestLimits bound one request. The zero value sets no limit.
type RequestLimits struct {
	// MaxHeaderBytes is the largest request header section accepted,
	// counted as HTTP/1.1 sends it (the request line, each field's name,
	// value and separators, Host). 0: no limit (config:
	// limits.request_header_bytes, default 64KiB; the HTTP server stops
	// reading at twice that, see HeaderReadCap).
	MaxHeaderBytes int64
	// MaxHeaderCount is the most request header fields accepted; each
	// value of a repeated field counts, Host does not. 0: no limit
	// (config: limits.max_header_count, default 100).
	MaxHeaderCount int
	// MaxURIBytes is the longest request target (path and query, as
	// sent) accepted. 0: no limit (config: limits.max_uri_bytes, default
	// 8KiB).
	MaxURIBytes int64
	// MaxBodyBytes is the largest request body accepted. 0: no limit
	// (config: limits.max_body_bytes or the route's, default 1GiB).
	MaxBodyBytes int64
	// BodyReadTimeout is how long a read of the request body may wait for
	// its first byte. 0: no limit (config: limits.body_read_timeout,
	// default 30s).
	BodyReadTimeout time.Duration
}

// CheckRequest returns a *cause.Error (RequestHeaderTooLarge, URITooLong,
// or RequestBodyTooLarge when the announced Content-Length is over the
// limit) when r breaks a limit, before any work is done for it; nil
// otherwise. A body of unknown length (chunked) is checked as it is read,
// by LimitBody.
func CheckRequest(r *http.Request, l RequestLimits) *cause.Error {
	if l.MaxURIBytes > 0 {
		uri := r.RequestURI
		if uri == "" && r.URL != nil {
			uri = r.URL.RequestURI()
		}
		if n := int64(len(uri)); n > l.MaxURIBytes {
			return cause.New(cause.URITooLong, "", fmt.Errorf("%w: %d bytes, limit %d", ErrURITooLong, n, l.MaxURIBytes))
		}
	}
	if l.MaxHeaderBytes > 0 || l.MaxHeaderCount > 0 {
		size, count := headerSize(r)
		if l.MaxHeaderBytes > 0 && size > l.MaxHeaderBytes {
			return cause.New(cause.RequestHeaderTooLarge, "too large", fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, size, l.MaxHeaderBytes))
		}
		if l.MaxHeaderCount > 0 && count > l.MaxHeaderCount {
			return cause.New(cause.RequestHeaderTooLarge, "too many fields", fmt.Errorf("%w: %d, limit %d", ErrTooManyHeaders, count, l.MaxHeaderCount))
		}
	}
	if l.MaxBodyBytes > 0 && r.ContentLength > l.MaxBodyBytes {
		return cause.New(cause.RequestBodyTooLarge, "announced", fmt.Errorf("%w: Content-Length %d, limit %d", ErrBodyTooLarge, r.ContentLength, l.MaxBodyBytes))
	}
	return nil
}

// HeaderReadCap returns the header size at which the HTTP server itself
// stops reading a request (http.Server.MaxHeaderBytes) for a limit of
// maxHeaderBytes: twice the limit, so that a request over the limit but
// under the cap reaches the gateway's handler and gets its 431 page with
// the cause, and one far over it still costs no more than the cap to
// refuse (with net/http's bare 431).
func HeaderReadCap(maxHeaderBytes int64) int {
	return int(min(2*maxHeaderBytes, 1<<30))
}

// headerSize returns the size of r's header section as HTTP/1.1 sends it,
// and how many fields it has (Host aside), in one pass over the map.
func headerSize(r *http.Request) (size int64, count int) {
	uri := r.RequestURI
	if uri == "" && r.URL != nil {
		uri = r.URL.RequestURI()
	}
	n := len(r.Method) + 1 + len(uri) + len(" HTTP/1.1\r\n") + len("Host: \r\n") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
		count += len(vs)
	}
	return int64(n), count
}

// LimitBody wraps r.Body so that reading more than l.MaxBodyBytes fails
// with a *cause.Error of cause request_body_too_large, and a read that
// gets no byte within l.BodyReadTimeout fails with one of cause
// client_timeout (both wrapping the error the read got, and ErrBodyTooLarge
// or ErrBodyTimeout). The errors are sticky: later reads return them too.
// It does nothing for a request without a body, or when both limits are 0.
//
// The body-size limit is net/http's MaxBytesReader on the writer beneath
// any wrappers that have an Unwrap method, so that the server closes the
// connection after the answer instead of reading the rest of the upload.
//
// The read timeout is a read deadline on the visitor's connection, set
// through http.NewResponseController(w) before each read (so each read
// that made progress refreshes it). It is cleared when the body ends; a
// body left unfinished keeps its deadline, which bounds how long net/http
// reads on after the handler returns. With HTTP/1.x, a read that times out
// also cancels r's context (net/http treats any read error on the
// connection as the visitor going away): a caller that sees the context
// cancelled, or a round trip fail with context.Canceled, must look at the
// error the body's reader got first, or it takes a client_timeout for a
// visitor who left. When w has no SetReadDeadline, a
// timer is used instead: a read that times out is then abandoned, not
// interrupted, and finishes in the background when bytes come or the
// connection closes.
func LimitBody(w http.ResponseWriter, r *http.Request, l RequestLimits) {
	if r.Body == nil || r.Body == http.NoBody || (l.MaxBodyBytes <= 0 && l.BodyReadTimeout <= 0) {
		return
	}
	b := &limitedBody{src: r.Body, max: l.MaxBodyBytes, timeout: l.BodyReadTimeout}
	if l.MaxBodyBytes > 0 {
		b.src = http.MaxBytesReader(baseWriter(w), r.Body, l.MaxBodyBytes)
	}
	if l.BodyReadTimeout > 0 {
		b.rc = http.NewResponseController(w)
	}
	r.Body = b
}

// baseWriter returns the writer beneath w's wrappers (those with an
// Unwrap method, as http.ResponseController follows them).
func baseWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		inner := u.Unwrap()
		if inner == nil {
			return w
		}
		w = inner
	}
}

// limitedBody is the body LimitBody puts on a request. Read is called by
// one goroutine at a time (the io.Reader contract); Close may come from
// another.
type limitedBody struct {
	src     io.ReadCloser // the body, within MaxBytesReader when max > 0
	max     int64
	timeout time.Duration
	rc      *http.ResponseController // nil without a timeout

	mu          sync.Mutex
	err         error // sticky: a *cause.Error, or the source's error
	useTimer    bool  // the writer cannot set read deadlines
	deadlineSet bool  // a read deadline is set on the connection
	ended       bool  // the body ended (EOF)
	closed      bool
	// Timer mode only: the background read in progress (bgRunning) and
	// where its result goes (pending, until a Read takes it).
	pending    chan readResult
	bgRunning  bool
	closeLater bool // Close came while a background read was running
	timer      *time.Timer
	buf        []byte
}

// readResult is what a timer-mode background read got.
type readResult struct {
	n   int
	err error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if b.rc != nil && !b.useTimer {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
			// http.ErrNotSupported, or a connection already closed:
			// either way, the timer is the way left.
			b.useTimer = true
		} else {
			b.deadlineSet = true
		}
	}
	timerMode := b.rc != nil && b.useTimer
	b.mu.Unlock()

	var n int
	var err error
	if timerMode {
		n, err = b.readWithTimer(p)
	} else {
		n, err = b.src.Read(p)
	}
	if err == nil {
		return n, nil
	}
	return n, b.fail(err)
}

// fail records the error a read got, turned into a *cause.Error when a
// limit caused it, and returns it.
func (b *limitedBody) fail(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == io.EOF {
		b.ended = true
		b.clearDeadlineLocked()
		return io.EOF
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		err = cause.New(cause.RequestBodyTooLarge, "read", fmt.Errorf("%w: over %d bytes: %w", ErrBodyTooLarge, b.max, err))
	case b.timeout > 0 && errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline is left in the past: net/http's reads of the rest
		// of this body after the handler fail at once instead of
		// waiting on the visitor.
		err = cause.New(cause.ClientTimeout, "body", fmt.Errorf("%w: no byte for %s: %w", ErrBodyTimeout, b.timeout, err))
	}
	b.err = err
	return err
}

// clearDeadlineLocked removes the read deadline this body set. b.mu is held.
func (b *limitedBody) clearDeadlineLocked() {
	if b.deadlineSet {
		_ = b.rc.SetReadDeadline(time.Time{})
		b.deadlineSet = false
	}
}

// readWithTimer reads from src in a background goroutine and gives up on
// it when no byte came within the timeout. A read given up on goes on in
// the background; the body's error is then sticky, so no later Read
// shares its buffer.
func (b *limitedBody) readWithTimer(p []byte) (int, error) {
	b.mu.Lock()
	if b.pending == nil {
		if cap(b.buf) < len(p) {
			b.buf = make([]byte, len(p))
		}
		buf := b.buf[:len(p)]
		ch := make(chan readResult, 1)
		b.pending, b.bgRunning = ch, true
		go func() {
			n, err := b.src.Read(buf)
			b.mu.Lock()
			b.bgRunning = false
			closeNow := b.closeLater
			b.mu.Unlock()
			ch <- readResult{n, err}
			if closeNow {
				_ = b.src.Close()
			}
		}()
	}
	ch := b.pending
	if b.timer == nil {
		b.timer = time.NewTimer(b.timeout)
	} else {
		b.timer.Reset(b.timeout)
	}
	timer := b.timer
	b.mu.Unlock()

	select {
	case res := <-ch:
		timer.Stop()
		b.mu.Lock()
		b.pending = nil
		n := copy(p, b.buf[:res.n])
		b.mu.Unlock()
		return n, res.err
	case <-timer.C:
		return 0, fmt.Errorf("no byte for %s: %w", b.timeout, os.ErrDeadlineExceeded)
	}
}

// Close closes the body. Later reads fail. A body closed before its end
// keeps the read deadline its last read set, or gets one now, so that
// net/http's reads of the rest of it after the handler are bounded too.
func (b *limitedBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.err == nil {
		b.err = fmt.Errorf("read of a closed request body: %w", os.ErrClosed)
	}
	if !b.ended && b.rc != nil && !b.useTimer && !b.deadlineSet {
		if b.rc.SetReadDeadline(time.Now().Add(b.timeout)) == nil {
			b.deadlineSet = true
		}
	}
	if b.bgRunning {
		// A timer-mode read still waits on the visitor: closing now
		// would block on it (net/http's body holds its lock while
		// reading). The background read closes it when it returns.
		b.closeLater = true
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.src.Close()
}
