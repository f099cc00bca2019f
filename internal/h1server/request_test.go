package h1server

import (
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRequestLineForms(t *testing.T) {
	rec := new(recorder)
	ts := start(t, rec)
	cases := []struct {
		name, req                string
		method, uri, path, host  string
		rawQuery, scheme, urlStr string
		major, minor             int
	}{
		{"origin", "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"GET", "/a/b?x=1", "/a/b", "example.com", "x=1", "", "/a/b?x=1", 1, 1},
		{"absolute", "GET http://other.example:8080/p?q HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
			"GET", "http://other.example:8080/p?q", "/p", "other.example:8080", "q", "http", "http://other.example:8080/p?q", 1, 1},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"OPTIONS", "*", "*", "example.com", "", "", "*", 1, 1},
		{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			"CONNECT", "example.com:443", "", "example.com:443", "", "", "//example.com:443", 1, 1},
		{"connect without host", "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
			"CONNECT", "example.com:443", "", "example.com:443", "", "", "//example.com:443", 1, 1},
		{"http10 no host", "GET /old HTTP/1.0\r\n\r\n",
			"GET", "/old", "/old", "", "", "", "/old", 1, 0},
		{"http12 is 1.x", "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
			"GET", "/", "/", "h", "", "", "/", 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			resp, _ := c.roundTrip(tc.req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			r, _ := rec.last(t)
			if r.Method != tc.method || r.RequestURI != tc.uri || r.URL.Path != tc.path || r.Host != tc.host ||
				r.URL.RawQuery != tc.rawQuery || r.URL.Scheme != tc.scheme || r.URL.String() != tc.urlStr {
				t.Errorf("got method %q uri %q path %q host %q query %q scheme %q url %q",
					r.Method, r.RequestURI, r.URL.Path, r.Host, r.URL.RawQuery, r.URL.Scheme, r.URL.String())
			}
			if r.ProtoMajor != tc.major || r.ProtoMinor != tc.minor {
				t.Errorf("proto %d.%d (%s)", r.ProtoMajor, r.ProtoMinor, r.Proto)
			}
			if _, ok := r.Header["Host"]; ok {
				t.Errorf("Host left in Header: %v", r.Header)
			}
		})
	}
}

func TestRequestFields(t *testing.T) {
	rec := new(recorder)
	ts := start(t, rec)
	c := ts.dial(t)
	resp, _ := c.roundTrip("\r\n\r\nGET /x HTTP/1.1\r\nhost: h.example\r\ncontent-TYPE: text/plain\r\nx-multi: 1\r\nX-Multi: 2\r\nx_under: u\r\nAccept:   spaced\t \r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, _ := rec.last(t)
	want := http.Header{
		"Content-Type": {"text/plain"},
		"X-Multi":      {"1", "2"},
		"X_under":      {"u"},
		"Accept":       {"spaced"},
	}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("header %v, want %v", r.Header, want)
	}
	if r.Host != "h.example" {
		t.Errorf("host %q", r.Host)
	}
	if r.RemoteAddr != c.LocalAddr().String() {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, c.LocalAddr())
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || la.String() != ts.addr {
		t.Errorf("LocalAddrContextKey %v, want %s", r.Context().Value(http.LocalAddrContextKey), ts.addr)
	}
	if r.Close {
		t.Error("Close set on a keep-alive request")
	}
}

func TestRequestErrors(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.MaxHeaderBytes = 8 << 10
	})
	cases := []struct {
		name, req string
		status    int
	}{
		{"http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
		{"http09", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
		{"junk", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400},
		{"no proto", "GET /\r\n\r\n", 400},
		{"bad proto", "GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"userinfo in host", "GET / HTTP/1.1\r\nHost: evil@good\r\n\r\n", 400},
		{"fragment in host", "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400},
		{"slash in host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"bad host beside absolute target", "GET http://a/ HTTP/1.1\r\nHost: a?b\r\n\r\n", 400},
		{"name with space", "GET / HTTP/1.1\r\nHost: h\r\nX Y: z\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX : z\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: z\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", 400},
		{"control in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400},
		{"del in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", 400},
		{"bare cr in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400},
		{"bare cr ending the last field", "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\r\n\r\n", 400},
		{"bare cr ending the request line", "GET / HTTP/1.0\r\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
		{"bad target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"te and cl", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
		{"te gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"bad cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
		{"negative cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
		{"two cls", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"expect other", "POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx", 417},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"head too large", "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("a", 9<<10) + "\r\n\r\n", 431},
		{"head too large, no end", "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("a", 20<<10), 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tc.req)
			resp, body := c.read("GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if !resp.Close {
				t.Error("an error answer must close the connection")
			}
			if !c.closed() {
				t.Error("connection still open after an error answer")
			}
		})
	}
}

// Heads that outgrow the 4 KiB read buffer, with a body and a pipelined
// request after them that must not be lost.
func TestLargeHeads(t *testing.T) {
	rec := new(recorder)
	ts := start(t, rec)
	for _, size := range []int{readBufferSize - 60, readBufferSize - 1, readBufferSize, readBufferSize + 1, 20 << 10, 100 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			cookie := strings.Repeat("c", size)
			c := ts.dial(t)
			req := "POST /big HTTP/1.1\r\nHost: h\r\nCookie: " + cookie + "\r\nContent-Length: 5\r\n\r\nhello" +
				"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
			c.send(req)
			resp, body := c.read("POST")
			if resp.StatusCode != 200 || body != "POST /big" {
				t.Fatalf("first answer %d %q", resp.StatusCode, body)
			}
			r, b := rec.find(t, "/big")
			if r.Header.Get("Cookie") != cookie || b != "hello" {
				t.Errorf("cookie of %d bytes, body %q", len(r.Header.Get("Cookie")), b)
			}
			resp, body = c.read("GET")
			if resp.StatusCode != 200 || body != "GET /next" {
				t.Fatalf("pipelined answer %d %q", resp.StatusCode, body)
			}
		})
	}
}

// A head sent a byte at a time, with its end split every way.
func TestHeadByteByByte(t *testing.T) {
	rec := new(recorder)
	ts := start(t, rec)
	c := ts.dial(t)
	req := "\r\nGET /slow HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
	for i := 0; i < len(req); i++ {
		c.send(req[i : i+1])
		if i%8 == 0 {
			// Let the server read a partial head now and then.
			_ = c.open(time.Millisecond)
		}
	}
	resp, body := c.read("GET")
	if resp.StatusCode != 200 || body != "GET /slow" {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	r, _ := rec.last(t)
	if r.Header.Get("X-A") != "1" {
		t.Errorf("header %v", r.Header)
	}
}

func TestHeadCutShort(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := ts.dial(t)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n")
	_ = c.Conn.(*net.TCPConn).CloseWrite()
	resp, _ := c.read("GET")
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
