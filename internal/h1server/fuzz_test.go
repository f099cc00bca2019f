package h1server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// parseOne reads one request from data with the server's own reader, as
// a connection's first request, without a socket.
func parseOne(data []byte) (*http.Request, *conn, error) {
	s := &Server{}
	c := &conn{srv: s, remoteAddr: "192.0.2.1:1234", baseCtx: context.Background()}
	c.resp.c = c
	c.state.Store(stateNew)
	c.br = bufio.NewReaderSize(bytes.NewReader(data), readBufferSize)
	req, cancel, err := c.readRequest()
	if err != nil {
		return nil, nil, err
	}
	cancel.cancel()
	if b, ok := req.Body.(*body); ok {
		b.continueFirst = false // no socket to send the 100 on
	}
	return req, c, nil
}

// skipEmptyLines drops the empty lines the server skips before a request
// line (net/http's ReadRequest does not).
func skipEmptyLines(data []byte) []byte {
	for i := 0; i < maxLeadingEmptyLines; i++ {
		switch {
		case bytes.HasPrefix(data, []byte("\r\n")):
			data = data[2:]
		case bytes.HasPrefix(data, []byte("\n")):
			data = data[1:]
		default:
			return data
		}
	}
	return data
}

// FuzzReadRequest compares the server's request parser with net/http's
// http.ReadRequest. What both accept must read the same; what only the
// server accepts is a bug (the deliberate differences are all refusals,
// and leading empty lines, which the comparison removes first).
func FuzzReadRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		ours, c, err := parseOne(data)
		theirs, terr := http.ReadRequest(bufio.NewReader(bytes.NewReader(skipEmptyLines(data))))
		if err != nil {
			return // refusing more than net/http is allowed
		}
		if terr != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", terr, data)
		}
		delete(theirs.Header, "Host")
		if ours.Method != theirs.Method || ours.URL.String() != theirs.URL.String() || ours.RequestURI != theirs.RequestURI ||
			ours.Proto != theirs.Proto || ours.ProtoMajor != theirs.ProtoMajor || ours.ProtoMinor != theirs.ProtoMinor ||
			ours.Host != theirs.Host || ours.ContentLength != theirs.ContentLength || ours.Close != theirs.Close ||
			!reflect.DeepEqual(ours.TransferEncoding, theirs.TransferEncoding) {
			t.Fatalf("request differs for %q:\nours   %s %q %q %s %d.%d host %q cl %d te %q close %v\ntheirs %s %q %q %s %d.%d host %q cl %d te %q close %v",
				data,
				ours.Method, ours.URL, ours.RequestURI, ours.Proto, ours.ProtoMajor, ours.ProtoMinor, ours.Host, ours.ContentLength, ours.TransferEncoding, ours.Close,
				theirs.Method, theirs.URL, theirs.RequestURI, theirs.Proto, theirs.ProtoMajor, theirs.ProtoMinor, theirs.Host, theirs.ContentLength, theirs.TransferEncoding, theirs.Close)
		}
		if !headersEqual(ours.Header, theirs.Header) {
			t.Fatalf("header differs for %q:\nours   %q\ntheirs %q", data, ours.Header, theirs.Header)
		}
		if (ours.Body == http.NoBody) != (theirs.Body == http.NoBody) {
			t.Fatalf("NoBody differs for %q", data)
		}
		ob, oerr := io.ReadAll(ours.Body)
		tb, terr := io.ReadAll(theirs.Body)
		if (oerr == nil) != (terr == nil) {
			// Both refuse bad chunked framing, at times at
			// different bytes; the server may be stricter.
			if oerr == nil {
				// net/http peeks two bytes for the empty line
				// after the last chunk, and so refuses a bare LF
				// there when the stream ends with it; given the
				// next request behind, it takes the same body.
				tb, terr = readBodyWithNext(data)
				if terr != nil {
					t.Fatalf("body read: ours accepted, net/http %v, for %q", terr, data)
				}
				if !bytes.Equal(ob, tb) {
					t.Fatalf("body differs for %q: %q vs %q", data, ob, tb)
				}
			}
			return
		}
		if oerr == nil {
			if !bytes.Equal(ob, tb) {
				t.Fatalf("body differs for %q: %q vs %q", data, ob, tb)
			}
			if !headersEqual(ours.Trailer, theirs.Trailer) {
				t.Fatalf("trailer differs for %q:\nours   %q\ntheirs %q", data, ours.Trailer, theirs.Trailer)
			}
		}
		_ = c
	})
}

// readBodyWithNext reads data's request body with net/http when a
// pipelined request follows data.
func readBodyWithNext(data []byte) ([]byte, error) {
	next := append(skipEmptyLines(bytes.Clone(data)), "GET /next HTTP/1.1\r\nHost: next\r\n\r\n"...)
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(next)))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(req.Body)
}

// headersEqual compares two headers, nil and empty being equal.
func headersEqual(a, b http.Header) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

var fuzzSeeds = []string{
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nConnection: keep-alive\r\nCookie: a=1; b=2\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nPriority: u=0, i\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n",
	"GET /wp-admin/admin-ajax.php?action=heartbeat HTTP/1.1\r\nHost: blog.example\r\nPragma: no-cache\r\n\r\n",
	"POST /wp-login.php HTTP/1.1\r\nHost: blog.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\nOrigin: https://blog.example\r\n\r\nlog=admin&pwd=secret&x=y&z=",
	"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n",
	"POST /api HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Connection: keep-alive\r\n\r\n",
	"GET http://example.com/a?b=c HTTP/1.1\r\nHost: other\r\n\r\n",
	"HEAD /favicon.ico HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
	"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"\r\nGET / HTTP/1.1\r\nhost: h\r\nx-lower: v\r\n\r\n",
	"GET / HTTP/1.1\nHost: h\nX: y\n\n",
	"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\n",
	"DELETE /r HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nAuthorization: Bearer abc.def\r\n\r\n",
}
