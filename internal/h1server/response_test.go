package h1server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// routes serves each test's handler at its own path.
type routes map[string]http.HandlerFunc

func (rs routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := rs[r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	h(w, r)
}

func TestFraming(t *testing.T) {
	big := strings.Repeat("b", 3*pendingLimit)
	ts := start(t, routes{
		"/cl": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		},
		"/small": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "small")
			_, _ = io.WriteString(w, " answer")
		},
		"/empty": func(w http.ResponseWriter, r *http.Request) {},
		"/big": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, big)
		},
		"/flushed": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
		},
		"/204": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "abc"); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic("write on a 204: " + errString(err))
			}
		},
		"/bad-cl": func(w http.ResponseWriter, r *http.Request) {
			// Not a length: the server frames the answer itself
			// (net/http sends the field as it is, and closes).
			w.Header().Set("Content-Length", "nope")
			_, _ = io.WriteString(w, "framed anyway")
		},
		"/304": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		},
		// SetContentLength: a length without a map entry.
		"/set": func(w http.ResponseWriter, r *http.Request) {
			w.(lengthSetter).SetContentLength(5)
			_, _ = io.WriteString(w, "hello")
		},
		"/set-map": func(w http.ResponseWriter, r *http.Request) {
			w.(lengthSetter).SetContentLength(9)
			w.Header().Set("Content-Length", "5") // the map's wins
			_, _ = io.WriteString(w, "hello")
		},
		"/set-204": func(w http.ResponseWriter, r *http.Request) {
			w.(lengthSetter).SetContentLength(3)
			w.WriteHeader(http.StatusNoContent)
		},
		"/set-late": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			w.(lengthSetter).SetContentLength(11) // the head is out: ignored
			_, _ = io.WriteString(w, "part2")
		},
	})
	cases := []struct {
		req, body string
		status    int
		cl        int64
		te        []string
		close     bool
	}{
		{"GET /cl HTTP/1.1\r\nHost: h\r\n\r\n", "hello", 200, 5, nil, false},
		{"GET /small HTTP/1.1\r\nHost: h\r\n\r\n", "small answer", 200, 12, nil, false},
		{"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n", "", 200, 0, nil, false},
		{"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", big, 200, -1, []string{"chunked"}, false},
		{"GET /flushed HTTP/1.1\r\nHost: h\r\n\r\n", "part1 part2", 200, -1, []string{"chunked"}, false},
		{"GET /204 HTTP/1.1\r\nHost: h\r\n\r\n", "", 204, 0, nil, false},
		{"GET /304 HTTP/1.1\r\nHost: h\r\n\r\n", "", 304, 0, nil, false},
		{"GET /bad-cl HTTP/1.1\r\nHost: h\r\n\r\n", "framed anyway", 200, -1, []string{"chunked"}, false},
		{"HEAD /cl HTTP/1.1\r\nHost: h\r\n\r\n", "", 200, 5, nil, false},
		{"HEAD /small HTTP/1.1\r\nHost: h\r\n\r\n", "", 200, 12, nil, false},
		{"HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n", "", 200, int64(len(big)), nil, false},
		{"GET /small HTTP/1.0\r\n\r\n", "small answer", 200, 12, nil, true},
		{"GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "small answer", 200, 12, nil, false},
		{"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", big, 200, -1, nil, true},
		{"GET /small HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "small answer", 200, 12, nil, true},
		{"GET /set HTTP/1.1\r\nHost: h\r\n\r\n", "hello", 200, 5, nil, false},
		{"HEAD /set HTTP/1.1\r\nHost: h\r\n\r\n", "", 200, 5, nil, false},
		{"GET /set HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "hello", 200, 5, nil, false},
		{"GET /set-map HTTP/1.1\r\nHost: h\r\n\r\n", "hello", 200, 5, nil, false},
		{"GET /set-204 HTTP/1.1\r\nHost: h\r\n\r\n", "", 204, 0, nil, false},
		{"GET /set-late HTTP/1.1\r\nHost: h\r\n\r\n", "part1 part2", 200, -1, []string{"chunked"}, false},
	}
	for _, tc := range cases {
		name, _, _ := strings.Cut(tc.req, "\r")
		t.Run(name, func(t *testing.T) {
			c := ts.dial(t)
			resp, body := c.roundTrip(tc.req)
			if resp.StatusCode != tc.status || body != tc.body || resp.ContentLength != tc.cl ||
				strings.Join(resp.TransferEncoding, ",") != strings.Join(tc.te, ",") || resp.Close != tc.close {
				t.Fatalf("got %d, %d bytes, length %d, te %v, close %v; want %d, %d bytes, %d, %v, %v",
					resp.StatusCode, len(body), resp.ContentLength, resp.TransferEncoding, resp.Close,
					tc.status, len(tc.body), tc.cl, tc.te, tc.close)
			}
			if tc.close {
				if !c.closed() {
					t.Error("connection kept")
				}
				return
			}
			// The connection serves the next request, framing
			// intact.
			resp, body = c.roundTrip("GET /small HTTP/1.1\r\nHost: h\r\n\r\n")
			if resp.StatusCode != 200 || body != "small answer" {
				t.Fatalf("next answer %d %q", resp.StatusCode, body)
			}
		})
	}
}

// lengthSetter is the server's answer declaring its length without a map
// entry (as the proxy relays an upstream's).
type lengthSetter interface{ SetContentLength(n int64) }

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestHeadersOut(t *testing.T) {
	ts := start(t, routes{
		"/crlf": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["X-Split"] = []string{"a\r\nSet-Cookie: evil=1", "b\nc"}
			w.Header()["Bad Name"] = []string{"dropped"}
			w.Header().Set("Content-Type", "text/x-test")
		},
		"/date": func(w http.ResponseWriter, r *http.Request) {},
		"/nodate": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Date"] = nil
		},
		"/close": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
		},
	})
	c := ts.dial(t)
	resp, _ := c.roundTrip("GET /crlf HTTP/1.1\r\nHost: h\r\n\r\n")
	if got := resp.Header["X-Split"]; len(got) != 2 || got[0] != "a  Set-Cookie: evil=1" || got[1] != "b c" {
		t.Errorf("X-Split %q", got)
	}
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Bad Name") != "" {
		t.Errorf("header split: %v", resp.Header)
	}
	if resp.Header.Get("Content-Type") != "text/x-test" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}

	resp, _ = c.roundTrip("GET /date HTTP/1.1\r\nHost: h\r\n\r\n")
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil || d.Sub(time.Now()).Abs() > 5*time.Second {
		t.Errorf("Date %q (%v)", resp.Header.Get("Date"), err)
	}
	if resp.Header.Get("Content-Type") != "" {
		t.Errorf("Content-Type sniffed: %q", resp.Header.Get("Content-Type"))
	}
	resp, _ = c.roundTrip("GET /nodate HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, ok := resp.Header["Date"]; ok {
		t.Errorf("Date sent though the handler suppressed it")
	}
	resp, _ = c.roundTrip("GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
	if !resp.Close || !c.closed() {
		t.Error("Connection: close from the handler did not close")
	}
}

func TestEarlyHints(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "page")
	}))
	c := ts.dial(t)
	c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	// http.ReadResponse returns the 103 on its own.
	resp, _ := c.read("GET")
	if resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != "</style.css>; rel=preload; as=style" {
		t.Fatalf("interim %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := c.read("GET")
	if resp.StatusCode != 200 || body != "page" {
		t.Fatalf("final %d %q", resp.StatusCode, body)
	}
}

func TestTrailers(t *testing.T) {
	ts := start(t, routes{
		"/declared": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "data")
			w.Header().Set("X-Sum", "7")
		},
		"/prefix": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "data")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		},
		"/prefix-flushed": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		},
	})
	for _, tc := range []struct{ path, name, value string }{
		{"/declared", "X-Sum", "7"},
		{"/prefix", "X-Late", "late"},
		{"/prefix-flushed", "X-Late", "late"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c := ts.dial(t)
			resp, body := c.roundTrip("GET " + tc.path + " HTTP/1.1\r\nHost: h\r\n\r\n")
			if body != "data" || resp.Trailer.Get(tc.name) != tc.value {
				t.Fatalf("body %q trailer %v, header %v", body, resp.Trailer, resp.Header)
			}
			if _, ok := resp.Header[http.TrailerPrefix+tc.name]; ok {
				t.Error("a trailer went out as a header field")
			}
		})
	}
}

func TestContentLengthMismatch(t *testing.T) {
	got := make(chan error, 1)
	ts := start(t, routes{
		"/over": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, err := io.WriteString(w, "abcd")
			got <- err
		},
		"/under": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "abc")
		},
		"/set-over": func(w http.ResponseWriter, r *http.Request) {
			w.(lengthSetter).SetContentLength(3)
			_, err := io.WriteString(w, "abcd")
			got <- err
		},
		"/set-under": func(w http.ResponseWriter, r *http.Request) {
			w.(lengthSetter).SetContentLength(10)
			_, _ = io.WriteString(w, "abc")
		},
	})
	for _, how := range []string{"", "set-"} {
		c := ts.dial(t)
		c.send("GET /" + how + "over HTTP/1.1\r\nHost: h\r\n\r\n")
		if err := <-got; !errors.Is(err, http.ErrContentLength) {
			t.Errorf("/%sover: write over the length: %v", how, err)
		}
		c = ts.dial(t)
		c.send("GET /" + how + "under HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("/%sunder: short body read: %v, want the connection closed under it", how, err)
		}
	}
}

func TestResponseController(t *testing.T) {
	errs := make(chan error, 8)
	ts := start(t, routes{
		"/rc": func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			errs <- rc.EnableFullDuplex()
			errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
			errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
			_, _ = io.WriteString(w, "first")
			errs <- rc.Flush()
			// The visitor reads the flushed part before the
			// handler writes more.
			buf := make([]byte, 2)
			_, err := io.ReadFull(r.Body, buf)
			errs <- err
			_, _ = io.WriteString(w, " second "+string(buf))
		},
		"/readdeadline": func(w http.ResponseWriter, r *http.Request) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := io.ReadAll(r.Body)
			errs <- err
		},
	})
	c := ts.dial(t)
	c.send("POST /rc HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("ResponseController: %v", err)
		}
	}
	part := make([]byte, len("first"))
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "first" {
		t.Fatalf("flushed part %q %v", part, err)
	}
	c.send("ok")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != " second ok" {
		t.Errorf("rest %q", rest)
	}
	// The deadlines were cleared after the request: the connection
	// waits for the next one.
	resp, _ = c.roundTrip("GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 404 {
		t.Errorf("next answer %d", resp.StatusCode)
	}

	c = ts.dial(t)
	c.send("POST /readdeadline HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
	if err := <-errs; err == nil {
		t.Error("a read past the handler's read deadline succeeded")
	}
}

func TestHijack(t *testing.T) {
	ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		// The bytes the server had read past the head are in rw.
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\necho: " + line)
		_ = rw.Flush()
		line, _ = rw.ReadString('\n')
		_, _ = io.WriteString(conn, "echo: "+line)
	}))
	c := ts.dial(t)
	c.send("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly bytes\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("answer %v %v", resp, err)
	}
	line, _ := c.br.ReadString('\n')
	if line != "echo: early bytes\n" {
		t.Errorf("first echo %q", line)
	}
	c.send("later\n")
	line, _ = c.br.ReadString('\n')
	if line != "echo: later\n" {
		t.Errorf("second echo %q", line)
	}
}

func TestPanics(t *testing.T) {
	ts := start(t, routes{
		"/panic": func(w http.ResponseWriter, r *http.Request) {
			panic("handler exploded")
		},
		"/abort": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		},
	})
	c := ts.dial(t)
	c.send("GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if !c.closed() {
		t.Error("connection kept after a panic")
	}
	eventually(t, "the panic in the log", func() bool { return strings.Contains(ts.logBuf.String(), "handler exploded") })

	c = ts.dial(t)
	c.send("GET /abort HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c.br), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("an aborted answer ended cleanly")
	}
	if strings.Contains(ts.logBuf.String(), "abort Handler") {
		t.Errorf("ErrAbortHandler logged: %s", ts.logBuf.String())
	}
}

// A Content-Length set after WriteHeader that the body already passes
// does not frame the answer: the visitor must never read body bytes as
// the next answer.
func TestLateContentLength(t *testing.T) {
	ts := start(t, routes{
		"/late-small": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "hel")
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, "lo")
		},
		"/late-big": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, strings.Repeat("x", 3*pendingLimit))
		},
	})
	c := ts.dial(t)
	for _, path := range []string{"/late-small", "/late-big", "/late-small"} {
		resp, body := c.roundTrip("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n")
		want := "hello"
		if path == "/late-big" {
			want = strings.Repeat("x", 3*pendingLimit)
		}
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%s: %d, %d bytes %.20q", path, resp.StatusCode, len(body), body)
		}
	}
}

// TestAdoptHeader checks that a handler can hand over a header map whole:
// its fields go out, the next answer on the connection starts empty, and
// the hand-over is refused when fields were set, the status was written or
// the map passed as the old one is not the writer's.
func TestAdoptHeader(t *testing.T) {
	type adopter interface{ AdoptHeader(old, h http.Header) bool }
	ts := start(t, routes{
		"/adopt": func(w http.ResponseWriter, r *http.Request) {
			h := http.Header{"X-Upstream": {"1"}, "Content-Type": {"text/x-adopted"}}
			if !w.(adopter).AdoptHeader(w.Header(), h) {
				t.Error("AdoptHeader refused an empty map")
			}
			if w.Header().Get("X-Upstream") != "1" {
				t.Error("Header does not return the adopted map")
			}
			_, _ = io.WriteString(w, "adopted")
		},
		"/plain": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "plain")
		},
		"/refused": func(w http.ResponseWriter, r *http.Request) {
			a := w.(adopter)
			if a.AdoptHeader(http.Header{}, http.Header{"X-A": {"1"}}) {
				t.Error("AdoptHeader took a map for another writer's")
			}
			w.Header().Set("X-Set", "1")
			if a.AdoptHeader(w.Header(), http.Header{"X-B": {"1"}}) {
				t.Error("AdoptHeader replaced a map with fields")
			}
			delete(w.Header(), "X-Set")
			w.WriteHeader(http.StatusAccepted)
			if a.AdoptHeader(w.Header(), http.Header{"X-C": {"1"}}) {
				t.Error("AdoptHeader replaced the map after WriteHeader")
			}
		},
	})
	c := ts.dial(t)
	resp, body := c.roundTrip("GET /adopt HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.Header.Get("X-Upstream") != "1" || resp.Header.Get("Content-Type") != "text/x-adopted" || body != "adopted" {
		t.Errorf("adopted answer: %v %q", resp.Header, body)
	}
	resp, body = c.roundTrip("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.Header.Get("X-Upstream") != "" || body != "plain" {
		t.Errorf("the next answer kept the adopted fields: %v %q", resp.Header, body)
	}
	resp, _ = c.roundTrip("GET /refused HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-A")+resp.Header.Get("X-B")+resp.Header.Get("X-C") != "" {
		t.Errorf("refused answer: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestAddField checks fields added without the map: written after the
// map's, in order and repeated as added, a Date among them replacing the
// server's, and none left for the connection's next answer.
func TestAddField(t *testing.T) {
	type fieldAdder interface{ AddField(name, value []byte) }
	ts := start(t, routes{
		"/raw": func(w http.ResponseWriter, r *http.Request) {
			a := w.(fieldAdder)
			w.Header().Set("X-Map", "m")
			a.AddField([]byte("Set-Cookie"), []byte("a=1"))
			a.AddField([]byte("Set-Cookie"), []byte("b=2"))
			a.AddField([]byte("Date"), []byte("Mon, 02 Jan 2006 15:04:05 GMT"))
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusOK)
			a.AddField([]byte("X-Late"), []byte("dropped"))
			_, _ = io.WriteString(w, "raw")
		},
		"/plain": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "plain")
		},
	})
	c := ts.dial(t)
	resp, body := c.roundTrip("GET /raw HTTP/1.1\r\nHost: h\r\n\r\n")
	if got := resp.Header.Values("Set-Cookie"); body != "raw" || len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie %q, body %q", got, body)
	}
	if got := resp.Header.Values("Date"); len(got) != 1 || got[0] != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("Date %q, want the added one only", got)
	}
	if resp.Header.Get("X-Map") != "m" || resp.Header.Get("X-Late") != "" || resp.ContentLength != 3 {
		t.Errorf("header %v, length %d", resp.Header, resp.ContentLength)
	}
	resp, body = c.roundTrip("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n")
	if body != "plain" || resp.Header.Get("Set-Cookie") != "" || len(resp.Header.Values("Date")) != 1 || resp.Header.Get("Date") == "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("the next answer: %v %q", resp.Header, body)
	}
}
