package h1server

import (
	"bytes"
	"errors"
	"github.com/gatewise/gatewise/internal/httpsyntax"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxLeadingEmptyLines is how many empty lines before a request line are
// skipped (RFC 9112 2.2: some clients send a CRLF after a POST body).
const maxLeadingEmptyLines = 4

var errHeadTooLarge = &requestError{status: http.StatusRequestHeaderFieldsTooLarge}

// readRequest waits for the next request and reads its head. A
// *requestError is answered by the caller; other errors (the visitor
// closed, a timeout, Shutdown) end the connection silently.
func (c *conn) readRequest() (*http.Request, *requestContext, error) {
	if err := c.waitForRequest(); err != nil {
		return nil, nil, err
	}
	// The first byte is here: the header timeout runs from now (from
	// accept for a connection's first request).
	if !c.state.CompareAndSwap(stateNew, stateHeader) {
		c.since.Store(c.srv.clock.Load())
		if !c.state.CompareAndSwap(stateIdle, stateHeader) && !c.leavePark() {
			return nil, nil, errClosed
		}
	}
	head, err := c.readHead()
	if err != nil {
		return nil, nil, err
	}
	ctx := newRequestContext(c.baseCtx)
	req := c.srv.blank.WithContext(ctx)
	if err := c.parseRequest(head, req, ctx); err != nil {
		return nil, nil, err
	}
	return req, ctx, nil
}

var errClosed = errors.New("h1server: connection closed by the server")

// readHead returns the request head, from the request line to the end of
// the last header field (without the empty line), with every header name
// in canonical form. The head is one string.
func (c *conn) readHead() (string, error) {
	br := c.br
	limit := c.srv.maxHeaderBytes()
	skipped := 0
	var big []byte // the head so far, when it outgrows the read buffer
	scan := 0      // where the search for the end resumes
	for {
		buf, _ := br.Peek(br.Buffered())
		if big == nil {
			// Empty lines before the request line.
			for skipped < maxLeadingEmptyLines && len(buf) > 0 && (buf[0] == '\r' || buf[0] == '\n') {
				if buf[0] == '\r' && len(buf) < 2 {
					break
				}
				n := 1
				if buf[0] == '\r' {
					if buf[1] != '\n' {
						return "", badRequest("malformed request line")
					}
					n = 2
				}
				_, _ = br.Discard(n)
				buf = buf[n:]
				skipped++
			}
			if end, body := headEnd(buf, scan); end >= 0 {
				if end > limit {
					return "", errHeadTooLarge
				}
				head := buf[:end]
				canonicalizeNames(head)
				s := string(head)
				_, _ = br.Discard(body)
				return s, nil
			}
			scan = max(len(buf)-3, 0)
			if len(buf) > limit {
				return "", errHeadTooLarge
			}
			if len(buf) == br.Size() {
				big = append(make([]byte, 0, 2*len(buf)), buf...)
				_, _ = br.Discard(len(buf))
				continue
			}
		} else {
			old := len(big)
			big = append(big, buf...)
			if end, next := headEnd(big, scan); end >= 0 {
				if end > limit {
					return "", errHeadTooLarge
				}
				// Take from the reader only what belongs to the
				// head: the rest is the body or the next request.
				_, _ = br.Discard(next - old)
				head := big[:end]
				canonicalizeNames(head)
				return string(head), nil
			}
			_, _ = br.Discard(len(buf))
			scan = max(len(big)-3, 0)
			if len(big) > limit {
				return "", errHeadTooLarge
			}
		}
		// More bytes are needed.
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if errors.Is(err, io.EOF) && (big != nil || br.Buffered() > 0) {
				return "", badRequest("request head cut short")
			}
			return "", err
		}
	}
}

// headEnd finds the empty line that ends a head in b, searching from
// from. It returns the head's length (up to the last line's LF, without
// it: a CR before it stays, for the parser to take off as on every other
// line, so that a bare CR at the end of the last line is refused as
// anywhere else) and the offset of what follows the empty line; -1 when
// b has no end yet.
func headEnd(b []byte, from int) (end, next int) {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, -1
		}
		i += j
		// b[i] is '\n'; the empty line is "\n\r\n" or "\n\n".
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i, i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i, i + 3
		case i+2 >= len(b) && (i+1 == len(b) || b[i+1] == '\r'):
			return -1, -1 // the end may come with the next bytes
		}
		i++
	}
	return -1, -1
}

// canonicalizeNames puts the header names of head (lines after the
// first) in canonical form, in place: "content-type" becomes
// "Content-Type", as textproto.CanonicalMIMEHeaderKey does for valid
// names. Names with bytes outside the token set are left for
// parseRequest to refuse.
func canonicalizeNames(head []byte) {
	nl := bytes.IndexByte(head, '\n')
	for nl >= 0 && nl+1 < len(head) {
		line := head[nl+1:]
		next := bytes.IndexByte(line, '\n')
		if next >= 0 {
			line = line[:next]
		}
		colon := bytes.IndexByte(line, ':')
		if colon > 0 {
			httpsyntax.CanonicalizeName(line[:colon])
		}
		if next < 0 {
			return
		}
		nl += 1 + next
	}
}

// parseRequest fills req from head.
func (c *conn) parseRequest(head string, req *http.Request, rc *requestContext) error {
	line, rest, _ := strings.Cut(head, "\n")
	line = strings.TrimSuffix(line, "\r")
	method, afterMethod, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(afterMethod, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return badRequest("malformed request line")
	}
	for i := 0; i < len(method); i++ {
		if !httpsyntax.IsTokenByte(method[i]) {
			return badRequest("invalid method")
		}
	}
	switch proto {
	case "HTTP/1.1":
		req.Proto, req.ProtoMajor, req.ProtoMinor = proto, 1, 1
	case "HTTP/1.0":
		req.Proto, req.ProtoMajor, req.ProtoMinor = proto, 1, 0
	default:
		major, minor, ok := http.ParseHTTPVersion(proto)
		if ok && major == 1 {
			// HTTP/1.2 and up would be 1.1 to us (RFC 9110 2.5).
			req.Proto, req.ProtoMajor, req.ProtoMinor = proto, major, minor
			break
		}
		if ok {
			return &requestError{status: http.StatusHTTPVersionNotSupported}
		}
		return badRequest("malformed HTTP version")
	}
	for i := 0; i < len(target); i++ {
		if ch := target[i]; ch <= ' ' || ch == 0x7f {
			return badRequest("invalid request target")
		}
	}
	req.Method = method
	req.RequestURI = target

	// Header fields: every value a slice of the head, every single
	// value's []string a window on one backing array.
	n := strings.Count(rest, "\n") + 1
	if rest == "" {
		n = 0
	}
	hdr := make(http.Header, n)
	var vals []string
	if n <= len(rc.vals) {
		vals = rc.vals[:n]
	} else {
		vals = make([]string, n)
	}
	pragma := false
	// Host fields stay out of the map (net/http takes them out too):
	// the first two are kept, and how many came.
	var hostVals [2]string
	hostCount := 0
	for i := 0; rest != ""; i++ {
		var fl string
		fl, rest, _ = strings.Cut(rest, "\n")
		fl = strings.TrimSuffix(fl, "\r")
		if fl == "" {
			continue
		}
		if fl[0] == ' ' || fl[0] == '\t' {
			return badRequest("obsolete line folding")
		}
		colon := strings.IndexByte(fl, ':')
		if colon <= 0 {
			return badRequest("malformed header line")
		}
		key := fl[:colon]
		for j := 0; j < len(key); j++ {
			if !httpsyntax.IsTokenByte(key[j]) {
				return badRequest("invalid header name")
			}
		}
		v := trimOWS(fl[colon+1:])
		for j := 0; j < len(v); j++ {
			if ch := v[j]; (ch < ' ' && ch != '\t') || ch == 0x7f {
				return badRequest("invalid header value")
			}
		}
		if key == "Host" {
			if hostCount < len(hostVals) {
				hostVals[hostCount] = v
			}
			hostCount++
			continue
		}
		pragma = pragma || key == "Pragma"
		if prior, ok := hdr[key]; ok {
			hdr[key] = append(prior, v)
		} else {
			vals[i] = v
			hdr[key] = vals[i : i+1 : i+1]
		}
	}
	if pragma {
		fixPragmaCacheControl(hdr)
	}
	req.Header = hdr

	// Host: from an absolute-form target, else the Host field (which
	// is not in the map, as with net/http).
	if hostCount > 1 {
		return badRequest("too many Host headers")
	}
	hosts := hostVals[:hostCount]
	if len(hosts) == 0 && req.ProtoMinor >= 1 && method != http.MethodConnect {
		// (A CONNECT names its host in its target, and net/http
		// takes one without a Host field.)
		return badRequest("missing required Host header")
	}
	u := &rc.url
	if !parseOriginForm(target, u) {
		parsed, err := parseTarget(method, target)
		if err != nil {
			return badRequest("invalid request target")
		}
		u = parsed
	}
	req.URL = u
	req.Host = u.Host
	if req.Host == "" && len(hosts) == 1 {
		req.Host = hosts[0]
	}
	// The host used, and a Host field an absolute target overrides (as
	// net/http checks it too).
	if !validHost(req.Host) || (len(hosts) == 1 && u.Host != "" && !validHost(hosts[0])) {
		return badRequest("malformed Host header")
	}
	req.RemoteAddr = c.remoteAddr
	if c.tlsConn != nil {
		if c.tlsState == nil {
			st := c.tlsConn.ConnectionState()
			c.tlsState = &st
		}
		req.TLS = c.tlsState
	}
	req.Close = shouldClose(req.ProtoMinor, hdr["Connection"])
	return c.parseFraming(req, hdr)
}

// parseFraming reads the body's framing (Content-Length or chunked) and
// sets req.Body, ContentLength, TransferEncoding and Trailer.
func (c *conn) parseFraming(req *http.Request, hdr http.Header) error {
	te, cl := hdr["Transfer-Encoding"], hdr["Content-Length"]
	switch {
	case te != nil:
		if cl != nil {
			// Both: a request smuggling attempt or a broken client
			// (RFC 9112 6.3 lets a server refuse it).
			return badRequest("both Transfer-Encoding and Content-Length")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return &requestError{status: http.StatusNotImplemented, reason: "unsupported transfer encoding"}
		}
		if req.ProtoMinor == 0 {
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		delete(hdr, "Transfer-Encoding")
		req.TransferEncoding = []string{"chunked"}
		req.ContentLength = -1
		req.Body = &body{c: c, chunked: true, req: req, remain: -1}
		if tr := hdr["Trailer"]; tr != nil {
			trailer, err := declaredTrailer(tr)
			if err != nil {
				return err
			}
			req.Trailer = trailer
			delete(hdr, "Trailer")
		}
	case cl != nil:
		n, ok := parseContentLength(cl)
		if !ok {
			return badRequest("bad Content-Length")
		}
		if len(cl) > 1 {
			hdr["Content-Length"] = cl[:1] // equal copies: one, as net/http keeps
		}
		req.ContentLength = n
		if n == 0 {
			req.Body = http.NoBody
		} else {
			req.Body = &body{c: c, req: req, remain: n}
		}
	default:
		req.Body = http.NoBody
	}
	if exp := hdr["Expect"]; len(exp) > 0 {
		if !strings.EqualFold(exp[0], "100-continue") || len(exp) > 1 {
			return &requestError{status: http.StatusExpectationFailed}
		}
		if req.ProtoMinor >= 1 && req.Body != http.NoBody {
			req.Body.(*body).continueFirst = true
		}
	}
	return nil
}

// fixPragmaCacheControl adds "Cache-Control: no-cache" to a request
// with "Pragma: no-cache" and no Cache-Control, as net/http's ReadRequest
// does (RFC 9111 5.4), so that handlers see the same header as before.
func fixPragmaCacheControl(hdr http.Header) {
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// parseTarget parses a request target as net/http does: authority form
// for CONNECT, else origin, absolute or asterisk form.
func parseTarget(method, target string) (*url.URL, error) {
	if method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		u, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return nil, err
		}
		u.Scheme = ""
		return u, nil
	}
	return url.ParseRequestURI(target)
}

// parseContentLength accepts one or more equal values of digits only.
func parseContentLength(vals []string) (int64, bool) {
	first := strings.TrimSpace(vals[0])
	for _, v := range vals[1:] {
		if strings.TrimSpace(v) != first {
			return 0, false
		}
	}
	if first == "" || len(first) > 18 {
		return 0, false
	}
	for i := 0; i < len(first); i++ {
		if first[i] < '0' || first[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// declaredTrailer turns "Trailer: a, b" into a map of the names.
func declaredTrailer(vals []string) (http.Header, error) {
	t := make(http.Header)
	for _, v := range vals {
		for name := range strings.SplitSeq(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			switch name {
			case "":
				continue
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, badRequest("bad trailer key")
			}
			t[name] = nil
		}
	}
	return t, nil
}

// shouldClose reports whether the visitor asked for the connection to
// close after this answer: "Connection: close", or HTTP/1.0 without
// "Connection: keep-alive".
func shouldClose(minor int, conn []string) bool {
	if minor == 0 {
		return !httpsyntax.AnyHasToken(conn, "keep-alive")
	}
	return httpsyntax.AnyHasToken(conn, "close")
}

// validHost refuses Host values with bytes no reg-name, IPv4 or IPv6
// literal, zone or port has: the set net/http's server accepts (RFC 3986
// unreserved and sub-delims, '%', ':', '[' and ']'), so that "a@b",
// "a#b" or "a/b" never reach a handler as a host.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		ch := h[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
