package h1server

import (
	"bufio"
	"fmt"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pendingLimit is how many body bytes of an answer without a
// Content-Length are held back: a handler that ends within it gets a
// Content-Length, a longer one is sent chunked (net/http holds 2 KiB).
const pendingLimit = 2 << 10

// response is the http.ResponseWriter of one request. One per connection,
// reset for each request: a handler must not use it after ServeHTTP
// returns, as with net/http.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header // kept across requests, emptied by release

	status        int
	wroteHeader   bool // a final status was set
	committed     bool // the status line and header fields are written
	chunked       bool
	closeAfter    bool  // the connection closes after this answer
	contentLength int64 // the declared length, -1 when unknown
	// setLength is a length given by SetContentLength, -1 when none.
	setLength int64
	written   int64
	pending   []byte   // body held before the head is written
	trailers  []string // names the handler declared in "Trailer"
	err       error    // sticky write error

	expectContinue bool // the visitor waits for "100 Continue"
	sentContinue   bool

	// fields are header fields added with AddField, formatted: written
	// after the map's. Kept across requests, emptied.
	fields  []byte
	hasDate bool // one of them is Date
}

func (w *response) reset(req *http.Request) {
	// The header map is kept across answers: release emptied it after
	// the last one.
	if w.header == nil {
		w.header = make(http.Header, 8)
	}
	b, ok := req.Body.(*body)
	expect := ok && b.continueFirst
	fields := w.fields[:0]
	if cap(fields) > maxKeptFields {
		fields = nil
	}
	*w = response{c: w.c, req: req, header: w.header, pending: w.pending[:0], fields: fields, contentLength: -1, setLength: -1, expectContinue: expect}
}

// release drops what the finished answer refers to, so that an idle
// connection keeps nothing of its last request alive until the next one
// arrives: the request, its context and whatever hangs from them (the
// access log's record, the proxy's exchange and the upstream's answer,
// about 4 KiB), and the header map's values.
func (w *response) release() {
	w.req = nil
	clear(w.header)
}

// maxKeptFields is the largest AddField buffer a connection keeps between
// answers.
const maxKeptFields = 16 << 10

// AddField adds a header field to the final answer, written after the
// header map's fields, without a map entry: a proxy relays an upstream's
// fields this way, as it parsed them. name must be a token in canonical
// form and value hold no CR, LF or NUL (the caller has checked them: they
// are written as they are), and name must not be a field the server
// frames the answer by (Content-Length, Transfer-Encoding, Connection,
// Trailer), which go in the map (the length may instead be given with
// SetContentLength); a Date keeps the server from adding its own. Fields
// added after the head is written are dropped.
func (w *response) AddField(name, value []byte) { addField(w, name, value) }

// AddFieldString is AddField for a name and a value held as strings.
func (w *response) AddFieldString(name, value string) { addField(w, name, value) }

func addField[T string | []byte](w *response, name, value T) {
	if w.committed || w.c.hijacked {
		return
	}
	w.fields = append(w.fields, name...)
	w.fields = append(w.fields, ": "...)
	w.fields = append(w.fields, value...)
	w.fields = append(w.fields, "\r\n"...)
	if string(name) == "Date" {
		w.hasDate = true
	}
}

// Header returns the answer's header map.
func (w *response) Header() http.Header { return w.header }

// AdoptHeader makes h the answer's header map in place of old, the map
// Header returned, when old is still that map, is empty and the head is
// not written; it reports whether it did. A proxy hands over the
// upstream's header map this way rather than copying it field by field.
// The server keeps h for the connection's later answers (clearing it at
// the next request), so the caller must not touch h once the handler has
// returned.
func (w *response) AdoptHeader(old, h http.Header) bool {
	if h == nil || w.c.hijacked || w.committed || w.wroteHeader || len(w.header) != 0 || !httpsyntax.SameHeader(w.header, old) {
		return false
	}
	w.header = h
	return true
}

// SetContentLength declares the final answer's length as a Content-Length
// field in the header map would, without a map entry: the field is
// written with the head and frames the answer. A Content-Length in the
// map wins over it; a negative n, or a call after the head is written, is
// ignored.
func (w *response) SetContentLength(n int64) {
	if w.committed || w.c.hijacked || n < 0 {
		return
	}
	w.setLength = n
}

// WriteHeader sends an interim (1xx) answer at once, or sets the final
// status. The head of an answer whose length is known (a Content-Length,
// a status without body) is written into the buffer now; otherwise it
// waits for the body or the handler's end (for HEAD, the end: the length
// of what the handler wrote is the answer's Content-Length).
func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInterim(code)
		return
	}
	w.status, w.wroteHeader = code, true
	if cl, ok := w.header["Content-Length"]; (ok && len(cl) > 0) || w.setLength >= 0 || !bodyAllowedForStatus(code) {
		w.commit(false)
	}
}

// writeInterim writes a 1xx answer with the current header fields (103
// Early Hints carries its links so), and flushes it.
func (w *response) writeInterim(code int) {
	if w.committed || w.err != nil {
		return
	}
	bw := w.c.writer()
	w.writeStatusLine(bw, code)
	for k, vv := range w.header {
		writeField(bw, k, vv)
	}
	_, _ = bw.WriteString("\r\n")
	if code == http.StatusContinue && w.expectContinue {
		w.c.contMu.Lock()
		w.sentContinue = true
		w.c.contMu.Unlock()
	}
	if err := bw.Flush(); err != nil {
		w.noteWriteError(err)
	}
}

// sendContinue answers a request's "Expect: 100-continue" when its body
// is first read, unless the final answer has already begun. The body may
// be read on another goroutine than the handler's (full duplex, a
// transport's writer): the 100 goes straight to the socket, not through
// the handler's write buffer, and c.contMu orders it with the head.
func (w *response) sendContinue() error {
	c := w.c
	c.contMu.Lock()
	defer c.contMu.Unlock()
	if w.committed || w.sentContinue {
		return nil
	}
	w.sentContinue = true
	if _, err := io.WriteString(c.rwc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
		c.noteReadError() // the answer closes the connection
		return err
	}
	return nil
}

// Write writes body bytes, after a 200 head when none was set.
func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if !w.committed {
		if len(w.pending)+len(p) <= pendingLimit {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false)
		if err := w.writePending(); err != nil {
			return 0, err
		}
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeBody writes p, as one chunk when the answer is chunked.
func (w *response) writeBody(p []byte) error {
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
		_, _ = bw.Write(p)
		_, err := bw.WriteString("\r\n")
		if err != nil {
			w.noteWriteError(err)
		}
		return err
	}
	if _, err := bw.Write(p); err != nil {
		w.noteWriteError(err)
		return err
	}
	return nil
}

func (w *response) writePending() error {
	if len(w.pending) == 0 {
		return nil
	}
	p := w.pending
	w.pending = w.pending[:0]
	return w.writeBody(p)
}

// noteWriteError makes a failed write sticky, marks the connection for
// closing and cancels the request's context (the visitor is gone), as
// net/http does.
func (w *response) noteWriteError(err error) {
	if w.err == nil {
		w.err = err
	}
	w.closeAfter = true
	w.c.noteReadError()
}

// FlushError writes what is buffered to the visitor, the head first.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
		if err := w.writePending(); err != nil {
			return err
		}
	}
	if w.err != nil {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.noteWriteError(err)
		return err
	}
	return nil
}

// Flush is FlushError without the error (http.Flusher).
func (w *response) Flush() { _ = w.FlushError() }

// Hijack hands the connection over (http.Hijacker): WebSocket and other
// upgrades.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.c.hijack() }

// SetReadDeadline sets the connection's read deadline (for
// http.ResponseController); it is cleared after the request.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.deadlineSet = true
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController); it is cleared after the request.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.deadlineSet = true
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the body while it writes the
// answer; this server always does.
func (w *response) EnableFullDuplex() error { return nil }

// finish completes the answer after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
		_ = w.writePending()
	}
	bw := w.c.bw
	if w.chunked && w.err == nil {
		_, _ = bw.WriteString("0\r\n")
		w.writeTrailers(bw)
		_, _ = bw.WriteString("\r\n")
	}
	if w.contentLength >= 0 && w.written != w.contentLength && w.req.Method != http.MethodHead && bodyAllowedForStatus(w.status) {
		// A body shorter than announced: the visitor must see it cut.
		w.closeAfter = true
	}
	if err := bw.Flush(); err != nil {
		w.noteWriteError(err)
	}
}

func (w *response) writeTrailers(bw *bufio.Writer) {
	for _, k := range w.trailers {
		writeField(bw, k, w.header[k])
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeField(bw, http.CanonicalHeaderKey(name), vv)
		}
	}
}

// commit writes the status line and header fields into the write
// buffer, choosing the framing: the handler's Content-Length; else, when
// the handler has ended (final), the length of what it wrote; else chunked
// (HTTP/1.1) or a close at the end (HTTP/1.0).
func (w *response) commit(final bool) {
	h, req, c := w.header, w.req, w.c
	sentContinue := false
	if w.expectContinue {
		c.contMu.Lock()
		w.committed = true
		sentContinue = w.sentContinue
		c.contMu.Unlock()
	} else {
		w.committed = true
	}
	isHead := req.Method == http.MethodHead
	bodyOK := bodyAllowedForStatus(w.status)
	computed := int64(-1)
	lengthField := false // Content-Length is written from setLength
	delete(h, "Transfer-Encoding")
	if tr := h["Trailer"]; len(tr) > 0 {
		for _, v := range tr {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
				}
			}
		}
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64); err == nil && n >= w.written {
			w.contentLength = n
		} else {
			// Not a length, or one the body held back has passed
			// already (set after WriteHeader, which net/http would
			// have ignored): frame it ourselves.
			delete(h, "Content-Length")
		}
	} else if w.setLength >= w.written {
		w.contentLength = w.setLength
		lengthField = true
	}
	if !bodyOK {
		// As net/http: no length on a 1xx or 204, and a 304 carries
		// neither the length nor the type of what did not change.
		delete(h, "Content-Length")
		w.contentLength = -1
		lengthField = false
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	}

	// The handler's fields first: the framing chosen below needs to
	// know whether one of them is a trailer (http.TrailerPrefix), and
	// its own fields come after them.
	bw := c.writer()
	w.writeStatusLine(bw, w.status)
	prefixed := false
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			prefixed = true
			continue
		}
		if len(w.trailers) > 0 && slices.Contains(w.trailers, k) {
			continue // a declared trailer set before the head went out
		}
		if k == "Connection" {
			continue // below, once it is known whether the connection stays
		}
		writeField(bw, k, vv)
	}
	_, _ = bw.Write(w.fields)

	// Trailers need chunks: only an HTTP/1.1 answer with a body has
	// them (net/http drops one set with http.TrailerPrefix after a short
	// body's first write; this server sends it).
	trailers := (len(w.trailers) > 0 || prefixed) && !isHead && req.ProtoAtLeast(1, 1)
	switch {
	case !bodyOK:
	case w.contentLength >= 0:
	case final && !trailers && !(isHead && w.written == 0):
		computed = w.written
		w.contentLength = computed
	case isHead:
	case req.ProtoAtLeast(1, 1):
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the end of the body is the close
	}
	if req.Close || c.readErr.Load() || c.srv.closed.Load() || httpsyntax.AnyHasToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	if !c.bodyDone.Load() {
		// The visitor is still sending a body the handler did not
		// take: it is dropped after the answer when short, else the
		// connection closes.
		if (w.expectContinue && !sentContinue) || req.ContentLength < 0 || req.ContentLength > maxDiscardBytes {
			w.closeAfter = true
		}
	}

	if _, ok := h["Date"]; !ok && !w.hasDate {
		_, _ = bw.Write(*c.srv.date.Load())
	}
	if lengthField || computed >= 0 && (computed > 0 || !isHead) {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.contentLength, 10))
		_, _ = bw.WriteString("\r\n")
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	// The handler's Connection field, unless it would promise a
	// keep-alive the server does not keep (as net/http).
	switch conn := h["Connection"]; {
	case w.closeAfter && httpsyntax.AnyHasToken(conn, "close"):
		writeField(bw, "Connection", conn)
	case w.closeAfter && req.ProtoAtLeast(1, 1):
		_, _ = bw.WriteString("Connection: close\r\n")
	case w.closeAfter:
		// An HTTP/1.0 answer closes unless it says keep-alive.
	case conn != nil:
		writeField(bw, "Connection", conn)
	case req.ProtoMinor == 0:
		_, _ = bw.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}

func (w *response) writeStatusLine(bw *bufio.Writer, code int) {
	if w.req.ProtoAtLeast(1, 1) {
		_, _ = bw.WriteString("HTTP/1.1 ")
	} else {
		_, _ = bw.WriteString("HTTP/1.0 ")
	}
	// Digits appended in the buffer's free space: a local array
	// would escape through Write and cost an allocation per answer.
	_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	_ = bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		_, _ = bw.WriteString(text)
	} else {
		_, _ = bw.WriteString("status code ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	}
	_, _ = bw.WriteString("\r\n")
}

// writeField writes "Name: value" lines, one per value. Names that are
// not tokens are dropped and line breaks in values become spaces (as
// net/http does), so a handler cannot split the head.
func writeField(bw *bufio.Writer, k string, vv []string) {
	for i := 0; i < len(k); i++ {
		if !httpsyntax.IsTokenByte(k[i]) {
			return
		}
	}
	for _, v := range vv {
		_, _ = bw.WriteString(k)
		_, _ = bw.WriteString(": ")
		if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
			v = strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v)
		}
		_, _ = bw.WriteString(trimOWS(v))
		_, _ = bw.WriteString("\r\n")
	}
}

// bodyAllowedForStatus reports whether a status may have a body (RFC
// 9110 6.4.1): not 1xx, 204 or 304.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}
