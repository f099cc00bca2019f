package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

// headerField is where one header field's name and value sit in the header
// section.
type headerField struct{ k0, k1, v0, v1 int }

// readResponseHead reads an HTTP/1.x status line and header section from
// br, at most maxBytes of them. The header names are canonicalized, and all
// names and values share one string, so a response costs a handful of
// allocations whatever its header count.
func readResponseHead(br *bufio.Reader, maxBytes int64, scratch *[]byte) (*http.Response, error) {
	res := new(http.Response)
	if err := readHead(br, &maxBytes, scratch, res, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// readHead is readResponseHead reading into res (which it overwrites),
// taking its limit from *budget, the header bytes still allowed, which it
// lowers by the bytes it reads (line ends included), so that interim
// responses can share one limit with the final one. The headers' values
// are capacity-limited slices of vals when it has room for one per field
// (an append to one reallocates rather than overwrite its neighbour),
// else of an array it allocates.
func readHead(br *bufio.Reader, budget *int64, scratch *[]byte, res *http.Response, vals []string) error {
	var f Fields
	if err := f.read(br, budget, scratch, f.inline[:0]); err != nil {
		return err
	}
	// One string for the status line (the block's first line) and every
	// name and value.
	s := string(f.block)
	*res = http.Response{ContentLength: -1}
	if err := parseStatusLine(s[:f.statusLen], res); err != nil {
		return err
	}
	if err := f.frame(res); err != nil {
		return err
	}
	res.Header = f.header(s, vals)
	return nil
}

// readHeadFields is readHead without the header map: res.Header is nil and
// f holds the fields, in the buffer *scratch lends (see Fields). res's
// framing is readHead's (both use Fields.frame), and f.Header builds the
// map readHead would have.
func readHeadFields(br *bufio.Reader, budget *int64, scratch *[]byte, res *http.Response, f *Fields) error {
	if err := f.read(br, budget, scratch, f.inline[:0]); err != nil {
		return err
	}
	*res = http.Response{ContentLength: -1}
	line := commonStatusLine // no allocation for the usual one
	if string(f.block[:f.statusLen]) != commonStatusLine {
		line = string(f.block[:f.statusLen])
	}
	if err := parseStatusLine(line, res); err != nil {
		return err
	}
	return f.frame(res)
}

// commonStatusLine is the status line most responses have.
const commonStatusLine = "HTTP/1.1 200 OK"

// maxScratch is the largest header buffer a connection keeps between
// responses.
const maxScratch = 16 << 10

// readLine appends the next line (without its CRLF or LF) to *block and
// returns it as a slice of *block. The bytes read, line ends included, are
// taken from *budget; a line that needs more than is left is an
// ErrResponseHeaderTooLarge classified as such.
func readLine(br *bufio.Reader, block *[]byte, budget *int64) ([]byte, error) {
	start := len(*block)
	for {
		frag, err := br.ReadSlice('\n')
		if int64(len(frag)) > *budget {
			return nil, &cause.Error{ID: cause.HTTPResponseHeaderSectionSize, Phase: cause.PhaseFirstByte, Err: ErrResponseHeaderTooLarge}
		}
		*budget -= int64(len(frag))
		*block = append(*block, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(*block) > 0 {
				err = io.ErrUnexpectedEOF
			}
		}
		return nil, err
	}
	line := (*block)[start:]
	line = line[:len(line)-1] // the LF
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	*block = (*block)[:start+len(line)]
	return line, nil
}

// parseField checks a header line, canonicalizes its name in place, and
// returns where its name and value are, offset by off.
func parseField(line []byte, off int) (headerField, error) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return headerField{}, malformed("obsolete line folding")
		}
		return headerField{}, malformed("header line without a name")
	}
	if !httpsyntax.CanonicalizeName(line[:colon]) {
		return headerField{}, malformed("invalid header name")
	}
	v0, v1 := colon+1, len(line)
	for v0 < v1 && (line[v0] == ' ' || line[v0] == '\t') {
		v0++
	}
	for v1 > v0 && (line[v1-1] == ' ' || line[v1-1] == '\t') {
		v1--
	}
	for _, c := range line[v0:v1] {
		// Control bytes other than HTAB (CR, LF and NUL above all: a
		// split header) are refused, as net/http refuses them.
		if (c < ' ' && c != '\t') || c == 0x7f {
			return headerField{}, malformed("invalid byte in a header value")
		}
	}
	return headerField{k0: off, k1: off + colon, v0: off + v0, v1: off + v1}, nil
}

// parseStatusLine reads "HTTP/1.1 200 OK" into res.
func parseStatusLine(line string, res *http.Response) error {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok {
		return malformed("status line without a status")
	}
	switch proto {
	case "HTTP/1.1":
		res.ProtoMajor, res.ProtoMinor = 1, 1
	case "HTTP/1.0":
		res.ProtoMajor, res.ProtoMinor = 1, 0
	default:
		return malformed("not HTTP/1.x")
	}
	res.Proto = proto
	code, _, _ := strings.Cut(rest, " ")
	if len(code) != 3 {
		return malformed("status code not 3 digits")
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 {
		return malformed("bad status code")
	}
	res.StatusCode = n
	res.Status = rest
	return nil
}

// chunkedBody reads a chunked body and then its trailer section into the
// response's Trailer.
type chunkedBody struct {
	br   *bufio.Reader
	res  *http.Response
	cr   io.Reader
	done bool
}

func (c *chunkedBody) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.cr == nil {
		c.cr = httputil.NewChunkedReader(c.br)
	}
	n, err := c.cr.Read(p)
	if err == io.EOF {
		if terr := c.readTrailer(); terr != nil {
			return n, terr
		}
		c.done = true
		return n, io.EOF
	}
	if err != nil && errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// maxTrailerBytes bounds a chunked body's trailer section.
const maxTrailerBytes = 64 << 10

func (c *chunkedBody) readTrailer() error {
	var block []byte
	budget := int64(maxTrailerBytes)
	for {
		line, err := readLine(c.br, &block, &budget)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			if errors.Is(err, ErrResponseHeaderTooLarge) {
				// Not the header section's cause: the body has begun.
				return malformed("trailer section too large")
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		f, err := parseField(line, len(block)-len(line))
		if err != nil {
			return err
		}
		if c.res.Trailer == nil {
			c.res.Trailer = make(http.Header)
		}
		c.res.Trailer.Add(string(block[f.k0:f.k1]), string(block[f.v0:f.v1]))
	}
}

func validHeaderName(s string) bool { return httpsyntax.IsToken(s) }

func validMethod(s string) bool { return validHeaderName(s) }

// validRequestTarget reports whether s may go on the request line: not
// empty, no spaces or control bytes.
func validRequestTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
