package h1server

import (
	"bufio"
	"errors"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
)

// body is a request body: Content-Length bytes, or chunks up to the last
// one and its trailer fields. Read is called by one goroutine at a time;
// Close may come from another.
type body struct {
	c             *conn
	req           *http.Request
	chunked       bool
	remain        int64     // Content-Length bytes left; -1 for chunked
	chunks        io.Reader // the chunked decoder, made on the first read
	continueFirst bool      // send "100 Continue" before the first read

	mu     sync.Mutex
	closed bool
	err    error // sticky: io.EOF at the end, or the read error
}

// Read reads the body. A read error on the connection cancels the
// request's context, as net/http's does.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.continueFirst {
		b.continueFirst = false
		if err := b.c.resp.sendContinue(); err != nil {
			b.err = err
			return 0, err
		}
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readFixed(p)
	}
	if err != nil {
		b.err = err
		if errors.Is(err, io.EOF) {
			b.c.bodyDone.Store(true)
		} else {
			b.c.noteReadError()
		}
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		return n, io.EOF
	}
	if errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	if b.chunks == nil {
		b.chunks = httputil.NewChunkedReader(b.c.br)
	}
	n, err := b.chunks.Read(p)
	if errors.Is(err, io.EOF) {
		// The last chunk: its trailer fields follow, then an empty line.
		if terr := b.readTrailer(); terr != nil {
			return n, terr
		}
		return n, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// readTrailer reads the trailer section into req.Trailer, within the
// server's header limit.
func (b *body) readTrailer() error {
	limit := b.c.srv.maxHeaderBytes()
	read := 0
	for {
		line, err := readLine(b.c.br, limit-read)
		if err != nil {
			return err
		}
		read += len(line)
		if len(line) == 0 {
			return nil
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || k == "" {
			return errBadTrailer
		}
		for i := 0; i < len(k); i++ {
			if !httpsyntax.IsTokenByte(k[i]) {
				return errBadTrailer
			}
		}
		v = trimOWS(v)
		for i := 0; i < len(v); i++ {
			if ch := v[i]; (ch < ' ' && ch != '\t') || ch == 0x7f {
				return errBadTrailer // a bare CR, a NUL: as in the head
			}
		}
		if b.req.Trailer == nil {
			b.req.Trailer = make(http.Header)
		}
		b.req.Trailer.Add(k, v)
	}
}

var errBadTrailer = errors.New("h1server: malformed trailer field")

var errLineTooLong = errors.New("h1server: trailer section too large")

// readLine reads a line of at most max bytes without its CRLF.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// Close marks the body closed: later reads fail. What is left is read
// and dropped after the answer, up to a limit, to keep the connection.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// drain reads and drops what is left of the body after the handler; it
// reports whether the body ended within max bytes.
func (b *body) drain(max int64) bool {
	b.mu.Lock()
	b.closed = false // the server's own read
	b.continueFirst = false
	b.mu.Unlock()
	n, err := io.CopyN(io.Discard, b, max+1)
	return n <= max && errors.Is(err, io.EOF)
}
