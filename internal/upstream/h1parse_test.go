package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/httpsyntax"
)

// parseHead parses s as a response head with the given limit.
func parseHead(s string, limit int64) (*http.Response, error) {
	var scratch []byte
	return readResponseHead(bufio.NewReader(strings.NewReader(s)), limit, &scratch)
}

func TestReadResponseHead(t *testing.T) {
	t.Parallel()
	type want struct {
		status     int
		statusText string
		minor      int
		header     http.Header // compared whole when not nil
		length     int64
		chunked    bool
		close      bool
		trailer    []string // declared trailer names, sorted
	}
	tests := []struct {
		desc string
		in   string
		want want
		err  error // errors.Is target; nil: success
	}{
		{desc: "a length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 5, header: http.Header{"Content-Length": {"5"}}}},
		{desc: "bare LF line ends", in: "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 5}},
		{desc: "names canonicalized", in: "HTTP/1.1 200 OK\r\ncontent-TYPE: text/plain\r\nx-a-b: 1\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1,
				header: http.Header{"Content-Type": {"text/plain"}, "X-A-B": {"1"}}}},
		{desc: "repeated field keeps its order", in: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1,
				header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "X": {"y"}}}},
		{desc: "white space around a value trimmed, inside kept", in: "HTTP/1.1 200 OK\r\nX:  \t a \t b \t\r\nY:\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1,
				header: http.Header{"X": {"a \t b"}, "Y": {""}}}},
		{desc: "no reason phrase", in: "HTTP/1.1 204\r\n\r\n",
			want: want{status: 204, statusText: "204", minor: 1, length: -1}},
		{desc: "HTTP/1.0 closes", in: "HTTP/1.0 200 OK\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 0, length: -1, close: true}},
		{desc: "HTTP/1.0 with keep-alive stays open", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 0, length: 0}},
		{desc: "close among other tokens", in: "HTTP/1.1 200 OK\r\nConnection: upgrade,\tCLOSE \r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 0, close: true}},
		{desc: "close followed by a no-break space is not the close token", in: "HTTP/1.1 200 OK\r\nConnection: close\u00a0\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 0}},
		{desc: "vertical tab in a value", in: "HTTP/1.1 200 OK\r\nConnection: close\v\r\n\r\n", err: ErrMalformedResponse},
		{desc: "close not a token of a longer word", in: "HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 0}},
		{desc: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1, chunked: true, header: http.Header{}}},
		{desc: "chunked in any case", in: "HTTP/1.1 200 OK\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1, chunked: true}},
		{desc: "chunked and a length: chunked wins, length dropped, not reused", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1, chunked: true, close: true, header: http.Header{}}},
		{desc: "chunked on HTTP/1.0 with keep-alive is not reused", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 0, length: -1, chunked: true, close: true}},
		{desc: "declared trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum , X-Other,,bad name\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1, chunked: true, trailer: []string{"X-Other", "X-Sum"}}},
		{desc: "trailer without chunked declares nothing", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTrailer: X-Sum\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 0}},
		{desc: "equal lengths merged", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 5, header: http.Header{"Content-Length": {"5"}}}},
		{desc: "leading zeros", in: "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: 7}},
		{desc: "a long header line over the read buffer", in: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 10000) + "\r\n\r\n",
			want: want{status: 200, statusText: "200 OK", minor: 1, length: -1, header: http.Header{"X-Long": {strings.Repeat("a", 10000)}}}},
		{desc: "an interim response is parsed as itself", in: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
			want: want{status: 103, statusText: "103 Early Hints", minor: 1, length: -1}},

		{desc: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", err: ErrMalformedResponse},
		{desc: "a list as a length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", err: ErrMalformedResponse},
		{desc: "negative zero length", in: "HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n", err: ErrMalformedResponse},
		{desc: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: ErrMalformedResponse},
		{desc: "signed length", in: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", err: ErrMalformedResponse},
		{desc: "empty length", in: "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", err: ErrMalformedResponse},
		{desc: "length not a number", in: "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", err: ErrMalformedResponse},
		{desc: "length overflows", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", err: ErrMalformedResponse},
		{desc: "gzip transfer coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: ErrMalformedResponse},
		{desc: "two codings in one field", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: ErrMalformedResponse},
		{desc: "chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrMalformedResponse},
		{desc: "obsolete line folding", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", err: ErrMalformedResponse},
		{desc: "a line without a colon", in: "HTTP/1.1 200 OK\r\nX\r\n\r\n", err: ErrMalformedResponse},
		{desc: "an empty name", in: "HTTP/1.1 200 OK\r\n: x\r\n\r\n", err: ErrMalformedResponse},
		{desc: "space before the colon", in: "HTTP/1.1 200 OK\r\nX : y\r\n\r\n", err: ErrMalformedResponse},
		{desc: "a name with a slash", in: "HTTP/1.1 200 OK\r\nX/Y: z\r\n\r\n", err: ErrMalformedResponse},
		{desc: "NUL in a value", in: "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", err: ErrMalformedResponse},
		{desc: "CR inside a value", in: "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", err: ErrMalformedResponse},
		{desc: "another control byte in a value", in: "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", err: ErrMalformedResponse},
		{desc: "DEL in a value", in: "HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n", err: ErrMalformedResponse},
		{desc: "HTTP/2 status line", in: "HTTP/2.0 200 OK\r\n\r\n", err: ErrMalformedResponse},
		{desc: "lower-case protocol", in: "http/1.1 200 OK\r\n\r\n", err: ErrMalformedResponse},
		{desc: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", err: ErrMalformedResponse},
		{desc: "status below 100", in: "HTTP/1.1 099 Low\r\n\r\n", err: ErrMalformedResponse},
		{desc: "signed status", in: "HTTP/1.1 +99 Low\r\n\r\n", err: ErrMalformedResponse},
		{desc: "status not a number", in: "HTTP/1.1 abc\r\n\r\n", err: ErrMalformedResponse},
		{desc: "no status", in: "HTTP/1.1\r\n\r\n", err: ErrMalformedResponse},
		{desc: "two spaces before the status", in: "HTTP/1.1  200 OK\r\n\r\n", err: ErrMalformedResponse},
		{desc: "empty status line", in: "\r\nHTTP/1.1 200 OK\r\n\r\n", err: ErrMalformedResponse},
		{desc: "junk", in: "SSH-2.0-OpenSSH_9.2\r\n\r\n", err: ErrMalformedResponse},
		{desc: "nothing at all", in: "", err: io.EOF},
		{desc: "cut in the status line", in: "HTTP/1.1 20", err: io.ErrUnexpectedEOF},
		{desc: "cut after the status line", in: "HTTP/1.1 200 OK\r\n", err: io.ErrUnexpectedEOF},
		{desc: "cut in a header", in: "HTTP/1.1 200 OK\r\nContent-Len", err: io.ErrUnexpectedEOF},
		{desc: "cut before the empty line", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, err := parseHead(tt.in, 1<<20)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if res != nil {
					t.Errorf("a response with the error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			w := tt.want
			if res.StatusCode != w.status || res.Status != w.statusText {
				t.Errorf("status = %d %q, want %d %q", res.StatusCode, res.Status, w.status, w.statusText)
			}
			if res.ProtoMajor != 1 || res.ProtoMinor != w.minor || res.Proto != "HTTP/1."+string(rune('0'+w.minor)) {
				t.Errorf("proto = %q %d.%d, want HTTP/1.%d", res.Proto, res.ProtoMajor, res.ProtoMinor, w.minor)
			}
			if w.header != nil && !equalHeaders(res.Header, w.header) {
				t.Errorf("header = %q, want %q", res.Header, w.header)
			}
			if res.ContentLength != w.length {
				t.Errorf("ContentLength = %d, want %d", res.ContentLength, w.length)
			}
			if got := len(res.TransferEncoding) > 0; got != w.chunked {
				t.Errorf("chunked = %v (%q), want %v", got, res.TransferEncoding, w.chunked)
			}
			if res.Close != w.close {
				t.Errorf("Close = %v, want %v", res.Close, w.close)
			}
			var trailer []string
			for k := range res.Trailer {
				trailer = append(trailer, k)
			}
			slices.Sort(trailer)
			if !slices.Equal(trailer, w.trailer) {
				t.Errorf("trailer = %q, want %q", trailer, w.trailer)
			}
		})
	}
}

// equalHeaders reports whether a and b hold the same fields and values.
func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

// TestReadResponseHeadLimit checks that the limit counts every byte of the
// header section, line ends included, and that going over it is the
// http_response_header_section_size cause.
func TestReadResponseHeadLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		head string
	}{
		{"a few long fields", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", 3000) + "\r\nX-B: " + strings.Repeat("b", 3000) + "\r\n\r\n"},
		{"many short fields (line ends are half the bytes)", "HTTP/1.1 200 OK\r\n" + strings.Repeat("a:\r\n", 1000) + "\r\n"},
		{"bare LF line ends", "HTTP/1.1 200 OK\n" + strings.Repeat("a:\n", 1000) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			limit := int64(len(tt.head))
			if _, err := parseHead(tt.head+"body", limit); err != nil {
				t.Fatalf("at the limit: err = %v, want none", err)
			}
			for _, l := range []int64{limit - 1, limit / 2, 10} {
				res, err := parseHead(tt.head, l)
				if res != nil || !errors.Is(err, ErrResponseHeaderTooLarge) {
					t.Fatalf("limit %d of %d: res %v, err = %v, want ErrResponseHeaderTooLarge", l, limit, res != nil, err)
				}
				var ce *cause.Error
				if !errors.As(err, &ce) || ce.ID != cause.HTTPResponseHeaderSectionSize || ce.Phase != cause.PhaseFirstByte {
					t.Fatalf("limit %d: err = %#v, want a cause.Error %s at the first byte", l, err, cause.HTTPResponseHeaderSectionSize)
				}
			}
		})
	}
}

// TestReadResponseHeadScratch parses two responses through one scratch
// buffer: the first response's strings must not change.
func TestReadResponseHeadScratch(t *testing.T) {
	t.Parallel()
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nX-First: one\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nX-Second: two-two\r\nContent-Length: 0\r\n\r\n"))
	var scratch []byte
	first, err := readResponseHead(br, 1<<20, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	second, err := readResponseHead(br, 1<<20, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Header.Get("X-First"); got != "one" || first.Status != "200 OK" {
		t.Errorf("first after second: X-First %q status %q, want one, 200 OK", got, first.Status)
	}
	if got := second.Header.Get("X-Second"); got != "two-two" || second.StatusCode != 404 {
		t.Errorf("second: X-Second %q status %d, want two-two, 404", got, second.StatusCode)
	}
	if cap(scratch) == 0 {
		t.Error("the scratch buffer was not kept for the next response")
	}
}

func TestChunkedBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		in      string
		body    string
		trailer http.Header
		err     error  // from reading to the end; nil: io.EOF
		rest    string // what is left to read after a clean end
	}{
		{desc: "chunks and trailers", in: "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\nx-more: 1\r\n\r\nNEXT",
			body: "hello world", trailer: http.Header{"X-Sum": {"abc"}, "X-More": {"1"}}, rest: "NEXT"},
		{desc: "no trailers", in: "3\r\nabc\r\n0\r\n\r\nNEXT", body: "abc", rest: "NEXT"},
		{desc: "chunk extensions", in: "3;name=value\r\nabc\r\n0\r\n\r\n", body: "abc"},
		{desc: "cut in a chunk", in: "5\r\nhel", body: "hel", err: io.ErrUnexpectedEOF},
		{desc: "cut before the last chunk", in: "5\r\nhello\r\n", body: "hello", err: io.ErrUnexpectedEOF},
		{desc: "cut in the trailer", in: "5\r\nhello\r\n0\r\nX-Sum: a", body: "hello", err: io.ErrUnexpectedEOF},
		{desc: "cut before the trailer's end", in: "5\r\nhello\r\n0\r\n", body: "hello", err: io.ErrUnexpectedEOF},
		{desc: "folded trailer", in: "0\r\nX: a\r\n b\r\n\r\n", err: ErrMalformedResponse},
		{desc: "trailer section too large", in: "0\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 100) + "\r\n", err: ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.in))
			res := &http.Response{Trailer: http.Header{"X-Sum": nil}}
			body, err := io.ReadAll(&chunkedBody{br: br, res: res})
			if string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			want := tt.trailer
			if want == nil {
				want = http.Header{"X-Sum": nil}
			}
			if !equalHeaders(res.Trailer, want) {
				t.Errorf("trailer = %q, want %q", res.Trailer, want)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.rest {
				t.Errorf("left after the body: %q, want %q", rest, tt.rest)
			}
		})
	}
	t.Run("bad chunk size", func(t *testing.T) {
		_, err := io.ReadAll(&chunkedBody{br: bufio.NewReader(strings.NewReader("zz\r\nabc\r\n0\r\n\r\n")), res: &http.Response{}})
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("err = %v, want a chunk size error", err)
		}
	})
}

// FuzzReadResponseHead checks that the parser never panics, never reads
// more header bytes than its limit, and agrees with net/http's
// http.ReadResponse on the status, the header fields and the framing of
// every input both accept.
//
// Where the two legitimately differ, the input is refused by one of them
// and not compared; by design we refuse what net/http accepts in these
// cases:
//   - obsolete line folding (RFC 9112 5.2 allows refusing it);
//   - a space between a field name and its colon (RFC 9112 5.1);
//   - protocol versions other than HTTP/1.0 and HTTP/1.1, status codes
//     below 100, and spaces before the status code;
//   - a Transfer-Encoding other than exactly "chunked" on an HTTP/1.0
//     response (net/http ignores Transfer-Encoding on HTTP/1.0);
//
// and we accept what net/http refuses in these:
//   - a chunked response with an invalid or conflicting Content-Length
//     (the length is ignored, as chunked wins, and the connection is not
//     reused; net/http checks the length first);
//   - a Trailer field naming Content-Length, Transfer-Encoding or Trailer,
//     or names that are not tokens (we drop those names).
//
// Where both accept but the results differ by design, the comparison skips:
//   - chunked on HTTP/1.0: we read the chunked body and close the
//     connection after it (RFC 9112 6.1); net/http ignores the coding;
//   - the Close of a response with both a length and chunked (we never
//     reuse such a connection) or of one read until the connection closes
//     (the transport never reuses those either);
//   - headers net/http rewrites: Connection when it says close, Trailer,
//     and a Cache-Control it adds for Pragma: no-cache.
func FuzzReadResponseHead(f *testing.F) {
	seeds := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nPragma: no-cache\r\nset-cookie: a\r\nSet-Cookie: b\r\n\r\n",
		"HTTP/1.1 200 OK\nX:\t v \t\nContent-Length: 007\n\n",
		"HTTP/1.1 999 Whatever\r\nX-Long: " + strings.Repeat("a", 300) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("a:\r\n", 100) + "\r\n",
	}
	for _, s := range append(seeds, framingHeads...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareFieldsWithMap(t, data)
		// Under a small limit, through a small read buffer (lines come
		// in fragments).
		const limit = 256
		r := bytes.NewReader(data)
		br := bufio.NewReaderSize(r, 16)
		var scratch []byte
		res, err := readResponseHead(br, limit, &scratch)
		consumed := len(data) - r.Len() - br.Buffered()
		switch {
		case err == nil:
			if consumed > limit {
				t.Fatalf("read %d header bytes, over the limit of %d", consumed, limit)
			}
			checkHead(t, res)
		case errors.Is(err, ErrResponseHeaderTooLarge):
			var ce *cause.Error
			if !errors.As(err, &ce) || ce.ID != cause.HTTPResponseHeaderSectionSize {
				t.Fatalf("too large but not the cause %s: %#v", cause.HTTPResponseHeaderSectionSize, err)
			}
		case errors.Is(err, ErrMalformedResponse), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil || !errors.Is(err, ErrResponseHeaderTooLarge) {
			// The limit changes nothing else.
			res2, err2 := readResponseHead(bufio.NewReader(bytes.NewReader(data)), 1<<20, &scratch)
			if (err == nil) != (err2 == nil) {
				t.Fatalf("with a small limit: %v; without: %v", err, err2)
			}
			if err == nil && (res2.StatusCode != res.StatusCode || !equalHeaders(res2.Header, res.Header)) {
				t.Fatalf("different results through a small buffer")
			}
		}

		ours, oerr := readResponseHead(bufio.NewReader(bytes.NewReader(data)), 1<<20, &scratch)
		theirs, terr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: http.MethodGet})
		if oerr != nil || terr != nil {
			return
		}
		compareWithNetHTTP(t, ours, theirs)
	})
}

// checkHead checks what must hold of any response the parser returns.
func checkHead(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode < 100 || res.StatusCode > 999 || res.ProtoMajor != 1 || res.ProtoMinor > 1 {
		t.Fatalf("status %d, proto %d.%d", res.StatusCode, res.ProtoMajor, res.ProtoMinor)
	}
	for k, vs := range res.Header {
		if !validHeaderName(k) || k != http.CanonicalHeaderKey(k) {
			t.Fatalf("header name %q not a canonical token", k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") || strings.Trim(v, " \t") != v {
				t.Fatalf("header %s value %q", k, v)
			}
		}
	}
	if len(res.TransferEncoding) > 0 {
		if res.ContentLength != -1 || res.Header["Content-Length"] != nil || res.Header["Transfer-Encoding"] != nil {
			t.Fatalf("chunked with length %d, header %q", res.ContentLength, res.Header)
		}
	}
	if cl := res.Header["Content-Length"]; len(cl) > 1 {
		t.Fatalf("Content-Length %q", cl)
	}
}

// compareWithNetHTTP fails t when ours and theirs, the same input parsed
// by readResponseHead and http.ReadResponse, differ in a way not
// documented on FuzzReadResponseHead.
func compareWithNetHTTP(t *testing.T, ours, theirs *http.Response) {
	t.Helper()
	if ours.StatusCode != theirs.StatusCode || ours.Status != theirs.Status {
		t.Fatalf("status %d %q, net/http %d %q", ours.StatusCode, ours.Status, theirs.StatusCode, theirs.Status)
	}
	if ours.Proto != theirs.Proto || ours.ProtoMajor != theirs.ProtoMajor || ours.ProtoMinor != theirs.ProtoMinor {
		t.Fatalf("proto %q, net/http %q", ours.Proto, theirs.Proto)
	}
	http10 := ours.ProtoMinor == 0
	oh, th := ours.Header.Clone(), theirs.Header.Clone()
	for _, h := range []http.Header{oh, th} {
		h.Del("Connection")
		h.Del("Trailer")
		h.Del("Transfer-Encoding")
		if http10 || len(ours.TransferEncoding) > 0 {
			h.Del("Content-Length")
		}
	}
	if _, ok := ours.Header["Cache-Control"]; !ok {
		th.Del("Cache-Control")
	}
	if !equalHeaders(oh, th) {
		t.Fatalf("header\n%q\nnet/http\n%q", oh, th)
	}
	oc, tc := len(ours.TransferEncoding) > 0, len(theirs.TransferEncoding) > 0
	if http10 && oc {
		return // chunked on HTTP/1.0: see above
	}
	if oc != tc {
		t.Fatalf("chunked %v, net/http %v", oc, tc)
	}
	bodyless := ours.StatusCode < 200 || ours.StatusCode == http.StatusNoContent || ours.StatusCode == http.StatusNotModified
	if !oc && !bodyless && ours.ContentLength != theirs.ContentLength {
		t.Fatalf("length %d, net/http %d", ours.ContentLength, theirs.ContentLength)
	}
	if oc {
		var ot, tt []string
		for k := range ours.Trailer {
			ot = append(ot, k)
		}
		for k := range theirs.Trailer {
			if validHeaderName(k) {
				tt = append(tt, k)
			}
		}
		slices.Sort(ot)
		slices.Sort(tt)
		if !slices.Equal(ot, tt) {
			t.Fatalf("trailer %q, net/http %q", ot, tt)
		}
	}
	untilClose := !oc && ours.ContentLength < 0 && !bodyless
	// A chunked response we close and net/http does not had a length too.
	bothLengths := oc && ours.Close && !theirs.Close
	if !untilClose && !bothLengths && ours.Close != theirs.Close {
		t.Fatalf("close %v, net/http %v", ours.Close, theirs.Close)
	}
}

// framingHeads are response heads whose framing fields are unusual: the
// cases where readHeadFields and readHead could part ways.
var framingHeads = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\nX: y\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\nTrailer: x-a, bad name, X-B\r\nTrailer: x-c\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: x, close\r\nContent-Length: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-A\r\nContent-Length: 1\r\n\r\n",
}

// compareFieldsWithMap checks that readHeadFields reads a head as readHead
// does: the same error or none, the same status and framing, no header map,
// and a map built later (Fields.Header, from a string of its own) equal to
// readHead's (from values in the caller's array). The framing itself is
// checked by TestReadResponseHead and, against net/http, by the fuzz
// target.
func compareFieldsWithMap(t *testing.T, data []byte) {
	t.Helper()
	var scratch []byte
	budget := int64(1 << 20)
	want := new(http.Response)
	werr := readHead(bufio.NewReader(bytes.NewReader(data)), &budget, &scratch, want, nil)
	budget = 1 << 20
	got := new(http.Response)
	var f Fields
	gerr := readHeadFields(bufio.NewReader(bytes.NewReader(data)), &budget, &scratch, got, &f)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%q: readHead error %v, readHeadFields error %v", data, werr, gerr)
	}
	if werr != nil {
		return
	}
	if got.Header != nil {
		t.Fatalf("%q: readHeadFields built a header map", data)
	}
	if got.StatusCode != want.StatusCode || got.Status != want.Status || got.Proto != want.Proto ||
		got.ProtoMinor != want.ProtoMinor || got.Close != want.Close || got.ContentLength != want.ContentLength ||
		!slices.Equal(got.TransferEncoding, want.TransferEncoding) || !equalHeaders(got.Trailer, want.Trailer) {
		t.Fatalf("%q: framing differs:\nfields %+v\nmap    %+v", data, got, want)
	}
	if h := f.Header(); !equalHeaders(h, want.Header) {
		t.Fatalf("%q: Fields.Header() = %v, readHead's map %v", data, h, want.Header)
	}
	for i := range f.Len() {
		name := string(f.Name(i))
		if v, ok := f.Get(name); !ok || string(v) != httpsyntax.HeaderValue(want.Header, name) && !f.framing(i) {
			t.Fatalf("%q: Get(%q) = %q, %v", data, name, v, ok)
		}
	}
}

func TestReadHeadFieldsMatchesMap(t *testing.T) {
	t.Parallel()
	for _, s := range framingHeads {
		compareFieldsWithMap(t, []byte(s))
	}
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\nX:\t v \t\nContent-Length: 007\n\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\n\r\n",
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: v\r\n", 40) + "\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
		"",
		"junk\r\n\r\n",
	} {
		compareFieldsWithMap(t, []byte(s))
	}
}
