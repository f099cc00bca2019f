package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// echoHeaders is an upstream that answers with the request's Host and
// headers as JSON.
func echoHeaders(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := map[string][]string(r.Header.Clone())
		h["Host"] = []string{r.Host}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(up.Close)
	return up
}

// sentHeaders sends req through the gateway and returns what the upstream
// received.
func sentHeaders(t *testing.T, req *http.Request) http.Header {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var h http.Header
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestForwardRequestHeaders checks the headers the upstream receives, on
// the direct path (a plain GET) and on the ReverseProxy path (a request
// with Expect: 100-continue), from an untrusted and a trusted client: the
// hop-by-hop headers and those named by Connection are dropped, the
// X-Forwarded-* headers replaced or appended to, Via added, Host kept.
func TestForwardRequestHeaders(t *testing.T) {
	t.Parallel()
	up := echoHeaders(t)
	untrusted := startGateway(t, oneTargetConfig(up.URL))
	cfg := oneTargetConfig(up.URL)
	cfg.Forwarding.TrustedProxies = []string{"127.0.0.0/8"}
	trusted := startGateway(t, cfg)

	for _, tc := range []struct {
		name    string
		gateway *gateway
		expect  bool
		want    map[string]string // "" means absent
	}{
		{"direct path, untrusted client", untrusted, false, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "site.example"}},
		{"ReverseProxy path, untrusted client", untrusted, true, map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "site.example"}},
		{"direct path, trusted proxy", trusted, false, map[string]string{
			"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "cdn.example"}},
		{"ReverseProxy path, trusted proxy", trusted, true, map[string]string{
			"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "cdn.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.NewReader(`{"a":1}`)
			req, err := http.NewRequest(http.MethodPost, tc.gateway.url+"/h", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "site.example"
			req.Header.Set("Connection", "X-Secret")
			req.Header.Set("X-Secret", "for the gateway only")
			req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "cdn.example")
			req.Header.Set("X-App", "kept")
			if tc.expect {
				req.Header.Set("Expect", "100-continue")
			}
			got := sentHeaders(t, req)
			want := map[string]string{"Host": "site.example", "X-App": "kept", "Via": "1.1 gatewise",
				"X-Secret": "", "Proxy-Authorization": "", "Connection": ""}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				if g := strings.Join(got[k], ", "); g != v {
					t.Errorf("%s: upstream got %q, want %q", k, g, v)
				}
			}
			if got.Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id sent to the upstream")
			}
		})
	}
}

// rawUpstream answers every request on its connections with resp, written
// as is, and closes the connection when close is true.
func rawUpstream(t *testing.T, resp string, closeAfter bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, resp); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestForwardResponseHeaders checks what the visitor gets of the
// upstream's response headers: hop-by-hop ones and those named by
// Connection dropped, Via and X-Request-Id added, the rest as sent.
func TestForwardResponseHeaders(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n"+
		"X-App: kept\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok", false)
	g := startGateway(t, oneTargetConfig(up))
	res, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	for k, want := range map[string]string{"X-Internal": "", "Keep-Alive": "", "X-App": "kept",
		"Set-Cookie": "a=1, b=2", "Via": "1.1 gatewise"} {
		if got := strings.Join(res.Header.Values(k), ", "); got != want {
			t.Errorf("%s: visitor got %q, want %q", k, got, want)
		}
	}
	if res.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id in the response")
	}
}

// TestForwardResponseHeadersPerAnswer checks, on one keep-alive visitor
// connection, that each answer carries its own upstream's fields and no
// field of the answer before it (the server takes the upstream's header
// map whole and keeps it for the connection's next answer).
func TestForwardResponseHeadersPerAnswer(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			w.Header().Set("X-Only-A", "1")
		}
		w.Header().Set("X-Path", r.URL.Path)
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))
	c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/a", "/b", "/a", "/b"} {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(b) != path {
			t.Fatalf("%s: body %q, %v", path, b, err)
		}
		if got := res.Header.Get("X-Path"); got != path {
			t.Errorf("%s: X-Path %q", path, got)
		}
		if got, want := res.Header.Get("X-Only-A"), map[string]string{"/a": "1", "/b": ""}[path]; got != want {
			t.Errorf("%s: X-Only-A %q, want %q", path, got, want)
		}
		if n := len(res.Header.Values("X-Request-Id")); n != 1 {
			t.Errorf("%s: %d X-Request-Id fields", path, n)
		}
	}
}

// TestForwardResponseFields checks, case by case, the fields the visitor
// gets of unusual upstream answers on the direct path, where they are
// relayed as they came rather than through a header map (and, for the
// statuses the server edits, through the map after all).
func TestForwardResponseFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, method, resp string
		want               map[string][]string // nil: must be absent
		body               string
		status             int
	}{
		{desc: "hop-by-hop and Connection-named fields dropped, the rest in order",
			resp: "HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nVia: 1.0 other\r\nX-Request-Id: up-123\r\n" +
				"Set-Cookie: a=1\r\nX-App: kept\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\nok",
			want: map[string][]string{"X-Hop": nil, "Keep-Alive": nil, "Proxy-Connection": nil,
				"Date": {"Mon, 02 Jan 2006 15:04:05 GMT"}, "Via": {"1.0 other", "1.1 gatewise"}, "X-Request-Id": {"up-123"},
				"Set-Cookie": {"a=1", "b=2"}, "X-App": {"kept"}, "Content-Length": {"2"}},
			body: "ok", status: 200},
		{desc: "an empty X-Request-Id is replaced",
			resp: "HTTP/1.1 200 OK\r\nX-Request-Id:\r\nContent-Length: 2\r\n\r\nok",
			body: "ok", status: 200},
		{desc: "a repeated length sent once",
			resp: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
			want: map[string][]string{"Content-Length": {"2"}}, body: "ok", status: 201},
		{desc: "the upstream's own 502 marked received",
			resp: "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad",
			want: map[string][]string{"Proxy-Status": {"gatewise; received-status=502"}}, body: "bad", status: 502},
		{desc: "a chunked body re-framed, the upstream's coding not repeated",
			resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: c\r\n\r\n2\r\nok\r\n0\r\n\r\n",
			want: map[string][]string{"X-App": {"c"}}, body: "ok", status: 200},
		{desc: "HEAD keeps the length", method: http.MethodHead,
			resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
			want: map[string][]string{"Content-Length": {"5"}, "Content-Type": {"text/plain"}}, status: 200},
		{desc: "304 through the map: no length, no type",
			resp: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Type: text/plain\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n",
			want: map[string][]string{"Etag": {`"x"`}, "Content-Type": nil, "X-Hop": nil}, status: 304},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, oneTargetConfig(rawUpstream(t, tt.resp, false)))
			c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			br := bufio.NewReader(c)
			for range 2 { // the second answer on the connection must be the same
				if _, err := io.WriteString(c, method+" / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				res, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(b) != tt.body || res.StatusCode != tt.status {
					t.Fatalf("status %d, body %q, %v", res.StatusCode, b, err)
				}
				for k, want := range tt.want {
					if got := res.Header.Values(k); !slices.Equal(got, want) {
						t.Errorf("%s: %q, want %q", k, got, want)
					}
				}
				if got := res.Header.Values("Date"); len(got) != 1 {
					t.Errorf("Date: %q, want one", got)
				}
				if id := res.Header.Values("X-Request-Id"); len(id) != 1 || id[0] == "" {
					t.Errorf("X-Request-Id: %q, want one", id)
				}
				if res.Header.Get("Transfer-Encoding") != "" || len(res.TransferEncoding) > 1 {
					t.Errorf("Transfer-Encoding %q %q", res.Header.Values("Transfer-Encoding"), res.TransferEncoding)
				}
			}
		})
	}
}

// TestForwardTrailers checks that a chunked response's trailers reach the
// visitor, announced or not.
func TestForwardTrailers(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part two")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))
	res, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "part one, part two" {
		t.Fatalf("body %q, %v", b, err)
	}
	if got := res.Trailer.Get("X-Sum"); got != "42" {
		t.Errorf("announced trailer X-Sum = %q, want 42", got)
	}
	if got := res.Trailer.Get("X-Late"); got != "yes" {
		t.Errorf("unannounced trailer X-Late = %q, want yes", got)
	}
}

// TestForwardCutBody checks that a body the upstream cuts short is not
// passed off as whole: the visitor's read fails, and the cause is logged.
func TestForwardCutBody(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much", true)
	g := startGateway(t, oneTargetConfig(up))
	// The gateway aborts the connection: before the headers leave its
	// buffer (the request fails) or after (the body's read fails).
	res, err := http.Get(g.url + "/")
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Fatalf("read %d bytes (%q) and a clean end; want an error", len(b), b)
		}
	}
	waitFor(t, "the cause in the log", func() bool {
		return strings.Contains(g.log.String(), `"cause":"http_response_incomplete"`)
	})
}

// TestForwardEarlyHints checks that an upstream's 103 Early Hints reach
// the visitor before the final answer, with their Link fields and without
// the final answer's, on the direct path (a GET) as on the other (a
// request with Te), and that an unsolicited 100 Continue is not relayed.
func TestForwardEarlyHints(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false)
	g := startGateway(t, oneTargetConfig(up))
	for _, te := range []string{"", "trailers"} {
		t.Run("te="+te, func(t *testing.T) {
			addr := strings.TrimPrefix(g.url, "http://")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\n"
			if te != "" {
				req += "Te: " + te + "\r\n"
			}
			if _, err := io.WriteString(c, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			var codes []int
			var hints http.Header
			for {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("after %v: %v", codes, err)
				}
				codes = append(codes, res.StatusCode)
				if res.StatusCode == http.StatusEarlyHints {
					hints = res.Header
				}
				if res.StatusCode >= 200 {
					b, err := io.ReadAll(res.Body)
					if err != nil || string(b) != "ok" {
						t.Fatalf("body %q, %v", b, err)
					}
					if res.Header.Get("Link") != "" {
						t.Errorf("the final answer carries the hint's Link: %q", res.Header.Get("Link"))
					}
					if res.Header.Get("Content-Type") != "text/plain" {
						t.Errorf("final Content-Type %q", res.Header.Get("Content-Type"))
					}
					break
				}
			}
			if !slices.Equal(codes, []int{103, 200}) {
				t.Errorf("statuses %v, want [103 200]", codes)
			}
			if got := hints.Get("Link"); got != "</style.css>; rel=preload; as=style" {
				t.Errorf("103's Link %q", got)
			}
			if hints.Get("Content-Type") != "" {
				t.Errorf("103 carries the final answer's Content-Type %q", hints.Get("Content-Type"))
			}
		})
	}
}
